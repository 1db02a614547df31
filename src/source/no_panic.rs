//! Property tests: the file source and the record parser never panic, whatever the
//! input (issue 11, medium 4). Inputs mix arbitrary bytes and text with near-valid
//! records (the field names roster reads, odd values), so the checks reach past the
//! first syntax error. The strategies here are shared with each source's own
//! `no_panic` tests (SCIM, HTTP, LDAP).

use proptest::prelude::*;
use serde_json::Value;

use super::{FIELDS, file::read_file, parse_record};

/// Modest case counts, as the suite runs on 2 shared cores; `PROPTEST_CASES=5000` for a
/// deeper run by hand.
pub(crate) fn config() -> ProptestConfig {
    let default = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            default.cases
        } else {
            64
        },
        failure_persistence: None,
        ..default
    }
}

/// Keys roster or its sources look for, next to arbitrary ones.
const KEYS: &[&str] = &[
    "employeeId",
    "work",
    "name",
    "status",
    "teams",
    "login",
    "data",
    "employees",
    "next",
    "total",
    "schemas",
    "Resources",
    "totalResults",
    "startIndex",
    "itemsPerPage",
    "userName",
    "externalId",
    "emails",
    "value",
    "primary",
    "type",
    "givenName",
    "familyName",
    "phoneNumbers",
    "members",
    "display",
    "displayName",
    "groups",
    "active",
    "$ref",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "employeeNumber",
    "manager",
];

/// Values that mean something somewhere (ids, emails, booleans as text, dates, SCIM's
/// schema, a Link header) and edge cases.
const TEXTS: &[&str] = &[
    "",
    " ",
    "E1",
    "e1",
    "E1001",
    "a@b.io",
    "A@B.IO",
    "not-an-email",
    "true",
    "false",
    "yes",
    "0",
    "1",
    "-1",
    "1e999",
    "18446744073709551616",
    "Active",
    "inactive",
    "2026-01-01",
    "9999-99-99",
    "0000-00-00",
    "2026-02-30",
    "20260101000000Z",
    "2026-01-01T00:00:00+25:00",
    "+275760-09-13",
    "-0001-01-01",
    "urn:ietf:params:scim:api:messages:2.0:ListResponse",
    "<http://h/x?page=2>; rel=\"next\"",
    "drivers",
    "cn=a,dc=x",
    "\u{feff}",
    "\0",
    "é",
];

pub(crate) fn text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        3 => prop::sample::select(TEXTS).prop_map(String::from),
        2 => any::<String>(),
        2 => "[a-zA-Z0-9@._,;\" =-]{0,16}",
    ]
}

pub(crate) fn key() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        3 => prop::sample::select(FIELDS).prop_map(String::from),
        3 => prop::sample::select(KEYS).prop_map(String::from),
        2 => text(),
    ]
}

/// Any JSON value, leaning towards objects with the keys sources read.
pub(crate) fn json_value() -> impl Strategy<Value = Value> + Clone {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A record-like object: mostly roster's own field names.
pub(crate) fn record() -> impl Strategy<Value = Value> + Clone {
    prop::collection::vec((key(), json_value()), 0..10)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

fn csv_cell() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => text(),
        1 => text().prop_map(|t| format!("\"{}\"", t.replace('"', "\"\""))),
        1 => Just("\"unclosed".to_string()),
    ]
}

/// A file's bytes in one format: arbitrary, or near-valid for it.
fn file_bytes(ext: &'static str) -> BoxedStrategy<Vec<u8>> {
    let near: BoxedStrategy<String> = match ext {
        "json" => prop::collection::vec(record(), 0..6)
            .prop_map(|r| Value::Array(r).to_string())
            .boxed(),
        "jsonl" => prop::collection::vec(prop_oneof![record(), json_value()], 0..6)
            .prop_map(|r| {
                r.iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .boxed(),
        _ => (
            prop::collection::vec(key(), 0..6),
            prop::collection::vec(prop::collection::vec(csv_cell(), 0..7), 0..5),
        )
            .prop_map(|(header, rows)| {
                let mut out = header.join(",");
                for row in rows {
                    out.push('\n');
                    out.push_str(&row.join(","));
                }
                out
            })
            .boxed(),
    };
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        3 => near.clone().prop_map(String::into_bytes),
        1 => near.prop_map(|t| format!("\u{feff}{t}").into_bytes()),
        1 => (json_value(), any::<bool>()).prop_map(|(v, bom)| {
            let t = v.to_string();
            if bom { format!("\u{feff}{t}") } else { t }.into_bytes()
        }),
    ]
    .boxed()
}

fn read(ext: &str, bytes: &[u8]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(format!("people.{ext}"));
    std::fs::write(&path, bytes).expect("write");
    // Any outcome but a panic: a snapshot, or an error naming what is wrong.
    let _ = read_file(&path);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_json_file_never_panics(bytes in file_bytes("json")) {
        read("json", &bytes);
    }

    #[test]
    fn a_jsonl_file_never_panics(bytes in file_bytes("jsonl")) {
        read("jsonl", &bytes);
    }

    #[test]
    fn a_csv_file_never_panics(bytes in file_bytes("csv")) {
        read("csv", &bytes);
    }

    #[test]
    fn a_record_never_panics(v in prop_oneof![record(), json_value()]) {
        let _ = parse_record(&v);
    }
}
