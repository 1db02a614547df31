//! The admin login and token refresh on Damoov's wire; caching, single-flight renewal
//! and login limits are the shared session's (`http::session`).

#[allow(clippy::wildcard_imports)]
use super::*;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

use super::VendorError;
use crate::budget::Budget;
use crate::config::Secret;
use crate::http::session::{Authenticator, Token};
use crate::http::{self, BodyCap, Http, Reply};

/// The admin login and refresh on the wire.
pub(super) struct AdminLogin {
    pub(super) http: Arc<Http>,
    pub(super) base: Url,
    pub(super) email: Secret,
    pub(super) password: Secret,
}

#[async_trait]
impl Authenticator for AdminLogin {
    type Error = VendorError;

    async fn login(&self, budget: &Budget) -> Result<Token, VendorError> {
        let login_fields = json!({ "email": self.email.expose() }).to_string();
        let req = self
            .http
            .request(Method::POST, http::endpoint(&self.base, "/v1/Auth/Login"))
            .json(&json!({ "LoginFields": login_fields, "Password": self.password.expose() }));
        let reply = self
            .http
            .send_unpaced(budget, BodyCap::READ, req)
            .await
            .map_err(|e| during(e, "admin login"))?;
        token_from(&reply, "admin login")
    }

    async fn refresh(
        &self,
        budget: &Budget,
        access: &Secret,
        refresh: &Secret,
    ) -> Result<Token, VendorError> {
        let req = self
            .http
            .request(
                Method::POST,
                http::endpoint(&self.base, "/v1/Auth/RefreshToken"),
            )
            .json(&json!({ "AccessToken": access.expose(), "RefreshToken": refresh.expose() }));
        let reply = self
            .http
            .send_unpaced(budget, BodyCap::READ, req)
            .await
            .map_err(|e| during(e, "token refresh"))?;
        token_from(&reply, "token refresh")
    }
}

/// A failed login or refresh call says which it was (a hung login "timed out" at the
/// admin login, not at this person's call).
fn during(e: http::Error, what: &str) -> VendorError {
    match VendorError::from(e) {
        VendorError::Transport(detail) => VendorError::Transport(format!("{what}: {detail}")),
        other => other,
    }
}

/// A login or refresh reply: the JWT, its lifetime and the (new) refresh token.
pub(super) fn token_from(reply: &Reply, what: &str) -> Result<Token, VendorError> {
    if !reply.is_success() {
        let status = reply.status.as_u16();
        let detail = envelope_message(&reply.body).unwrap_or_else(|| reply.snippet());
        return Err(match reply.status {
            s if s.is_server_error() => VendorError::Server {
                status,
                detail: format!("{what}: {detail}"),
            },
            StatusCode::TOO_MANY_REQUESTS => VendorError::RateLimited {
                retry_after: http::headers::retry_after(
                    &reply.headers,
                    std::time::SystemTime::now(),
                ),
            },
            // Any other refusal of a login is a credentials problem.
            _ => VendorError::Auth {
                status,
                detail: format!("{what} refused: {detail}"),
            },
        });
    }
    let body = reply.json()?;
    let result = body.get("Result").unwrap_or(&Value::Null);
    let access = result
        .pointer("/AccessToken/Token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| VendorError::Protocol(format!("{what} answered without a token")))?;
    let lifetime = result
        .pointer("/AccessToken/ExpiresIn")
        .and_then(Value::as_u64)
        .map_or(Duration::from_secs(86_400), Duration::from_secs);
    let refresh = result
        .get("RefreshToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(Secret::new);
    Ok(Token {
        access: Secret::new(access),
        refresh,
        lifetime,
    })
}
