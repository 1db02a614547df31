//! A stateful fake of Damoov's (Telematics SDK's) User Service, after
//! `shared/vendors/telematics.md`.
//!
//! - Admin login `POST /v1/Auth/Login` with `{"LoginFields": "<JSON string>", "Password"}`
//!   (`LoginFields` must be a string holding `{"email": …}`); the reply carries a JWT
//!   (`ExpiresIn`, default 86 400 s, settable) and a refresh token. `POST
//!   /v1/Auth/RefreshToken` with `{"AccessToken", "RefreshToken"}` rotates both.
//! - Login rate limit: 5 attempts per 60 s; the next one gets 429 and blocks every
//!   login for an hour (limit, window and block are settable for tests). Only the login
//!   is limited, as documented.
//! - Management endpoints need `Authorization: Bearer <admin JWT>`: 401 when missing,
//!   unknown or expired; 403 for a user JWT (from `CreateAccessToken: true`).
//! - `POST /v1/Registration/create` needs the `InstanceId` and `InstanceKey` headers
//!   (401 otherwise) and is NOT idempotent: every call makes a new user.
//! - `GET /v1/Management/users/find`: at least one search parameter (400 otherwise);
//!   filters are ANDed; deactivated users are hidden unless `ShowInactiveUsers=true`;
//!   `Result` is always an array; `UserFields` is an array of one object when read;
//!   `Status` reads `Active` / `Inactive`.
//! - `PUT /v1/Management/users`: the target is the `UserDeviceToken` header (422 with the
//!   envelope when missing), `Content-Type: application/json-patch+json` (415
//!   otherwise); absent or `null` fields are left as they are, `""` clears; `Status` must
//!   be `Active`, `Deactivated` or `Deleted` (400 otherwise — so the read value
//!   `Inactive` is refused); `UserFields` is an object and REPLACES the stored flags
//!   wholesale (missing flags fall back to their defaults and `ClientId` to null: the
//!   worst case the notes warn about).
//! - `DELETE /v1/Management/users/{DeviceToken}`: removes the user (404 when unknown).
//! - Everything is PascalCase; unknown body keys are refused with 400 so that a
//!   miscased field cannot pass unnoticed. Errors use the envelope
//!   `{"Result": null, "Status", "Title", "Errors": [{"Key", "Message"}]}`.
//!
//! Assumptions where the notes are silent: a `CustomToken` already in use answers 422;
//! 401s carry the envelope; a soft-`Deleted` user is invisible to `find`.
//!
//! Files: `wire.rs` (the envelope, ids, body checks, the read form of a user),
//! `auth.rs` (login with its rate limit, refresh), `users.rs` (create, find, the filtered
//! page, update, remove); this file holds the state and the handle tests use.

// Handlers return a ready `Response` as their error, as axum handlers do.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::control::{self, Control};

mod auth;
#[cfg(test)]
mod tests;
mod users;
mod wire;

use auth::*;
use users::*;
use wire::*;

const PROFILE: &[&str] = &["FirstName", "LastName", "Nickname", "Phone", "Email"];
const FLAGS: &[&str] = &[
    "ClientId",
    "Enabled",
    "EnableTracking",
    "EnableLogging",
    "EnableRealTimeLocation",
];
const UPDATE_KEYS: &[&str] = &[
    "FirstName",
    "LastName",
    "Nickname",
    "Phone",
    "Email",
    "Gender",
    "Birthday",
    "MaritalStatus",
    "ChildrenCount",
    "Country",
    "District",
    "City",
    "Address",
    "ImageUrl",
    "ExternalImageUrl",
    "Status",
    "OldPassword",
    "NewPassword",
    "SendVerificationCodeForEmailPhone",
    "IdentityId",
    "IdentityProvider",
    "MobileDevice",
    "UserFields",
];
const CREATE_KEYS: &[&str] = &[
    "FirstName",
    "LastName",
    "Nickname",
    "Phone",
    "Email",
    "UserFields",
    "CustomToken",
    "CreateAccessToken",
];
const FIND_FILTERS: &[&str] = &[
    "DeviceToken",
    "Email",
    "Phone",
    "ClientId",
    "FirstName",
    "LastName",
    "FullName",
    "Country",
    "OsType",
];
const COMPANY_ID: &str = "c0a1b2c3-0000-4000-8000-00000000c001";
const APPLICATION_ID: &str = "a0a1b2c3-0000-4000-8000-00000000a001";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Active,
    Deactivated,
    Deleted,
}

impl Status {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "Active" => Some(Self::Active),
            "Deactivated" => Some(Self::Deactivated),
            "Deleted" => Some(Self::Deleted),
            _ => None,
        }
    }

    fn written(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Deactivated => "Deactivated",
            Self::Deleted => "Deleted",
        }
    }
}

#[derive(Debug, Clone)]
struct User {
    token: String,
    created: String,
    status: Status,
    profile: BTreeMap<&'static str, String>,
    country: Option<String>,
    /// The `UserFields` object, always with the five documented flags.
    flags: Map<String, Value>,
    instance_id: String,
}

fn default_flags() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("ClientId".into(), Value::Null);
    m.insert("EnableLogging".into(), json!(false));
    m.insert("EnableRealTimeLocation".into(), json!(false));
    m.insert("EnableTracking".into(), json!(true));
    m.insert("Enabled".into(), json!(true));
    m
}

struct Limits {
    token_lifetime: Duration,
    login_limit: usize,
    login_window: Duration,
    login_block: Duration,
}

struct Users {
    users: BTreeMap<String, User>,
    /// Admin JWTs and when each expires.
    access: HashMap<String, Instant>,
    /// Refresh token → the JWT it was issued with.
    refresh: HashMap<String, String>,
    /// User JWTs (from `CreateAccessToken: true`): refused on management endpoints.
    user_tokens: HashSet<String>,
    login_attempts: VecDeque<Instant>,
    blocked_until: Option<Instant>,
    limits: Limits,
}

/// The fake's handle: its state for assertions and its control for faults.
#[derive(Clone)]
pub struct Telematics {
    state: Arc<Mutex<Users>>,
    pub control: Control,
    email: String,
    password: String,
    instance_id: String,
    instance_key: String,
}

type Reply = Result<Response, Response>;

impl Telematics {
    pub fn new(creds: &crate::Credentials) -> Self {
        Self {
            state: Arc::new(Mutex::new(Users {
                users: BTreeMap::new(),
                access: HashMap::new(),
                refresh: HashMap::new(),
                user_tokens: HashSet::new(),
                login_attempts: VecDeque::new(),
                blocked_until: None,
                limits: Limits {
                    token_lifetime: Duration::from_secs(86_400),
                    login_limit: 5,
                    login_window: Duration::from_secs(60),
                    login_block: Duration::from_secs(3600),
                },
            })),
            control: Control::default(),
            email: creds.telematics_email.clone(),
            password: creds.telematics_password.clone(),
            instance_id: creds.telematics_instance_id.clone(),
            instance_key: creds.telematics_instance_key.clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Users> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/Auth/Login", post(login))
            .route("/v1/Auth/RefreshToken", post(refresh))
            .route("/v1/Registration/create", post(create))
            .route("/v1/Management/users/find", get(find))
            .route("/v1/Management/users/GetFilteredPage", post(filtered_page))
            .route("/v1/Management/users", axum::routing::put(update))
            .route("/v1/Management/users/{token}", delete(remove))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.control.clone(),
                control::layer,
            ))
    }

    // ---- knobs for tests ----

    /// The `ExpiresIn` of JWTs issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.lock().limits.token_lifetime = lifetime;
    }

    /// The login limiter: `limit` attempts per `window`, then every login is refused for
    /// `block`.
    pub fn set_login_limit(&self, limit: usize, window: Duration, block: Duration) {
        let mut st = self.lock();
        st.limits.login_limit = limit;
        st.limits.login_window = window;
        st.limits.login_block = block;
    }

    /// Whether logins are blocked now (the limit was exceeded).
    pub fn login_blocked(&self) -> bool {
        self.lock()
            .blocked_until
            .is_some_and(|t| Instant::now() < t)
    }

    /// Expires every JWT now (refresh tokens stay valid): the next call gets a 401.
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for t in self.lock().access.values_mut() {
            *t = now;
        }
    }

    /// Forgets every JWT and refresh token: only a new login helps.
    pub fn revoke_sessions(&self) {
        let mut st = self.lock();
        st.access.clear();
        st.refresh.clear();
    }

    // ---- state for assertions ----

    /// Every user (deactivated ones too), as `find` would return them.
    pub fn users(&self) -> Vec<Value> {
        self.lock()
            .users
            .values()
            .map(|u| read_form(u, false))
            .collect()
    }

    pub fn user(&self, device_token: &str) -> Option<Value> {
        self.lock()
            .users
            .get(device_token)
            .map(|u| read_form(u, false))
    }

    /// Users whose `UserFields.ClientId` is `client_id`.
    pub fn by_client_id(&self, client_id: &str) -> Vec<Value> {
        self.lock()
            .users
            .values()
            .filter(|u| u.flags.get("ClientId").and_then(Value::as_str) == Some(client_id))
            .map(|u| read_form(u, false))
            .collect()
    }

    /// The status as last written (`Active`, `Deactivated`, `Deleted`).
    pub fn written_status(&self, device_token: &str) -> Option<&'static str> {
        self.lock()
            .users
            .get(device_token)
            .map(|u| u.status.written())
    }

    /// Creates a user directly (as if an earlier create had reached Damoov).
    pub fn add_user(
        &self,
        client_id: &str,
        first_name: &str,
        last_name: &str,
        email: &str,
    ) -> String {
        let token = uuid_v4();
        let mut flags = default_flags();
        flags.insert("ClientId".into(), json!(client_id));
        let mut profile = BTreeMap::new();
        profile.insert("FirstName", first_name.to_string());
        profile.insert("LastName", last_name.to_string());
        profile.insert("Email", email.to_string());
        let user = User {
            token: token.clone(),
            created: now_iso(),
            status: Status::Active,
            profile,
            country: None,
            flags,
            instance_id: self.instance_id.clone(),
        };
        self.lock().users.insert(token.clone(), user);
        token
    }

    /// Changes a user's status behind roster's back.
    pub fn set_status(&self, device_token: &str, status: &str) {
        if let (Some(s), Some(u)) = (
            Status::parse(status),
            self.lock().users.get_mut(device_token),
        ) {
            u.status = s;
        }
    }

    /// Sets one `UserFields` flag behind roster's back (e.g. `EnableLogging`).
    pub fn set_flag(&self, device_token: &str, flag: &str, value: Value) {
        if let Some(u) = self.lock().users.get_mut(device_token) {
            u.flags.insert(flag.to_string(), value);
        }
    }

    /// Removes a user behind roster's back.
    pub fn remove(&self, device_token: &str) {
        self.lock().users.remove(device_token);
    }

    // ---- auth ----

    /// Checks the admin JWT.
    fn admin(&self, headers: &HeaderMap) -> Result<(), Response> {
        let unauthorized = || error(StatusCode::UNAUTHORIZED, "Unauthorized", "", "");
        let token = crate::control::bearer(headers).ok_or_else(unauthorized)?;
        let st = self.lock();
        if st.user_tokens.contains(token) {
            return Err(error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "Authorization",
                "A user token cannot manage users.",
            ));
        }
        match st.access.get(token) {
            Some(expires) if Instant::now() < *expires => Ok(()),
            _ => Err(unauthorized()),
        }
    }

    fn issue(&self, st: &mut Users) -> Value {
        let access = format!("eyJhbGciOiJIUzI1NiJ9.{}.{}", random_hex(24), random_hex(16));
        let refresh = random_hex(32);
        let lifetime = st.limits.token_lifetime;
        st.access.insert(access.clone(), Instant::now() + lifetime);
        st.refresh.insert(refresh.clone(), access.clone());
        json!({
            "AccessToken": { "Token": access, "ExpiresIn": lifetime.as_secs() },
            "RefreshToken": refresh
        })
    }
}

/// Now as `2026-06-12T10:00:00.123456` (UTC, no offset, as Damoov writes it).
fn now_iso() -> String {
    let (time, micros) = crate::clock::utc_now();
    format!("{time}.{micros:06}")
}
