//! The no-op fast path (`memo.rs`): a vendor whose last plan had nothing to do is not
//! planned again (its people are not even mapped) while nothing that plan depended on
//! changed; each test changes one such thing and checks the vendor is planned in full.

use super::*;

/// A pass over the same people that left nothing to do, and the one after it: the
/// first plans in full (the store changed since the last plan), the second reuses it.
async fn settled(env: &Env, fake: &FakeVendor) {
    env.pass().await;
    env.pass().await;
    let before = fake.maps();
    let r = env.pass().await;
    assert_eq!(fake.maps(), before, "nothing changed: not planned again");
    assert!(r.vendors.values().all(|v| v.updated + v.created == 0));
}

#[tokio::test(start_paused = true)]
async fn a_pass_with_nothing_to_do_reports_the_last_plan_without_planning() {
    let fake = FakeVendor::new("v");
    let env = env(&[("v", &fake)], FAST, 4);
    let mut everyone = people(3, "Lee");
    // Unmappable: skipped with its reason, the same in a reused plan.
    everyone.push(Person::new("E99"));
    env.set(everyone);
    env.pass().await;
    let planned = env.pass().await;
    let maps = fake.maps();
    assert!(maps > 0);
    let reused = env.pass().await;
    assert_eq!(fake.maps(), maps, "the third pass maps nobody");
    let (a, b) = (&planned.vendors["v"], &reused.vendors["v"]);
    assert_eq!((b.unchanged, b.skipped), (3, 1), "{b:?}");
    assert_eq!(
        serde_json::to_value(a).expect("json"),
        serde_json::to_value(b).expect("json"),
        "the same report"
    );
    assert_eq!(fake.writes(), 3, "three creates, nothing since");
}

#[tokio::test(start_paused = true)]
async fn a_change_in_the_source_is_planned_and_pushed() {
    let fake = FakeVendor::new("v");
    let env = env(&[("v", &fake)], FAST, 4);
    env.set(people(3, "Lee"));
    settled(&env, &fake).await;
    let mut next = people(3, "Lee");
    next[1].last_name = Some("Ray".into());
    env.set(next);
    let r = env.pass().await;
    assert_eq!(r.vendors["v"].updated, 1);
    assert_eq!(fake.by_key("E01")[0].fields["name"], "Ann Ray");
}

#[tokio::test(start_paused = true)]
async fn a_failed_operation_is_tried_again_by_the_next_pass() {
    let fake = FakeVendor::new("v");
    let env = env(&[("v", &fake)], FAST, 4);
    env.set(people(2, "Lee"));
    settled(&env, &fake).await;
    let mut next = people(2, "Lee");
    next[0].last_name = Some("Ray".into());
    env.set(next);
    fake.fail(
        Call::Update,
        VendorError::Rejected {
            status: 422,
            detail: "validation failed".into(),
        },
        1,
    );
    let r = env.pass().await;
    assert_eq!(r.vendors["v"].failed, 1, "{:?}", r.vendors["v"]);
    let r = env.pass().await;
    assert_eq!(r.vendors["v"].updated, 1, "{:?}", r.vendors["v"]);
    assert_eq!(fake.by_key("E00")[0].fields["name"], "Ann Ray");
}

#[tokio::test(start_paused = true)]
async fn an_invalid_record_holds_its_person_even_after_a_reused_plan() {
    let fake = FakeVendor::new("v");
    let env = env(&[("v", &fake)], FAST, 4);
    env.set(people(3, "Lee"));
    settled(&env, &fake).await;
    // E01's record turns invalid: it leaves the people but is held, not deactivated.
    let mut next = people(3, "Lee");
    next.remove(1);
    env.set(next);
    *env.source.1.lock().expect("lock") = vec![crate::model::InvalidRecord {
        location: "line 2".into(),
        id: Some("E01".into()),
        email: None,
        message: "malformed email".into(),
    }];
    let maps = fake.maps();
    let r = env.pass().await;
    assert!(fake.maps() > maps, "planned again");
    assert_eq!(r.vendors["v"].deactivated, 0);
    // Fixed: E01 is back and still active, nothing to do.
    env.source.1.lock().expect("lock").clear();
    env.set(people(3, "Lee"));
    let r = env.pass().await;
    assert_eq!(r.vendors["v"].unchanged, 3);
    assert!(fake.by_key("E01")[0].active);
}

#[tokio::test(start_paused = true)]
async fn a_store_written_by_another_command_is_planned_again() {
    let fake = FakeVendor::new("v");
    let env = env(&[("v", &fake)], FAST, 4);
    env.set(people(2, "Lee"));
    settled(&env, &fake).await;
    // As `rebuild-state` (or another roster process) might leave a record: another
    // email than the source's.
    let mut rec = env.record("v", "E00").expect("linked");
    rec.fields.insert("email".into(), "old@x.io".into());
    env.store
        .put("v", &PersonId::from("E00"), &rec)
        .await
        .expect("put");
    let r = env.pass().await;
    assert_eq!(r.vendors["v"].updated, 1, "{:?}", r.vendors["v"]);
    // And a record removed from the store: the person is linked again.
    env.store
        .remove("v", &PersonId::from("E01"))
        .await
        .expect("remove");
    let r = env.pass().await;
    assert_eq!(r.vendors["v"].adopted, 1, "{:?}", r.vendors["v"]);
}

#[tokio::test(start_paused = true)]
async fn a_config_change_is_planned_again() {
    let fake = FakeVendor::new("v");
    let first = env(&[("v", &fake)], FAST, 4);
    let mut everyone = people(2, "Lee");
    everyone[0].groups = ["drivers"].into_iter().collect();
    first.set(everyone.clone());
    settled(&first, &fake).await;
    // The same people and store under another config: only drivers are in scope.
    let mut second = env(&[("v", &fake)], FAST, 4);
    second.store = first.store.clone();
    second.set(everyone);
    let scope = Some(["drivers".to_string()].into());
    second.ctx.vendors[0].0.scope_groups = scope.clone();
    if let Some(v) = second.ctx.settings.vendors.get_mut("v") {
        v.scope_groups = scope;
    }
    let r = second.pass().await;
    assert_eq!(r.vendors["v"].deactivated, 1, "{:?}", r.vendors["v"]);
    assert!(!fake.by_key("E01")[0].active);
}

#[tokio::test(start_paused = true)]
async fn full_passes_and_dry_runs_always_plan_and_never_leave_a_memo() {
    let fake = FakeVendor::new("v");
    let env = env(&[("v", &fake)], FAST, 4);
    env.set(people(2, "Lee"));
    settled(&env, &fake).await;
    let maps = fake.maps();
    let full = PassOptions {
        full: true,
        ..PassOptions::default()
    };
    env.pass_with(&full, &Shutdown::never()).await;
    assert!(fake.maps() > maps, "--full plans in full");
    assert_eq!(fake.calls(Call::List), 1, "and reads the vendor's accounts");
    // A dry run on a store whose memo is stale writes no new one.
    let mut rec = env.record("v", "E00").expect("linked");
    rec.fields.insert("email".into(), "e00@x.io".into());
    env.store
        .put("v", &PersonId::from("E00"), &rec)
        .await
        .expect("rewritten as it was");
    let memo = env.store.plan_memo("v").expect("read");
    let dry = PassOptions {
        dry_run: true,
        ..PassOptions::default()
    };
    let maps = fake.maps();
    env.pass_with(&dry, &Shutdown::never()).await;
    assert!(fake.maps() > maps);
    assert_eq!(env.store.plan_memo("v").expect("read"), memo, "untouched");
}

#[tokio::test]
async fn a_memo_stands_until_its_due_moment_and_for_its_inputs_only() {
    let store = Store::temporary().expect("store");
    let now = Utc::now();
    let due = now + chrono::Duration::hours(1);
    let plan = Plan {
        unchanged: 5,
        linked: 5,
        next_due: Some(due),
        ..Plan::default()
    };
    let generation = store.generation("v").expect("gen");
    memo::keep(&store, "v", Some("abc".into()), generation, &plan).expect("keep");
    let recalled = memo::recall(&store, "v", "abc", now).expect("recall");
    assert_eq!(recalled.map(|p| p.unchanged), Some(5));
    assert!(
        memo::recall(&store, "v", "abc", due)
            .expect("recall")
            .is_none(),
        "due"
    );
    assert!(
        memo::recall(&store, "v", "abd", now)
            .expect("recall")
            .is_none(),
        "inputs"
    );
    // A plan with operations leaves no memo behind.
    let mut busy = plan.clone();
    busy.ops.push(crate::plan::Operation {
        person: PersonId::from("E1"),
        kind: crate::plan::OpKind::Deactivate {
            remote: Some("r-1".into()),
            why: crate::model::Why::Removed,
        },
    });
    memo::keep(&store, "v", Some("abc".into()), generation, &busy).expect("keep");
    assert!(store.plan_memo("v").expect("read").is_none());
}
