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

// Handlers return a ready `Response` as their error, as axum handlers do.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::control::{self, Control};

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

fn envelope(status: StatusCode, result: Value) -> Response {
    (
        status,
        Json(json!({ "Result": result, "Status": status.as_u16(), "Title": "", "Errors": [] })),
    )
        .into_response()
}

fn error(status: StatusCode, title: &str, key: &str, message: &str) -> Response {
    let errors = if key.is_empty() && message.is_empty() {
        json!([])
    } else {
        json!([{ "Key": key, "Message": message }])
    };
    (
        status,
        Json(
            json!({ "Result": null, "Status": status.as_u16(), "Title": title, "Errors": errors }),
        ),
    )
        .into_response()
}

fn bad_request(key: &str, message: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "One or more validation errors occurred.",
        key,
        message,
    )
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

fn uuid_v4() -> String {
    let b: [u8; 16] = std::array::from_fn(|_| rand::random::<u8>());
    let h: Vec<String> = b
        .iter()
        .enumerate()
        .map(|(i, x)| match i {
            6 => format!("{:02x}", (x & 0x0f) | 0x40),
            8 => format!("{:02x}", (x & 0x3f) | 0x80),
            _ => format!("{x:02x}"),
        })
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Now as `2026-06-12T10:00:00.123456` (UTC, no offset, as Damoov writes it).
fn now_iso() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// The user as `find` returns it.
fn read_form(u: &User, include_account_info: bool) -> Value {
    let p = |k: &str| u.profile.get(k).map_or(Value::Null, |v| json!(v));
    let name = |s: &str| {
        if include_account_info {
            json!(s)
        } else {
            Value::Null
        }
    };
    json!({
        "DeviceToken": u.token,
        "DateCreated": u.created,
        "Status": if u.status == Status::Active { "Active" } else { "Inactive" },
        "ActivityStatus": "No Data",
        "UserProfile": {
            "FirstName": p("FirstName"), "LastName": p("LastName"), "Gender": "None",
            "Birthday": null, "MaritalStatus": null, "ChildrenCount": null, "Address": null,
            "Country": u.country, "District": null, "City": null, "Nickname": p("Nickname"),
            "Email": p("Email"), "Phone": p("Phone"), "ImageUrl": null, "ExternalImageUrl": null
        },
        "MobileDevice": {
            "MobileUid": null, "DeviceModel": null, "OsType": null, "OsVersion": null,
            "SdkVersion": null, "AppVersion": null, "VirtualImei": "000000000000000"
        },
        "AccountInfo": {
            "CompanyId": COMPANY_ID, "CompanyName": name("Sandbox Company"),
            "ApplicationId": APPLICATION_ID, "ApplicationName": name("Sandbox App"),
            "InstanceId": u.instance_id, "InstanceName": name("Common")
        },
        "UserWallets": [],
        "IdentityId": null,
        "IdentityProvider": null,
        "UserFields": [ Value::Object(u.flags.clone()) ]
    })
}

/// Parses a request body that must be a JSON object.
fn object(body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(bad_request("$", "The request body must be a JSON object.")),
        Err(e) => Err(bad_request("$", &format!("The JSON is invalid: {e}"))),
    }
}

fn refuse_unknown(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), Response> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(bad_request(k, &format!("Unknown field '{k}'."))),
        None => Ok(()),
    }
}

/// A string-or-null field; anything else is a 400.
fn opt_str<'a>(body: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, Response> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad_request(
            key,
            &format!("The JSON value could not be converted to System.String (field {key})."),
        )),
    }
}

/// Validates a written `UserFields` object and returns it merged onto the defaults.
fn written_flags(v: &Value) -> Result<Map<String, Value>, Response> {
    let Value::Object(given) = v else {
        return Err(bad_request(
            "UserFields",
            "UserFields must be an object when written.",
        ));
    };
    let mut flags = default_flags();
    for (k, v) in given {
        match (k.as_str(), v) {
            ("ClientId", Value::String(_) | Value::Null) => {}
            (
                "Enabled" | "EnableTracking" | "EnableLogging" | "EnableRealTimeLocation",
                Value::Bool(_),
            ) => {}
            (k, _) if FLAGS.contains(&k) => {
                return Err(bad_request(
                    &format!("UserFields.{k}"),
                    "The value has the wrong type.",
                ));
            }
            (k, _) => {
                return Err(bad_request(
                    &format!("UserFields.{k}"),
                    &format!("Unknown field '{k}'."),
                ));
            }
        }
        flags.insert(k.clone(), v.clone());
    }
    Ok(flags)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

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

async fn login(State(t): State<Telematics>, body: Bytes) -> Reply {
    {
        let mut st = t.lock();
        let now = Instant::now();
        if let Some(until) = st.blocked_until {
            if now < until {
                return Err(too_many(until - now));
            }
            st.blocked_until = None;
        }
        let window = st.limits.login_window;
        while st
            .login_attempts
            .front()
            .is_some_and(|a| now.duration_since(*a) >= window)
        {
            st.login_attempts.pop_front();
        }
        st.login_attempts.push_back(now);
        if st.login_attempts.len() > st.limits.login_limit {
            let block = st.limits.login_block;
            st.blocked_until = Some(now + block);
            return Err(too_many(block));
        }
    }
    let body = object(&body)?;
    let fields = match body.get("LoginFields") {
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(bad_request(
                "LoginFields",
                "The JSON value could not be converted to System.String.",
            ));
        }
        None => {
            return Err(bad_request(
                "LoginFields",
                "The LoginFields field is required.",
            ));
        }
    };
    let password = opt_str(&body, "Password")?.unwrap_or_default();
    let inner: Value = serde_json::from_str(fields)
        .map_err(|_| bad_request("LoginFields", "LoginFields must hold a JSON object."))?;
    let email = inner
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if email.is_empty() || !email.eq_ignore_ascii_case(&t.email) || password != t.password {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Login",
            "Invalid login or password.",
        ));
    }
    let mut st = t.lock();
    let result = t.issue(&mut st);
    Ok(envelope(StatusCode::OK, result))
}

fn too_many(wait: Duration) -> Response {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "Too Many Requests",
        "Login",
        "Login rate limit exceeded; try again later.",
    );
    if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        r.headers_mut().insert("retry-after", v);
    }
    r
}

async fn refresh(State(t): State<Telematics>, body: Bytes) -> Reply {
    let body = object(&body)?;
    let access = opt_str(&body, "AccessToken")?.unwrap_or_default();
    let refresh = opt_str(&body, "RefreshToken")?.unwrap_or_default();
    let mut st = t.lock();
    if st.refresh.get(refresh).is_none_or(|a| a != access) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "RefreshToken",
            "Invalid refresh token.",
        ));
    }
    st.refresh.remove(refresh);
    st.access.remove(access);
    let result = t.issue(&mut st);
    Ok(envelope(StatusCode::OK, result))
}

async fn create(State(t): State<Telematics>, headers: HeaderMap, body: Bytes) -> Reply {
    let id_ok =
        header(&headers, "InstanceId").is_some_and(|v| v.eq_ignore_ascii_case(&t.instance_id));
    let key_ok = header(&headers, "InstanceKey").is_some_and(|v| v == t.instance_key);
    if !id_ok || !key_ok {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "InstanceKey",
            "Invalid InstanceId or InstanceKey.",
        ));
    }
    let body = object(&body)?;
    refuse_unknown(&body, CREATE_KEYS)?;
    let mut profile = BTreeMap::new();
    for k in PROFILE {
        if let Some(v) = opt_str(&body, k)?.filter(|v| !v.is_empty()) {
            profile.insert(*k, v.to_string());
        }
    }
    let flags = match body.get("UserFields") {
        None | Some(Value::Null) => default_flags(),
        Some(v) => written_flags(v)?,
    };
    let want_token = match body.get("CreateAccessToken") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad_request("CreateAccessToken", "Must be a boolean.")),
    };
    let mut st = t.lock();
    let token = match opt_str(&body, "CustomToken")? {
        None => uuid_v4(),
        Some(c) if !is_uuid(c) => return Err(bad_request("CustomToken", "Must be a UUID.")),
        Some(c) if st.users.contains_key(&c.to_ascii_lowercase()) => {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "One or more validation errors occurred.",
                "CustomToken",
                "A user with this token already exists.",
            ));
        }
        Some(c) => c.to_ascii_lowercase(),
    };
    st.users.insert(
        token.clone(),
        User {
            token: token.clone(),
            created: now_iso(),
            status: Status::Active,
            profile,
            country: None,
            flags,
            instance_id: t.instance_id.clone(),
        },
    );
    let (access, refresh) = if want_token {
        let access = format!("eyJ1c2VyIjp0cnVlfQ.{}", random_hex(24));
        st.user_tokens.insert(access.clone());
        (
            json!({ "Token": access, "ExpiresIn": 432_000 }),
            json!(random_hex(32)),
        )
    } else {
        (Value::Null, Value::Null)
    };
    Ok(envelope(
        StatusCode::OK,
        json!({ "DeviceToken": token, "AccessToken": access, "RefreshToken": refresh }),
    ))
}

/// `POST /v1/Management/users/GetFilteredPage` with the flat body of the vendor notes:
/// `PageNumber` (1-based) and `PageSize` required, `ShowInactiveUsers`,
/// `IncludeAccountInfo`, `InstanceIds` optional.
async fn filtered_page(
    State(t): State<Telematics>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Reply {
    t.admin(&headers)?;
    let Some(Json(Value::Object(b))) = body else {
        return Err(bad_request("", "A non-empty request body is required."));
    };
    let number = |k: &str| -> Result<usize, Response> {
        match b.get(k).and_then(Value::as_u64) {
            Some(n) if n >= 1 => Ok(n as usize),
            _ => Err(bad_request(
                k,
                &format!("{k} must be a whole number of 1 or more."),
            )),
        }
    };
    let (page, size) = (number("PageNumber")?, number("PageSize")?);
    let flag = |k: &str| b.get(k).and_then(Value::as_bool).unwrap_or(false);
    let (show_inactive, account_info) = (flag("ShowInactiveUsers"), flag("IncludeAccountInfo"));
    let st = t.lock();
    let all: Vec<Value> = st
        .users
        .values()
        .filter(|u| match u.status {
            Status::Active => true,
            Status::Deactivated => show_inactive,
            Status::Deleted => false,
        })
        .map(|u| read_form(u, account_info))
        .collect();
    let total = all.len();
    let pages = total.div_ceil(size);
    let users: Vec<Value> = all.into_iter().skip((page - 1) * size).take(size).collect();
    Ok(envelope(
        StatusCode::OK,
        json!({
            "Users": users,
            "HasPreviousPage": page > 1,
            "HasNextPage": page < pages,
            "TotalUsers": total,
            "TotalPages": pages,
            "CurrentPage": page,
        }),
    ))
}

async fn find(
    State(t): State<Telematics>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Reply {
    t.admin(&headers)?;
    let flag = |name: &str| -> Result<bool, Response> {
        match q.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            None => Ok(false),
            Some((_, v)) => v.parse::<bool>().map_err(|_| {
                bad_request(name, &format!("The value '{v}' is not valid for {name}."))
            }),
        }
    };
    let show_inactive = flag("ShowInactiveUsers")?;
    let account_info = flag("IncludeAccountInfo")?;
    let filters: Vec<(&str, &str)> = q
        .iter()
        .filter_map(|(k, v)| {
            FIND_FILTERS
                .iter()
                .find(|f| f.eq_ignore_ascii_case(k))
                .map(|f| (*f, v.as_str()))
        })
        .filter(|(_, v)| !v.is_empty())
        .collect();
    if filters.is_empty() {
        return Err(bad_request(
            "",
            "At least one search parameter is required.",
        ));
    }
    for (k, v) in &filters {
        if *k == "DeviceToken" && !is_uuid(v) {
            return Err(bad_request(
                k,
                &format!("The value '{v}' is not valid for DeviceToken."),
            ));
        }
        if *k == "OsType" && !matches!(*v, "android" | "iOS") {
            return Err(bad_request(
                k,
                &format!("The value '{v}' is not valid for OsType."),
            ));
        }
    }
    let st = t.lock();
    let found: Vec<Value> = st
        .users
        .values()
        .filter(|u| match u.status {
            Status::Active => true,
            Status::Deactivated => show_inactive,
            Status::Deleted => false,
        })
        .filter(|u| {
            filters.iter().all(|(k, v)| {
                let p = |name: &str| {
                    u.profile
                        .get(name)
                        .is_some_and(|x| x.eq_ignore_ascii_case(v))
                };
                match *k {
                    "DeviceToken" => u.token.eq_ignore_ascii_case(v),
                    "ClientId" => u.flags.get("ClientId").and_then(Value::as_str) == Some(*v),
                    "FullName" => {
                        let full = format!(
                            "{} {}",
                            u.profile.get("FirstName").map_or("", String::as_str),
                            u.profile.get("LastName").map_or("", String::as_str)
                        );
                        full.trim().eq_ignore_ascii_case(v)
                    }
                    "Country" => u
                        .country
                        .as_deref()
                        .is_some_and(|c| c.eq_ignore_ascii_case(v)),
                    "OsType" => false,
                    name => p(name),
                }
            })
        })
        .map(|u| read_form(u, account_info))
        .collect();
    Ok(envelope(StatusCode::OK, Value::Array(found)))
}

async fn update(State(t): State<Telematics>, headers: HeaderMap, body: Bytes) -> Reply {
    t.admin(&headers)?;
    let Some(target) = header(&headers, "UserDeviceToken").filter(|v| !v.is_empty()) else {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "One or more validation errors occurred.",
            "UserDeviceToken",
            "The UserDeviceToken header is required to update another user.",
        ));
    };
    let content_type = header(&headers, "content-type").unwrap_or_default();
    if !content_type.starts_with("application/json-patch+json") {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            "Content-Type",
            "Expected application/json-patch+json.",
        ));
    }
    let body = object(&body)?;
    refuse_unknown(&body, UPDATE_KEYS)?;
    for k in PROFILE.iter().chain(["Country"].iter()) {
        opt_str(&body, k)?;
    }
    let status = match opt_str(&body, "Status")? {
        None => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            bad_request(
                "Status",
                &format!("The JSON value '{s}' could not be converted to UserStatus (Active, Deactivated, Deleted)."),
            )
        })?),
    };
    if let Some(g) = opt_str(&body, "Gender")?
        && !["None", "Male", "Female", "Other"].contains(&g)
    {
        return Err(bad_request(
            "Gender",
            &format!("The JSON value '{g}' is not a Gender."),
        ));
    }
    if opt_str(&body, "NewPassword")?.is_some() && opt_str(&body, "OldPassword")?.is_none() {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "One or more validation errors occurred.",
            "OldPassword",
            "OldPassword is required to set NewPassword.",
        ));
    }
    let flags = match body.get("UserFields") {
        None | Some(Value::Null) => None,
        Some(v) => Some(written_flags(v)?),
    };
    let mut st = t.lock();
    let Some(user) = st
        .users
        .values_mut()
        .find(|u| u.token.eq_ignore_ascii_case(target) && u.status != Status::Deleted)
    else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "Not Found",
            "UserDeviceToken",
            "User not found.",
        ));
    };
    for k in PROFILE {
        match opt_str(&body, k)? {
            None => {}
            Some("") => {
                user.profile.remove(k);
            }
            Some(v) => {
                user.profile.insert(k, v.to_string());
            }
        }
    }
    match opt_str(&body, "Country")? {
        None => {}
        Some("") => user.country = None,
        Some(v) => user.country = Some(v.to_string()),
    }
    if let Some(s) = status {
        user.status = s;
    }
    if let Some(f) = flags {
        user.flags = f;
    }
    Ok(envelope(StatusCode::OK, Value::Null))
}

async fn remove(
    State(t): State<Telematics>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Reply {
    t.admin(&headers)?;
    let mut st = t.lock();
    let key = st
        .users
        .keys()
        .find(|k| k.eq_ignore_ascii_case(&token))
        .cloned();
    match key {
        Some(k) => {
            st.users.remove(&k);
            Ok((
                StatusCode::OK,
                Json(json!({ "Status": 200, "Title": "", "Errors": [] })),
            )
                .into_response())
        }
        None => Err(error(
            StatusCode::NOT_FOUND,
            "Not Found",
            "DeviceToken",
            "User not found.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_dates_look_like_damoov_s() {
        let u = uuid_v4();
        assert!(is_uuid(&u), "{u}");
        assert_eq!(&u[14..15], "4");
        let d = now_iso();
        assert_eq!(d.len(), 26, "{d}");
        assert_eq!(&d[10..11], "T");
    }

    #[test]
    fn written_user_fields_replace_wholesale() {
        let f = written_flags(&json!({ "Enabled": false })).expect("valid");
        assert_eq!(f["ClientId"], Value::Null);
        assert_eq!(f["EnableTracking"], json!(true));
        assert_eq!(f["Enabled"], json!(false));
        assert!(written_flags(&json!([{ "Enabled": false }])).is_err());
        assert!(written_flags(&json!({ "enabled": false })).is_err());
    }
}
