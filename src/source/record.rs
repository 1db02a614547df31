//! Validating one source record (a JSON object) into a `Person`.
//!
//! Shared by every source that yields JSON-shaped records, so that "what is a valid
//! person" is decided in one place.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

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
    let Some(obj) = value.as_object() else {
        return Err(RecordError {
            id: None,
            email: None,
            message: format!("expected a JSON object, found {}", value_kind(value)),
        });
    };
    let salvage_id = obj
        .get("id")
        .and_then(value_as_id)
        .filter(|s| !s.is_empty());
    let salvage_email = obj
        .get("email")
        .and_then(Value::as_str)
        .map(str::trim)
        .map(String::from);
    let fail = |message: String| RecordError {
        id: salvage_id.clone(),
        email: salvage_email.clone(),
        message,
    };

    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(fail(format!(
            "unknown field `{unknown}` (expected one of: {})",
            FIELDS.join(", ")
        )));
    }
    let id = match obj.get("id") {
        None | Some(Value::Null) => return Err(fail("missing `id`".into())),
        Some(v) => match value_as_id(v) {
            Some(s) if !s.is_empty() => s,
            Some(_) => return Err(fail("`id` is empty".into())),
            None => {
                return Err(fail(format!(
                    "`id` must be a string, found {}",
                    value_kind(v)
                )));
            }
        },
    };
    let email = opt_string(obj, "email").map_err(&fail)?;
    if let Some(e) = &email
        && !is_plausible_email(e)
    {
        return Err(fail(format!("malformed email `{e}`")));
    }
    let active = match obj.get("active") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => parse_bool(s)
            .ok_or_else(|| fail(format!("`active` must be true or false, found `{s}`")))?,
        Some(v) => {
            return Err(fail(format!(
                "`active` must be true or false, found {}",
                value_kind(v)
            )));
        }
    };
    let groups = match obj.get("groups") {
        None | Some(Value::Null) => Groups::default(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|g| match g {
                Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                _ => Err(fail("`groups` must be a list of non-empty strings".into())),
            })
            .collect::<Result<_, _>>()?,
        // CSV and flat sources give one `;`-separated string.
        Some(Value::String(s)) => s
            .split(';')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(String::from)
            .collect(),
        Some(v) => {
            return Err(fail(format!(
                "`groups` must be a list, found {}",
                value_kind(v)
            )));
        }
    };
    let attributes = match obj.get("attributes") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(map)) => map
            .iter()
            .filter_map(|(k, v)| match v {
                Value::Null => None,
                Value::String(s) => Some(Ok((k.clone(), s.clone()))),
                Value::Bool(b) => Some(Ok((k.clone(), b.to_string()))),
                Value::Number(n) => Some(Ok((k.clone(), n.to_string()))),
                _ => Some(Err(fail(format!(
                    "attribute `{k}` must be a string, found {}",
                    value_kind(v)
                )))),
            })
            .collect::<Result<_, _>>()?,
        Some(v) => {
            return Err(fail(format!(
                "`attributes` must be an object, found {}",
                value_kind(v)
            )));
        }
    };
    let start_date = opt_when(obj, "start_date").map_err(&fail)?;
    let end_date = opt_when(obj, "end_date").map_err(&fail)?;
    Ok(Person {
        id: PersonId(id),
        email,
        username: opt_string(obj, "username").map_err(&fail)?,
        first_name: opt_string(obj, "first_name").map_err(&fail)?,
        last_name: opt_string(obj, "last_name").map_err(&fail)?,
        phone: opt_string(obj, "phone").map_err(&fail)?,
        active,
        groups,
        attributes,
        start_date,
        end_date,
    })
}

fn value_as_id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        // HR exports often carry numeric ids; the text form is the id.
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An optional text field; empty or blank counts as absent.
fn opt_string(obj: &Map<String, Value>, key: &str) -> Result<Option<Box<str>>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let t = s.trim();
            Ok((!t.is_empty()).then(|| t.into()))
        }
        Some(v) => Err(format!("`{key}` must be a string, found {}", value_kind(v))),
    }
}

/// An optional date (`start_date`, `end_date`); empty or blank counts as absent.
fn opt_when(obj: &Map<String, Value>, key: &str) -> Result<Option<When>, String> {
    match opt_string(obj, key)? {
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
