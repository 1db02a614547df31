//! What every fake shares: a call log (so tests can count write calls) and fault
//! injection (so tests can make a vendor fail, rate-limit or answer slowly), including
//! time-windowed storms of 429s (`Control::storm`).
//!
//! Faults are applied in front of the vendor's handlers; a response delay is applied
//! after the handler ran, i.e. after the fake's state changed — exactly the window in
//! which a crash leaves an account at the vendor that roster never heard of.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

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
    /// When the request arrived (the wall of `std`, not tokio's paused clock).
    pub at: std::time::Instant,
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
    /// And, when set, when the query contains this text (one page of a paged list:
    /// `startIndex=51`).
    pub query_contains: Option<String>,
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
            query_contains: None,
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

    /// Only requests whose query contains `text` (e.g. one page: `startIndex=51&`).
    pub fn query_contains(mut self, text: &str) -> Self {
        self.query_contains = Some(text.to_string());
        self
    }

    fn matches(&self, method: &Method, path: &str, query: &str) -> bool {
        self.times > 0
            && self.method.as_ref().is_none_or(|m| m == method)
            && path.contains(&self.path_contains)
            && self
                .query_contains
                .as_ref()
                .is_none_or(|q| query.contains(q.as_str()))
    }
}

#[derive(Debug, Clone)]
struct Delay {
    method: Method,
    path_contains: String,
    wait: Duration,
}

/// How a storm's 429s say when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StormReply {
    /// `Retry-After: N` (seconds), as most vendors send it.
    RetryAfter(u64),
    /// A 429 with no hint at all.
    Bare,
    /// Rocket.Chat's way: no `Retry-After`, but `X-RateLimit-Limit/-Remaining/-Reset`
    /// (Reset in epoch milliseconds) with a window of this many seconds.
    RateLimitWindow(u64),
}

/// Every request answered 429 until `until` (except paths containing `spare`).
#[derive(Debug, Clone)]
struct Storm {
    until: Instant,
    reply: StormReply,
    spare: Option<String>,
}

/// A share of requests answered 429 at random, never the same path more than
/// `max_in_a_row` times in a row.
#[derive(Debug, Clone)]
struct Flaky {
    ratio: f64,
    reply: StormReply,
    max_in_a_row: u32,
    /// Consecutive refusals per path.
    in_a_row: std::collections::HashMap<String, u32>,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    faults: Vec<Fault>,
    delays: Vec<Delay>,
    storm: Option<Storm>,
    flaky: Option<Flaky>,
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

    /// Answers every request 429 for `duration` from now, then recovers by itself.
    pub fn storm(&self, duration: Duration, reply: StormReply) {
        self.lock().storm = Some(Storm {
            until: Instant::now() + duration,
            reply,
            spare: None,
        });
    }

    /// `storm`, sparing paths that contain `spare` (e.g. a login endpoint).
    pub fn storm_sparing(&self, duration: Duration, reply: StormReply, spare: &str) {
        self.lock().storm = Some(Storm {
            until: Instant::now() + duration,
            reply,
            spare: Some(spare.to_string()),
        });
    }

    /// Answers `ratio` of requests 429 at random (`reply` says how), never the same
    /// path more than `max_in_a_row` times in a row; until `clear_faults`.
    pub fn flaky(&self, ratio: f64, reply: StormReply, max_in_a_row: u32) {
        self.lock().flaky = Some(Flaky {
            ratio,
            reply,
            max_in_a_row,
            in_a_row: std::collections::HashMap::new(),
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
        g.storm = None;
        g.flaky = None;
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
    let at = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let user_agent = req
        .headers()
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let (storm, fault, latency) = {
        let mut g = control.lock();
        let mut storm = g
            .storm
            .clone()
            .filter(|s| Instant::now() < s.until)
            .filter(|s| s.spare.as_ref().is_none_or(|p| !path.contains(p)));
        if storm.is_none()
            && let Some(f) = g.flaky.as_mut()
        {
            let n = f.in_a_row.entry(path.clone()).or_insert(0);
            if *n < f.max_in_a_row && rand::random_bool(f.ratio.clamp(0.0, 1.0)) {
                *n += 1;
                storm = Some(Storm {
                    until: Instant::now(),
                    reply: f.reply,
                    spare: None,
                });
            } else {
                *n = 0;
            }
        }
        let fault = g
            .faults
            .iter_mut()
            .find(|f| f.matches(&method, &path, &query))
            .map(|f| {
                f.times -= 1;
                f.clone()
            });
        (storm, fault, g.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match (storm, fault) {
        (Some(s), _) => storm_response(&s),
        (None, Some(f)) => fault_response(&f),
        (None, None) => next.run(req).await,
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

fn storm_response(storm: &Storm) -> Response {
    let mut fault = Fault::new(
        None,
        "",
        429,
        r#"{"success":false,"error":"Too many requests. [error-too-many-requests]"}"#,
    );
    match storm.reply {
        StormReply::RetryAfter(secs) => fault = fault.header("retry-after", &secs.to_string()),
        StormReply::Bare => {}
        StormReply::RateLimitWindow(secs) => {
            let now_ms = crate::clock::epoch_ms();
            fault = fault
                .header("x-ratelimit-limit", "10")
                .header("x-ratelimit-remaining", "0")
                .header("x-ratelimit-reset", &(now_ms + secs * 1000).to_string());
        }
    }
    fault_response(&fault)
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
