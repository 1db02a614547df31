//! The person model every source produces and every vendor consumes.
//!
//! Owns: `Person`, `PersonId`, `Fields`. Must not: know about any vendor's wire format,
//! the store, or I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// The stable key of a person in the source of truth.
///
/// Equality is exact (case-sensitive, after trimming surrounding white space at parse
/// time): `E100` and `e100` are two people. It is never the email, which can change.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonId(pub String);

impl PersonId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for PersonId {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

/// One person as the source of truth describes them, already validated.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Person {
    pub id: PersonId,
    pub email: Option<String>,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    /// `false` means "deactivate everywhere" while keeping the person known.
    pub active: bool,
    pub groups: BTreeSet<String>,
    /// Free-form attributes; `V.F` keys carry vendor `V`'s field `F`.
    pub attributes: BTreeMap<String, String>,
}

impl Person {
    /// A person with only an id, active, for tests and builders.
    pub fn new(id: &str) -> Self {
        Self {
            id: PersonId(id.to_string()),
            active: true,
            ..Self::default()
        }
    }

    /// "First Last", or whichever half exists.
    pub fn display_name(&self) -> Option<String> {
        let parts: Vec<&str> = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// The values a vendor should hold for one person, by the vendor's own field names.
///
/// A missing key means "no value". Kept as strings so that the diff and the store are
/// vendor-agnostic; each connector converts to its wire types.
pub type Fields = BTreeMap<String, String>;

/// A field change to send: `None` clears the value at the vendor.
pub type Changes = BTreeMap<String, Option<String>>;

/// The fields whose value differs between what was pushed and what is wanted.
pub fn changes(pushed: &Fields, wanted: &Fields) -> Changes {
    let mut out = Changes::new();
    for (k, v) in wanted {
        if pushed.get(k) != Some(v) {
            out.insert(k.clone(), Some(v.clone()));
        }
    }
    for k in pushed.keys() {
        if !wanted.contains_key(k) {
            out.insert(k.clone(), None);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn changes_reports_added_changed_and_cleared_fields() {
        let pushed = f(&[("email", "a@x.io"), ("phone", "1"), ("role", "driver")]);
        let wanted = f(&[("email", "b@x.io"), ("role", "driver"), ("username", "ab")]);
        let c = changes(&pushed, &wanted);
        assert_eq!(c.get("email"), Some(&Some("b@x.io".to_string())));
        assert_eq!(c.get("phone"), Some(&None));
        assert_eq!(c.get("username"), Some(&Some("ab".to_string())));
        assert!(!c.contains_key("role"));
    }

    #[test]
    fn display_name_joins_present_parts() {
        let mut p = Person::new("1");
        assert_eq!(p.display_name(), None);
        p.last_name = Some("Doe".into());
        assert_eq!(p.display_name().as_deref(), Some("Doe"));
        p.first_name = Some("Jane".into());
        assert_eq!(p.display_name().as_deref(), Some("Jane Doe"));
    }
}
