//! Records in source order into a `Snapshot`: valid ones become people, invalid ones keep
//! their place and what can protect their person, and every record of a repeated id is
//! rejected.

use std::fmt;

use super::{InvalidRecord, RecordError, Snapshot};
use crate::model::Person;

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
