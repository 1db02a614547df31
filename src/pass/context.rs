//! Everything a pass needs, built once from the config: the source, each vendor's
//! connector, and who listens.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::hooks::Hooks;
use crate::budget::Budget;
use crate::config::ConfigError;
use crate::model::{Fields, MapError, Person, UniqueKey};
use crate::plan::{DateRules, Policy, Target};
use crate::settings::Settings;
use crate::shutdown::Shutdown;
use crate::source::Source;
use crate::vendor::Vendor;
use crate::vendor::VendorSettings;

pub struct Context {
    pub settings: Settings,
    pub source: Box<dyn Source>,
    /// Each vendor with its settings, in name order.
    pub vendors: Vec<(VendorSettings, Arc<dyn Vendor>)>,
    /// Hears of retries, progress, throttling and pacing (metrics, progress display).
    pub hooks: Arc<dyn Hooks>,
}

impl Context {
    /// # Errors
    /// Any source or connector whose keys are invalid.
    pub fn build(settings: Settings, hooks: Arc<dyn Hooks>) -> Result<Self, ConfigError> {
        let observer: Arc<dyn crate::http::Observer> = hooks.clone();
        let source = settings.source.build(&crate::source::Build {
            base_dir: settings.base_dir.clone(),
            retry: settings.retry,
            observer: observer.clone(),
        })?;
        let vendors = settings
            .vendors
            .values()
            .map(|v| {
                Ok((
                    v.clone(),
                    crate::vendor::build(v, &settings.retry, observer.clone())?,
                ))
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Self {
            settings,
            source,
            vendors,
            hooks,
        })
    }

    /// The pass's waiting budget: `retry.pass_budget_secs` from now, pauses up to
    /// `retry.max_interval_secs`, ended by `shutdown`.
    pub fn budget(&self, shutdown: &Shutdown) -> Budget {
        Budget::new(
            Duration::from_secs(self.settings.retry.pass_budget_secs),
            Duration::from_secs(self.settings.retry.max_interval_secs),
            shutdown.clone(),
        )
    }

    /// The vendors a pass covers (all when `only` is empty).
    pub fn selected(&self, only: &[String]) -> Vec<&(VendorSettings, Arc<dyn Vendor>)> {
        self.vendors
            .iter()
            .filter(|(s, _)| only.is_empty() || only.contains(&s.name))
            .collect()
    }
}

/// A vendor as planning sees it: its scope from the config, its mapping from the
/// connector.
pub struct Slot<'a>(pub &'a VendorSettings, pub &'a dyn Vendor);

impl Target for Slot<'_> {
    fn scope(&self) -> Option<&BTreeSet<String>> {
        self.0.scope_groups.as_ref()
    }

    fn map(&self, person: &Person) -> Result<Fields, MapError> {
        self.1.map(person)
    }

    fn unique_keys(&self) -> &[UniqueKey] {
        self.1.unique_keys()
    }

    fn dates(&self) -> DateRules {
        self.0.dates
    }

    fn create_only(&self) -> &BTreeSet<String> {
        &self.0.create_only
    }
}

impl Slot<'_> {
    /// This vendor's [`Policy`] for the plan.
    pub fn policy(&self) -> Policy<'_> {
        Policy {
            on_remove: self.0.on_remove,
            create_only: &self.0.create_only,
        }
    }
}
