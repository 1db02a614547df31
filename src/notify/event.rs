//! PURE: what a pass's `Report` says about each alertable condition.
//!
//! A condition is a problem (refused pass, credentials rejected, operations failing) and,
//! for the vendor problems, the vendor. Each pass observes a condition as active, as
//! clear, or not at all — a refused pass calls no vendor, and a pass that called a vendor
//! only over a broken network learned nothing about its credentials — and a condition
//! that was not observed keeps whatever state it had.

use serde::{Deserialize, Serialize};

use super::config::EventName;
use crate::report::{Credentials, Report};

/// What can be wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    PassRefused,
    CredentialsRejected,
    OperationsFailed,
}

impl Problem {
    /// The event a target subscribes to for this problem.
    pub fn event(self) -> EventName {
        match self {
            Problem::PassRefused => EventName::PassRefused,
            Problem::CredentialsRejected => EventName::CredentialsRejected,
            Problem::OperationsFailed => EventName::OperationsFailed,
        }
    }
}

/// One problem, and where: the unit that is alerted, repeated and recovered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Condition {
    pub problem: Problem,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
}

impl Condition {
    pub fn pass_refused() -> Self {
        Self {
            problem: Problem::PassRefused,
            vendor: None,
        }
    }

    pub fn at(problem: Problem, vendor: &str) -> Self {
        Self {
            problem,
            vendor: Some(vendor.to_string()),
        }
    }

    /// A stable name: `pass_refused`, `credentials_rejected/motive`.
    pub fn key(&self) -> String {
        let name = self.problem.event().as_str();
        match &self.vendor {
            Some(v) => format!("{name}/{v}"),
            None => name.to_string(),
        }
    }
}

/// How a pass saw a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Active,
    Clear,
}

/// Every condition this pass could see, and how. A dry run observes nothing.
pub fn observe(report: &Report) -> Vec<(Condition, Seen)> {
    let mut out = Vec::new();
    if report.dry_run {
        return out;
    }
    if report.refused.is_some() {
        // Nothing was pushed, so the vendors' conditions are unknown.
        out.push((Condition::pass_refused(), Seen::Active));
        return out;
    }
    out.push((Condition::pass_refused(), Seen::Clear));
    for (name, v) in &report.vendors {
        let failed = if v.failed > 0 {
            Seen::Active
        } else {
            Seen::Clear
        };
        match v.credentials {
            // Every operation after the 401 fails for that one reason, which the
            // credentials alert already says: the failures are not observed separately.
            Some(Credentials::Rejected) => {
                out.push((
                    Condition::at(Problem::CredentialsRejected, name),
                    Seen::Active,
                ));
            }
            Some(Credentials::Accepted) => {
                out.push((
                    Condition::at(Problem::CredentialsRejected, name),
                    Seen::Clear,
                ));
                out.push((Condition::at(Problem::OperationsFailed, name), failed));
            }
            None => out.push((Condition::at(Problem::OperationsFailed, name), failed)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::VendorReport;

    fn seen(report: &Report, key: &str) -> Option<Seen> {
        observe(report)
            .into_iter()
            .find(|(c, _)| c.key() == key)
            .map(|(_, s)| s)
    }

    #[test]
    fn a_refused_pass_observes_only_the_refusal() {
        let mut r = Report {
            refused: Some("safety limit".into()),
            ..Report::default()
        };
        r.vendors.insert(
            "motive".into(),
            VendorReport {
                failed: 0,
                ..VendorReport::default()
            },
        );
        let all = observe(&r);
        assert_eq!(all, vec![(Condition::pass_refused(), Seen::Active)]);
        r.dry_run = true;
        assert!(observe(&r).is_empty(), "a dry run alerts nothing");
    }

    #[test]
    fn vendor_conditions_follow_failures_and_credentials() {
        let mut r = Report::default();
        r.vendors.insert(
            "motive".into(),
            VendorReport {
                failed: 3,
                credentials: Some(Credentials::Rejected),
                ..VendorReport::default()
            },
        );
        r.vendors.insert(
            "rocketchat".into(),
            VendorReport {
                failed: 1,
                credentials: Some(Credentials::Accepted),
                ..VendorReport::default()
            },
        );
        r.vendors
            .insert("telematics".into(), VendorReport::default());
        assert_eq!(seen(&r, "pass_refused"), Some(Seen::Clear));
        assert_eq!(seen(&r, "credentials_rejected/motive"), Some(Seen::Active));
        assert_eq!(
            seen(&r, "operations_failed/motive"),
            None,
            "covered by the credentials condition"
        );
        assert_eq!(
            seen(&r, "credentials_rejected/rocketchat"),
            Some(Seen::Clear)
        );
        assert_eq!(seen(&r, "operations_failed/rocketchat"), Some(Seen::Active));
        assert_eq!(
            seen(&r, "credentials_rejected/telematics"),
            None,
            "no call, nothing learned about the credentials"
        );
        assert_eq!(seen(&r, "operations_failed/telematics"), Some(Seen::Clear));
    }
}
