//! Start and end dates and create-only fields in the pass: who waits, when the report
//! says the next change is due, and adoption keeping create-only values.

use super::*;

#[tokio::test(start_paused = true)]
async fn an_adopted_account_keeps_its_create_only_values_and_gets_missing_ones() {
    let fake = FakeVendor::new("v");
    let mut env = env(&[("v", &fake)], FAST, 1);
    env.ctx.vendors[0].0.create_only = ["email".to_string()].into();
    env.set(vec![person("E1", "Lee"), person("E2", "Ray")]);
    let mut hand = person_fields("Old");
    hand.insert("email".into(), "hand@x.io".into());
    fake.add("E1", hand, true);
    fake.add("E2", person_fields("Old"), true);
    let r = env.pass().await;
    assert_eq!(r.vendors["v"].adopted, 2, "{:?}", r.vendors["v"]);
    let e1 = &fake.by_key("E1")[0];
    assert_eq!(
        e1.fields["email"], "hand@x.io",
        "the account's own value stays"
    );
    assert_eq!(
        e1.fields["name"], "Ann Lee",
        "other fields are brought up to date"
    );
    let e2 = &fake.by_key("E2")[0];
    assert_eq!(
        e2.fields["email"], "e2@x.io",
        "sent where the account had none"
    );
    assert_eq!(
        env.record("v", "E1").expect("linked").fields["email"],
        "hand@x.io",
        "the record holds what the vendor has"
    );
    let before = fake.writes();
    let r = env.pass().await;
    assert_eq!(r.vendors["v"].unchanged, 2);
    assert_eq!(fake.writes(), before, "and nothing is sent afterwards");
}

#[tokio::test(start_paused = true)]
async fn people_not_yet_joined_wait_and_the_report_says_until_when() {
    let fake = FakeVendor::new("v");
    let env = env(&[("v", &fake)], FAST, 1);
    let start = Utc::now() + chrono::TimeDelta::days(3);
    let mut later = person("E1", "Lee");
    later.start_date = Some(crate::model::When::At(start));
    let mut leaving = person("E2", "Ray");
    leaving.end_date = Some(crate::model::When::At(
        Utc::now() + chrono::TimeDelta::days(5),
    ));
    env.set(vec![later, leaving]);
    let r = env.pass().await;
    let v = &r.vendors["v"];
    assert_eq!(
        (v.created, v.unchanged),
        (1, 0),
        "only E2 is created: {v:?}"
    );
    assert!(fake.by_key("E1").is_empty());
    assert_eq!(
        r.next_due,
        Some(start),
        "the earliest change the clock brings"
    );
}

#[tokio::test(start_paused = true)]
async fn a_reused_plan_lapses_when_a_start_date_comes() {
    let fake = FakeVendor::new("v");
    let env = env(&[("v", &fake)], FAST, 1);
    // Real time: the pass reads the wall clock, and the memo lapses by it.
    let start = Utc::now() + chrono::TimeDelta::milliseconds(1500);
    let mut later = person("E2", "Ray");
    later.start_date = Some(crate::model::When::At(start));
    env.set(vec![person("E1", "Lee"), later]);
    let r = env.pass().await;
    assert_eq!(r.vendors["v"].created, 1, "E1 only: {:?}", r.vendors["v"]);
    env.pass().await;
    let maps = fake.maps();
    let r = env.pass().await;
    assert_eq!(fake.maps(), maps, "reused before the start date");
    assert_eq!(r.next_due, Some(start), "and still says when it is due");
    assert_eq!(
        env.store.plan_memo("v").expect("read").and_then(|m| m.due),
        Some(start)
    );
    while Utc::now() <= start {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let r = env.pass().await;
    assert_eq!(r.vendors["v"].created, 1, "E2 joined: {:?}", r.vendors["v"]);
    assert_eq!(fake.by_key("E2").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_pass_of_one_vendor_keeps_the_earlier_due_moment_of_the_others() {
    let (one, two) = (FakeVendor::new("one"), FakeVendor::new("two"));
    let mut env = env(&[("one", &one), ("two", &two)], FAST, 1);
    env.ctx.vendors[1].0.dates.provision_days_before_start = 2;
    let start = Utc::now() + chrono::TimeDelta::days(5);
    let mut later = person("E1", "Lee");
    later.start_date = Some(crate::model::When::At(start));
    env.set(vec![later, person("E2", "Ray")]);
    let r = env.pass().await;
    let at_two = start - chrono::TimeDelta::days(2);
    assert_eq!(r.next_due, Some(at_two), "two provisions two days early");
    // `reconcile --vendor one` plans only one, whose moment is later: the report (which
    // the daemon and `status` read) keeps two's.
    let only_one = PassOptions {
        only: vec!["one".into()],
        ..PassOptions::default()
    };
    let r = run_once(&env.ctx, &env.store, &only_one, &Shutdown::never())
        .await
        .expect("pass");
    assert_eq!(r.next_due, Some(at_two));
    let stored: Report = env.store.last_report().expect("read").expect("saved");
    assert_eq!(stored.next_due, Some(at_two));
    // A pass of every vendor says it afresh.
    env.ctx.vendors[1].0.dates.provision_days_before_start = 0;
    assert_eq!(env.pass().await.next_due, Some(start));
}
