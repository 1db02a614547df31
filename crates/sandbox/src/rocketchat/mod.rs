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
//!
//! Files: `openapi.rs` (request checking against the embedded OpenAPI files),
//! `limiter.rs` (the per-route fixed-window limiter and its headers), `routes.rs` (the
//! dispatcher and one function per operation); this file holds the state and the
//! handle tests use.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use rand::RngExt;
use serde_json::{Map, Value, json};

use crate::clock::epoch_ms;
use crate::control::{self, Control};

mod limiter;
mod openapi;
mod routes;
#[cfg(test)]
mod tests;

use limiter::*;
use openapi::*;
use routes::*;

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

// ---------------------------------------------------------------- state

struct User {
    doc: Map<String, Value>,
    password: String,
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

/// ISO-8601 like Rocket.Chat's dates (milliseconds, `Z`).
fn iso_now() -> String {
    let (time, micros) = crate::clock::utc_now();
    format!("{time}.{:03}Z", micros / 1000)
}
