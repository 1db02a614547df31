//! The `scim` source against the sandbox's SCIM 2.0 fake, through the real binary to
//! the Motive fake.

use axum::http::Method;
use roster_sandbox::{Credentials, Fault};
use serde_json::{Value, json};

use crate::common::{DRIVERS_ONLY, Env, MOTIVE_KEY, counts, motive_vendor_with};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn token() -> String {
    Credentials::default().scim_token
}

fn user(n: usize, active: bool) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": format!("E{n:04}"),
        "userName": format!("user{n:04}"),
        "name": {"givenName": format!("Given{n}"), "familyName": format!("Family{n}")},
        "emails": [{"value": format!("home{n}@home.example"), "type": "home"},
                   {"value": format!("user{n:04}@example.com"), "type": "work", "primary": true}],
        "phoneNumbers": [{"value": format!("+1555000{n:04}"), "type": "work"}],
        "active": active,
        "groups": [{"value": "g1", "display": "drivers"}],
        ENTERPRISE: {"employeeNumber": format!("{n}"), "department": "Fleet"}
    })
}

async fn env(extra: &str, scope: bool) -> Env {
    let scope = if scope { DRIVERS_ONLY } else { "" };
    Env::with_source_secret(
        &format!(
            "type = \"scim\"\nbase_url = \"{{url:scim}}/v2\"\ntoken_file = \"{{dir}}/scim.token\"\n\
             retries = 1\ntimeout_secs = 5\n{extra}"
        ),
        &motive_vendor_with("motive", MOTIVE_KEY, scope),
        "scim.token",
        &token(),
    )
    .await
}

fn list_calls(env: &Env) -> Vec<String> {
    env.sandbox
        .scim
        .control
        .calls()
        .into_iter()
        .filter(|c| c.method == "GET" && c.path.ends_with("/Users"))
        .map(|c| c.query)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_add_change_disable_remove() {
    let env = env("count = 2\nid_field = \"externalId\"", true).await;
    let (scim, motive) = (&env.sandbox.scim, &env.sandbox.motive);
    let ids: Vec<String> = (1..=3).map(|n| scim.add(user(n, true))).collect();
    let mut outsider = user(9, true);
    outsider["groups"] = json!([{"value": "g2", "display": "office"}]);
    scim.add(outsider);

    let out = env.run(&["check"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("4 users"), "{text}");

    let tok = token();
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["source"]["records"], 4);
    assert_eq!(counts(&r, "motive"), [3, 0, 0, 0, 0, 0, 0], "{r}");
    let u1 = motive.by_external_id("E0001");
    assert_eq!(u1.len(), 1, "externalId is the person id");
    assert_eq!(u1[0]["email"], "user0001@example.com", "the primary email");
    assert_eq!(u1[0]["username"], "user0001");
    assert_eq!(u1[0]["first_name"], "Given1");
    assert_eq!(u1[0]["phone"], "+15550000001");
    assert!(motive.by_external_id("E0009").is_empty(), "out of scope");

    // Change one, disable one, add one.
    scim.update(
        &ids[0],
        json!({"name": {"givenName": "Renamed", "familyName": "Family1"}}),
    );
    scim.update(&ids[1], json!({"active": false}));
    scim.add(user(4, true));
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [1, 1, 1, 0, 1, 0, 0], "{r}");
    assert_eq!(motive.by_external_id("E0001")[0]["first_name"], "Renamed");
    assert_eq!(motive.by_external_id("E0002")[0]["status"], "deactivated");
    assert_eq!(motive.by_external_id("E0004")[0]["status"], "active");

    // Removed from the provider: deactivated.
    scim.remove(&ids[2]);
    motive.control.clear_calls();
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [0, 0, 1, 0, 3, 0, 0], "{r}");
    assert_eq!(motive.by_external_id("E0003")[0]["status"], "deactivated");
    assert_eq!(motive.control.writes(), 1);

    // Nothing changed: no write.
    motive.control.clear_calls();
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(motive.control.writes(), 0, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_follow_the_servers_cap_and_the_filter() {
    // The client asks for 100 a page; the server gives at most 50.
    let env = env("count = 100\nfilter = \"active eq true\"", false).await;
    let scim = &env.sandbox.scim;
    for n in 1..=130 {
        scim.add(user(n, n % 13 != 0)); // 10 inactive people
    }
    let (code, r) = env.json_without(&["plan"], &[&token()]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["source"]["records"], 120, "{r}");
    assert_eq!(r["source"]["invalid"], 0, "{r}");
    assert_eq!(counts(&r, "motive")[0], 120);
    let calls = list_calls(&env);
    assert_eq!(calls.len(), 3, "{calls:?}");
    for (q, start) in calls
        .iter()
        .zip(["startIndex=1&", "startIndex=51&", "startIndex=101&"])
    {
        assert!(q.contains(start) && q.contains("count=100"), "{q}");
        assert!(
            q.contains("filter=active+eq+true") || q.contains("filter=active%20eq%20true"),
            "{q}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_inconsistent_read_refuses_the_pass() {
    let env = env("count = 20", false).await;
    let (scim, motive) = (&env.sandbox.scim, &env.sandbox.motive);
    for n in 1..=60 {
        scim.add(user(n, true));
    }
    let tok = token();
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[0], 60);

    // Page 2 fails (every retry too): refused, nothing pushed, nobody deactivated.
    scim.after_list_requests(1, |s| {
        s.control.inject(
            Fault::new(
                Some(Method::GET),
                "/Users",
                503,
                r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"503","detail":"maintenance"}"#,
            )
            .times(5),
        );
    });
    motive.control.clear_calls();
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 3, "{r}");
    let refused = r["refused"].as_str().unwrap_or_default();
    assert!(
        refused.contains("503") && refused.contains("maintenance"),
        "{refused}"
    );
    assert_eq!(motive.control.writes(), 0);
    scim.control.clear_faults();

    // totalResults says more than the pages hold: an empty page before the end.
    scim.set_total_skew(5);
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 3, "{r}");
    assert!(
        r["refused"]
            .as_str()
            .is_some_and(|m| m.contains("incomplete")),
        "{r}"
    );
    scim.set_total_skew(0);

    // Someone is added between page 1 and page 2: totalResults moves, the read is refused.
    scim.after_list_requests(1, |s| {
        s.add(user(99, true));
    });
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 3, "{r}");
    assert!(
        r["refused"]
            .as_str()
            .is_some_and(|m| m.contains("totalResults changed")),
        "{r}"
    );
    assert_eq!(motive.control.writes(), 0);

    // A rejected token: refused with the provider's RFC 7644 detail.
    std::fs::write(env.path("scim.token"), "revoked-token").expect("token");
    let (code, r) = env
        .json_without(&["reconcile"], &[&tok, "revoked-token"])
        .await;
    assert_eq!(code, 3, "{r}");
    let refused = r["refused"].as_str().unwrap_or_default();
    assert!(
        refused.contains("401") && refused.contains("Authorization failure"),
        "{refused}"
    );
    assert_eq!(motive.control.writes(), 0);
    assert!(motive.users().iter().all(|u| u["status"] == "active"));
}

/// A SCIM server that throttles its pages for a few seconds is waited for (429s do not
/// spend `retries`), and the pass then goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_server_is_waited_for() {
    let env = env("count = 3\nid_field = \"externalId\"", false).await;
    let (scim, motive) = (&env.sandbox.scim, &env.sandbox.motive);
    for n in 1..=10 {
        scim.add(user(n, true));
    }
    let storm = std::time::Duration::from_secs(3);
    scim.control
        .storm(storm, roster_sandbox::StormReply::RetryAfter(1));
    let started = std::time::Instant::now();
    let (code, r) = env.json_without(&["reconcile"], &[&token()]).await;
    let took = started.elapsed();
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[0], 10, "{r}");
    assert!(scim.control.count_status(429) > 0, "the server did refuse");
    assert!(
        took <= storm + std::time::Duration::from_secs(4),
        "the read took {took:?}"
    );
    assert_eq!(motive.users().len(), 10);
}
