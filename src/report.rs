//! The pass report: the `--json` contract of `spec/interface.md`, the summary table, and
//! the exit code.
//!
//! Must not: hold secrets or whole person records (only ids, op names, field names and
//! messages).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Op, Outcome, PassOutcome};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub dry_run: bool,
    /// Set when the whole pass was refused (exit 3); nothing was pushed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Set when the pass stopped early because the store could not be written (exit 1):
    /// each person's entry says what reached the vendor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Set when roster was asked to stop (SIGTERM/SIGINT) while pushing: what was not
    /// done is in each vendor's `errors`, and a one-shot command exits 128 + the signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
    pub source: SourceCounts,
    pub vendors: BTreeMap<String, VendorReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The earliest moment after `started_at` at which a start or end date changes what
    /// some vendor should hold for someone: the pass's plan is stale by the clock alone
    /// from then on. The daemon runs a pass then; a cached "nothing changed" must not
    /// outlive it. `None`: no date rule is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_due: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceCounts {
    pub records: usize,
    pub invalid: usize,
    /// Each invalid record's place and what is wrong with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<SourceRecordError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecordError {
    pub location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VendorReport {
    pub created: usize,
    pub updated: usize,
    pub deactivated: usize,
    pub reactivated: usize,
    /// Accounts found at the vendor by matching key and linked instead of created.
    pub adopted: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub skipped: usize,
    pub errors: Vec<OpError>,
    /// Only in a dry run / plan: every operation the pass would make.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<PlannedOp>>,
    /// Only in a refused pass (not a dry run): what it would have done. The counts
    /// above stay what was done — nothing — so planned and done never look alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub would: Option<Would>,
    /// Only in a full pass: what was changed at the vendor behind roster's back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftReport>,
    /// What this pass learned about roster's credentials at this vendor; absent when no
    /// call answered either way (nothing to do, or only transport errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// Only with `plan --upcoming`: the changes start and end dates bring within the
    /// window, in due order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upcoming: Option<Vec<UpcomingOp>>,
}

/// Whether the vendor accepted roster's credentials in a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Credentials {
    /// At least one call got an answer past authentication.
    Accepted,
    /// A call was answered 401/403: no further calls were made to this vendor.
    Rejected,
}

/// A change that becomes due later (`plan --upcoming`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpcomingOp {
    /// From when a pass makes it.
    pub due: DateTime<Utc>,
    #[serde(flatten)]
    pub op: PlannedOp,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// How many differences were found (and, outside a dry run, repaired by this pass).
    pub found: usize,
    pub details: Vec<crate::plan::drift::Drift>,
    /// Why drift could not be checked at this vendor, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpError {
    pub person: String,
    pub op: Op,
    pub message: String,
    /// `failed` (retried next pass) or `skipped` (cannot be sent as the source has it,
    /// or — DriveKit — not possible yet).
    pub outcome: Outcome,
    /// The failure's class (`rate_limited`, `auth`, `rejected`, `transport`, `not_sent`,
    /// `store`, …), so scripts need not read messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The HTTP status the vendor answered with, when the failure is its answer
    /// (`auth` 401/403, `rejected` 4xx, `server` 5xx).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// What a refused pass would have done at one vendor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Would {
    pub created: usize,
    pub updated: usize,
    pub deactivated: usize,
    pub reactivated: usize,
    pub deleted: usize,
    pub operations: Vec<PlannedOp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedOp {
    pub person: String,
    pub op: Op,
    pub fields: Vec<String>,
    /// Why, for removals (`removed`, `inactive`, `out_of_scope`, `ended`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl PlannedOp {
    /// `create E1 [email, role]`, `deactivate E2 (ended)`.
    fn line(&self) -> String {
        let fields = if self.fields.is_empty() {
            String::new()
        } else {
            format!(" [{}]", self.fields.join(", "))
        };
        let reason = self
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        format!("{} {}{fields}{reason}", self.op, self.person)
    }
}

/// Exit codes of the interface.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED_OPS: i32 = 1;
    pub const CONFIG: i32 = 2;
    pub const REFUSED: i32 = 3;
}

impl Report {
    /// How the pass ended (the one place that decides it).
    pub fn outcome(&self) -> PassOutcome {
        if self.refused.is_some() {
            PassOutcome::Refused
        } else if self.stopped.is_some() || self.vendors.values().any(|v| v.failed > 0) {
            PassOutcome::FailedOperations
        } else {
            PassOutcome::Ok
        }
    }

    pub fn exit_code(&self) -> i32 {
        self.outcome().exit_code()
    }

    /// The human summary: one row per vendor, then every error.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mode = if self.dry_run {
            " (dry run: nothing pushed)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "source: {} record{}, {} invalid{mode}",
            self.source.records,
            if self.source.records == 1 { "" } else { "s" },
            self.source.invalid
        );
        for e in &self.source.errors {
            let _ = writeln!(out, "  invalid {}: {}", e.location, e.message);
        }
        if let Some(why) = &self.refused {
            let _ = writeln!(out, "PASS REFUSED, nothing pushed: {why}");
        }
        if let Some(why) = &self.stopped {
            let _ = writeln!(out, "PASS STOPPED: {why}");
        }
        if let Some(why) = &self.interrupted {
            let _ = writeln!(out, "PASS INTERRUPTED: {why}");
        }
        if let Some(due) = self.next_due {
            let due = due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let _ = writeln!(out, "next change by a start or end date due at {due}");
        }
        // The vendor column fits its longest label ("NAME (would)" included), so the
        // counts stay in their columns.
        let w = self
            .vendors
            .iter()
            .map(|(name, v)| {
                let would = self.dry_run || v.would.is_some();
                name.chars().count() + if would { " (would)".len() } else { 0 }
            })
            .fold(14, usize::max);
        let _ = writeln!(
            out,
            "{:<w$} {:>8} {:>8} {:>12} {:>12} {:>8} {:>8} {:>10} {:>7} {:>8}",
            "vendor",
            "created",
            "updated",
            "deactivated",
            "reactivated",
            "adopted",
            "deleted",
            "unchanged",
            "failed",
            "skipped"
        );
        let row = |out: &mut String, label: &str, counts: [usize; 6], rest: [String; 3]| {
            let _ = writeln!(
                out,
                "{:<w$} {:>8} {:>8} {:>12} {:>12} {:>8} {:>8} {:>10} {:>7} {:>8}",
                label,
                counts[0],
                counts[1],
                counts[2],
                counts[3],
                counts[4],
                counts[5],
                rest[0],
                rest[1],
                rest[2]
            );
        };
        for (name, v) in &self.vendors {
            let counts = [
                v.created,
                v.updated,
                v.deactivated,
                v.reactivated,
                v.adopted,
                v.deleted,
            ];
            let rest = [v.unchanged, v.failed, v.skipped].map(|n| n.to_string());
            // A dry run's counts are what it would do; say so on the row.
            let label = if self.dry_run {
                format!("{name} (would)")
            } else {
                name.clone()
            };
            row(&mut out, &label, counts, rest);
            if let Some(w) = &v.would {
                let counts = [
                    w.created,
                    w.updated,
                    w.deactivated,
                    w.reactivated,
                    0,
                    w.deleted,
                ];
                let rest = ["-", "-", "-"].map(String::from);
                row(&mut out, &format!("{name} (would)"), counts, rest);
            }
        }
        for (name, v) in &self.vendors {
            if let Some(d) = &v.drift {
                match &d.unavailable {
                    Some(why) => {
                        let _ = writeln!(out, "  {name}: drift not checked: {why}");
                    }
                    None => {
                        let _ = writeln!(out, "  {name}: drift found: {}", d.found);
                    }
                }
                for x in &d.details {
                    let what = match &x.kind {
                        crate::plan::drift::DriftKind::Deleted => {
                            "deleted at the vendor".to_string()
                        }
                        crate::plan::drift::DriftKind::Edited { fields } => {
                            format!("edited at the vendor: {}", fields.join(", "))
                        }
                        crate::plan::drift::DriftKind::Reenabled => {
                            "re-enabled at the vendor".into()
                        }
                        crate::plan::drift::DriftKind::Disabled => {
                            "deactivated at the vendor".into()
                        }
                    };
                    let _ = writeln!(out, "    {} {what}", x.person);
                }
            }
            let planned = v.operations.iter().flatten();
            for op in planned.chain(v.would.iter().flat_map(|w| &w.operations)) {
                let _ = writeln!(out, "  {name}: would {}", op.line());
            }
            if let Some(upcoming) = &v.upcoming {
                if upcoming.is_empty() {
                    let _ = writeln!(out, "  {name}: nothing upcoming");
                }
                for u in upcoming {
                    let due = u.due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    let _ = writeln!(out, "  {name}: upcoming {due}: {}", u.op.line());
                }
            }
            for e in &v.errors {
                let _ = writeln!(
                    out,
                    "  {name}: {} {} {}: {}",
                    e.op, e.person, e.outcome, e.message
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_runs_table_keeps_its_counts_under_their_headers() {
        let mut r = Report {
            dry_run: true,
            ..Report::default()
        };
        for name in ["chat", "telematics"] {
            let v = VendorReport {
                created: 3,
                ..VendorReport::default()
            };
            r.vendors.insert(name.into(), v);
        }
        let table = r.table();
        let lines: Vec<&str> = table.lines().collect();
        let header = lines
            .iter()
            .find(|l| l.starts_with("vendor"))
            .expect("header");
        let end = header.find("created").expect("created") + "created".len();
        for l in lines.iter().filter(|l| l.contains("(would)")) {
            assert_eq!(&l[end - 1..end], "3", "{table}");
            assert_eq!(l.len(), header.len(), "{table}");
        }
    }

    #[test]
    fn json_has_the_interface_keys_and_exit_codes_follow() {
        let mut r = Report::default();
        r.vendors.insert("motive".into(), VendorReport::default());
        let v = serde_json::to_value(&r).expect("json");
        for k in [
            "created",
            "updated",
            "deactivated",
            "reactivated",
            "unchanged",
            "failed",
            "skipped",
            "errors",
        ] {
            assert!(v["vendors"]["motive"].get(k).is_some(), "{k}");
        }
        assert!(v["vendors"]["motive"].get("operations").is_none());
        assert_eq!(v["source"]["records"], 0);
        assert_eq!(r.exit_code(), 0);
        r.vendors.get_mut("motive").expect("m").failed = 1;
        assert_eq!(r.exit_code(), 1);
        r.refused = Some("x".into());
        assert_eq!(r.exit_code(), 3);
    }
}
