//! Create-only fields through the binary against the Motive fake: sent with the create,
//! never by an update, never set back by `--full`, and a typo in the list is a config
//! error naming the key.

use serde_json::{Value, json};

use crate::common::{Env, LOOSE_SAFETY, MOTIVE_KEY, counts, motive_vendor_with};

fn ann(role: &str, email: &str) -> Value {
    json!({ "id": "E1", "first_name": "Ann", "last_name": "Lee", "email": email,
            "attributes": { "motive.role": role } })
}

async fn env(create_only: &str) -> Env {
    Env::new(
        LOOSE_SAFETY,
        &motive_vendor_with(
            "motive",
            MOTIVE_KEY,
            &format!("create_only = {create_only}\n"),
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_only_field_is_sent_once_and_then_left_to_the_vendor() {
    let env = env("[\"role\"]").await;
    let motive = &env.sandbox.motive;
    env.write_people(&json!([ann("fleet_user", "ann@example.com")]));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[0], 1, "created: {r}");
    let user = &motive.by_external_id("E1")[0];
    assert_eq!(user["role"], "fleet_user", "sent with the create");
    let id = user["id"].to_string();

    // The source changes the role alone: nothing is sent.
    motive.control.clear_calls();
    env.write_people(&json!([ann("admin", "ann@example.com")]));
    let (code, plan) = env.json(&["plan"]).await;
    assert_eq!(code, 0);
    assert_eq!(plan["vendors"]["motive"]["operations"], json!([]), "{plan}");
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [0, 0, 0, 0, 1, 0, 0], "{r}");
    assert_eq!(motive.control.writes(), 0, "no write call at all");
    assert_eq!(motive.by_external_id("E1")[0]["role"], "fleet_user");
    // explain says why the difference is left alone.
    let (code, e) = env.json(&["explain", "E1"]).await;
    assert_eq!(code, 0, "{e}");
    let why = e["vendors"]["motive"]["why"].as_str().unwrap_or_default();
    assert!(why.contains("except create-only role"), "{e}");

    // The role and the email change: only the email is sent.
    env.write_people(&json!([ann("admin", "ann.lee@example.com")]));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[1], 1, "updated: {r}");
    let user = &motive.by_external_id("E1")[0];
    assert_eq!(user["email"], "ann.lee@example.com");
    assert_eq!(user["role"], "fleet_user");
    let history = env.json(&["history", "--person", "E1"]).await.1;
    let updates: Vec<&Value> = history
        .as_array()
        .expect("list")
        .iter()
        .filter(|e| e["op"] == "update")
        .collect();
    assert_eq!(updates.len(), 1, "{history}");
    assert_eq!(
        updates[0]["fields"],
        json!(["email"]),
        "the role was never sent"
    );

    // Someone sets the role at Motive by hand, and edits the name: `--full` puts the name
    // back and leaves the role alone.
    motive.edit(&id, "role", json!("driver"));
    motive.edit(&id, "first_name", json!("Annie"));
    let (code, r) = env.json(&["reconcile", "--full"]).await;
    assert_eq!(code, 0, "{r}");
    let drift = &r["vendors"]["motive"]["drift"];
    assert_eq!(drift["found"], 1, "{r}");
    assert_eq!(drift["details"][0]["fields"], json!(["first_name"]), "{r}");
    let user = &motive.by_external_id("E1")[0];
    assert_eq!(user["first_name"], "Ann", "managed fields are repaired");
    assert_eq!(user["role"], "driver", "the hand edit stays");
    motive.control.clear_calls();
    let (code, r) = env.json(&["reconcile", "--full"]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["vendors"]["motive"]["drift"]["found"], 0, "{r}");
    assert_eq!(motive.control.writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typo_in_create_only_is_a_config_error_naming_the_key() {
    let env = env("[\"rol\"]").await;
    env.write_people(&json!([ann("driver", "ann@example.com")]));
    for args in [&["reconcile"][..], &["check"], &["plan"]] {
        let out = env.run(args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("vendors.motive.create_only")
                && stderr.contains("did you mean `role`?"),
            "{stderr}"
        );
    }
    assert!(env.sandbox.motive.users().is_empty());
}
