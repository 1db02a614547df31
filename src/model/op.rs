//! The names a pass gives to what it does and how it went: one enum each, so reports,
//! the audit history and metrics spell them the same way.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A call (or step) roster makes for one person at one vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Create,
    /// An existing account found by matching key and linked instead of created.
    Adopt,
    Update,
    Deactivate,
    Reactivate,
    Delete,
    Lookup,
    /// A link the store dropped because one account was linked to several people.
    Unlink,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Adopt => "adopt",
            Self::Update => "update",
            Self::Deactivate => "deactivate",
            Self::Reactivate => "reactivate",
            Self::Delete => "delete",
            Self::Lookup => "lookup",
            Self::Unlink => "unlink",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one operation (or audited call) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// Did not complete; tried again next pass.
    Failed,
    /// Cannot be sent as the source has it, or (DriveKit) not possible yet.
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a whole pass ended; each has the process exit code of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassOutcome {
    Ok,
    /// Some operations failed after all retries (they are retried next pass).
    FailedOperations,
    /// The source could not be read completely, or a safety limit tripped.
    Refused,
}

impl PassOutcome {
    pub fn exit_code(self) -> i32 {
        match self {
            Self::Ok => 0,
            Self::FailedOperations => 1,
            Self::Refused => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::FailedOperations => "failed_operations",
            Self::Refused => "refused",
        }
    }
}

/// What removal from the source means at a vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnRemove {
    #[default]
    Deactivate,
    Delete,
}

/// Why a person should not be active at a vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// `active = false` in the source.
    Inactive,
    /// Not in any of the vendor's scope groups.
    OutOfScope,
    /// No longer in the source at all.
    Removed,
    /// Past the person's `end_date` (plus any grace days).
    Ended,
}

impl Why {
    /// The machine-readable form used in reports.
    pub fn code(self) -> &'static str {
        match self {
            Self::Inactive => "inactive",
            Self::OutOfScope => "out_of_scope",
            Self::Removed => "removed",
            Self::Ended => "ended",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inactive => "inactive in the source",
            Self::OutOfScope => "out of the vendor's scope",
            Self::Removed => "removed from the source",
            Self::Ended => "past the end date",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_exit_codes() {
        assert_eq!(
            serde_json::to_value(Op::Reactivate).expect("json"),
            "reactivate"
        );
        assert_eq!(Op::Adopt.to_string(), "adopt");
        assert_eq!(
            serde_json::to_value(Outcome::Skipped).expect("json"),
            "skipped"
        );
        assert_eq!(PassOutcome::FailedOperations.exit_code(), 1);
        assert_eq!(PassOutcome::Refused.as_str(), "refused");
    }
}
