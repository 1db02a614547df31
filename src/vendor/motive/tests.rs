//! Unit tests of `motive`.

use super::wire::field_value;
use super::*;

fn build_in(tables: &str, name: &str) -> Result<Motive, ConfigError> {
    crate::vendor::testing::test_build(tables, name, |v| match &v.kind {
        super::super::VendorKind::Motive(o) => {
            Motive::new(v, o, crate::vendor::testing::test_http(name))
        }
        other => panic!("not motive: {other:?}"),
    })
}

fn motive(extra: &str) -> Motive {
    build_in(
        &format!("[vendors.motive]\ntype = \"motive\"\napi_key = \"k\"\n{extra}"),
        "motive",
    )
    .expect("motive")
}

fn person() -> Person {
    let mut p = Person::new("E1");
    p.first_name = Some("Ann".into());
    p.last_name = Some("Lee".into());
    p.email = Some("ann@x.io".into());
    p
}

#[test]
fn map_combines_person_defaults_and_attributes() {
    let m = motive(
        "[vendors.motive.defaults]\nrole = \"driver\"\neld_mode = \"logs\"\ntime_tracking_mode = \"logs\"",
    );
    let mut p = person();
    p.attributes.insert("motive.eld_mode".into(), "None".into());
    p.attributes
        .insert("other.eld_mode".into(), "exempt".into());
    let f = m.map(&p).expect("maps");
    assert_eq!(f["eld_mode"], "none");
    assert_eq!(f["role"], "driver");
    assert_eq!(f["email"], "ann@x.io");
    assert!(!f.contains_key("phone"));
}

#[test]
fn invalid_mode_pair_is_a_clear_skip() {
    let m =
        motive("[vendors.motive.defaults]\neld_mode = \"exempt\"\ntime_tracking_mode = \"logs\"");
    let e = m.map(&person()).expect_err("invalid pair");
    assert!(
        e.contains("time_tracking_mode `logs` cannot go with eld_mode `exempt`"),
        "{e}"
    );
}

#[test]
fn unknown_vendor_attribute_and_default_are_errors() {
    let m = motive("");
    let mut p = person();
    p.attributes.insert("motive.colour".into(), "red".into());
    assert!(m.map(&p).expect_err("unknown").contains("motive.colour"));
    let e = build_in(
        "[vendors.motive]\ntype = \"motive\"\napi_key = \"k\"\n[vendors.motive.defaults]\ncolour = \"red\"",
        "motive",
    )
    .err()
    .expect("refused");
    assert!(e.to_string().contains("vendors.motive.defaults.colour"));
}

#[test]
fn credentials_are_required_and_exclusive() {
    let table = "[vendors.m]\ntype = \"motive\"\n";
    let e = build_in(table, "m").err().expect("refused");
    assert!(e.to_string().contains("vendors.m.api_key"), "{e}");
    assert!(build_in(&format!("{table}api_key = \"a\"\ntoken = \"b\"\n"), "m").is_err());
    let e = build_in(&format!("{table}apikey = \"a\"\n"), "m")
        .err()
        .expect("refused");
    assert!(e.to_string().contains("vendors.m.apikey"), "{e}");
}

#[test]
fn wire_types_follow_motive() {
    assert_eq!(wire_value("metric_units", "true"), json!(true));
    assert_eq!(wire_value("group_ids", "1;2"), json!([1, 2]));
    assert_eq!(wire_value("role", "driver"), json!("driver"));
    assert_eq!(field_value(&json!([1, 2])).as_deref(), Some("1;2"));
}
