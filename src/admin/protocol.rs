//! What goes over the admin socket: one JSON request (one line), one JSON answer, per
//! connection. The client keeps the connection open until the answer: closing it gives
//! the command up (a pass it asked for that has not started is not run).
//!
//! The request names the state directory the CLI means (its canonical path), so a daemon
//! answers only for its own; the command carries the command line's arguments, never a
//! secret. The answer is what the command printed and its exit code.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of this protocol; a daemon refuses a request of another version by name.
pub const VERSION: u32 = 1;

/// The largest request a daemon reads (a command line is far smaller).
pub const MAX_REQUEST: usize = 64 << 10;

/// The largest answer a client reads: two captured streams at their limit, and JSON's
/// escaping of them.
pub const MAX_ANSWER: usize = 3 * crate::out::CAPTURE_LIMIT;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub version: u32,
    /// The canonical path of the state directory the CLI's config names.
    pub state_dir: PathBuf,
    pub command: Command,
}

/// The commands a daemon answers, with the arguments of their command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Command {
    Status {
        json: bool,
    },
    History {
        person: Option<String>,
        vendor: Option<String>,
        since: Option<DateTime<Utc>>,
        json: bool,
    },
    Explain {
        person: String,
        json: bool,
    },
    /// `plan` and `reconcile` (`dry_run` for `plan` and `reconcile --dry-run`).
    Pass {
        dry_run: bool,
        force: bool,
        full: bool,
        vendors: Vec<String>,
        json: bool,
        /// `plan --upcoming`: the window in milliseconds.
        #[serde(default)]
        upcoming_ms: Option<i64>,
    },
    /// Needs the store to itself: a daemon always refuses it, saying why.
    RebuildState,
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Answer {
    /// The command ran: what it printed, and its exit code.
    Done {
        stdout: String,
        stderr: String,
        exit_code: i32,
    },
    /// The daemon would not run it (another state directory, a peer of another user, a
    /// request it cannot read); the message says why.
    Refused { message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_round_trip_as_json() {
        let r = Request {
            version: VERSION,
            state_dir: "/var/lib/roster".into(),
            command: Command::Pass {
                dry_run: false,
                force: true,
                full: false,
                vendors: vec!["motive".into()],
                json: true,
                upcoming_ms: Some(7 * 86_400_000),
            },
        };
        let text = serde_json::to_string(&r).expect("encode");
        assert!(text.contains(r#""command":"pass""#), "{text}");
        assert_eq!(serde_json::from_str::<Request>(&text).expect("decode"), r);
        let a = Answer::Done {
            stdout: "x\n".into(),
            stderr: String::new(),
            exit_code: 3,
        };
        let text = serde_json::to_string(&a).expect("encode");
        assert_eq!(serde_json::from_str::<Answer>(&text).expect("decode"), a);
        assert!(
            serde_json::from_str::<Request>(
                r#"{"version":1,"state_dir":"/x","command":{"command":"status","json":true},"token":"x"}"#
            )
            .is_err(),
            "unknown keys are refused"
        );
    }
}
