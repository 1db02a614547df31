//! SIGTERM and SIGINT during a one-shot `roster reconcile` (issue 11, medium 6): no
//! vendor call starts after the signal, calls in flight finish (for up to
//! `shutdown_grace_secs`, or until a second signal), the partial report is printed, and
//! the exit code is 128 + the signal.

use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::Value;

use crate::common::{Env, numbered_people};

async fn env(grace_secs: u64) -> Env {
    let env = Env::motive().await;
    let text = std::fs::read_to_string(&env.config).expect("config");
    // Replies slower than the grace period must not end by the request timeout first.
    let text = format!("shutdown_grace_secs = {grace_secs}\n{text}")
        .replace(
            "[vendors.motive.defaults]",
            "concurrency = 2\n[vendors.motive.defaults]",
        )
        .replace("request_timeout_secs = 5", "request_timeout_secs = 60");
    std::fs::write(&env.config, text).expect("config");
    env.write_people(&numbered_people(6));
    env
}

/// Starts `roster reconcile --json`, waits until the vendor has made an account, sends
/// `signals` (one `kill` each, 200 ms apart); returns the exit code, the report and how
/// long it took from the first signal.
async fn interrupted(env: &Env, signals: &[&str]) -> (Option<i32>, Value, Duration) {
    let child = env
        .command(&["reconcile", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id().expect("pid").to_string();
    let motive = &env.sandbox.motive;
    let end = Instant::now() + Duration::from_secs(20);
    while motive.users().is_empty() {
        assert!(Instant::now() < end, "the pass never created anyone");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = Instant::now();
    for (i, sig) in signals.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let ok = std::process::Command::new("kill")
            .args([format!("-{sig}"), pid.clone()])
            .status()
            .expect("kill")
            .success();
        assert!(ok);
    }
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("exits")
        .expect("output");
    let took = sent.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("a report is printed ({e}):\n{stdout}\n{stderr}"));
    (out.status.code(), report, took)
}

fn messages(report: &Value) -> Vec<String> {
    report["vendors"]["motive"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["message"].as_str().expect("message").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_calls_in_flight_finish_and_prints_the_partial_report() {
    let env = env(10).await;
    let motive = &env.sandbox.motive;
    // Each create is carried out at once but answered 1 s later.
    motive
        .control
        .delay_after_commit(Method::POST, "/v1/users", Duration::from_secs(1));
    let (code, r, took) = interrupted(&env, &["TERM"]).await;
    assert_eq!(code, Some(143), "128 + SIGTERM: {r}");
    assert!(
        took >= Duration::from_millis(500),
        "it waited for the replies"
    );
    assert!(r["interrupted"].is_string(), "{r}");
    let made = motive.users().len();
    let m = &r["vendors"]["motive"];
    assert!(
        (1..6).contains(&made),
        "no new call after the signal: {made}"
    );
    assert_eq!(
        m["created"], made as u64,
        "every account made is reported: {r}"
    );
    assert_eq!(m["failed"], (6 - made) as u64, "{r}");
    assert!(
        messages(&r)
            .iter()
            .all(|m| m.contains("not attempted: roster is shutting down")),
        "{r}"
    );
    let (_, s) = env.json(&["status"]).await;
    assert_eq!(s["vendors"]["motive"]["active"], made as u64, "{s}");
    assert_eq!(s["vendors"]["motive"]["pending_create"], 0, "{s}");
    assert!(
        s["last_run"]["outcome"] == "failed_operations",
        "the saved report: {s}"
    );

    // The next pass finishes the job, with no second account.
    motive.control.clear_faults();
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["vendors"]["motive"]["created"], (6 - made) as u64);
    assert_eq!(motive.users().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigint_abandons_calls_in_flight_safely() {
    let env = env(30).await;
    let motive = &env.sandbox.motive;
    // Creates are carried out at once and answered 8 s later: longer than anyone waits.
    motive
        .control
        .delay_after_commit(Method::POST, "/v1/users", Duration::from_secs(8));
    let (code, r, took) = interrupted(&env, &["INT", "INT"]).await;
    assert_eq!(code, Some(130), "128 + SIGINT: {r}");
    assert!(
        took < Duration::from_secs(5),
        "not waiting out the replies: {took:?}"
    );
    let m = &r["vendors"]["motive"];
    assert_eq!(m["created"], 0, "{r}");
    let kinds: Vec<&str> = m["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds.len(), 6, "{r}");
    assert!(kinds.contains(&"interrupted"), "{r}");
    assert!(
        kinds
            .iter()
            .all(|k| *k == "interrupted" || *k == "not_sent"),
        "{r}"
    );

    // The accounts made while nobody waited are found, not made twice.
    motive.control.clear_faults();
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(motive.users().len(), 6, "{r}");
    for i in 0..6 {
        assert_eq!(motive.by_external_id(&format!("E{i}")).len(), 1, "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_grace_period_runs_out_calls_in_flight_are_abandoned() {
    let env = env(1).await;
    let motive = &env.sandbox.motive;
    motive
        .control
        .delay_after_commit(Method::POST, "/v1/users", Duration::from_secs(8));
    let (code, r, took) = interrupted(&env, &["TERM"]).await;
    assert_eq!(code, Some(143), "{r}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "the grace period, then out: {took:?}"
    );
    assert!(
        messages(&r)
            .iter()
            .any(|m| m.contains("shutdown_grace_secs ran out")),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_a_full_plan_drops_the_listing_and_prints_the_plan() {
    let env = env(30).await;
    let motive = &env.sandbox.motive;
    // Every request takes 8 s: the account listing of `--full` is in flight.
    motive.control.set_latency(Duration::from_secs(8));
    let child = env
        .command(&["plan", "--full", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent = Instant::now();
    let pid = child.id().expect("pid").to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("exits")
        .expect("output");
    let took = sent.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(
        took < Duration::from_secs(4),
        "the listing is not waited out: {took:?}"
    );
    let r: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("the plan is printed ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(r["dry_run"], true, "{r}");
    assert!(r["interrupted"].is_string(), "{r}");
    let m = &r["vendors"]["motive"];
    assert_eq!(m["created"], 6, "what the plan would do: {r}");
    assert!(
        m["drift"]["unavailable"]
            .as_str()
            .is_some_and(|u| u.contains("stopping")),
        "{r}"
    );
    motive.control.set_latency(Duration::ZERO);
    assert!(motive.users().is_empty(), "a plan pushes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_abandons_calls_past_its_grace_period_and_keeps_the_report() {
    use crate::daemon::{Daemon, env_with, wait_for};
    let env = env_with("*/1 * * * * *", "").await;
    let text = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        text.replace("shutdown_grace_secs = 10", "shutdown_grace_secs = 1")
            .replace("request_timeout_secs = 5", "request_timeout_secs = 60"),
    )
    .expect("config");
    env.write_people(&numbered_people(6));
    let motive = &env.sandbox.motive;
    motive
        .control
        .delay_after_commit(Method::POST, "/v1/users", Duration::from_secs(30));
    let mut d = Daemon::start(&env).await;
    wait_for(Duration::from_secs(20), || {
        (!motive.users().is_empty()).then_some(())
    })
    .await
    .expect("a pass starts creating");
    let sent = Instant::now();
    d.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(15), d.child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert_eq!(status.code(), Some(1), "the grace period ran out");
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "the replies are not waited out: {:?}",
        sent.elapsed()
    );
    // The pass ended with its calls abandoned, and its report was kept.
    let (_, s) = env.json(&["status"]).await;
    assert_eq!(s["last_run"]["outcome"], "failed_operations", "{s}");

    motive.control.clear_faults();
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(motive.users().len(), 6, "{r}");
    for i in 0..6 {
        assert_eq!(motive.by_external_id(&format!("E{i}")).len(), 1, "{r}");
    }
}
