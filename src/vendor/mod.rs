//! Vendors: the systems roster pushes people to.
//!
//! Owns: the `Vendor` trait every connector implements, `VendorError` and its retry
//! classification, the shared person → fields mapping, and building connectors from
//! config. Must not: see the store or other vendors. Adding a vendor is one new file
//! plus one line in `build` and `KINDS`.

pub mod drivekit;
pub mod http;
pub mod motive;
pub mod rocketchat;
pub mod telematics;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{ConfigError, RetrySettings, VendorSettings};
use crate::model::{Changes, Fields, Person, PersonId};

/// Every `type` a vendor table may have.
pub const KINDS: &[&str] = &["motive", "drivekit", "telematics", "rocketchat"];

/// An account found at the vendor by its matching key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub id: String,
    /// Whether the account is active, or `None` where the vendor cannot say (DriveKit).
    pub active: Option<bool>,
    /// The account's current values, under the same names `Vendor::map` uses.
    pub fields: Fields,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum VendorError {
    /// Connection refused, reset, timed out: the call may or may not have arrived.
    #[error("request failed: {0}")]
    Transport(String),
    #[error("rate limited{}", .retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    #[error("server error {status}: {detail}")]
    Server { status: u16, detail: String },
    /// The vendor refused this person's data; retrying the same call cannot help.
    #[error("rejected ({status}): {detail}")]
    Rejected { status: u16, detail: String },
    /// Bad or insufficient credentials: stop calling this vendor for this pass.
    #[error("credentials rejected ({status}): {detail}")]
    Auth { status: u16, detail: String },
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
    /// The vendor answered with something roster does not understand.
    #[error("unexpected response: {0}")]
    Protocol(String),
}

impl VendorError {
    /// Whether trying the same call again, later, may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Transport(_) | Self::RateLimited { .. } | Self::Server { .. }
        )
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
    /// A message for the report naming the field at fault.
    fn map(&self, person: &Person) -> Result<Fields, String>;

    /// A read-only call proving the credentials work (`roster check`).
    async fn check(&self) -> Result<(), VendorError>;

    /// Finds the account that belongs to `person` by the vendor's matching key.
    async fn lookup(
        &self,
        person: &PersonId,
        fields: &Fields,
    ) -> Result<Option<Remote>, VendorError>;

    /// Creates the account, active, and returns the vendor's id for it.
    async fn create(&self, person: &PersonId, fields: &Fields) -> Result<String, VendorError>;

    /// Sends `changes` (only what differs from what was last pushed); `fields` is the
    /// whole wanted set, for vendors that must send related fields together.
    async fn update(
        &self,
        remote: &str,
        changes: &Changes,
        fields: &Fields,
    ) -> Result<(), VendorError>;

    async fn set_active(&self, remote: &str, active: bool) -> Result<(), VendorError>;

    /// Every account at the vendor (for drift detection, `reconcile --full`). Fields are
    /// what the vendor can report under `map`'s names; a field it cannot read is absent.
    ///
    /// # Errors
    /// `Unsupported` where the vendor's API cannot list accounts.
    async fn list(&self) -> Result<Vec<Remote>, VendorError> {
        Err(VendorError::Unsupported("listing accounts"))
    }

    /// Removes the account for good (only where `supports_delete`).
    async fn delete(&self, _remote: &str) -> Result<(), VendorError> {
        Err(VendorError::Unsupported("delete"))
    }

    fn supports_delete(&self) -> bool {
        false
    }
}

/// Builds the connector for one vendor table, validating its own keys.
///
/// # Errors
/// `ConfigError` naming the key at fault.
pub fn build(
    settings: &VendorSettings,
    retry: &RetrySettings,
) -> Result<Arc<dyn Vendor>, ConfigError> {
    build_as(settings, retry, &crate::ha::user_agent(None))
}

/// [`build`] with the `User-Agent` its calls send (HA, issue 17: names the replica).
///
/// # Errors
/// As [`build`].
pub fn build_as(
    settings: &VendorSettings,
    retry: &RetrySettings,
    user_agent: &str,
) -> Result<Arc<dyn Vendor>, ConfigError> {
    let client = http::client_as(retry.request_timeout(), user_agent);
    let vendor: Arc<dyn Vendor> = match settings.kind.as_str() {
        "motive" => Arc::new(motive::Motive::new(settings, client)?),
        "drivekit" => Arc::new(drivekit::DriveKit::new(settings, client)?),
        "telematics" => Arc::new(telematics::Telematics::new(settings, client)?),
        "rocketchat" => Arc::new(rocketchat::RocketChat::new(settings, client)?),
        other => {
            return Err(ConfigError::invalid(
                settings.key("type"),
                format!("vendor type `{other}` is not available in this build yet"),
            ));
        }
    };
    if settings.on_remove == crate::config::OnRemove::Delete && !vendor.supports_delete() {
        return Err(ConfigError::invalid(
            settings.key("on_remove"),
            format!("`delete` is not supported by {} vendors", settings.kind),
        ));
    }
    Ok(vendor)
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
) -> Result<Fields, String> {
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
                return Err(format!(
                    "attribute `{k}`: `{field}` is not a {} field",
                    settings.kind
                ));
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
