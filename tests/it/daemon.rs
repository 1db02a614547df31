//! `roster run` as shipped: the real binary on a short schedule against the sandbox.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::common::{Env, MOTIVE_KEY, motive_vendor, numbered_people, person};

pub(crate) const TOKEN: &str = "trigger-token-for-tests-0001";

pub(crate) struct Daemon {
    pub child: Child,
    addr: String,
    pub logs: Arc<Mutex<Vec<Value>>>,
}

impl Daemon {
    pub async fn start(env: &Env) -> Self {
        let mut child = env
            .command(&["run"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn roster run");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                crate::common::assert_no_secrets(&line);
                let v = serde_json::from_str(&line).unwrap_or(json!({ "raw": line }));
                sink.lock().expect("logs").push(v);
            }
        });
        let addr = wait_for(Duration::from_secs(20), || {
            logs.lock().expect("logs").iter().find_map(|l| {
                l["fields"]["message"]
                    .as_str()
                    .filter(|m| m.starts_with("Daemon started"))
                    .and_then(|_| l["fields"]["addr"].as_str().map(String::from))
            })
        })
        .await
        .expect("daemon announces its address");
        Self { child, addr, logs }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(self.url(path)).await.expect("GET");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("pid").to_string();
        let ok = std::process::Command::new("kill")
            .args([format!("-{sig}"), pid])
            .status()
            .expect("kill")
            .success();
        assert!(ok);
    }

    pub fn passes(&self) -> usize {
        self.logs
            .lock()
            .expect("logs")
            .iter()
            .filter(|l| l["fields"]["message"] == "Pass complete.")
            .count()
    }
}

/// Polls `f` until it gives a value or `limit` passes.
pub(crate) async fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn env_with(schedule: &str, extra: &str) -> Env {
    let env = Env::new(
        "max_deactivation_ratio = 1.0",
        &motive_vendor("motive", MOTIVE_KEY).replace(
            "[vendors.motive.defaults]",
            "concurrency = 2\n[vendors.motive.defaults]",
        ),
    )
    .await;
    let text = std::fs::read_to_string(&env.config).expect("config");
    let text = format!(
        "schedule = \"{schedule}\"\nlog_format = \"json\"\nshutdown_grace_secs = 10\n{extra}\n{text}\n\
         [server]\nlisten = \"127.0.0.1:0\"\ntrigger_token = \"{TOKEN}\"\n"
    );
    std::fs::write(&env.config, text).expect("config");
    env
}

/// Polls `/metrics` until the metric named by `prefix` has `value` (metrics move when a
/// pass completes, a little after the vendor saw its calls).
async fn wait_metric(d: &Daemon, prefix: &str, value: f64) -> String {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, text) = d.get("/metrics").await;
        assert_eq!(status, 200);
        if metric(&text, prefix) == Some(value) {
            return text;
        }
        assert!(
            Instant::now() < end,
            "{prefix} never reached {value}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_run_on_schedule_and_endpoints_answer() {
    let env = env_with("*/1 * * * * *", "").await;
    let motive = &env.sandbox.motive;
    env.write_people(&json!([
        person("E1", "Ann", "Lee", "ann@example.com"),
        person("E2", "Bob", "Ray", "bob@example.com"),
    ]));
    let mut d = Daemon::start(&env).await;
    assert_eq!(d.get("/healthz").await.0, 200);
    assert_eq!(d.get("/readyz").await.0, 200);

    wait_for(Duration::from_secs(20), || {
        (motive.users().len() == 2).then_some(())
    })
    .await
    .expect("the first scheduled pass creates both people");
    let created = r#"roster_operations_total{vendor="motive",op="create",result="ok"}"#;
    let text = wait_metric(&d, created, 2.0).await;
    assert!(
        metric(
            &text,
            r#"roster_last_success_timestamp_seconds{vendor="motive"}"#
        )
        .is_some()
    );
    assert_eq!(metric(&text, "roster_source_people"), Some(2.0));
    assert!(
        !text.contains("ann@example.com") && !text.contains("E1"),
        "no person data"
    );

    // Passes keep coming on schedule; a new person is picked up and the metric moves.
    let before = d.passes();
    env.write_people(&json!([
        person("E1", "Ann", "Lee", "ann@example.com"),
        person("E2", "Bob", "Ray", "bob@example.com"),
        person("E3", "Cy", "Dee", "cy@example.com"),
    ]));
    wait_for(Duration::from_secs(20), || {
        (motive.users().len() == 3).then_some(())
    })
    .await
    .expect("a later pass creates the new person");
    wait_for(Duration::from_secs(10), || {
        (d.passes() >= before + 2).then_some(())
    })
    .await
    .expect("passes keep running");
    let text = wait_metric(&d, created, 3.0).await;
    let duration_count = metric(&text, "roster_pass_duration_seconds_count").expect("histogram");
    assert!(duration_count >= 3.0, "{text}");
    // Each pass logged one summary line with the counts.
    let logs = d.logs.lock().expect("logs").clone();
    assert!(
        logs.iter()
            .any(|l| l["fields"]["message"] == "Next pass scheduled.")
    );
    assert!(logs.iter().any(|l| {
        l["fields"]["counts"]
            .as_str()
            .is_some_and(|c| c.contains("created=1"))
    }));

    d.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(15), d.child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_passes_by_signal_and_authenticated_http() {
    // A schedule that never fires during the test.
    let env = env_with("0 0 0 1 1 * 2099", "").await;
    let motive = &env.sandbox.motive;
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com")]));
    let mut d = Daemon::start(&env).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(motive.users().is_empty(), "no pass before it is asked for");

    d.signal("USR1");
    wait_for(Duration::from_secs(10), || {
        (motive.users().len() == 1).then_some(())
    })
    .await
    .expect("SIGUSR1 starts a pass");

    env.write_people(&json!([
        person("E1", "Ann", "Lee", "ann@example.com"),
        person("E2", "Bob", "Ray", "bob@example.com"),
    ]));
    let client = reqwest::Client::new();
    let r = client.post(d.url("/trigger")).send().await.expect("post");
    assert_eq!(r.status().as_u16(), 401);
    let r = client
        .post(d.url("/trigger"))
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        motive.users().len(),
        1,
        "an unauthenticated trigger starts nothing"
    );
    // Auth schemes are case-insensitive (RFC 9110): a client saying `bearer` is heard.
    let r = client
        .post(d.url("/trigger"))
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 202);
    wait_for(Duration::from_secs(10), || {
        (motive.users().len() == 2).then_some(())
    })
    .await
    .expect("an authenticated trigger starts a pass");

    d.signal("INT");
    let status = tokio::time::timeout(Duration::from_secs(15), d.child.wait())
        .await
        .expect("exits after SIGINT")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_pass_lets_in_flight_calls_finish() {
    let env = env_with("*/1 * * * * *", "").await;
    let motive = &env.sandbox.motive;
    env.write_people(&numbered_people(6));
    // Each create is carried out at once but answered 2 s later.
    motive
        .control
        .delay_after_commit(Method::POST, "/v1/users", Duration::from_secs(2));
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
        .expect("exits within the grace period")
        .expect("wait");
    assert_eq!(status.code(), Some(0), "graceful exit");
    assert!(
        sent.elapsed() >= Duration::from_secs(1),
        "it waited for the in-flight replies"
    );
    let made = motive.users().len();
    assert!(
        (1..6).contains(&made),
        "in-flight calls finished, no new ones started: {made}"
    );

    // The store recorded every call that finished: nothing is left as a bare intent.
    let (_, s) = env.json(&["status"]).await;
    assert_eq!(s["vendors"]["motive"]["active"], made as u64, "{s}");
    assert_eq!(s["vendors"]["motive"]["pending_create"], 0, "{s}");

    // The next pass finishes the job without a duplicate.
    motive.control.clear_faults();
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["vendors"]["motive"]["created"], (6 - made) as u64);
    assert_eq!(r["vendors"]["motive"]["adopted"], 0);
    assert_eq!(motive.users().len(), 6);
    for i in 0..6 {
        assert_eq!(motive.by_external_id(&format!("E{i}")).len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_passes_log_progress_and_full_schedule_repairs_drift() {
    // Ordinary passes never come; full passes every second.
    let env = env_with(
        "0 0 0 1 1 * 2099",
        "full_schedule = \"*/1 * * * * *\"\nprogress_log_secs = 1",
    )
    .await;
    let motive = &env.sandbox.motive;
    env.write_people(&numbered_people(8));
    // Slow vendor: 8 creates at concurrency 2 take about 4 × 0.6 s.
    motive.control.set_latency(Duration::from_millis(300));
    let mut d = Daemon::start(&env).await;
    wait_for(Duration::from_secs(30), || {
        (motive.users().len() == 8).then_some(())
    })
    .await
    .expect("a full pass creates everyone");
    wait_for(Duration::from_secs(10), || {
        d.logs
            .lock()
            .expect("logs")
            .iter()
            .any(|l| {
                l["fields"]["message"] == "Pass progress."
                    && l["fields"]["total"].as_u64() == Some(8)
            })
            .then_some(())
    })
    .await
    .expect("a progress line during the long pass");
    motive.control.set_latency(Duration::ZERO);

    // Someone edits an email at Motive; the next full pass puts it back.
    let id = motive.by_external_id("E3")[0]["id"].to_string();
    motive.edit(&id, "email", json!("edited@example.com"));
    wait_for(Duration::from_secs(20), || {
        (motive.by_external_id("E3")[0]["email"] == "p3@example.com").then_some(())
    })
    .await
    .expect("drift repaired by a scheduled full pass");
    assert!(d.logs.lock().expect("logs").iter().any(|l| {
        l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Drift"))
    }));

    d.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(15), d.child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_needs_a_schedule() {
    let env = Env::motive().await;
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com")]));
    let out = env.run(&["run"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("schedule"));
}

/// SIGTERM while the pass waits for Rocket.Chat's rate-limit window (nothing in
/// flight): the wait ends at once and the daemon exits cleanly, well inside the grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_rate_limit_wait_exits_at_once() {
    let c = roster_sandbox::Credentials::default();
    let env = Env::with_retry(
        "[retry]\ninitial_interval_ms = 10\nmax_interval_secs = 75\nmax_elapsed_secs = 150\n\
         pass_budget_secs = 300\nrequest_timeout_secs = 5\n",
        "max_deactivation_ratio = 1.0",
        &format!(
            "[vendors.chat]\ntype = \"rocketchat\"\nbase_url = \"{{url:rocketchat}}\"\n\
             user_id = \"{}\"\nauth_token = \"{}\"\n",
            c.rocketchat_user_id, c.rocketchat_auth_token
        ),
    )
    .await;
    let text = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        format!(
            "schedule = \"*/1 * * * * *\"\nlog_format = \"json\"\nshutdown_grace_secs = 30\n\
             {text}\n[server]\nlisten = \"127.0.0.1:0\"\n"
        ),
    )
    .expect("config");
    let rc = &env.sandbox.rocketchat;
    rc.set_rate_limit(10, Duration::from_secs(60));
    let people: Vec<Value> = (0..15)
        .map(|i| {
            let mut p = person(
                &format!("E{i}"),
                "Ann",
                &format!("Lee{i}"),
                &format!("ann{i}@example.com"),
            );
            p["username"] = json!(format!("ann.{i}"));
            p
        })
        .collect();
    env.write_people(&json!(people));
    let mut d = Daemon::start(&env).await;
    let made = || {
        rc.users()
            .iter()
            .filter(|u| {
                u["username"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("ann."))
            })
            .count()
    };
    // Ten lookups fill users.info's window; the pass then waits for it (about a minute).
    wait_for(Duration::from_secs(20), || (made() >= 10).then_some(()))
        .await
        .expect("a pass fills the window");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(made() < 15, "the window held the rest back");
    let sent = Instant::now();
    d.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(10), d.child.wait())
        .await
        .expect("exits long before the window resets")
        .expect("wait");
    assert_eq!(
        status.code(),
        Some(0),
        "graceful exit, nothing was in flight"
    );
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "took {:?}",
        sent.elapsed()
    );
    assert_eq!(rc.control.count_status(429), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_alerts_once_recovers_once_and_exports_condition_gauges() {
    // Daily: no scheduled pass during the test, passes on SIGUSR1 only.
    let env = env_with("0 0 0 * * *", "").await;
    crate::notify::notify_both(&env);
    let hooks = &env.sandbox.hooks;
    env.write_people(&json!([]));
    let mut d = Daemon::start(&env).await;
    let text = wait_metric(&d, "roster_schedule_interval_seconds", 86_400.0).await;
    assert_eq!(
        metric(&text, "roster_rate_limited_total{vendor=\"motive\"}"),
        Some(0.0),
        "{text}"
    );
    for n in 1..=2 {
        d.signal("USR1");
        wait_metric(&d, "roster_passes_total{outcome=\"refused\"}", f64::from(n)).await;
    }
    assert!(
        metric(&d.get("/metrics").await.1, "roster_pass_refused") == Some(1.0),
        "the refusal gauge is up"
    );
    wait_for(Duration::from_secs(10), || {
        (hooks.messages_of("webhook").len() == 1).then_some(())
    })
    .await
    .expect("the refusal is alerted");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hooks.messages_of("webhook").len(), 1, "and only once");
    assert_eq!(hooks.messages_of("slack").len(), 1);

    env.write_people(&crate::notify::people());
    d.signal("USR1");
    wait_metric(&d, "roster_pass_refused", 0.0).await;
    let recovered = wait_for(Duration::from_secs(10), || {
        let w = hooks.messages_of("webhook");
        (w.len() == 2).then(|| w[1].json.clone())
    })
    .await
    .expect("the recovery is alerted");
    assert_eq!(recovered["event"], "recovered");
    let text = wait_metric(&d, "roster_failed_operations{vendor=\"motive\"}", 0.0).await;
    assert_eq!(
        metric(&text, "roster_credentials_rejected{vendor=\"motive\"}"),
        Some(0.0),
        "{text}"
    );
    d.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(20), d.child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
}
