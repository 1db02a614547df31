//! The changes the clock alone will bring for one person at one vendor (`plan
//! --upcoming`, `explain`): each moment a date rule changes the person's stage, and the
//! operation a pass at that moment would make. PURE.
//!
//! It plays the passes forward from what the store holds now: first the pass at `now`
//! (so a person created today and leaving in three days shows a deactivation), then one
//! pass at each due moment up to `until`, each seeing what the one before would have
//! done. It assumes the source does not change meanwhile and every call succeeds.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Desired, OpKind, Policy, Target, desire, plan_with};
use crate::model::{Person, RecordState, VendorRecord};

/// One change that becomes due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// From when a pass makes it.
    pub at: DateTime<Utc>,
    pub kind: OpKind,
}

/// At most this many stage changes per person: not yet → joined → ended.
const MAX_STEPS: usize = 4;

/// The changes due for `person` at `target` after `now`, up to and including `until`,
/// in order; `record` is what the store holds for the person now.
pub fn upcoming(
    target: &dyn Target,
    person: &Person,
    record: Option<&VendorRecord>,
    policy: Policy<'_>,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<Due> {
    let rules = target.dates();
    let mut record = record.cloned();
    if let Some(kind) = step(target, person, record.as_ref(), policy, now) {
        apply(&mut record, &kind, now);
    }
    let mut out = Vec::new();
    let mut at = now;
    for _ in 0..MAX_STEPS {
        let Some(due) = rules.next_due(person, at).filter(|d| *d <= until) else {
            break;
        };
        if let Some(kind) = step(target, person, record.as_ref(), policy, due) {
            apply(&mut record, &kind, due);
            out.push(Due { at: due, kind });
        }
        at = due;
    }
    out
}

/// What a pass at `at` would do for the person.
fn step(
    target: &dyn Target,
    person: &Person,
    record: Option<&VendorRecord>,
    policy: Policy<'_>,
    at: DateTime<Utc>,
) -> Option<OpKind> {
    let desired: BTreeMap<_, Desired> =
        BTreeMap::from([(person.id.clone(), desire(target, person, at))]);
    let known: BTreeMap<_, VendorRecord> = record
        .map(|r| (person.id.clone(), r.clone()))
        .into_iter()
        .collect();
    plan_with(&desired, &known, policy)
        .ops
        .into_iter()
        .next()
        .map(|o| o.kind)
}

/// The record as it would be once `kind` succeeded at `at`.
fn apply(record: &mut Option<VendorRecord>, kind: &OpKind, at: DateTime<Utc>) {
    // Not known until the vendor answers; any id stands for "linked".
    let remote_id = Some(
        record
            .as_ref()
            .and_then(|r| r.remote_id.clone())
            .unwrap_or_default(),
    );
    let linked_at = record.as_ref().map_or(at, |r| r.linked_at);
    *record = match kind {
        OpKind::Create { fields, .. }
        | OpKind::Update { fields, .. }
        | OpKind::Reactivate { fields, .. } => Some(VendorRecord {
            remote_id,
            state: RecordState::Active,
            fields: fields.clone(),
            linked_at,
            updated_at: at,
        }),
        OpKind::Deactivate { .. } => record.take().map(|r| VendorRecord {
            remote_id,
            state: RecordState::Deactivated,
            updated_at: at,
            ..r
        }),
        OpKind::Delete { .. } => None,
    };
}
