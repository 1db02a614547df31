//! Vendors: the systems roster pushes people to.
//!
//! Owns: the `Vendor` trait every connector implements, `VendorError` and its retry
//! classification, the shared person → fields mapping, and building connectors from
//! config. Must not: see the store or other vendors, or pace, retry or hold sessions
//! itself (that is `crate::http`). Adding a vendor is one new file plus one line in
//! `build` and `KINDS`.

pub mod drivekit;
pub mod motive;
mod reply;
pub mod rocketchat;
pub mod telematics;

pub use reply::classify;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::budget::Budget;
use crate::config::{ConfigError, RetrySettings, VendorSettings};
use crate::http::session::{AuthError, AuthFailure, LoginLimit};
use crate::http::{self, FlowSettings, Http, NotSent, Observer};
pub use crate::model::Remote;
use crate::model::{Changes, Fields, MapError, Person, PersonId};
use crate::retry::{Retryable, Verdict};

/// Every `type` a vendor table may have.
pub const KINDS: &[&str] = &["motive", "drivekit", "telematics", "rocketchat"];

#[derive(Debug, Clone, thiserror::Error)]
pub enum VendorError {
    /// Connection refused, reset, timed out: the call may or may not have arrived.
    #[error("request failed: {0}")]
    Transport(String),
    /// The vendor refused the call for its rate (a 429, or its own way of saying so).
    #[error("rate limited by the vendor (429{})", .retry_after.map(|d| format!(", asked to wait {}s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// roster did not send the call: its pacing, the vendor's pause, the pass budget or
    /// shutdown stopped it first (the message says which).
    #[error(transparent)]
    NotSent(NotSent),
    /// roster did not log in: the vendor's login limit (`limit`) would be exceeded.
    #[error(
        "not sent: login limit ({} logins per {}s) reached, next login possible in {}s{}",
        .limit.attempts, .limit.window.as_secs(), .wait.as_secs(),
        .last.as_ref().map(|l| format!("; the last login failed: {l}")).unwrap_or_default()
    )]
    LoginLimited {
        limit: LoginLimit,
        wait: Duration,
        last: Option<String>,
    },
    #[error("server error {status}: {detail}")]
    Server { status: u16, detail: String },
    /// The vendor refused this person's data; retrying the same call cannot help.
    #[error("rejected ({status}): {detail}")]
    Rejected { status: u16, detail: String },
    /// Bad or insufficient credentials: stop calling this vendor for this pass.
    #[error("credentials rejected ({status}): {detail}")]
    Auth { status: u16, detail: String },
    /// The vendor's setup refuses this call for everyone until an operator fixes it
    /// (e.g. Rocket.Chat's two-factor requirement): reported per person, not retried,
    /// and `fix` logged once per pass.
    #[error("{detail}; to fix: {fix}")]
    Setup { detail: String, fix: &'static str },
    #[error("not found: {0}")]
    NotFound(String),
    /// A create collided with an existing account: look it up and adopt it.
    #[error("already exists: {0}")]
    Exists(String),
    /// The account cannot be made by roster and does not exist yet (DriveKit).
    #[error("{0}")]
    Waiting(String),
    #[error("not supported by this vendor: {0}")]
    Unsupported(&'static str),
    /// The vendor answered with something roster does not understand (or will not
    /// follow: a redirect to another host, a reply over its size cap).
    #[error("unexpected response: {0}")]
    Protocol(String),
}

impl VendorError {
    /// Whether trying the same call again, later, may succeed.
    pub fn is_retryable(&self) -> bool {
        self.verdict() != Verdict::Never
    }

    /// The class, as reports and metrics name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Transport(_) => "transport",
            Self::RateLimited { .. } => "rate_limited",
            Self::NotSent(_) => "not_sent",
            Self::LoginLimited { .. } => "login_limited",
            Self::Server { .. } => "server",
            Self::Rejected { .. } => "rejected",
            Self::Auth { .. } => "auth",
            Self::Setup { .. } => "setup",
            Self::NotFound(_) => "not_found",
            Self::Exists(_) => "exists",
            Self::Waiting(_) => "waiting",
            Self::Unsupported(_) => "unsupported",
            Self::Protocol(_) => "protocol",
        }
    }
}

impl Retryable for VendorError {
    fn verdict(&self) -> Verdict {
        match self {
            Self::Transport(_) | Self::Server { .. } => Verdict::Backoff,
            Self::RateLimited {
                retry_after: Some(wait),
            } => Verdict::After(*wait),
            Self::RateLimited { retry_after: None } => Verdict::Backoff,
            Self::LoginLimited { wait, .. } => Verdict::After(*wait),
            _ => Verdict::Never,
        }
    }
}

impl From<http::Error> for VendorError {
    fn from(e: http::Error) -> Self {
        match e {
            http::Error::NotSent(n) => Self::NotSent(n),
            e @ http::Error::Transport { .. } => Self::Transport(e.to_string()),
            other => Self::Protocol(other.to_string()),
        }
    }
}

/// How a login's or a refresh's failure bears on the session (`http::session`).
impl AuthError for VendorError {
    fn failure(&self) -> AuthFailure {
        match self {
            Self::Auth { .. } | Self::Rejected { .. } | Self::NotFound(_) | Self::Protocol(_) => {
                AuthFailure::Refused
            }
            Self::RateLimited { retry_after } => AuthFailure::Throttled(*retry_after),
            _ => AuthFailure::Unavailable,
        }
    }

    fn login_limited(limit: LoginLimit, wait: Duration, last: Option<String>) -> Self {
        Self::LoginLimited { limit, wait, last }
    }
}

#[async_trait]
pub trait Vendor: Send + Sync {
    /// The vendor's name from config (`[vendors.NAME]`).
    fn name(&self) -> &str;

    /// PURE: the fields this vendor should hold for `person`, or why the person cannot be
    /// sent as they are (reported as skipped, never sent).
    ///
    /// # Errors
    /// Why, naming the field at fault (reported as skipped).
    fn map(&self, person: &Person) -> Result<Fields, MapError>;

    /// The vendor's flow control (pacing, holds, what a pass learned).
    fn flow(&self) -> &Arc<http::Flow>;

    /// A read-only call proving the credentials work (`roster check`).
    async fn check(&self, budget: &Budget) -> Result<(), VendorError>;

    /// Finds the account that belongs to `person` by the vendor's matching key.
    async fn lookup(
        &self,
        budget: &Budget,
        person: &PersonId,
        fields: &Fields,
    ) -> Result<Option<Remote>, VendorError>;

    /// Creates the account, active, and returns the vendor's id for it.
    async fn create(
        &self,
        budget: &Budget,
        person: &PersonId,
        fields: &Fields,
    ) -> Result<String, VendorError>;

    /// Sends `changes` (only what differs from what was last pushed); `fields` is the
    /// whole wanted set, for vendors that must send related fields together.
    async fn update(
        &self,
        budget: &Budget,
        remote: &str,
        changes: &Changes,
        fields: &Fields,
    ) -> Result<(), VendorError>;

    async fn set_active(
        &self,
        budget: &Budget,
        remote: &str,
        active: bool,
    ) -> Result<(), VendorError>;

    /// Every account at the vendor (for drift detection, `reconcile --full`). Fields are
    /// what the vendor can report under `map`'s names; a field it cannot read is absent.
    ///
    /// # Errors
    /// `Unsupported` where the vendor's API cannot list accounts.
    async fn list(&self, _budget: &Budget) -> Result<Vec<Remote>, VendorError> {
        Err(VendorError::Unsupported("listing accounts"))
    }

    /// Removes the account for good (only where `supports_delete`).
    async fn delete(&self, _budget: &Budget, _remote: &str) -> Result<(), VendorError> {
        Err(VendorError::Unsupported("delete"))
    }

    fn supports_delete(&self) -> bool {
        false
    }
}

/// Builds the connector for one vendor table, validating its own keys; `observer`
/// hears of its flow control (metrics).
///
/// # Errors
/// `ConfigError` naming the key at fault (or saying the HTTP client cannot be built).
pub fn build(
    settings: &VendorSettings,
    retry: &RetrySettings,
    observer: Arc<dyn Observer>,
) -> Result<Arc<dyn Vendor>, ConfigError> {
    let client = || -> Result<Http, ConfigError> {
        Http::new(http::Options {
            name: &settings.name,
            timeout: retry.request_timeout(),
            flow: FlowSettings {
                ceiling: settings.rate_limit.map(|r| (r.per_second(), r.calls)),
                floor: settings.min_rate.map(crate::config::RateLimit::per_second),
                ..FlowSettings::default()
            },
            retry: *retry,
            observer: Arc::clone(&observer),
        })
        .map_err(|e| ConfigError::invalid(format!("vendors.{}", settings.name), e.to_string()))
    };
    let vendor: Arc<dyn Vendor> = match settings.kind.as_str() {
        "motive" => Arc::new(motive::Motive::new(settings, client()?)?),
        "drivekit" => Arc::new(drivekit::DriveKit::new(settings, client()?)?),
        "telematics" => Arc::new(telematics::Telematics::new(settings, client()?)?),
        "rocketchat" => Arc::new(rocketchat::RocketChat::new(settings, client()?)?),
        other => {
            return Err(ConfigError::invalid(
                settings.key("type"),
                format!("vendor type `{other}` is not available in this build yet"),
            ));
        }
    };
    if settings.on_remove == crate::model::OnRemove::Delete && !vendor.supports_delete() {
        return Err(ConfigError::invalid(
            settings.key("on_remove"),
            format!("`delete` is not supported by {} vendors", settings.kind),
        ));
    }
    Ok(vendor)
}

/// The table's `base_url`, or the connector's default.
///
/// # Errors
/// Only if `default` is not a URL (a bug, reported rather than panicking).
pub fn base_url(settings: &VendorSettings, default: &str) -> Result<url::Url, ConfigError> {
    match &settings.base_url {
        Some(u) => Ok(u.clone()),
        None => url::Url::parse(default).map_err(|e| {
            ConfigError::invalid(
                settings.key("base_url"),
                format!("default `{default}`: {e}"),
            )
        }),
    }
}

/// An `Http` for connector unit tests (nothing is sent).
#[cfg(test)]
pub(crate) fn test_http(name: &str) -> Http {
    Http::new(http::Options {
        name,
        timeout: Duration::from_secs(1),
        flow: FlowSettings::default(),
        retry: RetrySettings::default(),
        observer: Arc::new(http::Quiet),
    })
    .expect("client")
}

/// A `check` failure that says which URL was tried, for the 404 of a wrong `base_url`.
pub fn check_failure(e: VendorError, url: &url::Url) -> VendorError {
    match e {
        VendorError::NotFound(detail) => VendorError::NotFound(format!(
            "{} answered 404 ({detail}); is base_url right?",
            http::shown(url)
        )),
        other => other,
    }
}

/// The vendor-specific fields for `person`: attribute `NAME.FIELD` wins over
/// `[vendors.NAME.defaults] FIELD`. Fields not in `allowed` are an error naming them.
///
/// # Errors
/// The first unknown field, by name and origin.
pub fn vendor_fields(
    settings: &VendorSettings,
    person: &Person,
    allowed: &BTreeSet<&str>,
) -> Result<Fields, MapError> {
    let mut out = Fields::new();
    for (k, v) in &settings.defaults {
        out.insert(k.clone(), v.clone());
    }
    for (k, v) in &person.attributes {
        if let Some(field) = k
            .strip_prefix(settings.name.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
        {
            if !allowed.contains(field) {
                return Err(MapError(format!(
                    "attribute `{k}`: `{field}` is not a {} field",
                    settings.kind
                )));
            }
            out.insert(field.to_string(), v.clone());
        }
    }
    Ok(out)
}

/// Checks `[vendors.NAME.defaults]` against the fields a connector knows.
///
/// # Errors
/// `ConfigError` naming the unknown default.
pub fn check_defaults(
    settings: &VendorSettings,
    allowed: &BTreeSet<&str>,
) -> Result<(), ConfigError> {
    match settings
        .defaults
        .keys()
        .find(|k| !allowed.contains(k.as_str()))
    {
        Some(k) => Err(ConfigError::invalid(
            settings.key(&format!("defaults.{k}")),
            format!("not a {} field", settings.kind),
        )),
        None => Ok(()),
    }
}

/// Puts the person's own fields (those present) into `out` under the given names.
pub fn put_person_fields<'a>(
    person: &Person,
    out: &mut Fields,
    names: impl IntoIterator<Item = (&'a str, PersonField)>,
) {
    for (name, field) in names {
        if let Some(v) = field.get(person) {
            out.insert(name.to_string(), v);
        }
    }
}

/// The parts of a person a connector can send.
#[derive(Debug, Clone, Copy)]
pub enum PersonField {
    FirstName,
    LastName,
    DisplayName,
    Email,
    Username,
    Phone,
}

impl PersonField {
    pub fn get(self, p: &Person) -> Option<String> {
        match self {
            Self::FirstName => p.first_name.as_deref().map(String::from),
            Self::LastName => p.last_name.as_deref().map(String::from),
            Self::DisplayName => p.display_name(),
            Self::Email => p.email.as_deref().map(String::from),
            Self::Username => p.username.as_deref().map(String::from),
            Self::Phone => p.phone.as_deref().map(String::from),
        }
    }
}
