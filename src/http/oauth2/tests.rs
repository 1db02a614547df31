//! The token endpoint and its session against the sandbox's OAuth2 fake (the HR fake's
//! `/hr/oauth/token`, whose tokens its API accepts).

use super::*;
use crate::config::RetrySettings;
use crate::http::{FlowSettings, Options, Quiet, Reply};
use reqwest::Method;
use roster_sandbox::oauth::ClientAuth as ServerAuth;
use roster_sandbox::{Credentials, Fault, Sandbox};

struct Setup {
    sandbox: Sandbox,
    http: Arc<Http>,
    creds: Credentials,
}

async fn setup() -> Setup {
    let creds = Credentials::default();
    let sandbox = Sandbox::start(creds.clone()).await.expect("sandbox");
    sandbox
        .hr
        .set_employees(vec![serde_json::json!({"employeeId": "E1"})]);
    let http = Http::new(Options {
        name: "source",
        timeout: Duration::from_secs(5),
        flow: FlowSettings::default(),
        retry: RetrySettings {
            initial_interval_ms: 10,
            ..RetrySettings::default()
        },
        observer: Arc::new(Quiet),
    })
    .expect("client");
    Setup {
        sandbox,
        http: Arc::new(http),
        creds,
    }
}

impl Setup {
    fn credentials(&self, auth: ClientAuth, secret: &str) -> ClientCredentials {
        ClientCredentials {
            token_url: Url::parse(&format!("{}/oauth/token", self.sandbox.url("hr"))).expect("url"),
            client_id: self.creds.hr_client_id.clone(),
            client_secret: ClientSecret::Inline(Secret::new(secret)),
            scopes: vec!["employees:read".into()],
            client_auth: auth,
        }
    }

    fn endpoint(&self, credentials: ClientCredentials, retries: u32) -> TokenEndpoint {
        TokenEndpoint::new(Arc::clone(&self.http), credentials, retries)
    }

    fn session(&self) -> Session<TokenEndpoint> {
        self.endpoint(
            self.credentials(ClientAuth::Basic, &self.creds.hr_client_secret),
            0,
        )
        .into_session()
    }

    /// One page of the HR API through the session; its status.
    async fn page(&self, session: &Session<TokenEndpoint>) -> u16 {
        let url = Url::parse(&format!("{}/v2/employees", self.sandbox.url("hr"))).expect("url");
        let budget = Budget::unlimited();
        let reply: Result<Reply, OAuthError> = session
            .send(&budget, |token| {
                let request = self
                    .http
                    .request(Method::GET, url.clone())
                    .bearer_auth(token.expose());
                let budget = &budget;
                async move {
                    self.http
                        .send(budget, "GET page", BodyCap::PAGE, request)
                        .await
                        .map_err(|e| OAuthError::Unavailable {
                            url: "api".into(),
                            message: e.to_string(),
                        })
                }
            })
            .await;
        reply.expect("sent").status.as_u16()
    }
}

#[tokio::test]
async fn one_token_serves_every_page_until_it_nears_expiry() {
    let s = setup().await;
    let session = s.session();
    for _ in 0..3 {
        assert_eq!(s.page(&session).await, 200);
    }
    assert_eq!(s.sandbox.hr.oauth.granted(), 1, "fetched once, reused");

    // A short-lived token is replaced a tenth of its life before it ends, without
    // waiting for the API to refuse it.
    let s = setup().await;
    s.sandbox.hr.oauth.set_lifetime(Duration::from_secs(2));
    let session = s.session();
    assert_eq!(s.page(&session).await, 200);
    assert_eq!(s.page(&session).await, 200);
    assert_eq!(s.sandbox.hr.oauth.granted(), 1);
    tokio::time::sleep(Duration::from_millis(1850)).await;
    assert_eq!(s.page(&session).await, 200);
    assert_eq!(s.sandbox.hr.oauth.granted(), 2, "renewed before expiry");
    assert_eq!(s.sandbox.hr.control.count_status(401), 0);
}

#[tokio::test]
async fn concurrent_callers_share_one_fetch() {
    let s = setup().await;
    let session = s.session();
    let budget = Budget::unlimited();
    let tokens = futures::future::join_all((0..8).map(|_| session.bearer(&budget))).await;
    assert!(tokens.iter().all(Result::is_ok));
    assert_eq!(s.sandbox.hr.oauth.granted(), 1);
}

#[tokio::test]
async fn a_401_fetches_a_new_token_once() {
    let s = setup().await;
    let session = s.session();
    assert_eq!(s.page(&session).await, 200);
    // The server ends every token (a restart, a key rotation): one 401, a new token,
    // the request again.
    s.sandbox.hr.oauth.expire_all();
    assert_eq!(s.page(&session).await, 200);
    assert_eq!(s.sandbox.hr.oauth.granted(), 2);
    assert_eq!(s.sandbox.hr.control.count_status(401), 1);

    // An API that keeps refusing: one new token, one more try, then the 401 is the
    // caller's answer.
    s.sandbox.hr.control.clear_calls();
    s.sandbox
        .hr
        .control
        .inject(Fault::new(None, "/v2/employees", 401, r#"{"error":"unauthorized"}"#).times(5));
    assert_eq!(s.page(&session).await, 401);
    assert_eq!(s.sandbox.hr.oauth.granted(), 3);
    let api_calls = s
        .sandbox
        .hr
        .control
        .calls()
        .iter()
        .filter(|c| c.path.contains("employees"))
        .count();
    assert_eq!(api_calls, 2);
}

/// Requests that left with the same token and all met a 401 renew it once: the late
/// ones take the token the first renewal brought.
#[tokio::test]
async fn concurrent_401s_with_one_token_renew_it_once() {
    let s = setup().await;
    let session = s.session();
    assert_eq!(s.page(&session).await, 200);
    s.sandbox.hr.oauth.expire_all();
    let statuses = futures::future::join_all((0..4).map(|_| s.page(&session))).await;
    assert_eq!(statuses, [200; 4]);
    assert_eq!(s.sandbox.hr.oauth.granted(), 2);
    assert_eq!(s.sandbox.hr.control.count_status(401), 4);
}

#[tokio::test]
async fn client_authentication_in_the_body_and_scopes() {
    let s = setup().await;
    s.sandbox.hr.oauth.set_client_auth(ServerAuth::BodyOnly);
    let post = s
        .endpoint(
            s.credentials(ClientAuth::Post, &s.creds.hr_client_secret),
            0,
        )
        .into_session();
    assert_eq!(s.page(&post).await, 200);
    // The server takes only the body: Basic is refused, and the message says where
    // to look.
    let e = s
        .endpoint(
            s.credentials(ClientAuth::Basic, &s.creds.hr_client_secret),
            0,
        )
        .request(&Budget::unlimited())
        .await
        .expect_err("refused");
    assert!(
        matches!(&e, OAuthError::Refused { code, .. } if code == "invalid_client"),
        "{e}"
    );
    assert!(e.to_string().contains("client_auth"), "{e}");
    assert_eq!(e.failure(), AuthFailure::Refused);

    s.sandbox.hr.oauth.set_client_auth(ServerAuth::Either);
    let mut creds = s.credentials(ClientAuth::Basic, &s.creds.hr_client_secret);
    creds.scopes = vec!["employees:read".into(), "payroll:admin".into()];
    let e = s
        .endpoint(creds, 0)
        .request(&Budget::unlimited())
        .await
        .expect_err("scope");
    assert!(
        matches!(&e, OAuthError::Refused { code, .. } if code == "invalid_scope"),
        "{e}"
    );
    assert!(e.to_string().contains("payroll:admin"), "{e}");
}

#[tokio::test]
async fn a_wrong_secret_is_refused_once_and_never_shown() {
    let s = setup().await;
    let wrong = "wrong-secret-Zk71";
    let session = s
        .endpoint(s.credentials(ClientAuth::Basic, wrong), 3)
        .into_session();
    let budget = Budget::unlimited();
    let e = session.bearer(&budget).await.err().expect("refused");
    let text = e.to_string();
    assert!(text.contains("invalid_client"), "{text}");
    assert!(!text.contains(wrong) && !format!("{e:?}").contains(wrong));
    // A refusal is not tried again: not by the retries, not by the next caller.
    assert!(session.bearer(&budget).await.is_err());
    assert_eq!(s.sandbox.hr.oauth.requests(), 1);
}

#[tokio::test]
async fn a_secret_file_is_read_for_every_token_request() {
    let s = setup().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("client.secret");
    std::fs::write(&file, "wrong-secret\n").expect("write");
    let mut creds = s.credentials(ClientAuth::Basic, "");
    creds.client_secret = ClientSecret::File(file.clone());
    let endpoint = s.endpoint(creds, 0);
    let budget = Budget::unlimited();
    assert!(endpoint.request(&budget).await.is_err());
    // Rotated in place: the next request uses it, no restart.
    std::fs::write(&file, format!("{}\n", s.creds.hr_client_secret)).expect("write");
    let token = endpoint.request(&budget).await.expect("token");
    let shown = format!("{:?}", endpoint.credentials);
    assert!(!shown.contains(token.access.expose()), "{shown}");
    assert!(!shown.contains(&s.creds.hr_client_secret), "{shown}");
    std::fs::write(&file, "").expect("write");
    let e = endpoint.request(&budget).await.expect_err("empty file");
    assert!(
        e.to_string().contains("client_secret_file") && e.to_string().contains("is empty"),
        "{e}"
    );
}

#[tokio::test]
async fn endpoint_failures_are_told_apart_without_the_body() {
    let s = setup().await;
    let control = &s.sandbox.hr.control;
    let endpoint = s.endpoint(
        s.credentials(ClientAuth::Basic, &s.creds.hr_client_secret),
        0,
    );
    let budget = Budget::unlimited();
    control.inject(Fault::new(None, "/oauth/token", 503, "<html>down</html>"));
    let e = endpoint.request(&budget).await.expect_err("503");
    assert_eq!(e.failure(), AuthFailure::Unavailable, "{e}");
    assert!(e.to_string().contains("503"), "{e}");
    assert!(!e.to_string().contains("down"), "{e}");

    // With retries, the shared layer tries a 503 again, as it does for pages.
    control.inject(Fault::new(None, "/oauth/token", 503, "<html>down</html>"));
    let requests = s.sandbox.hr.oauth.requests();
    let retrying = s.endpoint(
        s.credentials(ClientAuth::Basic, &s.creds.hr_client_secret),
        2,
    );
    assert!(retrying.request(&budget).await.is_ok());
    assert_eq!(
        s.sandbox.hr.oauth.requests(),
        requests + 1,
        "the 503 never reached it"
    );
    assert_eq!(control.count_status(503), 2);

    // A 200 whose token is not a string: where parsing stopped, not the body.
    control.inject(Fault::new(
        None,
        "/oauth/token",
        200,
        r#"{"access_token": 7, "token_type": "Bearer", "leak": "tok-in-body-91"}"#,
    ));
    let e = endpoint.request(&budget).await.expect_err("malformed");
    assert!(matches!(e, OAuthError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("access_token"), "{e}");
    assert!(!e.to_string().contains("tok-in-body-91"), "{e}");

    // Nothing listening.
    let mut creds = s.credentials(ClientAuth::Basic, "x");
    creds.token_url = Url::parse("http://127.0.0.1:9/oauth/token").expect("url");
    let e = s
        .endpoint(creds, 0)
        .request(&budget)
        .await
        .expect_err("no server");
    assert_eq!(e.failure(), AuthFailure::Unavailable, "{e}");

    // And after all that, a token.
    assert!(endpoint.request(&budget).await.is_ok());
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed_with_the_secret() {
    let s = setup().await;
    s.sandbox.hr.control.inject(
        Fault::new(None, "/oauth/token", 307, "").header("location", "http://127.0.0.2:9/steal"),
    );
    let e = s
        .endpoint(
            s.credentials(ClientAuth::Post, &s.creds.hr_client_secret),
            0,
        )
        .request(&Budget::unlimited())
        .await
        .expect_err("redirect");
    assert!(matches!(e, OAuthError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("never follows a redirect"), "{e}");
}

#[test]
fn server_text_is_cleaned_of_the_secret() {
    let s = Secret::new("s3cr3t");
    assert_eq!(clean("bad secret s3cr3t", &s), "bad secret <redacted>");
    assert_eq!(clean(&"x".repeat(300), &s).chars().count(), 201);
}

#[test]
fn client_auth_is_basic_or_post() {
    let parse = |v: &str| serde_json::from_value::<ClientAuth>(serde_json::json!(v));
    assert_eq!(parse("basic").expect("basic"), ClientAuth::Basic);
    assert_eq!(parse("post").expect("post"), ClientAuth::Post);
    assert!(parse("body").is_err());
    assert_eq!(ClientAuth::default(), ClientAuth::Basic);
}
