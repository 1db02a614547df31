//! The audit history: filters, retention across reopens, and the kept count.

use super::*;

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
