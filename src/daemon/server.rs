//! The daemon's HTTP endpoints: `/healthz`, `/readyz`, `/metrics`, `POST /trigger`.
//!
//! Must not: expose person data or secrets. `/trigger` only wakes the scheduler; it
//! never runs a pass itself, so passes still never overlap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Notify;

use super::metrics::Metrics;
use crate::config::Secret;
use crate::store::Store;

pub struct ServerState {
    pub metrics: Arc<Metrics>,
    pub store: Store,
    /// Cleared when shutdown starts, so load balancers stop routing here first.
    pub ready: AtomicBool,
    /// Wakes the scheduler for an on-demand pass.
    pub wake: Arc<Notify>,
    /// Replaced when a reload (SIGHUP) reads the config again.
    pub trigger_token: std::sync::RwLock<Option<Secret>>,
    // HA (issue 17): whether this replica leads (always true without [ha]).
    pub leader: tokio::sync::watch::Receiver<bool>,
}

impl ServerState {
    /// The bearer token `POST /trigger` wants from now on (`None` turns it off).
    pub fn set_trigger_token(&self, token: Option<Secret>) {
        *self
            .trigger_token
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = token;
    }
}

pub fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/trigger", post(trigger))
        .with_state(state)
}

async fn readyz(State(s): State<Arc<ServerState>>) -> Response {
    if !s.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match s.store.schema_version() {
        // A standby is ready: it is what takes over (HA, issue 17).
        Ok(_) if !*s.leader.borrow() => (StatusCode::OK, "ready (standby)\n").into_response(),
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store unavailable: {e}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(s): State<Arc<ServerState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn trigger(State(s): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    let token = s
        .trigger_token
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let Some(token) = token else {
        return (
            StatusCode::NOT_FOUND,
            "on-demand passes over HTTP are off (no server.trigger_token)\n",
        )
            .into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.expose().as_bytes())) {
        return (StatusCode::UNAUTHORIZED, "bad or missing bearer token\n").into_response();
    }
    // HA (issue 17): only the leader runs passes.
    if !*s.leader.borrow() {
        return (
            StatusCode::CONFLICT,
            "this replica is a standby: only the leader (the lease holder) runs passes\n",
        )
            .into_response();
    }
    s.wake.notify_one();
    (StatusCode::ACCEPTED, "pass requested\n").into_response()
}

/// The credentials of an `Authorization: Bearer …` value. The scheme is matched without
/// regard to case (RFC 9110 §11.1: auth schemes are case-insensitive), so `bearer` and
/// `BEARER` clients are not turned away.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_matches(' '))
        .filter(|t| !t.is_empty())
}

/// Compares without an early exit, so response timing says nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_matched_without_regard_to_case() {
        for (header, token) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER abc", Some("abc")),
            ("BeArEr  abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearer", None),
            ("Bearer ", None),
            ("Bearerabc", None),
        ] {
            assert_eq!(bearer(header), token, "{header:?}");
        }
    }
}
