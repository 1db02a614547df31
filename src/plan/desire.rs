//! What a vendor should hold for each person: in scope and active → the mapped fields;
//! else a reason not to be active; a person whose record is invalid is held as they are;
//! a person not yet joined is left alone (`dates`). PURE: the moment is passed in.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::Desired;
use super::dates::{DateRules, Stage};
use crate::model::{Fields, Known, MapError, Person, PersonId, Snapshot, UniqueKey, Why};

/// What planning needs of one vendor.
pub trait Target {
    /// Only people in any of these groups are in scope; `None`: everyone.
    fn scope(&self) -> Option<&BTreeSet<String>>;
    /// The fields the vendor should hold for `person`, or why it cannot be sent.
    ///
    /// # Errors
    /// Why the person cannot be sent as they are.
    fn map(&self, person: &Person) -> Result<Fields, MapError>;
    /// The values the vendor keeps unique across accounts (see `identity`).
    fn unique_keys(&self) -> &[UniqueKey] {
        &[]
    }
    /// How this vendor applies start and end dates.
    fn dates(&self) -> DateRules {
        DateRules::default()
    }
    /// Fields sent on create only (`create_only`): never updated afterwards.
    fn create_only(&self) -> &BTreeSet<String> {
        &NONE
    }
}

static NONE: BTreeSet<String> = BTreeSet::new();

/// What `target` should hold for `p` at the moment `now`.
pub fn desire(target: &dyn Target, p: &Person, now: DateTime<Utc>) -> Desired {
    if !p.active {
        return Desired::Inactive(Why::Inactive);
    }
    match target.dates().stage(p, now) {
        Stage::Undated | Stage::Joined { .. } => {}
        Stage::Ended { .. } => return Desired::Inactive(Why::Ended),
        Stage::NotYet { from } => return Desired::NotYet { from },
        Stage::Conflict(message) => return Desired::Skip(message),
    }
    if let Some(groups) = target.scope()
        && p.groups.is_disjoint(groups)
    {
        return Desired::Inactive(Why::OutOfScope);
    }
    match target.map(p) {
        Ok(fields) => Desired::Active(fields),
        Err(MapError(message)) => Desired::Skip(message),
    }
}

/// What a vendor should hold for each person the source knows.
pub fn desired_for(
    target: &dyn Target,
    people: &[Person],
    held: &BTreeSet<PersonId>,
    now: DateTime<Utc>,
) -> BTreeMap<PersonId, Desired> {
    let mut out = BTreeMap::new();
    for p in people {
        out.insert(p.id.clone(), desire(target, p, now));
    }
    for id in held {
        out.insert(id.clone(), Desired::Hold);
    }
    out
}

/// [`desired_for`] as a stream in person-id order, computed as it is consumed; `people`
/// must be sorted by id (a later duplicate wins, as in the map). Held ids win over people.
pub fn desired_sorted<'a>(
    target: &'a dyn Target,
    people: &'a [&'a Person],
    held: &'a BTreeSet<PersonId>,
    now: DateTime<Utc>,
) -> impl Iterator<Item = (&'a PersonId, Desired)> + 'a {
    let mut i = 0;
    let mut held = held.iter().peekable();
    std::iter::from_fn(move || {
        // Of a run of equal ids, the last one counts.
        while i + 1 < people.len() && people[i].id == people[i + 1].id {
            i += 1;
        }
        let person = people.get(i);
        match (person, held.peek()) {
            (None, None) => None,
            (Some(p), Some(h)) if p.id == **h => {
                i += 1;
                held.next().map(|h| (h, Desired::Hold))
            }
            (Some(p), Some(h)) if p.id > **h => held.next().map(|h| (h, Desired::Hold)),
            (None, Some(_)) => held.next().map(|h| (h, Desired::Hold)),
            (Some(p), _) => {
                i += 1;
                Some((&p.id, desire(target, p, now)))
            }
        }
    })
}

/// People whose invalid source record must not change anything: those with an id, and
/// linked people whose last pushed email matches an id-less invalid record.
pub fn held_ids<K: Known>(
    snapshot: &Snapshot,
    known: impl IntoIterator<Item = K>,
) -> BTreeSet<PersonId> {
    let mut held: BTreeSet<PersonId> = snapshot
        .invalid
        .iter()
        .filter_map(|r| r.id.clone().map(PersonId))
        .collect();
    let emails: BTreeSet<String> = snapshot
        .invalid
        .iter()
        .filter(|r| r.id.is_none())
        .filter_map(|r| r.email.as_ref().map(|e| e.to_ascii_lowercase()))
        .collect();
    if !emails.is_empty() {
        for r in known {
            if r.fields()
                .get("email")
                .is_some_and(|e| emails.contains(&e.to_ascii_lowercase()))
            {
                held.insert(PersonId(r.person().to_string()));
            }
        }
    }
    held
}
