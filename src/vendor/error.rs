//! `VendorError`: every way a vendor call can fail, with what it means for a retry
//! (`Retryable`), for a session (`AuthError`), and for the report (`kind`).

use std::time::Duration;

use crate::http::session::{AuthError, AuthFailure, LoginLimit};
use crate::http::{self, NotSent};
use crate::retry::{Retryable, Verdict};

#[derive(Debug, Clone, thiserror::Error)]
pub enum VendorError {
    /// Connection refused, reset, timed out: the call may or may not have arrived.
    #[error("request failed: {0}")]
    Transport(String),
    /// The vendor refused the call for its rate (a 429, or its own way of saying so).
    #[error("rate limited by the vendor (429{})", .retry_after.map(|d| format!(", asked to wait {}s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// roster did not send the call: its pacing, the vendor's pause, the pass budget or
    /// shutdown stopped it first (the message says which).
    #[error(transparent)]
    NotSent(NotSent),
    /// roster did not log in: the vendor's login limit (`limit`) would be exceeded.
    #[error(
        "not sent: login limit ({} logins per {}s) reached, next login possible in {}s{}",
        .limit.attempts, .limit.window.as_secs(), .wait.as_secs(),
        .last.as_ref().map(|l| format!("; the last login failed: {l}")).unwrap_or_default()
    )]
    LoginLimited {
        limit: LoginLimit,
        wait: Duration,
        last: Option<String>,
    },
    #[error("server error {status}: {detail}")]
    Server { status: u16, detail: String },
    /// The vendor refused this person's data; retrying the same call cannot help.
    #[error("rejected ({status}): {detail}")]
    Rejected { status: u16, detail: String },
    /// Bad or insufficient credentials: stop calling this vendor for this pass.
    #[error("credentials rejected ({status}): {detail}")]
    Auth { status: u16, detail: String },
    /// The vendor's setup refuses this call for everyone until an operator fixes it
    /// (e.g. Rocket.Chat's two-factor requirement): reported per person, not retried,
    /// and `fix` logged once per pass.
    #[error("{detail}; to fix: {fix}")]
    Setup { detail: String, fix: &'static str },
    #[error("not found: {0}")]
    NotFound(String),
    /// A create collided with an existing account: look it up and adopt it.
    #[error("already exists: {0}")]
    Exists(String),
    /// The account cannot be made by roster and does not exist yet (DriveKit).
    #[error("{0}")]
    Waiting(String),
    #[error("not supported by this vendor: {0}")]
    Unsupported(&'static str),
    /// The vendor answered with something roster does not understand (or will not
    /// follow: a redirect to another host, a reply over its size cap).
    #[error("unexpected response: {0}")]
    Protocol(String),
}

impl VendorError {
    /// Whether trying the same call again, later, may succeed.
    pub fn is_retryable(&self) -> bool {
        self.verdict() != Verdict::Never
    }

    /// The HTTP status of the vendor's answer, for the failures that are one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Server { status, .. }
            | Self::Rejected { status, .. }
            | Self::Auth { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The class, as reports and metrics name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Transport(_) => "transport",
            Self::RateLimited { .. } => "rate_limited",
            Self::NotSent(_) => "not_sent",
            Self::LoginLimited { .. } => "login_limited",
            Self::Server { .. } => "server",
            Self::Rejected { .. } => "rejected",
            Self::Auth { .. } => "auth",
            Self::Setup { .. } => "setup",
            Self::NotFound(_) => "not_found",
            Self::Exists(_) => "exists",
            Self::Waiting(_) => "waiting",
            Self::Unsupported(_) => "unsupported",
            Self::Protocol(_) => "protocol",
        }
    }
}

impl Retryable for VendorError {
    fn verdict(&self) -> Verdict {
        match self {
            Self::Transport(_) | Self::Server { .. } => Verdict::Backoff,
            Self::RateLimited {
                retry_after: Some(wait),
            } => Verdict::After(*wait),
            Self::RateLimited { retry_after: None } => Verdict::Backoff,
            Self::LoginLimited { wait, .. } => Verdict::After(*wait),
            _ => Verdict::Never,
        }
    }
}

impl From<http::Error> for VendorError {
    fn from(e: http::Error) -> Self {
        match e {
            http::Error::NotSent(n) => Self::NotSent(n),
            e @ http::Error::Transport { .. } => Self::Transport(e.to_string()),
            other => Self::Protocol(other.to_string()),
        }
    }
}

/// How a login's or a refresh's failure bears on the session (`http::session`).
impl AuthError for VendorError {
    fn failure(&self) -> AuthFailure {
        match self {
            Self::Auth { .. } | Self::Rejected { .. } | Self::NotFound(_) | Self::Protocol(_) => {
                AuthFailure::Refused
            }
            Self::RateLimited { retry_after } => AuthFailure::Throttled(*retry_after),
            _ => AuthFailure::Unavailable,
        }
    }

    fn login_limited(limit: LoginLimit, wait: Duration, last: Option<String>) -> Self {
        Self::LoginLimited { limit, wait, last }
    }
}
