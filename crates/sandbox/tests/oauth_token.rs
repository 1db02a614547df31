//! The HR fake's OAuth2 token endpoint (RFC 6749 §4.4, §5) and the HR API's use of its
//! tokens, over HTTP.

use std::time::Duration;

use base64::Engine;
use roster_sandbox::oauth::ClientAuth;
use roster_sandbox::{Credentials, Sandbox};
use serde_json::Value;

const FORM: &str = "application/x-www-form-urlencoded";

struct Fake {
    sandbox: Sandbox,
    http: reqwest::Client,
    creds: Credentials,
}

impl Fake {
    async fn start() -> Self {
        let creds = Credentials::default();
        Self {
            sandbox: Sandbox::start(creds.clone()).await.expect("sandbox"),
            http: reqwest::Client::new(),
            creds,
        }
    }

    fn basic(&self, id: &str, secret: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    }

    async fn token(
        &self,
        authorization: Option<String>,
        body: &str,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut r = self
            .http
            .post(format!("{}/oauth/token", self.sandbox.url("hr")))
            .header("content-type", FORM)
            .body(body.to_string());
        if let Some(a) = authorization {
            r = r.header("authorization", a);
        }
        let r = r.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, r.json().await.unwrap_or(Value::Null), headers)
    }

    async fn employees(&self, token: &str) -> (u16, reqwest::header::HeaderMap) {
        let r = self
            .http
            .get(format!("{}/v1/employees", self.sandbox.url("hr")))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        (r.status().as_u16(), r.headers().clone())
    }
}

#[tokio::test]
async fn basic_or_body_client_auth_gets_a_bearer_token_the_api_accepts() {
    let f = Fake::start().await;
    let (id, secret) = (&f.creds.hr_client_id, &f.creds.hr_client_secret);
    let (status, body, headers) = f
        .token(
            Some(f.basic(id, secret)),
            "grant_type=client_credentials&scope=employees%3Aread",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "employees:read");
    assert_eq!(headers["cache-control"], "no-store");
    let token = body["access_token"].as_str().expect("token").to_string();
    assert_eq!(f.employees(&token).await.0, 200);

    let (status, body, _) = f
        .token(
            None,
            &format!("grant_type=client_credentials&client_id={id}&client_secret={secret}"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["scope"], "employees:read employees:write",
        "the default"
    );
    assert_ne!(body["access_token"].as_str(), Some(token.as_str()));
    assert_eq!(f.sandbox.hr.oauth.granted(), 2);
}

#[tokio::test]
async fn rfc6749_errors() {
    let f = Fake::start().await;
    let (id, secret) = (&f.creds.hr_client_id, &f.creds.hr_client_secret);
    let grant = "grant_type=client_credentials";
    let cases = [
        (
            Some(f.basic(id, "wrong")),
            grant.to_string(),
            401,
            "invalid_client",
        ),
        (None, grant.to_string(), 401, "invalid_client"),
        (
            Some(f.basic("nobody", secret)),
            grant.to_string(),
            401,
            "invalid_client",
        ),
        (
            Some(f.basic(id, secret)),
            format!("{grant}&client_id={id}&client_secret={secret}"),
            400,
            "invalid_request",
        ),
        (
            Some(f.basic(id, secret)),
            "grant_type=password".into(),
            400,
            "unsupported_grant_type",
        ),
        (
            Some(f.basic(id, secret)),
            String::new(),
            400,
            "invalid_request",
        ),
        (
            Some(f.basic(id, secret)),
            format!("{grant}&scope=root"),
            400,
            "invalid_scope",
        ),
    ];
    for (auth, body, want_status, want_error) in cases {
        let (status, answer, headers) = f.token(auth, &body).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (want_status, Some(want_error)),
            "{body}: {answer}"
        );
        assert!(answer["error_description"].is_string());
        if status == 401 {
            assert!(headers.contains_key("www-authenticate"));
        }
    }
    f.sandbox.hr.oauth.set_client_auth(ClientAuth::BasicOnly);
    let (status, answer, _) = f
        .token(
            None,
            &format!("{grant}&client_id={id}&client_secret={secret}"),
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert_eq!(f.sandbox.hr.oauth.granted(), 0);
    assert_eq!(f.sandbox.hr.oauth.requests(), 8);
}

#[tokio::test]
async fn expired_and_unknown_tokens_get_401() {
    let f = Fake::start().await;
    f.sandbox.hr.oauth.set_lifetime(Duration::from_secs(1));
    let (_, body, _) = f
        .token(
            Some(f.basic(&f.creds.hr_client_id, &f.creds.hr_client_secret)),
            "grant_type=client_credentials",
        )
        .await;
    let token = body["access_token"].as_str().expect("token").to_string();
    assert_eq!(body["expires_in"], 1);
    assert_eq!(f.employees(&token).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, headers) = f.employees(&token).await;
    assert_eq!(status, 401);
    let challenge = headers["www-authenticate"].to_str().expect("text");
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert_eq!(f.employees("made-up").await.0, 401);
    // The static token still works.
    assert_eq!(f.employees(&f.creds.hr_token).await.0, 200);
}
