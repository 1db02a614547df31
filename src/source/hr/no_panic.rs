//! Property tests: a page of the HTTP source, its records and its `Link` header never
//! make roster panic, whatever the server sends (issue 11, medium 4).

use std::sync::LazyLock;

use proptest::prelude::*;
use reqwest::header::{HeaderMap, HeaderValue, LINK};
use serde_json::{Value, json};

use super::HttpSource;
use super::pages::link_next;
use crate::source::no_panic::{config, json_value, record, text};

/// Mappings that read the record in different ways: plain pointers, status values,
/// group objects, a nested records pointer.
static SOURCES: LazyLock<Vec<HttpSource>> = LazyLock::new(|| {
    [
        json!({"url": "http://127.0.0.1:1/hr", "fields": {"id": "/id", "email": "/email",
               "first_name": "/first_name", "last_name": "/last_name", "phone": "/phone",
               "active": "/active", "groups": "/groups", "username": "/username",
               "start_date": "/start_date", "end_date": "/end_date"}}),
        json!({"url": "http://127.0.0.1:1/hr", "records_pointer": "/data/employees",
               "fields": {"id": "/employeeId", "email": "/work/email", "first_name": "/name/first",
                          "active": "/status", "groups": "/teams", "username": "/login"},
               "group_item_pointer": "/name", "active_values": ["Active", "on_leave"],
               "attributes": {"motive.eld_mode": "/fleet/eld", "hr.grade": "/grade"}}),
    ]
    .into_iter()
    .map(|v| {
        let o = crate::source::test_options(v).expect("options");
        HttpSource::from_options(o, &crate::source::test_build()).expect("source")
    })
    .collect()
});

fn page() -> impl Strategy<Value = Value> {
    prop_oneof![
        json_value(),
        prop::collection::vec(record(), 0..6).prop_map(Value::Array),
        prop::collection::vec(record(), 0..6)
            .prop_map(|r| json!({"data": {"employees": r}, "next": "x", "total": 3})),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_page_and_its_records_never_panic(body in page()) {
        for s in SOURCES.iter() {
            if let Ok(records) = s.records(&body) {
                let located = records
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| (format!("record {i}"), r))
                    .collect();
                let _ = s.map.snapshot(located);
            }
            let _ = s.map.to_record(&body);
        }
    }

    #[test]
    fn a_link_header_never_panics(values in prop::collection::vec(text(), 0..3)) {
        let mut headers = HeaderMap::new();
        for v in values {
            if let Ok(v) = HeaderValue::from_str(&v) {
                headers.append(LINK, v);
            }
        }
        let _ = link_next(&headers);
    }
}
