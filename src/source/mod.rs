//! Sources of truth: where people come from.
//!
//! Owns: the `Source` trait, the `Snapshot` it returns, and building a source from
//! config. Must not: know about vendors or the store. A source either returns every
//! record it was asked for (valid ones as `Person`, broken ones as `InvalidRecord`) or
//! fails as a whole; it never returns a partial list, because a missing person is read
//! as "this person left".

mod config;
pub mod file;
pub mod hr;
pub mod ldap;
#[cfg(test)]
pub(crate) mod no_panic;
mod record;
mod remote;
pub mod scim;
mod snapshot;

use std::sync::Arc;

use async_trait::async_trait;

use crate::budget::Budget;
use crate::http::Flow;
pub use crate::model::{InvalidRecord, Snapshot};

pub use config::{Build, KINDS, SourceConfig};
#[cfg(test)]
pub(crate) use config::{test_build, test_options};
pub use record::{FIELDS, RecordError, parse_record};
pub(crate) use snapshot::{Place, SnapshotBuilder, snapshot_from};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read source {path}: {message}")]
    Unreadable { path: String, message: String },
    #[error("source {path} is malformed: {message}")]
    Malformed { path: String, message: String },
}

#[async_trait]
pub trait Source: Send + Sync {
    /// Reads every record; remote sources wait within `budget`.
    ///
    /// # Errors
    /// Any failure to read the whole source; never a partial snapshot.
    async fn fetch(&self, budget: &Budget) -> Result<Snapshot, SourceError>;

    /// The flow control of a remote source's calls, if it makes any.
    fn flow(&self) -> Option<&Arc<Flow>> {
        None
    }

    /// A short description for `roster check` and logs (no secrets).
    fn describe(&self) -> String;

    /// `roster check`'s probe: proves the source can be read and says what it found.
    /// The default reads everything; a source may do something cheaper or more telling.
    ///
    /// # Errors
    /// Whatever would make a pass refuse this source.
    async fn check(&self, budget: &Budget) -> Result<String, SourceError> {
        let snapshot = self.fetch(budget).await?;
        let mut out = format!(
            "{} people, {} invalid records",
            snapshot.people.len(),
            snapshot.invalid.len()
        );
        for r in &snapshot.invalid {
            out.push_str(&format!("\n  invalid {r}"));
        }
        if snapshot.people.is_empty() {
            return Err(SourceError::Malformed {
                path: self.describe(),
                message: "no valid records; a pass would be refused".into(),
            });
        }
        Ok(out)
    }
}
