use super::*;

fn build(extra: &str) -> Result<DriveKit, ConfigError> {
    let table = format!("[vendors.dk]\ntype = \"drivekit\"\n{extra}");
    crate::vendor::testing::test_build(&table, "dk", |v| match &v.kind {
        super::super::VendorKind::DriveKit(o) => {
            DriveKit::new(v, o, crate::vendor::testing::test_http("dk"))
        }
        other => panic!("not drivekit: {other:?}"),
    })
}

fn person() -> Person {
    let mut p = Person::new("E1");
    p.first_name = Some("Ann".into());
    p.last_name = Some("Lee".into());
    p.email = Some("ann@x.io".into());
    p
}

#[test]
fn map_uses_person_id_names_and_username_as_pseudo() {
    let d = build("api_key = \"k\"\n").expect("builds");
    let f = d.map(&person()).expect("maps");
    assert_eq!(
        f,
        Fields::from([
            ("firstname".into(), "Ann".into()),
            ("lastname".into(), "Lee".into()),
            (USER_ID.into(), "E1".into()),
        ])
    );
    let mut p = person();
    p.username = Some("annl".into());
    assert_eq!(d.map(&p).expect("maps")["pseudo"], "annl");
}

#[test]
fn attributes_override_user_id_and_pseudo_default_is_last() {
    let d = build("api_key = \"k\"\n[vendors.dk.defaults]\npseudo = \"driver\"\n").expect("builds");
    let mut p = person();
    assert_eq!(d.map(&p).expect("maps")["pseudo"], "driver");
    p.username = Some("annl".into());
    assert_eq!(d.map(&p).expect("maps")["pseudo"], "annl");
    p.attributes.insert("dk.pseudo".into(), "Speedy".into());
    p.attributes.insert("dk.user_id".into(), "guid-1".into());
    let f = d.map(&p).expect("maps");
    assert_eq!(f["pseudo"], "Speedy");
    assert_eq!(f[USER_ID], "guid-1");
    p.attributes.insert("dk.user_id".into(), " ".into());
    assert!(d.map(&p).expect_err("empty id").contains("dk.user_id"));
    p.attributes.remove("dk.user_id");
    p.attributes.insert("dk.colour".into(), "red".into());
    assert!(d.map(&p).expect_err("unknown").contains("dk.colour"));
}

#[test]
fn config_errors_name_the_key() {
    let e = build("").err().expect("no key");
    assert!(e.to_string().contains("vendors.dk.api_key"), "{e}");
    let e = build("api_key = \"k\"\napi_key_file = \"f\"\n")
        .err()
        .expect("both");
    assert!(e.to_string().contains("vendors.dk.api_key"), "{e}");
    let e = build("api_key = \"k\"\n[vendors.dk.defaults]\nuser_id = \"x\"\n")
        .err()
        .expect("default id");
    assert!(e.to_string().contains("vendors.dk.defaults.user_id"), "{e}");
    let e = build("api_key = \"k\"\ntoken = \"t\"\n")
        .err()
        .expect("unknown key");
    assert!(e.to_string().contains("token"), "{e}");
}

#[test]
fn user_ids_are_one_path_segment() {
    let d = build("api_key = \"k\"\nbase_url = \"http://h:1/drivekit\"\n").expect("builds");
    let u = d.driver_url("a/b c?", "identity").expect("url");
    assert_eq!(
        u.as_str(),
        "http://h:1/drivekit/v3/drivekit/admin/drivers/a%2Fb%20c%3F/identity"
    );
}

#[test]
fn listed_identity_skips_empty_values() {
    let d = json!({ "userId": "E1", "firstname": "Ann", "lastname": "", "pseudo": null });
    let f = identity_of(&d, "E1");
    assert_eq!(f.len(), 2);
    assert_eq!(f["firstname"], "Ann");
    assert_eq!(f[USER_ID], "E1");
}
