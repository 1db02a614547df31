//! Alert receivers, the counterpart of roster's `[[notify]]` targets. Base:
//! `http://ADDR/hooks`.
//!
//! - `POST /slack/services/{team}/{bot}/{secret}` behaves as a Slack incoming webhook:
//!   an unknown team/bot pair is 404 `no_service`, a wrong secret 403 `invalid_token`, a
//!   body that is not JSON 400 `invalid_payload`, one without a non-empty `text` (and
//!   without `blocks`) 400 `no_text`; otherwise the message is posted: 200 `ok`
//!   (`text/html`, as Slack answers).
//! - `POST /webhook/{token}`: a generic JSON receiver. A wrong token is 404, a body that
//!   is not a JSON object with `Content-Type: application/json` is 400; otherwise the
//!   document is kept: 204.
//!
//! Every accepted message is kept in order (`messages`); `control` logs every request
//! and injects faults (e.g. 503 for the next N requests), as for the vendor fakes.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

use crate::control::{self, Control};

/// One accepted message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `slack` or `webhook`.
    pub receiver: &'static str,
    /// The body as received (text, for checking what it does not contain).
    pub raw: String,
    pub json: Value,
}

#[derive(Clone)]
pub struct Webhooks {
    messages: Arc<Mutex<Vec<Message>>>,
    pub control: Control,
    /// `TEAM/BOT/SECRET`, the part of a Slack webhook URL after `/services/`.
    slack_path: String,
    webhook_token: String,
}

impl Webhooks {
    pub fn new(slack_path: &str, webhook_token: &str) -> Self {
        Self {
            messages: Arc::default(),
            control: Control::default(),
            slack_path: slack_path.to_string(),
            webhook_token: webhook_token.to_string(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Message>> {
        self.messages.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/slack/services/{team}/{bot}/{secret}", post(slack))
            .route("/webhook/{token}", post(webhook))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.control.clone(),
                control::layer,
            ))
    }

    /// Every accepted message, oldest first.
    pub fn messages(&self) -> Vec<Message> {
        self.lock().clone()
    }

    /// The accepted messages of one receiver (`slack` or `webhook`).
    pub fn messages_of(&self, receiver: &str) -> Vec<Message> {
        self.lock()
            .iter()
            .filter(|m| m.receiver == receiver)
            .cloned()
            .collect()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn keep(&self, receiver: &'static str, raw: &[u8], json: Value) {
        self.lock().push(Message {
            receiver,
            raw: String::from_utf8_lossy(raw).into_owned(),
            json,
        });
    }
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

async fn slack(
    State(hooks): State<Webhooks>,
    Path((team, bot, secret)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut want = hooks.slack_path.splitn(3, '/');
    let (Some(want_team), Some(want_bot), Some(want_secret)) =
        (want.next(), want.next(), want.next())
    else {
        return text(StatusCode::NOT_FOUND, "no_service");
    };
    if team != want_team || bot != want_bot {
        return text(StatusCode::NOT_FOUND, "no_service");
    }
    if secret != want_secret {
        return text(StatusCode::FORBIDDEN, "invalid_token");
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return text(StatusCode::BAD_REQUEST, "invalid_payload");
    };
    if !is_json(&headers) || !json.is_object() {
        return text(StatusCode::BAD_REQUEST, "invalid_payload");
    }
    let has_text = json["text"].as_str().is_some_and(|t| !t.trim().is_empty());
    if !has_text && !json["blocks"].is_array() {
        return text(StatusCode::BAD_REQUEST, "no_text");
    }
    hooks.keep("slack", &body, json);
    text(StatusCode::OK, "ok")
}

async fn webhook(
    State(hooks): State<Webhooks>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if token.is_empty() || token != hooks.webhook_token {
        return StatusCode::NOT_FOUND.into_response();
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(json) if json.is_object() && is_json(&headers) => {
            hooks.keep("webhook", &body, json);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => StatusCode::BAD_REQUEST.into_response(),
    }
}
