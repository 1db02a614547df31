//! What every fake shares: a call log (so tests can count write calls) and fault
//! injection (so tests can make a vendor fail, rate-limit or answer slowly).
//!
//! Faults are applied in front of the vendor's handlers; a response delay is applied
//! after the handler ran, i.e. after the fake's state changed — exactly the window in
//! which a crash leaves an account at the vendor that roster never heard of.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: String,
    /// Path relative to the vendor's base URL, without the query.
    pub path: String,
    pub query: String,
    pub status: u16,
    /// The request's `User-Agent` (roster's names its HA identity: `roster/0.1.0 (roster-0)`).
    pub user_agent: String,
    /// When the request arrived.
    pub at: Instant,
}

impl Call {
    /// A call that changes state at a real vendor (anything but GET, and not a lookup).
    pub fn is_write(&self) -> bool {
        self.method != "GET"
            && !self.path.ends_with("/GetFilteredPage")
            && !self.path.ends_with("/Auth/Login")
            && !self.path.ends_with("/Auth/RefreshToken")
    }
}

/// A canned failure for the next `times` matching requests.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Option<Method>,
    /// Matches when the request path contains this text.
    pub path_contains: String,
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub times: u32,
}

impl Fault {
    pub fn new(method: Option<Method>, path_contains: &str, status: u16, body: &str) -> Self {
        Self {
            method,
            path_contains: path_contains.to_string(),
            status,
            body: body.to_string(),
            headers: Vec::new(),
            times: 1,
        }
    }

    pub fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.times > 0
            && self.method.as_ref().is_none_or(|m| m == method)
            && path.contains(&self.path_contains)
    }
}

#[derive(Debug, Clone)]
struct Delay {
    method: Method,
    path_contains: String,
    wait: Duration,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    faults: Vec<Fault>,
    delays: Vec<Delay>,
    latency: Duration,
}

/// The control handle of one fake vendor.
#[derive(Clone, Default)]
pub struct Control {
    inner: Arc<Mutex<Inner>>,
}

impl Control {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Answers matching requests only after `wait`, once the state change is made.
    pub fn delay_after_commit(&self, method: Method, path_contains: &str, wait: Duration) {
        self.lock().delays.push(Delay {
            method,
            path_contains: path_contains.to_string(),
            wait,
        });
    }

    /// Latency added before every request (benchmarks).
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    pub fn clear_faults(&self) {
        let mut g = self.lock();
        g.faults.clear();
        g.delays.clear();
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Successful state-changing calls since the log was last cleared.
    pub fn writes(&self) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.is_write() && (200..300).contains(&c.status))
            .count()
    }

    /// Every call whose status was this one.
    pub fn count_status(&self, status: u16) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.status == status)
            .count()
    }
}

/// The bearer token of a request's `Authorization` header, if it has one.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Whether the request carries `token` as its bearer token (an empty token never matches).
pub fn has_bearer(headers: &axum::http::HeaderMap, token: &str) -> bool {
    !token.is_empty() && bearer(headers) == Some(token)
}

/// axum middleware: log, inject faults, delay.
pub async fn layer(State(control): State<Control>, req: Request, next: Next) -> Response {
    let at = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let user_agent = req
        .headers()
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let (fault, latency) = {
        let mut g = control.lock();
        let fault = g
            .faults
            .iter_mut()
            .find(|f| f.matches(&method, &path))
            .map(|f| {
                f.times -= 1;
                f.clone()
            });
        (fault, g.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match fault {
        Some(f) => fault_response(&f),
        None => next.run(req).await,
    };
    let delay = control
        .lock()
        .delays
        .iter()
        .find(|d| d.method == method && path.contains(&d.path_contains))
        .map(|d| d.wait);
    control.lock().calls.push(Call {
        method: method.to_string(),
        path,
        query,
        status: response.status().as_u16(),
        user_agent,
        at,
    });
    if let Some(wait) = delay {
        tokio::time::sleep(wait).await;
    }
    response
}

fn fault_response(f: &Fault) -> Response {
    let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Body::from(f.body.clone())).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (k, v) in &f.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            response.headers_mut().insert(k, v);
        }
    }
    response
}
