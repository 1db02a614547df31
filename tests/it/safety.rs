//! The safety gate and broken sources: nothing is pushed, nobody is deactivated.

use serde_json::json;

use crate::common::{Env, MOTIVE_KEY, counts, motive_vendor, person};

fn ten_people() -> Vec<serde_json::Value> {
    (0..10)
        .map(|i| {
            person(
                &format!("E{i}"),
                "First",
                &format!("Last{i}"),
                &format!("p{i}@example.com"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_deactivations_are_refused_unless_forced() {
    let env = Env::new(
        "max_deactivations = 50\nmax_deactivation_ratio = 0.2",
        &motive_vendor("motive", MOTIVE_KEY),
    )
    .await;
    let motive = &env.sandbox.motive;
    let people = ten_people();
    env.write_people(&json!(people));
    assert_eq!(env.reconcile().await.0, 0);

    // Half the people vanish: 50% > 20%.
    env.write_people(&json!(people[..5]));
    motive.control.clear_calls();
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 3, "{r}");
    assert!(
        r["refused"]
            .as_str()
            .expect("refused")
            .contains("max_deactivation_ratio")
    );
    assert_eq!(motive.control.writes(), 0, "nothing is pushed when refused");
    assert!(motive.users().iter().all(|u| u["status"] == "active"));
    // Planned and done never look alike: nothing was deactivated, five would have been.
    let m = &r["vendors"]["motive"];
    assert_eq!(r["dry_run"], false);
    assert_eq!(counts(&r, "motive"), [0, 0, 0, 0, 5, 0, 0], "{r}");
    assert_eq!(m["would"]["deactivated"], 5, "{r}");
    let would = m["would"]["operations"].as_array().expect("would-be ops");
    assert_eq!(would.len(), 5);
    assert!(
        would
            .iter()
            .all(|o| o["op"] == "deactivate" && o["reason"] == "removed")
    );
    assert!(m.get("operations").is_none(), "{r}");
    let out = env.run(&["reconcile"]).await;
    let (table, logs) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(table.contains("motive (would)"), "{table}");
    assert!(
        table.contains("motive: would deactivate E5 (removed)"),
        "{table}"
    );
    assert!(logs.contains("would_deactivate=5"), "{logs}");
    assert!(
        !logs.contains("Pass finished") && !logs.contains(" deactivated=5"),
        "{logs}"
    );
    // A dry run's counts are what would happen, as the interface has it, and say so.
    let (code, d) = env.json(&["reconcile", "--dry-run", "--force"]).await;
    assert_eq!(code, 0, "{d}");
    assert_eq!(d["dry_run"], true);
    assert_eq!(counts(&d, "motive")[2], 5, "{d}");
    assert_eq!(
        d["vendors"]["motive"]["operations"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    assert!(d["vendors"]["motive"].get("would").is_none());
    let out = env.run(&["plan"]).await;
    let (table, logs) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        table.contains("motive (would)") && table.contains("would deactivate"),
        "{table}"
    );
    assert!(
        logs.contains("would_deactivate=5") && !logs.contains("Pass finished"),
        "{logs}"
    );

    // Two vanish (20%, not more): allowed.
    env.write_people(&json!(people[..8]));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[2], 2);

    // --force overrides.
    env.write_people(&json!(people[..3]));
    assert_eq!(env.reconcile().await.0, 3);
    let (code, r) = env.json(&["reconcile", "--force"]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[2], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_shrank_too_much_is_refused_unless_forced() {
    let env = Env::new(
        "max_deactivation_ratio = 1.0\nmax_source_drop_ratio = 0.2",
        &motive_vendor("motive", MOTIVE_KEY),
    )
    .await;
    let people = ten_people();
    env.write_people(&json!(people));
    assert_eq!(env.reconcile().await.0, 0);
    // A truncated export: 7 of 10 (a 30% drop).
    env.write_people(&json!(people[..7]));
    env.sandbox.motive.control.clear_calls();
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 3, "{r}");
    assert!(
        r["refused"]
            .as_str()
            .expect("refused")
            .contains("max_source_drop_ratio"),
        "{r}"
    );
    assert_eq!(env.sandbox.motive.control.writes(), 0);
    // The refused pass does not lower the bar: the same file is refused again.
    assert_eq!(env.reconcile().await.0, 3);
    // 8 of 10 (20%) is within the limit.
    env.write_people(&json!(people[..8]));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[2], 2);
    // --force accepts a larger drop, which becomes the new baseline.
    env.write_people(&json!(people[..4]));
    assert_eq!(env.reconcile().await.0, 3);
    assert_eq!(env.json(&["reconcile", "--force"]).await.0, 0);
    assert_eq!(env.reconcile().await.0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_deactivation_limit() {
    let env = Env::new(
        "max_deactivations = 3\nmax_deactivation_ratio = 1.0",
        &motive_vendor("motive", MOTIVE_KEY),
    )
    .await;
    let people = ten_people();
    env.write_people(&json!(people));
    assert_eq!(env.reconcile().await.0, 0);
    env.write_people(&json!(people[..6]));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 3);
    assert!(
        r["refused"]
            .as_str()
            .expect("refused")
            .contains("max_deactivations = 3")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_unreadable_or_malformed_source_is_always_refused() {
    let env = Env::motive().await;
    let motive = &env.sandbox.motive;
    env.write_people(&json!(ten_people()));
    assert_eq!(env.reconcile().await.0, 0);
    motive.control.clear_calls();

    let cases: Vec<(&str, Option<String>)> = vec![
        ("empty list", Some("[]".into())),
        ("syntax error", Some("[{\"id\": \"E1\",".into())),
        ("not a list", Some("{\"id\": \"E1\"}".into())),
        (
            "only invalid records",
            Some("[{\"email\": \"x@example.com\"}]".into()),
        ),
        ("missing file", None),
    ];
    for (name, content) in cases {
        match content {
            Some(c) => std::fs::write(env.path("people.json"), c).expect("write"),
            None => {
                let _ = std::fs::remove_file(env.path("people.json"));
            }
        }
        for args in [&["reconcile"][..], &["reconcile", "--force"][..]] {
            let (code, r) = env.json(args).await;
            assert_eq!(code, 3, "{name}: {r}");
            assert!(r["refused"].is_string(), "{name}");
        }
    }
    assert_eq!(motive.control.writes(), 0);
    assert!(motive.users().iter().all(|u| u["status"] == "active"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_records_are_reported_and_never_deactivate_anyone() {
    let env = Env::motive().await;
    let motive = &env.sandbox.motive;
    let mut people = ten_people();
    env.write_people(&json!(people));
    assert_eq!(env.reconcile().await.0, 0);

    // E1's email gets a typo, E2 loses its id, E3 is duplicated.
    people[1]["email"] = json!("p1-at-example.com");
    people[2].as_object_mut().expect("object").remove("id");
    let dup = people[3].clone();
    people.push(dup);
    env.write_people(&json!(people));
    motive.control.clear_calls();
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["source"]["invalid"], 4, "{r}");
    assert_eq!(r["source"]["records"], 11);
    let errors = r["source"]["errors"].as_array().expect("errors");
    let text = serde_json::to_string(errors).expect("json");
    assert!(
        text.contains("record 2 (index 1)") && text.contains("malformed email"),
        "{text}"
    );
    assert!(text.contains("missing `id`"), "{text}");
    assert!(text.contains("duplicate id `E3`"), "{text}");
    assert_eq!(counts(&r, "motive")[2], 0, "nobody deactivated");
    assert_eq!(motive.control.writes(), 0);
    assert!(motive.users().iter().all(|u| u["status"] == "active"));
}
