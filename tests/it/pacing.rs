//! Pacing (`vendors.NAME.rate_limit`, `src/pace.rs`): a rate-limited vendor is paced
//! without collecting 429s, and a slow vendor does not hold up a fast one.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Env, MOTIVE_KEY, counts, motive_vendor};

const N: usize = 15;

fn people() -> Value {
    (0..N)
        .map(|i| {
            json!({ "id": format!("E{i:03}"), "first_name": "Ann", "last_name": format!("Lee{i}"),
                    "email": format!("ann{i}@example.com"), "username": format!("ann.lee{i}") })
        })
        .collect()
}

async fn env() -> Env {
    let c = roster_sandbox::Credentials::default();
    let vendors = format!(
        "{}\n[vendors.chat]\ntype = \"rocketchat\"\nbase_url = \"{{url:rocketchat}}\"\n\
         user_id = \"{}\"\nauth_token = \"{}\"\nconcurrency = 4\n\
         rate_limit = {{ calls = 5, per_secs = 1 }}\n",
        motive_vendor("motive", MOTIVE_KEY),
        c.rocketchat_user_id,
        c.rocketchat_auth_token,
    );
    Env::new(
        "max_deactivation_ratio = 1.0\nmax_source_drop_ratio = 1.0",
        &vendors,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_vendor_is_paced_and_a_fast_one_is_not_held_up() {
    let env = env().await;
    // 5 calls a second per route at Rocket.Chat: 2 calls per person (lookup, create).
    env.sandbox
        .rocketchat
        .set_rate_limit(5, Duration::from_secs(1));
    env.write_people(&people());
    let child = env
        .command(&["reconcile", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("roster starts");
    // Motive (no limit) is done while Rocket.Chat is still being paced.
    let mut motive_done_while_chat_busy = false;
    for _ in 0..400 {
        let motive = env.sandbox.motive.users().len();
        let chat = env
            .sandbox
            .rocketchat
            .users()
            .iter()
            .filter(|u| {
                u["username"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("ann."))
            })
            .count();
        if motive == N {
            motive_done_while_chat_busy = chat < N;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let out = child.wait_with_output().await.expect("roster ends");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(counts(&report, "motive")[0], N as i64, "{report}");
    assert_eq!(counts(&report, "chat")[0], N as i64, "{report}");
    assert!(
        motive_done_while_chat_busy,
        "Motive's pushes waited for the rate-limited vendor"
    );
    assert!(
        env.sandbox.rocketchat.control.count_status(429) <= 1,
        "repeated 429s: {}",
        env.sandbox.rocketchat.control.count_status(429)
    );
}
