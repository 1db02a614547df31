//! A person as the source of truth describes them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::When;

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
    // `Box<str>` rather than `String`: no spare capacity, 8 bytes less each, and a pass
    // holds every person at once.
    pub email: Option<Box<str>>,
    pub username: Option<Box<str>>,
    pub first_name: Option<Box<str>>,
    pub last_name: Option<Box<str>>,
    pub phone: Option<Box<str>>,
    /// `false` means "deactivate everywhere" while keeping the person known.
    pub active: bool,
    pub groups: Groups,
    /// Free-form attributes; `V.F` keys carry vendor `V`'s field `F`.
    pub attributes: BTreeMap<String, String>,
    /// First day (or moment): before it, less `provision_days_before_start`, the person
    /// is not yet joined (`plan::dates`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<When>,
    /// From this day (or moment), plus `end_grace_days`, the person is deactivated as if
    /// `active = false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<When>,
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
        fn part(s: &Option<Box<str>>) -> Option<&str> {
            s.as_deref().filter(|s| !s.is_empty())
        }
        match (part(&self.first_name), part(&self.last_name)) {
            (Some(first), Some(last)) => Some(format!("{first} {last}")),
            (Some(one), None) | (None, Some(one)) => Some(one.to_string()),
            (None, None) => None,
        }
    }
}

/// A person's groups: sorted, each once.
///
/// A boxed slice rather than a `BTreeSet`: the set's smallest node is about 300 bytes, and
/// a pass holds a million people at once.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct Groups(Box<[String]>);

impl Groups {
    pub fn contains(&self, group: &str) -> bool {
        self.0.binary_search_by(|g| g.as_str().cmp(group)).is_ok()
    }

    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether no group is in `other`.
    pub fn is_disjoint(&self, other: &BTreeSet<String>) -> bool {
        !self.0.iter().any(|g| other.contains(g))
    }
}

impl FromIterator<String> for Groups {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        let mut v: Vec<String> = iter.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        Self(v.into_boxed_slice())
    }
}

impl<'a> FromIterator<&'a str> for Groups {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        iter.into_iter().map(String::from).collect()
    }
}

impl From<Vec<String>> for Groups {
    fn from(v: Vec<String>) -> Self {
        v.into_iter().collect()
    }
}

impl From<Groups> for Vec<String> {
    fn from(g: Groups) -> Self {
        g.0.into_vec()
    }
}

impl<'a> IntoIterator for &'a Groups {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_sorted_once_each_and_answer_membership() {
        let g: Groups = ["ops", "drivers", "ops"].into_iter().collect();
        assert_eq!(g.iter().collect::<Vec<_>>(), ["drivers", "ops"]);
        assert!(g.contains("ops") && !g.contains("op"));
        let scope: BTreeSet<String> = ["staff".to_string()].into();
        assert!(g.is_disjoint(&scope));
        let scope: BTreeSet<String> = ["drivers".to_string()].into();
        assert!(!g.is_disjoint(&scope));
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
