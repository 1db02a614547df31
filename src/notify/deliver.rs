//! Delivering one alert: an HTTP POST with a few retries.
//!
//! Owns: the delivery retry policy. The client is the one every outbound call uses
//! (`http::client::build`: timeouts, no redirect to another origin, a build failure is
//! an error), its reply read under `BodyCap::ALERT`. Must not: put the target URL in an
//! error or a log line — it is a secret; transport errors come from
//! `http::client::transport`, which leaves the URL out, and a receiver's reply is quoted
//! with the URL's path and query scrubbed.
//!
//! The policy is its own, not `retry::Retry`'s: that one is shaped by a pass's vendor
//! budget, while an alert gets a fixed few attempts and gives up quickly, since the next
//! pass decides it again anyway.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use serde_json::Value;
use tracing::warn;

use crate::config::Secret;
use crate::http::{self, BodyCap, client};

/// How much of the reply an error quotes.
const REPLY_QUOTED: usize = 120;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The client could not be built, or the request did not get an answer (never with
    /// the URL: see `http::client::transport`).
    #[error(transparent)]
    Http(#[from] http::Error),
    #[error("the receiver answered {status}{detail}")]
    Status { status: u16, detail: String },
    /// A redirect to another origin (the shared client follows none: the body, and the
    /// URL's secret, could go with it).
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

/// The client alerts are sent with: the one builder's, with `timeout` per attempt.
///
/// # Errors
/// `Http(Client)` when the TLS backend cannot be set up; never a fallback client.
pub fn client(timeout: Duration) -> Result<reqwest::Client, DeliveryError> {
    Ok(client::build(timeout)?)
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
    let response = client
        .post(url.expose())
        .json(body)
        .send()
        .await
        .map_err(|e| Failed::Retryable(client::transport(&e).into(), None))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    if status.is_redirection() {
        return Err(Failed::Permanent(DeliveryError::Redirect {
            status: status.as_u16(),
        }));
    }
    let hint = http::headers::retry_after(response.headers(), SystemTime::now());
    // A reply over the cap, broken or slow only leaves the detail out.
    let reply = client::read_body(response, BodyCap::ALERT)
        .await
        .unwrap_or_default();
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
fn quote(reply: &str, url: &Secret) -> String {
    let line: String = reply
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

/// Drops the URL's path and query (where webhook secrets live) should a reply echo them.
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
