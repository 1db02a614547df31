//! How one record of an HR API becomes a person: JSON pointers into the record, then the
//! same validation as every source (`record.rs`). No I/O.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::super::record::value_kind as kind;
use super::super::{RecordError, Snapshot, parse_record, snapshot_from};
use super::options::Fields;
use crate::model::Person;

/// How a record becomes a person (no I/O, unit-tested).
#[derive(Debug, Clone)]
pub(super) struct Mapping {
    pub(super) fields: Fields,
    pub(super) attributes: BTreeMap<String, String>,
    pub(super) active_values: Option<Vec<String>>,
    pub(super) group_item_pointer: Option<String>,
}

/// A scalar as text for a text field; a structure is left as is for `parse_record` to
/// reject with its field name.
fn scalar_text(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Number(n) => Some(Value::String(n.to_string())),
        Value::Bool(b) => Some(Value::String(b.to_string())),
        other => Some(other.clone()),
    }
}

impl Mapping {
    pub(super) fn to_record(&self, rec: &Value) -> Result<Person, RecordError> {
        let mut obj = Map::new();
        let f = &self.fields;
        // The id keeps a number a number: `parse_record` reads it as its text.
        if let Some(v) = rec.pointer(&f.id) {
            obj.insert("id".into(), v.clone());
        }
        for (name, p) in [
            ("email", &f.email),
            ("username", &f.username),
            ("first_name", &f.first_name),
            ("last_name", &f.last_name),
            ("phone", &f.phone),
            ("start_date", &f.start_date),
            ("end_date", &f.end_date),
        ] {
            if let Some(p) = p
                && let Some(v) = rec.pointer(p).and_then(scalar_text)
            {
                obj.insert(name.into(), v);
            }
        }
        if let Some(p) = &f.active {
            let raw = rec.pointer(p).filter(|v| !v.is_null());
            let active = match (&self.active_values, raw) {
                (Some(_), None) => {
                    return Err(self.fail(
                        &obj,
                        format!("no status at {p} (fields.active); cannot tell whether active"),
                    ));
                }
                (Some(values), Some(v)) => {
                    let text = match v {
                        Value::String(s) => s.trim().to_lowercase(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        other => {
                            return Err(self.fail(
                                &obj,
                                format!("the status at {p} is {}, expected text", kind(other)),
                            ));
                        }
                    };
                    Some(Value::Bool(values.contains(&text)))
                }
                (None, Some(Value::Number(n))) => Some(Value::String(n.to_string())),
                (None, v) => v.cloned(),
            };
            if let Some(a) = active {
                obj.insert("active".into(), a);
            }
        }
        if let Some(p) = &f.groups
            && let Some(v) = rec.pointer(p)
        {
            let groups = match (v, &self.group_item_pointer) {
                (Value::Array(items), Some(ip)) => Value::Array(
                    items
                        .iter()
                        .filter_map(|i| i.pointer(ip).cloned())
                        .collect(),
                ),
                (other, _) => other.clone(),
            };
            obj.insert("groups".into(), groups);
        }
        let attributes: Map<String, Value> = self
            .attributes
            .iter()
            .filter_map(|(name, p)| {
                rec.pointer(p)
                    .and_then(scalar_text)
                    .map(|v| (name.clone(), v))
            })
            .collect();
        if !attributes.is_empty() {
            obj.insert("attributes".into(), Value::Object(attributes));
        }
        parse_record(&Value::Object(obj))
    }

    /// A mapping failure that still salvages the id and email, as `parse_record` would.
    fn fail(&self, obj: &Map<String, Value>, message: String) -> RecordError {
        let id = obj.get("id").and_then(|v| match v {
            Value::String(s) => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        RecordError {
            id: id.filter(|s| !s.is_empty()),
            email: obj
                .get("email")
                .and_then(Value::as_str)
                .map(|s| s.trim().to_string()),
            message,
        }
    }

    pub(super) fn snapshot(&self, records: Vec<(String, Value)>) -> Snapshot {
        snapshot_from(
            records
                .into_iter()
                .map(|(location, rec)| (location, self.to_record(&rec))),
        )
    }
}
