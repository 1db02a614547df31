//! The whole life of people at Motive, through the real binary: create, unchanged pass,
//! update, removal, return.

use serde_json::json;

use crate::common::{Env, counts, person};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_unchanged_update_remove_return() {
    let env = Env::motive().await;
    let motive = &env.sandbox.motive;
    let mut people = vec![
        person("E1", "Ann", "Lee", "ann@example.com"),
        person("E2", "Bob", "Ray", "bob@example.com"),
        person("E3", "Cy", "Dee", "cy@example.com"),
    ];
    env.write_people(&json!(people));

    // 1. Everyone is created, with roster's external id.
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [3, 0, 0, 0, 0, 0, 0]);
    assert_eq!(motive.users().len(), 3);
    let e1 = motive.by_external_id("E1");
    assert_eq!(e1.len(), 1);
    assert_eq!(e1[0]["external_ids"][0]["integration_name"], "roster");
    assert_eq!(e1[0]["eld_mode"], "logs");
    let e1_id = e1[0]["id"].to_string();

    // 2. Nothing changed: no write call at all.
    motive.control.clear_calls();
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0);
    assert_eq!(counts(&r, "motive"), [0, 0, 0, 0, 3, 0, 0]);
    assert_eq!(motive.control.writes(), 0, "{:?}", motive.control.calls());

    // 3. One field changes: one update of that person.
    people[1]["email"] = json!("bob.ray@example.com");
    env.write_people(&json!(people));
    motive.control.clear_calls();
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0);
    assert_eq!(counts(&r, "motive"), [0, 1, 0, 0, 2, 0, 0]);
    assert_eq!(motive.control.writes(), 1);
    assert_eq!(
        motive.by_external_id("E2")[0]["email"],
        "bob.ray@example.com"
    );

    // 4. Removed from the source: deactivated, not deleted.
    let removed = people.remove(0);
    env.write_people(&json!(people));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [0, 0, 1, 0, 2, 0, 0]);
    assert_eq!(motive.users().len(), 3);
    assert_eq!(motive.by_external_id("E1")[0]["status"], "deactivated");

    // A second pass leaves the deactivated person alone.
    motive.control.clear_calls();
    let (_, r) = env.reconcile().await;
    assert_eq!(counts(&r, "motive"), [0, 0, 0, 0, 3, 0, 0]);
    assert_eq!(motive.control.writes(), 0);

    // 5. Back again, with a new last name: reactivated, same account, fields updated.
    let mut back = removed;
    back["last_name"] = json!("Lee-Smith");
    people.push(back);
    env.write_people(&json!(people));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0);
    assert_eq!(counts(&r, "motive"), [0, 0, 0, 1, 2, 0, 0]);
    let e1 = motive.by_external_id("E1");
    assert_eq!(e1.len(), 1);
    assert_eq!(e1[0]["id"].to_string(), e1_id);
    assert_eq!(e1[0]["status"], "active");
    assert_eq!(e1[0]["last_name"], "Lee-Smith");
    assert_eq!(motive.users().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_and_out_of_scope_people_are_deactivated() {
    let env = Env::new(
        "max_deactivation_ratio = 1.0",
        &format!(
            "[vendors.motive]\ntype = \"motive\"\nbase_url = \"{{url:motive}}\"\n\
             api_key = \"{}\"\nscope = {{ groups = [\"drivers\"] }}\n",
            crate::common::MOTIVE_KEY
        ),
    )
    .await;
    let motive = &env.sandbox.motive;
    let mut a = person("A", "Ann", "Lee", "a@example.com");
    a["groups"] = json!(["drivers"]);
    let mut b = person("B", "Bob", "Ray", "b@example.com");
    b["groups"] = json!(["drivers", "office"]);
    let mut c = person("C", "Cy", "Dee", "c@example.com");
    c["groups"] = json!(["office"]);
    env.write_people(&json!([a, b, c]));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(
        counts(&r, "motive")[0],
        2,
        "only the drivers group is in scope"
    );
    assert!(motive.by_external_id("C").is_empty());

    // A leaves the drivers group, B is marked inactive.
    a["groups"] = json!(["office"]);
    b["active"] = json!(false);
    env.write_people(&json!([a, b, c]));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0);
    assert_eq!(counts(&r, "motive")[2], 2);
    assert_eq!(motive.by_external_id("A")[0]["status"], "deactivated");
    assert_eq!(motive.by_external_id("B")[0]["status"], "deactivated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_dry_run_list_operations_and_change_nothing() {
    let env = Env::motive().await;
    env.write_people(&json!([
        person("E1", "Ann", "Lee", "ann@example.com"),
        person("E2", "Bob", "Ray", "bob@example.com"),
    ]));
    for args in [&["plan"][..], &["reconcile", "--dry-run"][..]] {
        let (code, r) = env.json(args).await;
        assert_eq!(code, 0, "{r}");
        assert_eq!(r["dry_run"], true);
        assert_eq!(counts(&r, "motive")[0], 2);
        let ops = r["vendors"]["motive"]["operations"]
            .as_array()
            .expect("operations");
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0]["person"], "E1");
        assert_eq!(ops[0]["op"], "create");
        assert!(
            ops[0]["fields"]
                .as_array()
                .expect("fields")
                .contains(&json!("email"))
        );
    }
    assert!(env.sandbox.motive.users().is_empty());
    assert_eq!(
        env.sandbox.motive.control.calls().len(),
        0,
        "a plan calls no vendor"
    );
    assert!(!env.path("state").exists(), "a plan writes no state");

    // The human table names each vendor and the counts.
    let out = env.run(&["plan"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("motive") && text.contains("create E1"),
        "{text}"
    );
    // Its log says what was planned, never counts that read as calls made.
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("Planned."), "{logs}");
    assert!(!logs.contains("Pass finished"), "{logs}");
    let out = env.run(&["reconcile"]).await;
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("Pass finished for vendor."), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_what_the_store_knows() {
    let env = Env::motive().await;
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com")]));
    let (code, s) = env.json(&["status"]).await;
    assert_eq!(code, 0);
    assert!(s["last_run"].is_null());
    env.reconcile().await;
    let (code, s) = env.json(&["status"]).await;
    assert_eq!(code, 0);
    assert_eq!(s["vendors"]["motive"]["linked"], 1);
    assert_eq!(s["vendors"]["motive"]["active"], 1);
    assert_eq!(s["last_run"]["outcome"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_validates_config_source_and_credentials() {
    let env = Env::new(
        "max_deactivation_ratio = 1.0",
        &format!(
            "{}{}",
            crate::common::motive_vendor("motive", crate::common::MOTIVE_KEY),
            crate::common::motive_vendor("motive_old", "revoked-key")
        ),
    )
    .await;
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com")]));
    let out = env.run(&["check"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("vendor motive: ok"), "{text}");
    assert!(text.contains("vendor motive_old: FAILED"), "{text}");
    assert_eq!(env.sandbox.motive.control.writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_mistakes_exit_2_naming_the_key() {
    let env = Env::motive().await;
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com")]));
    let good = std::fs::read_to_string(&env.config).expect("config");
    for (bad, key) in [
        (good.replace("api_key", "apikey"), "apikey"),
        (
            good.replace("type = \"motive\"", "type = \"moteev\""),
            "vendors.motive.type",
        ),
        (format!("schedule = \"every minute\"\n{good}"), "schedule"),
        (
            good.replace("max_deactivations = 50", "max_deactivations = \"x\""),
            "max_deactivations",
        ),
        (good.replace(&env.sandbox.url("motive"), "nope"), "base_url"),
    ] {
        std::fs::write(&env.config, &bad).expect("write");
        let out = env.run(&["reconcile"]).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(key), "error should name `{key}`: {err}");
    }
    assert_eq!(env.sandbox.motive.control.calls().len(), 0);
}
