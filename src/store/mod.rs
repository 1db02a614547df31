//! The embedded state: what roster last pushed to each vendor, per person.
//!
//! Owns: every use of sled. One tree per vendor (`vendor/NAME`, key = person id, value =
//! a `VendorRecord` in the binary layout of `codec`), a `meta` tree (schema version, last
//! report, each vendor's flow state under `pace/NAME`, each notify target's alert state
//! under `alerts/LABEL`: `meta.rs`; each vendor's generation and plan memo: `memo.rs`),
//! the account index `link/NAME` (`links.rs`) and the audit `history` with its kept size
//! (`history.rs`); the sled handle and how a one-shot process leaves it (`db.rs`). Must
//! not: know how records are computed. Every write is flushed before it returns, because
//! the record is what stops a second account from being created after a crash.
//!
//! Secrets are never stored: records hold only the mapped fields a vendor was sent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

use crate::model::{PersonId, VendorRecord};

mod codec;
mod db;
mod history;
mod links;
mod memo;
mod meta;

pub use codec::StoredRecord;
use db::Db;
pub use db::leave_to_exit;
pub use history::{HistoryEntry, HistoryFilter};
pub use links::Unlinked;
pub use memo::PlanMemo;
pub use meta::PaceRecord;

/// Bumped when the stored shapes change incompatibly. 2: vendor records in the binary
/// layout of `codec` (schema 1's JSON records are still read, and rewritten as they
/// change). 3: the account index `link/NAME` (`links`), built on open from older stores.
/// 4: every write to a vendor's records bumps its generation (`memo`), which a pass
/// trusts to skip planning (`pass::memo`); an older roster writing records without it
/// would make a newer one skip work, so it must not open this store.
pub const SCHEMA_VERSION: u32 = 4;

/// sled's page cache in MiB unless `state_cache_mb` says otherwise (sled's own default
/// is 1 GiB). 64 MiB holds what a pass over 100k people × 4 vendors reads (no slower than
/// 128 there), and keeps a pass planned in full over a million people under 1 GiB, which
/// 128 did not once every vendor's shared-account check ran beside it (see the benchmark).
pub const DEFAULT_CACHE_MB: u64 = 64;

const META: &str = "meta";
const KEY_SCHEMA: &[u8] = b"schema_version";
const KEY_LAST_REPORT: &[u8] = b"last_report";
const KEY_SOURCE_COUNT: &[u8] = b"last_source_count";
/// `meta/unlinked`: the accounts indexing an older store unlinked (`links::Unlinked`).
const KEY_UNLINKED: &[u8] = b"unlinked";
const HISTORY: &str = "history";
/// `meta/pace/NAME`: a vendor's learned rate (`PaceRecord`).
const PACE_PREFIX: &str = "pace/";
/// `meta/alerts/LABEL`: what a notify target has been alerted of (`notify::state`).
const ALERTS_PREFIX: &str = "alerts/";

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
    /// A record would link an account that another person holds at this vendor.
    #[error("{vendor} account {remote} is already linked to {holder}")]
    Linked {
        vendor: String,
        remote: String,
        holder: PersonId,
    },
    #[error(
        "the state directory was written by a newer roster (schema {found}, this one knows \
         {supported}); refusing to touch it"
    )]
    Schema { found: u32, supported: u32 },
}

/// The sled database. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    db: Arc<Db>,
    commits: Arc<GroupCommit>,
    /// Record writes left before they fail as on a full disk (`fail_writes_after`);
    /// `u64::MAX`: never.
    writes_left: Arc<AtomicU64>,
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
        Self::init(db, false)
    }

    /// An in-memory store that vanishes on drop (tests, and `plan` without a state dir).
    ///
    /// # Errors
    /// Only if sled cannot create its temporary files.
    pub fn temporary() -> Result<Self, StoreError> {
        Self::init(sled::Config::new().temporary(true).open()?, true)
    }

    fn init(db: sled::Db, temporary: bool) -> Result<Self, StoreError> {
        let store = Self {
            db: Arc::new(Db { db, temporary }),
            commits: Arc::default(),
            writes_left: Arc::new(AtomicU64::new(u64::MAX)),
        };
        let meta = store.db.open_tree(META)?;
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
                if found < 3 {
                    let unlinked = links::index_all(&store)?;
                    if !unlinked.is_empty() {
                        store.add_unlinked(&meta, unlinked)?;
                    }
                }
                if found < SCHEMA_VERSION {
                    // An older roster wrote here without keeping generations (and the
                    // indexing above may have removed records): no memo survives.
                    store.forget_plan_memos()?;
                    // Older records stay readable; the marker keeps an older roster,
                    // which could not read the new ones, from opening this store. It is
                    // written last, so an interrupted upgrade is done again.
                    meta.insert(KEY_SCHEMA, SCHEMA_VERSION.to_string().as_bytes())?;
                    store.db.flush()?;
                }
            }
        }
        Ok(store)
    }

    fn add_unlinked(
        &self,
        meta: &sled::Tree,
        mut unlinked: Vec<Unlinked>,
    ) -> Result<(), StoreError> {
        let mut all = self.unlinked()?;
        all.append(&mut unlinked);
        let bytes = serde_json::to_vec(&all).map_err(|e| StoreError::Corrupt {
            key: "meta/unlinked".into(),
            message: e.to_string(),
        })?;
        meta.insert(KEY_UNLINKED, bytes)?;
        Ok(())
    }

    /// The accounts unlinked when this store was indexed, because an earlier roster had
    /// linked each to several people (`roster status` shows them).
    ///
    /// # Errors
    /// sled or decoding errors.
    pub fn unlinked(&self) -> Result<Vec<Unlinked>, StoreError> {
        let meta = self.db.open_tree(META)?;
        Ok(meta
            .get(KEY_UNLINKED)?
            .map(|v| decode(&v, || "meta/unlinked".into()))
            .transpose()?
            .unwrap_or_default())
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

    fn links(&self, vendor: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(format!("{}{vendor}", links::PREFIX))?)
    }

    /// A test hook: after `n` more record writes (`put`, `put_many`, `remove`), every one
    /// fails as on a full disk, so tests can stop a pass at a store write of their
    /// choosing (the integration tests also fill a real file-size limit).
    #[doc(hidden)]
    pub fn fail_writes_after(&self, n: u64) {
        self.writes_left.store(n, Ordering::SeqCst);
    }

    fn writable(&self) -> Result<(), StoreError> {
        let left = self
            .writes_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n != u64::MAX).then(|| n.saturating_sub(1))
            });
        match left {
            Ok(0) => Err(StoreError::Sled(sled::Error::Io(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left on device (injected)",
            )))),
            _ => Ok(()),
        }
    }

    /// The person linked to account `remote` at `vendor`, if any.
    ///
    /// # Errors
    /// sled errors.
    pub fn holder(&self, vendor: &str, remote: &str) -> Result<Option<PersonId>, StoreError> {
        Ok(self
            .links(vendor)?
            .get(remote.as_bytes())?
            .map(|p| PersonId(String::from_utf8_lossy(&p).into_owned())))
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

    /// Writes one record and waits until it is on disk. The account index is updated in
    /// the same transaction (`links`).
    ///
    /// # Errors
    /// `Linked` when the record's account is linked to another person at this vendor
    /// (nothing is written); sled errors.
    pub async fn put(
        &self,
        vendor: &str,
        id: &PersonId,
        record: &VendorRecord,
    ) -> Result<(), StoreError> {
        self.writable()?;
        let bytes = encode(vendor, id, record)?;
        let change = links::Change {
            person: id,
            value: Some(&bytes),
            remote: record.remote_id.as_deref(),
        };
        links::write(
            vendor,
            &self.tree(vendor)?,
            &self.links(vendor)?,
            &self.db.open_tree(META)?,
            &[change],
        )?;
        self.durable().await?;
        Ok(())
    }

    /// Writes many records of one vendor, a few thousand per transaction, and waits until
    /// they are on disk (bulk seeding: benchmarks, imports); per-ack writes use `put`.
    ///
    /// # Errors
    /// As `put`, for the first chunk that fails (earlier chunks stay written).
    pub async fn put_many<'a>(
        &self,
        vendor: &str,
        records: impl IntoIterator<Item = (&'a PersonId, &'a VendorRecord)>,
    ) -> Result<(), StoreError> {
        const CHUNK: usize = 4096;
        let (tree, index, meta) = (
            self.tree(vendor)?,
            self.links(vendor)?,
            self.db.open_tree(META)?,
        );
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            self.writable()?;
            let chunk: Vec<(&PersonId, Option<&str>, Vec<u8>)> = records
                .by_ref()
                .take(CHUNK)
                .map(|(id, r)| Ok((id, r.remote_id.as_deref(), encode(vendor, id, r)?)))
                .collect::<Result<_, StoreError>>()?;
            let changes: Vec<links::Change<'_>> = chunk
                .iter()
                .map(|(person, remote, bytes)| links::Change {
                    person,
                    value: Some(bytes),
                    remote: *remote,
                })
                .collect();
            links::write(vendor, &tree, &index, &meta, &changes)?;
        }
        self.durable().await?;
        Ok(())
    }

    /// Forgets one person at one vendor (and releases their account) and waits until that
    /// is on disk.
    ///
    /// # Errors
    /// sled errors.
    pub async fn remove(&self, vendor: &str, id: &PersonId) -> Result<(), StoreError> {
        self.writable()?;
        let change = links::Change {
            person: id,
            value: None,
            remote: None,
        };
        links::write(
            vendor,
            &self.tree(vendor)?,
            &self.links(vendor)?,
            &self.db.open_tree(META)?,
            &[change],
        )?;
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
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Flush(e.to_string()))??;
        c.durable.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }
}

fn encode(vendor: &str, id: &PersonId, record: &VendorRecord) -> Result<Vec<u8>, StoreError> {
    codec::encode(record).map_err(|e| StoreError::Corrupt {
        key: format!("vendor/{vendor}/{id}"),
        message: e.to_string(),
    })
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
mod tests;
