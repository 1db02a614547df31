//! The `history` tree: the audit entry of every write call, pruned by count and age,
//! and its size kept in `meta/history_len` so that pruning never counts the tree (sled's
//! `len` reads all of it: with the default 100000 entries that was a fifth of a no-op
//! pass over 20k people × 4 vendors).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{HISTORY, META, Store, StoreError, decode};

/// `meta/history_len`: how many entries the history tree holds (eight big-endian bytes).
pub(super) const KEY_HISTORY_LEN: &[u8] = b"history_len";
use crate::model::{Op, Outcome};

/// One write call roster made, for `roster history`. No secrets and no field values:
/// only the names of the fields that were sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub time: DateTime<Utc>,
    pub vendor: String,
    pub person: String,
    pub op: Op,
    /// `ok`, or `failed`/`skipped` with `message`.
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Which history entries to return.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub person: Option<String>,
    pub vendor: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

impl Store {
    /// Appends one audit entry. Keys are the time in nanoseconds plus a sled-generated
    /// id, so entries sort by time and never collide.
    ///
    /// It does not wait for the disk: the entry becomes durable with the next write that
    /// does (after a successful call, the record written right after it; otherwise the
    /// next operation's, the end of the pass, or sled's own flush within half a second),
    /// so auditing a call costs no fsync of its own.
    ///
    /// # Errors
    /// sled or encoding errors.
    pub fn record_history(&self, entry: &HistoryEntry) -> Result<(), StoreError> {
        let tree = self.db.open_tree(HISTORY)?;
        let mut key = nanos_key(entry.time).to_be_bytes().to_vec();
        key.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
        let value = serde_json::to_vec(entry).map_err(|e| StoreError::Corrupt {
            key: "history".into(),
            message: e.to_string(),
        })?;
        tree.insert(key, value)?;
        // Counted only once a prune has counted the tree (see `history_len`).
        self.db
            .open_tree(META)?
            .fetch_and_update(KEY_HISTORY_LEN, |n| {
                n.map(|n| (decode_u64(n).unwrap_or(0) + 1).to_be_bytes().to_vec())
            })?;
        Ok(())
    }

    /// Audit entries matching `filter`, oldest first.
    ///
    /// # Errors
    /// sled or decoding errors.
    pub fn history(&self, filter: &HistoryFilter) -> Result<Vec<HistoryEntry>, StoreError> {
        let tree = self.db.open_tree(HISTORY)?;
        let start = filter.since.map_or(0, nanos_key).to_be_bytes();
        let mut out = Vec::new();
        for item in tree.range(start.to_vec()..) {
            let (_, v) = item?;
            let e: HistoryEntry = decode(&v, || "history".into())?;
            if filter.person.as_ref().is_some_and(|p| *p != e.person)
                || filter.vendor.as_ref().is_some_and(|vn| *vn != e.vendor)
            {
                continue;
            }
            out.push(e);
        }
        Ok(out)
    }

    /// Drops audit entries older than `max_age` and the oldest beyond `max_entries`.
    ///
    /// # Errors
    /// sled errors.
    pub async fn prune_history(
        &self,
        max_entries: usize,
        max_age: chrono::Duration,
    ) -> Result<usize, StoreError> {
        let tree = self.db.open_tree(HISTORY)?;
        let len = self.history_len(&tree)?;
        let cutoff = nanos_key(Utc::now() - max_age).to_be_bytes();
        let mut removed = 0;
        for item in tree.range(..cutoff.to_vec()) {
            let (k, _) = item?;
            tree.remove(k)?;
            removed += 1;
        }
        let excess = len.saturating_sub(removed).saturating_sub(max_entries);
        for item in tree.iter().take(excess) {
            let (k, _) = item?;
            tree.remove(k)?;
            removed += 1;
        }
        if removed > 0 {
            // By subtraction, so that entries recorded meanwhile stay counted.
            self.db
                .open_tree(META)?
                .fetch_and_update(KEY_HISTORY_LEN, |n| {
                    let n = n.and_then(decode_u64).unwrap_or(0);
                    Some(n.saturating_sub(removed as u64).to_be_bytes().to_vec())
                })?;
            self.durable().await?;
        }
        Ok(removed)
    }

    /// How many audit entries there are: the kept count, or (once, in a store written
    /// before it was kept) the tree counted and the count kept from then on. Entries
    /// recorded while it counts may be missed; pruning then keeps a few extra.
    fn history_len(&self, tree: &sled::Tree) -> Result<usize, StoreError> {
        let meta = self.db.open_tree(META)?;
        if let Some(n) = meta.get(KEY_HISTORY_LEN)?.as_deref().and_then(decode_u64) {
            return Ok(usize::try_from(n).unwrap_or(usize::MAX));
        }
        let counted = tree.len();
        // Whoever set it first was counting too.
        let _ = meta.compare_and_swap(
            KEY_HISTORY_LEN,
            None as Option<&[u8]>,
            Some((counted as u64).to_be_bytes().to_vec()),
        )?;
        Ok(counted)
    }
}

/// A time as an ordered key: nanoseconds since 1970, clamped to what u64 nanoseconds
/// can hold (times before 1970 sort first, times after 2262 last).
fn nanos_key(t: DateTime<Utc>) -> u64 {
    match t.timestamp_nanos_opt() {
        Some(n) => n.max(0) as u64,
        None if t.timestamp() > 0 => u64::MAX,
        None => 0,
    }
}

/// A kept count: eight big-endian bytes.
fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}
