//! Damoov's user shape: its error envelope, `UserFields`, status, profile fields, and the
//! bodies roster sends.

#[allow(clippy::wildcard_imports)]
use super::*;

use serde_json::{Map, Value, json};

use super::VendorError;
use crate::model::{Changes, Fields};

/// Damoov's envelope `{"Status", "Title", "Errors": [{"Key", "Message"}]}` as one line.
pub(super) fn envelope_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let title = v.get("Title").and_then(Value::as_str).unwrap_or_default();
    let errors: Vec<String> = v
        .get("Errors")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|e| {
                    let key = e.get("Key").and_then(Value::as_str).unwrap_or_default();
                    let msg = e.get("Message").and_then(Value::as_str).unwrap_or_default();
                    if key.is_empty() {
                        msg.to_string()
                    } else {
                        format!("{key}: {msg}")
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let text = match (title.is_empty(), errors.is_empty()) {
        (true, true) => return None,
        (false, true) => title.to_string(),
        (true, false) => errors.join("; "),
        (false, false) => format!("{title} ({})", errors.join("; ")),
    };
    Some(text)
}

/// `UserFields` as read: an array with one object (an object is accepted too).
pub(super) fn user_fields(user: &Value) -> Option<&Map<String, Value>> {
    match user.get("UserFields")? {
        Value::Array(items) => items.first()?.as_object(),
        Value::Object(o) => Some(o),
        _ => None,
    }
}

pub(super) fn client_id(user: &Value) -> Option<&str> {
    user_fields(user)?.get("ClientId")?.as_str()
}

/// Whether the account is usable: `Status` reads `Active` and `Enabled` is not false.
pub(super) fn is_active(user: &Value) -> bool {
    let status = user
        .get("Status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let enabled = user_fields(user)
        .and_then(|f| f.get("Enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(true);
    status.eq_ignore_ascii_case("Active") && enabled
}

/// The account's profile under roster's field names.
pub(super) fn profile_fields(user: &Value) -> Fields {
    let mut out = Fields::new();
    for (name, _, wire) in PERSON_FIELDS {
        if let Some(v) = user
            .pointer(&format!("/UserProfile/{wire}"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            out.insert((*name).to_string(), v.to_string());
        }
    }
    out
}

pub(super) fn wire_name(field: &str) -> Option<&'static str> {
    PERSON_FIELDS
        .iter()
        .find(|(name, _, _)| *name == field)
        .map(|(_, _, wire)| *wire)
}

/// The update body for `changes`: Damoov's names; a cleared field is sent as `""`
/// (`null` may mean "leave unchanged" to Damoov).
pub(super) fn update_body(changes: &Changes) -> Map<String, Value> {
    changes
        .iter()
        .filter_map(|(k, v)| {
            let wire = wire_name(k)?;
            Some((wire.to_string(), json!(v.as_deref().unwrap_or(""))))
        })
        .collect()
}

/// The `UserFields` to write: every documented flag as read now, `Enabled` set.
pub(super) fn flags_with_enabled(user: &Value, enabled: bool) -> Map<String, Value> {
    let mut flags: Map<String, Value> = user_fields(user)
        .map(|f| {
            f.iter()
                .filter(|(k, v)| USER_FLAGS.contains(&k.as_str()) && !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    flags.insert("Enabled".into(), Value::Bool(enabled));
    flags
}

pub(super) fn date_created(user: &Value) -> &str {
    user.get("DateCreated")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub(super) fn device_token(user: &Value) -> Result<String, VendorError> {
    user.get("DeviceToken")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .ok_or_else(|| VendorError::Protocol("user without a DeviceToken".into()))
}
