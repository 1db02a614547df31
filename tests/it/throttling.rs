//! Flow control through the real binary (`src/http/`): a storm of 429s at every vendor
//! costs the storm and seconds, not minutes, and leaves nothing behind for the next pass;
//! `--full` and `rebuild-state` stay inside Rocket.Chat's per-route limiter.

use std::time::{Duration, Instant};

use roster_sandbox::StormReply;
use serde_json::{Value, json};

use crate::common::{Env, LOOSE_SAFETY, all_vendors, counts};

const VENDORS: [&str; 4] = ["motive", "drivekit", "telematics", "chat"];

fn person(n: usize, last: &str) -> Value {
    json!({ "id": format!("E{n:03}"), "first_name": "Ann", "last_name": format!("{last}{n}"),
            "email": format!("ann{n}@example.com"), "username": format!("ann.{n}") })
}

fn people(n: usize, last: &str) -> Value {
    (0..n).map(|i| person(i, last)).collect()
}

fn rate_limited(env: &Env) -> [usize; 4] {
    let s = &env.sandbox;
    [
        s.motive.control.count_status(429),
        s.drivekit.control.count_status(429),
        s.telematics.control.count_status(429),
        s.rocketchat.control.count_status(429),
    ]
}

fn clear_calls(env: &Env) {
    let s = &env.sandbox;
    s.motive.control.clear_calls();
    s.drivekit.control.clear_calls();
    s.telematics.control.clear_calls();
    s.rocketchat.control.clear_calls();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_429s_at_every_vendor_costs_the_storm_and_seconds() {
    const N: usize = 20;
    let env = Env::new(LOOSE_SAFETY, &all_vendors()).await;
    let s = &env.sandbox;
    s.rocketchat.disable_rate_limit();
    for i in 0..N {
        s.drivekit.sign_in(&format!("E{i:03}"));
    }
    env.write_people(&people(N, "Lee"));

    // Every call to every vendor answered 429 for 5 s, each in its vendor's way.
    let storm = Duration::from_secs(5);
    s.motive.control.storm(storm, StormReply::RetryAfter(2));
    s.drivekit.control.storm(storm, StormReply::RetryAfter(2));
    // Damoov's login has its own limit (a 429 there is an hour's block: the Telematics
    // tests cover it); the storm is on its user API.
    s.telematics
        .control
        .storm_sparing(storm, StormReply::RetryAfter(2), "/Auth/");
    s.rocketchat
        .control
        .storm(storm, StormReply::RateLimitWindow(2));
    let started = Instant::now();
    let (code, r) = env.reconcile().await;
    let took = started.elapsed();
    assert_eq!(code, 0, "{r}");
    for v in VENDORS {
        // DriveKit links drivers who signed in to the app: adopted, not created.
        let c = counts(&r, v);
        let linked = c[0] + r["vendors"][v]["adopted"].as_i64().unwrap_or(0);
        assert_eq!((linked, c[5], c[6]), (N as i64, 0, 0), "{v}: {r}");
    }
    assert!(
        rate_limited(&env).iter().all(|n| *n > 0),
        "every vendor did refuse calls: {:?}",
        rate_limited(&env)
    );
    assert!(
        took <= storm + Duration::from_secs(4),
        "the pass took {took:?} for a {storm:?} storm"
    );
    // Everyone exactly once at every vendor.
    for i in 0..N {
        let id = format!("E{i:03}");
        assert_eq!(s.motive.by_external_id(&id).len(), 1, "{id} at Motive");
        assert_eq!(s.telematics.by_client_id(&id).len(), 1, "{id} at Damoov");
        assert!(
            s.rocketchat.user_by_username(&format!("ann.{i}")).is_some(),
            "{id} at Rocket.Chat"
        );
    }
    assert_eq!(s.motive.users().len(), N);

    // The next pass runs at full speed: nothing learned in the storm slows it down.
    clear_calls(&env);
    env.write_people(&people(N, "Ray"));
    let started = Instant::now();
    let (code, r) = env.reconcile().await;
    let took = started.elapsed();
    assert_eq!(code, 0, "{r}");
    for v in ["motive", "telematics", "chat"] {
        assert_eq!(counts(&r, v)[1], N as i64, "{v}: {r}");
    }
    assert_eq!(rate_limited(&env), [0; 4]);
    assert!(
        took <= Duration::from_secs(3),
        "the pass after the storm took {took:?}"
    );
}

/// Rocket.Chat's own limiter, as the server runs it by default: 10 calls per 60 s per
/// route. Waits of a minute need a `max_interval_secs` that allows them.
const MINUTE_WINDOWS: &str = "[retry]\ninitial_interval_ms = 10\nmax_interval_secs = 75\n\
                              max_elapsed_secs = 150\npass_budget_secs = 300\n\
                              request_timeout_secs = 5\n";

async fn chat_env() -> Env {
    let c = roster_sandbox::Credentials::default();
    let vendors = format!(
        "[vendors.chat]\ntype = \"rocketchat\"\nbase_url = \"{{url:rocketchat}}\"\n\
         user_id = \"{}\"\nauth_token = \"{}\"\n",
        c.rocketchat_user_id, c.rocketchat_auth_token
    );
    Env::with_retry(MINUTE_WINDOWS, LOOSE_SAFETY, &vendors).await
}

const PEOPLE: usize = 12;

/// Twelve people linked at Rocket.Chat (made with the limiter off), then the limiter on
/// with fresh windows.
async fn linked(env: &Env) {
    let rc = &env.sandbox.rocketchat;
    rc.disable_rate_limit();
    env.write_people(&people(PEOPLE, "Lee"));
    let (code, r) = env.reconcile().await;
    assert_eq!((code, counts(&r, "chat")[0]), (0, PEOPLE as i64), "{r}");
    rc.set_rate_limit(10, Duration::from_secs(60));
    rc.control.clear_calls();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_state_waits_for_rocket_chats_windows_instead_of_collecting_429s() {
    let env = chat_env().await;
    linked(&env).await;
    std::fs::remove_dir_all(env.path("state")).expect("state removed");
    let (code, r) = env.json(&["rebuild-state"]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["vendors"]["chat"]["linked"], PEOPLE, "{r}");
    let rc = &env.sandbox.rocketchat;
    assert_eq!(rc.control.count_status(429), 0, "429s during rebuild-state");
    let lookups = rc
        .control
        .calls()
        .iter()
        .filter(|c| c.path.ends_with("users.info"))
        .count();
    assert_eq!(
        lookups, PEOPLE,
        "one lookup each, none repeated after a 429"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pass_waits_for_rocket_chats_windows_instead_of_collecting_429s() {
    let env = chat_env().await;
    linked(&env).await;
    env.write_people(&people(PEOPLE, "Ray"));
    let (code, r) = env.json(&["reconcile", "--full"]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "chat")[1], PEOPLE as i64, "{r}");
    assert_eq!(r["vendors"]["chat"]["drift"]["found"], 0, "{r}");
    let rc = &env.sandbox.rocketchat;
    assert_eq!(rc.control.count_status(429), 0, "429s during the full pass");
    assert!(
        rc.users()
            .iter()
            .filter(|u| u["name"].as_str().is_some_and(|n| n.contains("Ray")))
            .count()
            == PEOPLE
    );
}

/// Every wait comes out of `retry.pass_budget_secs`: a vendor that answers every call
/// 429 with `Retry-After: 1` costs the budget, not minutes, and each error says which
/// limit stopped the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_that_never_stops_refusing_costs_the_pass_budget_only() {
    let retry = "[retry]\ninitial_interval_ms = 10\nmax_interval_secs = 3\n\
                 max_elapsed_secs = 60\npass_budget_secs = 4\nrequest_timeout_secs = 5\n";
    let env = Env::with_retry(
        retry,
        LOOSE_SAFETY,
        &crate::common::motive_vendor("motive", crate::common::MOTIVE_KEY),
    )
    .await;
    env.write_people(&people(5, "Lee"));
    let motive = &env.sandbox.motive;
    motive
        .control
        .storm(Duration::from_secs(600), StormReply::RetryAfter(1));
    let started = Instant::now();
    let (code, r) = env.reconcile().await;
    let took = started.elapsed();
    assert_eq!(code, 1, "{r}");
    assert_eq!(counts(&r, "motive")[5], 5, "{r}");
    assert!(
        took <= Duration::from_secs(7),
        "took {took:?} on a 4 s budget"
    );
    for e in r["vendors"]["motive"]["errors"].as_array().expect("errors") {
        let m = e["message"].as_str().unwrap_or_default();
        assert!(
            m.contains("rate limited by the vendor (429") || m.contains("pass budget"),
            "{m}"
        );
    }
    assert_eq!(motive.users().len(), 0);
}

/// A pass of 429s with `Retry-After: 86400` fails fast (the vendor asked for a day), and
/// leaves nothing that slows the next pass once the vendor is healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_long_retry_after_fails_fast_and_is_forgotten() {
    let env = Env::new(
        LOOSE_SAFETY,
        &crate::common::motive_vendor("motive", crate::common::MOTIVE_KEY),
    )
    .await;
    let motive = &env.sandbox.motive;
    env.write_people(&people(40, "Lee"));
    motive
        .control
        .storm(Duration::from_secs(2), StormReply::RetryAfter(86_400));
    let started = Instant::now();
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 1, "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let first = r["vendors"]["motive"]["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        first.contains("86400") && (first.contains("429") || first.contains("pause")),
        "{first}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[0], 40, "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the healthy pass took {:?}",
        started.elapsed()
    );
}
