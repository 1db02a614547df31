//! A stateful fake of DriveQuant DriveKit's admin driver API, after
//! `shared/vendors/drivekit.md`.
//!
//! - Auth: `DriveKit-Admin-API-Key: <key>` on every call; otherwise 401 (JSON).
//! - Drivers cannot be created through the API: they appear when the mobile app signs
//!   in with a user id. Tests do that with [`DriveKit::sign_in`].
//! - `PUT /v3/drivekit/admin/drivers/{userId}/identity` with `firstname`, `lastname`,
//!   `pseudo`: 200 with a plain-text sentence; 404 plain text `Driver Not Found`. The
//!   three fields are REPLACED together (an omitted one is cleared): the docs do not say,
//!   and this is the worst case for a client.
//! - `PUT …/{userId}/status` with `{"status": "ENABLE" | "DISABLE"}`: 200
//!   `{"status": …}`; 400 for any other value; 404 (JSON) for an unknown driver. The
//!   status cannot be read back through the API (only [`DriveKit::status`] shows it).
//! - `PUT …/{userId}/metadata` with `{"metaData": {string: string}}`: merge; 400
//!   `Invalid data format` otherwise.
//! - `GET /v3/drivekit/admin/drivers/account/page`: `pageSize` 1000..=20000 (default
//!   1000), 0-based `pageNumber`, `status` ∈ ALL, NO_TRIP, EXPIRED, ACTIVE; 400 outside
//!   those. Drivers are listed in user id order.
//! - Unknown body keys are refused with 400 so that a misspelt field (DriveKit's names
//!   are lower-case `firstname`, `lastname`) cannot pass unnoticed.
//!
//! Assumptions where the docs are silent: error bodies are `{"message": …}`; a newly
//! signed-in driver is enabled; ENABLE/DISABLE are idempotent; the listing includes
//! disabled drivers; the fake has no trips, so `status=EXPIRED`/`ACTIVE` list nobody.

// Handlers return a ready `Response` as their error, as axum handlers do.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::control::{self, Control};

const IDENTITY: &[&str] = &["firstname", "lastname", "pseudo"];

#[derive(Debug, Clone)]
struct Driver {
    firstname: Option<String>,
    lastname: Option<String>,
    pseudo: Option<String>,
    enabled: bool,
    register_date: String,
    metadata: BTreeMap<String, String>,
}

/// The fake's handle: its state for assertions and its control for faults.
#[derive(Clone)]
pub struct DriveKit {
    drivers: Arc<Mutex<BTreeMap<String, Driver>>>,
    pub control: Control,
    api_key: String,
}

type Reply = Result<Response, Response>;

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

fn text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

fn register_date() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // The documented shape (`YYYY-MM-dd'T'HH:mm:ss.SSSZ`) with a fixed date; the seconds
    // keep sign-ins apart.
    format!(
        "2026-01-01T00:{:02}:{:02}.000+0000",
        secs / 60 % 60,
        secs % 60
    )
}

fn listed(id: &str, d: &Driver) -> Value {
    json!({
        "userId": id,
        "firstname": d.firstname,
        "lastname": d.lastname,
        "pseudo": d.pseudo,
        "registerDate": d.register_date,
        "pushDataStatus": "UNKNOWN",
        "groups": [],
        "admin": false,
        "betaTester": false,
        "smartphoneData": {},
        "clientData": d.metadata,
    })
}

fn object(body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "Bad request: expected a JSON object",
        )),
    }
}

impl DriveKit {
    pub fn new(creds: &crate::Credentials) -> Self {
        Self {
            drivers: Arc::new(Mutex::new(BTreeMap::new())),
            control: Control::default(),
            api_key: creds.drivekit_api_key.clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Driver>> {
        self.drivers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/v3/drivekit/admin/drivers/account/page", get(page))
            .route(
                "/v3/drivekit/admin/drivers/{user_id}/identity",
                put(identity),
            )
            .route("/v3/drivekit/admin/drivers/{user_id}/status", put(status))
            .route(
                "/v3/drivekit/admin/drivers/{user_id}/metadata",
                put(metadata),
            )
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.control.clone(),
                control::layer,
            ))
    }

    /// A driver signs in from the mobile app with `user_id` (the only way drivers come
    /// to exist). Returns false when that driver already existed.
    pub fn sign_in(&self, user_id: &str) -> bool {
        let mut drivers = self.lock();
        if drivers.contains_key(user_id) {
            return false;
        }
        drivers.insert(
            user_id.to_string(),
            Driver {
                firstname: None,
                lastname: None,
                pseudo: None,
                enabled: true,
                register_date: register_date(),
                metadata: BTreeMap::new(),
            },
        );
        true
    }

    /// The driver deletes their account from the app.
    pub fn remove(&self, user_id: &str) {
        self.lock().remove(user_id);
    }

    /// A driver as the listing shows it, plus `"status"` (which the API never shows).
    pub fn driver(&self, user_id: &str) -> Option<Value> {
        self.lock().get(user_id).map(|d| {
            let mut v = listed(user_id, d);
            v["status"] = json!(if d.enabled { "ENABLE" } else { "DISABLE" });
            v
        })
    }

    /// `ENABLE` or `DISABLE`, as last set.
    pub fn status(&self, user_id: &str) -> Option<&'static str> {
        self.lock()
            .get(user_id)
            .map(|d| if d.enabled { "ENABLE" } else { "DISABLE" })
    }

    /// Every driver, as `driver` shows them.
    pub fn drivers(&self) -> Vec<Value> {
        let ids: Vec<String> = self.lock().keys().cloned().collect();
        ids.iter().filter_map(|id| self.driver(id)).collect()
    }

    /// Changes a driver's identity behind roster's back (as the app or console might).
    pub fn set_identity(&self, user_id: &str, firstname: &str, lastname: &str, pseudo: &str) {
        if let Some(d) = self.lock().get_mut(user_id) {
            let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
            d.firstname = some(firstname);
            d.lastname = some(lastname);
            d.pseudo = some(pseudo);
        }
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), Response> {
        let key = headers
            .get("DriveKit-Admin-API-Key")
            .and_then(|v| v.to_str().ok());
        if key.is_some_and(|k| !self.api_key.is_empty() && k == self.api_key) {
            Ok(())
        } else {
            Err(error(StatusCode::UNAUTHORIZED, "Invalid API Key"))
        }
    }
}

fn not_found_text() -> Response {
    text(StatusCode::NOT_FOUND, "Driver Not Found")
}

async fn identity(
    State(dk): State<DriveKit>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Reply {
    dk.authorize(&headers)?;
    let body = object(&body)?;
    if let Some(k) = body.keys().find(|k| !IDENTITY.contains(&k.as_str())) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            &format!("Unknown field '{k}'"),
        ));
    }
    let mut values = BTreeMap::new();
    for k in IDENTITY {
        let v = match body.get(*k) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    &format!("'{k}' must be a string"),
                ));
            }
        };
        values.insert(*k, v);
    }
    let mut drivers = dk.lock();
    let Some(d) = drivers.get_mut(&user_id) else {
        return Err(not_found_text());
    };
    d.firstname = values.remove("firstname").flatten();
    d.lastname = values.remove("lastname").flatten();
    d.pseudo = values.remove("pseudo").flatten();
    Ok(text(
        StatusCode::OK,
        "The driver's identity has been updated.",
    ))
}

async fn status(
    State(dk): State<DriveKit>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Reply {
    dk.authorize(&headers)?;
    let body = object(&body)?;
    let enabled = match body.get("status").and_then(Value::as_str) {
        Some("ENABLE") => true,
        Some("DISABLE") => false,
        _ => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "Bad request: status must be ENABLE or DISABLE",
            ));
        }
    };
    if body.len() > 1 {
        return Err(error(StatusCode::BAD_REQUEST, "Bad request: unknown field"));
    }
    let mut drivers = dk.lock();
    let Some(d) = drivers.get_mut(&user_id) else {
        return Err(error(StatusCode::NOT_FOUND, "Driver Not Found"));
    };
    d.enabled = enabled;
    let s = if enabled { "ENABLE" } else { "DISABLE" };
    Ok(Json(json!({ "status": s })).into_response())
}

async fn metadata(
    State(dk): State<DriveKit>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Reply {
    dk.authorize(&headers)?;
    let invalid = || error(StatusCode::BAD_REQUEST, "Invalid data format");
    let body = object(&body).map_err(|_| invalid())?;
    let Some(Value::Object(meta)) = body.get("metaData") else {
        return Err(invalid());
    };
    let mut values = BTreeMap::new();
    for (k, v) in meta {
        values.insert(k.clone(), v.as_str().ok_or_else(invalid)?.to_string());
    }
    let mut drivers = dk.lock();
    let Some(d) = drivers.get_mut(&user_id) else {
        return Err(error(StatusCode::NOT_FOUND, "Driver Not Found"));
    };
    d.metadata.extend(values);
    Ok(Json(json!({ "metaData": d.metadata })).into_response())
}

async fn page(
    State(dk): State<DriveKit>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Reply {
    dk.authorize(&headers)?;
    let int = |name: &str, default: i64| -> Result<i64, Response> {
        match q.get(name) {
            None => Ok(default),
            Some(v) => v.parse::<i64>().map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    &format!("'{name}' must be an integer"),
                )
            }),
        }
    };
    let size = int("pageSize", 1000)?;
    let number = int("pageNumber", 0)?;
    if !(1000..=20_000).contains(&size) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "pageSize must be between 1000 and 20000",
        ));
    }
    if number < 0 {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "pageNumber must be 0 or more",
        ));
    }
    let status = q.get("status").map_or("ALL", String::as_str);
    if !["ALL", "NO_TRIP", "EXPIRED", "ACTIVE"].contains(&status) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "status must be ALL, NO_TRIP, EXPIRED or ACTIVE",
        ));
    }
    let drivers = dk.lock();
    let all: Vec<(&String, &Driver)> = match status {
        "ALL" | "NO_TRIP" => drivers.iter().collect(),
        _ => Vec::new(),
    };
    let (size, number) = (size as usize, number as usize);
    let data: Vec<Value> = all
        .iter()
        .skip(number.saturating_mul(size))
        .take(size)
        .map(|(id, d)| listed(id, d))
        .collect();
    let has_next = all.len() > number.saturating_add(1).saturating_mul(size);
    Ok(Json(json!({
        "data": data,
        "totalElements": all.len(),
        "pageNumber": number,
        "pageSize": size,
        "hasNext": has_next,
    }))
    .into_response())
}
