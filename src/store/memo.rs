//! What lets a pass skip planning a vendor when nothing its plan depends on changed:
//! each vendor's *generation* (`meta/gen/NAME`, bumped before every write to that
//! vendor's records, by any command and any process) and the *memo* of the last empty
//! plan (`meta/memo/NAME`), made by `pass::memo`.
//!
//! The generation is bumped in the transaction that writes the records (`links::write`,
//! the one way records are written): a record that survived a crash implies its bump did.
//! A roster that does not keep generations must not write here: schema 4 keeps older ones
//! out (see `SCHEMA_VERSION`), and no store older than that holds a memo.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{TransactionalTree, UnabortableTransactionError};

use super::{META, Store, StoreError};
use crate::model::{Op, PersonId};

/// `meta/gen/NAME`: eight big-endian bytes.
const GEN_PREFIX: &str = "gen/";
/// `meta/memo/NAME`: a `PlanMemo` as JSON.
const MEMO_PREFIX: &str = "memo/";

/// A vendor's last plan when it had no operation: what a pass needs to report it again
/// without planning, and what it was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanMemo {
    /// A digest of everything that plan depended on besides the vendor's records and the
    /// clock (see `pass::memo`), in hex.
    pub inputs: String,
    /// The vendor's generation before that plan read its records.
    pub generation: u64,
    /// The moment a date rule changes what the vendor should hold for someone (the plan
    /// is stale from then on), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<DateTime<Utc>>,
    pub unchanged: usize,
    pub linked: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<(PersonId, Op, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<(PersonId, Op, String)>,
}

/// Bumps `vendor`'s generation inside the transaction `meta` belongs to (`links::write`).
pub(super) fn bump(
    meta: &TransactionalTree,
    vendor: &str,
) -> Result<(), UnabortableTransactionError> {
    let key = format!("{GEN_PREFIX}{vendor}");
    let n = meta
        .get(key.as_bytes())?
        .and_then(|v| decode_gen(&v))
        .unwrap_or(0);
    meta.insert(key.as_bytes(), &n.wrapping_add(1).to_be_bytes())?;
    Ok(())
}

fn decode_gen(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

impl Store {
    /// How many writes a vendor's records have had (0: none since generations were kept).
    ///
    /// # Errors
    /// sled errors.
    pub fn generation(&self, vendor: &str) -> Result<u64, StoreError> {
        let meta = self.db.open_tree(META)?;
        Ok(meta
            .get(format!("{GEN_PREFIX}{vendor}"))?
            .and_then(|v| decode_gen(&v))
            .unwrap_or(0))
    }

    /// The memo of a vendor's last empty plan. One that does not decode (written by a
    /// roster with another memo layout) is no memo: the vendor is planned in full.
    ///
    /// # Errors
    /// sled errors.
    pub fn plan_memo(&self, vendor: &str) -> Result<Option<PlanMemo>, StoreError> {
        let meta = self.db.open_tree(META)?;
        Ok(meta
            .get(format!("{MEMO_PREFIX}{vendor}"))?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Forgets every vendor's memo (a store upgraded from an older schema).
    ///
    /// # Errors
    /// sled errors.
    pub(super) fn forget_plan_memos(&self) -> Result<(), StoreError> {
        let meta = self.db.open_tree(META)?;
        for key in meta.scan_prefix(MEMO_PREFIX).keys() {
            meta.remove(key?)?;
        }
        Ok(())
    }

    /// Keeps (or, with `None`, forgets) a vendor's memo. It waits for no flush: a memo
    /// lost in a crash only costs the next pass a full plan, and it becomes durable with
    /// the report saved at the end of the pass.
    ///
    /// # Errors
    /// sled or encoding errors.
    pub fn set_plan_memo(&self, vendor: &str, memo: Option<&PlanMemo>) -> Result<(), StoreError> {
        let meta = self.db.open_tree(META)?;
        let key = format!("{MEMO_PREFIX}{vendor}");
        match memo {
            Some(m) => {
                let bytes = serde_json::to_vec(m).map_err(|e| StoreError::Corrupt {
                    key: format!("meta/{key}"),
                    message: e.to_string(),
                })?;
                meta.insert(key, bytes)?;
            }
            None => {
                meta.remove(key)?;
            }
        }
        Ok(())
    }
}
