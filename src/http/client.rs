//! The one HTTP client builder, and reading a reply under a size cap.
//!
//! Every client sends one `User-Agent`: `roster/VERSION`, or with leader election
//! `roster/VERSION (IDENTITY)` naming the replica (`set_identity`, once at start), so a
//! vendor's logs tell the replicas apart.
//!
//! Redirect policy (one for every client, vendors and sources alike): a redirect within
//! the same origin (scheme, host and port) is followed, at most `MAX_REDIRECTS` times; a
//! redirect to another origin is never followed — reqwest would carry every header but
//! `Authorization` (and, on 307/308, the body) to it — and becomes an error naming the
//! target's origin.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::header::LOCATION;
use reqwest::{Response, StatusCode};
use url::Url;

use super::{BodyCap, Error};

const MAX_REDIRECTS: usize = 5;

/// This replica's name for the `User-Agent` (HA), set once.
static IDENTITY: OnceLock<String> = OnceLock::new();

/// Names this replica in the `User-Agent` of every client built from now on (`[ha]`
/// identity). Call once at start, before any client is built; a later call changes
/// nothing and returns `false`.
pub fn set_identity(identity: &str) -> bool {
    IDENTITY.set(identity.to_string()).is_ok()
}

/// `roster/VERSION`, with the replica's identity when one is set.
pub fn user_agent() -> String {
    let base = concat!("roster/", env!("CARGO_PKG_VERSION"));
    match IDENTITY.get() {
        Some(id) => format!("{base} ({id})"),
        None => base.to_string(),
    }
}

/// Builds the client every outbound call uses. It is cheap: the TLS roots are loaded
/// once per process, at the first certificate checked (`tls.rs`).
///
/// # Errors
/// Whatever keeps reqwest from building it: never a silent default. (Missing TLS roots
/// fail the first TLS handshake, naming them.)
pub fn build(timeout: Duration) -> Result<reqwest::Client, Error> {
    let same_origin = reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().map(Url::origin);
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("more than 5 redirects")
        } else if first.is_some_and(|o| o == attempt.url().origin()) {
            attempt.follow()
        } else {
            // Not followed: the 3xx reply comes back, and `redirect_target` names it.
            attempt.stop()
        }
    });
    let tls = super::tls::client_config().map_err(|e| Error::Client(e.to_string()))?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(same_origin)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(user_agent())
        .build()
        .map_err(|e| Error::Client(chain(&e)))
}

/// The origin a redirect reply points to, when it points to another origin than `url`.
pub fn redirect_target(
    url: &Url,
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> Option<String> {
    if !status.is_redirection() {
        return None;
    }
    let location = headers.get(LOCATION)?.to_str().ok()?;
    let target = url.join(location).ok()?;
    (target.origin() != url.origin()).then(|| target.origin().ascii_serialization())
}

/// Reads the body, failing as soon as it is known to exceed `cap` (from its declared
/// length, or while it streams in), so a huge reply never reaches memory.
///
/// # Errors
/// `TooLarge`, or a transport failure while reading.
pub async fn read_body(mut response: Response, cap: BodyCap) -> Result<String, Error> {
    let limit = cap.bytes();
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Error::TooLarge(cap));
    }
    let mut body: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e))? {
        if body.len() + chunk.len() > limit {
            return Err(Error::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(match String::from_utf8(body) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// A transport failure without the URL (reqwest puts it in its message, and a query may
/// carry tokens).
pub fn transport(error: &reqwest::Error) -> Error {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_redirect() {
        "redirect loop"
    } else {
        "transport error"
    };
    Error::Transport {
        kind,
        detail: chain(error),
    }
}

/// An error's causes, one after the other, without any URL.
fn chain(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}
