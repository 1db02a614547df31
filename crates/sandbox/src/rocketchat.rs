//! A stateful fake of Rocket.Chat's REST user management, after
//! `shared/vendors/rocketchat.md` and the OpenAPI descriptions in `openapi/`.
//!
//! - Routes (under `/api/v1/`): `POST users.create`, `POST users.update`,
//!   `GET users.info`, `GET users.list`, `POST users.setActiveStatus`, `POST users.delete`,
//!   `GET me`. Anything else answers 404 `{"success":false,"error":"Resource not found"}`.
//! - Auth: both `X-User-Id` and `X-Auth-Token` must match the sandbox credentials, else
//!   401 `{"success":false,"error":"You must be logged in to do this."}` (the 8.0+ shape;
//!   the legacy `{"status":"error","message":…}` shape can be produced with a `Fault`).
//! - Rate limiter, on by default as on a real server: 10 calls per 60 s per route
//!   (method + path) per client (`X-Forwarded-For`, else one local client), a fixed window
//!   that starts with the first call. Every limited response carries `X-RateLimit-Limit`,
//!   `X-RateLimit-Remaining` and `X-RateLimit-Reset` (epoch **milliseconds**); over the
//!   limit: 429 `{"success":false,"error":"Error, too many requests. Please slow down. You
//!   must wait N seconds before trying this endpoint again. [error-too-many-requests]"}`.
//!   Rejected calls count, as in Rocket.Chat. Tests shorten the window with
//!   [`RocketChat::set_rate_limit`]; [`RocketChat::disable_rate_limit`] acts like the
//!   `api-bypass-rate-limit` permission (no limit, no headers). Order of checks, as in
//!   Rocket.Chat's `ApiClass`: route → auth (401 has no rate-limit headers) → limiter →
//!   permission → parameter validation → the handler.
//! - Validation: each request's query parameters and JSON body are checked against its
//!   operation in the embedded OpenAPI files (required properties, types, `minLength`;
//!   unknown query parameters and body properties are refused — an object schema that
//!   lists `properties` is treated as closed, like the AJV schemas the server uses). A
//!   violation is 400 `{"success":false,"error":"<AJV messages joined by \n > [invalid-params]",
//!   "errorType":"invalid-params"}`. The headers `x-2fa-code`/`x-2fa-method`, which the
//!   spec marks required on users.update, are not enforced (2FA is off, or the token
//!   bypasses it). Rules beyond the schema: usernames match `[0-9a-zA-Z-_.]+`
//!   (`error-input-is-not-a-valid-field`), emails look like emails (`error-invalid-email`),
//!   username and email are unique, case-insensitively (`error-field-unavailable`,
//!   `"<value> is already in use :("`), users.info takes exactly one lookup key.
//! - users.info for an unknown user: 400 `{"success":false,"error":"User not found."}`.
//!
//! Assumptions where the notes are silent: users.update, users.setActiveStatus and
//! users.delete for an unknown `userId` answer 400 `error-invalid-user` (the error of
//! Rocket.Chat's `getUserFromParams`); setActiveStatus to the current value succeeds;
//! a permission the admin lacks ([`RocketChat::revoke_permission`]) answers 403
//! `User does not have the permissions required for this action [error-unauthorized]`.
//! The per-user "1 rename per 60 s" throttles (RC-#17748) are not emulated.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use rand::RngExt;
use serde_json::{Map, Value, json};

use crate::control::{self, Control};

const USER_MANAGEMENT: &str = include_str!("../openapi/rocketchat-user-management.yaml");
const AUTHENTICATION: &str = include_str!("../openapi/rocketchat-authentication.yaml");

/// Rocket.Chat's defaults: `API_Enable_Rate_Limiter_Limit_Calls_Default` and `_Time_Default`.
pub const DEFAULT_RATE_LIMIT_CALLS: u32 = 10;
pub const DEFAULT_RATE_LIMIT_WINDOW: Duration = Duration::from_secs(60);

/// The default `UTF8_User_Names_Validation` setting.
fn valid_username(u: &str) -> bool {
    !u.is_empty()
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(char::is_whitespace)
}

/// The operations the fake serves: (method, name under /api/v1/, permissions any of which
/// allows the call).
const OPERATIONS: &[(&str, &str, &[&str])] = &[
    ("POST", "users.create", &["create-user"]),
    ("POST", "users.update", &["edit-other-user-info"]),
    ("GET", "users.info", &["view-d-room"]),
    ("GET", "users.list", &["view-d-room"]),
    (
        "POST",
        "users.setActiveStatus",
        &["edit-other-user-active-status", "manage-moderation-actions"],
    ),
    ("POST", "users.delete", &["delete-user"]),
    ("GET", "me", &[]),
];

const ADMIN_PERMISSIONS: &[&str] = &[
    "create-user",
    "edit-other-user-info",
    "edit-other-user-password",
    "edit-other-user-active-status",
    "manage-moderation-actions",
    "view-full-other-user-info",
    "view-d-room",
    "delete-user",
];

// ---------------------------------------------------------------- OpenAPI checking

/// The two embedded OpenAPI documents, parsed once per process.
fn documents() -> &'static [Value; 2] {
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
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
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
fn operation(method: &str, name: &str) -> Option<(&'static Value, &'static Value)> {
    let path = format!("/api/v1/{name}");
    documents().iter().find_map(|doc| {
        let op = doc
            .get("paths")?
            .get(&path)?
            .get(method.to_ascii_lowercase())?;
        Some((doc, op))
    })
}

fn type_name(v: &Value) -> &'static str {
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
fn check_schema(doc: &Value, schema: &Value, value: &Value, errors: &mut Vec<String>) {
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
fn check_request(
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

// ---------------------------------------------------------------- state

struct User {
    doc: Map<String, Value>,
    password: String,
}

struct Limiter {
    /// `None`: off (the caller holds `api-bypass-rate-limit`): no headers either.
    rule: Option<(u32, Duration)>,
    /// (route, client) → (window start in epoch ms, calls in the window).
    windows: HashMap<String, (u64, u32)>,
}

/// What the limiter decided for one call.
struct Limit {
    limit: u32,
    remaining: u32,
    reset_ms: u64,
    allowed: bool,
    now_ms: u64,
}

impl Limiter {
    fn hit(&mut self, key: String) -> Option<Limit> {
        let (calls, window) = self.rule?;
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let now_ms = epoch_ms();
        let entry = self.windows.entry(key).or_insert((now_ms, 0));
        if now_ms >= entry.0.saturating_add(window_ms) {
            *entry = (now_ms, 0);
        }
        entry.1 += 1;
        Some(Limit {
            limit: calls,
            remaining: calls.saturating_sub(entry.1),
            reset_ms: entry.0.saturating_add(window_ms),
            allowed: entry.1 <= calls,
            now_ms,
        })
    }
}

struct St {
    users: Vec<User>,
    admin_id: String,
    permissions: BTreeSet<String>,
    limiter: Limiter,
    /// Every JSON body received, by operation name, for tests.
    bodies: Vec<(String, Value)>,
}

/// The fake's handle: its state for assertions and its control for faults.
#[derive(Clone)]
pub struct RocketChat {
    state: Arc<Mutex<St>>,
    pub control: Control,
    user_id: String,
    auth_token: String,
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn iso_now() -> String {
    // ISO-8601 like Rocket.Chat's dates, computed without a date library.
    let ms = epoch_ms();
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A Meteor-style id (`Random.id()`: 17 characters from an unambiguous alphabet).
fn new_id() -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..17)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

fn failure(
    status: StatusCode,
    error: &str,
    error_type: Option<&str>,
    details: Option<Value>,
) -> Response {
    let mut body = json!({ "success": false });
    match error_type {
        Some(t) => {
            body["error"] = json!(format!("{error} [{t}]"));
            body["errorType"] = json!(t);
        }
        None => body["error"] = json!(error),
    }
    if let Some(d) = details {
        body["details"] = d;
    }
    (status, axum::Json(body)).into_response()
}

fn bad(error: &str, error_type: &str, details: Option<Value>) -> Response {
    failure(StatusCode::BAD_REQUEST, error, Some(error_type), details)
}

fn ok(mut body: Value) -> Response {
    body["success"] = json!(true);
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn email_of(doc: &Map<String, Value>) -> Option<&str> {
    doc.get("emails")?
        .as_array()?
        .first()?
        .get("address")?
        .as_str()
}

fn str_of<'a>(doc: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    doc.get(k).and_then(Value::as_str)
}

impl St {
    fn find(&self, id: &str) -> Option<usize> {
        self.users
            .iter()
            .position(|u| str_of(&u.doc, "_id") == Some(id))
    }

    fn find_by(&self, key: &str, value: &str) -> Option<usize> {
        self.users.iter().position(|u| match key {
            "userId" => str_of(&u.doc, "_id") == Some(value),
            "username" => str_of(&u.doc, "username").is_some_and(|x| x.eq_ignore_ascii_case(value)),
            "email" => email_of(&u.doc).is_some_and(|x| x.eq_ignore_ascii_case(value)),
            "importId" => str_of(&u.doc, "importIds").is_some_and(|x| x == value),
            "freeSwitchExtension" => str_of(&u.doc, "freeSwitchExtension") == Some(value),
            _ => false,
        })
    }

    /// Username and email rules for a create (`self_id` None) or an update: the error
    /// response when one is broken.
    fn identity_error(
        &self,
        self_id: Option<&str>,
        username: Option<&str>,
        email: Option<&str>,
    ) -> Option<Response> {
        if let Some(u) = username
            && !valid_username(u)
        {
            return Some(bad(
                &format!("{u} is not a valid username"),
                "error-input-is-not-a-valid-field",
                Some(json!({ "method": "insertOrUpdateUser", "input": u, "field": "Username" })),
            ));
        }
        if let Some(e) = email
            && !valid_email(e)
        {
            return Some(bad(
                &format!("Invalid email {e}"),
                "error-invalid-email",
                Some(json!({ "method": "insertOrUpdateUser", "email": e })),
            ));
        }
        let taken = |key: &str, v: &str| {
            self.find_by(key, v).is_some_and(|i| {
                Some(str_of(&self.users[i].doc, "_id").unwrap_or_default()) != self_id
            })
        };
        [("username", username), ("email", email)]
            .into_iter()
            .find_map(|(key, value)| value.filter(|v| taken(key, v)))
            .map(|v| {
                bad(
                    &format!("{v} is already in use :("),
                    "error-field-unavailable",
                    Some(json!({ "method": "insertOrUpdateUser", "field": v })),
                )
            })
    }
}

/// The user as Rocket.Chat shows it to an admin (never the password).
fn public(u: &User) -> Value {
    Value::Object(u.doc.clone())
}

impl RocketChat {
    pub fn new(creds: &crate::Credentials) -> Self {
        let now = iso_now();
        let admin = User {
            doc: json!({
                "_id": creds.rocketchat_user_id,
                "createdAt": now,
                "_updatedAt": now,
                "username": "sandbox.admin",
                "emails": [{ "address": "admin@sandbox.test", "verified": true }],
                "type": "user",
                "status": "online",
                "active": true,
                "roles": ["user", "admin"],
                "name": "Sandbox Admin",
                "requirePasswordChange": false,
                "settings": {},
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
            password: String::new(),
        };
        Self {
            state: Arc::new(Mutex::new(St {
                users: vec![admin],
                admin_id: creds.rocketchat_user_id.clone(),
                permissions: ADMIN_PERMISSIONS.iter().map(|p| (*p).to_string()).collect(),
                limiter: Limiter {
                    rule: Some((DEFAULT_RATE_LIMIT_CALLS, DEFAULT_RATE_LIMIT_WINDOW)),
                    windows: HashMap::new(),
                },
                bodies: Vec::new(),
            })),
            control: Control::default(),
            user_id: creds.rocketchat_user_id.clone(),
            auth_token: creds.rocketchat_auth_token.clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, St> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v1/{op}", any(dispatch))
            .fallback(|| async { not_found() })
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.control.clone(),
                control::layer,
            ))
    }

    // ---- test controls and inspection

    /// The limiter rule: `calls` per `window` per route and client; resets the windows.
    pub fn set_rate_limit(&self, calls: u32, window: Duration) {
        let mut st = self.lock();
        st.limiter.rule = Some((calls, window));
        st.limiter.windows.clear();
    }

    /// No limiter and no rate-limit headers, like a caller with `api-bypass-rate-limit`.
    pub fn disable_rate_limit(&self) {
        let mut st = self.lock();
        st.limiter.rule = None;
        st.limiter.windows.clear();
    }

    /// Takes a permission away from the sandbox admin (403 on the routes needing it).
    pub fn revoke_permission(&self, permission: &str) {
        self.lock().permissions.remove(permission);
    }

    /// Every user except the sandbox admin, as an admin sees them, oldest first.
    pub fn users(&self) -> Vec<Value> {
        let st = self.lock();
        st.users
            .iter()
            .filter(|u| str_of(&u.doc, "_id") != Some(st.admin_id.as_str()))
            .map(public)
            .collect()
    }

    pub fn user(&self, id: &str) -> Option<Value> {
        let st = self.lock();
        st.find(id).map(|i| public(&st.users[i]))
    }

    pub fn user_by_username(&self, username: &str) -> Option<Value> {
        let st = self.lock();
        st.find_by("username", username)
            .map(|i| public(&st.users[i]))
    }

    pub fn user_by_email(&self, email: &str) -> Option<Value> {
        let st = self.lock();
        st.find_by("email", email).map(|i| public(&st.users[i]))
    }

    /// The password a user was created with (tests check it is strong and never leaks).
    pub fn password(&self, username: &str) -> Option<String> {
        let st = self.lock();
        st.find_by("username", username)
            .map(|i| st.users[i].password.clone())
    }

    /// Every JSON body received by operation `op` (e.g. `users.create`), oldest first.
    pub fn bodies(&self, op: &str) -> Vec<Value> {
        self.lock()
            .bodies
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Adds a user behind roster's back (adoption tests); returns its `_id`.
    pub fn insert_user(&self, name: &str, username: &str, email: &str, active: bool) -> String {
        let id = new_id();
        let now = iso_now();
        let doc = json!({
            "_id": id,
            "createdAt": now,
            "_updatedAt": now,
            "username": username,
            "emails": [{ "address": email, "verified": false }],
            "type": "user",
            "status": "offline",
            "active": active,
            "roles": ["user"],
            "name": name,
            "requirePasswordChange": false,
            "settings": {},
        });
        self.lock().users.push(User {
            doc: doc.as_object().cloned().unwrap_or_default(),
            password: String::new(),
        });
        id
    }

    /// Changes a user behind roster's back (drift tests); `Value::Null` removes the key.
    pub fn edit(&self, id: &str, field: &str, value: Value) {
        let mut st = self.lock();
        if let Some(i) = st.find(id) {
            if value.is_null() {
                st.users[i].doc.remove(field);
            } else {
                st.users[i].doc.insert(field.to_string(), value);
            }
        }
    }

    /// Removes a user behind roster's back (drift tests).
    pub fn remove(&self, id: &str) {
        let mut st = self.lock();
        if let Some(i) = st.find(id) {
            st.users.remove(i);
        }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
        matches!(
            (get("x-user-id"), get("x-auth-token")),
            (Some(u), Some(t)) if !self.auth_token.is_empty() && u == self.user_id && t == self.auth_token
        )
    }
}

fn not_found() -> Response {
    failure(StatusCode::NOT_FOUND, "Resource not found", None, None)
}

fn parse_query(raw: Option<&str>) -> BTreeMap<String, String> {
    url_decode_pairs(raw.unwrap_or_default())
}

/// `application/x-www-form-urlencoded` pairs (the last of a repeated key wins).
fn url_decode_pairs(s: &str) -> BTreeMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = |b: u8| char::from(b).to_digit(16);
                    match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                        (Some(h), Some(l)) => {
                            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                            i += 2;
                        }
                        _ => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn with_limit_headers(mut response: Response, limit: Option<&Limit>) -> Response {
    if let Some(l) = limit {
        let h = response.headers_mut();
        for (k, v) in [
            ("x-ratelimit-limit", l.limit.to_string()),
            ("x-ratelimit-remaining", l.remaining.to_string()),
            ("x-ratelimit-reset", l.reset_ms.to_string()),
        ] {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(k, v);
            }
        }
    }
    response
}

async fn dispatch(
    State(rc): State<RocketChat>,
    method: Method,
    Path(op): Path<String>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((verb, name, needs)) = OPERATIONS
        .iter()
        .find(|(m, n, _)| *m == method.as_str() && *n == op)
    else {
        return not_found();
    };
    if !rc.authorized(&headers) {
        return failure(
            StatusCode::UNAUTHORIZED,
            "You must be logged in to do this.",
            None,
            None,
        );
    }
    let client = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map_or_else(|| "local".to_string(), |v| v.trim().to_string());
    let limit = rc
        .lock()
        .limiter
        .hit(format!("{method} /api/v1/{name} {client}"));
    if let Some(l) = limit.as_ref().filter(|l| !l.allowed) {
        let secs = l.reset_ms.saturating_sub(l.now_ms).div_ceil(1000);
        let response = failure(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Error, too many requests. Please slow down. You must wait {secs} seconds before \
                 trying this endpoint again. [error-too-many-requests]"
            ),
            None,
            None,
        );
        return with_limit_headers(response, Some(l));
    }
    let response = handle(&rc, verb, name, needs, raw_query.as_deref(), &body);
    with_limit_headers(response, limit.as_ref())
}

fn handle(
    rc: &RocketChat,
    method: &str,
    name: &str,
    needs: &[&str],
    raw_query: Option<&str>,
    body: &[u8],
) -> Response {
    let mut st = rc.lock();
    if !needs.is_empty() && !needs.iter().any(|p| st.permissions.contains(*p)) {
        let message = if name == "users.delete" {
            "unauthorized".to_string()
        } else {
            "User does not have the permissions required for this action [error-unauthorized]"
                .to_string()
        };
        return failure(StatusCode::FORBIDDEN, &message, None, None);
    }
    let query = parse_query(raw_query);
    let body: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => Some(v),
            Err(e) => return bad(&format!("Invalid JSON body: {e}"), "invalid-params", None),
        }
    };
    if let Some(b) = &body {
        st.bodies.push((name.to_string(), b.clone()));
    }
    if let Some((doc, op)) = operation(method, name) {
        let errors = check_request(doc, op, &query, body.as_ref());
        if !errors.is_empty() {
            return bad(&errors.join("\n "), "invalid-params", None);
        }
    }
    let body = body.unwrap_or_else(|| json!({}));
    match name {
        "users.create" => create(&mut st, &body),
        "users.update" => update(&mut st, &body),
        "users.info" => info(&st, &query),
        "users.list" => list(&st, &query),
        "users.setActiveStatus" => set_active_status(&mut st, &body),
        "users.delete" => delete(&mut st, &body),
        "me" => me(&st),
        _ => not_found(),
    }
}

fn invalid_user() -> Response {
    bad(
        "The required \"userId\" or \"username\" param provided does not match any users",
        "error-invalid-user",
        None,
    )
}

fn create(st: &mut St, body: &Value) -> Response {
    let s = |k: &str| body.get(k).and_then(Value::as_str);
    let flag = |k: &str, d: bool| body.get(k).and_then(Value::as_bool).unwrap_or(d);
    let (Some(name), Some(email), Some(username), Some(password)) =
        (s("name"), s("email"), s("username"), s("password"))
    else {
        return bad("Invalid request", "invalid-params", None);
    };
    if name.trim().is_empty() {
        return bad(
            "The field Name is required",
            "error-the-field-is-required",
            Some(json!({ "method": "insertOrUpdateUser", "field": "Name" })),
        );
    }
    if let Some(r) = st.identity_error(None, Some(username), Some(email)) {
        return r;
    }
    let id = new_id();
    let now = iso_now();
    let mut doc = json!({
        "_id": id,
        "createdAt": now,
        "_updatedAt": now,
        "username": username,
        "emails": [{ "address": email, "verified": flag("verified", false) }],
        "type": "user",
        "status": "offline",
        "active": flag("active", true),
        "roles": body.get("roles").cloned().unwrap_or_else(|| json!(["user"])),
        "name": name,
        "requirePasswordChange": flag("requirePasswordChange", false),
        "settings": {},
    });
    for k in ["nickname", "bio", "statusText"] {
        if let Some(v) = s(k) {
            doc[k] = json!(v);
        }
    }
    if let Some(c) = body.get("customFields") {
        doc["customFields"] = c.clone();
    }
    if !flag("active", true) {
        doc["inactiveReason"] = json!("deactivated");
    }
    let doc = doc.as_object().cloned().unwrap_or_default();
    let user = User {
        doc,
        password: password.to_string(),
    };
    let out = public(&user);
    st.users.push(user);
    ok(json!({ "user": out }))
}

fn update(st: &mut St, body: &Value) -> Response {
    let Some(id) = body.get("userId").and_then(Value::as_str) else {
        return bad(
            "must have required property 'userId'",
            "invalid-params",
            None,
        );
    };
    if id.is_empty() {
        return bad(
            "must NOT have fewer than 1 characters",
            "invalid-params",
            None,
        );
    }
    let Some(i) = st.find(id) else {
        return invalid_user();
    };
    let data = body
        .get("data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let s = |k: &str| data.get(k).and_then(Value::as_str);
    if let Some(n) = s("name")
        && n.trim().is_empty()
    {
        return bad(
            "The field Name is required",
            "error-the-field-is-required",
            Some(json!({ "method": "insertOrUpdateUser", "field": "Name" })),
        );
    }
    if let Some(r) = st.identity_error(Some(id), s("username"), s("email")) {
        return r;
    }
    let user = &mut st.users[i];
    for (k, v) in &data {
        match k.as_str() {
            "name" | "username" | "roles" | "requirePasswordChange" | "freeSwitchExtension" => {
                user.doc.insert(k.clone(), v.clone());
            }
            "email" => {
                user.doc.insert(
                    "emails".into(),
                    json!([{ "address": v, "verified": false }]),
                );
            }
            "password" => user.password = v.as_str().unwrap_or_default().to_string(),
            "active" => {
                let active = v.as_bool().unwrap_or(true);
                user.doc.insert("active".into(), json!(active));
                if active {
                    user.doc.remove("inactiveReason");
                } else {
                    user.doc
                        .insert("inactiveReason".into(), json!("deactivated"));
                }
            }
            "customFields" => {
                let mut merged = user
                    .doc
                    .get("customFields")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                if let Some(c) = v.as_object() {
                    for (ck, cv) in c {
                        merged.insert(ck.clone(), cv.clone());
                    }
                }
                user.doc
                    .insert("customFields".into(), Value::Object(merged));
            }
            _ => {}
        }
    }
    // `verified` applies to the (possibly new) address.
    if let Some(v) = data.get("verified").and_then(Value::as_bool)
        && let Some(e) = user
            .doc
            .get_mut("emails")
            .and_then(Value::as_array_mut)
            .and_then(|a| a.first_mut())
    {
        e["verified"] = json!(v);
    }
    user.doc.insert("_updatedAt".into(), json!(iso_now()));
    ok(json!({ "user": public(user) }))
}

const LOOKUP_KEYS: &[&str] = &[
    "userId",
    "username",
    "importId",
    "email",
    "freeSwitchExtension",
];

fn info(st: &St, query: &BTreeMap<String, String>) -> Response {
    let given: Vec<(&str, &str)> = LOOKUP_KEYS
        .iter()
        .filter_map(|k| query.get(*k).map(|v| (*k, v.as_str())))
        .collect();
    if given.len() != 1 {
        let message = if given.is_empty() {
            "must have required property 'userId'\n must have required property 'username'\n \
             must have required property 'importId'\n must match a schema in anyOf"
        } else {
            "must match exactly one schema in oneOf"
        };
        return bad(message, "invalid-params", None);
    }
    let (key, value) = given[0];
    match st.find_by(key, value) {
        Some(i) => ok(json!({ "user": public(&st.users[i]) })),
        None => failure(StatusCode::BAD_REQUEST, "User not found.", None, None),
    }
}

fn list(st: &St, query: &BTreeMap<String, String>) -> Response {
    let count = query
        .get("count")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(50)
        .min(100);
    let offset = query
        .get("offset")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    let matching: Vec<&User> = st
        .users
        .iter()
        .filter(|u| {
            query
                .get("email")
                .is_none_or(|e| email_of(&u.doc).is_some_and(|x| x.eq_ignore_ascii_case(e)))
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(count)
        .map(|u| public(u))
        .collect();
    ok(json!({
        "count": page.len(),
        "users": page,
        "offset": offset,
        "total": matching.len(),
    }))
}

fn set_active_status(st: &mut St, body: &Value) -> Response {
    let (Some(id), Some(active)) = (
        body.get("userId").and_then(Value::as_str),
        body.get("activeStatus").and_then(Value::as_bool),
    ) else {
        return bad(
            "must have required property 'activeStatus'\n",
            "invalid-params",
            None,
        );
    };
    let Some(i) = st.find(id) else {
        return invalid_user();
    };
    let user = &mut st.users[i];
    user.doc.insert("active".into(), json!(active));
    if active {
        user.doc.remove("inactiveReason");
    } else {
        user.doc
            .insert("inactiveReason".into(), json!("deactivated"));
    }
    user.doc.insert("_updatedAt".into(), json!(iso_now()));
    ok(json!({ "user": { "_id": id, "active": active } }))
}

fn delete(st: &mut St, body: &Value) -> Response {
    let Some(id) = body.get("userId").and_then(Value::as_str) else {
        return bad(
            "The required \"userId\" or \"username\" param was not provided",
            "error-user-param-not-provided",
            None,
        );
    };
    let Some(i) = st.find(id) else {
        return invalid_user();
    };
    st.users.remove(i);
    ok(json!({ "deletedRooms": [] }))
}

fn me(st: &St) -> Response {
    match st.find(&st.admin_id) {
        Some(i) => ok(public(&st.users[i])),
        None => failure(
            StatusCode::UNAUTHORIZED,
            "You must be logged in to do this.",
            None,
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_specs_parse_and_have_the_operations() {
        for (m, n, _) in OPERATIONS {
            assert!(
                operation(m, n).is_some(),
                "{m} {n} missing from the OpenAPI files"
            );
        }
    }

    fn errors(method: &str, name: &str, query: &[(&str, &str)], body: Value) -> Vec<String> {
        let (doc, op) = operation(method, name).expect("operation");
        let q = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        check_request(doc, op, &q, Some(&body))
    }

    #[test]
    fn create_body_is_checked_against_the_spec() {
        let ok = json!({"name": "A B", "email": "a@b.io", "username": "ab", "password": "x"});
        assert!(errors("POST", "users.create", &[], ok).is_empty());
        let e = errors(
            "POST",
            "users.create",
            &[],
            json!({"name": "A", "email": "a@b.io"}),
        );
        assert!(
            e.contains(&"must have required property 'password'".to_string()),
            "{e:?}"
        );
        let e = errors(
            "POST",
            "users.create",
            &[],
            json!({"name": 1, "email": "a@b.io", "username": "ab", "password": "x", "colour": "red"}),
        );
        assert!(e.contains(&"must be string".to_string()), "{e:?}");
        assert!(
            e.contains(&"must NOT have additional properties".to_string()),
            "{e:?}"
        );
        // customFields is an open object; roles an array of strings.
        let e = errors(
            "POST",
            "users.create",
            &[],
            json!({"name": "A", "email": "a@b.io", "username": "ab", "password": "x",
                   "customFields": {"any": "thing"}, "roles": ["user", 3]}),
        );
        assert_eq!(e, vec!["must be string".to_string()]);
    }

    #[test]
    fn update_nested_data_is_closed_and_query_params_are_checked() {
        let e = errors(
            "POST",
            "users.update",
            &[],
            json!({"userId": "x", "data": {"nickname": "n"}}),
        );
        assert_eq!(e, vec!["must NOT have additional properties".to_string()]);
        assert!(errors("GET", "users.info", &[("username", "ab")], json!(null)).is_empty());
        let e = errors("GET", "users.info", &[("fields", "{}")], json!(null));
        assert_eq!(e, vec!["must NOT have additional properties".to_string()]);
        let e = errors("GET", "users.list", &[("count", "ten")], json!(null));
        assert_eq!(e, vec!["must be integer".to_string()]);
    }

    #[test]
    fn usernames_and_emails() {
        assert!(valid_username("ann.lee-2_x"));
        assert!(!valid_username("ann lee"));
        assert!(!valid_username("änn"));
        assert!(valid_email("a@b.io"));
        assert!(!valid_email("a@b"));
    }

    #[test]
    fn limiter_counts_per_window() {
        let mut l = Limiter {
            rule: Some((2, Duration::from_secs(60))),
            windows: HashMap::new(),
        };
        let a = l.hit("r".into()).expect("on");
        assert!(a.allowed && a.remaining == 1);
        assert!(l.hit("r".into()).expect("on").allowed);
        let c = l.hit("r".into()).expect("on");
        assert!(!c.allowed && c.remaining == 0 && c.reset_ms > c.now_ms);
        assert!(l.hit("other".into()).expect("on").allowed);
        l.rule = None;
        assert!(l.hit("r".into()).is_none());
    }

    #[test]
    fn query_decoding_and_dates() {
        let q = url_decode_pairs("username=a%2Eb&email=x%40y.io&n=a+b");
        assert_eq!(q["username"], "a.b");
        assert_eq!(q["email"], "x@y.io");
        assert_eq!(q["n"], "a b");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }
}
