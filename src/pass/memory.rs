//! What a vendor's flow control keeps between passes (`meta/pace/NAME`): the rate hint
//! (`http::congestion`) and the login gate (`http::session`).

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::http::Flow;
use crate::http::congestion::Hint;
use crate::http::session::LoginLog;
use crate::store::{PaceRecord, Store, StoreError};

/// Starts `flow`'s pass from what earlier passes kept: the rate hint, with its age, and
/// the logins made.
///
/// # Errors
/// Store failures.
pub fn recall(store: &Store, vendor: &str, flow: &Flow) -> Result<(), StoreError> {
    let Some(p) = store.pace(vendor)? else {
        flow.start_pass(None, None);
        return Ok(());
    };
    let hint = p.rate_per_sec.map(|rate| Hint {
        rate,
        age: (Utc::now() - p.updated_at)
            .to_std()
            .unwrap_or(Duration::ZERO),
    });
    let logins = LoginLog {
        attempts: p.logins.iter().map(|t| SystemTime::from(*t)).collect(),
        blocked_until: p.logins_blocked_until.map(SystemTime::from),
    };
    flow.start_pass(hint, Some(&logins));
    Ok(())
}

/// Keeps what `flow` learned for the next pass (or forgets it when there is nothing).
///
/// # Errors
/// Store failures.
pub async fn keep(store: &Store, vendor: &str, flow: &Flow) -> Result<(), StoreError> {
    let logins = flow.login_log().unwrap_or_default();
    let record = PaceRecord {
        rate_per_sec: flow.hint(),
        updated_at: Utc::now(),
        logins: logins
            .attempts
            .into_iter()
            .map(DateTime::<Utc>::from)
            .collect(),
        logins_blocked_until: logins.blocked_until.map(DateTime::<Utc>::from),
    };
    let empty = record.rate_per_sec.is_none()
        && record.logins.is_empty()
        && record.logins_blocked_until.is_none();
    store.set_pace(vendor, (!empty).then_some(&record)).await
}
