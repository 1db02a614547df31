//! Unit tests of `store`.

use super::*;
use crate::model::{Op, Outcome, RecordState};
use chrono::Utc;

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
                op: Op::Create,
                outcome: Outcome::Ok,
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

fn entry(person: &str, age_days: i64) -> HistoryEntry {
    HistoryEntry {
        time: Utc::now() - chrono::Duration::days(age_days),
        vendor: "motive".into(),
        person: person.into(),
        op: Op::Update,
        outcome: Outcome::Ok,
        fields: vec!["email".into()],
        message: None,
    }
}

fn people(store: &Store) -> Vec<String> {
    let all = store.history(&HistoryFilter::default()).expect("history");
    all.into_iter().map(|e| e.person).collect()
}

#[tokio::test]
async fn history_is_pruned_to_max_entries_across_reopens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let year = chrono::Duration::days(365);
    {
        let store = Store::open(dir.path()).expect("open");
        for (i, p) in ["A", "B", "C", "D", "E"].iter().enumerate() {
            store
                .record_history(&entry(p, 5 - i as i64))
                .expect("record");
        }
        assert_eq!(store.prune_history(3, year).await.expect("prune"), 2);
        assert_eq!(people(&store), ["C", "D", "E"]);
        // Nothing to remove: nothing written.
        assert_eq!(store.prune_history(3, year).await.expect("prune"), 0);
        store.record_history(&entry("F", 0)).expect("record");
        store.flush().await.expect("flush");
    }
    let store = reopen(dir.path());
    store.record_history(&entry("G", 0)).expect("record");
    assert_eq!(store.prune_history(3, year).await.expect("prune"), 2);
    assert_eq!(people(&store), ["E", "F", "G"]);
    // Old entries go by age, and the count follows.
    store.record_history(&entry("old", 400)).expect("record");
    assert_eq!(store.prune_history(3, year).await.expect("prune"), 1);
    store.record_history(&entry("H", 0)).expect("record");
    assert_eq!(store.prune_history(3, year).await.expect("prune"), 1);
    assert_eq!(people(&store), ["F", "G", "H"]);
}

#[tokio::test]
async fn a_store_without_a_kept_history_count_is_counted_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        for p in ["A", "B", "C", "D"] {
            store.record_history(&entry(p, 1)).expect("record");
        }
        store
            .prune_history(10, chrono::Duration::days(365))
            .await
            .expect("prune");
        store.flush().await.expect("flush");
    }
    {
        // As an older roster left it: entries, no count.
        let db = sled::open(dir.path()).expect("sled");
        db.open_tree(META)
            .expect("meta")
            .remove(history::KEY_HISTORY_LEN)
            .expect("remove");
        db.flush().expect("flush");
    }
    let store = reopen(dir.path());
    store.record_history(&entry("E", 0)).expect("record");
    assert_eq!(
        store
            .prune_history(2, chrono::Duration::days(365))
            .await
            .expect("prune"),
        3
    );
    assert_eq!(people(&store), ["D", "E"]);
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

#[tokio::test]
async fn an_account_is_linked_to_one_person_per_vendor() {
    let store = Store::temporary().expect("store");
    let (a, b) = (PersonId::from("A"), PersonId::from("B"));
    store
        .put("rc", &a, &record("u1", RecordState::Active))
        .await
        .expect("put");
    assert_eq!(store.holder("rc", "u1").expect("holder"), Some(a.clone()));

    // B cannot take A's account: refused, nothing written.
    let err = store
        .put("rc", &b, &record("u1", RecordState::Active))
        .await
        .expect_err("linked to A");
    assert!(
        matches!(&err, StoreError::Linked { holder, remote, .. } if *holder == a && remote == "u1"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("rc account u1 is already linked to A")
    );
    assert_eq!(store.get("rc", &b).expect("get"), None);
    // The same account id at another vendor is another account.
    store
        .put("motive", &b, &record("u1", RecordState::Active))
        .await
        .expect("other vendor");

    // A record rewritten for the same account keeps it; a new account releases the old.
    store
        .put("rc", &a, &record("u1", RecordState::Deactivated))
        .await
        .expect("same account");
    store
        .put("rc", &a, &record("u2", RecordState::Active))
        .await
        .expect("moved");
    assert_eq!(store.holder("rc", "u1").expect("holder"), None);
    store
        .put("rc", &b, &record("u1", RecordState::Active))
        .await
        .expect("u1 is free now");

    // An intent (no account yet) releases too, and so does forgetting the person.
    let mut intent = record("x", RecordState::Creating);
    intent.remote_id = None;
    store.put("rc", &a, &intent).await.expect("intent");
    assert_eq!(store.holder("rc", "u2").expect("holder"), None);
    store.remove("rc", &b).await.expect("remove");
    assert_eq!(store.holder("rc", "u1").expect("holder"), None);

    // Bulk writes obey the same rule, atomically per chunk.
    let (c, d) = (PersonId::from("C"), PersonId::from("D"));
    let shared = record("u9", RecordState::Active);
    let err = store
        .put_many("rc", [(&c, &shared), (&d, &shared)])
        .await
        .expect_err("two people, one account");
    assert!(matches!(err, StoreError::Linked { .. }), "{err}");
    assert_eq!(store.get("rc", &c).expect("get"), None, "all or nothing");
}

#[tokio::test]
async fn an_older_store_is_indexed_and_shared_accounts_are_unlinked_from_everyone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = record("acct-jsmith", RecordState::Active);
    let own = record("acct-kim", RecordState::Active);
    {
        // What roster before the index could leave: E1 and E2 on one account.
        let db = sled::open(dir.path()).expect("sled");
        db.open_tree(META)
            .expect("tree")
            .insert(KEY_SCHEMA, b"2")
            .expect("insert");
        let rc = db.open_tree("vendor/chat").expect("tree");
        for (id, r) in [("E1", &shared), ("E2", &shared), ("E3", &own)] {
            rc.insert(id, codec::encode(r).expect("encode"))
                .expect("insert");
        }
        // Schema 1's JSON records are indexed too.
        db.open_tree("vendor/motive")
            .expect("tree")
            .insert("E1", serde_json::to_vec(&own).expect("json"))
            .expect("insert");
        db.flush().expect("flush");
    }
    let store = Store::open(dir.path()).expect("open");
    assert_eq!(store.schema_version().expect("v"), SCHEMA_VERSION);
    let chat = store.load("chat").expect("load");
    assert_eq!(
        chat.keys().map(PersonId::as_str).collect::<Vec<_>>(),
        ["E3"],
        "neither sharer is kept"
    );
    assert_eq!(
        store.holder("chat", "acct-kim").expect("h"),
        Some(PersonId::from("E3"))
    );
    assert_eq!(store.holder("chat", "acct-jsmith").expect("h"), None);
    assert_eq!(
        store.holder("motive", "acct-kim").expect("h"),
        Some(PersonId::from("E1"))
    );
    let unlinked = store.unlinked().expect("unlinked");
    assert_eq!(unlinked.len(), 1);
    assert_eq!(
        (unlinked[0].vendor.as_str(), unlinked[0].remote.as_str()),
        ("chat", "acct-jsmith")
    );
    assert_eq!(unlinked[0].people, ["E1", "E2"]);
    let history = store.history(&HistoryFilter::default()).expect("history");
    let unlinks: Vec<&str> = history
        .iter()
        .filter(|e| e.op == Op::Unlink)
        .map(|e| e.person.as_str())
        .collect();
    assert_eq!(unlinks, ["E1", "E2"]);
    assert!(
        history[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("acct-jsmith") && m.contains("E1, E2"))
    );
    drop(store);

    // Indexed once: opening again changes nothing and reports nothing new.
    let store = reopen(dir.path());
    assert_eq!(store.unlinked().expect("unlinked").len(), 1);
    assert_eq!(store.load("chat").expect("load").len(), 1);
}

#[tokio::test]
async fn every_record_write_moves_its_vendors_generation_and_a_refused_one_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (PersonId::from("A"), PersonId::from("B"));
    {
        let store = Store::open(dir.path()).expect("open");
        assert_eq!(store.generation("motive").expect("gen"), 0);
        let mut seen = vec![0];
        let mut step = |store: &Store| {
            let g = store.generation("motive").expect("gen");
            assert!(!seen.contains(&g), "a write left generation {g} as it was");
            seen.push(g);
        };
        store
            .put("motive", &a, &record("1", RecordState::Active))
            .await
            .expect("put");
        step(&store);
        let r = record("2", RecordState::Active);
        store
            .put_many("motive", [(&b, &r)])
            .await
            .expect("put_many");
        step(&store);
        store.remove("motive", &b).await.expect("remove");
        step(&store);
        // Another vendor's writes leave this one's generation alone.
        let before = store.generation("motive").expect("gen");
        store
            .put("rc", &a, &record("x", RecordState::Active))
            .await
            .expect("put");
        assert_eq!(store.generation("motive").expect("gen"), before);
        // A write refused (the account is A's) changes nothing, generation included.
        let err = store
            .put("motive", &b, &record("1", RecordState::Active))
            .await
            .expect_err("linked to A");
        assert!(matches!(err, StoreError::Linked { .. }), "{err}");
        assert_eq!(store.generation("motive").expect("gen"), before);
    }
    // Kept across processes (and by `rebuild-state`, which writes through `put`).
    let store = reopen(dir.path());
    assert_eq!(store.generation("motive").expect("gen"), 3);
}

#[tokio::test]
async fn an_upgraded_store_keeps_no_plan_memo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let memo = PlanMemo {
        inputs: "abc".into(),
        generation: 0,
        due: None,
        unchanged: 1,
        linked: 1,
        skipped: Vec::new(),
        conflicts: Vec::new(),
    };
    {
        let store = Store::open(dir.path()).expect("open");
        store.set_plan_memo("motive", Some(&memo)).expect("memo");
        store.flush().await.expect("flush");
    }
    {
        let store = reopen(dir.path());
        assert_eq!(store.plan_memo("motive").expect("read"), Some(memo));
        // As if an older roster had written here since.
        let meta = store.db.open_tree(META).expect("meta");
        meta.insert(KEY_SCHEMA, b"3").expect("schema");
        store.flush().await.expect("flush");
    }
    let store = reopen(dir.path());
    assert_eq!(store.schema_version().expect("v"), SCHEMA_VERSION);
    assert_eq!(store.plan_memo("motive").expect("read"), None);
}
