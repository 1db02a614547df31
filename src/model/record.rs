//! What roster knows of a person's account at one vendor: the record it keeps, and an
//! account as the vendor reports it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Fields, PersonId};

/// Where a person stands at one vendor, as far as roster has pushed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordState {
    /// A create was about to be sent; whether the vendor made the account is unknown.
    /// The next pass looks the person up by matching key before creating again.
    Creating,
    Active,
    Deactivated,
}

impl RecordState {
    pub fn of(active: bool) -> Self {
        if active {
            Self::Active
        } else {
            Self::Deactivated
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorRecord {
    /// The vendor's id for the account; `None` only while `Creating`.
    pub remote_id: Option<String>,
    pub state: RecordState,
    /// The mapped fields last acknowledged by the vendor (or, while `Creating`, about to
    /// be sent). Only differences against these are pushed.
    pub fields: Fields,
    /// When roster first linked this person at this vendor.
    pub linked_at: DateTime<Utc>,
    /// When the vendor last acknowledged a write for this person.
    pub updated_at: DateTime<Utc>,
}

/// What the plan needs of a stored record. A pass streams the store's records as views
/// that answer these without decoding unchanged fields; plain `(PersonId, VendorRecord)`
/// pairs serve everywhere else.
pub trait Known {
    fn person(&self) -> &str;
    fn state(&self) -> RecordState;
    fn remote_id(&self) -> Option<&str>;
    /// Whether the fields last pushed are exactly `fields`.
    fn holds(&self, fields: &Fields) -> bool;
    /// The fields last pushed (only asked for when they differ).
    fn fields(&self) -> Fields;
}

impl Known for (PersonId, VendorRecord) {
    fn person(&self) -> &str {
        self.0.as_str()
    }
    fn state(&self) -> RecordState {
        self.1.state
    }
    fn remote_id(&self) -> Option<&str> {
        self.1.remote_id.as_deref()
    }
    fn holds(&self, fields: &Fields) -> bool {
        self.1.fields == *fields
    }
    fn fields(&self) -> Fields {
        self.1.fields.clone()
    }
}

/// An account found at the vendor (by its matching key, or in a listing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub id: String,
    /// Whether the account is active, or `None` where the vendor cannot say (DriveKit).
    pub active: Option<bool>,
    /// The account's current values, under the same names the vendor's mapping uses.
    pub fields: Fields,
}

/// The one rule for an account status the vendor cannot report (DriveKit cannot read
/// ENABLE/DISABLE back): it is never taken as a fact. Linking an account roster wants
/// active sets the status explicitly (`needs_enabling`); recording an account without
/// any call (`rebuild-state`) records what the source wants (`state_to_record`), so the
/// next pass writes only where that is wrong.
impl Remote {
    /// Whether an account roster wants active still needs an explicit enable.
    pub fn needs_enabling(&self) -> bool {
        self.active != Some(true)
    }

    /// The state to record for this account when no call is made.
    pub fn state_to_record(&self, wanted_active: bool) -> RecordState {
        RecordState::of(self.active.unwrap_or(wanted_active))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_status_is_never_a_fact() {
        let unknown = Remote {
            id: "d1".into(),
            active: None,
            fields: Fields::new(),
        };
        assert!(unknown.needs_enabling());
        assert_eq!(unknown.state_to_record(true), RecordState::Active);
        assert_eq!(unknown.state_to_record(false), RecordState::Deactivated);
        let off = Remote {
            active: Some(false),
            ..unknown.clone()
        };
        assert!(off.needs_enabling());
        assert_eq!(off.state_to_record(true), RecordState::Deactivated);
        let on = Remote {
            active: Some(true),
            ..unknown
        };
        assert!(!on.needs_enabling());
        assert_eq!(on.state_to_record(false), RecordState::Active);
    }
}
