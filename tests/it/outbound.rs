//! What roster's outbound calls never do, through the binary: follow a redirect to
//! another host (credentials would go with it), read a reply past its cap; and what
//! they say when a vendor's setup or URL is wrong (issue 11).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;
use roster_sandbox::{Credentials, Fault};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::{Env, LOOSE_SAFETY, MOTIVE_KEY, all_vendors, motive_vendor, person};

/// Another host: a bare TCP server that keeps whatever reaches it.
struct Trap {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Trap {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let mut buf = vec![0u8; 64 * 1024];
                let n = tokio::time::timeout(Duration::from_secs(1), tcp.read(&mut buf))
                    .await
                    .map_or(0, |r| r.unwrap_or(0));
                kept.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                    .await;
            }
        });
        Self { url, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// A redirect fault for every call of a fake, to this host.
    fn redirect(&self, status: u16) -> Fault {
        Fault::new(None, "", status, "")
            .header("location", &format!("{}/collect", self.url))
            .times(10_000)
    }
}

/// A person with the username Rocket.Chat needs.
fn chatter(id: &str, first: &str, last: &str, username: &str) -> Value {
    let mut p = person(id, first, last, &format!("{username}@example.com"));
    p["username"] = json!(username);
    p
}

fn errors(report: &Value, vendor: &str) -> Vec<String> {
    report["vendors"][vendor]["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_vendor_follows_a_redirect_to_another_host() {
    let trap = Trap::start().await;
    let env = Env::new(LOOSE_SAFETY, &all_vendors()).await;
    env.write_people(&json!([
        chatter("E1", "Ann", "Lee", "ann"),
        chatter("E2", "Bob", "Ray", "bob"),
    ]));
    let s = &env.sandbox;
    // 307 and 308 keep the method and the body: the Damoov login's password with them.
    s.motive.control.inject(trap.redirect(301));
    s.drivekit.control.inject(trap.redirect(302));
    s.telematics.control.inject(trap.redirect(307));
    s.rocketchat.control.inject(trap.redirect(308));

    let (code, r) = env.reconcile().await;
    assert_eq!(code, 1, "{r}");
    assert!(
        trap.seen().is_empty(),
        "a call reached the other host: {:?}",
        trap.seen()
    );
    let host = trap.url.trim_start_matches("http://");
    for (vendor, status) in [
        ("motive", 301),
        ("drivekit", 302),
        ("telematics", 307),
        ("chat", 308),
    ] {
        let errors = errors(&r, vendor);
        assert!(!errors.is_empty(), "{vendor}: {r}");
        for e in &errors {
            assert!(
                e.contains(&format!("answered {status} with a redirect to"))
                    && e.contains(host)
                    && e.contains("never follows"),
                "{vendor}: {e}"
            );
        }
    }
    assert!(s.motive.users().is_empty() && s.rocketchat.users().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_source_follows_a_redirect_to_another_host() {
    let trap = Trap::start().await;
    let token = Credentials::default().scim_token;
    let env = Env::with_source_secret(
        "type = \"scim\"\nbase_url = \"{url:scim}/v2\"\ntoken_file = \"{dir}/scim.token\"\n\
         retries = 1\ntimeout_secs = 5\n",
        &motive_vendor("motive", MOTIVE_KEY),
        "scim.token",
        &token,
    )
    .await;
    env.sandbox.scim.control.inject(trap.redirect(307));
    let (code, r) = env.json_without(&["reconcile"], &[&token]).await;
    assert_eq!(code, 3, "{r}");
    let refused = r["refused"].as_str().unwrap_or_default();
    assert!(
        refused.contains("redirect") && refused.contains(trap.url.trim_start_matches("http://")),
        "{refused}"
    );
    assert!(trap.seen().is_empty(), "{:?}", trap.seen());
    assert_eq!(env.sandbox.motive.control.writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_reply_past_its_cap_fails_that_call_clearly() {
    let env = Env::motive().await;
    env.write_people(&json!([
        person("E1", "Ann", "Lee", "ann@example.com"),
        person("E2", "Bob", "Ray", "bob@example.com"),
    ]));
    // 2 MiB where a created user (a few hundred bytes) belongs.
    let huge = format!("{{\"user\":{{\"pad\":\"{}\"}}}}", "x".repeat(2 << 20));
    env.sandbox
        .motive
        .control
        .inject(Fault::new(Some(Method::POST), "/v1/users", 201, &huge).times(1));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["vendors"]["motive"]["created"], 1, "{r}");
    let errors = errors(&r, "motive");
    assert_eq!(errors.len(), 1, "{r}");
    assert!(
        errors[0].contains("larger than 1024 KiB") && errors[0].contains("write"),
        "{}",
        errors[0]
    );
    // The next pass finishes the job (the intent is looked up, not created twice).
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(env.sandbox.motive.users().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_the_url_that_answered_404() {
    let env = Env::new(
        LOOSE_SAFETY,
        &motive_vendor("motive", MOTIVE_KEY).replace("{url:motive}", "{url:motive}/api/wrong"),
    )
    .await;
    let out = env.run(&["check"]).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(0), "{text}");
    let tried = format!("{}/api/wrong/v1/users", env.sandbox.url("motive"));
    assert!(text.contains("404") && text.contains(&tried), "{text}");
    assert!(!text.contains(MOTIVE_KEY), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocket_chat_two_factor_is_one_clear_error_per_person_logged_once() {
    let env = Env::new(LOOSE_SAFETY, &chat_only()).await;
    env.sandbox
        .rocketchat
        .set_rate_limit(1000, Duration::from_secs(60));
    let people = |last: &str| {
        json!([
            chatter("E1", "Ann", last, "ann"),
            chatter("E2", "Bob", last, "bob"),
            chatter("E3", "Cy", last, "cy"),
        ])
    };
    env.write_people(&people("Lee"));
    let (code, r) = env.reconcile().await;
    assert_eq!(
        (code, &r["vendors"]["chat"]["created"]),
        (0, &json!(3)),
        "{r}"
    );

    env.sandbox.rocketchat.control.inject(
        Fault::new(
            Some(Method::POST),
            "users.update",
            400,
            r#"{"success":false,"error":"TOTP Required [totp-required]","errorType":"totp-required","details":{"method":"password"}}"#,
        )
        .times(1000),
    );
    env.sandbox.rocketchat.control.clear_calls();
    env.write_people(&people("Ray"));
    let out = env.run(&["reconcile", "--json"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(out.status.code(), Some(1), "{r}");
    assert_eq!(r["vendors"]["chat"]["failed"], 3, "{r}");
    for e in r["vendors"]["chat"]["errors"].as_array().expect("errors") {
        let message = e["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("two-factor") && message.contains("Ignore Two Factor Authentication"),
            "{message}"
        );
        assert_eq!(e["kind"], "setup", "{e}");
    }
    let updates = env
        .sandbox
        .rocketchat
        .control
        .calls()
        .iter()
        .filter(|c| c.path.ends_with("users.update"))
        .count();
    assert_eq!(updates, 3, "one call per person, no retry");
    assert_eq!(
        stderr
            .matches("The vendor refuses these calls until its setup is fixed")
            .count(),
        1,
        "{stderr}"
    );
}

/// The Rocket.Chat table of `all_vendors` alone.
fn chat_only() -> String {
    let all = all_vendors();
    let start = all.find("[vendors.chat]").expect("a chat table");
    all[start..].to_string()
}
