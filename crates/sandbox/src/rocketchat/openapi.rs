//! Checks a request against its operation in the embedded OpenAPI files.

use super::*;

pub(super) const USER_MANAGEMENT: &str =
    include_str!("../../openapi/rocketchat-user-management.yaml");
pub(super) const AUTHENTICATION: &str =
    include_str!("../../openapi/rocketchat-authentication.yaml");

/// The two embedded OpenAPI documents, parsed once per process.
pub(super) fn documents() -> &'static [Value; 2] {
    static DOCS: OnceLock<[Value; 2]> = OnceLock::new();
    DOCS.get_or_init(|| {
        // Both files are compiled in and parsed by the sandbox's own tests.
        let parse = |text: &str| -> Value {
            yaml_serde::from_str(text).expect("the embedded OpenAPI files parse")
        };
        [parse(USER_MANAGEMENT), parse(AUTHENTICATION)]
    })
}

/// Follows a local `$ref` (`#/components/...`) within `doc`.
pub(super) fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    let mut v = v;
    for _ in 0..8 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else {
            return v;
        };
        let Some(pointer) = r.strip_prefix('#') else {
            return v;
        };
        match doc.pointer(pointer) {
            Some(target) => v = target,
            None => return v,
        }
    }
    v
}

/// The OpenAPI operation for `method` + `/api/v1/{name}`, with its document.
pub(super) fn operation(method: &str, name: &str) -> Option<(&'static Value, &'static Value)> {
    let path = format!("/api/v1/{name}");
    documents().iter().find_map(|doc| {
        let op = doc
            .get("paths")?
            .get(&path)?
            .get(method.to_ascii_lowercase())?;
        Some((doc, op))
    })
}

pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks `value` against a JSON schema (the OpenAPI subset the Rocket.Chat files use),
/// collecting AJV-style messages.
pub(super) fn check_schema(doc: &Value, schema: &Value, value: &Value, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if value.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
        return;
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let actual = type_name(value);
        let ok = actual == t || (t == "number" && actual == "integer");
        if !ok {
            errors.push(format!("must be {t}"));
            return;
        }
    }
    match value {
        Value::Object(obj) => {
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for r in required.iter().filter_map(Value::as_str) {
                    if !obj.contains_key(r) {
                        errors.push(format!("must have required property '{r}'"));
                    }
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            for (k, v) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => check_schema(doc, s, v, errors),
                    None => match additional {
                        Some(Value::Bool(true)) => {}
                        Some(s @ Value::Object(_)) => check_schema(doc, s, v, errors),
                        // Listed properties and no `additionalProperties`: closed, as the
                        // server's own AJV schemas are.
                        Some(Value::Bool(false)) | None if props.is_some() => {
                            errors.push("must NOT have additional properties".into());
                        }
                        _ => {}
                    },
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for item in items {
                    check_schema(doc, s, item, errors);
                }
            }
        }
        Value::String(s) => {
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && (s.chars().count() as u64) < min
            {
                errors.push(format!(
                    "must NOT have fewer than {min} character{}",
                    if min == 1 { "" } else { "s" }
                ));
            }
            if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
                && !allowed.iter().any(|a| a.as_str() == Some(s))
            {
                errors.push("must be equal to one of the allowed values".into());
            }
        }
        _ => {}
    }
}

/// Checks a request against its OpenAPI operation: query parameters and JSON body.
pub(super) fn check_request(
    doc: &Value,
    op: &Value,
    query: &BTreeMap<String, String>,
    body: Option<&Value>,
) -> Vec<String> {
    let mut errors = Vec::new();
    let params: Vec<&Value> = op
        .get("parameters")
        .and_then(Value::as_array)
        .map(|ps| ps.iter().map(|p| resolve(doc, p)).collect())
        .unwrap_or_default();
    let in_query: BTreeMap<&str, &Value> = params
        .iter()
        .filter(|p| p.get("in").and_then(Value::as_str) == Some("query"))
        .filter_map(|p| Some((p.get("name")?.as_str()?, *p)))
        .collect();
    for p in in_query.values() {
        let required = p.get("required") == Some(&Value::Bool(true));
        if let Some(name) = p.get("name").and_then(Value::as_str)
            && required
            && !query.contains_key(name)
        {
            errors.push(format!("must have required property '{name}'"));
        }
    }
    for (k, v) in query {
        let Some(p) = in_query.get(k.as_str()) else {
            errors.push("must NOT have additional properties".into());
            continue;
        };
        let Some(schema) = p.get("schema") else {
            continue;
        };
        let schema = resolve(doc, schema);
        // Query values are strings on the wire; AJV coerces them for typed parameters.
        let value = match schema.get("type").and_then(Value::as_str) {
            Some("integer") => match v.parse::<i64>() {
                Ok(n) => json!(n),
                Err(_) => {
                    errors.push("must be integer".into());
                    continue;
                }
            },
            Some("boolean") => match v.as_str() {
                "true" => json!(true),
                "false" => json!(false),
                _ => {
                    errors.push("must be boolean".into());
                    continue;
                }
            },
            _ => json!(v),
        };
        check_schema(doc, schema, &value, &mut errors);
    }
    if let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") {
        let empty = Value::Object(Map::new());
        check_schema(doc, schema, body.unwrap_or(&empty), &mut errors);
    }
    errors
}
