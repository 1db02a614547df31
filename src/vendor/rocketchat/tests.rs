//! The Rocket.Chat connector's mapping, options, error classification and read-back.

use super::*;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use serde_json::json;

use crate::config::ConfigError;
use crate::http::Reply;
use crate::model::{Fields, Person};
use crate::vendor::{Vendor, VendorError};

fn build(extra: &str) -> Result<RocketChat, ConfigError> {
    let table = format!("[vendors.chat]\ntype = \"rocketchat\"\n{extra}");
    crate::vendor::testing::test_build(&table, "chat", |v| match &v.kind {
        super::super::VendorKind::RocketChat(o) => {
            RocketChat::new(v, o, crate::vendor::testing::test_http("chat"))
        }
        other => panic!("not rocketchat: {other:?}"),
    })
}

const CREDS: &str =
    "base_url = \"https://chat.example.com\"\nuser_id = \"u\"\nauth_token = \"t\"\n";

fn chat(extra: &str) -> RocketChat {
    build(&format!("{CREDS}{extra}")).expect("builds")
}

fn person() -> Person {
    let mut p = Person::new("E1");
    p.first_name = Some("Ann".into());
    p.last_name = Some("Lee".into());
    p.email = Some("ann@x.io".into());
    p.username = Some("ann.lee".into());
    p.phone = Some("+1 555".into());
    p
}

#[test]
fn map_sends_name_username_email() {
    let f = chat("").map(&person()).expect("maps");
    assert_eq!(f.len(), 3, "{f:?}");
    assert_eq!(f["name"], "Ann Lee");
    assert_eq!(f["username"], "ann.lee");
    assert_eq!(f["email"], "ann@x.io");
}

#[test]
fn map_requires_name_username_and_email() {
    let c = chat("");
    let mut p = person();
    p.username = None;
    let e = c.map(&p).expect_err("no username");
    assert!(e.contains("missing: username"), "{e}");
    let mut p = person();
    p.first_name = None;
    p.last_name = None;
    p.email = None;
    let e = c.map(&p).expect_err("no name or email");
    assert!(e.contains("name") && e.contains("email"), "{e}");
}

#[test]
fn map_refuses_usernames_rocket_chat_rejects() {
    let mut p = person();
    p.username = Some("ann lee".into());
    let e = chat("").map(&p).expect_err("space");
    assert!(e.contains("`ann lee`"), "{e}");
    p.username = Some("zoë".into());
    assert!(chat("").map(&p).is_err());
    p.username = Some("A-z_0.9".into());
    assert!(chat("").map(&p).is_ok());
}

#[test]
fn vendor_fields_roles_and_custom_fields() {
    let c = chat(
        "[vendors.chat.defaults]\nroles = \"user; bot ,user\"\n\"customFields.team\" = \"ops\"\n",
    );
    let mut p = person();
    p.attributes
        .insert("chat.customFields.team".into(), "fleet".into());
    p.attributes.insert("other.roles".into(), "admin".into());
    let f = c.map(&p).expect("maps");
    assert_eq!(f["roles"], "bot,user");
    assert_eq!(f["customFields.team"], "fleet");
    p.attributes.insert("chat.nickname".into(), "annie".into());
    let e = c.map(&p).expect_err("nickname is not managed");
    assert!(e.contains("chat.nickname"), "{e}");
}

#[test]
fn config_errors_name_the_key() {
    let e = build("user_id = \"u\"\nauth_token = \"t\"\n")
        .err()
        .expect("no base_url");
    assert!(e.to_string().contains("vendors.chat.base_url"), "{e}");
    let e = build("base_url = \"https://c.example\"\nuser_id = \"u\"\n")
        .err()
        .expect("no token");
    assert!(e.to_string().contains("vendors.chat.auth_token"), "{e}");
    let e = build("base_url = \"https://c.example\"\nauth_token = \"t\"\n")
        .err()
        .expect("no id");
    assert!(e.to_string().contains("vendors.chat.user_id"), "{e}");
    let e = build(&format!("{CREDS}auth_token_file = \"x\"\n"))
        .err()
        .expect("both");
    assert!(e.to_string().contains("vendors.chat.auth_token"), "{e}");
    let e = build(&format!("{CREDS}confirm_relinquis = true\n"))
        .err()
        .expect("typo");
    assert!(e.to_string().contains("confirm_relinquis"), "{e}");
    let e = build(&format!("{CREDS}password_mode = \"plain\"\n"))
        .err()
        .expect("bad mode");
    assert!(e.to_string().contains("plain"), "{e}");
    let e = build(&format!("{CREDS}[vendors.chat.defaults]\nbio = \"x\"\n"))
        .err()
        .expect("bio");
    assert!(e.to_string().contains("vendors.chat.defaults.bio"), "{e}");
    let e = build(
        "base_url = \"https://c.example\"\nuser_id = \"u\"\nauth_token = \"t\\u0001zq9xv\"\n",
    )
    .err()
    .expect("control character");
    assert!(e.to_string().contains("vendors.chat.auth_token"), "{e}");
    assert!(!e.to_string().contains("zq9xv"), "{e}");
    // Secrets never appear in errors.
    let e = build("base_url = \"https://c.example\"\nuser_id = \"u\"\nauth_token = \"\"\n")
        .err()
        .expect("empty token");
    assert!(e.to_string().contains("vendors.chat.auth_token"), "{e}");
}

#[test]
fn options_parse() {
    let c = chat(
        "password_mode = \"set_random_password\"\njoin_default_channels = false\n\
                  confirm_relinquish = false\nlookup_by_email = true\npacing = false\n",
    );
    assert_eq!(c.password_mode, PasswordMode::SetRandomPassword);
    assert!(!c.join_default_channels && !c.confirm_relinquish && c.lookup_by_email);
    assert!(c.http.flow().settings().ignore_windows);
    assert!(c.http.flow().settings().per_route);
    let d = chat("");
    assert!(!d.http.flow().settings().ignore_windows);
    assert_eq!(d.password_mode, PasswordMode::Random);
    assert!(d.join_default_channels && d.confirm_relinquish && !d.lookup_by_email);
    assert!(!d.send_welcome_email && !d.require_password_change && !d.email_verified);
}

#[test]
fn passwords_are_long_mixed_and_fresh() {
    let a = random_password();
    let b = random_password();
    assert_ne!(a, b);
    assert_eq!(a.chars().count(), 40);
    assert!(a.chars().any(|c| c.is_ascii_lowercase()));
    assert!(a.chars().any(|c| c.is_ascii_uppercase()));
    assert!(a.chars().any(|c| c.is_ascii_digit()));
    assert!(a.chars().any(|c| !c.is_ascii_alphanumeric()));
}

fn reply(status: u16, headers: &[(&str, String)], body: &str) -> Reply {
    let mut h = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        h.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            v.parse().expect("value"),
        );
    }
    Reply {
        status: StatusCode::from_u16(status).expect("status"),
        headers: h,
        body: body.into(),
        url: "http://h/api/v1/x".into(),
    }
}

#[test]
fn errors_are_classified() {
    let legacy = reply(
        401,
        &[],
        r#"{"status":"error","message":"You must be logged in to do this."}"#,
    );
    match classify(&legacy) {
        VendorError::Auth {
            status: 401,
            detail,
        } => assert!(detail.contains("logged in")),
        other => panic!("{other:?}"),
    }
    let forbidden = reply(403, &[], r#"{"success":false,"error":"unauthorized"}"#);
    assert!(matches!(
        classify(&forbidden),
        VendorError::Auth { status: 403, .. }
    ));
    let nf = reply(400, &[], r#"{"success":false,"error":"User not found."}"#);
    assert!(matches!(classify(&nf), VendorError::NotFound(_)));
    let iu = reply(
        400,
        &[],
        r#"{"success":false,"error":"x [error-invalid-user]","errorType":"error-invalid-user"}"#,
    );
    assert!(matches!(classify(&iu), VendorError::NotFound(_)));
    let dup = reply(
        400,
        &[],
        r#"{"success":false,"error":"ann is already in use :( [error-field-unavailable]","errorType":"error-field-unavailable"}"#,
    );
    match classify(&dup) {
        VendorError::Rejected {
            status: 400,
            detail,
        } => assert!(detail.contains("already in use")),
        other => panic!("{other:?}"),
    }
    let totp = reply(
        400,
        &[],
        r#"{"success":false,"error":"TOTP Required [totp-required]","errorType":"totp-required"}"#,
    );
    match classify(&totp) {
        e @ VendorError::Setup { .. } => {
            assert!(!e.is_retryable());
            assert!(
                e.to_string().contains("Ignore Two Factor Authentication"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    let server = reply(
        503,
        &[],
        r#"{"success":false,"error":"Service Unavailable"}"#,
    );
    assert!(classify(&server).is_retryable());
}

#[test]
fn rate_limit_waits_come_from_reset_or_message() {
    let now_ms = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    let reset = (now_ms + 3_000).to_string();
    match classify(&reply(429, &[("x-ratelimit-reset", reset)], "{}")) {
        VendorError::RateLimited {
            retry_after: Some(d),
        } => {
            assert!(
                d > Duration::from_millis(2_000) && d <= Duration::from_secs(3),
                "{d:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let body = r#"{"success":false,"error":"Error, too many requests. Please slow down. You must wait 7 seconds before trying this endpoint again. [error-too-many-requests]"}"#;
    assert!(matches!(
        classify(&reply(429, &[], body)),
        VendorError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(7)
    ));
    // The same error carried by a 400 (a server that maps it so) is a rate limit too.
    assert!(matches!(
        classify(&reply(400, &[], body)),
        VendorError::RateLimited { .. }
    ));
}

#[test]
fn reading_back_a_user() {
    let user = json!({
        "_id": "BsNr28znDkG8aeo7W", "username": "ann.lee", "name": "Ann Lee",
        "emails": [{"address": "ann@x.io", "verified": false}], "active": false,
        "roles": ["user", "admin"], "customFields": {"team": "ops", "other": "x"}
    });
    let user = user.as_object().expect("object");
    let r = RocketChat::remote(user, &Fields::new()).expect("remote");
    assert_eq!(r.id, "BsNr28znDkG8aeo7W");
    assert_eq!(r.active, Some(false));
    assert_eq!(
        r.fields.len(),
        3,
        "roles and custom fields only when managed: {:?}",
        r.fields
    );
    let wanted: Fields = [
        ("roles".to_string(), "user".to_string()),
        ("customFields.team".to_string(), "x".to_string()),
    ]
    .into_iter()
    .collect();
    let r = RocketChat::remote(user, &wanted).expect("remote");
    assert_eq!(r.fields["roles"], "admin,user");
    assert_eq!(r.fields["customFields.team"], "ops");
    assert!(!r.fields.contains_key("customFields.other"));
}
