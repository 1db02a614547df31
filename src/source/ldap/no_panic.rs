//! Property tests: LDAP entries (any DN, any attribute bytes) never make roster panic
//! on their way to a person (issue 11, medium 4).

use proptest::prelude::*;
use serde_json::Value;

use super::LdapSource;
use super::mapping::{Entry, Mapping, first_rdn_value, guid_text, normalize_dn};
use super::options::{DEFAULT_GROUP_FILTER, Groups};
use crate::source::no_panic::{config, text};

fn mapping(extra: &[(&str, Value)]) -> Mapping {
    let mut o = serde_json::Map::new();
    o.insert("url".into(), "ldap://127.0.0.1:389".into());
    o.insert("base_dn".into(), "dc=example,dc=com".into());
    for (k, v) in extra {
        o.insert((*k).into(), v.clone());
    }
    let o = crate::source::test_options(Value::Object(o)).expect("options");
    let s = LdapSource::from_options(o, &crate::source::test_build()).expect("source");
    s.config.map.clone()
}

/// Active Directory's attributes, OpenLDAP's, and a group search.
fn mappings() -> Vec<Mapping> {
    let ad = mapping(&[
        ("id_attribute", Value::from("objectGUID")),
        ("username_attribute", Value::from("sAMAccountName")),
        ("active_mode", Value::from("ad")),
        (
            "attributes",
            serde_json::json!({"motive.eld_mode": "eldMode"}),
        ),
    ]);
    let plain = mapping(&[
        ("start_date_attribute", Value::from("startDate")),
        ("end_date_attribute", Value::from("endDate")),
        ("disabled_attribute", Value::from("pwdAccountLockedTime")),
        ("disabled_values", serde_json::json!(["*"])),
    ]);
    let search = Mapping {
        groups: Groups::Search {
            base_dn: "ou=groups,dc=x".into(),
            filter: DEFAULT_GROUP_FILTER.into(),
            member_attribute: "member".into(),
        },
        ..mapping(&[("group_name", Value::from("dn"))])
    };
    vec![ad, plain, search]
}

const ATTRS: &[&str] = &[
    "objectGUID",
    "entryUUID",
    "uid",
    "sAMAccountName",
    "givenName",
    "sn",
    "cn",
    "mail",
    "telephoneNumber",
    "userAccountControl",
    "memberOf",
    "member",
    "eldMode",
    "pwdAccountLockedTime",
    "employeeNumber",
    "startDate",
    "endDate",
];

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => text().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..20),
        1 => prop::collection::vec(any::<u8>(), 16..=16),
    ]
}

fn dn() -> impl Strategy<Value = String> {
    prop_oneof![
        text(),
        "(cn|uid|CN|OU|DC)=[a-zA-Z\\\\, =+]{0,10}(,[a-zA-Z]{1,3}=[a-z\\\\]{0,5}){0,3}",
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        dn(),
        prop::collection::vec(
            (
                prop_oneof![prop::sample::select(ATTRS).prop_map(String::from), text()],
                prop::collection::vec(bytes(), 0..3),
            ),
            0..8,
        ),
    )
        .prop_map(|(dn, attrs)| Entry {
            dn,
            attrs: attrs
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn entries_never_panic(
        users in prop::collection::vec(entry(), 0..5),
        groups in prop::collection::vec(entry(), 0..4),
    ) {
        for m in mappings() {
            let _ = m.snapshot(&users, None);
            let _ = m.snapshot(&users, Some(&groups));
        }
    }

    #[test]
    fn dn_and_guid_helpers_never_panic(s in dn(), raw in bytes()) {
        let _ = first_rdn_value(&s);
        let _ = normalize_dn(&s);
        let _ = guid_text(&raw);
    }
}
