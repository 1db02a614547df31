//! The `[ha]` table: which Lease, as whom, and its timings.
//!
//! Owns: `HaSettings` and turning the table into it through the one parser
//! (`config::parse`, every error naming its key `ha.KEY`), with every bound checked at
//! load. `$HOSTNAME` (a pod's name) is the default identity; the caller passes it in, so
//! this reads no environment itself.

use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::common::bounded;
use crate::config::parse::{self, Table};

/// `[ha]`: only the replica holding the Lease `namespace/lease` runs passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaSettings {
    /// The Lease's name (a DNS subdomain).
    pub lease: String,
    /// `None`: the Kubernetes client's default namespace (in a pod: its own, from the
    /// service account's namespace file).
    pub namespace: Option<String>,
    /// This replica's name in the Lease (`holderIdentity`) and in its `User-Agent`.
    pub identity: String,
    /// How long the Lease holds after its last renewal, as the standby counts it.
    pub lease_duration: Duration,
    /// The leader stops starting vendor calls when no renewal has succeeded for this
    /// long; shorter than `lease_duration`, so it stops before a standby may take over.
    pub renew_deadline: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    lease: Option<String>,
    namespace: Option<String>,
    identity: Option<String>,
    lease_duration_secs: Option<u64>,
    renew_deadline_secs: Option<u64>,
}

impl HaSettings {
    /// Parses and checks the `[ha]` table; `hostname` is `$HOSTNAME` (the pod's name),
    /// the default identity.
    ///
    /// # Errors
    /// The first invalid key, named as `ha.KEY`.
    pub fn parse(table: Table, hostname: Option<&str>) -> Result<Self, ConfigError> {
        let raw: Options = parse::parse("ha", parse::value(table))?;
        let lease = raw
            .lease
            .ok_or_else(|| ConfigError::invalid("ha.lease", "is required in an [ha] table"))?;
        if !is_dns_name(&lease, 253, true) {
            return Err(ConfigError::invalid(
                "ha.lease",
                format!(
                    "`{lease}` is not a Kubernetes object name (lower-case letters, digits, `-` and `.`, at most 253)"
                ),
            ));
        }
        if let Some(ns) = &raw.namespace
            && !is_dns_name(ns, 63, false)
        {
            return Err(ConfigError::invalid(
                "ha.namespace",
                format!(
                    "`{ns}` is not a Kubernetes namespace name (lower-case letters, digits and `-`, at most 63)"
                ),
            ));
        }
        let Some(identity) = raw.identity.or_else(|| hostname.map(str::to_string)) else {
            return Err(ConfigError::invalid(
                "ha.identity",
                "is required when $HOSTNAME is not set",
            ));
        };
        // It also goes into the User-Agent header, so: visible ASCII without parentheses.
        if identity.is_empty()
            || identity.len() > 128
            || !identity
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._:@".contains(c))
        {
            return Err(ConfigError::invalid(
                "ha.identity",
                format!("`{identity}` must be 1 to 128 letters, digits or `-._:@`"),
            ));
        }
        let duration = bounded(
            "ha.lease_duration_secs",
            raw.lease_duration_secs.unwrap_or(15),
            2..=3600,
            " s",
        )?;
        let deadline = raw.renew_deadline_secs.unwrap_or(10);
        if deadline < 1 || deadline >= duration {
            return Err(ConfigError::invalid(
                "ha.renew_deadline_secs",
                format!(
                    "must be at least 1 and below ha.lease_duration_secs ({duration}): the leader \
                     must stop before a standby may take over"
                ),
            ));
        }
        Ok(Self {
            lease,
            namespace: raw.namespace,
            identity,
            lease_duration: Duration::from_secs(duration),
            renew_deadline: Duration::from_secs(deadline),
        })
    }
}

/// A DNS-1123 subdomain (`dots`) or label.
fn is_dns_name(s: &str, max: usize, dots: bool) -> bool {
    let ok_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    !s.is_empty()
        && s.len() <= max
        && s.chars().all(ok_char)
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}
