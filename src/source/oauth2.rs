//! OAuth 2.0 client credentials (RFC 6749 §4.4) for sources that read an API behind a
//! token endpoint: roster is the client, with a client id and secret of its own.
//!
//! A token is fetched once and reused for every request until shortly before its
//! `expires_in` (the margin is a tenth of its life, at most a minute), then fetched
//! again. When the API answers 401 to a request that carried it, the caller reports it
//! (`rejected`) and the next `token` call fetches a new one; `send` does that for one
//! request, retrying it once. A second 401 is the caller's failure to report.
//!
//! The token request is built and its answer parsed by the `oauth2` crate (client
//! authentication by HTTP Basic with the RFC's form-urlencoding, or in the body; RFC 6749
//! §5.2 error answers), sent with the caller's `reqwest::Client`, so that the request
//! follows the caller's timeouts, proxy and redirect rules. That client must not follow
//! redirects to another host: the request carries the secret. An answer from another
//! origin than `token_url` is refused.
//!
//! Secrets: the client secret (inline or a file read again for every token request,
//! so a rotated secret is picked up) and the tokens are `Secret`s; no error, log line or
//! `Debug` output contains either. Text the server sends back is cleaned of the secret
//! before it is shown.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenType};
use ::oauth2::{AuthType, ClientId, RequestTokenError, Scope, TokenResponse, TokenUrl};
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::config::Secret;

/// How the client proves who it is to the token endpoint (RFC 6749 §2.3.1).
#[derive(Deserialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// `Authorization: Basic` with the form-urlencoded id and secret. Every server must
    /// support it.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Body,
}

/// Where the client secret is: given inline, or in a file read for each token request.
#[derive(Debug, Clone)]
pub enum ClientSecret {
    Inline(Secret),
    File(PathBuf),
}

impl ClientSecret {
    fn read(&self) -> Result<Secret, OAuthError> {
        match self {
            Self::Inline(s) => Ok(s.clone()),
            Self::File(path) => match Secret::from_file(path) {
                Ok(s) if !s.expose().is_empty() => Ok(s),
                Ok(_) => Err(OAuthError::Secret(format!(
                    "client_secret_file {} is empty",
                    path.display()
                ))),
                Err(e) => Err(OAuthError::Secret(format!(
                    "cannot read client_secret_file {}: {e}",
                    path.display()
                ))),
            },
        }
    }
}

/// What the token endpoint needs to know.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: ClientSecret,
    /// Sent space-separated as `scope`; none: the server's default.
    pub scopes: Vec<String>,
    pub client_auth: ClientAuth,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The request did not get an HTTP answer, or got a 5xx or 429: may pass.
    #[error("token request to {url} failed: {message}")]
    Unavailable { url: String, message: String },
    /// RFC 6749 §5.2: the server refused the client or the request.
    #[error("the token endpoint {url} refused the request: {code}{detail}{hint}")]
    Refused {
        url: String,
        /// The RFC's error code (`invalid_client`, `invalid_scope`, …).
        code: String,
        /// `: ` and the server's description, if any.
        detail: String,
        hint: &'static str,
    },
    /// An answer that is not a usable token response.
    #[error("the token endpoint {url} answered with no usable token: {message}")]
    Malformed { url: String, message: String },
    /// The client secret could not be read.
    #[error("{0}")]
    Secret(String),
}

impl OAuthError {
    /// Whether trying again later may succeed (transport failures, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// A token to send, and which fetch it came from.
#[derive(Debug, Clone)]
pub struct AccessToken {
    value: Secret,
    serial: u64,
}

impl AccessToken {
    /// `Bearer <token>`, marked sensitive (never shown by the HTTP stack).
    pub fn header_value(&self) -> Option<HeaderValue> {
        let mut v = HeaderValue::from_str(&format!("Bearer {}", self.value.expose())).ok()?;
        v.set_sensitive(true);
        Some(v)
    }
}

#[derive(Debug)]
struct Cached {
    token: AccessToken,
    /// When to fetch a new one; `None`: the server gave no lifetime, so until a 401.
    renew_at: Option<Instant>,
}

/// Holds the current token of one client; shared by every request of a source.
#[derive(Debug)]
pub struct TokenCache {
    credentials: ClientCredentials,
    current: Mutex<Option<Cached>>,
    fetched: AtomicU64,
}

/// `send`'s failure: getting a token, or sending the request.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Token(#[from] OAuthError),
    #[error(transparent)]
    Request(#[from] reqwest::Error),
}

impl TokenCache {
    pub fn new(credentials: ClientCredentials) -> Self {
        Self {
            credentials,
            current: Mutex::new(None),
            fetched: AtomicU64::new(0),
        }
    }

    /// The token endpoint, for messages.
    pub fn token_url(&self) -> &Url {
        &self.credentials.token_url
    }

    /// How many tokens were fetched so far.
    pub fn fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    /// The current token; fetched first when there is none, or it is about to expire.
    /// Concurrent callers wait for one fetch.
    ///
    /// # Errors
    /// The token could not be had (see `OAuthError`).
    pub async fn token(&self, http: &reqwest::Client) -> Result<AccessToken, OAuthError> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref()
            && c.renew_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok(c.token.clone());
        }
        *current = None;
        let (value, lifetime) = self.fetch(http).await?;
        let serial = self.fetched.fetch_add(1, Ordering::Relaxed) + 1;
        let token = AccessToken { value, serial };
        *current = Some(Cached {
            token: token.clone(),
            renew_at: lifetime.map(|life| Instant::now() + life - renew_margin(life)),
        });
        Ok(token)
    }

    /// The API answered 401 to a request with `token`: the next `token` call fetches a
    /// new one, unless another request already replaced it.
    pub async fn rejected(&self, token: &AccessToken) {
        let mut current = self.current.lock().await;
        if current
            .as_ref()
            .is_some_and(|c| c.token.serial == token.serial)
        {
            *current = None;
        }
    }

    /// Sends the request `build` makes, with the token as `Authorization: Bearer`. On a
    /// 401 the token is dropped, a new one fetched and the request sent once more; that
    /// second answer is returned whatever it is.
    ///
    /// # Errors
    /// No token could be had, or the request got no HTTP answer.
    pub async fn send(
        &self,
        http: &reqwest::Client,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SendError> {
        let mut retried = false;
        loop {
            let token = self.token(http).await?;
            let mut request = build();
            if let Some(v) = token.header_value() {
                request = request.header(reqwest::header::AUTHORIZATION, v);
            }
            let response = request.send().await?;
            if response.status() != StatusCode::UNAUTHORIZED || retried {
                return Ok(response);
            }
            tracing::info!(token_url = %shown(self.token_url()), "The API refused the access token (401); fetching a new one.");
            self.rejected(&token).await;
            retried = true;
        }
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
    ) -> Result<(Secret, Option<Duration>), OAuthError> {
        let c = &self.credentials;
        let url = shown(&c.token_url);
        let secret = c.client_secret.read()?;
        let client = BasicClient::new(ClientId::new(c.client_id.clone()))
            .set_client_secret(::oauth2::ClientSecret::new(secret.expose().to_string()))
            .set_auth_type(match c.client_auth {
                ClientAuth::Basic => AuthType::BasicAuth,
                ClientAuth::Body => AuthType::RequestBody,
            })
            .set_token_uri(TokenUrl::from_url(c.token_url.clone()));
        let origin = c.token_url.origin();
        let send = |request: ::oauth2::HttpRequest| exchange(http, request, origin.clone());
        let answer = client
            .exchange_client_credentials()
            .add_scopes(c.scopes.iter().cloned().map(Scope::new))
            .request_async(&send)
            .await;
        let response = answer.map_err(|e| describe(e, &url, &secret))?;
        if *response.token_type() != BasicTokenType::Bearer {
            return Err(OAuthError::Malformed {
                url,
                message: format!(
                    "token_type `{}` is not Bearer",
                    clean(response.token_type().as_ref(), &secret)
                ),
            });
        }
        let token = response.access_token().secret();
        if token.is_empty() {
            return Err(OAuthError::Malformed {
                url,
                message: "access_token is empty".into(),
            });
        }
        Ok((Secret::new(token.clone()), response.expires_in()))
    }
}

/// How long before its expiry a token is replaced: a tenth of its life, at most a
/// minute, so a request never leaves with a token about to lapse on the way.
fn renew_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(60))
}

/// The HTTP answer the `oauth2` crate reads, or why there is none worth reading.
#[derive(Debug, thiserror::Error)]
enum Exchange {
    #[error("{0}")]
    Transport(String),
    /// 5xx or 429: the body is a proxy's page, not an RFC 6749 error.
    #[error("HTTP {0}")]
    Unavailable(StatusCode),
    #[error("the answer came from {0}, not the token endpoint's origin (a redirect?)")]
    OtherOrigin(String),
}

async fn exchange(
    http: &reqwest::Client,
    request: ::oauth2::HttpRequest,
    origin: url::Origin,
) -> Result<::oauth2::HttpResponse, Exchange> {
    let (parts, body) = request.into_parts();
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| Exchange::Transport(transport(&e)))?;
    if response.url().origin() != origin {
        return Err(Exchange::OtherOrigin(shown(response.url())));
    }
    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(Exchange::Unavailable(status));
    }
    let headers = response.headers().clone();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| Exchange::Transport(transport(&e)))?;
    let mut out = ::oauth2::HttpResponse::new(bytes.to_vec());
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

fn transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    let mut msg = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

type CrateError =
    RequestTokenError<Exchange, ::oauth2::StandardErrorResponse<BasicErrorResponseType>>;

/// The crate's error in roster's words, with nothing of the secret, the token or the
/// raw body in it.
fn describe(e: CrateError, url: &str, secret: &Secret) -> OAuthError {
    match e {
        RequestTokenError::Request(Exchange::Transport(message)) => OAuthError::Unavailable {
            url: url.to_string(),
            message,
        },
        RequestTokenError::Request(Exchange::Unavailable(status)) => OAuthError::Unavailable {
            url: url.to_string(),
            message: format!("HTTP {status}"),
        },
        RequestTokenError::Request(e @ Exchange::OtherOrigin(_)) => OAuthError::Malformed {
            url: url.to_string(),
            message: e.to_string(),
        },
        RequestTokenError::ServerResponse(r) => {
            let code = r.error().as_ref().to_string();
            let hint = match r.error() {
                BasicErrorResponseType::InvalidClient => {
                    " (check client_id, client_secret and client_auth)"
                }
                BasicErrorResponseType::InvalidScope => " (check scope)",
                BasicErrorResponseType::UnauthorizedClient => {
                    " (the client may not use the client credentials grant)"
                }
                _ => "",
            };
            OAuthError::Refused {
                url: url.to_string(),
                code: clean(&code, secret),
                detail: r
                    .error_description()
                    .map(|d| format!(": {}", clean(d, secret)))
                    .unwrap_or_default(),
                hint,
            }
        }
        // The body may hold a token: only where parsing stopped is shown.
        RequestTokenError::Parse(e, _body) => OAuthError::Malformed {
            url: url.to_string(),
            message: format!("unexpected JSON at `{}`", e.path()),
        },
        RequestTokenError::Other(message) => OAuthError::Malformed {
            url: url.to_string(),
            message: clean(&message, secret),
        },
    }
}

/// Server text for a message: the secret blanked out, cut short.
fn clean(text: &str, secret: &Secret) -> String {
    let text = if secret.expose().is_empty() {
        text.to_string()
    } else {
        text.replace(secret.expose(), "<redacted>")
    };
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// A URL for messages: no credentials, no query.
fn shown(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_sandbox::oauth::ClientAuth as ServerAuth;
    use roster_sandbox::{Credentials, Fault, Sandbox};

    struct Setup {
        sandbox: Sandbox,
        http: reqwest::Client,
        creds: Credentials,
    }

    async fn setup() -> Setup {
        let creds = Credentials::default();
        let sandbox = Sandbox::start(creds.clone()).await.expect("sandbox");
        sandbox
            .hr
            .set_employees(vec![serde_json::json!({"employeeId": "E1"})]);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Setup {
            sandbox,
            http,
            creds,
        }
    }

    impl Setup {
        fn credentials(&self, auth: ClientAuth, secret: &str) -> ClientCredentials {
            ClientCredentials {
                token_url: Url::parse(&format!("{}/oauth/token", self.sandbox.url("hr")))
                    .expect("url"),
                client_id: self.creds.hr_client_id.clone(),
                client_secret: ClientSecret::Inline(Secret::new(secret)),
                scopes: vec!["employees:read".into()],
                client_auth: auth,
            }
        }

        fn cache(&self) -> TokenCache {
            TokenCache::new(self.credentials(ClientAuth::Basic, &self.creds.hr_client_secret))
        }

        /// One page of the HR API through `send`; its status.
        async fn page(&self, cache: &TokenCache) -> u16 {
            let url = format!("{}/v2/employees", self.sandbox.url("hr"));
            cache
                .send(&self.http, || self.http.get(&url))
                .await
                .expect("sent")
                .status()
                .as_u16()
        }
    }

    #[tokio::test]
    async fn one_token_serves_every_page_until_it_nears_expiry() {
        let s = setup().await;
        let cache = s.cache();
        for _ in 0..3 {
            assert_eq!(s.page(&cache).await, 200);
        }
        assert_eq!(s.sandbox.hr.oauth.granted(), 1, "fetched once, reused");
        assert_eq!(cache.fetched(), 1);

        // A short-lived token is replaced a tenth of its life before it ends, without
        // waiting for the API to refuse it.
        let s = setup().await;
        s.sandbox.hr.oauth.set_lifetime(Duration::from_secs(2));
        let cache = s.cache();
        assert_eq!(s.page(&cache).await, 200);
        assert_eq!(s.page(&cache).await, 200);
        assert_eq!(s.sandbox.hr.oauth.granted(), 1);
        tokio::time::sleep(Duration::from_millis(1850)).await;
        assert_eq!(s.page(&cache).await, 200);
        assert_eq!(s.sandbox.hr.oauth.granted(), 2, "renewed before expiry");
        assert_eq!(s.sandbox.hr.control.count_status(401), 0);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let s = setup().await;
        let cache = s.cache();
        let tokens = futures::future::join_all((0..8).map(|_| cache.token(&s.http))).await;
        assert!(tokens.iter().all(Result::is_ok));
        assert_eq!(s.sandbox.hr.oauth.granted(), 1);
    }

    #[tokio::test]
    async fn a_401_fetches_a_new_token_once() {
        let s = setup().await;
        let cache = s.cache();
        assert_eq!(s.page(&cache).await, 200);
        // The server ends every token (a restart, a key rotation): one 401, a new token,
        // the request again.
        s.sandbox.hr.oauth.expire_all();
        assert_eq!(s.page(&cache).await, 200);
        assert_eq!(s.sandbox.hr.oauth.granted(), 2);
        assert_eq!(s.sandbox.hr.control.count_status(401), 1);

        // An API that keeps refusing: one new token, one more try, then the 401 is the
        // caller's answer.
        s.sandbox.hr.control.clear_calls();
        s.sandbox
            .hr
            .control
            .inject(Fault::new(None, "/v2/employees", 401, r#"{"error":"unauthorized"}"#).times(5));
        assert_eq!(s.page(&cache).await, 401);
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

    #[tokio::test]
    async fn a_stale_rejection_keeps_the_newer_token() {
        let s = setup().await;
        let cache = s.cache();
        let old = cache.token(&s.http).await.expect("token");
        cache.rejected(&old).await;
        let new = cache.token(&s.http).await.expect("token");
        // A request that left with the old token reports its 401 late.
        cache.rejected(&old).await;
        let same = cache.token(&s.http).await.expect("token");
        assert_eq!(same.serial, new.serial);
        assert_eq!(s.sandbox.hr.oauth.granted(), 2);
    }

    #[tokio::test]
    async fn client_authentication_in_the_body_and_scopes() {
        let s = setup().await;
        s.sandbox.hr.oauth.set_client_auth(ServerAuth::BodyOnly);
        let body = TokenCache::new(s.credentials(ClientAuth::Body, &s.creds.hr_client_secret));
        assert_eq!(s.page(&body).await, 200);
        // The server takes only the body: Basic is refused, and the message says where
        // to look.
        let basic = s.cache();
        let e = basic.token(&s.http).await.expect_err("refused");
        assert!(
            matches!(&e, OAuthError::Refused { code, .. } if code == "invalid_client"),
            "{e}"
        );
        assert!(e.to_string().contains("client_auth"), "{e}");
        assert!(!e.is_transient());

        s.sandbox.hr.oauth.set_client_auth(ServerAuth::Either);
        let mut creds = s.credentials(ClientAuth::Basic, &s.creds.hr_client_secret);
        creds.scopes = vec!["employees:read".into(), "payroll:admin".into()];
        let e = TokenCache::new(creds)
            .token(&s.http)
            .await
            .expect_err("scope");
        assert!(
            matches!(&e, OAuthError::Refused { code, .. } if code == "invalid_scope"),
            "{e}"
        );
        assert!(e.to_string().contains("payroll:admin"), "{e}");
    }

    #[tokio::test]
    async fn a_wrong_secret_is_refused_and_never_shown() {
        let s = setup().await;
        let wrong = "wrong-secret-Zk71";
        let e = TokenCache::new(s.credentials(ClientAuth::Basic, wrong))
            .token(&s.http)
            .await
            .expect_err("refused");
        let text = e.to_string();
        assert!(text.contains("invalid_client"), "{text}");
        assert!(!text.contains(wrong) && !format!("{e:?}").contains(wrong));

        // A secret file is read again for every token request: fixing it needs no
        // restart.
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("client.secret");
        std::fs::write(&file, format!("{wrong}\n")).expect("write");
        let mut creds = s.credentials(ClientAuth::Basic, "");
        creds.client_secret = ClientSecret::File(file.clone());
        let cache = TokenCache::new(creds);
        assert!(cache.token(&s.http).await.is_err());
        std::fs::write(&file, format!("{}\n", s.creds.hr_client_secret)).expect("write");
        let token = cache.token(&s.http).await.expect("token");
        let shown = format!("{cache:?} {token:?}");
        assert!(!shown.contains(token.value.expose()), "{shown}");
        assert!(!shown.contains(&s.creds.hr_client_secret), "{shown}");
        std::fs::write(&file, "").expect("write");
        cache.rejected(&token).await;
        let e = cache.token(&s.http).await.expect_err("empty file");
        assert!(e.to_string().contains("is empty"), "{e}");
    }

    #[tokio::test]
    async fn endpoint_failures_are_told_apart_without_the_body() {
        let s = setup().await;
        let cache = s.cache();
        let control = &s.sandbox.hr.control;
        control.inject(Fault::new(None, "/oauth/token", 503, "<html>down</html>"));
        let e = cache.token(&s.http).await.expect_err("503");
        assert!(e.is_transient(), "{e}");
        assert!(e.to_string().contains("503"), "{e}");

        // A 200 whose token is not a string: where parsing stopped, not the body.
        control.inject(Fault::new(
            None,
            "/oauth/token",
            200,
            r#"{"access_token": 7, "token_type": "Bearer", "leak": "tok-in-body-91"}"#,
        ));
        let e = cache.token(&s.http).await.expect_err("malformed");
        assert!(matches!(e, OAuthError::Malformed { .. }), "{e}");
        assert!(e.to_string().contains("access_token"), "{e}");
        assert!(!e.to_string().contains("tok-in-body-91"), "{e}");

        // Nothing listening.
        let mut creds = s.credentials(ClientAuth::Basic, "x");
        creds.token_url = Url::parse("http://127.0.0.1:9/oauth/token").expect("url");
        let e = TokenCache::new(creds)
            .token(&s.http)
            .await
            .expect_err("no server");
        assert!(e.is_transient(), "{e}");

        // And after all that, a token.
        assert!(cache.token(&s.http).await.is_ok());
    }

    #[test]
    fn the_renewal_margin_is_a_tenth_at_most_a_minute() {
        assert_eq!(
            renew_margin(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            renew_margin(Duration::from_secs(300)),
            Duration::from_secs(30)
        );
        assert_eq!(
            renew_margin(Duration::from_secs(1)),
            Duration::from_millis(100)
        );
        assert_eq!(renew_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn server_text_is_cleaned_of_the_secret() {
        let s = Secret::new("s3cr3t");
        assert_eq!(clean("bad secret s3cr3t", &s), "bad secret <redacted>");
        assert_eq!(clean(&"x".repeat(300), &s).chars().count(), 201);
    }
}
