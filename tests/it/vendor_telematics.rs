//! The Telematics SDK / Damoov connector against the sandbox's stateful fake, through
//! the library: config → `Context` → `run_once` with a real store.
//!
//! Over 500 lines: one connector's whole suite against its fake (each test stands
//! alone; splitting it would only scatter the connector-specific helpers).

use std::path::Path;
use std::time::Duration;

use axum::http::Method;
use roster::model::{RecordState, VendorRecord};
use roster::pass::Context;
use roster::report::Report;
use roster::settings::load_str;
use roster_sandbox::{Credentials, Fault};
use serde_json::{Value, json};

use crate::common::Env;

const V: &str = "telematics";

/// The Telematics side of the shared harness.
/// The shared harness, in process, with this connector's helpers.
struct Tm(Env);

impl std::ops::Deref for Tm {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.0
    }
}

impl Tm {
    async fn new() -> Self {
        Self(Env::in_process().await)
    }

    /// The config text with the sandbox's credentials, plus `extra` keys in the vendor
    /// table and `retry` overrides.
    fn config(&self, extra: &str, timeout_secs: u64) -> String {
        let c = Credentials::default();
        let table = format!(
            "[vendors.{V}]\ntype = \"telematics\"\nbase_url = \"{url}\"\n\
             email = \"{email}\"\npassword = \"{password}\"\ninstance_id = \"{id}\"\n\
             instance_key = \"{key}\"\n{extra}",
            url = self.sandbox.url(V),
            email = c.telematics_email,
            password = c.telematics_password,
            id = c.telematics_instance_id,
            key = c.telematics_instance_key,
        );
        self.config_around(&table, timeout_secs)
    }

    fn context_with(&self, extra: &str, timeout_secs: u64) -> Context {
        self.context_from(&self.config(extra, timeout_secs))
    }

    fn context(&self, extra: &str) -> Context {
        self.context_with(extra, 5)
    }

    async fn pass(&self, ctx: &Context) -> Report {
        let c = Credentials::default();
        self.pass_without(ctx, &[&c.telematics_password, &c.telematics_instance_key])
            .await
    }

    fn record(&self, id: &str) -> Option<VendorRecord> {
        self.record_in(V, id)
    }

    fn users(&self, client_id: &str) -> Vec<Value> {
        self.sandbox.telematics.by_client_id(client_id)
    }

    fn count_path(&self, suffix: &str) -> usize {
        self.sandbox
            .telematics
            .control
            .calls()
            .iter()
            .filter(|c| c.path.ends_with(suffix))
            .count()
    }

    fn logins(&self) -> usize {
        self.count_path("/v1/Auth/Login")
    }
}

fn person(id: &str, first: &str, last: &str, email: &str) -> Value {
    json!({ "id": id, "first_name": first, "last_name": last, "email": email })
}

fn profile<'a>(user: &'a Value, field: &str) -> &'a Value {
    &user["UserProfile"][field]
}

fn flags(user: &Value) -> &Value {
    &user["UserFields"][0]
}

#[tokio::test]
async fn lifecycle_create_noop_update_deactivate_reactivate() {
    let env = Tm::new().await;
    let ctx = env.context("");
    let mut people = vec![
        person("E1", "Ann", "Lee", "ann@x.io"),
        person("E2", "Bob", "Ray", "bob@x.io"),
        person("E3", "Cy", "Doe", "cy@x.io"),
    ];
    people[0]["phone"] = json!("+1 555 0100");
    env.write_people(&people);

    let r = env.pass(&ctx).await;
    let v = &r.vendors[V];
    assert_eq!((v.created, v.failed), (3, 0), "{v:?}");
    assert_eq!(r.exit_code(), 0);
    let e1 = &env.users("E1")[0];
    assert_eq!(profile(e1, "FirstName"), "Ann");
    assert_eq!(profile(e1, "Phone"), "+1 555 0100");
    assert_eq!(e1["Status"], "Active");
    assert_eq!(env.logins(), 1);
    let e3_token = env.users("E3")[0]["DeviceToken"]
        .as_str()
        .expect("token")
        .to_string();
    assert_eq!(
        env.record("E3").and_then(|r| r.remote_id),
        Some(e3_token.clone())
    );

    // A pass with no change makes no write call.
    env.sandbox.telematics.control.clear_calls();
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].unchanged, 3);
    assert_eq!(env.sandbox.telematics.control.writes(), 0);
    assert_eq!(env.logins(), 0, "the token is reused across passes");

    // One changed field is one update, of that field only.
    people[1]["email"] = json!("bob@y.io");
    env.write_people(&people);
    env.sandbox.telematics.control.clear_calls();
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].updated, 1);
    assert_eq!(env.sandbox.telematics.control.writes(), 1);
    assert_eq!(profile(&env.users("E2")[0], "Email"), "bob@y.io");

    // Removed: deactivated (both levers), never deleted; other flags and ClientId kept.
    env.sandbox
        .telematics
        .set_flag(&e3_token, "EnableLogging", json!(true));
    env.write_people(&people[..2]);
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].deactivated, 1, "{:?}", r.vendors[V]);
    assert_eq!(
        env.sandbox.telematics.written_status(&e3_token),
        Some("Deactivated")
    );
    let e3 = env
        .sandbox
        .telematics
        .user(&e3_token)
        .expect("still exists");
    assert_eq!(e3["Status"], "Inactive");
    assert_eq!(flags(&e3)["Enabled"], false);
    assert_eq!(flags(&e3)["ClientId"], "E3");
    assert_eq!(flags(&e3)["EnableLogging"], true);
    assert_eq!(flags(&e3)["EnableTracking"], true);
    assert_eq!(
        env.record("E3").map(|r| r.state),
        Some(RecordState::Deactivated)
    );

    // Back again: the same account, active, fields brought up to date.
    people[2]["last_name"] = json!("Dee");
    env.write_people(&people);
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].reactivated, 1, "{:?}", r.vendors[V]);
    let all = env.users("E3");
    assert_eq!(all.len(), 1, "no second account");
    assert_eq!(all[0]["DeviceToken"], e3_token.as_str());
    assert_eq!(all[0]["Status"], "Active");
    assert_eq!(flags(&all[0])["Enabled"], true);
    assert_eq!(flags(&all[0])["EnableLogging"], true);
    assert_eq!(profile(&all[0], "LastName"), "Dee");
    assert_eq!(env.sandbox.telematics.users().len(), 3);
    assert_eq!(env.logins(), 0, "no login after the first pass's");
}

#[tokio::test]
async fn inactive_in_source_deactivates_and_removed_field_is_cleared() {
    let env = Tm::new().await;
    let ctx = env.context("");
    let mut people = vec![
        person("E1", "Ann", "Lee", "ann@x.io"),
        person("E2", "Bob", "Ray", "b@x.io"),
    ];
    people[0]["phone"] = json!("123");
    env.write_people(&people);
    env.pass(&ctx).await;
    people[0].as_object_mut().expect("object").remove("phone");
    people[1]["active"] = json!(false);
    env.write_people(&people);
    let r = env.pass(&ctx).await;
    assert_eq!((r.vendors[V].updated, r.vendors[V].deactivated), (1, 1));
    assert_eq!(profile(&env.users("E1")[0], "Phone"), &Value::Null);
    assert_eq!(env.users("E2")[0]["Status"], "Inactive");
}

#[tokio::test]
async fn crash_after_create_adopts_instead_of_duplicating() {
    let env = Tm::new().await;
    let ctx = env.context("");
    env.write_people(&[
        person("E1", "Ann", "Lee", "ann@x.io"),
        person("E2", "Bob", "Ray", "b@x.io"),
    ]);
    // Damoov made the accounts, but roster died before recording them: only intents.
    let t1 = env
        .sandbox
        .telematics
        .add_user("E1", "Ann", "Lee", "ann@x.io");
    let t2 = env
        .sandbox
        .telematics
        .add_user("E2", "Robert", "Ray", "b@x.io");
    env.sandbox.telematics.set_status(&t2, "Deactivated");
    for id in ["E1", "E2"] {
        env.put_intent(V, id).await;
    }

    let r = env.pass(&ctx).await;
    let v = &r.vendors[V];
    assert_eq!((v.adopted, v.created, v.failed), (2, 0, 0), "{v:?}");
    assert_eq!(env.count_path("/v1/Registration/create"), 0);
    assert_eq!(env.users("E1").len(), 1);
    assert_eq!(env.record("E1").and_then(|r| r.remote_id), Some(t1));
    // The deactivated one (visible only with ShowInactiveUsers) is adopted and revived.
    let e2 = env.users("E2");
    assert_eq!(e2.len(), 1);
    assert_eq!(e2[0]["Status"], "Active");
    assert_eq!(profile(&e2[0], "FirstName"), "Bob");
    assert_eq!(
        env.record("E2").map(|r| (r.remote_id, r.state)),
        Some((Some(t2), RecordState::Active))
    );
}

#[tokio::test]
async fn create_answer_lost_in_transit_is_not_created_twice() {
    let env = Tm::new().await;
    let ctx = env.context_with("concurrency = 1", 1);
    env.write_people(&[person("E1", "Ann", "Lee", "ann@x.io")]);
    // Damoov makes the user but the reply comes too late: roster times out and retries.
    env.sandbox.telematics.control.delay_after_commit(
        Method::POST,
        "/v1/Registration/create",
        Duration::from_millis(1500),
    );
    let r = env.pass(&ctx).await;
    let v = &r.vendors[V];
    assert_eq!(v.failed, 0, "{v:?}");
    assert_eq!(v.created + v.adopted, 1, "{v:?}");
    assert_eq!(env.users("E1").len(), 1, "exactly one account");
    assert_eq!(env.count_path("/v1/Registration/create"), 1);
}

#[tokio::test]
async fn wrong_admin_password_fails_the_pass_with_one_login() {
    let env = Tm::new().await;
    let c = Credentials::default();
    let text = env.config("", 5).replace(
        &format!("password = \"{}\"", c.telematics_password),
        "password = \"wrong\"",
    );
    let ctx = Context::build(
        load_str(&text, env.dir.path(), Vec::new()).expect("config"),
        std::sync::Arc::new(roster::pass::NoHooks),
    )
    .expect("ctx");
    env.write_people(&[
        person("E1", "Ann", "Lee", "a@x.io"),
        person("E2", "Bob", "Ray", "b@x.io"),
    ]);
    let r = env.pass(&ctx).await;
    let v = &r.vendors[V];
    assert_eq!(v.failed, 2, "{v:?}");
    assert_eq!(r.exit_code(), 1);
    assert!(
        v.errors
            .iter()
            .any(|e| e.message.contains("credentials rejected")),
        "{v:?}"
    );
    assert_eq!(env.logins(), 1, "a refused login is not repeated");
    assert!(env.sandbox.telematics.users().is_empty());
    assert!(
        ctx.vendors[0]
            .1
            .check(&roster::budget::Budget::unlimited())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn wrong_instance_key_fails_creates_and_leaves_no_intent() {
    let env = Tm::new().await;
    let c = Credentials::default();
    let text = env.config("", 5).replace(
        &format!("instance_key = \"{}\"", c.telematics_instance_key),
        "instance_key = \"00000000-0000-0000-0000-000000000000\"",
    );
    let ctx = Context::build(
        load_str(&text, env.dir.path(), Vec::new()).expect("config"),
        std::sync::Arc::new(roster::pass::NoHooks),
    )
    .expect("ctx");
    env.write_people(&[person("E1", "Ann", "Lee", "a@x.io")]);
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].failed, 1);
    assert!(
        r.vendors[V].errors[0].message.contains("401"),
        "{:?}",
        r.vendors[V]
    );
    assert!(env.record("E1").is_none());
    assert!(env.sandbox.telematics.users().is_empty());
}

#[tokio::test]
async fn a_rejected_person_is_recorded_and_the_others_go_through() {
    let env = Tm::new().await;
    let ctx = env.context("concurrency = 1");
    env.write_people(&[
        person("E1", "Ann", "Lee", "a@x.io"),
        person("E2", "Bob", "Ray", "b@x.io"),
        person("E3", "Cy", "Doe", "c@x.io"),
    ]);
    let body = r#"{"Status":422,"Title":"One or more validation errors occurred.","Errors":[{"Key":"Email","Message":"Email is already used."}]}"#;
    env.sandbox.telematics.control.inject(Fault::new(
        Some(Method::POST),
        "/v1/Registration/create",
        422,
        body,
    ));
    let r = env.pass(&ctx).await;
    let v = &r.vendors[V];
    assert_eq!((v.created, v.failed), (2, 1), "{v:?}");
    assert_eq!(v.errors[0].person, "E1");
    assert_eq!(v.errors[0].op.as_str(), "create");
    assert!(
        v.errors[0].message.contains("Email is already used"),
        "{v:?}"
    );
    assert_eq!(
        env.count_path("/v1/Registration/create"),
        3,
        "a 422 is not retried"
    );
    assert!(
        env.record("E1").is_none(),
        "a refused create leaves no intent"
    );
    // Next pass: E1 goes through.
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].created, 1);
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried() {
    let env = Tm::new().await;
    let ctx = env.context("");
    env.write_people(&[
        person("E1", "Ann", "Lee", "a@x.io"),
        person("E2", "Bob", "Ray", "b@x.io"),
    ]);
    let control = &env.sandbox.telematics.control;
    control.inject(Fault::new(Some(Method::POST), "/v1/Registration/create", 503, "").times(2));
    control.inject(
        Fault::new(Some(Method::GET), "/v1/Management/users/find", 429, "")
            .header("Retry-After", "0"),
    );
    control.inject(Fault::new(
        Some(Method::GET),
        "/v1/Management/users/find",
        500,
        "{}",
    ));
    let r = env.pass(&ctx).await;
    let v = &r.vendors[V];
    assert_eq!((v.created, v.failed), (2, 0), "{v:?}");
    assert_eq!(env.users("E1").len(), 1);
    assert_eq!(env.users("E2").len(), 1);
    assert_eq!(control.count_status(503), 2);
    assert_eq!(control.count_status(429), 1);

    // And on updates.
    env.write_people(&[
        person("E1", "Ann", "Lee", "a2@x.io"),
        person("E2", "Bob", "Ray", "b@x.io"),
    ]);
    control.inject(Fault::new(Some(Method::PUT), "/v1/Management/users", 502, "").times(2));
    let r = env.pass(&ctx).await;
    assert_eq!((r.vendors[V].updated, r.vendors[V].failed), (1, 0));
    assert_eq!(profile(&env.users("E1")[0], "Email"), "a2@x.io");
}

#[tokio::test]
async fn one_login_per_pass_even_with_concurrency() {
    let env = Tm::new().await;
    let ctx = env.context("concurrency = 8");
    let people: Vec<Value> = (0..24)
        .map(|i| {
            person(
                &format!("E{i:02}"),
                "F",
                &format!("L{i}"),
                &format!("p{i}@x.io"),
            )
        })
        .collect();
    env.write_people(&people);
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].created, 24);
    assert_eq!(env.logins(), 1);
    // A new process (new context) logs in once more; never more than that.
    let ctx2 = env.context("concurrency = 8");
    let mut people = people;
    for p in &mut people {
        p["last_name"] = json!("Changed");
    }
    env.write_people(&people);
    let r = env.pass(&ctx2).await;
    assert_eq!(r.vendors[V].updated, 24);
    assert_eq!(env.logins(), 2);
}

#[tokio::test]
async fn token_is_refreshed_before_expiry_and_after_a_401() {
    let env = Tm::new().await;
    env.sandbox
        .telematics
        .set_token_lifetime(Duration::from_secs(2));
    let ctx = env.context("concurrency = 4");
    let mut people: Vec<Value> = (0..6)
        .map(|i| person(&format!("E{i}"), "F", "L", &format!("p{i}@x.io")))
        .collect();
    env.write_people(&people);
    env.pass(&ctx).await;
    assert_eq!(env.logins(), 1);

    // Expired by the clock: refreshed (once), not logged in again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    env.sandbox.telematics.control.clear_calls();
    people[0]["first_name"] = json!("G");
    env.write_people(&people);
    let r = env.pass(&ctx).await;
    assert_eq!((r.vendors[V].updated, r.vendors[V].failed), (1, 0));
    assert_eq!(env.count_path("/v1/Auth/RefreshToken"), 1);
    assert_eq!(env.logins(), 0);

    // Expired at Damoov's side without roster knowing: the 401 leads to one refresh.
    env.sandbox
        .telematics
        .set_token_lifetime(Duration::from_secs(3600));
    env.sandbox.telematics.expire_tokens();
    env.sandbox.telematics.control.clear_calls();
    for p in &mut people {
        p["first_name"] = json!("H");
    }
    env.write_people(&people);
    let r = env.pass(&ctx).await;
    assert_eq!(
        (r.vendors[V].updated, r.vendors[V].failed),
        (6, 0),
        "{:?}",
        r.vendors[V]
    );
    assert_eq!(env.count_path("/v1/Auth/RefreshToken"), 1);
    assert_eq!(env.logins(), 0);
    assert!(env.sandbox.telematics.control.count_status(401) >= 1);

    // Refresh refused too (sessions revoked): one new login.
    env.sandbox.telematics.revoke_sessions();
    env.sandbox.telematics.control.clear_calls();
    for p in &mut people {
        p["first_name"] = json!("I");
    }
    env.write_people(&people);
    let r = env.pass(&ctx).await;
    assert_eq!((r.vendors[V].updated, r.vendors[V].failed), (6, 0));
    assert_eq!(env.logins(), 1);
}

#[tokio::test]
async fn the_login_rate_limit_is_never_hit() {
    let env = Tm::new().await;
    let fake = &env.sandbox.telematics;
    fake.set_login_limit(5, Duration::from_secs(60), Duration::from_secs(3600));
    env.write_people(&[person("E1", "Ann", "Lee", "a@x.io")]);
    // Eight restarts in a row, each a new connector that must log in.
    let mut refused = 0;
    for i in 0..8 {
        env.write_people(&[person("E1", "Ann", &format!("Lee{i}"), "a@x.io")]);
        let ctx = env.context("");
        let r = env.pass(&ctx).await;
        if r.vendors[V].failed > 0 {
            refused += 1;
            // The error names roster's own login limit, not a vendor 429.
            assert!(
                r.vendors[V].errors[0].message.contains("login limit"),
                "{:?}",
                r.vendors[V]
            );
        }
    }
    assert!(env.logins() <= 4, "logins: {}", env.logins());
    assert_eq!(refused, 4);
    assert_eq!(fake.control.count_status(429), 0);
    assert!(!fake.login_blocked());
}

/// Every error of a pass whose logins never succeed names what happened to the login
/// (issue 11: it said "rate limited (retry after 59s)", roster's own login limit).
fn login_failures_say(r: &Report, what: &str) {
    let v = &r.vendors[V];
    assert_eq!(v.failed, 2, "{v:?}");
    for e in &v.errors {
        assert!(e.message.contains(what), "{}", e.message);
        assert!(!e.message.contains("rate limited"), "{}", e.message);
    }
}

#[tokio::test]
async fn a_login_answered_with_502_says_502() {
    let env = Tm::new().await;
    env.sandbox
        .telematics
        .control
        .inject(Fault::new(Some(Method::POST), "/v1/Auth/Login", 502, "Bad Gateway").times(1000));
    env.write_people(&[
        person("E1", "Ann", "Lee", "a@x.io"),
        person("E2", "Bob", "Ray", "b@x.io"),
    ]);
    let r = env.pass(&env.context("")).await;
    login_failures_say(&r, "server error 502: admin login");
    assert_eq!(env.sandbox.telematics.control.count_status(429), 0);
}

#[tokio::test]
async fn a_login_that_hangs_says_it_timed_out() {
    let mut env = Env::in_process().await;
    env.limits.max_elapsed_secs = 3;
    let env = Tm(env);
    env.sandbox.telematics.control.delay_after_commit(
        Method::POST,
        "/v1/Auth/Login",
        Duration::from_secs(30),
    );
    env.write_people(&[
        person("E1", "Ann", "Lee", "a@x.io"),
        person("E2", "Bob", "Ray", "b@x.io"),
    ]);
    let r = env.pass(&env.context_with("", 1)).await;
    login_failures_say(&r, "admin login: timed out");
}

#[tokio::test]
async fn a_429_on_login_is_not_retried_and_blocks_further_logins() {
    let env = Tm::new().await;
    let fake = &env.sandbox.telematics;
    fake.set_login_limit(0, Duration::from_secs(60), Duration::from_secs(3600));
    let ctx = env.context("");
    env.write_people(&[
        person("E1", "Ann", "Lee", "a@x.io"),
        person("E2", "Bob", "Ray", "b@x.io"),
    ]);
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].failed, 2);
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].failed, 2);
    assert_eq!(env.logins(), 1, "no login after Damoov said 429");
}

#[tokio::test]
async fn on_remove_delete_deletes_the_user() {
    let env = Tm::new().await;
    let ctx = env.context("on_remove = \"delete\"");
    let people = [
        person("E1", "Ann", "Lee", "a@x.io"),
        person("E2", "Bob", "Ray", "b@x.io"),
    ];
    env.write_people(&people);
    env.pass(&ctx).await;
    let t2 = env.users("E2")[0]["DeviceToken"]
        .as_str()
        .expect("token")
        .to_string();
    env.write_people(&people[..1]);
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].deleted, 1, "{:?}", r.vendors[V]);
    assert!(env.sandbox.telematics.user(&t2).is_none());
    assert!(env.record("E2").is_none());
    assert_eq!(env.users("E1").len(), 1);
    // Back again: a new account (the old one is gone for good).
    env.write_people(&people);
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].created, 1);
}

#[tokio::test]
async fn check_is_read_only() {
    let env = Tm::new().await;
    let ctx = env.context("");
    ctx.vendors[0]
        .1
        .check(&roster::budget::Budget::unlimited())
        .await
        .expect("credentials work");
    assert_eq!(env.sandbox.telematics.control.writes(), 0);
    assert_eq!(env.logins(), 1);
}

#[test]
fn settings_without_instance_key_name_the_key() {
    let text = "[source]\ntype = \"file\"\npath = \"p.json\"\n[vendors.tm]\ntype = \"telematics\"\n\
                email = \"a@x.io\"\npassword = \"p\"\ninstance_id = \"i\"\n";
    let settings = load_str(text, Path::new("/"), Vec::new()).expect("config");
    let e = Context::build(settings, std::sync::Arc::new(roster::pass::NoHooks))
        .err()
        .expect("refused");
    assert!(e.to_string().contains("vendors.tm.instance_key"), "{e}");
}
