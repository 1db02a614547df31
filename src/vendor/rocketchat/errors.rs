//! Rocket.Chat's error bodies, and its ways of saying "too many requests" and "two-factor
//! required", as `VendorError`s.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use serde_json::Value;

use super::VendorError;
use crate::http::{self, Reply};

/// Rocket.Chat's error bodies: `{"success":false,"error":"…","errorType":"…"}`, and the
/// legacy 401 shape `{"status":"error","message":"…"}`.
pub(super) struct ErrorBody {
    pub(super) text: Option<String>,
    pub(super) error_type: Option<String>,
}

impl ErrorBody {
    fn parse(body: &str) -> Self {
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Self {
            text: s("error").or_else(|| s("message")),
            error_type: s("errorType"),
        }
    }

    fn is(&self, error_type: &str) -> bool {
        self.error_type.as_deref() == Some(error_type)
            || self
                .text
                .as_deref()
                .is_some_and(|t| t.contains(&format!("[{error_type}]")))
    }
}

pub(super) fn classify(reply: &Reply) -> VendorError {
    let body = ErrorBody::parse(&reply.body);
    let text = body
        .text
        .clone()
        .unwrap_or_else(|| http::snippet(&reply.body));
    if reply.status == StatusCode::TOO_MANY_REQUESTS || body.is("error-too-many-requests") {
        return VendorError::RateLimited {
            retry_after: rate_limit_wait(reply, &text),
        };
    }
    if reply.status == StatusCode::BAD_REQUEST {
        if body.is("error-invalid-user") || text.trim_end().starts_with("User not found") {
            return VendorError::NotFound(text);
        }
        if body.is("totp-required") || body.is("totp-invalid") {
            return VendorError::Setup {
                detail: format!("Rocket.Chat asks for two-factor authentication ({text})"),
                fix: TWO_FACTOR_FIX,
            };
        }
    }
    crate::vendor::classify(reply, |_| Some(text.clone()))
}

/// What an operator does about `totp-required`.
pub const TWO_FACTOR_FIX: &str = "give roster a personal access token created with \
     \"Ignore Two Factor Authentication\" checked (bypassTwoFactor), as `auth_token`";

/// "… You must wait N seconds before trying this endpoint again. …"
pub(super) fn wait_from_message(text: &str) -> Option<Duration> {
    let rest = &text[text.find("wait ")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().map(Duration::from_secs)
}

/// How long a 429 asks to wait: until `X-RateLimit-Reset`, else the seconds in the
/// message, else `Retry-After`.
pub(super) fn rate_limit_wait(reply: &Reply, text: &str) -> Option<Duration> {
    let now = SystemTime::now();
    http::headers::RateInfo::parse(&reply.headers, now)
        .and_then(|i| i.reset)
        .or_else(|| wait_from_message(text))
        .or_else(|| http::headers::retry_after(&reply.headers, now))
}

/// The shared layer's rule for Rocket.Chat's own "too many requests" (also in a 400),
/// with the wait its message names.
pub(super) fn throttled(reply: &Reply) -> Option<Option<Duration>> {
    let body = ErrorBody::parse(&reply.body);
    let text = body.text.clone().unwrap_or_default();
    (reply.status == StatusCode::TOO_MANY_REQUESTS || body.is("error-too-many-requests"))
        .then(|| wait_from_message(&text))
}
