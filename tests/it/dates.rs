//! Start and end dates through the binary, against the Motive fake: a future joiner is
//! not created today and is by a later pass; `plan --upcoming` and `explain` say what
//! is due and when; an end date deactivates; the daemon runs a pass at the due moment.
//!
//! The dates are chosen relative to the real clock (no clock is injected into the
//! binary): a start a few seconds ahead is "a later pass" without test-only code in
//! roster, and the daemon's wake-up can only be tested against the real clock anyway.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{Env, LOOSE_SAFETY, MOTIVE_KEY, counts, motive_vendor};

fn who(id: &str, dates: Value) -> Value {
    let mut p = json!({ "id": id, "first_name": "Pat", "last_name": id,
                        "email": format!("{}@example.com", id.to_lowercase()) });
    for (k, v) in dates.as_object().expect("object") {
        p[k] = v.clone();
    }
    p
}

fn day(offset_days: i64) -> String {
    (Utc::now() + TimeDelta::days(offset_days))
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

fn utc(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("a time: {v}")))
        .expect("rfc3339")
        .with_timezone(&Utc)
}

/// The upcoming list of one vendor as (due, op, person, reason).
fn upcoming(r: &Value) -> Vec<(DateTime<Utc>, String, String, String)> {
    r["vendors"]["motive"]["upcoming"]
        .as_array()
        .unwrap_or_else(|| panic!("no upcoming list: {r}"))
        .iter()
        .map(|u| {
            (
                utc(&u["due"]),
                u["op"].as_str().expect("op").to_string(),
                u["person"].as_str().expect("person").to_string(),
                u["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_joiner_is_created_by_a_later_pass_and_a_leaver_deactivated() {
    let env = Env::new(LOOSE_SAFETY, &motive_vendor("motive", MOTIVE_KEY)).await;
    let motive = &env.sandbox.motive;
    // E1 starts in a few seconds (a date-time with its own offset); E4 leaves in two
    // hours; E6 starts in three days (a date, read in UTC); E3 left yesterday.
    let t0 = Utc::now();
    let start1 = t0 + TimeDelta::seconds(8);
    let start1_text = start1
        .with_timezone(&FixedOffset::east_opt(2 * 3600).expect("offset"))
        .to_rfc3339_opts(SecondsFormat::Millis, false);
    let end4 = (t0 + TimeDelta::hours(2)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut people = vec![
        who("E1", json!({ "start_date": start1_text })),
        who("E2", json!({})),
        who("E3", json!({ "end_date": day(-1) })),
        who("E4", json!({ "end_date": end4 })),
        who("E5", json!({})),
        who("E6", json!({ "start_date": day(3) })),
    ];
    env.write_people(&json!(people));

    let (code, r) = env.json(&["plan", "--upcoming", "1h"]).await;
    assert_eq!(code, 0, "{r}");
    let start1_ms = utc(&json!(start1.to_rfc3339_opts(SecondsFormat::Millis, true)));
    assert_eq!(
        upcoming(&r),
        [(start1_ms, "create".into(), "E1".into(), String::new())],
        "{r}"
    );
    let (code, r) = env.json(&["plan", "--upcoming", "5d"]).await;
    assert_eq!(code, 0, "{r}");
    let e6_start = utc(&json!(format!("{}T00:00:00Z", day(3))));
    assert_eq!(
        upcoming(&r),
        [
            (start1_ms, "create".into(), "E1".into(), String::new()),
            (
                utc(&json!(end4)),
                "deactivate".into(),
                "E4".into(),
                "ended".into()
            ),
            (e6_start, "create".into(), "E6".into(), String::new()),
        ],
        "{r}"
    );
    let text =
        String::from_utf8_lossy(&env.run(&["plan", "--upcoming", "5d"]).await.stdout).to_string();
    assert!(
        text.contains(&format!("motive: upcoming {}: deactivate E4 (ended)", end4)),
        "{text}"
    );

    // Today's pass: E2, E4 and E5 are created; E1 and E6 have not joined yet; E3 has
    // left (never linked, so nothing to do).
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert!(
        utc(&r["started_at"]) < start1,
        "the first pass must run before E1's start for this test to mean anything"
    );
    assert_eq!(counts(&r, "motive")[0], 3, "{r}");
    for id in ["E1", "E3", "E6"] {
        assert!(motive.by_external_id(id).is_empty(), "{id} was created");
    }
    assert_eq!(utc(&r["next_due"]), start1_ms, "{r}");

    // explain says which rule applies and when the next change comes.
    let (code, e) = env.json(&["explain", "E1"]).await;
    assert_eq!(code, 0, "{e}");
    let m = &e["vendors"]["motive"];
    assert_eq!(m["wanted"], "not_yet", "{e}");
    assert_eq!(m["dates"]["rule"], "not_yet", "{e}");
    assert_eq!(utc(&m["dates"]["next_due"]), start1_ms, "{e}");
    assert_eq!(m["dates"]["next"]["op"], "create", "{e}");
    let (code, e) = env.json(&["explain", "E4"]).await;
    assert_eq!(code, 0, "{e}");
    assert_eq!(e["vendors"]["motive"]["dates"]["rule"], "joined", "{e}");
    assert_eq!(
        e["vendors"]["motive"]["dates"]["next"]["op"], "deactivate",
        "{e}"
    );
    let out = env.run(&["explain", "E6"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("not yet joined: start_date {}", day(3)))
            && text.contains(&format!("next change due: {}T00:00:00Z (create)", day(3))),
        "{text}"
    );

    // A later pass, once E1's start has come: E1 is created, nobody else changes.
    let wait = (start1 - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(200)).await;
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[0], 1, "{r}");
    assert_eq!(motive.by_external_id("E1").len(), 1);
    assert!(motive.by_external_id("E6").is_empty());

    // E5's end date is set to yesterday: deactivated, as if inactive (reason `ended`).
    people[4]["end_date"] = json!(day(-1));
    env.write_people(&json!(people));
    let (code, plan) = env.json(&["plan"]).await;
    assert_eq!(code, 0, "{plan}");
    assert_eq!(
        plan["vendors"]["motive"]["operations"],
        json!([{ "person": "E5", "op": "deactivate", "fields": [], "reason": "ended" }]),
        "{plan}"
    );
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[2], 1, "{r}");
    assert_eq!(motive.by_external_id("E5")[0]["status"], "deactivated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_days_grace_days_and_bad_dates_from_a_csv_source() {
    let env = Env::new(
        LOOSE_SAFETY,
        &motive_vendor("motive", MOTIVE_KEY).replace(
            "[vendors.motive.defaults]",
            "provision_days_before_start = 2\nend_grace_days = 1\n[vendors.motive.defaults]",
        ),
    )
    .await;
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        config.replace("people.json", "people.csv")
            + "\n[lifecycle]\ntime_zone = \"Pacific/Kiritimati\"\n",
    )
    .expect("config");
    // Kiritimati is UTC+14: its "today" is ahead of UTC's, so take its dates.
    let kiri = |days: i64| {
        (Utc::now() + TimeDelta::days(days) + TimeDelta::hours(14))
            .date_naive()
            .format("%Y-%m-%d")
            .to_string()
    };
    std::fs::write(
        env.path("people.csv"),
        format!(
            "id,first_name,last_name,email,start_date,end_date\n\
             L1,Pat,One,l1@example.com,{},\n\
             L2,Pat,Two,l2@example.com,{},\n\
             G1,Pat,Three,g1@example.com,,{}\n\
             X1,Pat,Four,x1@example.com,{},{}\n\
             X2,Pat,Five,x2@example.com,next monday,\n",
            kiri(2),
            kiri(4),
            kiri(0),
            kiri(5),
            kiri(1),
        ),
    )
    .expect("csv");
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    let m = &env.sandbox.motive;
    // Two lead days: L1 (starting in two days) now, L2 (in four) later; a grace day keeps
    // G1, whose end date is today, until today ends.
    assert_eq!(m.by_external_id("L1").len(), 1, "{r}");
    assert!(m.by_external_id("L2").is_empty(), "{r}");
    assert_eq!(m.by_external_id("G1").len(), 1, "{r}");
    // X1's end is before its start: skipped with a message at the vendor; X2's date is
    // not a date: the record is invalid and names the field.
    let errors = r["vendors"]["motive"]["errors"].as_array().expect("errors");
    assert!(
        errors.iter().any(|e| e["person"] == "X1"
            && e["outcome"] == "skipped"
            && e["message"]
                .as_str()
                .expect("m")
                .contains("is before start_date")),
        "{r}"
    );
    assert_eq!(r["source"]["invalid"], 1, "{r}");
    let bad = &r["source"]["errors"][0];
    assert_eq!(bad["id"], "X2");
    assert!(
        bad["message"]
            .as_str()
            .expect("m")
            .contains("`start_date`: `next monday`"),
        "{r}"
    );
    assert!(m.by_external_id("X1").is_empty() && m.by_external_id("X2").is_empty());
}

/// `roster run` with a schedule that never comes in the test: its passes come from
/// SIGUSR1 and from due moments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_a_pass_at_the_due_moment_between_ticks() {
    let env = Env::new(LOOSE_SAFETY, &motive_vendor("motive", MOTIVE_KEY)).await;
    let text = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        format!(
            "schedule = \"0 0 0 1 1 * 2099\"\nlog_format = \"json\"\n{text}\n\
             [server]\nlisten = \"127.0.0.1:0\"\n"
        ),
    )
    .expect("config");
    let start = Utc::now() + TimeDelta::seconds(6);
    env.write_people(&json!([
        who("E1", json!({})),
        who(
            "E2",
            json!({ "start_date": start.to_rfc3339_opts(SecondsFormat::Millis, true) })
        ),
    ]));
    let mut child = env
        .command(&["run"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("roster run");
    let logs = Arc::new(Mutex::new(Vec::<Value>::new()));
    let sink = Arc::clone(&logs);
    let stderr = child.stderr.take().expect("stderr");
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let v = serde_json::from_str(&line).unwrap_or(json!({ "raw": line }));
            sink.lock().expect("logs").push(v);
        }
    });
    let said = |message: &str| -> Vec<Value> {
        logs.lock()
            .expect("logs")
            .iter()
            .filter(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message))
            })
            .cloned()
            .collect()
    };
    until(Duration::from_secs(20), "the daemon starts", || {
        !said("Daemon started").is_empty()
    })
    .await;
    let pid = child.id().expect("pid").to_string();
    let kill = |sig: &str| {
        std::process::Command::new("kill")
            .args([format!("-{sig}"), pid.clone()])
            .status()
            .expect("kill")
    };
    assert!(kill("USR1").success());
    until(Duration::from_secs(20), "the first pass", || {
        !said("Pass complete.").is_empty()
    })
    .await;
    assert!(
        Utc::now() < start,
        "the first pass must end before E2's start for this test to mean anything"
    );
    let m = &env.sandbox.motive;
    assert_eq!(m.by_external_id("E1").len(), 1);
    assert!(m.by_external_id("E2").is_empty(), "not joined yet");
    // The next wake-up is E2's start (plus a second), not the far-away tick.
    until(Duration::from_secs(5), "the due wake-up is logged", || {
        said("Next pass scheduled.")
            .iter()
            .any(|l| l["fields"]["reason"] == "date due")
    })
    .await;
    let wake = said("Next pass scheduled.")
        .into_iter()
        .rfind(|l| l["fields"]["reason"] == "date due")
        .expect("wake");
    let at = logged_time(&wake["fields"]["next_run"]);
    let expected = start + TimeDelta::seconds(1);
    assert!(
        (at - expected).num_milliseconds().abs() < 5,
        "wakes at {at}, expected {expected}"
    );
    // No signal, no tick: the daemon creates E2 on its own once the start has come.
    until(
        Duration::from_secs(20),
        "E2 is created at the due moment",
        || m.by_external_id("E2").len() == 1,
    )
    .await;
    assert!(Utc::now() >= start, "not before the start");
    // The vendor sees the create before the pass logs its end.
    until(Duration::from_secs(10), "the due pass ends", || {
        said("Pass complete.").len() >= 2
    })
    .await;
    assert_eq!(
        said("Pass complete.").len(),
        2,
        "one pass for the due moment"
    );
    assert!(kill("TERM").success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert_eq!(status.code(), Some(0));
}

/// Polls `f` until it holds, failing the test after `limit`.
async fn until(limit: Duration, what: &str, f: impl Fn() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A time as the logs show it (`2026-11-29 14:35:26.123 UTC`).
fn logged_time(v: &Value) -> DateTime<Utc> {
    let text = v.as_str().unwrap_or_else(|| panic!("a logged time: {v}"));
    chrono::NaiveDateTime::parse_from_str(text.trim_end_matches(" UTC"), "%Y-%m-%d %H:%M:%S%.f")
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .and_utc()
}
