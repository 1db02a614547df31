//! Validating one source record into a `Person`.
//!
//! Every source hands over a record's fields as read (`raw::RawRecord`: the file source
//! straight from its parser, the others through `parse_record` from a JSON value), and
//! `validate` decides, in one place, what a valid person is.

use std::collections::BTreeMap;

use serde_json::Value;

use super::raw::{Field, RawAttributes, RawGroups, RawRecord, Scalar, scalar_kind, trimmed};
use crate::model::{Groups, Person, PersonId, When};

/// Every field a person record may have.
pub const FIELDS: &[&str] = &[
    "id",
    "email",
    "username",
    "first_name",
    "last_name",
    "phone",
    "active",
    "groups",
    "attributes",
    "start_date",
    "end_date",
];

/// Why a record is invalid, plus what could be salvaged to protect its person.
#[derive(Debug)]
pub struct RecordError {
    pub id: Option<String>,
    pub email: Option<String>,
    pub message: String,
}

/// Turns one record into a person.
///
/// # Errors
/// A `RecordError` with a message naming the field at fault.
pub fn parse_record(value: &Value) -> Result<Person, RecordError> {
    validate(raw_of(value))
}

/// A JSON value's fields as read (`serde_json` maps hold each key once).
fn raw_of(value: &Value) -> RawRecord {
    let Some(obj) = value.as_object() else {
        return RawRecord {
            not_object: Some(value_kind(value)),
            ..RawRecord::default()
        };
    };
    let mut r = RawRecord::default();
    for (key, v) in obj {
        match Field::of(key) {
            None => {
                r.unknown.get_or_insert_with(|| key.clone());
            }
            Some(Field::Groups) => {
                r.groups = match v {
                    Value::Null => RawGroups::Null,
                    Value::Array(items) => {
                        let groups: Option<Vec<String>> = items
                            .iter()
                            .map(|g| match g {
                                Value::String(s) if !s.trim().is_empty() => {
                                    Some(s.trim().to_string())
                                }
                                _ => None,
                            })
                            .collect();
                        groups.map_or(RawGroups::BadList, RawGroups::List)
                    }
                    Value::String(s) => RawGroups::Str(s.clone()),
                    v => RawGroups::Other(value_kind(v)),
                }
            }
            Some(Field::Attributes) => {
                r.attributes = match v {
                    Value::Null => RawAttributes::Null,
                    Value::Object(map) => {
                        let mut out = BTreeMap::new();
                        let mut bad = None;
                        for (k, v) in map {
                            match v {
                                Value::Null => {}
                                Value::String(s) => {
                                    out.insert(k.clone(), s.clone());
                                }
                                Value::Bool(b) => {
                                    out.insert(k.clone(), b.to_string());
                                }
                                Value::Number(n) => {
                                    out.insert(k.clone(), n.to_string());
                                }
                                v => {
                                    bad.get_or_insert_with(|| (k.clone(), value_kind(v)));
                                }
                            }
                        }
                        match bad {
                            Some((k, kind)) => RawAttributes::Bad(k, kind),
                            None => RawAttributes::Map(out),
                        }
                    }
                    v => RawAttributes::Other(value_kind(v)),
                }
            }
            Some(field) => {
                if let Some(slot) = r.scalar(field) {
                    *slot = match v {
                        Value::Null => Scalar::Null,
                        Value::String(s) => Scalar::Str(s.clone()),
                        Value::Number(n) => Scalar::Num(n.to_string()),
                        Value::Bool(b) => Scalar::Bool(*b),
                        v => Scalar::Other(value_kind(v)),
                    };
                }
            }
        }
    }
    r
}

/// The one definition of a valid person: a record's fields as read, checked field by
/// field in a fixed order, the first fault named.
///
/// # Errors
/// A `RecordError` naming the field at fault, with the id and email it still carries
/// (they protect an already-linked person, see `plan::held_ids`).
pub(crate) fn validate(r: RawRecord) -> Result<Person, RecordError> {
    if let Some(kind) = r.not_object {
        return Err(RecordError {
            id: None,
            email: None,
            message: format!("expected a JSON object, found {kind}"),
        });
    }
    let salvage_id = match &r.id {
        Scalar::Str(s) => Some(s.trim()),
        Scalar::Num(n) => Some(n.as_str()),
        _ => None,
    }
    .filter(|s| !s.is_empty())
    .map(String::from);
    let salvage_email = match &r.email {
        Scalar::Str(s) => Some(s.trim().to_string()),
        _ => None,
    };
    let fail = |message: String| RecordError {
        id: salvage_id.clone(),
        email: salvage_email.clone(),
        message,
    };

    if let Some(key) = &r.duplicate {
        return Err(fail(format!(
            "duplicate key `{key}` (which of its values is meant cannot be known)"
        )));
    }
    if let Some(unknown) = &r.unknown {
        return Err(fail(format!(
            "unknown field `{unknown}` (expected one of: {})",
            FIELDS.join(", ")
        )));
    }
    let id = match r.id {
        Scalar::Null => return Err(fail("missing `id`".into())),
        Scalar::Str(s) => trimmed(s),
        Scalar::Num(n) => n,
        other => {
            return Err(fail(format!(
                "`id` must be a string, found {}",
                scalar_kind(&other)
            )));
        }
    };
    if id.is_empty() {
        return Err(fail("`id` is empty".into()));
    }
    let email = opt_string("email", r.email).map_err(&fail)?;
    if let Some(e) = &email
        && !is_plausible_email(e)
    {
        return Err(fail(format!("malformed email `{e}`")));
    }
    let active = match &r.active {
        Scalar::Null => true,
        Scalar::Bool(b) => *b,
        Scalar::Str(s) => parse_bool(s)
            .ok_or_else(|| fail(format!("`active` must be true or false, found `{s}`")))?,
        other => {
            return Err(fail(format!(
                "`active` must be true or false, found {}",
                scalar_kind(other)
            )));
        }
    };
    let groups = match r.groups {
        RawGroups::Null => Groups::default(),
        RawGroups::List(groups) => groups.into_iter().collect(),
        RawGroups::BadList => {
            return Err(fail("`groups` must be a list of non-empty strings".into()));
        }
        // CSV and flat sources give one `;`-separated string.
        RawGroups::Str(s) => s
            .split(';')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(String::from)
            .collect(),
        RawGroups::Other(kind) => {
            return Err(fail(format!("`groups` must be a list, found {kind}")));
        }
    };
    let attributes = match r.attributes {
        RawAttributes::Null => BTreeMap::new(),
        RawAttributes::Map(map) => map,
        RawAttributes::Bad(name, kind) => {
            return Err(fail(format!(
                "attribute `{name}` must be a string, found {kind}"
            )));
        }
        RawAttributes::Other(kind) => {
            return Err(fail(format!(
                "`attributes` must be an object, found {kind}"
            )));
        }
    };
    let start_date = opt_when("start_date", r.start_date).map_err(&fail)?;
    let end_date = opt_when("end_date", r.end_date).map_err(&fail)?;
    Ok(Person {
        id: PersonId(id),
        email,
        username: opt_string("username", r.username).map_err(&fail)?,
        first_name: opt_string("first_name", r.first_name).map_err(&fail)?,
        last_name: opt_string("last_name", r.last_name).map_err(&fail)?,
        phone: opt_string("phone", r.phone).map_err(&fail)?,
        active,
        groups,
        attributes,
        start_date,
        end_date,
    })
}

/// An optional text field; empty or blank counts as absent.
fn opt_string(key: &str, value: Scalar) -> Result<Option<Box<str>>, String> {
    match value {
        Scalar::Null => Ok(None),
        Scalar::Str(s) => {
            let t = trimmed(s);
            Ok((!t.is_empty()).then(|| t.into_boxed_str()))
        }
        other => Err(format!(
            "`{key}` must be a string, found {}",
            scalar_kind(&other)
        )),
    }
}

/// An optional date (`start_date`, `end_date`); empty or blank counts as absent.
fn opt_when(key: &str, value: Scalar) -> Result<Option<When>, String> {
    match opt_string(key, value)? {
        None => Ok(None),
        Some(text) => When::parse(&text)
            .map(Some)
            .map_err(|e| format!("`{key}`: {e}")),
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        "" => Some(true),
        _ => None,
    }
}

/// One `@`, something on each side, a dot in the domain, no white space. Vendors do the
/// full check; this catches the typos that would otherwise fail at every vendor.
fn is_plausible_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(char::is_whitespace)
}

/// How a JSON value's type is named in messages ("a string", "a list", ...).
pub(crate) fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_err(v: Value, needle: &str) {
        let e = parse_record(&v).expect_err("invalid");
        assert!(e.message.contains(needle), "{} !~ {needle}", e.message);
    }

    #[test]
    fn full_record_parses() {
        let p = parse_record(&json!({
            "id": " E1 ", "email": "a@b.io", "first_name": "Ann", "active": false,
            "groups": ["drivers", "ops"], "attributes": {"motive.role": "driver", "n": 3}
        }))
        .expect("valid");
        assert_eq!(p.id.as_str(), "E1");
        assert!(!p.active);
        assert!(p.groups.contains("ops"));
        assert_eq!(p.attributes["n"], "3");
    }

    #[test]
    fn invalid_records_say_why() {
        check_err(json!({"email": "a@b.io"}), "missing `id`");
        check_err(json!({"id": ""}), "empty");
        check_err(json!({"id": "1", "email": "nope"}), "malformed email");
        check_err(json!({"id": "1", "email": "a@b"}), "malformed email");
        check_err(json!({"id": "1", "active": "maybe"}), "`active`");
        check_err(json!({"id": "1", "active": 3}), "`active`");
        check_err(
            json!({"id": "1", "frist_name": "x"}),
            "unknown field `frist_name`",
        );
        check_err(json!([1]), "object");
    }

    #[test]
    fn invalid_record_keeps_id_and_email_for_protection() {
        let e = parse_record(&json!({"id": "9", "email": "x@y.io", "active": "?"}))
            .expect_err("invalid");
        assert_eq!(e.id.as_deref(), Some("9"));
        assert_eq!(e.email.as_deref(), Some("x@y.io"));
    }

    #[test]
    fn every_person_field_has_its_slot() {
        for name in FIELDS {
            let field = Field::of(name).expect("a field");
            assert_eq!(field.name(), *name);
        }
        assert!(Field::of("frist_name").is_none());
    }

    #[test]
    fn start_and_end_dates_are_read_or_name_the_field() {
        let p = parse_record(&json!({
            "id": "1", "start_date": "2026-03-01", "end_date": "2026-09-30T17:00:00+02:00"
        }))
        .expect("valid");
        assert_eq!(
            p.start_date.map(|w| w.to_string()).as_deref(),
            Some("2026-03-01")
        );
        assert_eq!(
            p.end_date.map(|w| w.to_string()).as_deref(),
            Some("2026-09-30T15:00:00Z")
        );
        let blank = parse_record(&json!({"id": "1", "start_date": " "})).expect("blank");
        assert_eq!(blank.start_date, None);
        check_err(
            json!({"id": "1", "start_date": "next week"}),
            "`start_date`: `next week`",
        );
        check_err(
            json!({"id": "1", "end_date": "2026-09-30T17:00"}),
            "`end_date`",
        );
        check_err(
            json!({"id": "1", "end_date": 20260930}),
            "`end_date` must be a string",
        );
        let e = parse_record(&json!({"id": "9", "start_date": "2026-02-30"})).expect_err("bad");
        assert_eq!(e.id.as_deref(), Some("9"), "the person is protected");
    }

    #[test]
    fn csv_style_strings_are_accepted() {
        let p = parse_record(&json!({"id": "1", "active": "no", "groups": "a; b;"})).expect("ok");
        assert!(!p.active);
        assert_eq!(p.groups.len(), 2);
    }
}
