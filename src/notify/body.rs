//! PURE: the two body formats of an alert.
//!
//! - `webhook`: roster's JSON document (`version` 1): the event, the condition, the
//!   pass's outcome and counts, and the first few errors.
//! - `slack`: `{"text": ...}`, the format of Slack's incoming webhooks (Mattermost and
//!   Rocket.Chat take it too).
//!
//! Must not: carry secrets or person data beyond person ids. Errors therefore go out as
//! their class — the report's typed `kind` (`rejected`, `auth`, …) — and the vendor's
//! HTTP status (422), never the vendor's message, which can quote what the person's
//! record holds; the refusal reason is roster's own text (as printed in the report), cut
//! to a bounded length.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::config::Format;
use super::event::Problem;
use super::state::{Alert, Change};
use crate::model::Outcome;
use crate::report::Report;

/// How many errors an alert lists.
pub const FIRST_ERRORS: usize = 5;
/// The refusal reason is cut after this many characters.
const REASON_CHARS: usize = 500;

/// The body for `format`.
pub fn render(format: Format, alert: &Alert, report: &Report, now: DateTime<Utc>) -> Value {
    match format {
        Format::Webhook => webhook(alert, report, now),
        Format::Slack => slack(alert, report),
    }
}

/// One failed operation, as an alert shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorLine<'a> {
    pub vendor: &'a str,
    pub person: &'a str,
    pub op: &'static str,
    /// The report's `kind` of the failure (`other` when it has none).
    pub class: &'a str,
    pub status: Option<u16>,
}

/// The failed operations an alert is about: the vendor's, for vendor conditions.
fn errors<'a>(alert: &'a Alert, report: &'a Report) -> (Vec<ErrorLine<'a>>, usize) {
    let (Change::Raised { .. }, Some(vendor)) = (alert.change, alert.condition.vendor.as_deref())
    else {
        return (Vec::new(), 0);
    };
    let Some((name, v)) = report.vendors.get_key_value(vendor) else {
        return (Vec::new(), 0);
    };
    let failed: Vec<ErrorLine<'a>> = v
        .errors
        .iter()
        .filter(|e| e.outcome == Outcome::Failed)
        .map(|e| ErrorLine {
            vendor: name,
            person: &e.person,
            op: e.op.as_str(),
            class: e.kind.as_deref().unwrap_or("other"),
            status: e.status,
        })
        .collect();
    let total = failed.len();
    (failed.into_iter().take(FIRST_ERRORS).collect(), total)
}

fn outcome(report: &Report) -> &'static str {
    report.outcome().as_str()
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn reason(report: &Report) -> Option<String> {
    report.refused.as_ref().map(|r| {
        let mut cut: String = r.chars().take(REASON_CHARS).collect();
        if cut.len() < r.len() {
            cut.push('…');
        }
        cut
    })
}

/// One line saying what happened, for people (both formats carry it).
pub fn summary(alert: &Alert, report: &Report) -> String {
    let vendor = alert.condition.vendor.as_deref().unwrap_or("?");
    let (lines, total) = errors(alert, report);
    match (alert.condition.problem, alert.change) {
        (Problem::PassRefused, Change::Raised { repeat, since }) => {
            let still = if repeat {
                format!(" Refused since {}.", time(since))
            } else {
                String::new()
            };
            format!(
                "roster pass refused, nothing was pushed: {}.{still}",
                reason(report).unwrap_or_default()
            )
        }
        (Problem::CredentialsRejected, Change::Raised { repeat, since }) => {
            // The refused call's status; the operations not attempted after it have none.
            let status = lines
                .iter()
                .filter(|l| l.class == "auth")
                .find_map(|l| l.status)
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            let still = if repeat {
                format!(" Rejected since {}.", time(since))
            } else {
                String::new()
            };
            format!(
                "{vendor} rejected roster's credentials{status}; no further calls were made to \
                 it in this pass ({total} operations not done).{still}"
            )
        }
        (Problem::OperationsFailed, Change::Raised { repeat, since }) => {
            let shown: Vec<String> = lines
                .iter()
                .map(|l| match l.status {
                    Some(s) => format!("{} {} ({} {s})", l.person, l.op, l.class),
                    None => format!("{} {} ({})", l.person, l.op, l.class),
                })
                .collect();
            let more = total.saturating_sub(lines.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            let still = if repeat {
                format!(" Failing since {}.", time(since))
            } else {
                String::new()
            };
            let operations = if total == 1 {
                "operation"
            } else {
                "operations"
            };
            format!(
                "{total} {operations} failed at {vendor} after all retries (they are retried \
                 next pass): {}{more}.{still}",
                shown.join(", ")
            )
        }
        (Problem::PassRefused, Change::Recovered { since }) => {
            format!(
                "roster passes are no longer refused (refused since {}).",
                time(since)
            )
        }
        (Problem::CredentialsRejected, Change::Recovered { since }) => format!(
            "{vendor} accepts roster's credentials again (rejected since {}).",
            time(since)
        ),
        (Problem::OperationsFailed, Change::Recovered { since }) => format!(
            "Operations at {vendor} succeed again (failing since {}).",
            time(since)
        ),
    }
}

/// roster's JSON document.
pub fn webhook(alert: &Alert, report: &Report, now: DateTime<Utc>) -> Value {
    let (lines, total) = errors(alert, report);
    let (status, repeat, since, recovered) = match alert.change {
        Change::Raised { repeat, since } => ("firing", repeat, since, None),
        Change::Recovered { since } => (
            "resolved",
            false,
            since,
            Some(alert.condition.problem.event().as_str()),
        ),
    };
    let vendors: serde_json::Map<String, Value> = report
        .vendors
        .iter()
        .map(|(name, v)| {
            let mut counts = json!({
                "created": v.created, "updated": v.updated, "deactivated": v.deactivated,
                "reactivated": v.reactivated, "adopted": v.adopted, "deleted": v.deleted,
                "unchanged": v.unchanged, "failed": v.failed, "skipped": v.skipped,
            });
            if let (Some(c), Some(map)) = (v.credentials, counts.as_object_mut()) {
                map.insert("credentials".into(), json!(c));
            }
            (name.clone(), counts)
        })
        .collect();
    let mut pass = json!({
        "outcome": outcome(report),
        "exit_code": report.exit_code(),
        "source": { "records": report.source.records, "invalid": report.source.invalid },
        "vendors": vendors,
    });
    if let Some(map) = pass.as_object_mut() {
        if let Some(r) = reason(report) {
            map.insert("refused".into(), json!(r));
        }
        if let Some(t) = report.started_at {
            map.insert("started_at".into(), json!(time(t)));
        }
        if let Some(t) = report.finished_at {
            map.insert("finished_at".into(), json!(time(t)));
        }
    }
    let errors: Vec<Value> = lines
        .iter()
        .map(|l| {
            json!({ "vendor": l.vendor, "person": l.person, "op": l.op,
                    "error": l.class, "status": l.status })
        })
        .collect();
    json!({
        "version": 1,
        "source": "roster",
        "event": alert.event().as_str(),
        "status": status,
        "condition": alert.condition.key(),
        "problem": alert.condition.problem.event().as_str(),
        "recovered": recovered,
        "vendor": alert.condition.vendor,
        "repeat": repeat,
        "since": time(since),
        "time": time(now),
        "summary": summary(alert, report),
        "pass": pass,
        "errors": errors,
        "errors_total": total,
    })
}

/// Slack's incoming-webhook body.
pub fn slack(alert: &Alert, report: &Report) -> Value {
    let icon = match (alert.change, alert.condition.problem) {
        (Change::Recovered { .. }, _) => ":white_check_mark:",
        (_, Problem::OperationsFailed) => ":warning:",
        (_, _) => ":rotating_light:",
    };
    json!({ "text": format!("{icon} *roster*: {}", slack_escape(&summary(alert, report))) })
}

/// Slack's three control characters in message text.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests;
