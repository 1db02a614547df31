//! The Telematics connector's mapping, options and wire shapes.

use super::*;
use serde_json::json;

use crate::config::ConfigError;
use crate::model::{Changes, Person};
use crate::vendor::Vendor;

const CREDS: &str =
    "email = \"a@x.io\"\npassword = \"pw\"\ninstance_id = \"i\"\ninstance_key = \"k\"\n";

fn build(extra: &str) -> Result<Telematics, ConfigError> {
    let table = format!("[vendors.tm]\ntype = \"telematics\"\n{extra}");
    crate::vendor::testing::test_build(&table, "tm", |v| match &v.kind {
        super::super::VendorKind::Telematics(o) => {
            Telematics::new(v, o, crate::vendor::testing::test_http("tm"))
        }
        other => panic!("not telematics: {other:?}"),
    })
}

fn person() -> Person {
    let mut p = Person::new("E1");
    p.first_name = Some("Ann".into());
    p.last_name = Some("Lee".into());
    p.email = Some("ann@x.io".into());
    p.username = Some("ann".into());
    p
}

#[test]
fn map_takes_names_email_and_phone() {
    let t = build(CREDS).expect("builds");
    let mut p = person();
    p.phone = Some("+1 555".into());
    let f = t.map(&p).expect("maps");
    let keys: Vec<&str> = f.keys().map(String::as_str).collect();
    assert_eq!(keys, ["email", "first_name", "last_name", "phone"]);
    assert_eq!(f["phone"], "+1 555");
    p.attributes.insert("tm.nickname".into(), "x".into());
    assert!(
        t.map(&p)
            .expect_err("no vendor fields")
            .contains("tm.nickname")
    );
}

#[test]
fn every_credential_is_required_and_named() {
    for key in ["email", "password", "instance_id", "instance_key"] {
        let creds: String = CREDS
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} ")))
            .map(|l| format!("{l}\n"))
            .collect();
        let e = build(&creds).err().expect("refused");
        assert!(e.to_string().contains(&format!("vendors.tm.{key}")), "{e}");
    }
    let e = build(&format!("{CREDS}instance_key_file = \"k\"\n"))
        .err()
        .expect("both");
    assert!(e.to_string().contains("vendors.tm.instance_key"), "{e}");
    let e = build(&format!("{CREDS}token = \"x\"\n"))
        .err()
        .expect("unknown");
    assert!(e.to_string().contains("token"), "{e}");
    let e = build(&format!("{CREDS}[vendors.tm.defaults]\nrole = \"x\"\n"))
        .err()
        .expect("defaults");
    assert!(e.to_string().contains("vendors.tm.defaults.role"), "{e}");
}

#[test]
fn reads_user_fields_as_array_and_status_with_enabled() {
    let user = json!({
        "DeviceToken": "d1", "Status": "Active",
        "UserProfile": { "FirstName": "Ann", "LastName": null, "Email": "", "Phone": "1" },
        "UserFields": [ { "ClientId": "E1", "Enabled": true, "EnableTracking": true,
                          "EnableLogging": false, "EnableRealTimeLocation": false } ]
    });
    assert_eq!(client_id(&user), Some("E1"));
    assert!(is_active(&user));
    let f = profile_fields(&user);
    assert_eq!(f.len(), 2);
    assert_eq!(f["first_name"], "Ann");
    let mut off = user.clone();
    off["UserFields"][0]["Enabled"] = json!(false);
    assert!(!is_active(&off));
    let mut inactive = user.clone();
    inactive["Status"] = json!("Inactive");
    assert!(!is_active(&inactive));
}

#[test]
fn deactivation_keeps_every_flag_and_the_client_id() {
    let user = json!({ "UserFields": [ { "ClientId": "E1", "Enabled": true,
        "EnableTracking": false, "EnableLogging": true, "EnableRealTimeLocation": true,
        "Unknown": 1 } ] });
    let flags = flags_with_enabled(&user, false);
    assert_eq!(
        Value::Object(flags),
        json!({ "ClientId": "E1", "Enabled": false, "EnableTracking": false,
                "EnableLogging": true, "EnableRealTimeLocation": true })
    );
}

#[test]
fn update_sends_damoov_names_and_clears_with_empty_string() {
    let changes: Changes = [
        ("first_name".to_string(), Some("Bo".to_string())),
        ("phone".to_string(), None),
    ]
    .into();
    assert_eq!(
        Value::Object(update_body(&changes)),
        json!({ "FirstName": "Bo", "Phone": "" })
    );
}

#[test]
fn envelope_errors_are_one_line() {
    let body = r#"{"Status":422,"Title":"One or more validation errors occurred.","Errors":[{"Key":"Email","Message":"bad"}]}"#;
    assert_eq!(
        envelope_message(body).as_deref(),
        Some("One or more validation errors occurred. (Email: bad)")
    );
    assert_eq!(envelope_message("not json"), None);
}
