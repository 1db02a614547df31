//! OAuth 2.0 client credentials (RFC 6749 §4.4) for a remote behind a token endpoint:
//! roster is the client, with a client id and secret of its own.
//!
//! `TokenEndpoint` is the token request on the wire, an `Authenticator` for
//! `session::Session`, so such a remote gets the one token cache every session has: a
//! token fetched once and reused until shortly before its `expires_in` (a tenth of its
//! life, at most five minutes), renewed by one task while the others wait, fetched again
//! once after a 401 (`Session::send`: a second 401 is the caller's answer), and the login
//! gate (`LOGINS`), so a misbehaving endpoint never sees a storm of token requests.
//! Client credentials have no refresh token (RFC 6749 §4.4.3): renewing is asking again.
//!
//! The request is built and its answer parsed by the `oauth2` crate (client
//! authentication by HTTP Basic with the RFC's form-urlencoding, or in the body; §5.2
//! error answers) and sent through `Http::fetch`, like a page: paced, capped, never
//! following a redirect to another origin (it carries the secret); transport failures,
//! 5xx and 429 are tried again under the retry policy. What still fails after that is
//! `Unavailable` (a later pass may succeed); a refusal (`invalid_client`, …) is never
//! tried again within the session's pause.
//!
//! Secrets: the client secret (inline, or a file read again for every token request so
//! a rotated secret is picked up) and the tokens are `Secret`s; no error, log line or
//! `Debug` output holds either, and text the server sends back is cleaned of the secret
//! and cut short before it is shown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ::oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenType};
use ::oauth2::{AuthType, ClientId, RequestTokenError, Scope, TokenResponse, TokenUrl};
use async_trait::async_trait;
use reqwest::StatusCode;
use serde::Deserialize;
use url::Url;

use super::session::{AuthError, AuthFailure, Authenticator, LoginLimit, Session, Token};
use super::{BodyCap, Error, Http, shown};
use crate::budget::Budget;
use crate::config::Secret;

/// The flow-control route of token requests.
const ROUTE: &str = "POST token";

/// At most this many token requests a minute. A token normally serves a whole pass;
/// short-lived tokens and a 401 now and then stay far below it.
pub const LOGINS: LoginLimit = LoginLimit {
    attempts: 20,
    window: Duration::from_secs(60),
    block: Duration::from_secs(60),
};

/// Without `expires_in` (RFC 6749 makes it optional) a token is used until the API
/// refuses it, and at most this long.
const UNSAID_LIFETIME: Duration = Duration::from_secs(3600);

/// How the client proves who it is to the token endpoint (RFC 6749 §2.3.1).
#[derive(Deserialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// `Authorization: Basic` with the form-urlencoded id and secret. Every server must
    /// support it.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Post,
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
            Self::File(path) => Secret::from_file(path)
                .map_err(|e| OAuthError::Secret(format!("client_secret_file: {e}"))),
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
    /// No answer (transport, timeout, the pass's budget), or still a 5xx or 429 after
    /// the retries: a later pass may succeed.
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
    /// The login gate allows no token request now.
    #[error(
        "no new token requested: {attempts} token requests in {window_secs} s is the most \
         roster makes; the next is allowed in {wait_secs} s{}",
        .last.as_ref().map(|l| format!(" (the last failed: {l})")).unwrap_or_default()
    )]
    Limited {
        attempts: usize,
        window_secs: u64,
        wait_secs: u64,
        last: Option<String>,
    },
}

impl AuthError for OAuthError {
    fn failure(&self) -> AuthFailure {
        match self {
            Self::Refused { .. } => AuthFailure::Refused,
            Self::Unavailable { .. }
            | Self::Malformed { .. }
            | Self::Secret(_)
            | Self::Limited { .. } => AuthFailure::Unavailable,
        }
    }

    fn login_limited(limit: LoginLimit, wait: Duration, last: Option<String>) -> Self {
        Self::Limited {
            attempts: limit.attempts,
            window_secs: limit.window.as_secs(),
            wait_secs: wait.as_secs().max(1),
            last,
        }
    }
}

/// The token endpoint of one client, on its remote's `Http`.
pub struct TokenEndpoint {
    http: Arc<Http>,
    credentials: ClientCredentials,
    /// Tries of a token request that failed for want of an answer (as for pages).
    retries: u32,
}

impl TokenEndpoint {
    pub fn new(http: Arc<Http>, credentials: ClientCredentials, retries: u32) -> Self {
        Self {
            http,
            credentials,
            retries,
        }
    }

    /// The session that holds this client's token, its login gate in the remote's flow.
    pub fn into_session(self) -> Session<Self> {
        let flow = Arc::clone(self.http.flow());
        let name = self.http.name().to_string();
        Session::new(&name, self, LOGINS, flow)
    }

    /// The token endpoint, as shown in messages.
    pub fn url(&self) -> String {
        shown(&self.credentials.token_url)
    }

    async fn request(&self, budget: &Budget) -> Result<Token, OAuthError> {
        let c = &self.credentials;
        let url = self.url();
        let secret = c.client_secret.read()?;
        let client = BasicClient::new(ClientId::new(c.client_id.clone()))
            .set_client_secret(::oauth2::ClientSecret::new(secret.expose().to_string()))
            .set_auth_type(match c.client_auth {
                ClientAuth::Basic => AuthType::BasicAuth,
                ClientAuth::Post => AuthType::RequestBody,
            })
            .set_token_uri(TokenUrl::from_url(c.token_url.clone()));
        // The crate wants a client whose futures borrow nothing (they must be `Send`
        // for any lifetime): each call gets its own handles.
        let send = |request: ::oauth2::HttpRequest| {
            exchange(
                Arc::clone(&self.http),
                budget.clone(),
                self.retries,
                request,
            )
        };
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
        if token.is_empty() || reqwest::header::HeaderValue::from_str(token).is_err() {
            return Err(OAuthError::Malformed {
                url,
                message: "access_token is empty or not usable in a header".into(),
            });
        }
        Ok(Token {
            access: Secret::new(token.clone()),
            refresh: None,
            lifetime: response.expires_in().unwrap_or(UNSAID_LIFETIME),
        })
    }
}

/// One token request as the crate built it, through `Http::fetch`; the answer as the
/// crate reads it.
async fn exchange(
    http: Arc<Http>,
    budget: Budget,
    retries: u32,
    request: ::oauth2::HttpRequest,
) -> Result<::oauth2::HttpResponse, Exchange> {
    let (parts, body) = request.into_parts();
    let url = Url::parse(&parts.uri.to_string())
        .map_err(|e| Exchange::Call(Error::Malformed(format!("token URL: {e}"))))?;
    let reply = http
        .fetch(&budget, ROUTE, BodyCap::READ, Some(retries), || {
            http.request(parts.method.clone(), url.clone())
                .headers(parts.headers.clone())
                .body(body.clone())
        })
        .await
        .map_err(Exchange::Call)?;
    if reply.status.is_server_error() || reply.status == StatusCode::TOO_MANY_REQUESTS {
        return Err(Exchange::Unavailable(reply.status));
    }
    let mut out = ::oauth2::HttpResponse::new(reply.body.into_bytes());
    *out.status_mut() = reply.status;
    *out.headers_mut() = reply.headers;
    Ok(out)
}

#[async_trait]
impl Authenticator for TokenEndpoint {
    type Error = OAuthError;

    async fn login(&self, budget: &Budget) -> Result<Token, OAuthError> {
        self.request(budget).await
    }

    /// Never called (no refresh token is kept); asking again is the renewal.
    async fn refresh(
        &self,
        budget: &Budget,
        _access: &Secret,
        _refresh: &Secret,
    ) -> Result<Token, OAuthError> {
        self.request(budget).await
    }
}

/// The HTTP answer the `oauth2` crate reads, or why there is none worth reading.
#[derive(Debug, thiserror::Error)]
enum Exchange {
    #[error(transparent)]
    Call(Error),
    /// 5xx or 429 after the retries: the body is a proxy's page, not an RFC 6749 error.
    #[error("HTTP {0}")]
    Unavailable(StatusCode),
}

type CrateError =
    RequestTokenError<Exchange, ::oauth2::StandardErrorResponse<BasicErrorResponseType>>;

/// The crate's error in roster's words, with nothing of the secret, the token or the
/// raw body in it.
fn describe(e: CrateError, url: &str, secret: &Secret) -> OAuthError {
    let url = url.to_string();
    match e {
        RequestTokenError::Request(Exchange::Call(
            e @ (Error::Transport { .. } | Error::NotSent(_)),
        )) => OAuthError::Unavailable {
            url,
            message: e.to_string(),
        },
        RequestTokenError::Request(Exchange::Unavailable(status)) => OAuthError::Unavailable {
            url,
            message: format!("HTTP {status}"),
        },
        // A redirect to another host, a reply over its cap: not a token answer.
        RequestTokenError::Request(Exchange::Call(e)) => OAuthError::Malformed {
            url,
            message: e.to_string(),
        },
        RequestTokenError::ServerResponse(r) => {
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
                url,
                code: clean(r.error().as_ref(), secret),
                detail: r
                    .error_description()
                    .map(|d| format!(": {}", clean(d, secret)))
                    .unwrap_or_default(),
                hint,
            }
        }
        // The body may hold a token: only where parsing stopped is shown.
        RequestTokenError::Parse(e, _body) => OAuthError::Malformed {
            url,
            message: format!("unexpected JSON at `{}`", e.path()),
        },
        RequestTokenError::Other(message) => OAuthError::Malformed {
            url,
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

#[cfg(test)]
mod tests;
