//! What kept a call from being sent, and which limit it was waiting for.

use std::time::Duration;

use crate::budget::Stop;

/// What kept a call from being sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotSent {
    #[error("not sent: roster is shutting down or lost the HA lease")]
    Shutdown,
    /// The wait for `waiting` would outlast the pass budget.
    #[error("not sent: waiting for {waiting} would outlast the pass budget (retry.pass_budget_secs = {})", .budget.as_secs())]
    OutOfTime { waiting: Waiting, budget: Duration },
    /// The remote asked for a pause longer than `retry.max_interval_secs`.
    #[error("not sent: {waiting} asks for {}s more, longer than retry.max_interval_secs = {}s; left for the next pass", .left.as_secs(), .max_hold.as_secs())]
    Held {
        waiting: Waiting,
        left: Duration,
        max_hold: Duration,
    },
}

impl NotSent {
    pub fn from_stop(stop: Stop, waiting: Waiting) -> Self {
        match stop {
            Stop::Shutdown => Self::Shutdown,
            Stop::OutOfTime(budget) => Self::OutOfTime { waiting, budget },
        }
    }
}

/// What a call was waiting for (for messages: which limit stopped it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// roster's own pacing (the configured limit, or the congestion controller).
    Pacing,
    /// The vendor's pause (`Retry-After`, or a rate-limit reset after a 429).
    VendorPause,
    /// The route's rate-limit window, as the vendor's headers announced it.
    Window(String),
    /// Damoov-style session limits (logins per minute).
    LoginLimit,
    /// The backoff between two attempts.
    Backoff,
}

impl std::fmt::Display for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pacing => f.write_str("roster's pacing of this vendor"),
            Self::VendorPause => f.write_str("the vendor's requested pause (429)"),
            Self::Window(route) => write!(f, "the vendor's rate-limit window for {route}"),
            Self::LoginLimit => f.write_str("the login limit"),
            Self::Backoff => f.write_str("the retry backoff"),
        }
    }
}
