//! Unit tests of `store`.

use super::*;
use crate::model::{Op, Outcome, RecordState};
use chrono::Utc;

mod accounts;
mod audit;

/// Opens a store just dropped in this process. sled releases its directory lock only
/// when its background threads have let go of the files (sled#1289), which on a loaded
/// machine can take a moment: wait for it, a few seconds at most.
fn reopen(dir: &std::path::Path) -> Store {
    let mut tries = 0;
    loop {
        match Store::open(dir) {
            Err(StoreError::Locked { .. }) if tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other.expect("reopen"),
        }
    }
}

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
    let store = reopen(dir.path());
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
    let store = reopen(dir.path());
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
async fn bookkeeping_that_did_not_change_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store.set_last_source_count(7).await.expect("count");
    store.set_pace("motive", None).await.expect("pace");
    let before = store.commits.issued.load(Ordering::SeqCst);
    store.set_last_source_count(7).await.expect("count");
    store.set_pace("motive", None).await.expect("pace");
    store
        .prune_history(10, chrono::Duration::days(1))
        .await
        .expect("prune");
    assert_eq!(
        store.commits.issued.load(Ordering::SeqCst),
        before,
        "no flush was asked for"
    );
    store.set_last_source_count(8).await.expect("count");
    assert_eq!(store.last_source_count().expect("read"), Some(8));
    let rate = PaceRecord {
        rate_per_sec: Some(2.0),
        updated_at: Utc::now(),
        logins: Vec::new(),
        logins_blocked_until: None,
    };
    store.set_pace("motive", Some(&rate)).await.expect("pace");
    store.set_pace("motive", None).await.expect("pace");
    assert_eq!(store.pace("motive").expect("read"), None);
    assert!(store.commits.issued.load(Ordering::SeqCst) >= before + 3);
}

impl VendorRecord {
    fn with_times(mut self, other: &VendorRecord) -> Self {
        self.linked_at = other.linked_at;
        self.updated_at = other.updated_at;
        self
    }
}
