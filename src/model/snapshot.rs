//! One full read of the source: the people, and the records left out.

use std::fmt;

use super::Person;

/// One full read of the source.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub people: Vec<Person>,
    pub invalid: Vec<InvalidRecord>,
}

/// A record that was left out of the pass, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InvalidRecord {
    /// Where it is, e.g. `line 7` or `record 3`.
    pub location: String,
    /// The id, when the record has a usable one: that person keeps their current state.
    pub id: Option<String>,
    /// The email, when present: used to protect an already-linked person whose record
    /// lost its id.
    pub email: Option<String>,
    pub message: String,
}

impl fmt::Display for InvalidRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{} (id {id}): {}", self.location, self.message),
            None => write!(f, "{}: {}", self.location, self.message),
        }
    }
}
