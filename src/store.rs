//! The embedded state: what roster last pushed to each vendor, per person.
//!
//! Owns: every use of sled. One tree per vendor (`vendor/NAME`, key = person id, value =
//! a `VendorRecord` in the binary layout of `codec`) and a `meta` tree (schema version, last report, each vendor's
//! learned pacing rate under `pace/NAME`, each notify target's alert state under
//! `alerts/LABEL`). Must not: know
//! how records are computed. Every write is flushed before it returns, because the
//! record is what stops a second account from being created after a crash.
//!
//! Secrets are never stored: records hold only the mapped fields a vendor was sent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Fields, PersonId};

mod codec;

pub use codec::StoredRecord;

/// Bumped when the stored shapes change incompatibly. 2: vendor records in the binary
/// layout of `codec` (schema 1's JSON records are still read, and rewritten as they
/// change).
pub const SCHEMA_VERSION: u32 = 2;

/// sled's page cache in MiB unless `state_cache_mb` says otherwise (sled's own default
/// is 1 GiB). 128 MiB holds 100k people × 4 vendors, so a no-op pass reads no page from
/// disk, and keeps a pass over a million people under 1 GiB (see the benchmark).
pub const DEFAULT_CACHE_MB: u64 = 128;

const META: &str = "meta";
const KEY_SCHEMA: &[u8] = b"schema_version";
const KEY_LAST_REPORT: &[u8] = b"last_report";
const KEY_SOURCE_COUNT: &[u8] = b"last_source_count";
const HISTORY: &str = "history";
/// `meta/pace/NAME`: a vendor's learned rate (`PaceRecord`).
const PACE_PREFIX: &str = "pace/";
/// `meta/alerts/LABEL`: what a notify target has been alerted of (`notify::state`).
const ALERTS_PREFIX: &str = "alerts/";

/// The rate pacing settled on for a vendor at the end of a pass (after a 429), so the
/// next pass starts there instead of provoking the limit again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaceRecord {
    pub rate_per_sec: f64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the state directory {path} is in use by another roster process (only one may run \
         on a state directory at a time)"
    )]
    Locked { path: PathBuf },
    #[error("cannot open the state directory {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("state store error: {0}")]
    Sled(#[from] sled::Error),
    #[error("state store flush did not complete: {0}")]
    Flush(String),
    #[error("state store record {key} is unreadable: {message}")]
    Corrupt { key: String, message: String },
    #[error(
        "the state directory was written by a newer roster (schema {found}, this one knows \
         {supported}); refusing to touch it"
    )]
    Schema { found: u32, supported: u32 },
}

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

/// One write call roster made, for `roster history`. No secrets and no field values:
/// only the names of the fields that were sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub time: DateTime<Utc>,
    pub vendor: String,
    pub person: String,
    /// `create`, `update`, `deactivate`, `reactivate`, `delete`.
    pub op: String,
    /// `ok`, or `failed` with `message`.
    pub outcome: String,
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

/// The sled database. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    commits: Arc<GroupCommit>,
}

/// Group commit: every write waits until it is on disk, but writes that arrive while a
/// flush is running share the next one instead of each paying for its own fsync (a pass
/// pushing to a vendor at concurrency C acknowledges up to C calls at once).
#[derive(Default)]
struct GroupCommit {
    /// Tickets handed out, one per write that asked to be made durable.
    issued: AtomicU64,
    /// Every ticket up to this one is on disk.
    durable: AtomicU64,
    /// One flush at a time; waiters queue here and most find their ticket covered.
    flushing: tokio::sync::Mutex<()>,
}

impl Store {
    /// Opens (creating if needed) the store in `dir` with the default cache.
    ///
    /// # Errors
    /// `Locked` when another process holds the directory; `Schema` for a newer layout.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_MB)
    }

    /// Opens (creating if needed) the store in `dir` with a page cache of `cache_mb` MiB.
    ///
    /// # Errors
    /// `Locked` when another process holds the directory; `Schema` for a newer layout.
    pub fn open_with_cache(dir: &Path, cache_mb: u64) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_mb << 20)
            .open()
            .map_err(|source| {
                if source.to_string().contains("could not acquire lock") {
                    StoreError::Locked {
                        path: dir.to_path_buf(),
                    }
                } else {
                    StoreError::Open {
                        path: dir.to_path_buf(),
                        source,
                    }
                }
            })?;
        Self::init(db)
    }

    /// An in-memory store that vanishes on drop (tests, and `plan` without a state dir).
    ///
    /// # Errors
    /// Only if sled cannot create its temporary files.
    pub fn temporary() -> Result<Self, StoreError> {
        Self::init(sled::Config::new().temporary(true).open()?)
    }

    fn init(db: sled::Db) -> Result<Self, StoreError> {
        let meta = db.open_tree(META)?;
        match meta.get(KEY_SCHEMA)? {
            None => {
                meta.insert(KEY_SCHEMA, SCHEMA_VERSION.to_string().as_bytes())?;
                meta.flush()?;
            }
            Some(v) => {
                let found = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse::<u32>().ok())
                    .ok_or_else(|| StoreError::Corrupt {
                        key: "meta/schema_version".into(),
                        message: "not a number".into(),
                    })?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::Schema {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                if found < SCHEMA_VERSION {
                    // Older records stay readable; the marker keeps an older roster,
                    // which could not read the new ones, from opening this store.
                    meta.insert(KEY_SCHEMA, SCHEMA_VERSION.to_string().as_bytes())?;
                    meta.flush()?;
                }
            }
        }
        Ok(Self {
            db,
            commits: Arc::default(),
        })
    }

    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let meta = self.db.open_tree(META)?;
        Ok(meta
            .get(KEY_SCHEMA)?
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
            .unwrap_or(0))
    }

    fn tree(&self, vendor: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(format!("vendor/{vendor}"))?)
    }

    /// Every record of one vendor, ordered by person id.
    ///
    /// # Errors
    /// sled errors, or a record that does not decode.
    pub fn load(&self, vendor: &str) -> Result<BTreeMap<PersonId, VendorRecord>, StoreError> {
        self.stored(vendor)?
            .map(|item| {
                let stored = item?;
                Ok((stored.person_id(), stored.record()?))
            })
            .collect()
    }

    /// Every record of one vendor as a stream in person-id order (sled iterates keys in
    /// order), so a pass never holds a vendor's records in memory at once. Each comes as
    /// a `StoredRecord`: header read, fields compared in place (see `codec`).
    ///
    /// # Errors
    /// sled errors; each item: sled errors, or a record whose header does not decode.
    pub fn stored(
        &self,
        vendor: &str,
    ) -> Result<impl Iterator<Item = Result<StoredRecord, StoreError>> + use<>, StoreError> {
        let tree_name: Arc<str> = format!("vendor/{vendor}").into();
        Ok(self.tree(vendor)?.iter().map(move |item| {
            let (k, v) = item?;
            StoredRecord::parse(&tree_name, k, v)
        }))
    }

    /// One record.
    ///
    /// # Errors
    /// sled errors, or a record that does not decode.
    pub fn get(&self, vendor: &str, id: &PersonId) -> Result<Option<VendorRecord>, StoreError> {
        let tree = self.tree(vendor)?;
        match tree.get(id.as_str())? {
            Some(v) => {
                StoredRecord::parse(&format!("vendor/{vendor}").into(), id.as_str().into(), v)?
                    .record()
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    /// Writes one record and waits until it is on disk.
    ///
    /// # Errors
    /// sled errors.
    pub async fn put(
        &self,
        vendor: &str,
        id: &PersonId,
        record: &VendorRecord,
    ) -> Result<(), StoreError> {
        let bytes = codec::encode(record).map_err(|message| StoreError::Corrupt {
            key: format!("vendor/{vendor}/{id}"),
            message,
        })?;
        let tree = self.tree(vendor)?;
        tree.insert(id.as_str(), bytes)?;
        self.durable().await?;
        Ok(())
    }

    /// Writes many records of one vendor in one batch and waits until they are on disk
    /// (bulk seeding: benchmarks, imports); per-ack writes use `put`.
    ///
    /// # Errors
    /// sled or encoding errors.
    pub async fn put_many<'a>(
        &self,
        vendor: &str,
        records: impl IntoIterator<Item = (&'a PersonId, &'a VendorRecord)>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (id, record) in records {
            let bytes = codec::encode(record).map_err(|message| StoreError::Corrupt {
                key: format!("vendor/{vendor}/{id}"),
                message,
            })?;
            batch.insert(id.as_str(), bytes);
        }
        let tree = self.tree(vendor)?;
        tree.apply_batch(batch)?;
        self.durable().await?;
        Ok(())
    }

    /// Forgets one person at one vendor and waits until that is on disk.
    ///
    /// # Errors
    /// sled errors.
    pub async fn remove(&self, vendor: &str, id: &PersonId) -> Result<(), StoreError> {
        let tree = self.tree(vendor)?;
        tree.remove(id.as_str())?;
        self.durable().await?;
        Ok(())
    }

    /// Names of every vendor the store has records for.
    pub fn vendors(&self) -> Vec<String> {
        self.db
            .tree_names()
            .into_iter()
            .filter_map(|n| {
                std::str::from_utf8(&n)
                    .ok()?
                    .strip_prefix("vendor/")
                    .map(String::from)
            })
            .collect()
    }

    /// Keeps the last pass's report (any serializable shape; the store does not care).
    ///
    /// # Errors
    /// sled or encoding errors.
    pub async fn save_report<T: Serialize>(&self, report: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(report).map_err(|e| StoreError::Corrupt {
            key: "meta/last_report".into(),
            message: e.to_string(),
        })?;
        let meta = self.db.open_tree(META)?;
        meta.insert(KEY_LAST_REPORT, bytes)?;
        self.durable().await?;
        Ok(())
    }

    /// The last pass's report, if any.
    ///
    /// # Errors
    /// sled or decoding errors.
    pub fn last_report<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>, StoreError> {
        let meta = self.db.open_tree(META)?;
        meta.get(KEY_LAST_REPORT)?
            .map(|v| decode(&v, || "meta/last_report".into()))
            .transpose()
    }

    /// How many records the last completed (not refused, not dry-run) pass read.
    ///
    /// # Errors
    /// sled errors.
    pub fn last_source_count(&self) -> Result<Option<u64>, StoreError> {
        let meta = self.db.open_tree(META)?;
        Ok(meta
            .get(KEY_SOURCE_COUNT)?
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok()))
    }

    /// # Errors
    /// sled errors.
    pub async fn set_last_source_count(&self, count: u64) -> Result<(), StoreError> {
        let meta = self.db.open_tree(META)?;
        meta.insert(KEY_SOURCE_COUNT, count.to_string().as_bytes())?;
        self.durable().await?;
        Ok(())
    }

    /// What pacing learned about a vendor's rate (calls per second), if anything.
    ///
    /// # Errors
    /// sled or decoding errors.
    pub fn pace(&self, vendor: &str) -> Result<Option<PaceRecord>, StoreError> {
        let key = format!("{PACE_PREFIX}{vendor}");
        let meta = self.db.open_tree(META)?;
        meta.get(key.as_bytes())?
            .map(|v| decode(&v, || format!("meta/{key}")))
            .transpose()
    }

    /// Keeps (or, with `None`, forgets) what pacing learned about a vendor.
    ///
    /// # Errors
    /// sled or encoding errors.
    pub async fn set_pace(
        &self,
        vendor: &str,
        record: Option<&PaceRecord>,
    ) -> Result<(), StoreError> {
        let key = format!("{PACE_PREFIX}{vendor}");
        let meta = self.db.open_tree(META)?;
        match record {
            Some(r) => {
                let bytes = serde_json::to_vec(r).map_err(|e| StoreError::Corrupt {
                    key: format!("meta/{key}"),
                    message: e.to_string(),
                })?;
                meta.insert(key.as_bytes(), bytes)?;
            }
            None => {
                meta.remove(key.as_bytes())?;
            }
        }
        self.durable().await?;
        Ok(())
    }

    /// What the notify target `label` has been alerted of, if anything (the caller's
    /// shape: condition names, vendor names and times — never a URL or person data).
    ///
    /// # Errors
    /// sled or decoding errors.
    pub fn alert_state<T: for<'de> Deserialize<'de>>(
        &self,
        label: &str,
    ) -> Result<Option<T>, StoreError> {
        let key = format!("{ALERTS_PREFIX}{label}");
        let meta = self.db.open_tree(META)?;
        meta.get(key.as_bytes())?
            .map(|v| decode(&v, || format!("meta/{key}")))
            .transpose()
    }

    /// Keeps what the notify target `label` has been alerted of, durably: a one-shot
    /// run that exits right after must not alert the same condition again next time.
    ///
    /// # Errors
    /// sled or encoding errors.
    pub async fn set_alert_state<T: Serialize>(
        &self,
        label: &str,
        state: &T,
    ) -> Result<(), StoreError> {
        let key = format!("{ALERTS_PREFIX}{label}");
        let bytes = serde_json::to_vec(state).map_err(|e| StoreError::Corrupt {
            key: format!("meta/{key}"),
            message: e.to_string(),
        })?;
        let meta = self.db.open_tree(META)?;
        meta.insert(key.as_bytes(), bytes)?;
        self.durable().await?;
        Ok(())
    }

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
        let cutoff = nanos_key(Utc::now() - max_age).to_be_bytes();
        let mut removed = 0;
        for item in tree.range(..cutoff.to_vec()) {
            let (k, _) = item?;
            tree.remove(k)?;
            removed += 1;
        }
        let excess = tree.len().saturating_sub(max_entries);
        for item in tree.iter().take(excess) {
            let (k, _) = item?;
            tree.remove(k)?;
            removed += 1;
        }
        self.durable().await?;
        Ok(removed)
    }

    /// Waits until everything written is on disk (shutdown).
    ///
    /// # Errors
    /// sled errors.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.durable().await
    }

    /// Waits until every write made before this call is on disk, sharing the flush with
    /// concurrent callers (see `GroupCommit`).
    ///
    /// sled 0.34's `flush_async` can deadlock when several are awaited at once
    /// (spacejam/sled#1241, #1308), so the blocking flush runs on the blocking pool.
    async fn durable(&self) -> Result<(), StoreError> {
        let c = &self.commits;
        // Taken after the caller's write: a flush that starts later covers it.
        let ticket = c.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let _turn = c.flushing.lock().await;
        if c.durable.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        // Every ticket issued so far belongs to a write that is already in sled.
        let covered = c.issued.load(Ordering::SeqCst);
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Flush(e.to_string()))??;
        c.durable.fetch_max(covered, Ordering::SeqCst);
        Ok(())
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

fn decode<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    key: impl FnOnce() -> String,
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(remote: &str, state: RecordState) -> VendorRecord {
        let now = Utc::now();
        VendorRecord {
            remote_id: Some(remote.into()),
            state,
            fields: [("email".to_string(), "a@b.io".to_string())].into(),
            linked_at: now,
            updated_at: now,
        }
    }

    #[tokio::test]
    async fn round_trip_and_reopen_keeps_everything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = PersonId::from("A");
        let b = PersonId::from("B");
        {
            let store = Store::open(dir.path()).expect("open");
            store
                .put("motive", &a, &record("1", RecordState::Active))
                .await
                .expect("put");
            store
                .put("motive", &b, &record("2", RecordState::Deactivated))
                .await
                .expect("put");
            store
                .put("rc", &a, &record("x", RecordState::Active))
                .await
                .expect("put");
            store.remove("rc", &a).await.expect("remove");
            store
                .save_report(&serde_json::json!({"dry_run": false}))
                .await
                .expect("report");
        }
        let store = Store::open(dir.path()).expect("reopen");
        let m = store.load("motive").expect("load");
        assert_eq!(m.len(), 2);
        assert_eq!(m[&a], record("1", RecordState::Active).with_times(&m[&a]));
        assert_eq!(m[&b].state, RecordState::Deactivated);
        assert!(store.load("rc").expect("load").is_empty());
        let report: serde_json::Value = store.last_report().expect("read").expect("some");
        assert_eq!(report["dry_run"], false);
        assert_eq!(store.schema_version().expect("v"), SCHEMA_VERSION);
        let mut vendors = store.vendors();
        vendors.sort();
        assert_eq!(vendors, ["motive", "rc"]);
    }

    #[tokio::test]
    async fn second_open_of_the_same_dir_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = Store::open(dir.path()).expect("open");
        let err = Store::open(dir.path()).err().expect("locked");
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("in use by another roster process"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_flushes_and_all_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let writes: Vec<_> = (0..64)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let id = PersonId(format!("E{i:02}"));
                    store
                        .put(
                            "motive",
                            &id,
                            &record(&format!("r-{i}"), RecordState::Active),
                        )
                        .await
                })
            })
            .collect();
        for w in writes {
            w.await.expect("task").expect("put");
        }
        let c = &store.commits;
        let (issued, flushed) = (
            c.issued.load(Ordering::SeqCst),
            c.durable.load(Ordering::SeqCst),
        );
        assert_eq!(
            flushed, issued,
            "every write waited for a flush covering it"
        );
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        let all = store.load("motive").expect("load");
        assert_eq!(all.len(), 64);
        assert_eq!(
            all[&PersonId::from("E63")].remote_id.as_deref(),
            Some("r-63")
        );
    }

    #[tokio::test]
    async fn a_schema_1_store_is_read_and_upgraded_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = record("r-1", RecordState::Active);
        {
            let db = sled::open(dir.path()).expect("sled");
            db.open_tree(META)
                .expect("tree")
                .insert(KEY_SCHEMA, b"1")
                .expect("insert");
            db.open_tree("vendor/motive")
                .expect("tree")
                .insert("E1", serde_json::to_vec(&old).expect("json"))
                .expect("insert");
            db.flush().expect("flush");
        }
        let store = Store::open(dir.path()).expect("open");
        assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
        let id = PersonId::from("E1");
        assert_eq!(store.get("motive", &id).expect("get"), Some(old.clone()));
        let mut new = old.clone();
        new.state = RecordState::Deactivated;
        store.put("motive", &id, &new).await.expect("put");
        assert_eq!(store.load("motive").expect("load")[&id], new);
    }

    #[tokio::test]
    async fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = sled::open(dir.path()).expect("sled");
            db.open_tree(META)
                .expect("tree")
                .insert(KEY_SCHEMA, b"99")
                .expect("insert");
            db.flush().expect("flush");
        }
        let err = Store::open(dir.path()).err().expect("refused");
        assert!(matches!(err, StoreError::Schema { found: 99, .. }));
    }

    #[tokio::test]
    async fn history_filters_and_retention() {
        let store = Store::temporary().expect("store");
        let t0 = Utc::now() - chrono::Duration::days(10);
        for (i, (vendor, person)) in [("motive", "A"), ("rc", "A"), ("motive", "B")]
            .iter()
            .enumerate()
        {
            store
                .record_history(&HistoryEntry {
                    time: t0 + chrono::Duration::days(i as i64 * 5),
                    vendor: (*vendor).into(),
                    person: (*person).into(),
                    op: "create".into(),
                    outcome: "ok".into(),
                    fields: vec!["email".into()],
                    message: None,
                })
                .expect("record");
        }
        let all = store.history(&HistoryFilter::default()).expect("all");
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|w| w[0].time <= w[1].time));
        let a = HistoryFilter {
            person: Some("A".into()),
            ..HistoryFilter::default()
        };
        assert_eq!(store.history(&a).expect("a").len(), 2);
        let m = HistoryFilter {
            vendor: Some("motive".into()),
            ..HistoryFilter::default()
        };
        assert_eq!(store.history(&m).expect("m").len(), 2);
        let recent = HistoryFilter {
            since: Some(t0 + chrono::Duration::days(4)),
            ..HistoryFilter::default()
        };
        assert_eq!(store.history(&recent).expect("recent").len(), 2);
        // Older than 7 days goes; then at most 1 entry is kept.
        assert_eq!(
            store
                .prune_history(100, chrono::Duration::days(7))
                .await
                .expect("prune"),
            1
        );
        assert_eq!(
            store
                .prune_history(1, chrono::Duration::days(700))
                .await
                .expect("prune"),
            1
        );
        let left = store.history(&HistoryFilter::default()).expect("left");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].person, "B");
    }

    impl VendorRecord {
        fn with_times(mut self, other: &VendorRecord) -> Self {
            self.linked_at = other.linked_at;
            self.updated_at = other.updated_at;
            self
        }
    }
}
