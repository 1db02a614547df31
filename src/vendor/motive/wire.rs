//! Motive's wire: error bodies, JSON types of fields, the envelopes a user comes in.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Motive's error body: `{"error_message": "..."}` (also seen as `errors: [..]`).
pub(super) fn error_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    if let Some(m) = v.get("error_message").and_then(Value::as_str) {
        return Some(m.to_string());
    }
    v.get("errors").map(|e| match e {
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), String::from))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    })
}

/// Converts roster's string fields to Motive's JSON types.
pub(super) fn wire_value(field: &str, value: &str) -> Value {
    let boolean = field.starts_with("exception_")
        || field.starts_with("export_")
        || matches!(
            field,
            "metric_units"
                | "minute_logs"
                | "yard_moves_enabled"
                | "personal_conveyance_enabled"
                | "manual_driving_enabled"
        );
    if boolean && let Ok(b) = value.parse::<bool>() {
        return Value::Bool(b);
    }
    if field == "group_ids" {
        let ids: Option<Vec<i64>> = value
            .split([';', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().ok())
            .collect();
        if let Some(ids) = ids {
            return json!(ids);
        }
    }
    Value::String(value.to_string())
}

/// The reverse of `wire_value`, for adopting an existing account.
pub(super) fn field_value(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), String::from))
                .collect::<Vec<_>>()
                .join(";"),
        ),
        other => Some(other.to_string()),
    }
}

/// The user object from any of the envelopes Motive uses.
pub(super) fn user_object(v: &Value) -> Option<&Map<String, Value>> {
    if let Some(u) = v.get("user").and_then(Value::as_object) {
        return Some(u);
    }
    if let Some(first) = v
        .get("users")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return first.get("user").unwrap_or(first).as_object();
    }
    v.as_object().filter(|o| o.contains_key("id"))
}

/// An account as roster sees it: id, status, and the named fields Motive has values for.
pub(super) fn remote<'a>(
    user: &Map<String, Value>,
    names: impl Iterator<Item = &'a str>,
) -> Result<Remote, VendorError> {
    let mut fields = Fields::new();
    for name in names {
        if let Some(v) = user.get(name).and_then(field_value) {
            fields.insert(name.to_string(), v);
        }
    }
    Ok(Remote {
        id: user_id(user)?,
        active: Some(user.get("status").and_then(Value::as_str) != Some("deactivated")),
        fields,
    })
}

pub(super) fn user_id(user: &Map<String, Value>) -> Result<String, VendorError> {
    match user.get("id") {
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(VendorError::Protocol("user object without an id".into())),
    }
}
