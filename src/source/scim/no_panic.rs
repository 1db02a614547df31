//! Property tests: SCIM list pages, users and groups never make roster panic, whatever
//! the service provider sends (issue 11, medium 4).

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::groups::Membership;
use super::mapping::{ListPage, Mapping};
use super::{ENTERPRISE, IdField, LIST_RESPONSE};
use crate::source::no_panic::{config, json_value, record};

fn mappings() -> [Mapping; 2] {
    let attributes = BTreeMap::from([
        ("hr.title".to_string(), "title".to_string()),
        (
            "motive.eld_mode".to_string(),
            "urn:example:fleet:1.0:User:eldMode".to_string(),
        ),
    ]);
    [
        Mapping {
            id_field: IdField::Id,
            attributes: attributes.clone(),
            enterprise: true,
            start_date: Some("urn:example:fleet:1.0:User:startDate".into()),
            end_date: Some("urn:example:fleet:1.0:User:endDate".into()),
        },
        Mapping {
            id_field: IdField::ExternalId,
            attributes,
            enterprise: false,
            start_date: None,
            end_date: None,
        },
    ]
}

/// A resource shaped like a SCIM user or group, with arbitrary values in its places.
fn resource() -> impl Strategy<Value = Value> {
    (
        record(),
        json_value(),
        json_value(),
        json_value(),
        json_value(),
    )
        .prop_map(|(mut r, emails, name, members, enterprise)| {
            if let Value::Object(o) = &mut r {
                o.insert("emails".into(), emails);
                o.insert("name".into(), name);
                o.insert("members".into(), members);
                o.insert(ENTERPRISE.into(), enterprise);
            }
            r
        })
}

fn page() -> impl Strategy<Value = Value> {
    prop_oneof![
        json_value(),
        (
            prop::collection::vec(resource(), 0..5),
            json_value(),
            json_value()
        )
            .prop_map(
                |(resources, total, start)| json!({"schemas": [LIST_RESPONSE],
                "totalResults": total, "startIndex": start, "Resources": resources})
            ),
    ]
}

fn located(resources: Vec<Value>) -> Vec<(String, Value)> {
    resources
        .into_iter()
        .enumerate()
        .map(|(i, r)| (format!("resource {i}"), r))
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_list_page_and_its_users_never_panic(body in page()) {
        if let Ok(page) = ListPage::parse(&body) {
            for m in mappings() {
                let _ = m.snapshot(located(page.resources.clone()), None);
            }
        }
    }

    #[test]
    fn groups_and_users_with_them_never_panic(
        groups in prop::collection::vec(resource(), 0..5),
        users in prop::collection::vec(resource(), 0..5),
    ) {
        if let Ok(membership) = Membership::from_groups(&located(groups)) {
            for m in mappings() {
                let _ = m.snapshot(located(users.clone()), Some(&membership));
            }
        }
    }
}
