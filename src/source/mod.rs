//! Sources of truth: where people come from.
//!
//! Owns: the `Source` trait, the `Snapshot` it returns, and building a source from
//! config. Must not: know about vendors or the store. A source either returns every
//! record it was asked for (valid ones as `Person`, broken ones as `InvalidRecord`) or
//! fails as a whole; it never returns a partial list, because a missing person is read
//! as "this person left".

pub mod file;
pub mod http;
pub mod ldap;
// Not yet used by `http.rs`: wired in once the shared HTTP layer lands.
pub mod oauth2;
mod record;
pub mod scim;
// Not yet read by `scim.rs`: wired in once the shared HTTP layer lands.
pub mod scim_groups;

use std::fmt;

use async_trait::async_trait;

use crate::config::{ConfigError, SourceSettings};
use crate::model::Person;

pub use record::{FIELDS, RecordError, parse_record};

/// One full read of the source.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub people: Vec<Person>,
    pub invalid: Vec<InvalidRecord>,
}

/// A record that was left out of the pass, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
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

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read source {path}: {message}")]
    Unreadable { path: String, message: String },
    #[error("source {path} is malformed: {message}")]
    Malformed { path: String, message: String },
}

#[async_trait]
pub trait Source: Send + Sync {
    /// Reads every record.
    ///
    /// # Errors
    /// Any failure to read the whole source; never a partial snapshot.
    async fn fetch(&self) -> Result<Snapshot, SourceError>;

    /// A short description for `roster check` and logs (no secrets).
    fn describe(&self) -> String;

    /// `roster check`'s probe: proves the source can be read and says what it found.
    /// The default reads everything; a source may do something cheaper or more telling.
    ///
    /// # Errors
    /// Whatever would make a pass refuse this source.
    async fn check(&self) -> Result<String, SourceError> {
        let snapshot = self.fetch().await?;
        let mut out = format!(
            "{} people, {} invalid records",
            snapshot.people.len(),
            snapshot.invalid.len()
        );
        for r in &snapshot.invalid {
            out.push_str(&format!("\n  invalid {r}"));
        }
        if snapshot.people.is_empty() {
            return Err(SourceError::Malformed {
                path: self.describe(),
                message: "no valid records; a pass would be refused".into(),
            });
        }
        Ok(out)
    }
}

/// A `[source]` table of `kind` with these options, for the sources' unit tests.
#[cfg(test)]
pub(crate) fn test_settings(
    kind: &str,
    options: serde_json::Map<String, serde_json::Value>,
) -> SourceSettings {
    SourceSettings {
        kind: kind.into(),
        options,
        base_dir: std::path::PathBuf::from("/nonexistent"),
    }
}

/// Every `type` the `[source]` table may have.
pub const KINDS: &[&str] = &["file", "ldap", "scim", "http"];

/// Builds the source, validating its own keys.
///
/// # Errors
/// `ConfigError` naming the key at fault.
pub fn build(settings: &SourceSettings) -> Result<Box<dyn Source>, ConfigError> {
    Ok(match settings.kind.as_str() {
        "file" => Box::new(file::FileSource::from_settings(settings)?),
        "ldap" => Box::new(ldap::LdapSource::from_settings(settings)?),
        "scim" => Box::new(scim::ScimSource::from_settings(settings)?),
        "http" => Box::new(http::HttpSource::from_settings(settings)?),
        other => {
            return Err(ConfigError::invalid(
                "source.type",
                format!("source type `{other}` is not available in this build"),
            ));
        }
    })
}

/// A snapshot from records in source order, each with its place: valid ones become
/// people, invalid ones keep their place and what can protect their person, and every
/// record of a repeated id is rejected (see `reject_duplicates`).
pub(crate) fn snapshot_from(
    records: impl IntoIterator<Item = (String, Result<Person, RecordError>)>,
) -> Snapshot {
    let mut builder = SnapshotBuilder::default();
    for (location, parsed) in records {
        builder.add(location, parsed);
    }
    builder.finish()
}

/// Where a record sits in its source. Kept for every valid person (a duplicate id names
/// the other records), so the common forms are numbers, written out only for a message.
pub(crate) enum Place {
    /// The element at this index of a JSON array.
    Element(usize),
    Line(usize),
    Text(String),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Element(i) => write!(f, "record {} (index {i})", i + 1),
            Self::Line(n) => write!(f, "line {n}"),
            Self::Text(s) => f.write_str(s),
        }
    }
}

impl From<String> for Place {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

/// `snapshot_from` for sources that are handed their records one at a time.
#[derive(Default)]
pub(crate) struct SnapshotBuilder {
    snapshot: Snapshot,
    /// The place of each person in `snapshot.people`, for duplicate messages.
    places: Vec<Place>,
}

impl SnapshotBuilder {
    pub(crate) fn add(&mut self, place: impl Into<Place>, parsed: Result<Person, RecordError>) {
        let place = place.into();
        match parsed {
            Ok(person) => {
                self.snapshot.people.push(person);
                self.places.push(place);
            }
            Err(e) => self.snapshot.invalid.push(InvalidRecord {
                location: place.to_string(),
                id: e.id,
                email: e.email,
                message: e.message,
            }),
        }
    }

    pub(crate) fn finish(mut self) -> Snapshot {
        reject_duplicates(&mut self.snapshot, &self.places);
        self.snapshot
    }
}

/// Marks every record whose id repeats another as invalid, keeping neither: which of the
/// two is right cannot be known. Finds them by sorting positions (four bytes a person)
/// rather than with a map of every id.
fn reject_duplicates(snapshot: &mut Snapshot, places: &[Place]) {
    let people = &snapshot.people;
    let mut order: Vec<u32> = (0..people.len() as u32).collect();
    // Stable: the records of one id stay in source order.
    order.sort_by(|&a, &b| people[a as usize].id.cmp(&people[b as usize].id));
    let mut dups = Vec::new();
    let mut drop = std::collections::BTreeSet::new();
    for run in order.chunk_by(|&a, &b| people[a as usize].id == people[b as usize].id) {
        if run.len() < 2 {
            continue;
        }
        for &i in run {
            let p = &people[i as usize];
            let others: Vec<String> = run
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| places[j as usize].to_string())
                .collect();
            dups.push(InvalidRecord {
                location: places[i as usize].to_string(),
                id: Some(p.id.0.clone()),
                email: p.email.as_deref().map(String::from),
                message: format!("duplicate id `{}` (also at {})", p.id, others.join(", ")),
            });
            drop.insert(i as usize);
        }
    }
    if dups.is_empty() {
        return;
    }
    let people = std::mem::take(&mut snapshot.people);
    snapshot.people = people
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, p)| p)
        .collect();
    snapshot.invalid.extend(dups);
    snapshot.invalid.sort_by(|a, b| a.location.cmp(&b.location));
}
