//! Motive's failure modes against its stateful fake: auth, validation, 429, 5xx, and
//! adoption of an account that already carries roster's external id.

use axum::http::Method;
use roster_sandbox::Fault;
use serde_json::json;

use crate::common::{Env, MOTIVE_KEY, counts, motive_vendor, person};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_stop_that_vendor_only() {
    let env = Env::new(
        "max_deactivation_ratio = 1.0",
        &format!(
            "{}{}",
            motive_vendor("motive", MOTIVE_KEY),
            // A second Motive account whose key was revoked.
            motive_vendor("motive_old", "revoked-key").replace(
                "api_key = \"revoked-key\"",
                "api_key = \"revoked-key\"\nintegration_name = \"roster-old\""
            )
        ),
    )
    .await;
    env.write_people(&json!([
        person("E1", "Ann", "Lee", "ann@example.com"),
        person("E2", "Bob", "Ray", "bob@example.com"),
        person("E3", "Cy", "Dee", "cy@example.com"),
    ]));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 1, "{r}");
    assert_eq!(counts(&r, "motive"), [3, 0, 0, 0, 0, 0, 0]);
    assert_eq!(counts(&r, "motive_old")[5], 3);
    assert_eq!(r["vendors"]["motive_old"]["credentials"], "rejected", "{r}");
    assert_eq!(r["vendors"]["motive"]["credentials"], "accepted", "{r}");
    let errors = r["vendors"]["motive_old"]["errors"]
        .as_array()
        .expect("errors");
    assert!(
        errors[0]["message"]
            .as_str()
            .expect("msg")
            .contains("credentials rejected")
    );
    // After the first 401, roster stops calling: one lookup per worker at most.
    let unauthorized = env.sandbox.motive.control.count_status(401);
    assert!(
        unauthorized <= 4,
        "{unauthorized} calls with a rejected key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_token_works_like_an_api_key() {
    let env = Env::new(
        "max_deactivation_ratio = 1.0",
        &motive_vendor("motive", "x")
            .replace("api_key = \"x\"", "token = \"sandbox-motive-oauth-token\""),
    )
    .await;
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com")]));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(env.sandbox.motive.users().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_mode_pair_skips_that_person_only() {
    let env = Env::motive().await;
    let mut odd = person("E2", "Bob", "Ray", "bob@example.com");
    odd["attributes"] = json!({ "motive.eld_mode": "exempt" });
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com"), odd]));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "a skip is not a failure: {r}");
    assert_eq!(counts(&r, "motive"), [1, 0, 0, 0, 0, 0, 1]);
    let e = &r["vendors"]["motive"]["errors"][0];
    assert_eq!(e["person"], "E2");
    assert_eq!(e["op"], "create");
    assert!(
        e["message"]
            .as_str()
            .expect("msg")
            .contains("eld_mode `exempt`"),
        "{e}"
    );
    assert!(env.sandbox.motive.by_external_id("E2").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_validation_failure_is_recorded_per_person_and_retried_next_pass() {
    let env = Env::motive().await;
    let motive = &env.sandbox.motive;
    env.write_people(&json!([
        person("E1", "Ann", "Lee", "ann@example.com"),
        person("E2", "Bob", "Ray", "taken@example.com"),
    ]));
    // Someone at the vendor already uses E2's email.
    motive.control.inject(
        Fault::new(
            Some(Method::POST),
            "/v1/users",
            400,
            r#"{"error_message":"Email has already been taken"}"#,
        )
        .times(1),
    );
    motive.control.clear_calls();
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 1, "{r}");
    let [created, .., failed, _] = counts(&r, "motive");
    assert_eq!((created, failed), (1, 1));
    let e = &r["vendors"]["motive"]["errors"][0];
    assert!(
        e["message"]
            .as_str()
            .expect("msg")
            .contains("Email has already been taken"),
        "{e}"
    );
    // Not retried within the pass: exactly two creates were attempted.
    let posts = motive
        .control
        .calls()
        .iter()
        .filter(|c| c.method == "POST")
        .count();
    assert_eq!(posts, 2);

    // Next pass: the failed person is tried again and now succeeds.
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [1, 0, 0, 0, 1, 0, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_with_retry_after_is_honoured() {
    let env = Env::motive().await;
    let motive = &env.sandbox.motive;
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com")]));
    motive.control.inject(
        Fault::new(
            Some(Method::POST),
            "/v1/users",
            429,
            r#"{"error_message":"Too many requests"}"#,
        )
        .header("Retry-After", "1")
        .times(2),
    );
    let started = std::time::Instant::now();
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[0], 1);
    assert_eq!(
        motive.users().len(),
        1,
        "exactly one account despite retries"
    );
    assert_eq!(motive.control.count_status(429), 2);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "waited as told"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_then_success() {
    let env = Env::motive().await;
    let motive = &env.sandbox.motive;
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com")]));
    assert_eq!(env.reconcile().await.0, 0);
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann.lee@example.com")]));
    motive
        .control
        .inject(Fault::new(Some(Method::PUT), "/v1/users/", 500, "{}").times(2));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[1], 1);
    assert_eq!(motive.control.count_status(500), 2);
    assert_eq!(
        motive.by_external_id("E1")[0]["email"],
        "ann.lee@example.com"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_server_errors_fail_within_the_retry_budget() {
    let env = Env::motive().await;
    let motive = &env.sandbox.motive;
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com")]));
    motive
        .control
        .inject(Fault::new(None, "/v1/users", 503, "{}").times(10_000));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 1, "{r}");
    assert_eq!(counts(&r, "motive")[5], 1);
    motive.control.clear_faults();
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(motive.users().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_account_with_our_external_id_is_adopted() {
    let env = Env::motive().await;
    let motive = &env.sandbox.motive;
    // Made earlier (by hand, or by a roster whose state was lost).
    let client = reqwest::Client::new();
    let made = client
        .post(format!("{}/v1/users", env.sandbox.url("motive")))
        .header("X-Api-Key", MOTIVE_KEY)
        .json(&json!({
            "first_name": "Ann", "last_name": "Lee", "email": "old@example.com",
            "status": "deactivated",
            "external_ids_attributes": [{ "external_id": "E1", "integration_name": "roster" }]
        }))
        .send()
        .await
        .expect("create");
    assert_eq!(made.status().as_u16(), 201);
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com")]));
    motive.control.clear_calls();
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["vendors"]["motive"]["adopted"], 1);
    assert_eq!(counts(&r, "motive")[0], 0);
    let users = motive.users();
    assert_eq!(users.len(), 1, "no second account");
    assert_eq!(users[0]["email"], "ann@example.com");
    assert_eq!(users[0]["status"], "active");
    assert!(motive.control.calls().iter().all(|c| c.method != "POST"));
    // And the next pass is quiet.
    motive.control.clear_calls();
    env.reconcile().await;
    assert_eq!(motive.control.writes(), 0);
}
