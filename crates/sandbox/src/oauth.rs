//! A stateful OAuth 2.0 authorization server fake: the token endpoint of the client
//! credentials grant (RFC 6749 §4.4), as HR systems put in front of their APIs. The HR
//! fake serves it at `POST /hr/oauth/token` and accepts the tokens it issues.
//!
//! - The request is a form (`application/x-www-form-urlencoded`) with
//!   `grant_type=client_credentials` and an optional space-separated `scope`.
//! - Client authentication (§2.3.1): HTTP Basic with the form-urlencoded id and secret,
//!   or `client_id` + `client_secret` in the body; using both is `invalid_request`
//!   (§2.3: one method per request). `set_client_auth` can allow only one.
//! - Success: 200 `{"access_token","token_type":"Bearer","expires_in","scope"}` with
//!   `Cache-Control: no-store` (§5.1). Tokens live `set_lifetime` (default 3600 s).
//! - Errors (§5.2): `{"error","error_description"}`: 400 `invalid_request`,
//!   `unsupported_grant_type`, `invalid_scope`; 401 `invalid_client` (with
//!   `WWW-Authenticate: Basic`) for an unknown client, a wrong secret, no credentials,
//!   or a method not allowed.
//! - `check` tells a resource server whether a bearer token is valid, unknown or
//!   expired; `expire_all` ends every token issued so far (as a restart or key rotation
//!   of a real server does), so a client holding one meets a 401.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;

/// Which client authentication methods the server accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuth {
    #[default]
    Either,
    BasicOnly,
    BodyOnly,
}

/// Why a bearer token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Unknown,
    Expired,
}

struct Client {
    secret: String,
    scopes: Vec<String>,
}

#[derive(Default)]
struct State {
    clients: HashMap<String, Client>,
    issued: HashMap<String, Instant>,
    lifetime: Duration,
    client_auth: ClientAuth,
    requests: usize,
    granted: usize,
    serial: u64,
}

/// The server's handle: register clients, issue and check tokens, count requests.
#[derive(Clone)]
pub struct TokenServer {
    state: Arc<Mutex<State>>,
}

impl TokenServer {
    /// A server that knows one client, allowed `scopes`.
    pub fn new(client_id: &str, secret: &str, scopes: &[&str]) -> Self {
        let server = Self {
            state: Arc::new(Mutex::new(State {
                lifetime: Duration::from_secs(3600),
                ..State::default()
            })),
        };
        server.add_client(client_id, secret, scopes);
        server
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_client(&self, client_id: &str, secret: &str, scopes: &[&str]) {
        self.lock().clients.insert(
            client_id.to_string(),
            Client {
                secret: secret.to_string(),
                scopes: scopes.iter().map(|s| (*s).to_string()).collect(),
            },
        );
    }

    /// How long tokens issued from now on live (`expires_in`).
    pub fn set_lifetime(&self, lifetime: Duration) {
        self.lock().lifetime = lifetime;
    }

    pub fn set_client_auth(&self, auth: ClientAuth) {
        self.lock().client_auth = auth;
    }

    /// Every token issued so far expires now.
    pub fn expire_all(&self) {
        let now = Instant::now();
        for at in self.lock().issued.values_mut() {
            *at = now;
        }
    }

    /// Token requests received (granted or not).
    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    /// Tokens issued.
    pub fn granted(&self) -> usize {
        self.lock().granted
    }

    /// Whether `token` is one this server issued and still valid.
    ///
    /// # Errors
    /// Why not.
    pub fn check(&self, token: &str) -> Result<(), TokenProblem> {
        match self.lock().issued.get(token) {
            None => Err(TokenProblem::Unknown),
            Some(at) if Instant::now() >= *at => Err(TokenProblem::Expired),
            Some(_) => Ok(()),
        }
    }

    /// The token endpoint: `headers` and the raw form `body` of a POST.
    pub fn token_endpoint(&self, headers: &HeaderMap, body: &str) -> Response {
        let mut g = self.lock();
        g.requests += 1;
        match grant(&mut g, headers, body) {
            Ok(response) => response,
            Err((status, error, description)) => {
                let mut r = (
                    status,
                    Json(json!({"error": error, "error_description": description})),
                )
                    .into_response();
                if status == StatusCode::UNAUTHORIZED {
                    r.headers_mut().insert(
                        "www-authenticate",
                        HeaderValue::from_static("Basic realm=\"token\""),
                    );
                }
                no_store(&mut r);
                r
            }
        }
    }
}

type Refusal = (StatusCode, &'static str, String);

fn grant(g: &mut State, headers: &HeaderMap, body: &str) -> Result<Response, Refusal> {
    let bad = |d: &str| (StatusCode::BAD_REQUEST, "invalid_request", d.to_string());
    let client_error = |d: &str| (StatusCode::UNAUTHORIZED, "invalid_client", d.to_string());
    let form_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(bad("the request must be application/x-www-form-urlencoded"));
    }
    let mut form: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(body.as_bytes()) {
        // §3.2: parameters sent without a value are omitted; none may repeat.
        if form.insert(k.to_string(), v.to_string()).is_some() {
            return Err(bad(&format!("parameter {k} is repeated")));
        }
    }
    match form.get("grant_type").map(String::as_str) {
        None => return Err(bad("grant_type is missing")),
        Some("client_credentials") => {}
        Some(other) => {
            return Err((
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("grant_type {other} is not supported"),
            ));
        }
    }
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .map(|b64| {
            basic_credentials(b64.trim()).ok_or_else(|| client_error("malformed Basic credentials"))
        })
        .transpose()?;
    let in_body = match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
        (None, None) => None,
        (Some(_), None) => return Err(client_error("client_secret is missing")),
        (None, Some(_)) => return Err(bad("client_id is missing")),
    };
    let (id, secret) = match (basic, in_body, g.client_auth) {
        (Some(_), Some(_), _) => {
            return Err(bad(
                "more than one client authentication method (Basic and the body)",
            ));
        }
        (None, None, _) => return Err(client_error("client authentication is missing")),
        (Some(_), None, ClientAuth::BodyOnly) | (None, Some(_), ClientAuth::BasicOnly) => {
            return Err(client_error(
                "this client authentication method is not allowed",
            ));
        }
        (Some(c), None, _) | (None, Some(c), _) => c,
    };
    let Some(client) = g.clients.get(&id).filter(|c| c.secret == secret) else {
        return Err(client_error("client authentication failed"));
    };
    let scope = match form.get("scope") {
        None => client.scopes.join(" "),
        Some(asked) => {
            if let Some(unknown) = asked
                .split(' ')
                .find(|s| !s.is_empty() && !client.scopes.iter().any(|c| c == s))
            {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    format!("scope {unknown} is not allowed for this client"),
                ));
            }
            asked.clone()
        }
    };
    g.serial += 1;
    g.granted += 1;
    let token = format!("hr-at-{}-{:016x}", g.serial, rand::random::<u64>());
    let lifetime = g.lifetime;
    g.issued.insert(token.clone(), Instant::now() + lifetime);
    let mut r = Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
        "scope": scope,
    }))
    .into_response();
    no_store(&mut r);
    Ok(r)
}

fn no_store(r: &mut Response) {
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert("pragma", HeaderValue::from_static("no-cache"));
}

/// RFC 6749 §2.3.1: base64 of `urlencoded(id):urlencoded(secret)`.
fn basic_credentials(b64: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((decode(id), decode(secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_url_decoded() {
        // id `a b`, secret `p:w%` encoded as RFC 6749 asks, then base64.
        let b64 = base64::engine::general_purpose::STANDARD.encode("a+b:p%3Aw%25");
        assert_eq!(
            basic_credentials(&b64),
            Some(("a b".to_string(), "p:w%".to_string()))
        );
        assert_eq!(basic_credentials("%%%"), None);
    }
}
