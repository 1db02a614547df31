//! SIGHUP in `roster run` (issue 11, medium 6): the config and its secrets are read again
//! and apply from the next pass; a config that does not load is logged (naming the key)
//! and the running one kept; settings bound to what was opened at start are logged as
//! needing a restart and keep their running values.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Env, MOTIVE_KEY, person};
use crate::daemon::{Daemon, TOKEN, env_with, wait_for};

/// A daemon whose schedule never fires (passes come from SIGUSR1) and whose Motive key is
/// read from a file.
async fn env(key: &str) -> Env {
    let env = env_with("0 0 0 1 1 * 2099", "").await;
    let key_file = env.path("motive_key");
    std::fs::write(&key_file, key).expect("key");
    let text = std::fs::read_to_string(&env.config).expect("config");
    let text = text.replace(
        &format!("api_key = \"{MOTIVE_KEY}\""),
        &format!("api_key_file = \"{}\"", key_file.display()),
    );
    std::fs::write(&env.config, text).expect("config");
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com")]));
    env
}

/// The first log line whose message starts with `start`, waited for.
async fn logged(d: &Daemon, start: &str) -> Value {
    wait_for(Duration::from_secs(15), || {
        d.logs.lock().expect("logs").iter().find_map(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(start))
                .then(|| l.clone())
        })
    })
    .await
    .unwrap_or_else(|| panic!("never logged `{start}`"))
}

/// Asks for a pass and waits until it completed.
async fn pass(d: &Daemon) {
    let before = d.passes();
    d.signal("USR1");
    wait_for(Duration::from_secs(15), || {
        (d.passes() > before).then_some(())
    })
    .await
    .expect("the pass completes");
}

async fn stop(mut d: Daemon) {
    d.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(15), d.child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reads_a_renewed_secret_for_the_next_pass() {
    let env = env("a-key-motive-refuses").await;
    let motive = &env.sandbox.motive;
    let d = Daemon::start(&env).await;
    pass(&d).await;
    assert!(motive.users().is_empty(), "the old key is refused");

    std::fs::write(env.path("motive_key"), MOTIVE_KEY).expect("key");
    d.signal("HUP");
    logged(&d, "Config and secrets reloaded").await;
    assert_eq!(d.get("/healthz").await.0, 200, "still running");
    pass(&d).await;
    assert_eq!(motive.users().len(), 1, "the pass used the new key");
    stop(d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_on_sighup_keeps_the_running_one_and_restart_only_keys_are_named() {
    let env = env(MOTIVE_KEY).await;
    let motive = &env.sandbox.motive;
    let d = Daemon::start(&env).await;
    let good = std::fs::read_to_string(&env.config).expect("config");

    std::fs::write(&env.config, format!("progress_log_secs = \"soon\"\n{good}")).expect("config");
    d.signal("HUP");
    let failed = logged(&d, "Config reload (SIGHUP) failed").await;
    assert!(
        failed["fields"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("progress_log_secs")),
        "the error names the key: {failed}"
    );
    pass(&d).await;
    assert_eq!(motive.users().len(), 1, "the running config still works");

    // A new trigger token applies at once; a new listen address needs a restart.
    let new_token = "a-renewed-trigger-token-0002";
    std::fs::write(
        &env.config,
        good.replace(TOKEN, new_token)
            .replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\""),
    )
    .expect("config");
    d.signal("HUP");
    let restart = logged(&d, "Config reloaded, but these settings only change").await;
    assert_eq!(restart["fields"]["keys"], "server.listen", "{restart}");
    logged(&d, "Config and secrets reloaded").await;
    assert_eq!(d.get("/healthz").await.0, 200, "still on the old address");
    let client = reqwest::Client::new();
    let post = |token: &str| client.post(d.url("/trigger")).bearer_auth(token).send();
    assert_eq!(post(TOKEN).await.expect("post").status().as_u16(), 401);
    assert_eq!(post(new_token).await.expect("post").status().as_u16(), 202);
    stop(d).await;
}
