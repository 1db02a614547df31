//! The SCIM source's mapping, paging and config checks.

use super::*;
use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::config::ConfigError;

fn build(v: Value) -> Result<ScimSource, ConfigError> {
    let o = crate::source::test_options(v)?;
    ScimSource::from_options(o, &crate::source::test_build())
}

fn err(v: Value) -> String {
    match build(v) {
        Ok(_) => panic!("expected a config error"),
        Err(e) => e.to_string(),
    }
}

fn mapping(id_field: IdField) -> Mapping {
    Mapping {
        id_field,
        attributes: BTreeMap::from([
            ("hr.title".to_string(), "title".to_string()),
            (
                "motive.eld_mode".to_string(),
                "urn:example:fleet:1.0:User:eldMode".to_string(),
            ),
        ]),
        enterprise: true,
        start_date: None,
        end_date: None,
    }
}

fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "E1001",
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [
            {"value": "babs@home.example", "type": "home"},
            {"value": "bjensen@example.com", "type": "work", "primary": true}
        ],
        "phoneNumbers": [
            {"value": "555-555-4444", "type": "mobile"},
            {"value": "555-555-8377", "type": "work"}
        ],
        "active": true,
        "title": "Tour Guide",
        "groups": [{"value": "e9e3", "display": "drivers"}, {"value": "fc34"}],
        ENTERPRISE: {
            "employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios",
            "division": "Theme Park", "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
        },
        "urn:example:fleet:1.0:User": {"eldMode": "logs"}
    })
}

#[test]
fn rfc7643_user_maps_to_a_person() {
    let p = mapping(IdField::Id)
        .to_record(&user(), None)
        .expect("valid");
    assert_eq!(p.id.as_str(), "2819c223-7f76-453a-919d-413861904646");
    assert_eq!(p.username.as_deref(), Some("bjensen"));
    assert_eq!(p.first_name.as_deref(), Some("Barbara"));
    assert_eq!(p.last_name.as_deref(), Some("Jensen"));
    assert_eq!(
        p.email.as_deref(),
        Some("bjensen@example.com"),
        "primary wins"
    );
    assert_eq!(
        p.phone.as_deref(),
        Some("555-555-8377"),
        "work before mobile"
    );
    assert!(p.active);
    assert!(p.groups.contains("drivers") && p.groups.contains("fc34"));
    let a = &p.attributes;
    assert_eq!(a["scim.employee_number"], "701984");
    assert_eq!(a["scim.department"], "Tour Operations");
    assert_eq!(a["scim.cost_center"], "4130");
    assert_eq!(a["scim.organization"], "Universal Studios");
    assert_eq!(a["scim.division"], "Theme Park");
    assert_eq!(a["scim.manager"], "26118915-6090-4610-87e4-49d8ca9f808d");
    assert_eq!(a["hr.title"], "Tour Guide");
    assert_eq!(a["motive.eld_mode"], "logs");
}

#[test]
fn external_id_and_inactive() {
    let mut u = user();
    u["active"] = json!(false);
    let p = mapping(IdField::ExternalId)
        .to_record(&u, None)
        .expect("valid");
    assert_eq!(p.id.as_str(), "E1001");
    assert!(!p.active);
    u.as_object_mut().expect("object").remove("externalId");
    let e = mapping(IdField::ExternalId)
        .to_record(&u, None)
        .expect_err("no externalId");
    assert!(e.message.contains("externalId"));
    assert_eq!(e.email.as_deref(), Some("bjensen@example.com"));
}

#[test]
fn first_email_when_none_is_primary() {
    let u = json!({"id": "1", "emails": [{"value": ""}, {"value": "a@b.io"}, {"value": "c@d.io"}]});
    let p = mapping(IdField::Id).to_record(&u, None).expect("valid");
    assert_eq!(p.email.as_deref(), Some("a@b.io"));
}

#[test]
fn list_response_parsing() {
    let ok = ListPage::parse(&json!({"schemas": [LIST_RESPONSE], "totalResults": "3",
        "startIndex": 1, "itemsPerPage": 1, "Resources": [{"id": "1"}]}))
    .expect("ok");
    assert_eq!(
        (ok.total, ok.start_index, ok.resources.len()),
        (3, Some(1), 1)
    );
    let empty =
        ListPage::parse(&json!({"schemas": [LIST_RESPONSE], "totalResults": 0})).expect("ok");
    assert!(empty.resources.is_empty());
    assert!(
        ListPage::parse(&json!({"Resources": []})).is_err(),
        "no totalResults"
    );
    assert!(
        ListPage::parse(
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "totalResults": 1})
        )
        .is_err()
    );
    assert!(ListPage::parse(&json!([])).is_err());
}

#[test]
fn page_urls_carry_filter_and_paging() {
    let s = build(json!({
        "base_url": "https://idp.example/scim/v2/", "token": "t0ken",
        "filter": "active eq true", "count": 50
    }))
    .expect("valid");
    let u = s.page_url(List::Users, 51, 50);
    assert_eq!(u.path(), "/scim/v2/Users");
    assert_eq!(
        u.query(),
        Some("filter=active+eq+true&startIndex=51&count=50")
    );
    assert!(!s.describe().contains("t0ken"));
}

#[test]
fn config_errors_name_the_key() {
    assert!(err(json!({"token": "x"})).contains("source.base_url"));
    assert!(err(json!({"base_url": "https://h/scim/v2"})).contains("source.token"));
    assert!(err(json!({"base_url": "nope", "token": "x"})).contains("source.base_url"));
    assert!(
        err(json!({"base_url": "https://h", "token": "x", "count": 0})).contains("source.count")
    );
    assert!(
        err(json!({"base_url": "https://h", "token": "x", "count": "x"})).contains("source.count")
    );
    assert!(
        err(json!({"base_url": "https://h", "token": "x", "id_field": "uuid"}))
            .contains("source.id_field")
    );
    assert!(err(json!({"base_url": "https://h", "token": "x", "filtr": "a"})).contains("filtr"));
}

#[test]
fn groups_from_shapes_the_page_urls() {
    let s = build(json!({
        "base_url": "https://idp.example/scim/v2", "token": "t0ken",
        "filter": "active eq true", "groups_from": "groups"
    }))
    .expect("valid");
    // /Users is spared computing `groups`; /Groups is asked for what membership needs,
    // and the users' filter is not sent there.
    assert_eq!(
        s.page_url(List::Users, 1, 100).query(),
        Some("filter=active+eq+true&excludedAttributes=groups&startIndex=1&count=100")
    );
    let g = s.page_url(List::Groups, 3, 100);
    assert_eq!(g.path(), "/scim/v2/Groups");
    assert_eq!(
        g.query(),
        Some("attributes=displayName%2Cmembers&startIndex=3&count=100")
    );
    assert!(s.describe().contains("groups_from groups"));

    // `auto` (the default) must see `User.groups` to decide, so it asks for it.
    let s = build(json!({"base_url": "https://idp.example/scim/v2", "token": "t"})).expect("valid");
    assert_eq!(s.groups_from, GroupsFrom::Auto);
    assert_eq!(
        s.page_url(List::Users, 1, 10).query(),
        Some("startIndex=1&count=10")
    );
    let e = err(json!({"base_url": "https://h", "token": "x", "groups_from": "both"}));
    assert!(e.contains("source.groups_from"), "{e}");
}

#[test]
fn groups_from_the_groups_endpoint_replace_user_groups_by_scim_id() {
    let membership = Membership::from_groups(&[
        (
            "g1".into(),
            json!({"id": "g-drv", "displayName": "drivers", "members": [
                {"value": "2819c223-7f76-453a-919d-413861904646", "type": "User"},
                {"value": "g-night", "type": "Group"}]}),
        ),
        (
            "g2".into(),
            json!({"id": "g-night", "displayName": "night", "members": [{"value": "other"}]}),
        ),
    ])
    .expect("consistent");
    // The person's id is its externalId; the members name its SCIM id. The stale
    // `User.groups` the resource carries is not used.
    let p = mapping(IdField::ExternalId)
        .to_record(&user(), Some(&membership))
        .expect("valid");
    assert_eq!(p.id.as_str(), "E1001");
    let groups: Vec<&str> = p.groups.iter().map(String::as_str).collect();
    assert_eq!(groups, ["drivers"]);
    let mut u = user();
    u["id"] = json!("other");
    let p = mapping(IdField::Id)
        .to_record(&u, Some(&membership))
        .expect("valid");
    let groups: Vec<&str> = p.groups.iter().map(String::as_str).collect();
    assert_eq!(groups, ["drivers", "night"]);
    // In no group: no groups, whatever `User.groups` said.
    u["id"] = json!("nobody");
    let p = mapping(IdField::Id)
        .to_record(&u, Some(&membership))
        .expect("valid");
    assert!(p.groups.is_empty());
}

#[test]
fn start_and_end_dates_come_from_attribute_paths() {
    let m = Mapping {
        start_date: Some("urn:example:fleet:1.0:User:startDate".into()),
        end_date: Some("urn:example:fleet:1.0:User:endDate".into()),
        ..mapping(IdField::ExternalId)
    };
    let mut u = user();
    u["urn:example:fleet:1.0:User"]["startDate"] = json!("2026-03-01T08:00:00+01:00");
    u["urn:example:fleet:1.0:User"]["endDate"] = json!("2026-09-30");
    let p = m.to_record(&u, None).expect("valid");
    assert_eq!(
        p.start_date.map(|w| w.to_string()).as_deref(),
        Some("2026-03-01T07:00:00Z")
    );
    assert_eq!(
        p.end_date.map(|w| w.to_string()).as_deref(),
        Some("2026-09-30")
    );
    u["urn:example:fleet:1.0:User"]["endDate"] = json!("30/09/2026");
    let e = m.to_record(&u, None).expect_err("a bad date");
    assert!(e.message.contains("`end_date`"), "{}", e.message);
    assert_eq!(e.id.as_deref(), Some("E1001"), "the person is protected");
    assert!(
        err(json!({"base_url": "https://h", "token": "x", "start_date_attribute": " "}))
            .contains("source.start_date_attribute")
    );
}
