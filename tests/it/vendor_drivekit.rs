//! The DriveQuant DriveKit connector against the sandbox's stateful fake, through the
//! library: config → `Context` → `run_once` with a real store.

use std::path::Path;

use axum::http::Method;
use roster::model::{RecordState, VendorRecord};
use roster::pass::Context;
use roster::report::Report;
use roster::settings::load_str;
use roster_sandbox::{Credentials, Fault};
use serde_json::{Value, json};

use crate::common::Env;

const V: &str = "drivekit";

/// The DriveKit side of the shared harness.
/// The shared harness, in process, with this connector's helpers.
struct Dk(Env);

impl std::ops::Deref for Dk {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.0
    }
}

impl Dk {
    async fn new() -> Self {
        Self(Env::in_process().await)
    }

    fn context(&self, extra: &str) -> Context {
        let key = Credentials::default().drivekit_api_key;
        self.context_with_key(&key, extra)
    }

    fn context_with_key(&self, key: &str, extra: &str) -> Context {
        let table = format!(
            "[vendors.{V}]\ntype = \"drivekit\"\nbase_url = \"{url}\"\napi_key = \"{key}\"\n{extra}",
            url = self.sandbox.url(V),
        );
        self.context_from(&self.config_around(&table, 5))
    }

    async fn pass(&self, ctx: &Context) -> Report {
        let key = Credentials::default().drivekit_api_key;
        self.pass_without(ctx, &[&key]).await
    }

    fn record(&self, id: &str) -> Option<VendorRecord> {
        self.record_in(V, id)
    }

    fn driver(&self, id: &str) -> Value {
        self.sandbox
            .drivekit
            .driver(id)
            .unwrap_or_else(|| panic!("no driver {id}"))
    }
}

fn person(id: &str, first: &str, last: &str) -> Value {
    json!({ "id": id, "first_name": first, "last_name": last, "email": format!("{id}@x.io") })
}

#[tokio::test]
async fn lifecycle_link_noop_update_disable_enable() {
    let env = Dk::new().await;
    let dk = &env.sandbox.drivekit;
    dk.sign_in("E1");
    dk.sign_in("E2");
    let ctx = env.context("");
    let mut people = vec![person("E1", "Ann", "Lee"), person("E2", "Bob", "Ray")];
    people[0]["username"] = json!("annl");
    env.write_people(&people);

    let r = env.pass(&ctx).await;
    let v = &r.vendors[V];
    assert_eq!(
        (v.created + v.adopted, v.failed, v.skipped),
        (2, 0, 0),
        "{v:?}"
    );
    assert_eq!(r.exit_code(), 0);
    let e1 = env.driver("E1");
    assert_eq!(
        (e1["firstname"].as_str(), e1["lastname"].as_str()),
        (Some("Ann"), Some("Lee"))
    );
    assert_eq!(e1["pseudo"], "annl");
    assert_eq!(e1["status"], "ENABLE");
    assert_eq!(
        env.record("E2").and_then(|r| r.remote_id).as_deref(),
        Some("E2")
    );

    // No change: no write call at all.
    dk.control.clear_calls();
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].unchanged, 2);
    assert_eq!(dk.control.writes(), 0);
    assert!(dk.control.calls().is_empty(), "{:?}", dk.control.calls());

    // One changed field: one identity PUT carrying all three fields.
    people[0]["last_name"] = json!("Lyle");
    env.write_people(&people);
    dk.control.clear_calls();
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].updated, 1);
    assert_eq!(dk.control.writes(), 1);
    let e1 = env.driver("E1");
    assert_eq!(e1["lastname"], "Lyle");
    assert_eq!(
        e1["firstname"], "Ann",
        "the fake clears omitted fields: all were sent"
    );
    assert_eq!(e1["pseudo"], "annl");

    // Removed: disabled, still there.
    env.write_people(&people[..1]);
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].deactivated, 1);
    assert_eq!(dk.status("E2"), Some("DISABLE"));
    assert_eq!(
        env.record("E2").map(|r| r.state),
        Some(RecordState::Deactivated)
    );

    // Back: enabled again, same driver, fields up to date.
    people[1]["first_name"] = json!("Bobby");
    env.write_people(&people);
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].reactivated, 1, "{:?}", r.vendors[V]);
    assert_eq!(dk.status("E2"), Some("ENABLE"));
    assert_eq!(env.driver("E2")["firstname"], "Bobby");
    assert_eq!(
        env.record("E2").and_then(|r| r.remote_id).as_deref(),
        Some("E2")
    );
    assert_eq!(dk.drivers().len(), 2);

    // Inactive in the source: disabled.
    people[0]["active"] = json!(false);
    env.write_people(&people);
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].deactivated, 1);
    assert_eq!(dk.status("E1"), Some("DISABLE"));
}

#[tokio::test]
async fn a_driver_not_signed_in_is_skipped_then_linked_once_signed_in() {
    let env = Dk::new().await;
    let dk = &env.sandbox.drivekit;
    dk.sign_in("E1");
    let ctx = env.context("");
    env.write_people(&[person("E1", "Ann", "Lee"), person("E3", "Cy", "Doe")]);

    for _ in 0..2 {
        let r = env.pass(&ctx).await;
        let v = &r.vendors[V];
        assert_eq!((v.skipped, v.failed), (1, 0), "{v:?}");
        assert_eq!(r.exit_code(), 0, "waiting is not a failure");
        assert_eq!(v.errors.len(), 1);
        assert_eq!(v.errors[0].person, "E3");
        assert!(
            v.errors[0]
                .message
                .contains("not signed in to the DriveKit app yet"),
            "{v:?}"
        );
        assert!(env.record("E3").is_none(), "no intent is left behind");
    }

    dk.sign_in("E3");
    let r = env.pass(&ctx).await;
    let v = &r.vendors[V];
    assert_eq!(
        (v.created + v.adopted, v.skipped, v.failed),
        (1, 0, 0),
        "{v:?}"
    );
    assert_eq!(env.driver("E3")["firstname"], "Cy");
    assert_eq!(dk.status("E3"), Some("ENABLE"));
    assert_eq!(env.record("E3").map(|r| r.state), Some(RecordState::Active));

    // A fresh process (empty listing cache) adopts a newly signed-in driver too.
    env.write_people(&[
        person("E1", "Ann", "Lee"),
        person("E3", "Cy", "Doe"),
        person("E4", "Di", "Fox"),
    ]);
    dk.sign_in("E4");
    let r = env.pass(&env.context("")).await;
    assert_eq!(r.vendors[V].adopted, 1, "{:?}", r.vendors[V]);
    assert_eq!(dk.status("E4"), Some("ENABLE"));
}

#[tokio::test]
async fn a_link_interrupted_by_a_crash_is_adopted() {
    let env = Dk::new().await;
    let dk = &env.sandbox.drivekit;
    let ctx = env.context("");
    // E1: the link reached DriveKit (identity set, disabled earlier) but the store only
    // has the intent. E5: same, and then removed from the source.
    for id in ["E1", "E5"] {
        dk.sign_in(id);
        env.put_intent(V, id).await;
    }
    dk.set_identity("E1", "Ann", "Lee", "");
    env.write_people(&[person("E1", "Ann", "Lee")]);

    let r = env.pass(&ctx).await;
    let v = &r.vendors[V];
    assert_eq!((v.adopted, v.deactivated, v.failed), (1, 1, 0), "{v:?}");
    assert_eq!(
        dk.status("E1"),
        Some("ENABLE"),
        "adoption enables explicitly"
    );
    assert_eq!(
        dk.status("E5"),
        Some("DISABLE"),
        "a pending link of a removed person is undone"
    );
    assert_eq!(
        env.record("E1").map(|r| (r.remote_id, r.state)),
        Some((Some("E1".into()), RecordState::Active))
    );
    assert_eq!(dk.drivers().len(), 2);
}

#[tokio::test]
async fn a_wrong_api_key_fails_without_writing() {
    let env = Dk::new().await;
    env.sandbox.drivekit.sign_in("E1");
    let ctx = env.context_with_key("not-the-key", "");
    env.write_people(&[person("E1", "Ann", "Lee")]);
    let r = env.pass(&ctx).await;
    let v = &r.vendors[V];
    assert_eq!(v.failed, 1, "{v:?}");
    assert!(
        v.errors[0].message.contains("credentials rejected (401)"),
        "{v:?}"
    );
    assert_eq!(r.exit_code(), 1);
    assert_eq!(env.sandbox.drivekit.control.writes(), 0);
    assert!(
        ctx.vendors[0]
            .1
            .check(&roster::budget::Budget::unlimited())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_refused_identity_is_recorded_for_that_person_only() {
    let env = Dk::new().await;
    let dk = &env.sandbox.drivekit;
    for id in ["E1", "E2", "E3"] {
        dk.sign_in(id);
    }
    let ctx = env.context("");
    env.write_people(&[
        person("E1", "Ann", "Lee"),
        person("E2", "Bob", "Ray"),
        person("E3", "Cy", "Doe"),
    ]);
    dk.control.inject(Fault::new(
        Some(Method::PUT),
        "/drivers/E2/identity",
        400,
        "{\"message\":\"Invalid data format\"}",
    ));
    let r = env.pass(&ctx).await;
    let v = &r.vendors[V];
    assert_eq!((v.adopted + v.created, v.failed), (2, 1), "{v:?}");
    assert_eq!(v.errors[0].person, "E2");
    assert!(v.errors[0].message.contains("rejected (400)"), "{v:?}");
    // The next pass puts E2 right.
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].failed, 0, "{:?}", r.vendors[V]);
    assert_eq!(env.driver("E2")["firstname"], "Bob");
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried() {
    let env = Dk::new().await;
    let dk = &env.sandbox.drivekit;
    dk.sign_in("E1");
    dk.sign_in("E2");
    let ctx = env.context("");
    env.write_people(&[person("E1", "Ann", "Lee"), person("E2", "Bob", "Ray")]);
    dk.control
        .inject(Fault::new(Some(Method::GET), "/account/page", 503, "").times(2));
    dk.control
        .inject(Fault::new(Some(Method::PUT), "/identity", 500, "").times(2));
    dk.control
        .inject(Fault::new(Some(Method::PUT), "/status", 429, "").header("Retry-After", "0"));
    let r = env.pass(&ctx).await;
    let v = &r.vendors[V];
    assert_eq!((v.adopted + v.created, v.failed), (2, 0), "{v:?}");
    assert_eq!(dk.control.count_status(503), 2);
    assert_eq!(dk.control.count_status(500), 2);
    assert_eq!(dk.control.count_status(429), 1);
    assert_eq!(dk.status("E1"), Some("ENABLE"));
    assert_eq!(env.driver("E2")["lastname"], "Ray");
}

#[tokio::test]
async fn user_id_attribute_chooses_the_driver_and_a_change_relinks() {
    let env = Dk::new().await;
    let dk = &env.sandbox.drivekit;
    dk.sign_in("guid-1");
    let ctx = env.context("");
    let mut p = person("E1", "Ann", "Lee");
    p["attributes"] = json!({ "drivekit.user_id": "guid-1", "drivekit.pseudo": "Speedy" });
    p["username"] = json!("annl");
    env.write_people(&[p.clone()]);
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].adopted, 1, "{:?}", r.vendors[V]);
    assert_eq!(env.driver("guid-1")["pseudo"], "Speedy");
    assert_eq!(
        env.record("E1").and_then(|r| r.remote_id).as_deref(),
        Some("guid-1")
    );

    // The app team gave the person a new id: relinked to the new driver.
    dk.sign_in("guid-2");
    p["attributes"]["drivekit.user_id"] = json!("guid-2");
    env.write_people(&[p]);
    let r = env.pass(&env.context("")).await;
    assert_eq!(r.vendors[V].failed, 0, "{:?}", r.vendors[V]);
    assert_eq!(
        env.record("E1").and_then(|r| r.remote_id).as_deref(),
        Some("guid-2")
    );
    assert_eq!(env.driver("guid-2")["firstname"], "Ann");
    assert_eq!(dk.status("guid-2"), Some("ENABLE"));
}

#[tokio::test]
async fn lookup_pages_through_the_listing() {
    let env = Dk::new().await;
    let dk = &env.sandbox.drivekit;
    for i in 0..1500 {
        dk.sign_in(&format!("D{i:04}"));
    }
    dk.sign_in("Z1");
    let ctx = env.context("");
    env.write_people(&[person("Z1", "Zed", "Last")]);
    let r = env.pass(&ctx).await;
    assert_eq!(r.vendors[V].adopted, 1, "{:?}", r.vendors[V]);
    let pages: Vec<String> = dk
        .control
        .calls()
        .iter()
        .filter(|c| c.path.ends_with("/account/page"))
        .map(|c| c.query.clone())
        .collect();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(pages[1].contains("pageNumber=1"), "{pages:?}");
    assert_eq!(env.driver("Z1")["firstname"], "Zed");
}

#[tokio::test]
async fn check_reads_the_listing() {
    let env = Dk::new().await;
    let ctx = env.context("");
    ctx.vendors[0]
        .1
        .check(&roster::budget::Budget::unlimited())
        .await
        .expect("credentials work");
    let calls = env.sandbox.drivekit.control.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "GET");
    assert!(calls[0].query.contains("pageSize=1000"), "{calls:?}");
}

#[test]
fn settings_name_the_missing_api_key() {
    let text = "[source]\ntype = \"file\"\npath = \"p.json\"\n[vendors.dk]\ntype = \"drivekit\"\n";
    let settings = load_str(text, Path::new("/"), Vec::new()).expect("config");
    let e = Context::build(settings, std::sync::Arc::new(roster::pass::NoHooks))
        .err()
        .expect("refused");
    assert!(e.to_string().contains("vendors.dk.api_key"), "{e}");
    let text = format!("{text}api_key = \"k\"\non_remove = \"delete\"\n");
    let settings = load_str(&text, Path::new("/"), Vec::new()).expect("config");
    let e = Context::build(settings, std::sync::Arc::new(roster::pass::NoHooks))
        .err()
        .expect("refused");
    assert!(e.to_string().contains("vendors.dk.on_remove"), "{e}");
}
