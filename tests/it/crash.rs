//! A real crash between the vendor's reply and the store write: roster is killed while
//! the fake holds back its answer to a create it already carried out. The next pass must
//! adopt the account, not create a second one.

use std::time::Duration;

use axum::http::Method;
use serde_json::json;

use crate::common::{Env, counts, person};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_vendor_create_then_next_pass_adopts() {
    let env = Env::motive().await;
    let motive = &env.sandbox.motive;
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com")]));
    motive
        .control
        .delay_after_commit(Method::POST, "/v1/users", Duration::from_secs(60));

    let mut child = env.command(&["reconcile"]).spawn().expect("spawn roster");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while motive.users().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the create never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The vendor has the account; roster is still waiting for the reply. Kill it.
    child.start_kill().expect("kill");
    let status = child.wait().await.expect("wait");
    assert!(!status.success());
    motive.control.clear_faults();

    let (_, s) = env.json(&["status"]).await;
    assert_eq!(
        s["vendors"]["motive"]["pending_create"], 1,
        "the intent was recorded: {s}"
    );

    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["vendors"]["motive"]["adopted"], 1, "{r}");
    assert_eq!(counts(&r, "motive")[0], 0);
    assert_eq!(motive.users().len(), 1, "exactly one account");
    assert_eq!(motive.by_external_id("E1").len(), 1);

    motive.control.clear_calls();
    let (_, r) = env.reconcile().await;
    assert_eq!(counts(&r, "motive"), [0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(motive.control.writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_roster_on_the_same_state_dir_fails_fast() {
    let env = Env::motive().await;
    let motive = &env.sandbox.motive;
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com")]));
    motive
        .control
        .delay_after_commit(Method::POST, "/v1/users", Duration::from_secs(60));
    let mut first = env.command(&["reconcile"]).spawn().expect("spawn");
    while motive.users().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = env.run(&["reconcile"]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("in use by another roster process"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    first.start_kill().expect("kill");
    let _ = first.wait().await;
}
