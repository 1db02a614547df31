//! Vendors: the systems roster pushes people to.
//!
//! Owns: the `Vendor` trait every connector implements, building connectors from their
//! typed config (`settings.rs`), `VendorError` (`error.rs`) and the mapping helpers every
//! connector shares (`fields.rs`). Must not: see the store or other vendors, or pace,
//! retry or hold a session itself (that is `crate::http`). Adding a vendor: see
//! ARCHITECTURE.md, "How to add a vendor".

pub mod drivekit;
mod error;
mod fields;
pub mod motive;
mod reply;
pub mod rocketchat;
mod settings;
pub mod telematics;
#[cfg(test)]
mod testing;

pub use error::VendorError;
pub use fields::{
    Allowed, FieldNames, PersonField, check_create_only, check_defaults, put_person_fields,
    vendor_fields,
};
pub use reply::classify;
pub use settings::{KINDS, MAX_DAYS, VendorKind, VendorSettings};

use std::sync::Arc;

use async_trait::async_trait;

use crate::budget::Budget;
use crate::config::{ConfigError, RetrySettings};
use crate::http::{self, FlowSettings, Http, Observer};
pub use crate::model::Remote;
use crate::model::{Changes, Fields, MapError, Person, PersonId, UniqueKey};

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

    /// The values this vendor keeps unique across its accounts and how it compares them
    /// (from its API notes, `shared/vendors/NAME.md`), in one place per connector. Two
    /// people with the same value are set aside at this vendor; an account found by
    /// lookup is linked only when its values are this person's (`plan::identity`).
    fn unique_keys(&self) -> &'static [UniqueKey] {
        &[]
    }

    /// Every field name `map` can produce (`create_only` is checked against it). The
    /// default names none, so a connector that does not say cannot have create-only
    /// fields.
    fn field_names(&self) -> FieldNames {
        FieldNames {
            listed: Vec::new(),
            more: None,
        }
    }

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

/// Builds the connector for one vendor table; `observer` hears of its flow control.
///
/// # Errors
/// `ConfigError` naming the key at fault (or saying the HTTP client cannot be built).
pub fn build(
    settings: &VendorSettings,
    retry: &RetrySettings,
    observer: Arc<dyn Observer>,
) -> Result<Arc<dyn Vendor>, ConfigError> {
    let http = Http::new(http::Options {
        name: &settings.name,
        timeout: retry.request_timeout(),
        flow: FlowSettings {
            ceiling: settings.rate_limit.map(|r| (r.per_second(), r.calls)),
            floor: settings.min_rate.map(crate::config::RateLimit::per_second),
            ..FlowSettings::default()
        },
        retry: *retry,
        observer,
    })
    .map_err(|e| ConfigError::invalid(format!("vendors.{}", settings.name), e.to_string()))?;
    let vendor: Arc<dyn Vendor> = match &settings.kind {
        VendorKind::Motive(o) => Arc::new(motive::Motive::new(settings, o, http)?),
        VendorKind::DriveKit(o) => Arc::new(drivekit::DriveKit::new(settings, o, http)?),
        VendorKind::Telematics(o) => Arc::new(telematics::Telematics::new(settings, o, http)?),
        VendorKind::RocketChat(o) => Arc::new(rocketchat::RocketChat::new(settings, o, http)?),
    };
    check_create_only(settings, &vendor.field_names(), vendor.unique_keys())?;
    if settings.on_remove == crate::model::OnRemove::Delete && !vendor.supports_delete() {
        return Err(ConfigError::invalid(
            settings.key("on_remove"),
            format!(
                "`delete` is not supported by {} vendors",
                settings.kind.name()
            ),
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
