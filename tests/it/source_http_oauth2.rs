//! The `http` source with OAuth2 client credentials (`auth = "oauth2"`) against the HR
//! fake and its token endpoint, through the real binary to the Motive fake.

use std::time::Duration;

use axum::http::Method;
use roster_sandbox::{Credentials, Fault};
use serde_json::{Value, json};

use crate::common::{Env, MOTIVE_KEY, counts, motive_vendor_with};

const PAGES: &str = "records_pointer = \"/data/employees\"\npagination = \"page\"\n\
                     page_size_param = \"per_page\"\npage_size = 100\ntotal_pointer = \"/meta/total\"";

const MAPPING: &str = "[source.fields]\nid = \"/employeeId\"\nemail = \"/work/email\"\n\
                       first_name = \"/name/first\"\nlast_name = \"/name/last\"\n";

fn employee(n: usize) -> Value {
    json!({
        "employeeId": format!("E{n:04}"),
        "name": {"first": format!("First{n}"), "last": format!("Last{n}")},
        "work": {"email": format!("e{n:04}@example.com")},
        "status": "active",
    })
}

/// The HR fake's `/v2` (pages of 25 at most) with `n` employees, read with a client
/// secret from a file holding `secret`.
async fn env(n: usize, secret: &str) -> Env {
    let c = Credentials::default();
    let env = Env::with_source_secret(
        &format!(
            "type = \"http\"\nurl = \"{{url:hr}}/v2/employees\"\nauth = \"oauth2\"\n\
             token_url = \"{{url:hr}}/oauth/token\"\nclient_id = \"{id}\"\n\
             client_secret_file = \"{{dir}}/hr-client.secret\"\nscope = \"employees:read\"\n\
             timeout_secs = 5\nretries = 1\n{PAGES}\n{MAPPING}",
            id = c.hr_client_id
        ),
        &motive_vendor_with("motive", MOTIVE_KEY, ""),
        "hr-client.secret",
        &format!("{secret}\n"),
    )
    .await;
    env.sandbox
        .hr
        .set_employees((1..=n).map(employee).collect());
    env
}

/// What every access token the fake issues starts with: none may show in any output.
const TOKENS: &str = "hr-at-";

fn secret() -> String {
    Credentials::default().hr_client_secret
}

/// The statuses of the API's page requests, in order.
fn pages(env: &Env) -> Vec<u16> {
    env.sandbox
        .hr
        .control
        .calls()
        .iter()
        .filter(|c| c.method == "GET" && c.path.ends_with("/employees"))
        .map(|c| c.status)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_serves_every_page() {
    let env = env(60, &secret()).await;
    let (hr, motive) = (&env.sandbox.hr, &env.sandbox.motive);
    // The token endpoint is down for a moment: tried again, as a page would be.
    hr.control.inject(Fault::new(
        Some(Method::POST),
        "/oauth/token",
        503,
        "<html>busy</html>",
    ));
    let (code, r) = env.json_without(&["reconcile"], &[&secret(), TOKENS]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [60, 0, 0, 0, 0, 0, 0], "{r}");
    assert_eq!(pages(&env), [200, 200, 200], "three pages of 25, 25 and 10");
    assert_eq!(hr.control.count_status(503), 1);
    assert_eq!(hr.oauth.granted(), 1, "one token for every page");
    assert_eq!(hr.oauth.requests(), 1);
    assert_eq!(motive.users().len(), 60);

    let out = env.run(&["check"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("OAuth2 client credentials"), "{text}");
    assert!(
        !text.contains(&secret()) && !text.contains(TOKENS),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_renewed_before_it_expires() {
    let env = env(100, &secret()).await;
    let hr = &env.sandbox.hr;
    // Tokens live 2 s; each page takes 0.7 s to answer, so the fourth page leaves after
    // the first token's renewal point (a tenth of its life before the end).
    hr.oauth.set_lifetime(Duration::from_secs(2));
    hr.control
        .delay_after_commit(Method::GET, "/v2/employees", Duration::from_millis(700));
    let (code, r) = env.json_without(&["reconcile"], &[&secret(), TOKENS]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[0], 100, "{r}");
    assert_eq!(pages(&env), [200, 200, 200, 200]);
    assert_eq!(hr.oauth.granted(), 2, "renewed once, before it ran out");
    assert_eq!(
        hr.control.count_status(401),
        0,
        "never sent an expired token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_gets_one_new_token_and_the_page_again() {
    let env = env(60, &secret()).await;
    let (hr, motive) = (&env.sandbox.hr, &env.sandbox.motive);
    // The server ends every token after page 1 (a restart, a key rotation).
    hr.after_list_requests(1, |h| h.oauth.expire_all());
    let (code, r) = env.json_without(&["reconcile"], &[&secret(), TOKENS]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[0], 60, "{r}");
    assert_eq!(pages(&env), [200, 401, 200, 200]);
    assert_eq!(hr.oauth.granted(), 2);

    // An API that refuses every token: one new token, the page once more, then the read
    // fails as a whole and nothing is pushed.
    hr.set_employees((1..=59).map(employee).collect());
    hr.control.clear_calls();
    motive.control.clear_calls();
    hr.control.inject(
        Fault::new(
            Some(Method::GET),
            "/v2/employees",
            401,
            r#"{"error":"invalid_token","message":"token revoked"}"#,
        )
        .times(10),
    );
    let granted = hr.oauth.granted();
    let (code, r) = env.json_without(&["reconcile"], &[&secret(), TOKENS]).await;
    assert_eq!(code, 3, "{r}");
    let refused = r["refused"].as_str().unwrap_or_default();
    assert!(
        refused.contains("401") && refused.contains("fetched anew"),
        "{refused}"
    );
    assert_eq!(pages(&env), [401, 401], "the page once, then once more");
    assert_eq!(hr.oauth.granted(), granted + 2);
    assert_eq!(motive.control.writes(), 0);
    assert_eq!(motive.users().len(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_refuses_the_pass_with_a_clear_message() {
    let wrong = "not-the-client-secret-Qx81";
    let env = env(10, wrong).await;
    let (hr, motive) = (&env.sandbox.hr, &env.sandbox.motive);
    let (code, r) = env
        .json_without(&["reconcile"], &[&secret(), wrong, TOKENS])
        .await;
    assert_eq!(code, 3, "{r}");
    let refused = r["refused"].as_str().unwrap_or_default();
    assert!(
        refused.contains("refused the request: invalid_client")
            && refused.contains("check client_id, client_secret and client_auth"),
        "{refused}"
    );
    assert_eq!(hr.oauth.requests(), 1, "a refusal is not retried");
    assert!(pages(&env).is_empty(), "no page without a token");
    assert_eq!(motive.control.writes(), 0);
    assert!(motive.users().is_empty());

    let out = env.run(&["check"]).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("invalid_client"), "{text}");
    assert!(!text.contains(wrong), "{text}");

    // Fixed in the file: the next run reads it.
    std::fs::write(env.path("hr-client.secret"), secret()).expect("secret");
    let (code, r) = env.json_without(&["reconcile"], &[&secret(), TOKENS]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[0], 10, "{r}");
}
