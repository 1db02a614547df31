//! The HTTP source's mapping, paging helpers and config checks.

use super::pages::{link_next, with_query};
use super::*;
use crate::config::ConfigError;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

fn build(v: Value) -> Result<HttpSource, ConfigError> {
    let o = crate::source::test_options(v)?;
    HttpSource::from_options(o, &crate::source::test_build())
}

fn source(v: Value) -> HttpSource {
    build(v).expect("valid")
}

fn err(v: Value) -> String {
    match build(v) {
        Ok(_) => panic!("expected a config error"),
        Err(e) => e.to_string(),
    }
}

fn base() -> Value {
    json!({"url": "http://127.0.0.1:1/hr", "fields": {"id": "/employeeId"}})
}

fn with(extra: Value) -> Value {
    let mut b = base();
    for (k, v) in extra.as_object().expect("object") {
        b[k] = v.clone();
    }
    b
}

#[test]
fn record_mapping_with_pointers_and_status_values() {
    let s = source(with(json!({
        "fields": {"id": "/employeeId", "email": "/work/email", "first_name": "/name/first",
                   "last_name": "/name/last", "phone": "/work/phone", "active": "/status",
                   "groups": "/teams", "username": "/login"},
        "group_item_pointer": "/name",
        "active_values": ["Active", "on_leave"],
        "attributes": {"motive.eld_mode": "/fleet/eld", "hr.grade": "/grade"},
    })));
    let rec = json!({"employeeId": 1007, "work": {"email": "a@b.io", "phone": 5551234},
                     "name": {"first": "Ann", "last": "Lee"}, "status": "ON_LEAVE",
                     "teams": [{"name": "drivers"}, {"name": "ops"}], "login": "ann",
                     "fleet": {"eld": "logs"}, "grade": 7});
    let p = s.map.to_record(&rec).expect("valid");
    assert_eq!(p.id.as_str(), "1007");
    assert_eq!(p.phone.as_deref(), Some("5551234"));
    assert!(p.active);
    assert!(p.groups.contains("drivers") && p.groups.contains("ops"));
    assert_eq!(p.attributes["motive.eld_mode"], "logs");
    assert_eq!(p.attributes["hr.grade"], "7");

    let gone = json!({"employeeId": "8", "status": "terminated"});
    assert!(!s.map.to_record(&gone).expect("valid").active);
    let unknown = s
        .map
        .to_record(&json!({"employeeId": "9", "work": {"email": "x@y.io"}}))
        .expect_err("no status");
    assert_eq!(unknown.id.as_deref(), Some("9"));
    assert_eq!(unknown.email.as_deref(), Some("x@y.io"));
    assert!(
        s.map.to_record(&json!({"name": {"first": "x"}})).is_err(),
        "no id"
    );
}

#[test]
fn boolean_status_and_string_groups() {
    let s = source(with(json!({
        "fields": {"id": "/id", "active": "/enabled", "groups": "/groups"},
    })));
    let p = s
        .map
        .to_record(&json!({"id": "1", "enabled": false, "groups": "a;b"}))
        .expect("ok");
    assert!(!p.active);
    assert_eq!(p.groups.len(), 2);
    let p = s
        .map
        .to_record(&json!({"id": "2", "enabled": 1}))
        .expect("ok");
    assert!(p.active);
}

#[test]
fn link_header_parsing() {
    let mut h = HeaderMap::new();
    h.insert(
        "link",
        HeaderValue::from_static(
            "<https://x/api?after=1>; rel=\"self\", <https://x/api?after=2&limit=3>; rel=\"next\"",
        ),
    );
    assert_eq!(
        link_next(&h).as_deref(),
        Some("https://x/api?after=2&limit=3")
    );
    let mut h = HeaderMap::new();
    h.insert("link", HeaderValue::from_static("</p?page=1>; rel=prev"));
    assert_eq!(link_next(&h), None);
}

#[test]
fn query_building_replaces_the_parameter() {
    let u = Url::parse("http://h/x?status=all&page=9").expect("url");
    assert_eq!(
        with_query(&u, "page", "2").as_str(),
        "http://h/x?status=all&page=2"
    );
}

#[test]
fn records_pointer_and_errors() {
    let s = source(with(json!({"records_pointer": "/data/employees"})));
    assert_eq!(
        s.records(&json!({"data": {"employees": [1, 2]}}))
            .expect("ok")
            .len(),
        2
    );
    assert!(s.records(&json!({"data": {}})).is_err());
    assert!(s.records(&json!({"data": {"employees": {}}})).is_err());
    let s = source(base());
    assert_eq!(s.records(&json!([{"a": 1}])).expect("ok").len(), 1);
}

#[test]
fn config_errors_name_the_key() {
    assert!(err(json!({"fields": {"id": "/id"}})).contains("source.url"));
    assert!(err(json!({"url": "http://h"})).contains("source.fields"));
    assert!(err(json!({"url": "http://h", "fields": {}})).contains("id"));
    assert!(err(with(json!({"url": "ftp://h"}))).contains("source.url"));
    assert!(err(with(json!({"records_pointer": "data"}))).contains("source.records_pointer"));
    assert!(err(with(json!({"fields": {"id": "id"}}))).contains("source.fields.id"));
    assert!(err(with(json!({"fields": {"id": "/id", "mail": "/m"}}))).contains("mail"));
    assert!(err(with(json!({"pagination": "pages"}))).contains("source.pagination"));
    assert!(err(with(json!({"page_param": "p"}))).contains("source.page_param"));
    assert!(
        err(with(json!({"pagination": "page", "page_size": 10})))
            .contains("source.page_size_param")
    );
    assert!(
        err(with(json!({"pagination": "page", "next_pointer": "/next"})))
            .contains("source.next_pointer")
    );
    assert!(err(with(json!({"active_values": ["active"]}))).contains("source.active_values"));
    assert!(err(with(json!({"timeout_secs": "slow"}))).contains("source.timeout_secs"));
    assert!(err(with(json!({"auth_header": "bad header"}))).contains("source.auth_header"));
    assert!(err(with(json!({"auth_value": "a\nb"}))).contains("source.auth_value"));
    assert!(
        err(with(json!({"auth_value": "x", "auth_value_file": "f"}))).contains("source.auth_value")
    );
}

#[test]
fn secrets_and_queries_are_not_shown() {
    let s = source(with(
        json!({"url": "https://h/api?api_key=SECRET1", "auth_value": "Bearer SECRET2"}),
    ));
    assert!(!s.describe().contains("SECRET"));
    assert_eq!(
        shown(&Url::parse("https://u:p@h/x?k=v#f").expect("url")),
        "https://h/x"
    );
}

fn oauth2(extra: Value) -> Value {
    let mut v = with(json!({
        "auth": "oauth2", "token_url": "https://login.example/oauth2/token",
        "client_id": "roster", "client_secret": "CLIENT-SECRET-1", "scope": "employees:read  org:read"
    }));
    for (k, x) in extra.as_object().expect("object") {
        if x.is_null() {
            v.as_object_mut().expect("object").remove(k);
        } else {
            v[k] = x.clone();
        }
    }
    v
}

#[test]
fn oauth2_keys_are_checked_together() {
    let s = source(oauth2(json!({"client_auth": "post"})));
    let d = s.describe();
    assert!(d.ends_with(", OAuth2 client credentials"), "{d}");
    assert!(
        !d.contains("CLIENT-SECRET-1") && !d.contains("roster"),
        "{d}"
    );
    // A loopback token endpoint may be plain http (a local proxy, the tests).
    source(oauth2(json!({"token_url": "http://127.0.0.1:8080/token"})));
    source(oauth2(json!({"token_url": "http://localhost/token"})));
    source(oauth2(json!({"token_url": "http://[::1]:9/token"})));

    // The secret goes to the token endpoint: never over plain http to another host.
    let e = err(oauth2(json!({"token_url": "http://login.example/token"})));
    assert!(
        e.contains("source.token_url") && e.contains("https://"),
        "{e}"
    );
    for key in ["token_url", "client_id", "client_secret"] {
        let e = err(oauth2(json!({ key: null })));
        assert!(e.contains(&format!("source.{key}")), "{key}: {e}");
    }
    assert!(err(oauth2(json!({"client_id": " "}))).contains("source.client_id"));
    assert!(err(oauth2(json!({"scope": " "}))).contains("source.scope"));
    let e = err(oauth2(json!({"client_auth": "jwt"})));
    assert!(e.contains("source.client_auth"), "{e}");
    let e = err(oauth2(json!({"client_secret_file": "secret.txt"})));
    assert!(e.contains("source.client_secret"), "{e}");
    assert!(!e.contains("CLIENT-SECRET-1"), "{e}");
    // A static credential and OAuth2 do not mix, either way round.
    let e = err(oauth2(json!({"auth_value": "Bearer x"})));
    assert!(
        e.contains("source.auth_value") && e.contains("oauth2"),
        "{e}"
    );
    assert!(err(oauth2(json!({"auth_header": "X-Key"}))).contains("source.auth_header"));
    let e = err(with(json!({"token_url": "https://login.example/token"})));
    assert!(
        e.contains("source.token_url") && e.contains("only used with"),
        "{e}"
    );
    assert!(err(with(json!({"client_secret": "s"}))).contains("source.client_secret"));
    assert!(err(with(json!({"auth": "kerberos"}))).contains("source.auth"));
}

#[test]
fn start_and_end_dates_come_from_pointers() {
    let s = source(with(json!({
        "fields": {"id": "/employeeId", "start_date": "/employment/hireDate",
                   "end_date": "/employment/terminationDate"},
    })));
    let rec = json!({"employeeId": 7, "employment": {"hireDate": "2026-03-01",
                     "terminationDate": "2026-09-30T17:00:00-04:00"}});
    let p = s.map.to_record(&rec).expect("valid");
    assert_eq!(
        p.start_date.map(|w| w.to_string()).as_deref(),
        Some("2026-03-01")
    );
    assert_eq!(
        p.end_date.map(|w| w.to_string()).as_deref(),
        Some("2026-09-30T21:00:00Z")
    );
    let open = json!({"employeeId": 8, "employment": {"hireDate": "2026-03-01",
                      "terminationDate": null}});
    assert_eq!(s.map.to_record(&open).expect("valid").end_date, None);
    let bad = json!({"employeeId": 9, "employment": {"hireDate": 20260301}});
    let e = s.map.to_record(&bad).expect_err("a number is not a date");
    assert!(e.message.contains("`start_date`"), "{}", e.message);
    assert_eq!(e.id.as_deref(), Some("9"));
    let e = err(with(
        json!({"fields": {"id": "/id", "end_date": "terminationDate"}}),
    ));
    assert!(e.contains("source.fields.end_date"), "{e}");
}
