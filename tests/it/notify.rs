//! `[[notify]]` through the real binary: one-shot `roster reconcile` runs (separate
//! processes, as a CronJob or timer runs them) against the sandbox's Slack and generic
//! webhook receivers.

use std::io::Write as _;

use axum::http::Method;
use roster_sandbox::{Credentials, Fault};
use serde_json::{Value, json};

use crate::common::{Env, MOTIVE_KEY, person};

pub(crate) fn people() -> Value {
    json!([
        person("E1", "Ann", "Lee", "ann.lee@example.com"),
        person("E2", "Bob", "Ray", "bob.ray@example.com"),
        person("E3", "Cy", "Dee", "cy.dee@example.com"),
    ])
}

/// Appends TOML to the test's config.
pub(crate) fn add_config(env: &Env, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&env.config)
        .expect("config");
    writeln!(f, "\n{text}").expect("append");
}

/// Both receivers as targets; the URLs (secrets) are in files, as the README advises.
pub(crate) fn notify_both(env: &Env) {
    let creds = Credentials::default();
    std::fs::write(
        env.path("slack_url"),
        format!("{}\n", env.sandbox.slack_webhook_url(&creds)),
    )
    .expect("url file");
    std::fs::write(env.path("webhook_url"), env.sandbox.webhook_url(&creds)).expect("url file");
    add_config(
        env,
        "[[notify]]\ntype = \"slack\"\nurl_file = \"slack_url\"\n\n\
         [[notify]]\ntype = \"webhook\"\nname = \"ops\"\nurl_file = \"webhook_url\"\n",
    );
}

/// The secrets alert bodies and output must never show.
fn secrets() -> Vec<String> {
    let c = Credentials::default();
    vec![
        "sandbox-slack-webhook-secret".to_string(),
        c.webhook_token,
        c.motive_api_key,
    ]
}

/// No secret and no person data beyond ids in any message received so far.
fn assert_clean_bodies(env: &Env) {
    for m in env.sandbox.hooks.messages() {
        for s in secrets() {
            assert!(!m.raw.contains(&s), "a secret in an alert body: {}", m.raw);
        }
        for p in ["Ann", "Lee", "example.com", "Bob", "Ray"] {
            assert!(
                !m.raw.contains(p),
                "person data in an alert body: {}",
                m.raw
            );
        }
    }
}

async fn reconcile(env: &Env) -> (i32, Value) {
    let secrets = secrets();
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    env.json_without(&["reconcile"], &refs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_pass_three_times_alerts_once_and_its_recovery_once() {
    let env = Env::motive().await;
    let hooks = &env.sandbox.hooks;
    notify_both(&env);
    env.write_people(&people());
    assert_eq!(reconcile(&env).await.0, 0);
    assert!(hooks.messages().is_empty(), "a good pass alerts nothing");

    // The export comes back empty three times: three refused runs, one alert per target.
    env.write_people(&json!([]));
    for run in 1..=3 {
        let (code, r) = reconcile(&env).await;
        assert_eq!(code, 3, "run {run}: {r}");
        assert!(r["refused"].is_string(), "run {run}: {r}");
    }
    let slack = hooks.messages_of("slack");
    let webhook = hooks.messages_of("webhook");
    assert_eq!(slack.len(), 1, "{slack:?}");
    assert_eq!(webhook.len(), 1, "{webhook:?}");
    let text = slack[0].json["text"].as_str().expect("slack text");
    assert!(
        text.starts_with(
            ":rotating_light: *roster*: roster pass refused, nothing was pushed: \
                          the source has no valid records"
        ),
        "{text}"
    );
    let doc = &webhook[0].json;
    assert_eq!(doc["event"], "pass_refused");
    assert_eq!(doc["status"], "firing");
    assert_eq!(doc["repeat"], false);
    assert_eq!(doc["pass"]["outcome"], "refused");
    assert_eq!(doc["pass"]["exit_code"], 3);
    assert_eq!(doc["pass"]["source"]["records"], 0);
    assert!(
        doc["pass"]["refused"]
            .as_str()
            .expect("reason")
            .contains("no valid records"),
        "{doc}"
    );

    // The source is back: one recovery message per target, then quiet.
    env.write_people(&people());
    assert_eq!(reconcile(&env).await.0, 0);
    assert_eq!(reconcile(&env).await.0, 0);
    let slack = hooks.messages_of("slack");
    let webhook = hooks.messages_of("webhook");
    assert_eq!(
        (slack.len(), webhook.len()),
        (2, 2),
        "{slack:?} {webhook:?}"
    );
    assert!(
        slack[1].json["text"]
            .as_str()
            .expect("text")
            .starts_with(":white_check_mark: *roster*: roster passes are no longer refused"),
        "{:?}",
        slack[1]
    );
    let doc = &webhook[1].json;
    assert_eq!(doc["event"], "recovered");
    assert_eq!(doc["status"], "resolved");
    assert_eq!(doc["recovered"], "pass_refused");
    assert_eq!(doc["since"], webhook[0].json["since"]);
    assert_eq!(doc["pass"]["outcome"], "ok");
    assert_clean_bodies(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_changes_neither_exit_code_nor_report() {
    let env = Env::motive().await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    add_config(
        &env,
        &format!(
            "[[notify]]\ntype = \"slack\"\nurl = \"http://{addr}/services/T0/B0/down-secret-path\"\n"
        ),
    );
    env.write_people(&people());
    assert_eq!(reconcile(&env).await.0, 0);

    // Refused (exit 3) with the alert undeliverable: still exit 3, the report printed.
    env.write_people(&json!([]));
    let out = env.run(&["reconcile", "--json"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("the report is printed");
    assert!(report["refused"].is_string(), "{report}");
    assert!(
        stderr.contains("Alert not delivered") && stderr.contains("notify[0]"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("down-secret-path") && !stderr.contains("/services/"),
        "the URL leaked: {stderr}"
    );

    // Failed operations (exit 1) with the alert undeliverable: still exit 1.
    env.write_people(&json!([person("E9", "Dee", "Fox", "dee.fox@example.com")]));
    env.sandbox.motive.control.inject(
        Fault::new(
            Some(Method::POST),
            "/v1/users",
            422,
            "{\"error_message\":\"Invalid\"}",
        )
        .times(100),
    );
    let (code, r) = reconcile(&env).await;
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["vendors"]["motive"]["failed"], 1, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undelivered_alert_is_retried_then_sent_after_the_next_pass() {
    let env = Env::motive().await;
    let hooks = &env.sandbox.hooks;
    notify_both(&env);
    env.write_people(&json!([]));
    // Slack is down for the first run's three attempts only.
    hooks
        .control
        .inject(Fault::new(Some(Method::POST), "/slack/", 503, "").times(3));
    assert_eq!(reconcile(&env).await.0, 3);
    assert_eq!(hooks.messages_of("slack").len(), 0);
    assert_eq!(
        hooks.messages_of("webhook").len(),
        1,
        "the other target got it"
    );
    let slack_calls = || {
        hooks
            .control
            .calls()
            .iter()
            .filter(|c| c.path.starts_with("/slack/"))
            .count()
    };
    assert_eq!(slack_calls(), 3, "three attempts");

    // Not recorded as sent, so the next refused run sends it; the webhook stays quiet.
    assert_eq!(reconcile(&env).await.0, 3);
    assert_eq!(hooks.messages_of("slack").len(), 1);
    assert_eq!(hooks.messages_of("webhook").len(), 1);
    assert_eq!(reconcile(&env).await.0, 3);
    assert_eq!(hooks.messages().len(), 2);
    assert_clean_bodies(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_alert_once_and_recover_when_the_key_is_fixed() {
    let env = Env::motive().await;
    let hooks = &env.sandbox.hooks;
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        config.replace(
            &format!("api_key = \"{MOTIVE_KEY}\""),
            "api_key = \"revoked-key\"",
        ),
    )
    .expect("config");
    notify_both(&env);
    env.write_people(&people());
    for _ in 0..2 {
        let (code, r) = reconcile(&env).await;
        assert_eq!(code, 1, "{r}");
        assert_eq!(r["vendors"]["motive"]["credentials"], "rejected", "{r}");
    }
    let webhook = hooks.messages_of("webhook");
    assert_eq!(
        webhook.len(),
        1,
        "one alert, no separate failures alert: {webhook:?}"
    );
    let doc = &webhook[0].json;
    assert_eq!(doc["event"], "credentials_rejected");
    assert_eq!(doc["vendor"], "motive");
    assert_eq!(doc["errors_total"], 3);
    // The class is the report's `kind` for the same error.
    assert_eq!(doc["errors"][0]["error"], "auth");
    assert_eq!(doc["errors"][0]["status"], 401);
    assert_eq!(
        hooks.messages_of("slack")[0].json["text"],
        ":rotating_light: *roster*: motive rejected roster's credentials (401); no further \
         calls were made to it in this pass (3 operations not done)."
    );

    // The key is fixed: the pass succeeds, one recovery message.
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        config.replace(
            "api_key = \"revoked-key\"",
            &format!("api_key = \"{MOTIVE_KEY}\""),
        ),
    )
    .expect("config");
    let (code, r) = reconcile(&env).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["vendors"]["motive"]["credentials"], "accepted", "{r}");
    let webhook = hooks.messages_of("webhook");
    assert_eq!(webhook.len(), 2, "{webhook:?}");
    assert_eq!(webhook[1].json["event"], "recovered");
    assert_eq!(webhook[1].json["recovered"], "credentials_rejected");
    // Nothing to do now: no call, nothing learned, nothing sent.
    let (code, r) = reconcile(&env).await;
    assert_eq!(code, 0);
    assert!(r["vendors"]["motive"].get("credentials").is_none(), "{r}");
    assert_eq!(hooks.messages().len(), 4);
    assert_clean_bodies(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_alerts_nothing() {
    let env = Env::motive().await;
    notify_both(&env);
    env.write_people(&json!([]));
    let secrets = secrets();
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_eq!(env.json_without(&["plan"], &refs).await.0, 3);
    assert_eq!(
        env.json_without(&["reconcile", "--dry-run"], &refs).await.0,
        3
    );
    assert!(env.sandbox.hooks.messages().is_empty());
}
