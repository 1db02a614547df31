//! The `meta` tree: the last report, the last source count, what each vendor's flow
//! control keeps between passes (`pace/NAME`), and what each notify target has been
//! alerted of (`alerts/LABEL`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    ALERTS_PREFIX, KEY_LAST_REPORT, KEY_SOURCE_COUNT, META, PACE_PREFIX, Store, StoreError, decode,
};

/// What a vendor's flow control keeps between passes (`http::Flow`): the rate a pass
/// ended with, when it was below normal (a hint that expires, see `http::congestion`),
/// and recent logins with the vendor's login block (so the login limit holds across
/// runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaceRecord {
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logins: Vec<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logins_blocked_until: Option<DateTime<Utc>>,
}

impl Store {
    /// Keeps the last pass's report (any serializable shape; the store does not care).
    ///
    /// # Errors
    /// sled or encoding errors.
    pub async fn save_report<T: Serialize>(&self, report: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(report).map_err(|e| StoreError::Corrupt {
            key: "meta/last_report".into(),
            message: e.to_string(),
        })?;
        let meta = self.db.open_tree(META)?;
        meta.insert(KEY_LAST_REPORT, bytes)?;
        self.durable().await?;
        Ok(())
    }

    /// The last pass's report, if any.
    ///
    /// # Errors
    /// sled or decoding errors.
    pub fn last_report<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>, StoreError> {
        let meta = self.db.open_tree(META)?;
        meta.get(KEY_LAST_REPORT)?
            .map(|v| decode(&v, || "meta/last_report".into()))
            .transpose()
    }

    /// How many records the last completed (not refused, not dry-run) pass read.
    ///
    /// # Errors
    /// sled errors.
    pub fn last_source_count(&self) -> Result<Option<u64>, StoreError> {
        let meta = self.db.open_tree(META)?;
        Ok(meta
            .get(KEY_SOURCE_COUNT)?
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok()))
    }

    /// # Errors
    /// sled errors.
    pub async fn set_last_source_count(&self, count: u64) -> Result<(), StoreError> {
        let meta = self.db.open_tree(META)?;
        let value = count.to_string();
        // The usual case (the same count again) costs no write and no fsync.
        if meta.get(KEY_SOURCE_COUNT)?.as_deref() == Some(value.as_bytes()) {
            return Ok(());
        }
        meta.insert(KEY_SOURCE_COUNT, value.as_bytes())?;
        self.durable().await?;
        Ok(())
    }

    /// What pacing learned about a vendor's rate (calls per second), if anything.
    ///
    /// # Errors
    /// sled or decoding errors.
    pub fn pace(&self, vendor: &str) -> Result<Option<PaceRecord>, StoreError> {
        let key = format!("{PACE_PREFIX}{vendor}");
        let meta = self.db.open_tree(META)?;
        meta.get(key.as_bytes())?
            .map(|v| decode(&v, || format!("meta/{key}")))
            .transpose()
    }

    /// Keeps (or, with `None`, forgets) what pacing learned about a vendor.
    ///
    /// # Errors
    /// sled or encoding errors.
    pub async fn set_pace(
        &self,
        vendor: &str,
        record: Option<&PaceRecord>,
    ) -> Result<(), StoreError> {
        let key = format!("{PACE_PREFIX}{vendor}");
        let meta = self.db.open_tree(META)?;
        match record {
            Some(r) => {
                let bytes = serde_json::to_vec(r).map_err(|e| StoreError::Corrupt {
                    key: format!("meta/{key}"),
                    message: e.to_string(),
                })?;
                meta.insert(key.as_bytes(), bytes)?;
            }
            // Nothing learned and nothing kept (every pass at the configured rate): no
            // write and no fsync.
            None if !meta.contains_key(key.as_bytes())? => return Ok(()),
            None => {
                meta.remove(key.as_bytes())?;
            }
        }
        self.durable().await?;
        Ok(())
    }

    /// What the notify target `label` has been alerted of, if anything (the caller's
    /// shape: condition names, vendor names and times — never a URL or person data).
    ///
    /// # Errors
    /// sled or decoding errors.
    pub fn alert_state<T: for<'de> Deserialize<'de>>(
        &self,
        label: &str,
    ) -> Result<Option<T>, StoreError> {
        let key = format!("{ALERTS_PREFIX}{label}");
        let meta = self.db.open_tree(META)?;
        meta.get(key.as_bytes())?
            .map(|v| decode(&v, || format!("meta/{key}")))
            .transpose()
    }

    /// Keeps what the notify target `label` has been alerted of, durably: a one-shot
    /// run that exits right after must not alert the same condition again next time.
    ///
    /// # Errors
    /// sled or encoding errors.
    pub async fn set_alert_state<T: Serialize>(
        &self,
        label: &str,
        state: &T,
    ) -> Result<(), StoreError> {
        let key = format!("{ALERTS_PREFIX}{label}");
        let bytes = serde_json::to_vec(state).map_err(|e| StoreError::Corrupt {
            key: format!("meta/{key}"),
            message: e.to_string(),
        })?;
        let meta = self.db.open_tree(META)?;
        meta.insert(key.as_bytes(), bytes)?;
        self.durable().await?;
        Ok(())
    }
}
