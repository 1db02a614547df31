//! What the commands print never panics (issue 11, medium 4): a reader that goes away
//! (`roster plan | head -2`) and an age too large for the calendar.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::common::{Env, person};

/// Runs `roster ARGS` with stdout read for `keep` bytes and then closed; returns the
/// exit code and stderr.
async fn cut_off(env: &Env, args: &[&str], keep: usize) -> (Option<i32>, String) {
    let mut child = env
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn roster");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = vec![0u8; keep];
    if keep > 0 {
        stdout.read_exact(&mut first).await.expect("some output");
    }
    drop(stdout);
    let out = child.wait_with_output().await.expect("roster ends");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn people(n: usize) -> Value {
    json!(
        (0..n)
            .map(|i| person(
                &format!("E{i:05}"),
                "Pat",
                &format!("Lee{i}"),
                &format!("p{i}@example.com")
            ))
            .collect::<Vec<_>>()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_output_quietly_with_the_commands_own_code() {
    let env = Env::motive().await;
    // More than a pipe's buffer (64 KiB) of plan lines, so the reader's exit is noticed.
    env.write_people(&people(3000));
    let (code, _) = env.json(&["reconcile"]).await;
    assert_eq!(code, 0);
    let mut changed = people(3000);
    for p in changed.as_array_mut().expect("array") {
        p["last_name"] = json!("Moved");
    }
    env.write_people(&changed);

    for (args, keep) in [
        (&["plan"][..], 16),
        (&["plan", "--json"][..], 16),
        (&["reconcile", "--dry-run"][..], 0),
        (&["status"][..], 0),
        (&["status", "--json"][..], 0),
        (&["history"][..], 16),
        (&["history", "--json"][..], 0),
        (&["explain", "E00001"][..], 0),
        (&["check"][..], 0),
    ] {
        let (code, stderr) = cut_off(&env, args, keep).await;
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_since_an_age_past_the_calendar_is_a_usage_error() {
    let env = Env::motive().await;
    env.write_people(&people(1));
    assert_eq!(env.json(&["reconcile"]).await.0, 0);
    for age in ["300000000d", "9223372036854775807s", "99999999999h"] {
        let out = env.run(&["history", "--since", age]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{age}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains(age) && stderr.contains("age"), "{stderr}");
    }
    let out = env.run(&["history", "--since", "36500d", "--json"]).await;
    assert_eq!(out.status.code(), Some(0));
    let entries: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(entries.as_array().map(Vec::len), Some(1));
}
