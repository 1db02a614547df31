//! Rocket.Chat end to end: roster's library against the sandbox's stateful fake (which
//! checks every request against Rocket.Chat's OpenAPI description and applies its rate
//! limiter). No network beyond 127.0.0.1.
//!
//! Over 500 lines: one connector's whole suite against its fake (each test stands
//! alone; splitting it would only scatter the connector-specific helpers).

use std::ops::Deref;
use std::time::Duration;

use roster::pass::Context;
use roster::report::{Report, VendorReport};
use roster_sandbox::{Credentials, Fault};
use serde_json::{Value, json};

use crate::common::{Env, Limits};

const VENDOR: &str = "chat";

struct Harness {
    env: Env,
    token: String,
    extra: String,
    timeout_secs: u64,
}

impl Deref for Harness {
    type Target = Env;

    fn deref(&self) -> &Env {
        &self.env
    }
}

impl Harness {
    async fn new() -> Self {
        Self::with("").await
    }

    /// `extra` is appended to the `[vendors.chat]` table.
    async fn with(extra: &str) -> Self {
        let mut env = Env::in_process_temporary().await;
        env.limits = Limits {
            max_deactivations: 1000,
            max_elapsed_secs: 20,
            pass_budget_secs: 120,
        };
        // A short window keeps the tests fast; the pacing test sets its own.
        env.sandbox
            .rocketchat
            .set_rate_limit(1000, Duration::from_secs(60));
        Self {
            env,
            token: Credentials::default().rocketchat_auth_token,
            extra: extra.to_string(),
            timeout_secs: 5,
        }
    }

    fn rc(&self) -> &roster_sandbox::rocketchat::RocketChat {
        &self.sandbox.rocketchat
    }

    fn config(&self) -> String {
        let table = format!(
            r#"[vendors.{VENDOR}]
type = "rocketchat"
base_url = "{url}"
user_id = "{user}"
auth_token = "{token}"
{extra}"#,
            url = self.sandbox.url("rocketchat"),
            user = Credentials::default().rocketchat_user_id,
            token = self.token,
            extra = self.extra,
        );
        self.config_around(&table, self.timeout_secs)
    }

    fn people(&self, people: &[Value]) {
        self.write_people_pretty(people);
    }

    fn context(&self) -> Context {
        self.context_from(&self.config())
    }

    async fn pass(&self) -> Report {
        self.pass_in(&self.context()).await
    }
}

fn person(id: &str, first: &str, last: &str, username: &str) -> Value {
    json!({
        "id": id,
        "first_name": first,
        "last_name": last,
        "username": username,
        "email": format!("{username}@example.com"),
    })
}

fn chat(report: &Report) -> &VendorReport {
    report.vendors.get(VENDOR).expect("chat in the report")
}

fn id_of(user: &Value) -> String {
    user["_id"].as_str().expect("_id").to_string()
}

#[tokio::test]
async fn lifecycle_create_noop_update_deactivate_reactivate() {
    let h = Harness::new().await;
    let ann = person("E1", "Ann", "Lee", "ann.lee");
    let bob = person("E2", "Bob", "Ray", "bob.ray");
    h.people(&[ann.clone(), bob.clone()]);

    let r = h.pass().await;
    assert_eq!(chat(&r).created, 2, "{r:?}");
    assert_eq!(r.exit_code(), 0);
    let u = h.rc().user_by_username("ann.lee").expect("ann created");
    assert_eq!(u["name"], "Ann Lee");
    assert_eq!(u["emails"][0]["address"], "ann.lee@example.com");
    assert_eq!(u["active"], true);
    let ann_id = id_of(&u);
    let bob_id = id_of(&h.rc().user_by_username("bob.ray").expect("bob created"));

    // The password: strong, and nowhere roster keeps things.
    let password = h.rc().password("ann.lee").expect("password");
    assert!(password.chars().count() >= 32, "password too short");
    let create = &h.rc().bodies("users.create")[0];
    assert_eq!(create["joinDefaultChannels"], true);
    assert_eq!(create["sendWelcomeEmail"], false);
    assert!(create.get("setRandomPassword").is_none());
    let records = format!("{:?}", h.store().load(VENDOR).expect("store"));
    assert!(
        !records.contains(&password),
        "the password reached the store"
    );
    assert!(!records.contains(&h.token), "the token reached the store");
    let report = serde_json::to_string(&r).expect("report json");
    assert!(!report.contains(&password) && !report.contains(&h.token));

    // No change in the source: no write call at all.
    h.rc().control.clear_calls();
    let r = h.pass().await;
    assert_eq!(chat(&r).unchanged, 2, "{r:?}");
    assert_eq!(h.rc().control.writes(), 0, "{:?}", h.rc().control.calls());

    // One field changes: one users.update carrying only it.
    let mut ann2 = ann.clone();
    ann2["last_name"] = json!("Lee-Smith");
    h.people(&[ann2.clone(), bob.clone()]);
    h.rc().control.clear_calls();
    let r = h.pass().await;
    assert_eq!(chat(&r).updated, 1, "{r:?}");
    assert_eq!(h.rc().control.writes(), 1);
    assert_eq!(h.rc().user(&ann_id).expect("ann")["name"], "Ann Lee-Smith");
    let update = h.rc().bodies("users.update").pop().expect("update body");
    assert_eq!(
        update,
        json!({ "userId": ann_id, "data": { "name": "Ann Lee-Smith" } })
    );

    // Removed from the source: deactivated, not deleted.
    h.people(&[ann2.clone()]);
    let r = h.pass().await;
    assert_eq!(chat(&r).deactivated, 1, "{r:?}");
    let b = h.rc().user(&bob_id).expect("bob still exists");
    assert_eq!(b["active"], false);
    let set = h.rc().bodies("users.setActiveStatus").pop().expect("body");
    assert_eq!(
        set,
        json!({ "userId": bob_id, "activeStatus": false, "confirmRelinquish": true })
    );

    // Back again: reactivated, same account, fields brought up to date.
    let mut bob2 = bob.clone();
    bob2["first_name"] = json!("Robert");
    h.people(&[ann2, bob2]);
    let r = h.pass().await;
    assert_eq!(chat(&r).reactivated, 1, "{r:?}");
    assert_eq!(chat(&r).created, 0);
    let b = h.rc().user(&bob_id).expect("same account");
    assert_eq!(b["active"], true);
    assert_eq!(b["name"], "Robert Ray");
    assert_eq!(h.rc().users().len(), 2, "no second account");
}

#[tokio::test]
async fn an_existing_account_with_the_same_username_and_email_is_adopted() {
    let h = Harness::new().await;
    // Rocket.Chat compares emails without regard to case; an account whose email is
    // another one entirely is not hers (`identity::an_account_found_by_username_…`).
    let existing = h
        .rc()
        .insert_user("Old Name", "ann.lee", "Ann.Lee@Example.com", false);
    h.people(&[person("E1", "Ann", "Lee", "ann.lee")]);
    let r = h.pass().await;
    let c = chat(&r);
    assert_eq!((c.adopted, c.created, c.failed), (1, 0, 0), "{r:?}");
    assert_eq!(h.rc().users().len(), 1, "no duplicate");
    let u = h.rc().user(&existing).expect("adopted account");
    assert_eq!(u["active"], true, "reactivated");
    assert_eq!(u["name"], "Ann Lee");
    assert_eq!(u["emails"][0]["address"], "ann.lee@example.com");
    // Roles roster does not manage are left alone.
    assert_eq!(u["roles"], json!(["user"]));
    h.rc().control.clear_calls();
    h.pass().await;
    assert_eq!(h.rc().control.writes(), 0);
}

#[tokio::test]
async fn a_create_that_collides_is_adopted_not_failed() {
    let h = Harness::new().await;
    let existing = h
        .rc()
        .insert_user("Ann Lee", "ann.lee", "ann.lee@example.com", true);
    // The lookup misses (as after a create whose reply was lost), so roster creates;
    // Rocket.Chat answers error-field-unavailable and roster adopts.
    h.rc().control.inject(Fault::new(
        Some(axum::http::Method::GET),
        "users.info",
        400,
        r#"{"success":false,"error":"User not found."}"#,
    ));
    h.people(&[person("E1", "Ann", "Lee", "ann.lee")]);
    let r = h.pass().await;
    let c = chat(&r);
    assert_eq!((c.adopted, c.created, c.failed), (1, 0, 0), "{r:?}");
    assert_eq!(h.rc().users().len(), 1);
    assert_eq!(
        h.rc().control.count_status(400),
        2,
        "the missed lookup and the collision"
    );
    let stored = h.store().load(VENDOR).expect("store");
    let record = stored.values().next().expect("linked");
    assert_eq!(record.remote_id.as_deref(), Some(existing.as_str()));
}

#[tokio::test]
async fn lookup_by_email_adopts_an_account_with_another_username() {
    let h = Harness::with("lookup_by_email = true").await;
    let existing = h
        .rc()
        .insert_user("Ann Lee", "alee", "ann.lee@example.com", true);
    h.people(&[person("E1", "Ann", "Lee", "ann.lee")]);
    let r = h.pass().await;
    assert_eq!(chat(&r).adopted, 1, "{r:?}");
    assert_eq!(
        h.rc().user(&existing).expect("adopted")["username"],
        "ann.lee"
    );
    assert_eq!(h.rc().users().len(), 1);
}

#[tokio::test]
async fn wrong_token_fails_the_operations_with_exit_1() {
    let mut h = Harness::new().await;
    h.token = "not-the-token".into();
    h.people(&[
        person("E1", "Ann", "Lee", "ann.lee"),
        person("E2", "Bob", "Ray", "bob.ray"),
    ]);
    let r = h.pass().await;
    let c = chat(&r);
    assert_eq!(c.failed, 2, "{r:?}");
    assert_eq!(c.created, 0);
    assert_eq!(r.exit_code(), 1);
    assert!(
        c.errors
            .iter()
            .any(|e| e.message.contains("credentials rejected (401)")),
        "{c:?}"
    );
    let text = serde_json::to_string(&r).expect("json");
    assert!(
        !text.contains("not-the-token"),
        "the token leaked into the report"
    );
    assert!(h.rc().users().is_empty());
    // `roster check`'s call fails the same way, and works with the right token.
    let ctx = h.context();
    assert!(matches!(
        ctx.vendors[0]
            .1
            .check(&roster::budget::Budget::unlimited())
            .await,
        Err(roster::vendor::VendorError::Auth { status: 401, .. })
    ));
    h.token = Credentials::default().rocketchat_auth_token;
    h.context().vendors[0]
        .1
        .check(&roster::budget::Budget::unlimited())
        .await
        .expect("check passes");
}

#[tokio::test]
async fn the_legacy_401_body_is_an_auth_failure_too() {
    let h = Harness::new().await;
    h.rc().control.inject(Fault::new(
        None,
        "users.info",
        401,
        r#"{"status":"error","message":"You must be logged in to do this."}"#,
    ));
    h.people(&[person("E1", "Ann", "Lee", "ann.lee")]);
    let r = h.pass().await;
    assert_eq!(chat(&r).failed, 1, "{r:?}");
    assert!(
        chat(&r).errors[0].message.contains("You must be logged in"),
        "{r:?}"
    );
}

#[tokio::test]
async fn rejected_and_unmappable_people_are_reported_per_person() {
    let h = Harness::new().await;
    h.rc().control.inject(Fault::new(
        Some(axum::http::Method::POST),
        "users.create",
        400,
        r#"{"success":false,"error":"must have required property 'password' [invalid-params]","errorType":"invalid-params"}"#,
    ));
    let mut no_username = person("E3", "Cy", "Doe", "cy");
    no_username
        .as_object_mut()
        .expect("object")
        .remove("username");
    let mut bad_username = person("E2", "Bob", "Ray", "bob ray");
    bad_username["email"] = json!("bob.ray@example.com");
    h.people(&[
        person("E1", "Ann", "Lee", "ann.lee"),
        bad_username,
        no_username,
    ]);
    let r = h.pass().await;
    let c = chat(&r);
    assert_eq!((c.created, c.failed, c.skipped), (0, 1, 2), "{r:?}");
    assert_eq!(r.exit_code(), 1);
    let msg = |id: &str| {
        c.errors
            .iter()
            .find(|e| e.person == id)
            .map(|e| e.message.clone())
            .expect("an error for the person")
    };
    assert!(msg("E1").contains("invalid-params"), "{}", msg("E1"));
    assert!(msg("E2").contains("`bob ray`"), "{}", msg("E2"));
    assert!(msg("E3").contains("username"), "{}", msg("E3"));
    // The refused create is tried again next pass.
    let r = h.pass().await;
    assert_eq!(chat(&r).created, 1, "{r:?}");
}

#[tokio::test]
async fn a_429_then_success_is_retried() {
    let h = Harness::new().await;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis()
        + 300;
    h.rc().control.inject(
        Fault::new(
            Some(axum::http::Method::POST),
            "users.create",
            429,
            r#"{"success":false,"error":"Error, too many requests. Please slow down. You must wait 1 seconds before trying this endpoint again. [error-too-many-requests]"}"#,
        )
        .header("X-RateLimit-Limit", "10")
        .header("X-RateLimit-Remaining", "0")
        .header("X-RateLimit-Reset", &reset.to_string()),
    );
    h.people(&[person("E1", "Ann", "Lee", "ann.lee")]);
    let r = h.pass().await;
    assert_eq!((chat(&r).created, chat(&r).failed), (1, 0), "{r:?}");
    assert_eq!(h.rc().control.count_status(429), 1);
    assert_eq!(h.rc().users().len(), 1);
}

#[tokio::test]
async fn a_500_then_success_is_retried_without_a_duplicate() {
    let h = Harness::new().await;
    h.rc().control.inject(
        Fault::new(
            Some(axum::http::Method::POST),
            "users.create",
            500,
            r#"{"success":false,"error":"Internal server error"}"#,
        )
        .times(2),
    );
    h.people(&[person("E1", "Ann", "Lee", "ann.lee")]);
    let r = h.pass().await;
    assert_eq!((chat(&r).created, chat(&r).failed), (1, 0), "{r:?}");
    assert_eq!(h.rc().control.count_status(500), 2);
    assert_eq!(h.rc().users().len(), 1);
}

#[tokio::test]
async fn a_create_whose_reply_is_lost_is_adopted_on_retry() {
    let mut h = Harness::new().await;
    h.timeout_secs = 1;
    // The account is made, then the reply times out: the retried create looks up first.
    h.rc().control.delay_after_commit(
        axum::http::Method::POST,
        "users.create",
        Duration::from_secs(3),
    );
    h.people(&[person("E1", "Ann", "Lee", "ann.lee")]);
    let r = h.pass().await;
    h.rc().control.clear_faults();
    let c = chat(&r);
    assert_eq!(c.failed, 0, "{r:?}");
    assert_eq!(c.created + c.adopted, 1, "{r:?}");
    assert_eq!(h.rc().users().len(), 1, "no duplicate");
}

#[tokio::test]
async fn fifty_people_are_paced_through_the_rate_limiter() {
    let h = Harness::new().await;
    // Rocket.Chat's default of 10 calls per route, on a 2 s window to keep the test short.
    h.rc().set_rate_limit(10, Duration::from_secs(2));
    let people: Vec<Value> = (0..50)
        .map(|i| {
            person(
                &format!("E{i:03}"),
                "Person",
                &format!("N{i}"),
                &format!("user{i:03}"),
            )
        })
        .collect();
    h.people(&people);
    let r = h.pass().await;
    let c = chat(&r);
    assert_eq!((c.created, c.failed), (50, 0), "{r:?}");
    assert_eq!(h.rc().users().len(), 50);
    // The pacer waits for each window to reset instead of running into the limit. A 429
    // can only come from a window boundary the client and the fake see a few ms apart, at
    // most once per route (users.info, users.create) in a pass like this.
    let limited = h.rc().control.count_status(429);
    assert!(limited <= 2, "{limited} calls were rate limited");
    // A second pass reads nothing and writes nothing.
    h.rc().control.clear_calls();
    let r = h.pass().await;
    assert_eq!(chat(&r).unchanged, 50);
    assert!(h.rc().control.calls().is_empty());
}

#[tokio::test]
async fn on_remove_delete_deletes_the_account() {
    let h = Harness::with("on_remove = \"delete\"").await;
    h.people(&[
        person("E1", "Ann", "Lee", "ann.lee"),
        person("E2", "Bob", "Ray", "bob.ray"),
    ]);
    assert_eq!(chat(&h.pass().await).created, 2);
    let bob_id = id_of(&h.rc().user_by_username("bob.ray").expect("bob"));
    h.people(&[person("E1", "Ann", "Lee", "ann.lee")]);
    let r = h.pass().await;
    assert_eq!(chat(&r).deleted, 1, "{r:?}");
    assert!(h.rc().user(&bob_id).is_none());
    assert_eq!(
        h.rc().bodies("users.delete").pop().expect("delete body"),
        json!({ "userId": bob_id, "confirmRelinquish": true })
    );
    // Back again: a new account (the old one is gone for good).
    h.people(&[
        person("E1", "Ann", "Lee", "ann.lee"),
        person("E2", "Bob", "Ray", "bob.ray"),
    ]);
    assert_eq!(chat(&h.pass().await).created, 1);
}

#[tokio::test]
async fn roles_and_custom_fields_are_managed() {
    let h = Harness::with(
        "email_verified = true\n[vendors.chat.defaults]\nroles = \"user\"\n\"customFields.team\" = \"ops\"",
    )
    .await;
    let mut ann = person("E1", "Ann", "Lee", "ann.lee");
    ann["attributes"] = json!({ "chat.roles": "user;bot", "chat.customFields.site": "Lyon" });
    h.people(&[ann.clone()]);
    assert_eq!(chat(&h.pass().await).created, 1);
    let u = h.rc().user_by_username("ann.lee").expect("created");
    assert_eq!(u["roles"], json!(["bot", "user"]));
    assert_eq!(u["customFields"], json!({ "team": "ops", "site": "Lyon" }));
    assert_eq!(u["emails"][0]["verified"], true);

    // One custom field removed: all managed ones are sent, the removed one emptied.
    ann["attributes"] = json!({ "chat.roles": "user;bot" });
    ann["email"] = json!("ann@example.org");
    h.people(&[ann]);
    let r = h.pass().await;
    assert_eq!(chat(&r).updated, 1, "{r:?}");
    let update = h.rc().bodies("users.update").pop().expect("update");
    assert_eq!(
        update["data"],
        json!({ "email": "ann@example.org", "verified": true,
                "customFields": { "team": "ops", "site": "" } })
    );
    h.rc().control.clear_calls();
    h.pass().await;
    assert_eq!(h.rc().control.writes(), 0);
}

#[tokio::test]
async fn password_mode_set_random_password_asks_the_server() {
    let h = Harness::with(
        "password_mode = \"set_random_password\"\nsend_welcome_email = true\njoin_default_channels = false",
    )
    .await;
    h.people(&[person("E1", "Ann", "Lee", "ann.lee")]);
    assert_eq!(chat(&h.pass().await).created, 1);
    let body = &h.rc().bodies("users.create")[0];
    assert_eq!(body["setRandomPassword"], true);
    assert_eq!(body["sendWelcomeEmail"], true);
    assert_eq!(body["joinDefaultChannels"], false);
}

#[tokio::test]
async fn an_account_deleted_behind_rosters_back_is_created_again() {
    let h = Harness::new().await;
    h.people(&[person("E1", "Ann", "Lee", "ann.lee")]);
    h.pass().await;
    let id = id_of(&h.rc().user_by_username("ann.lee").expect("created"));
    h.rc().remove(&id);
    h.people(&[person("E1", "Ann", "Lee-Smith", "ann.lee")]);
    let r = h.pass().await;
    let c = chat(&r);
    assert_eq!(c.failed, 0, "{r:?}");
    let u = h.rc().user_by_username("ann.lee").expect("made again");
    assert_ne!(id_of(&u), id);
    assert_eq!(u["name"], "Ann Lee-Smith");
}
