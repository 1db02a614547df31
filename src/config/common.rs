//! The typed tables every config has (`[safety]`, `[retry]`, `[history]`), rate limits,
//! and the bounds every duration and count is held to: a value out of range is an error
//! naming its key at load, never a panic or an endless wait later.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// Checks `value` against `range`, naming `key`.
///
/// # Errors
/// `Invalid` naming the key and the range.
pub fn bounded(
    key: &str,
    value: u64,
    range: std::ops::RangeInclusive<u64>,
    unit: &str,
) -> Result<u64, ConfigError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::invalid(
            key,
            format!("must be from {} to {}{unit}", range.start(), range.end()),
        ))
    }
}

const DAY: u64 = 86_400;

/// Limits that stop a broken source or a bad change from emptying the vendors.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Safety {
    /// Refuse a pass that deactivates more than this many people at one vendor.
    pub max_deactivations: u64,
    /// Refuse a pass that deactivates more than this share of a vendor's active people.
    pub max_deactivation_ratio: f64,
    /// Refuse a pass whose source has lost more than this share of the people the last
    /// completed pass read: a half-failed export must not read as people leaving.
    pub max_source_drop_ratio: f64,
}

impl Default for Safety {
    fn default() -> Self {
        Self {
            max_deactivations: 50,
            max_deactivation_ratio: 0.2,
            max_source_drop_ratio: 0.2,
        }
    }
}

impl Safety {
    /// # Errors
    /// A ratio outside 0..=1.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("safety.max_deactivation_ratio", self.max_deactivation_ratio),
            ("safety.max_source_drop_ratio", self.max_source_drop_ratio),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::invalid(key, "must be between 0 and 1"));
            }
        }
        Ok(())
    }
}

/// How hard one pass tries before leaving an operation for the next pass.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// First wait after a retryable failure.
    pub initial_interval_ms: u64,
    /// Longest single wait between two attempts (a longer `Retry-After` gives up instead).
    pub max_interval_secs: u64,
    /// Give up on one operation after this long.
    pub max_elapsed_secs: u64,
    /// Every wait of a pass comes out of this (`budget.rs`).
    pub pass_budget_secs: u64,
    /// HTTP request timeout.
    pub request_timeout_secs: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            initial_interval_ms: 500,
            max_interval_secs: 60,
            max_elapsed_secs: 300,
            pass_budget_secs: 900,
            request_timeout_secs: 30,
        }
    }
}

impl RetrySettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// # Errors
    /// A duration out of its range, naming the key.
    pub fn check(&self) -> Result<(), ConfigError> {
        bounded(
            "retry.initial_interval_ms",
            self.initial_interval_ms,
            1..=600_000,
            " ms",
        )?;
        bounded(
            "retry.max_interval_secs",
            self.max_interval_secs,
            1..=DAY,
            " s",
        )?;
        bounded(
            "retry.max_elapsed_secs",
            self.max_elapsed_secs,
            1..=7 * DAY,
            " s",
        )?;
        bounded(
            "retry.pass_budget_secs",
            self.pass_budget_secs,
            1..=7 * DAY,
            " s",
        )?;
        bounded(
            "retry.request_timeout_secs",
            self.request_timeout_secs,
            1..=3600,
            " s",
        )?;
        Ok(())
    }
}

/// How much audit history (every vendor write call) the store keeps.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySettings {
    /// Entries beyond this many are dropped, oldest first, after each pass.
    pub max_entries: usize,
    /// Entries older than this are dropped after each pass.
    pub max_age_days: u32,
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_age_days: 365,
        }
    }
}

impl HistorySettings {
    /// # Errors
    /// A count or age out of range (a century of history at most), naming the key.
    pub fn check(&self) -> Result<(), ConfigError> {
        bounded(
            "history.max_entries",
            self.max_entries as u64,
            0..=100_000_000,
            "",
        )?;
        bounded(
            "history.max_age_days",
            u64::from(self.max_age_days),
            1..=36_500,
            " days",
        )?;
        Ok(())
    }
}

/// A rate: `calls` per `per_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub calls: u32,
    pub per_secs: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRate {
    calls: u64,
    per_secs: f64,
}

impl RateLimit {
    pub fn per_second(self) -> f64 {
        f64::from(self.calls) / self.per_secs
    }

    /// # Errors
    /// Out of range, naming `key.calls` or `key.per_secs`.
    pub fn from_raw(key: &str, raw: RawRate) -> Result<Self, ConfigError> {
        let calls = bounded(&format!("{key}.calls"), raw.calls, 1..=1_000_000, "")?;
        if !(raw.per_secs > 0.0 && raw.per_secs <= DAY as f64) {
            return Err(ConfigError::invalid(
                format!("{key}.per_secs"),
                "must be a number of seconds above 0 and at most 86400",
            ));
        }
        Ok(Self {
            calls: u32::try_from(calls).unwrap_or(u32::MAX),
            per_secs: raw.per_secs,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}
