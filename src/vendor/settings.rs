//! One `[vendors.NAME]` table, typed: the keys every vendor shares, and the kind's own
//! options (`type = "…"`), each kind's struct defined beside its connector.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use url::Url;

use super::{drivekit, motive, rocketchat, telematics};
use crate::config::common::{RawRate, bounded};
use crate::config::parse::{self, Table};
use crate::config::{ConfigError, RateLimit, Secrets};
use crate::model::OnRemove;
use crate::plan::DateRules;

/// Every `type` a vendor table may have.
pub const KINDS: &[&str] = &["motive", "drivekit", "telematics", "rocketchat"];

/// A vendor kind and its options.
#[derive(Debug, Clone)]
pub enum VendorKind {
    Motive(motive::Options),
    DriveKit(drivekit::Options),
    Telematics(telematics::Options),
    RocketChat(rocketchat::Options),
}

impl VendorKind {
    /// The `type` as written in the config.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Motive(_) => "motive",
            Self::DriveKit(_) => "drivekit",
            Self::Telematics(_) => "telematics",
            Self::RocketChat(_) => "rocketchat",
        }
    }

    fn parse(prefix: &str, kind: &str, options: Table) -> Result<Self, ConfigError> {
        let value = parse::value(options);
        Ok(match kind {
            "motive" => Self::Motive(parse::parse(prefix, value)?),
            "drivekit" => Self::DriveKit(parse::parse(prefix, value)?),
            "telematics" => Self::Telematics(parse::parse(prefix, value)?),
            "rocketchat" => Self::RocketChat(parse::parse(prefix, value)?),
            other => return Err(parse::unknown_kind(prefix, "vendor", other, KINDS)),
        })
    }
}

/// One `[vendors.NAME]` table.
#[derive(Debug, Clone)]
pub struct VendorSettings {
    /// The table name; the vendor's name in reports, the store and metrics.
    pub name: String,
    /// Host root of the vendor's API, or `None` to use the connector's default.
    pub base_url: Option<Url>,
    /// Only people in any of these groups are in scope; `None` means everyone.
    pub scope_groups: Option<BTreeSet<String>>,
    /// Vendor fields used when a person has no `NAME.FIELD` attribute.
    pub defaults: BTreeMap<String, String>,
    /// How many calls to this vendor may be in flight at once.
    pub concurrency: usize,
    /// At most `calls` per `per_secs` to this vendor (all its endpoints together).
    pub rate_limit: Option<RateLimit>,
    /// Congestion never slows this vendor below it.
    pub min_rate: Option<RateLimit>,
    pub on_remove: OnRemove,
    /// Fields sent on create (and on adoption where the account has none), never on
    /// update; checked against the connector's fields when it is built.
    pub create_only: BTreeSet<String>,
    /// How start and end dates apply here: this table's `provision_days_before_start`
    /// and `end_grace_days` over `[lifecycle]`'s (see `with_lifecycle`).
    pub dates: DateRules,
    /// The table's own day counts, before `[lifecycle]`'s defaults fill the gaps.
    lead_days: Option<u32>,
    grace_days: Option<u32>,
    pub kind: VendorKind,
    /// Relative paths (secret files) are relative to this directory.
    pub base_dir: PathBuf,
}

/// The keys every vendor table may have besides `type` and its kind's options.
const COMMON: &[&str] = &[
    "base_url",
    "scope",
    "defaults",
    "concurrency",
    "rate_limit",
    "min_rate",
    "on_remove",
    "create_only",
    "provision_days_before_start",
    "end_grace_days",
];

/// The longest lead or grace, in days: ten years.
pub const MAX_DAYS: u64 = 3_650;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Common {
    base_url: Option<String>,
    #[serde(default)]
    scope: Scope,
    #[serde(default)]
    defaults: BTreeMap<String, String>,
    concurrency: Option<u64>,
    rate_limit: Option<RawRate>,
    min_rate: Option<RawRate>,
    #[serde(default)]
    on_remove: OnRemove,
    #[serde(default, deserialize_with = "names")]
    create_only: Option<BTreeSet<String>>,
    provision_days_before_start: Option<u64>,
    end_grace_days: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Scope {
    #[serde(default, deserialize_with = "names")]
    groups: Option<BTreeSet<String>>,
}

/// A list of names (groups, fields), or (from the environment) one text of
/// comma-separated names.
fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BTreeSet<String>>, D::Error> {
    struct Groups;
    impl<'de> serde::de::Visitor<'de> for Groups {
        type Value = Option<BTreeSet<String>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of names")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Some(
                s.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(String::from)
                    .collect(),
            ))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeSet::new();
            while let Some(g) = seq.next_element::<String>()? {
                out.insert(g);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_any(Groups)
}

impl VendorSettings {
    /// Parses `[vendors.NAME]`.
    ///
    /// # Errors
    /// `Invalid` naming the key at fault.
    pub fn parse(name: &str, mut table: Table, base_dir: &Path) -> Result<Self, ConfigError> {
        let prefix = format!("vendors.{name}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ConfigError::invalid(
                prefix,
                "vendor names may use letters, digits, `-` and `_` only",
            ));
        }
        let common = parse::split(&mut table, COMMON);
        let (kind, options) = parse::tagged(&prefix, table)?;
        let kind = VendorKind::parse(&prefix, &kind, options)?;
        let c: Common = parse::parse(&prefix, parse::value(common))?;
        let key = |k: &str| format!("{prefix}.{k}");
        let base_url = c
            .base_url
            .map(|s| http_url(&s).map_err(|m| ConfigError::invalid(key("base_url"), m)))
            .transpose()?;
        let concurrency = bounded(&key("concurrency"), c.concurrency.unwrap_or(4), 1..=256, "")?;
        let rate = |k: &str, raw: Option<RawRate>| {
            raw.map(|r| RateLimit::from_raw(&key(k), r)).transpose()
        };
        let days = |k: &str, raw: Option<u64>| -> Result<Option<u32>, ConfigError> {
            raw.map(|n| {
                bounded(&key(k), n, 0..=MAX_DAYS, " days")
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            })
            .transpose()
        };
        let lead_days = days("provision_days_before_start", c.provision_days_before_start)?;
        let grace_days = days("end_grace_days", c.end_grace_days)?;
        let create_only = c.create_only.unwrap_or_default();
        if create_only.iter().any(|f| f.trim().is_empty()) {
            return Err(ConfigError::invalid(
                key("create_only"),
                "has an empty name",
            ));
        }
        Ok(Self {
            name: name.to_string(),
            base_url,
            scope_groups: c.scope.groups,
            defaults: c.defaults,
            concurrency: usize::try_from(concurrency).unwrap_or(256),
            rate_limit: rate("rate_limit", c.rate_limit)?,
            min_rate: rate("min_rate", c.min_rate)?,
            on_remove: c.on_remove,
            create_only,
            dates: DateRules {
                provision_days_before_start: lead_days.unwrap_or(0),
                end_grace_days: grace_days.unwrap_or(0),
                ..DateRules::default()
            },
            lead_days,
            grace_days,
            kind,
            base_dir: base_dir.to_path_buf(),
        })
    }

    /// Applies `[lifecycle]`: its time zone, and its day counts where this table has
    /// none of its own.
    pub fn with_lifecycle(mut self, lifecycle: &DateRules) -> Self {
        self.dates = DateRules {
            time_zone: lifecycle.time_zone,
            provision_days_before_start: self
                .lead_days
                .unwrap_or(lifecycle.provision_days_before_start),
            end_grace_days: self.grace_days.unwrap_or(lifecycle.end_grace_days),
        };
        self
    }

    /// Key path for messages, e.g. `vendors.motive.api_key`.
    pub fn key(&self, field: &str) -> String {
        format!("vendors.{}.{}", self.name, field)
    }

    /// This table's credential resolver.
    pub fn secrets(&self) -> Secrets<'_> {
        Secrets {
            prefix: format!("vendors.{}", self.name),
            base_dir: &self.base_dir,
        }
    }
}

fn http_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|error| format!("`{s}` is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "`{s}` must be an http:// or https:// URL with a host"
        ));
    }
    Ok(url)
}
