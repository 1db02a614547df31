//! A SCIM ListResponse page, and how a User resource becomes a person (core schema,
//! enterprise extension, attribute paths). No I/O.

#[allow(clippy::wildcard_imports)]
use super::*;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::source::remote::ReadError;
use crate::source::{RecordError, Snapshot, parse_record, snapshot_from};

#[derive(Debug, Clone)]
pub(super) struct Mapping {
    pub(super) id_field: IdField,
    /// SCIM attribute paths of the start and end dates.
    pub(super) start_date: Option<String>,
    pub(super) end_date: Option<String>,
    pub(super) attributes: BTreeMap<String, String>,
    pub(super) enterprise: bool,
}

/// One ListResponse.
pub(super) struct ListPage {
    pub(super) total: u64,
    pub(super) start_index: Option<u64>,
    pub(super) resources: Vec<Value>,
}

impl ListPage {
    pub(super) fn parse(body: &Value) -> Result<Self, ReadError> {
        Self::read(body).map_err(ReadError)
    }

    fn read(body: &Value) -> Result<Self, String> {
        let Some(obj) = body.as_object() else {
            return Err("expected a SCIM ListResponse object".into());
        };
        if let Some(Value::Array(schemas)) = obj.get("schemas")
            && !schemas.iter().any(|s| s.as_str() == Some(LIST_RESPONSE))
        {
            return Err(format!(
                "not a ListResponse (schemas {})",
                Value::Array(schemas.clone())
            ));
        }
        let count = |key: &str| -> Result<Option<u64>, String> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| format!("`{key}` is not a count: {n}")),
                // Some servers send numbers as strings.
                Some(Value::String(s)) => s
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("`{key}` is not a count: `{s}`")),
                Some(v) => Err(format!("`{key}` is not a count: {v}")),
            }
        };
        let total = count("totalResults")?.ok_or("no `totalResults` in the ListResponse")?;
        let resources = match obj.get("Resources") {
            // RFC 7644: Resources may be left out when there are none.
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(_) => return Err("`Resources` is not a list".into()),
        };
        Ok(Self {
            total,
            start_index: count("startIndex")?,
            resources,
        })
    }
}

/// A path inside a SCIM resource: `name.givenName`, or `urn:…:User:manager.value`.
pub(super) fn scim_path<'a>(resource: &'a Value, path: &str) -> Option<&'a Value> {
    let (mut at, rest) = match path.rsplit_once(':') {
        Some((schema, attr)) if path.starts_with("urn:") => (resource.get(schema)?, attr),
        _ => (resource, path),
    };
    for part in rest.split('.') {
        at = at.get(part)?;
    }
    Some(at)
}

pub(super) fn text(v: Option<&Value>) -> Option<Value> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(Value::String(s.clone())),
        Value::Number(n) => Some(Value::String(n.to_string())),
        Value::Bool(b) => Some(Value::String(b.to_string())),
        _ => None,
    }
}

/// The primary item of a multi-valued attribute, else the first of the preferred types,
/// else the first.
pub(super) fn pick<'a>(items: Option<&'a Value>, prefer_types: &[&str]) -> Option<&'a Value> {
    let items = items?.as_array()?;
    let usable: Vec<&Value> = items
        .iter()
        .filter(|i| {
            i.get("value")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.trim().is_empty())
        })
        .collect();
    usable
        .iter()
        .find(|i| i.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| {
            prefer_types.iter().find_map(|t| {
                usable.iter().find(|i| {
                    i.get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|x| x.eq_ignore_ascii_case(t))
                })
            })
        })
        .or_else(|| usable.first())
        .and_then(|i| i.get("value"))
}

impl Mapping {
    /// A User resource as a person; its groups from `membership` when membership was
    /// read from `/Groups`, else from its own `groups`.
    pub(super) fn to_record(
        &self,
        r: &Value,
        membership: Option<&Membership>,
    ) -> Result<crate::model::Person, RecordError> {
        let mut obj = Map::new();
        let id_key = match self.id_field {
            IdField::Id => "id",
            IdField::ExternalId => "externalId",
        };
        if let Some(v) = r.get(id_key) {
            obj.insert("id".into(), v.clone());
        }
        let fields = [
            ("username", text(r.get("userName"))),
            ("first_name", text(scim_path(r, "name.givenName"))),
            ("last_name", text(scim_path(r, "name.familyName"))),
            ("email", text(pick(r.get("emails"), &["work"]))),
            (
                "phone",
                text(pick(r.get("phoneNumbers"), &["work", "mobile"])),
            ),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                obj.insert(k.into(), v);
            }
        }
        for (k, path) in [
            ("start_date", &self.start_date),
            ("end_date", &self.end_date),
        ] {
            if let Some(v) = path.as_deref().and_then(|p| text(scim_path(r, p))) {
                obj.insert(k.into(), v);
            }
        }
        match r.get("active") {
            None | Some(Value::Null) => {}
            Some(v) => {
                obj.insert("active".into(), v.clone());
            }
        }
        let names: Vec<Value> = match membership {
            // Members name the user by its SCIM `id`, whatever `id_field` says.
            Some(m) => text(r.get("id"))
                .and_then(|id| id.as_str().map(|id| m.groups_of(id.trim())))
                .unwrap_or_default()
                .iter()
                .map(|name| Value::String(name.to_string()))
                .collect(),
            None => match r.get("groups") {
                Some(Value::Array(groups)) => groups
                    .iter()
                    .filter_map(|g| text(g.get("display")).or_else(|| text(g.get("value"))))
                    .collect(),
                _ => Vec::new(),
            },
        };
        if !names.is_empty() {
            obj.insert("groups".into(), Value::Array(names));
        }
        let mut attributes = Map::new();
        if self.enterprise
            && let Some(ext) = r.get(ENTERPRISE)
        {
            for (path, name) in ENTERPRISE_ATTRIBUTES {
                if let Some(v) = text(scim_path(ext, path)) {
                    attributes.insert((*name).into(), v);
                }
            }
        }
        for (name, path) in &self.attributes {
            if let Some(v) = text(scim_path(r, path)) {
                attributes.insert(name.clone(), v);
            }
        }
        if !attributes.is_empty() {
            obj.insert("attributes".into(), Value::Object(attributes));
        }
        if self.id_field == IdField::ExternalId && obj.get("id").is_none_or(Value::is_null) {
            return Err(RecordError {
                id: None,
                email: obj.get("email").and_then(Value::as_str).map(String::from),
                message: format!(
                    "no `externalId` (id_field = \"externalId\"); SCIM id `{}`",
                    r.get("id").and_then(Value::as_str).unwrap_or("?")
                ),
            });
        }
        parse_record(&Value::Object(obj))
    }

    pub(super) fn snapshot(
        &self,
        resources: Vec<(String, Value)>,
        membership: Option<&Membership>,
    ) -> Snapshot {
        snapshot_from(
            resources
                .into_iter()
                .map(|(location, r)| (location, self.to_record(&r, membership))),
        )
    }
}
