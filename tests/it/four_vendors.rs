//! All four vendors in one pass, through the real binary: the lifecycle, drift repair
//! (`--full`), `rebuild-state`, `explain` and `history`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Env, all_vendors, counts};

const VENDORS: [&str; 4] = ["motive", "drivekit", "telematics", "chat"];

async fn env() -> Env {
    let vendors = all_vendors();
    let env = Env::new(
        "max_deactivation_ratio = 1.0\nmax_source_drop_ratio = 1.0",
        &vendors,
    )
    .await;
    // Each `roster` run is its own process with its own Damoov login; the real limit of
    // 5 a minute is tested in the Telematics tests.
    env.sandbox
        .telematics
        .set_login_limit(1000, Duration::from_secs(60), Duration::from_secs(1));
    env.sandbox.rocketchat.disable_rate_limit();
    env
}

fn person(id: &str, first: &str, last: &str) -> Value {
    let user = format!("{}.{}", first.to_lowercase(), last.to_lowercase());
    json!({ "id": id, "first_name": first, "last_name": last,
            "email": format!("{user}@example.com"), "username": user,
            "phone": "+15550000000" })
}

fn people() -> Vec<Value> {
    vec![
        person("E1", "Ann", "Lee"),
        person("E2", "Bob", "Ray"),
        person("E3", "Cy", "Dee"),
    ]
}

/// Sign every person's driver in to the DriveKit app (DriveKit cannot create drivers).
fn sign_in_all(env: &Env, people: &[Value]) {
    for p in people {
        env.sandbox.drivekit.sign_in(p["id"].as_str().expect("id"));
    }
}

fn writes(env: &Env) -> usize {
    let s = &env.sandbox;
    s.motive.control.writes()
        + s.drivekit.control.writes()
        + s.telematics.control.writes()
        + s.rocketchat.control.writes()
}

fn clear_calls(env: &Env) {
    let s = &env.sandbox;
    s.motive.control.clear_calls();
    s.drivekit.control.clear_calls();
    s.telematics.control.clear_calls();
    s.rocketchat.control.clear_calls();
}

/// The vendor's id for person `id` at each vendor.
fn ids(env: &Env, id: &str, username: &str) -> [String; 4] {
    let s = &env.sandbox;
    let motive = s.motive.by_external_id(id);
    assert_eq!(motive.len(), 1, "one Motive account for {id}");
    let tm = s.telematics.by_client_id(id);
    assert_eq!(tm.len(), 1, "one Damoov account for {id}");
    let rc = s
        .rocketchat
        .user_by_username(username)
        .expect("Rocket.Chat user");
    [
        motive[0]["id"].to_string(),
        s.drivekit.driver(id).expect("driver")["userId"].to_string(),
        tm[0]["DeviceToken"].to_string(),
        rc["_id"].to_string(),
    ]
}

fn sum(r: &Value, what: usize) -> i64 {
    VENDORS.iter().map(|v| counts(r, v)[what]).sum()
}

fn linked(r: &Value, v: &str) -> i64 {
    r["vendors"][v]["created"].as_i64().unwrap_or(0)
        + r["vendors"][v]["adopted"].as_i64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_across_all_four_vendors() {
    let env = env().await;
    let mut people = people();
    env.write_people(&json!(people));
    sign_in_all(&env, &people);

    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    for v in VENDORS {
        assert_eq!(linked(&r, v), 3, "{v}: {r}");
        assert_eq!(counts(&r, v)[5], 0, "{v} failed: {r}");
    }
    let before = ids(&env, "E1", "ann.lee");

    // No change: no write call anywhere.
    clear_calls(&env);
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0);
    assert_eq!(writes(&env), 0, "{r}");
    assert_eq!(sum(&r, 4), 12);

    // One field changes: one update per vendor that carries it.
    people[1]["last_name"] = json!("Ray-Moe");
    env.write_people(&json!(people));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    for v in VENDORS {
        assert_eq!(counts(&r, v)[1], 1, "{v} updated: {r}");
    }

    // Removed: deactivated everywhere, deleted nowhere.
    let gone = people.remove(0);
    env.write_people(&json!(people));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    for v in VENDORS {
        assert_eq!(counts(&r, v)[2], 1, "{v} deactivated: {r}");
    }
    assert_eq!(
        env.sandbox.motive.by_external_id("E1")[0]["status"],
        "deactivated"
    );
    assert_eq!(env.sandbox.drivekit.status("E1"), Some("DISABLE"));
    assert_eq!(env.sandbox.telematics.by_client_id("E1").len(), 1);
    assert_eq!(
        env.sandbox
            .rocketchat
            .user_by_username("ann.lee")
            .expect("rc")["active"],
        false
    );

    // Back: reactivated everywhere, same accounts.
    people.push(gone);
    env.write_people(&json!(people));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    for v in VENDORS {
        assert_eq!(counts(&r, v)[3], 1, "{v} reactivated: {r}");
    }
    assert_eq!(
        ids(&env, "E1", "ann.lee"),
        before,
        "the same account at every vendor"
    );
    assert_eq!(env.sandbox.drivekit.status("E1"), Some("ENABLE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_pass_repairs_drift_injected_at_every_vendor() {
    let env = env().await;
    let mut people = people();
    env.write_people(&json!(people));
    sign_in_all(&env, &people);
    assert_eq!(env.reconcile().await.0, 0);
    people[2]["active"] = json!(false); // E3 is then kept deactivated by roster
    env.write_people(&json!(people));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    let s = &env.sandbox;

    // Someone edits E1 by hand everywhere, re-enables E3 by hand, deletes E2 at Motive
    // and Rocket.Chat.
    let m1 = s.motive.by_external_id("E1")[0]["id"].to_string();
    s.motive.edit(&m1, "email", json!("hand@example.com"));
    let m3 = s.motive.by_external_id("E3")[0]["id"].to_string();
    s.motive.edit(&m3, "status", json!("active"));
    s.motive
        .remove(&s.motive.by_external_id("E2")[0]["id"].to_string());
    let rc1 = s.rocketchat.user_by_username("ann.lee").expect("rc")["_id"]
        .as_str()
        .expect("id")
        .to_string();
    s.rocketchat.edit(&rc1, "name", json!("Annie"));
    let rc2 = s.rocketchat.user_by_username("bob.ray").expect("rc")["_id"]
        .as_str()
        .expect("id")
        .to_string();
    s.rocketchat.remove(&rc2);
    let t3 = s.telematics.by_client_id("E3")[0]["DeviceToken"]
        .as_str()
        .expect("token")
        .to_string();
    s.telematics.set_status(&t3, "Active");
    s.telematics.set_flag(&t3, "Enabled", json!(true));
    s.drivekit.set_identity("E1", "Anna", "Lee", "ann.lee");

    // A plain pass cannot see any of it.
    clear_calls(&env);
    let (_, r) = env.reconcile().await;
    assert_eq!(writes(&env), 0, "{r}");

    // plan --full shows the drift and changes nothing.
    let (code, r) = env.json(&["plan", "--full"]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["vendors"]["motive"]["drift"]["found"], 3, "{r}");
    assert_eq!(writes(&env), 0);

    let (code, r) = env.json(&["reconcile", "--full"]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["vendors"]["motive"]["drift"]["found"], 3, "{r}");
    assert_eq!(r["vendors"]["chat"]["drift"]["found"], 2, "{r}");
    assert_eq!(r["vendors"]["telematics"]["drift"]["found"], 1, "{r}");
    assert_eq!(r["vendors"]["drivekit"]["drift"]["found"], 1, "{r}");
    // Repaired: back to the source everywhere.
    assert_eq!(
        s.motive.by_external_id("E1")[0]["email"],
        "ann.lee@example.com"
    );
    assert_eq!(s.motive.by_external_id("E3")[0]["status"], "deactivated");
    assert_eq!(
        s.motive.by_external_id("E2").len(),
        1,
        "re-created at Motive"
    );
    assert_eq!(
        s.rocketchat.user_by_username("ann.lee").expect("rc")["name"],
        "Ann Lee"
    );
    assert!(
        s.rocketchat.user_by_username("bob.ray").is_some(),
        "re-created at Rocket.Chat"
    );
    assert_eq!(s.telematics.by_client_id("E3").len(), 1);
    assert_eq!(s.drivekit.driver("E1").expect("driver")["firstname"], "Ann");
    let t3_now = s.telematics.user(&t3).expect("user");
    assert_eq!(t3_now["Status"], "Inactive", "{t3_now}");

    // A second full pass finds nothing and writes nothing.
    clear_calls(&env);
    let (code, r) = env.json(&["reconcile", "--full"]).await;
    assert_eq!(code, 0, "{r}");
    for v in VENDORS {
        assert_eq!(r["vendors"][v]["drift"]["found"], 0, "{v}: {r}");
    }
    assert_eq!(writes(&env), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_state_relinks_everyone_without_writes() {
    let env = env().await;
    let mut people = people();
    env.write_people(&json!(people));
    sign_in_all(&env, &people);
    assert_eq!(env.reconcile().await.0, 0);
    people[2]["active"] = json!(false);
    env.write_people(&json!(people));
    assert_eq!(env.reconcile().await.0, 0);

    // The state is lost; meanwhile a new person joined.
    std::fs::remove_dir_all(env.path("state")).expect("remove state");
    people.push(person("E4", "Di", "Fox"));
    env.write_people(&json!(people));
    env.sandbox.drivekit.sign_in("E4");

    clear_calls(&env);
    let out = env.run(&["rebuild-state", "--json"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&text).expect("json");
    for v in ["motive", "telematics", "chat"] {
        assert_eq!(r["vendors"][v]["linked"], 3, "{v}: {r}");
        assert_eq!(r["vendors"][v]["not_found"], 1, "{v}: {r}");
    }
    assert_eq!(writes(&env), 0, "rebuild-state makes no write call");

    // The next pass creates only the newcomer and touches nobody else, except DriveKit,
    // whose status cannot be read back and is set explicitly for the inactive E3.
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    for v in ["motive", "telematics", "chat"] {
        assert_eq!(linked(&r, v), 1, "{v}: {r}");
        assert_eq!(counts(&r, v)[1..4], [0, 0, 0], "{v}: {r}");
    }
    assert_eq!(env.sandbox.motive.users().len(), 4, "no duplicate");
    assert_eq!(env.sandbox.telematics.users().len(), 4, "no duplicate");

    clear_calls(&env);
    let (_, r) = env.reconcile().await;
    assert_eq!(writes(&env), 0, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_says_what_and_why_for_every_kind_of_person() {
    let env = env().await;
    let mut people = people();
    people.push(person("E4", "Di", "Fox"));
    env.write_people(&json!(people));
    sign_in_all(&env, &people);
    assert_eq!(env.reconcile().await.0, 0);

    // E1 changed, E2 inactive, E3 removed, E4 unchanged, E5 new, E6 invalid, E7 bad pair.
    people[0]["email"] = json!("ann.new@example.com");
    people[1]["active"] = json!(false);
    people.remove(2);
    people.push(person("E5", "Ed", "Gu"));
    let mut bad = person("E6", "Fay", "Ho");
    bad["email"] = json!("not-an-email");
    people.push(bad);
    let mut pair = person("E7", "Gil", "Ito");
    pair["attributes"] = json!({ "motive.eld_mode": "exempt" });
    people.push(pair);
    env.write_people(&json!(people));

    clear_calls(&env);
    let explain = |id: &'static str| {
        let env = &env;
        async move { env.json(&["explain", id]).await.1 }
    };
    let e1 = explain("E1").await;
    assert_eq!(e1["source"]["status"], "valid");
    assert_eq!(e1["vendors"]["motive"]["operation"]["op"], "update");
    assert_eq!(
        e1["vendors"]["motive"]["operation"]["fields"],
        json!(["email"])
    );
    assert!(
        e1["vendors"]["motive"]["why"]
            .as_str()
            .expect("why")
            .contains("email")
    );
    assert_eq!(
        e1["vendors"]["drivekit"]["operation"],
        Value::Null,
        "DriveKit has no email"
    );

    let e2 = explain("E2").await;
    assert_eq!(e2["vendors"]["chat"]["wanted"], "inactive");
    assert_eq!(e2["vendors"]["chat"]["operation"]["op"], "deactivate");
    assert!(
        e2["vendors"]["chat"]["why"]
            .as_str()
            .expect("why")
            .contains("inactive in the source")
    );

    let e3 = explain("E3").await;
    assert_eq!(e3["source"]["status"], "absent");
    assert_eq!(e3["vendors"]["telematics"]["wanted"], "removed");
    assert_eq!(e3["vendors"]["telematics"]["operation"]["op"], "deactivate");

    let e4 = explain("E4").await;
    assert_eq!(e4["vendors"]["motive"]["operation"], Value::Null);
    assert!(
        e4["vendors"]["motive"]["why"]
            .as_str()
            .expect("why")
            .starts_with("unchanged")
    );
    assert!(e4["vendors"]["motive"]["stored"]["remote_id"].is_string());

    let e5 = explain("E5").await;
    assert_eq!(e5["vendors"]["motive"]["operation"]["op"], "create");
    assert_eq!(e5["vendors"]["motive"]["stored"], Value::Null);

    let e6 = explain("E6").await;
    assert_eq!(e6["source"]["status"], "invalid");
    assert_eq!(e6["vendors"]["motive"]["wanted"], "held");
    assert!(
        e6["vendors"]["motive"]["why"]
            .as_str()
            .expect("why")
            .contains("malformed email")
    );

    let e7 = explain("E7").await;
    assert_eq!(e7["vendors"]["motive"]["wanted"], "skipped");
    assert!(
        e7["vendors"]["motive"]["why"]
            .as_str()
            .expect("why")
            .contains("eld_mode")
    );
    assert_eq!(
        e7["vendors"]["chat"]["operation"]["op"], "create",
        "other vendors go ahead"
    );

    let nobody = explain("E99").await;
    assert_eq!(nobody["source"]["status"], "absent");
    assert_eq!(nobody["vendors"]["motive"]["operation"], Value::Null);

    let s = &env.sandbox;
    let calls = s.motive.control.calls().len()
        + s.drivekit.control.calls().len()
        + s.telematics.control.calls().len()
        + s.rocketchat.control.calls().len();
    assert_eq!(calls, 0, "explain calls no vendor");

    // The text form says the same.
    let out = env.run(&["explain", "E1"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("next pass: update [email]"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_records_every_write_and_filters() {
    let env = env().await;
    let mut people = people();
    env.write_people(&json!(people));
    sign_in_all(&env, &people);
    assert_eq!(env.reconcile().await.0, 0);
    people[0]["phone"] = json!("+15559999999");
    env.write_people(&json!(people));
    assert_eq!(env.reconcile().await.0, 0);

    let all = env.json(&["history"]).await.1;
    let all = all.as_array().expect("list");
    // Creates: 3 people at Motive, Telematics and Rocket.Chat; DriveKit links (adopts)
    // signed-in drivers with an identity update and an ENABLE.
    let creates = all.iter().filter(|e| e["op"] == "create").count();
    assert_eq!(creates, 9, "{all:?}");
    assert!(all.iter().all(|e| e["outcome"] == "ok"));
    let text = serde_json::to_string(all).expect("json");
    assert!(
        !text.contains("+15559999999"),
        "values are never kept, only field names"
    );

    let e1 = env.json(&["history", "--person", "E1"]).await.1;
    let e1 = e1.as_array().expect("list");
    assert!(e1.iter().all(|e| e["person"] == "E1"));
    assert!(
        e1.iter()
            .any(|e| e["op"] == "update" && e["fields"] == json!(["phone"]))
    );

    let m = env
        .json(&["history", "--vendor", "motive", "--person", "E1"])
        .await
        .1;
    let ops: Vec<&str> = m
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["op"].as_str().expect("op"))
        .collect();
    assert_eq!(ops, ["create", "update"]);

    let future = env.json(&["history", "--since", "2999-01-01"]).await.1;
    assert_eq!(future, json!([]));
    let recent = env.json(&["history", "--since", "1h"]).await.1;
    assert_eq!(recent.as_array().expect("list").len(), all.len());

    let out = env.run(&["history", "--since", "yesterday"]).await;
    assert_eq!(out.status.code(), Some(2), "a bad --since is a usage error");
}
