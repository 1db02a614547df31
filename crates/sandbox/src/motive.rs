//! A stateful fake of Motive's users API, after `shared/vendors/motive.md`.
//!
//! - Auth: `X-Api-Key: <key>` or `Authorization: Bearer <token>`; otherwise 401
//!   `{"error_message": "invalid API key"}` (the body seen live).
//! - `POST /v1/users` (201), `PUT /v1/users/{id}` (merge; `null` clears),
//!   `GET /v1/users/{id}`, `GET /v1/users` (`page_no`/`per_page`, envelope
//!   `{"users":[{"user":…}],"pagination":{…}}`), `GET /v1/users/lookup_by_external_id`
//!   (both `external_id` and `integration_name` required; 404 when none).
//! - Validation: `time_tracking_mode`/`eld_mode` pairs (logs+logs, logs+none,
//!   timecards+exempt, not_required+exempt) on create and on the merged update; `role`
//!   and `status` vocabularies; first and last name present; the
//!   (`external_id`, `integration_name`) pair, `email` and `username` unique. Errors are
//!   400 `{"error_message": …}`. Unknown fields are refused, so a connector cannot send
//!   something Motive would not understand and still pass.
//! - No rate limit (none is documented or was observed); tests inject 429/5xx.
//!
//! Assumptions where Motive's docs are silent are the same as the notes' suggestions:
//! create answers 201; unknown ids answer 404 `{"error_message":"Record not found"}`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::control::{self, Control};

const FIELDS: &[&str] = &[
    "first_name",
    "last_name",
    "email",
    "username",
    "phone",
    "phone_ext",
    "password",
    "role",
    "status",
    "eld_mode",
    "time_tracking_mode",
    "time_zone",
    "duty_status",
    "cycle",
    "violation_alerts",
    "driver_company_id",
    "dot_id",
    "carrier_name",
    "carrier_street",
    "carrier_city",
    "carrier_state",
    "carrier_zip",
    "terminal_street",
    "terminal_city",
    "terminal_state",
    "terminal_zip",
    "drivers_license_number",
    "drivers_license_state",
    "exception_24_hour_restart",
    "exception_8_hour_break",
    "exception_wait_time",
    "exception_short_haul",
    "exception_ca_farm_school_bus",
    "exception_adverse_driving",
    "export_combined",
    "export_recap",
    "export_odometers",
    "metric_units",
    "minute_logs",
    "yard_moves_enabled",
    "personal_conveyance_enabled",
    "manual_driving_enabled",
    "group_ids",
    "group_visibility",
    "custom_user_role",
    "external_ids_attributes",
];
const PAIRS: &[(&str, &str)] = &[
    ("logs", "logs"),
    ("logs", "none"),
    ("timecards", "exempt"),
    ("not_required", "exempt"),
];

#[derive(Default)]
pub struct Users {
    users: BTreeMap<i64, Map<String, Value>>,
    /// Who holds each unique key (see `unique_keys`): Motive's uniqueness checks and
    /// external-id lookups answer from here instead of scanning every user, so the fake's
    /// own work does not grow with its size and skew throughput measurements.
    index: HashMap<String, BTreeSet<i64>>,
    next_id: i64,
    next_ext_id: i64,
    /// Whether external ids are compared without regard to case (`E1001` = `e1001`), as
    /// a database with a case-insensitive collation would. Motive does not document how
    /// it compares them; roster must be safe either way (see
    /// `Motive::ignore_case_in_external_ids`).
    ext_ignore_case: bool,
}

impl Users {
    fn put(&mut self, id: i64, user: Map<String, Value>) {
        self.take(id);
        for k in unique_keys(&user, self.ext_ignore_case) {
            self.index.entry(k).or_default().insert(id);
        }
        self.users.insert(id, user);
    }

    fn take(&mut self, id: i64) -> Option<Map<String, Value>> {
        let old = self.users.remove(&id)?;
        for k in unique_keys(&old, self.ext_ignore_case) {
            if let Some(ids) = self.index.get_mut(&k) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.index.remove(&k);
                }
            }
        }
        Some(old)
    }

    /// Users other than `self_id` holding `key`.
    fn holders(&self, key: &str, self_id: Option<i64>) -> impl Iterator<Item = i64> + '_ {
        self.index
            .get(key)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |&id| Some(id) != self_id)
    }
}

/// The keys Motive keeps unique: email and username (case-insensitively) and each
/// (integration, external id) pair.
fn unique_keys(u: &Map<String, Value>, ext_ignore_case: bool) -> Vec<String> {
    let mut keys: Vec<String> = ["email", "username"]
        .into_iter()
        .filter_map(|k| str_field(u, k).map(|v| field_key(k, v)))
        .collect();
    keys.extend(
        ext_ids(u)
            .iter()
            .map(|(e, i)| ext_key(e, i, ext_ignore_case)),
    );
    keys
}

fn field_key(field: &str, value: &str) -> String {
    format!("{field}\0{}", value.to_ascii_lowercase())
}

fn ext_key(external_id: &str, integration: &str, ignore_case: bool) -> String {
    if ignore_case {
        format!("ext\0{integration}\0{}", external_id.to_lowercase())
    } else {
        format!("ext\0{integration}\0{external_id}")
    }
}

/// The fake's handle: its state for assertions and its control for faults.
#[derive(Clone)]
pub struct Motive {
    state: Arc<Mutex<Users>>,
    pub control: Control,
    api_key: String,
    token: String,
}

type Reply = Result<Response, Response>;

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error_message": message }))).into_response()
}

impl Motive {
    pub fn new(api_key: &str, token: &str) -> Self {
        Self {
            state: Arc::new(Mutex::new(Users {
                next_id: 800_001,
                next_ext_id: 900_001,
                ..Users::default()
            })),
            control: Control::default(),
            api_key: api_key.to_string(),
            token: token.to_string(),
        }
    }

    /// From now on, external ids compare without regard to case, for lookups and
    /// uniqueness alike (`E1001` finds `e1001`'s user). Motive does not say how it
    /// compares them; this is the behaviour roster must survive. Call it before the first
    /// user is created.
    pub fn ignore_case_in_external_ids(&self) {
        let mut st = self.lock();
        assert!(st.users.is_empty(), "set before the first user");
        st.ext_ignore_case = true;
    }

    fn lock(&self) -> MutexGuard<'_, Users> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/users", get(list).post(create))
            .route("/v1/users/lookup_by_external_id", get(lookup))
            .route("/v1/users/{id}", get(fetch).put(update))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.control.clone(),
                control::layer,
            ))
    }

    /// Every user, as Motive would return it.
    pub fn users(&self) -> Vec<Value> {
        self.lock()
            .users
            .values()
            .cloned()
            .map(Value::Object)
            .collect()
    }

    pub fn user(&self, id: &str) -> Option<Value> {
        let id: i64 = id.parse().ok()?;
        self.lock().users.get(&id).cloned().map(Value::Object)
    }

    /// Users carrying this external id (any integration).
    pub fn by_external_id(&self, external_id: &str) -> Vec<Value> {
        self.lock()
            .users
            .values()
            .filter(|u| ext_ids(u).iter().any(|(e, _)| e == external_id))
            .cloned()
            .map(Value::Object)
            .collect()
    }

    /// Changes a user behind roster's back (drift tests).
    pub fn edit(&self, id: &str, field: &str, value: Value) {
        let mut st = self.lock();
        if let Ok(id) = id.parse::<i64>()
            && let Some(mut u) = st.users.get(&id).cloned()
        {
            u.insert(field.to_string(), value);
            st.put(id, u);
        }
    }

    /// Removes a user behind roster's back (drift tests).
    pub fn remove(&self, id: &str) {
        if let Ok(id) = id.parse::<i64>() {
            self.lock().take(id);
        }
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), Response> {
        let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
        let ok = key.is_some_and(|k| !self.api_key.is_empty() && k == self.api_key)
            || crate::control::has_bearer(headers, &self.token);
        if ok {
            Ok(())
        } else {
            Err(error(StatusCode::UNAUTHORIZED, "invalid API key"))
        }
    }
}

fn ext_ids(u: &Map<String, Value>) -> Vec<(String, String)> {
    u.get("external_ids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    Some((
                        e.get("external_id")?.as_str()?.to_string(),
                        e.get("integration_name")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn str_field<'a>(u: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    u.get(k).and_then(Value::as_str)
}

/// Checks a whole (merged) user record; `self_id` is excluded from uniqueness checks.
fn validate(st: &Users, u: &Map<String, Value>, self_id: Option<i64>) -> Result<(), Response> {
    let bad = |m: &str| Err(error(StatusCode::BAD_REQUEST, m));
    for k in u.keys() {
        if !FIELDS.contains(&k.as_str())
            && !matches!(
                k.as_str(),
                "id" | "external_ids" | "created_at" | "updated_at"
            )
        {
            return bad(&format!("unknown attribute '{k}' for User"));
        }
    }
    for k in ["first_name", "last_name"] {
        if str_field(u, k).is_none_or(|s| s.trim().is_empty()) {
            return bad(&format!("{} can't be blank", k.replace('_', " ")));
        }
    }
    let role = str_field(u, "role").unwrap_or("driver");
    if !["driver", "fleet_user", "admin"].contains(&role) {
        return bad(&format!("Role '{role}' is not a valid role"));
    }
    let status = str_field(u, "status").unwrap_or("active");
    if !["active", "deactivated"].contains(&status) {
        return bad(&format!("Status '{status}' is not valid"));
    }
    let ttm = str_field(u, "time_tracking_mode").unwrap_or("logs");
    let eld = str_field(u, "eld_mode").unwrap_or("logs");
    if !PAIRS.contains(&(ttm, eld)) {
        return bad(&format!(
            "Time tracking mode '{ttm}' is not compatible with ELD mode '{eld}'"
        ));
    }
    for (k, what) in [("email", "Email"), ("username", "Username")] {
        if let Some(v) = str_field(u, k)
            && st.holders(&field_key(k, v), self_id).next().is_some()
        {
            return bad(&format!("{what} has already been taken"));
        }
    }
    Ok(())
}

/// Applies `external_ids_attributes` to `u`, enforcing pair uniqueness.
fn apply_external_ids(
    st: &mut Users,
    u: &mut Map<String, Value>,
    attrs: Option<Value>,
    self_id: Option<i64>,
) -> Result<(), Response> {
    let Some(attrs) = attrs else { return Ok(()) };
    let Some(items) = attrs.as_array() else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "external_ids_attributes must be a list",
        ));
    };
    let mut current = u
        .get("external_ids")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for item in items {
        let (Some(ext), Some(integ)) = (
            item.get("external_id").and_then(Value::as_str),
            item.get("integration_name").and_then(Value::as_str),
        ) else {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "external_id and integration_name are required",
            ));
        };
        if st
            .holders(&ext_key(ext, integ, st.ext_ignore_case), self_id)
            .next()
            .is_some()
        {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "External id has already been taken",
            ));
        }
        if !current.iter().any(|c| {
            c.get("external_id").and_then(Value::as_str) == Some(ext)
                && c.get("integration_name").and_then(Value::as_str) == Some(integ)
        }) {
            let id = st.next_ext_id;
            st.next_ext_id += 1;
            current.push(json!({ "id": id, "external_id": ext, "integration_name": integ }));
        }
    }
    u.insert("external_ids".into(), Value::Array(current));
    Ok(())
}

fn now() -> String {
    // Seconds since the epoch are enough to tell writes apart in tests.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{secs}")
}

fn public(u: &Map<String, Value>) -> Value {
    let mut u = u.clone();
    u.remove("password");
    Value::Object(u)
}

async fn create(State(m): State<Motive>, headers: HeaderMap, body: Option<Json<Value>>) -> Reply {
    m.authorize(&headers)?;
    let Some(Json(Value::Object(mut body))) = body else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "request body must be a JSON object",
        ));
    };
    let attrs = body.remove("external_ids_attributes");
    let mut st = m.lock();
    validate(&st, &body, None)?;
    let mut user = body;
    apply_external_ids(&mut st, &mut user, attrs, None)?;
    let id = st.next_id;
    st.next_id += 1;
    user.insert("id".into(), json!(id));
    user.entry("status").or_insert(json!("active"));
    user.entry("role").or_insert(json!("driver"));
    user.entry("external_ids").or_insert(Value::Null);
    user.insert("created_at".into(), json!(now()));
    user.insert("updated_at".into(), json!(now()));
    let out = public(&user);
    st.put(id, user);
    Ok((StatusCode::CREATED, Json(json!({ "user": out }))).into_response())
}

async fn update(
    State(m): State<Motive>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<Value>>,
) -> Reply {
    m.authorize(&headers)?;
    let Some(Json(Value::Object(mut body))) = body else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "request body must be a JSON object",
        ));
    };
    let mut st = m.lock();
    let Some(id) = id.parse::<i64>().ok().filter(|i| st.users.contains_key(i)) else {
        return Err(error(StatusCode::NOT_FOUND, "Record not found"));
    };
    let attrs = body.remove("external_ids_attributes");
    let mut merged = st.users[&id].clone();
    for (k, v) in body {
        if v.is_null() {
            merged.remove(&k);
        } else {
            merged.insert(k, v);
        }
    }
    validate(&st, &merged, Some(id))?;
    apply_external_ids(&mut st, &mut merged, attrs, Some(id))?;
    merged.insert("updated_at".into(), json!(now()));
    let out = public(&merged);
    st.put(id, merged);
    Ok(Json(json!({ "user": out })).into_response())
}

async fn fetch(State(m): State<Motive>, headers: HeaderMap, Path(id): Path<String>) -> Reply {
    m.authorize(&headers)?;
    let st = m.lock();
    match id.parse::<i64>().ok().and_then(|i| st.users.get(&i)) {
        Some(u) => Ok(Json(json!({ "user": public(u) })).into_response()),
        None => Err(error(StatusCode::NOT_FOUND, "Record not found")),
    }
}

async fn list(
    State(m): State<Motive>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Reply {
    m.authorize(&headers)?;
    let page: usize = q
        .get("page_no")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1);
    let per_page: usize = q
        .get("per_page")
        .and_then(|s| s.parse().ok())
        .unwrap_or(25)
        .clamp(1, 100);
    let st = m.lock();
    let users: Vec<Value> = st
        .users
        .values()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|u| json!({ "user": public(u) }))
        .collect();
    Ok(Json(json!({
        "users": users,
        "pagination": { "per_page": per_page, "page_no": page, "total": st.users.len() }
    }))
    .into_response())
}

async fn lookup(
    State(m): State<Motive>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Reply {
    m.authorize(&headers)?;
    let (Some(ext), Some(integ)) = (q.get("external_id"), q.get("integration_name")) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "external_id and integration_name are required",
        ));
    };
    let st = m.lock();
    st.holders(&ext_key(ext, integ, st.ext_ignore_case), None)
        .next()
        .and_then(|id| st.users.get(&id))
        .map(|u| Json(json!({ "user": public(u) })).into_response())
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "Record not found"))
}
