//! Delivering one alert: an HTTP POST with a few retries.
//!
//! Owns: the notification HTTP client (built in `client`, the one place to swap for a
//! shared HTTP layer) and the delivery retry policy. Must not: put the target URL in an
//! error or a log line — it is a secret; reqwest's errors carry it, so they are rebuilt
//! without it.
//!
//! The policy is its own, not `retry::Retry`'s: that one is shaped by a pass's vendor
//! budget, while an alert gets a fixed few attempts and gives up quickly, since the next
//! pass decides it again anyway.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tracing::warn;

use crate::secret::Secret;

/// How many bytes of a receiver's reply are read (for the error message).
const REPLY_CAP: usize = 4096;
/// How much of the reply an error quotes.
const REPLY_QUOTED: usize = 120;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("{0}")]
    Transport(String),
    #[error("the receiver answered {status}{detail}")]
    Status { status: u16, detail: String },
    #[error("the receiver answered {status}, a redirect (not followed)")]
    Redirect { status: u16 },
}

/// Attempts and waits.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub attempts: u32,
    /// The wait after the first failure; doubled after each further one.
    pub first_wait: Duration,
    /// A `Retry-After` longer than this gives up instead of waiting.
    pub max_wait: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            attempts: 3,
            first_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(10),
        }
    }
}

/// The client alerts are sent with: `timeout` per attempt (connect included), no
/// redirects followed (a redirect could carry the body — and the URL's secret — to
/// another host), and a failure to build is an error, never a fallback client.
///
/// # Errors
/// `Client` when the TLS backend cannot be set up.
pub fn client(timeout: Duration) -> Result<reqwest::Client, DeliveryError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("roster/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DeliveryError::Client(describe(e.without_url())))
}

/// Posts `body` as JSON to `url`, retrying transport errors, 429 and 5xx up to
/// `policy.attempts` times. `label` names the target in logs.
///
/// # Errors
/// The last attempt's error (or the first that retrying cannot help).
pub async fn post(
    client: &reqwest::Client,
    url: &Secret,
    body: &Value,
    policy: Policy,
    label: &str,
) -> Result<(), DeliveryError> {
    let mut wait = policy.first_wait;
    let mut attempt = 1;
    loop {
        let (error, hint) = match once(client, url, body).await {
            Ok(()) => return Ok(()),
            Err(Failed::Permanent(e)) => return Err(e),
            Err(Failed::Retryable(e, hint)) => (e, hint),
        };
        if attempt >= policy.attempts {
            return Err(error);
        }
        let pause = match hint {
            Some(h) if h > policy.max_wait => return Err(error),
            Some(h) => h,
            None => wait,
        };
        warn!(notify = label, attempt, error = %error, delay_ms = pause.as_millis() as u64, "Alert delivery failed; retrying.");
        tokio::time::sleep(pause).await;
        wait = wait.saturating_mul(2);
        attempt += 1;
    }
}

enum Failed {
    Permanent(DeliveryError),
    /// With the receiver's `Retry-After`, if it gave one.
    Retryable(DeliveryError, Option<Duration>),
}

async fn once(client: &reqwest::Client, url: &Secret, body: &Value) -> Result<(), Failed> {
    let mut response = client
        .post(url.expose())
        .json(body)
        .send()
        .await
        .map_err(|e| Failed::Retryable(transport(e, url), None))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    if status.is_redirection() {
        return Err(Failed::Permanent(DeliveryError::Redirect {
            status: status.as_u16(),
        }));
    }
    let hint = crate::vendor::http::retry_after(response.headers());
    let mut reply = Vec::new();
    // A broken or slow body only shortens the quoted detail.
    while reply.len() < REPLY_CAP {
        match response.chunk().await {
            Ok(Some(chunk)) => reply.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let error = DeliveryError::Status {
        status: status.as_u16(),
        detail: quote(&reply, url),
    };
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Err(Failed::Retryable(error, hint))
    } else {
        Err(Failed::Permanent(error))
    }
}

/// `: <the reply's start>`, on one line, or nothing for an empty reply.
fn quote(reply: &[u8], url: &Secret) -> String {
    let text = String::from_utf8_lossy(&reply[..reply.len().min(REPLY_CAP)]);
    let line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(REPLY_QUOTED)
        .collect();
    if line.is_empty() {
        String::new()
    } else {
        format!(": {}", scrub(&line, url))
    }
}

fn transport(error: reqwest::Error, url: &Secret) -> DeliveryError {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    DeliveryError::Transport(scrub(
        &format!("{kind}: {}", describe(error.without_url())),
        url,
    ))
}

/// An error and its sources, on one line.
fn describe(error: reqwest::Error) -> String {
    let mut msg = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

/// Drops the URL's path and query (where webhook secrets live) should any text echo them.
fn scrub(text: &str, url: &Secret) -> String {
    let mut out = text.replace(url.expose(), "<url>");
    if let Ok(parsed) = url::Url::parse(url.expose()) {
        let path = parsed.path();
        if path.len() > 1 {
            out = out.replace(path, "/<path>");
        }
        if let Some(q) = parsed.query().filter(|q| !q.is_empty()) {
            out = out.replace(q, "<query>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::http::HeaderMap;
    use axum::routing::post as route_post;

    const SECRET: &str = "T0/B0/sekr1t-path-token";

    fn fast() -> Policy {
        Policy {
            attempts: 3,
            first_wait: Duration::from_millis(10),
            max_wait: Duration::from_secs(2),
        }
    }

    /// A reply: status, headers, body.
    type Canned = (u16, Vec<(&'static str, &'static str)>, &'static str);

    /// A receiver answering `statuses` in turn (the last one from then on), counting
    /// requests.
    async fn receiver(statuses: Vec<Canned>) -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let app = Router::new().route(
            "/{*rest}",
            route_post(move |_: HeaderMap, _: String| {
                let counter = Arc::clone(&counter);
                let statuses = statuses.clone();
                async move {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let (status, headers, body) = statuses[n.min(statuses.len() - 1)].clone();
                    let mut h = HeaderMap::new();
                    for (k, v) in headers {
                        h.insert(k, v.parse().expect("header"));
                    }
                    (
                        axum::http::StatusCode::from_u16(status).expect("status"),
                        h,
                        body,
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}/hooks/{SECRET}"), hits)
    }

    async fn send(url: &str) -> Result<(), DeliveryError> {
        let c = client(Duration::from_secs(2)).expect("client");
        post(
            &c,
            &Secret::new(url),
            &serde_json::json!({"text": "x"}),
            fast(),
            "t",
        )
        .await
    }

    #[tokio::test]
    async fn retries_5xx_and_429_then_succeeds() {
        let (url, hits) = receiver(vec![
            (503, vec![], "busy"),
            (429, vec![("retry-after", "0")], ""),
            (200, vec![], "ok"),
        ])
        .await;
        send(&url).await.expect("delivered on the third attempt");
        assert_eq!(hits.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn gives_up_after_the_attempts_and_never_shows_the_url() {
        let (url, hits) = receiver(vec![(
            500,
            vec![],
            "error at /hooks/T0/B0/sekr1t-path-token",
        )])
        .await;
        let e = send(&url).await.expect_err("fails");
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        let shown = e.to_string();
        assert!(shown.starts_with("the receiver answered 500"), "{shown}");
        assert!(!shown.contains("sekr1t"), "{shown}");
    }

    #[tokio::test]
    async fn a_client_error_or_redirect_is_not_retried() {
        let (url, hits) = receiver(vec![(404, vec![], "no_service")]).await;
        let e = send(&url).await.expect_err("fails");
        assert_eq!(
            e,
            DeliveryError::Status {
                status: 404,
                detail: ": no_service".into()
            }
        );
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        let (url, hits) = receiver(vec![(
            302,
            vec![("location", "http://127.0.0.1:1/elsewhere")],
            "",
        )])
        .await;
        let e = send(&url).await.expect_err("fails");
        assert_eq!(e, DeliveryError::Redirect { status: 302 });
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "the redirect is not followed"
        );
    }

    #[tokio::test]
    async fn a_long_retry_after_gives_up_at_once() {
        let (url, hits) = receiver(vec![(429, vec![("retry-after", "3600")], "")]).await;
        assert!(send(&url).await.is_err());
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_receiver_that_is_down_is_a_transport_error_without_the_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let e = send(&format!("http://{addr}/hooks/{SECRET}?token=qsekr1t"))
            .await
            .expect_err("down");
        let shown = e.to_string();
        assert!(shown.starts_with("could not connect"), "{shown}");
        assert!(
            !shown.contains("sekr1t") && !shown.contains("/hooks"),
            "{shown}"
        );
    }
}
