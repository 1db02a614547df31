//! The outbound-call layer: every call roster makes to another system goes through here —
//! vendor writes, lookups and listings (drift and `rebuild-state` included), logins, and
//! the SCIM and HTTP sources' pages.
//!
//! Owns: the one client (`client.rs`: timeouts, the redirect policy, body caps); flow
//! control (`flow.rs`: pacing, the congestion controller of `congestion.rs`, the
//! vendor's pauses and rate-limit windows, per route where the vendor limits per route);
//! what replies say about waiting (`headers.rs`); sessions and login limits
//! (`session.rs`), with OAuth2 client credentials as one way to log in (`oauth2.rs`);
//! and which failures are worth another attempt. Connectors and sources
//! keep only their wire formats and mapping.
//!
//! Must not: log request headers or bodies (they carry credentials and person data), or
//! put a URL's query or credentials into an error.

pub mod client;
pub mod congestion;
pub mod flow;
pub mod headers;
pub mod oauth2;
pub mod session;
mod tls;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use tracing::warn;
use url::Url;

pub use flow::{Flow, FlowSettings, NotSent, Observed, Waiting};

use crate::budget::Budget;
use crate::config::RetrySettings;
use crate::retry::{Retry, Retryable, Verdict};

/// Hears what flow control does, for metrics. Every method has a do-nothing default.
pub trait Observer: Send + Sync {
    /// A call was refused for its rate (a 429, or the vendor's equivalent).
    fn throttled(&self, _remote: &str, _route: &str) {}
    /// The remote's current rate (`None`: unlimited) and the vendor-wide hold left.
    fn pacing(&self, _remote: &str, _rate: Option<f64>, _hold: Option<Duration>) {}
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {}

/// How much of a reply roster reads before giving up on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyCap {
    bytes: usize,
    what: &'static str,
}

impl BodyCap {
    /// A write's reply (the account written, at most).
    pub const WRITE: Self = Self {
        bytes: 1 << 20,
        what: "a write's reply",
    };
    /// A lookup's, a login's or a check's reply.
    pub const READ: Self = Self {
        bytes: 4 << 20,
        what: "a lookup's reply",
    };
    /// An alert receiver's reply (read only to quote the start of an error).
    pub const ALERT: Self = Self {
        bytes: 4 << 10,
        what: "an alert receiver's reply",
    };
    /// One page of a listing or of a source.
    pub const PAGE: Self = Self {
        bytes: 64 << 20,
        what: "one page",
    };

    /// A page cap of `mib` MiB (the sources' `max_page_mb`).
    pub fn page_mib(mib: u64) -> Self {
        Self {
            bytes: usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            what: "one page",
        }
    }

    pub fn bytes(self) -> usize {
        self.bytes
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    NotSent(#[from] NotSent),
    #[error("{kind}{}", if .detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Transport { kind: &'static str, detail: String },
    /// A redirect to another origin, never followed.
    #[error(
        "{remote} answered {status} with a redirect to {to}; roster never follows a redirect \
         to another host (the credentials would go with it)"
    )]
    Redirect {
        remote: String,
        status: u16,
        to: String,
    },
    #[error("the reply is larger than {} KiB, the cap for {}; not read", .0.bytes / 1024, .0.what)]
    TooLarge(BodyCap),
    /// A reply roster cannot read (e.g. not JSON where JSON was due).
    #[error("{0}")]
    Malformed(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// A reply read in full (up to its cap).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
    /// The URL answered, as `shown` (no credentials, no query).
    pub url: String,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// The body as JSON.
    ///
    /// # Errors
    /// `Malformed` when it is not.
    pub fn json(&self) -> Result<serde_json::Value, Error> {
        serde_json::from_str(&self.body).map_err(|e| {
            Error::Malformed(format!(
                "expected JSON (status {}): {e}",
                self.status.as_u16()
            ))
        })
    }

    /// The start of the body, for messages; never the whole of a large page.
    pub fn snippet(&self) -> String {
        snippet(&self.body)
    }
}

/// The start of a text, for messages.
pub fn snippet(body: &str) -> String {
    let t = body.trim();
    if t.is_empty() {
        return "(empty body)".into();
    }
    let mut s: String = t.chars().take(200).collect();
    if s.len() < t.len() {
        s.push('…');
    }
    s
}

/// A URL for messages: no credentials, no query (it may carry tokens), no fragment.
pub fn shown(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// `base` + `path`, keeping any path prefix `base` has (`http://h/prefix` + `/v1/x`).
pub fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url
}

/// A remote's own way of saying "too many requests" beyond a 429 (e.g. Rocket.Chat's
/// `error-too-many-requests` in a 400), with the wait it names: `Some(wait)` when the
/// reply is such a refusal.
pub type ThrottleRule = fn(&Reply) -> Option<Option<Duration>>;

/// How to build an `Http`.
pub struct Options<'a> {
    /// The remote's name in messages and metrics (the vendor's table name, or `source`).
    pub name: &'a str,
    pub timeout: Duration,
    pub flow: FlowSettings,
    /// For the reads that retry on their own (`fetch`).
    pub retry: RetrySettings,
    pub observer: Arc<dyn Observer>,
}

/// One remote's client and flow control.
pub struct Http {
    name: String,
    client: reqwest::Client,
    flow: Arc<Flow>,
    observer: Arc<dyn Observer>,
    retry: RetrySettings,
    throttle_rule: Option<ThrottleRule>,
}

impl Http {
    /// # Errors
    /// `Client` when the client cannot be built.
    pub fn new(o: Options<'_>) -> Result<Self, Error> {
        Ok(Self {
            name: o.name.to_string(),
            client: client::build(o.timeout)?,
            flow: Arc::new(Flow::new(o.name, o.flow, Arc::clone(&o.observer))),
            observer: o.observer,
            retry: o.retry,
            throttle_rule: None,
        })
    }

    /// Adjusts the flow settings for what the connector knows of its vendor (e.g. that it
    /// limits each route on its own). Call before any call is made.
    pub fn with_flow(mut self, adjust: impl FnOnce(&mut FlowSettings)) -> Self {
        let mut settings = *self.flow.settings();
        adjust(&mut settings);
        self.flow = Arc::new(Flow::new(&self.name, settings, Arc::clone(&self.observer)));
        self
    }

    /// Adds the remote's own "too many requests" signal.
    pub fn with_throttle_rule(mut self, rule: ThrottleRule) -> Self {
        self.throttle_rule = Some(rule);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn flow(&self) -> &Arc<Flow> {
        &self.flow
    }

    /// A request on the one client.
    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.client.request(method, url)
    }

    /// One call: admitted by flow control (waiting as it says, within `budget`), sent,
    /// its reply read up to `cap`, and learned from. Any HTTP status is a `Reply`: the
    /// caller reads the remote's meaning into it.
    ///
    /// # Errors
    /// Not sent (shutdown, budget, a long pause), transport, a redirect to another
    /// origin, or a reply over the cap.
    pub async fn send(
        &self,
        budget: &Budget,
        route: &str,
        cap: BodyCap,
        request: RequestBuilder,
    ) -> Result<Reply, Error> {
        let ticket = self.flow.admit(route, budget).await?;
        let result = self.exchange(request, cap).await;
        let observed = match &result {
            Ok(reply) => Observed::Reply {
                status: reply.status,
                headers: &reply.headers,
                throttled: self.throttled(reply),
            },
            Err(_) => Observed::NoReply,
        };
        self.flow.learn(ticket, observed);
        result
    }

    /// A call outside flow control, for session endpoints (their limits are the
    /// session's login gate, and a 429 there says nothing about the other calls).
    ///
    /// # Errors
    /// As `send`.
    pub async fn send_unpaced(
        &self,
        budget: &Budget,
        cap: BodyCap,
        request: RequestBuilder,
    ) -> Result<Reply, Error> {
        budget
            .check()
            .map_err(|s| NotSent::from_stop(s, Waiting::LoginLimit))?;
        self.exchange(request, cap).await
    }

    /// `send` for a read that is safe to repeat and worth retrying on its own (a page of
    /// a listing or a source): transport failures, 5xx and 429s are tried again under
    /// the retry policy, within `budget`; `max_retries` bounds the tries of failures
    /// other than rate limits. The last reply is returned whatever its status.
    ///
    /// # Errors
    /// As `send`, for the last attempt.
    pub async fn fetch(
        &self,
        budget: &Budget,
        route: &str,
        cap: BodyCap,
        max_retries: Option<u32>,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Reply, Error> {
        let mut retry = Retry::new(self.retry);
        if let Some(n) = max_retries {
            retry = retry.max_retries(n);
        }
        let result = retry
            .run(
                budget,
                || async {
                    match self.send(budget, route, cap, build()).await {
                        Ok(reply) => match self.verdict(&reply) {
                            Verdict::Never => Ok(reply),
                            verdict => {
                                let throttled = self.throttled(&reply).is_some();
                                Err(Attempt::Again(reply, verdict, throttled))
                            }
                        },
                        Err(e) => Err(Attempt::Failed(e)),
                    }
                },
                |attempt, wait| {
                    warn!(remote = %self.name, route, error = %attempt, delay_ms = wait.as_millis() as u64, "Retrying a read.");
                },
            )
            .await;
        match result {
            Ok(reply) | Err(Attempt::Again(reply, ..)) => Ok(reply),
            Err(Attempt::Failed(e)) => Err(e),
        }
    }

    /// Whether a reply is worth another attempt, and when.
    fn verdict(&self, reply: &Reply) -> Verdict {
        match self.throttled(reply) {
            Some(Some(wait)) => Verdict::After(wait),
            Some(None) => Verdict::Backoff,
            None if reply.status.is_server_error() => Verdict::Backoff,
            None => Verdict::Never,
        }
    }

    /// `Some(wait hint)` when the reply refuses the call for its rate.
    pub fn throttled(&self, reply: &Reply) -> Option<Option<Duration>> {
        let rule = self.throttle_rule.and_then(|r| r(reply));
        if reply.status != StatusCode::TOO_MANY_REQUESTS && rule.is_none() {
            return None;
        }
        let now = SystemTime::now();
        let hint = headers::retry_after(&reply.headers, now)
            .or_else(|| headers::RateInfo::parse(&reply.headers, now).and_then(|i| i.reset))
            .or(rule.flatten());
        Some(hint)
    }

    async fn exchange(&self, request: RequestBuilder, cap: BodyCap) -> Result<Reply, Error> {
        let response = request.send().await.map_err(|e| client::transport(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let url = response.url().clone();
        if let Some(to) = client::redirect_target(&url, status, &headers) {
            return Err(Error::Redirect {
                remote: self.name.clone(),
                status: status.as_u16(),
                to,
            });
        }
        let body = client::read_body(response, cap).await?;
        Ok(Reply {
            status,
            headers,
            body,
            url: shown(&url),
        })
    }
}

/// One attempt of `Http::fetch`: a reply worth another try (and whether it refused
/// the call for its rate), or a failure.
enum Attempt {
    Again(Reply, Verdict, bool),
    Failed(Error),
}

impl Retryable for Attempt {
    fn verdict(&self) -> Verdict {
        match self {
            Self::Again(_, v, _) => *v,
            Self::Failed(Error::Transport { .. }) => Verdict::Backoff,
            Self::Failed(_) => Verdict::Never,
        }
    }

    fn counts(&self) -> bool {
        !matches!(self, Self::Again(_, _, true))
    }
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Again(reply, ..) => write!(f, "HTTP {}", reply.status),
            Self::Failed(e) => e.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests;
