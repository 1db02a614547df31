//! The account index: per vendor, a tree `link/NAME` from the vendor's account id to the
//! one person linked to it. It is what makes "an account is linked to at most one person
//! per vendor" a property of the store rather than of the code that writes it.
//!
//! Every write of a record goes through [`write`], a sled transaction over the vendor's
//! record tree, its index and its generation (`memo`): the record's old account is released, the new one taken,
//! and a record that would link an account another person holds is refused
//! (`StoreError::Linked`) with nothing written. Records without an account (`Creating`)
//! are not indexed.
//!
//! Stores written before the index (schema < 3) are indexed on open ([`index_all`]).
//! An account that an older roster had linked to several people is unlinked from all of
//! them — no guess is made about whose it is — and reported (an ERROR log line, an
//! `unlink` history entry per person, `roster status`); the next pass links each person
//! again by lookup, and the create protocol adopts an account only for the person whose
//! identifying keys it holds.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
};
use tracing::error;

use super::{Store, StoreError, codec};
use crate::model::{Op, Outcome, PersonId};

/// `link/NAME`: account id → person id.
pub(super) const PREFIX: &str = "link/";

/// One record write for [`write`]: the person, the encoded record (`None` removes it) and
/// the account it links (`None`: none).
pub(super) struct Change<'a> {
    pub person: &'a PersonId,
    pub value: Option<&'a [u8]>,
    pub remote: Option<&'a str>,
}

/// Applies `changes` to a vendor's records and its index in one transaction: all or
/// nothing.
///
/// # Errors
/// `Linked` when a change would link an account another person holds (nothing is
/// written), `Corrupt` for a stored record whose account cannot be read, sled errors.
pub(super) fn write(
    vendor: &str,
    records: &sled::Tree,
    links: &sled::Tree,
    meta: &sled::Tree,
    changes: &[Change<'_>],
) -> Result<(), StoreError> {
    (records, links, meta)
        .transaction(|(r, l, m)| {
            for c in changes {
                apply(vendor, r, l, c)?;
            }
            // In the same transaction: no write to the records without a new generation.
            super::memo::bump(m, vendor)?;
            Ok(())
        })
        .map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Sled(e),
        })
}

fn apply(
    vendor: &str,
    r: &TransactionalTree,
    l: &TransactionalTree,
    c: &Change<'_>,
) -> Result<(), ConflictableTransactionError<StoreError>> {
    let person = c.person.as_str().as_bytes();
    let old = match r.get(person)? {
        Some(v) => codec::remote_of(&v).map_err(|message| {
            ConflictableTransactionError::Abort(StoreError::Corrupt {
                key: format!("vendor/{vendor}/{}", c.person),
                message,
            })
        })?,
        None => None,
    };
    if let Some(remote) = c.remote
        && let Some(holder) = l.get(remote.as_bytes())?
        && &*holder != person
    {
        return Err(ConflictableTransactionError::Abort(StoreError::Linked {
            vendor: vendor.to_string(),
            remote: remote.to_string(),
            holder: PersonId(String::from_utf8_lossy(&holder).into_owned()),
        }));
    }
    if let Some(old) = old.as_deref().filter(|o| Some(*o) != c.remote)
        && l.get(old.as_bytes())?.as_deref() == Some(person)
    {
        l.remove(old.as_bytes())?;
    }
    if let Some(remote) = c.remote {
        l.insert(remote.as_bytes(), person)?;
    }
    match c.value {
        Some(v) => r.insert(person, v)?,
        None => r.remove(person)?,
    };
    Ok(())
}

/// An account an older roster had linked to several people at one vendor, unlinked from
/// all of them when the store was indexed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlinked {
    pub vendor: String,
    pub remote: String,
    pub people: Vec<String>,
    pub at: DateTime<Utc>,
}

impl Unlinked {
    pub fn message(&self) -> String {
        format!(
            "account {} at {} was linked to {} people ({}) by an earlier roster; it is \
             unlinked from all of them, and the next pass links each person again by \
             lookup, adopting the account only for the person whose keys it holds",
            self.remote,
            self.vendor,
            self.people.len(),
            self.people.join(", ")
        )
    }
}

/// Builds every vendor's index from its records (a store written before the index
/// existed), unlinking every account held by more than one person. Returns those.
///
/// # Errors
/// sled errors, or a record whose account cannot be read.
pub(super) fn index_all(store: &Store) -> Result<Vec<Unlinked>, StoreError> {
    let mut unlinked = Vec::new();
    for vendor in store.vendors() {
        let records = store.tree(&vendor)?;
        let links = store.links(&vendor)?;
        links.clear()?;
        let mut shared: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for item in records.iter() {
            let (person, value) = item?;
            let key = || format!("vendor/{vendor}/{}", String::from_utf8_lossy(&person));
            let remote = codec::remote_of(&value)
                .map_err(|message| StoreError::Corrupt {
                    key: key(),
                    message,
                })?
                .filter(|r| !r.is_empty());
            let Some(remote) = remote else { continue };
            if let Some(first) = links.insert(remote.as_bytes(), person.clone())? {
                let group = shared
                    .entry(remote)
                    .or_insert_with(|| vec![String::from_utf8_lossy(&first).into_owned()]);
                group.push(String::from_utf8_lossy(&person).into_owned());
            }
        }
        let at = Utc::now();
        for (remote, people) in shared {
            let u = Unlinked {
                vendor: vendor.clone(),
                remote,
                people,
                at,
            };
            error!(vendor = %u.vendor, account = %u.remote, people = %u.people.join(", "), "{}", u.message());
            let mut batch = sled::Batch::default();
            for p in &u.people {
                batch.remove(p.as_bytes());
                store.record_history(&super::HistoryEntry {
                    time: at,
                    vendor: vendor.clone(),
                    person: p.clone(),
                    op: Op::Unlink,
                    outcome: Outcome::Skipped,
                    fields: Vec::new(),
                    message: Some(u.message()),
                })?;
            }
            // All sharers at once, so an interrupted upgrade never keeps one of them.
            records.apply_batch(batch)?;
            links.remove(u.remote.as_bytes())?;
            unlinked.push(u);
        }
    }
    Ok(unlinked)
}
