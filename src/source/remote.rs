//! What the remote sources (SCIM, HTTP) share: their page client on the shared HTTP
//! layer (`crate::http`: paced, capped, retried under the retry policy), credentials
//! sent as a header (re-read from their file for every request) or an OAuth2 client
//! credentials token (`crate::http::oauth2`, held by a `Session`), URL checks and limits.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use url::Url;

use super::Build;
use crate::budget::Budget;
use crate::config::{ConfigError, RetrySettings, Secret};
use crate::http::oauth2::{ClientCredentials, OAuthError, TokenEndpoint};
use crate::http::session::Session;
use crate::http::{self, BodyCap, Http, Observer, Reply};

pub(super) use crate::http::shown;

/// Why a remote source's read failed: what was asked (never a query or a credential)
/// and what went wrong. The read fails as a whole with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(super) struct ReadError(pub String);

impl From<String> for ReadError {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// A token could not be had: the read fails with the endpoint's words (no secret).
impl From<OAuthError> for ReadError {
    fn from(e: OAuthError) -> Self {
        Self(e.to_string())
    }
}

/// The token endpoint must be https (the client secret goes there), or http on a
/// loopback address (a local proxy, the tests).
///
/// # Errors
/// `key` named, when it is not.
pub(super) fn check_token_url(key: &str, raw: &str) -> Result<Url, ConfigError> {
    let url = check_http_url(key, raw)?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if url.scheme() != "https" && !loopback {
        return Err(ConfigError::invalid(
            key,
            format!(
                "`{}` must be https:// (the client secret is sent there); http:// only on a \
                 loopback address",
                shown(&url)
            ),
        ));
    }
    if url.fragment().is_some() {
        return Err(ConfigError::invalid(key, "must not have a #fragment"));
    }
    Ok(url)
}

pub(super) fn check_http_url(key: &str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| ConfigError::invalid(key, format!("`{raw}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::invalid(
            key,
            format!("`{}` is not an http(s) URL", shown(&url)),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::invalid(
            key,
            "must not carry credentials; use the auth keys",
        ));
    }
    Ok(url)
}

/// A credential sent as a header: given inline, or in a file that is read again for
/// every request, so a token that another process rotates is picked up without a
/// restart (the file is also read once at config load, to report a mistake early).
pub(super) struct Credential {
    header: HeaderName,
    /// Put before the secret, e.g. `Bearer `.
    prefix: &'static str,
    inline: Option<Secret>,
    file: Option<PathBuf>,
}

impl Credential {
    /// Resolves `source.KEY` / `KEY_file`.
    ///
    /// # Errors
    /// As `Build::secret`, or a value that cannot be a header value.
    pub(super) fn from_build(
        settings: &Build,
        key: &str,
        inline: Option<Secret>,
        file: Option<PathBuf>,
        required: bool,
        header: HeaderName,
        prefix: &'static str,
    ) -> Result<Option<Self>, ConfigError> {
        let path = file.as_ref().map(|p| settings.path(p));
        let Some(secret) = settings.secret(key, inline, file, required)? else {
            return Ok(None);
        };
        let credential = Self {
            header,
            prefix,
            inline: path.is_none().then_some(secret),
            file: path,
        };
        credential.value().map_err(|_| {
            ConfigError::invalid(
                format!("source.{key}"),
                "is not usable as a header value (no line breaks or control characters)",
            )
        })?;
        Ok(Some(credential))
    }

    fn value(&self) -> Result<HeaderValue, ReadError> {
        let secret = match (&self.inline, &self.file) {
            (Some(s), _) => s.clone(),
            (None, Some(path)) => Secret::from_file(path)
                .map_err(|e| ReadError(format!("the credential file: {e}")))?,
            (None, None) => return Err(ReadError("no credential".into())),
        };
        let mut value = HeaderValue::from_str(&format!("{}{}", self.prefix, secret.expose()))
            .map_err(|_| ReadError("the credential is not usable as a header value".into()))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// What the remote sources share of their HTTP setup: the shared layer's client for
/// `source`, its timeout and page cap, and the retries of a failed page.
pub(super) struct Remote {
    pub timeout_secs: u64,
    pub retries: u32,
    pub max_page_mb: u64,
    pub retry: RetrySettings,
    pub observer: Arc<dyn Observer>,
}

/// How a remote source proves who it is.
pub(super) enum Auth {
    None,
    /// A static credential in a header.
    Header(Credential),
    /// OAuth2 client credentials: a token from the endpoint, sent as a bearer.
    OAuth2(ClientCredentials),
}

/// `Auth`, ready to sign requests.
enum Signer {
    None,
    Header(Credential),
    OAuth2(Box<Session<TokenEndpoint>>),
}

/// One JSON GET client with an optional credential, on the shared layer
/// (`crate::http`): paced, capped, pages retried under the retry policy.
pub(super) struct JsonGet {
    http: Arc<Http>,
    signer: Signer,
    retries: u32,
    cap: BodyCap,
    route: &'static str,
}

/// A page as received.
pub(super) struct JsonPage {
    pub body: Value,
    pub headers: HeaderMap,
}

impl JsonGet {
    /// # Errors
    /// The HTTP client cannot be built.
    pub(super) fn new(
        remote: Remote,
        auth: Auth,
        route: &'static str,
    ) -> Result<Self, ConfigError> {
        let http = Arc::new(
            Http::new(http::Options {
                name: "source",
                timeout: Duration::from_secs(remote.timeout_secs),
                flow: http::FlowSettings::default(),
                retry: remote.retry,
                observer: remote.observer,
            })
            .map_err(|e| ConfigError::invalid("source", e.to_string()))?,
        );
        let signer = match auth {
            Auth::None => Signer::None,
            Auth::Header(c) => Signer::Header(c),
            Auth::OAuth2(c) => Signer::OAuth2(Box::new(
                TokenEndpoint::new(Arc::clone(&http), c, remote.retries).into_session(),
            )),
        };
        Ok(Self {
            http,
            signer,
            retries: remote.retries,
            cap: BodyCap::page_mib(remote.max_page_mb),
            route,
        })
    }

    pub(super) fn flow(&self) -> &Arc<http::Flow> {
        self.http.flow()
    }

    /// How requests are signed, for `describe` (no secret).
    pub(super) fn describe_auth(&self) -> String {
        match &self.signer {
            Signer::None | Signer::Header(_) => String::new(),
            // The endpoint is named by its own errors.
            Signer::OAuth2(_) => ", OAuth2 client credentials".into(),
        }
    }

    /// GETs `url` and parses the JSON body. Transport failures and 5xx are tried again up
    /// to `retries` times, 429s as long as the source's pauses fit the pass budget
    /// (`crate::http::Http::fetch`); anything else, or the last failure, is an error
    /// message (without the query or any header).
    pub(super) async fn get(
        &self,
        budget: &Budget,
        url: &Url,
        accept: &str,
    ) -> Result<JsonPage, ReadError> {
        self.get_route(budget, self.route, url, accept).await
    }

    /// `get` on another route of the same remote (flow control keeps routes apart only
    /// where the remote limits them apart).
    pub(super) async fn get_route(
        &self,
        budget: &Budget,
        route: &'static str,
        url: &Url,
        accept: &str,
    ) -> Result<JsonPage, ReadError> {
        let at = shown(url);
        let page = |header: Option<(HeaderName, HeaderValue)>| {
            let at = &at;
            async move {
                self.http
                    .fetch(budget, route, self.cap, Some(self.retries), || {
                        let mut request = self
                            .http
                            .request(Method::GET, url.clone())
                            .header("Accept", accept);
                        if let Some((name, value)) = &header {
                            request = request.header(name.clone(), value.clone());
                        }
                        request
                    })
                    .await
                    .map_err(|e| ReadError(format!("GET {at}: {e}")))
            }
        };
        let reply: Reply = match &self.signer {
            Signer::None => page(None).await?,
            Signer::Header(c) => page(Some((c.header.clone(), c.value()?))).await?,
            // A 401 gets one new token and one more try (`Session::send_as`).
            Signer::OAuth2(session) => {
                let page = &page;
                session
                    .send_as(budget, |token| {
                        let header = bearer(&token);
                        async move { page(Some(header?)).await }
                    })
                    .await?
            }
        };
        if !reply.is_success() {
            let again = if matches!(self.signer, Signer::OAuth2(_))
                && reply.status == reqwest::StatusCode::UNAUTHORIZED
            {
                " (with a token fetched anew after a first 401: check the client's scope \
                 and permissions)"
            } else {
                ""
            };
            return Err(ReadError(format!(
                "GET {at}: HTTP {}{}{again}",
                reply.status,
                error_detail(&reply.body)
            )));
        }
        let body = serde_json::from_str(&reply.body)
            .map_err(|e| ReadError(format!("GET {at}: the body is not JSON: {e}")))?;
        Ok(JsonPage {
            body,
            headers: reply.headers,
        })
    }
}

/// `Authorization: Bearer <token>`, marked sensitive (never shown by the HTTP stack).
fn bearer(token: &Secret) -> Result<(HeaderName, HeaderValue), ReadError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| ReadError("OAuth2: the access token is not usable in a header".into()))?;
    value.set_sensitive(true);
    Ok((reqwest::header::AUTHORIZATION, value))
}

/// A short reason from an error body: RFC 7644's `detail`, or a common `message`/`error`,
/// else the start of the text.
fn error_detail(text: &str) -> String {
    if let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) {
        for key in ["detail", "message", "error_description", "error"] {
            if let Some(Value::String(s)) = obj.get(key) {
                let mut out = format!(": {}", truncate(s, 200));
                if let Some(Value::String(t)) = obj.get("scimType") {
                    out.push_str(&format!(" (scimType {t})"));
                }
                return out;
            }
        }
    }
    let t = text.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!(": {}", truncate(t, 200))
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// The page cap when `max_page_mb` is not given.
pub(super) fn default_max_page_mb() -> u64 {
    64
}

/// `timeout_secs` and `max_page_mb` within bounds, naming the key.
pub(super) fn check_page_limits(timeout_secs: u64, max_page_mb: u64) -> Result<(), ConfigError> {
    if !(1..=3600).contains(&timeout_secs) {
        return Err(ConfigError::invalid(
            "source.timeout_secs",
            "must be from 1 to 3600",
        ));
    }
    if !(1..=4096).contains(&max_page_mb) {
        return Err(ConfigError::invalid(
            "source.max_page_mb",
            "must be from 1 to 4096 (MiB)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_summarized() {
        assert_eq!(
            error_detail(
                r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401","detail":"bad token"}"#
            ),
            ": bad token"
        );
        assert_eq!(error_detail(""), "");
        assert!(error_detail(&"x".repeat(500)).len() < 300);
    }
}
