//! One vendor account per person (the link index, its migration) and the generations the plan memo depends on.

use super::*;

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
