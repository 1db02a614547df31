//! A fake HR system's JSON API, the `http` source's counterpart. Base: `http://ADDR/hr`.
//!
//! Employees look like
//! `{"employeeId":"E1001","name":{"first":"Ann","last":"Lee"},"work":{"email":…,"phone":…},
//!   "status":"active"|"on_leave"|"terminated","teams":["drivers"],"fleet":{"eldMode":"logs"}}`
//! and are listed in insertion order, three ways (one per pagination style):
//!
//! - `GET /v1/employees?cursor=&limit=` → `{"data":{"employees":[…]},"links":{"next":…}}`,
//!   where `next` is a relative URL (`employees?cursor=…&limit=…`) or `null` at the end.
//! - `GET /v2/employees?page=&per_page=` (1-based) →
//!   `{"data":{"employees":[…]},"meta":{"page":N,"per_page":M,"total":T}}`; a page past
//!   the end is empty.
//! - `GET /v3/employees?offset=&limit=` → a bare JSON array, with an RFC 8288
//!   `Link: <…>; rel="next"` header (an absolute URL) while more remain.
//!
//! Every page size is capped at `max_page_size` (default 25) whatever is asked. Auth:
//! `Authorization: Bearer <token>`, with the fake's static token or one issued by its
//! OAuth2 token endpoint (`POST /hr/oauth/token`, client credentials, see `oauth.rs`;
//! scopes `employees:read`, `employees:write`), else 401
//! `{"error":"unauthorized"|"invalid_token","message":…}`; an expired token also gets
//! `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1).
//! Test hooks as in the SCIM fake: `after_list_requests`, `set_total_skew`, and
//! `set_next_loop` (a broken server whose next link points back at the same page).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::control::{self, Control};
use crate::oauth::{TokenProblem, TokenServer};

/// The scopes the token endpoint grants.
pub const SCOPES: &[&str] = &["employees:read", "employees:write"];

type Hook = Box<dyn FnOnce(&Hr) + Send>;

#[derive(Default)]
struct Staff {
    employees: Vec<Value>,
    max_page: usize,
    total_skew: i64,
    next_loop: bool,
    list_requests: usize,
    hooks: Vec<(usize, Hook)>,
}

#[derive(Clone)]
pub struct Hr {
    state: Arc<Mutex<Staff>>,
    pub control: Control,
    /// The token endpoint, for test setup and counts.
    pub oauth: TokenServer,
    token: String,
}

type Reply = Result<Response, Response>;

impl Hr {
    pub fn new(token: &str, oauth: TokenServer) -> Self {
        Self {
            state: Arc::new(Mutex::new(Staff {
                max_page: 25,
                ..Staff::default()
            })),
            control: Control::default(),
            oauth,
            token: token.to_string(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Staff> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/employees", get(by_cursor))
            .route("/v2/employees", get(by_page))
            .route("/v3/employees", get(by_link_header))
            .route("/oauth/token", axum::routing::post(token))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.control.clone(),
                control::layer,
            ))
    }

    /// Replaces everyone.
    pub fn set_employees(&self, employees: Vec<Value>) {
        self.lock().employees = employees;
    }

    pub fn employees(&self) -> Vec<Value> {
        self.lock().employees.clone()
    }

    pub fn set_max_page_size(&self, n: usize) {
        self.lock().max_page = n.max(1);
    }

    /// Adds this much to the reported `meta.total`.
    pub fn set_total_skew(&self, skew: i64) {
        self.lock().total_skew = skew;
    }

    /// Makes `/v1`'s next link point at the page just served, forever.
    pub fn set_next_loop(&self, on: bool) {
        self.lock().next_loop = on;
    }

    /// Runs `hook` right after the `n`-th list request from now has been answered.
    pub fn after_list_requests(&self, n: usize, hook: impl FnOnce(&Hr) + Send + 'static) {
        let mut g = self.lock();
        let at = g.list_requests + n;
        g.hooks.push((at, Box::new(hook)));
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), Response> {
        if crate::control::has_bearer(headers, &self.token) {
            return Ok(());
        }
        let problem = match crate::control::bearer(headers) {
            Some(t) => match self.oauth.check(t) {
                Ok(()) => return Ok(()),
                Err(p) => p,
            },
            None => TokenProblem::Unknown,
        };
        let mut r = match problem {
            TokenProblem::Unknown => (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "unauthorized", "message": "missing or invalid token"})),
            )
                .into_response(),
            TokenProblem::Expired => (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "invalid_token", "message": "the access token expired"})),
            )
                .into_response(),
        };
        let challenge = match problem {
            TokenProblem::Unknown => "Bearer realm=\"hr\"",
            TokenProblem::Expired => {
                "Bearer realm=\"hr\", error=\"invalid_token\", error_description=\"The access token expired\""
            }
        };
        r.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static(challenge));
        Err(r)
    }

    /// Takes a slice of the staff list and runs any hooks that are due.
    fn slice(&self, offset: usize, limit: Option<usize>) -> (Vec<Value>, usize, Staffing) {
        let (items, total, info, due) = {
            let mut g = self.lock();
            let limit = limit.unwrap_or(g.max_page).clamp(1, g.max_page);
            let items: Vec<Value> = g
                .employees
                .iter()
                .skip(offset)
                .take(limit)
                .cloned()
                .collect();
            let total = g.employees.len();
            let info = Staffing {
                limit,
                skewed_total: (total as i64 + g.total_skew).max(0),
                next_loop: g.next_loop,
            };
            g.list_requests += 1;
            let now = g.list_requests;
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut g.hooks)
                .into_iter()
                .partition(|(at, _)| *at <= now);
            g.hooks = later;
            (items, total, info, due)
        };
        for (_, hook) in due {
            hook(self);
        }
        (items, total, info)
    }
}

struct Staffing {
    limit: usize,
    skewed_total: i64,
    next_loop: bool,
}

async fn token(State(hr): State<Hr>, headers: HeaderMap, body: String) -> Response {
    hr.oauth.token_endpoint(&headers, &body)
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "bad_request", "message": message})),
    )
        .into_response()
}

fn number(q: &BTreeMap<String, String>, key: &str) -> Result<Option<usize>, Response> {
    match q.get(key) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| bad_request(&format!("{key} must be a non-negative integer"))),
    }
}

async fn by_cursor(
    State(hr): State<Hr>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Reply {
    hr.authorize(&headers)?;
    let offset = match q.get("cursor") {
        None => 0,
        Some(c) => c
            .strip_prefix('c')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad_request("invalid cursor"))?,
    };
    let (items, total, info) = hr.slice(offset, number(&q, "limit")?);
    let end = offset + items.len();
    let next = if info.next_loop {
        Some(format!("employees?cursor=c{offset}&limit={}", info.limit))
    } else if end < total {
        Some(format!("employees?cursor=c{end}&limit={}", info.limit))
    } else {
        None
    };
    Ok(Json(json!({"data": {"employees": items}, "links": {"next": next}})).into_response())
}

async fn by_page(
    State(hr): State<Hr>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Reply {
    hr.authorize(&headers)?;
    let page = number(&q, "page")?.unwrap_or(1);
    if page == 0 {
        return Err(bad_request("page starts at 1"));
    }
    let per_page = number(&q, "per_page")?;
    let limit = {
        let g = hr.lock();
        per_page.unwrap_or(g.max_page).clamp(1, g.max_page)
    };
    let (items, _, info) = hr.slice((page - 1) * limit, Some(limit));
    Ok(Json(json!({
        "data": {"employees": items},
        "meta": {"page": page, "per_page": info.limit, "total": info.skewed_total},
    }))
    .into_response())
}

async fn by_link_header(
    State(hr): State<Hr>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Reply {
    hr.authorize(&headers)?;
    let offset = number(&q, "offset")?.unwrap_or(0);
    let (items, total, info) = hr.slice(offset, number(&q, "limit")?);
    let end = offset + items.len();
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    let mut response = Json(Value::Array(items)).into_response();
    let mut link = format!(
        "<http://{host}/hr/v3/employees?offset=0&limit={}>; rel=\"first\"",
        info.limit
    );
    if end < total {
        link.push_str(&format!(
            ", <http://{host}/hr/v3/employees?offset={end}&limit={}>; rel=\"next\"",
            info.limit
        ));
    }
    if let Ok(v) = HeaderValue::from_str(&link) {
        response.headers_mut().insert("link", v);
    }
    Ok(response)
}
