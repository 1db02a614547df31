//! The plan: which call each person needs at one vendor. PURE: no I/O, no clock, no
//! async. Deterministic: operations come out ordered by person id.
//!
//! | wanted \ stored      | none        | creating          | active               | deactivated          |
//! |----------------------|-------------|-------------------|----------------------|----------------------|
//! | active, fields F     | create F    | create F (resume) | update Δ, or nothing | reactivate (+ Δ)     |
//! | inactive / out of scope | nothing  | deactivate (look up first) | deactivate  | nothing              |
//! | removed from source  | nothing     | deactivate (look up first) | deactivate or delete | nothing or delete |
//! | skipped / held / not yet joined | nothing | nothing | nothing         | nothing              |
//!
//! "Held" people have an invalid source record: they keep whatever state they have until
//! the record is fixed, so a typo in the source never deactivates anyone. People not yet
//! joined (before their start date, `dates`) are left exactly as they are, too.
//!
//! Create-only fields (`Policy::create_only`) are sent by a create and never by an update
//! or a reactivation: for an existing account the wanted fields keep, for those names,
//! what was pushed at the create (`keep_create_only`), so they never show as a change.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::model::{
    Changes, Fields, Known, OnRemove, Op, PersonId, RecordState, VendorRecord, Why, changes,
};

/// What the source says one vendor should hold for one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Desired {
    /// Active and in scope: the account should exist, active, with these fields.
    Active(Fields),
    /// In the source but not wanted at this vendor.
    Inactive(Why),
    /// Cannot be sent to this vendor as the source has it (the message says why).
    Skip(String),
    /// The source record is invalid: change nothing for this person.
    Hold,
    /// Not yet joined (before the start date, less the vendor's lead days): no account
    /// is created and an existing one is left as it is, until `from`.
    NotYet { from: DateTime<Utc> },
}

/// How one vendor's plan treats what the source wants.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// What removal from the source means.
    pub on_remove: OnRemove,
    /// Fields sent on create (and on adoption where the account has no value), never
    /// on update.
    pub create_only: &'a BTreeSet<String>,
}

impl Policy<'_> {
    /// No create-only fields.
    pub fn removal(on_remove: OnRemove) -> Policy<'static> {
        Policy {
            on_remove,
            create_only: &NO_FIELDS,
        }
    }
}

static NO_FIELDS: BTreeSet<String> = BTreeSet::new();

/// `wanted` as it may be sent to an account that exists: each create-only field keeps
/// the value in `existing` (what was pushed, or what the account has), and one
/// `existing` lacks is sent only when `send_missing` (adopting an account that has no
/// value for it), else left out.
pub fn keep_create_only(
    wanted: &Fields,
    existing: &Fields,
    create_only: &BTreeSet<String>,
    send_missing: bool,
) -> Fields {
    let mut out = wanted.clone();
    for name in create_only {
        match existing.get(name) {
            Some(v) => {
                out.insert(name.clone(), v.clone());
            }
            None if send_missing => {}
            None => {
                out.remove(name);
            }
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// `resume`: an earlier create may have reached the vendor; look up before creating.
    Create {
        fields: Fields,
        resume: bool,
    },
    Update {
        remote: String,
        changes: Changes,
        fields: Fields,
    },
    /// `remote` is `None` when only a create intent was stored: look the account up.
    Deactivate {
        remote: Option<String>,
        why: Why,
    },
    Reactivate {
        remote: String,
        changes: Changes,
        fields: Fields,
    },
    Delete {
        remote: Option<String>,
    },
}

impl OpKind {
    pub fn op(&self) -> Op {
        match self {
            Self::Create { .. } => Op::Create,
            Self::Update { .. } => Op::Update,
            Self::Deactivate { .. } => Op::Deactivate,
            Self::Reactivate { .. } => Op::Reactivate,
            Self::Delete { .. } => Op::Delete,
        }
    }

    /// Names of the fields this operation sends.
    pub fn field_names(&self) -> Vec<String> {
        match self {
            Self::Create { fields, .. } => fields.keys().cloned().collect(),
            Self::Update { changes, .. } | Self::Reactivate { changes, .. } => {
                changes.keys().cloned().collect()
            }
            Self::Deactivate { .. } | Self::Delete { .. } => Vec::new(),
        }
    }

    pub fn is_removal(&self) -> bool {
        matches!(self, Self::Deactivate { .. } | Self::Delete { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub person: PersonId,
    pub kind: OpKind,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub ops: Vec<Operation>,
    /// Linked people whose account already matches the source.
    pub unchanged: usize,
    /// People that cannot be sent as they are: who, the operation they would have
    /// needed, and the reason.
    pub skipped: Vec<(PersonId, Op, String)>,
    /// Stored records not deactivated (active or pending create): the safety gate's base.
    pub linked: usize,
    /// People set aside because they would share an account with someone else
    /// (`identity`): who, the operation they would have needed, and why.
    pub conflicts: Vec<(PersonId, Op, String)>,
    /// The earliest moment after the plan's "now" at which a start or end date changes
    /// what this vendor should hold for someone: the plan is stale by the clock alone
    /// from then on (filled in by the pass, from `dates::DateRules::next_due_of`).
    pub next_due: Option<DateTime<Utc>>,
    /// With `plan --upcoming`: the changes due within the window, by person, in due
    /// order (filled in by the pass, from `upcoming::upcoming`).
    pub upcoming: Vec<(PersonId, super::upcoming::Due)>,
}

impl Plan {
    pub fn removals(&self) -> usize {
        self.ops.iter().filter(|o| o.kind.is_removal()).count()
    }

    /// Takes the people of `conflicts` out of the plan: no operation is made for them,
    /// and each is reported with why. They are all wanted active (only they have values
    /// to share), so one without an operation was linked and unchanged.
    pub fn set_aside(&mut self, conflicts: &super::Conflicts) {
        if conflicts.is_empty() {
            return;
        }
        let mut with_op = std::collections::BTreeSet::new();
        let mut kept = Vec::with_capacity(self.ops.len());
        for op in self.ops.drain(..) {
            match conflicts.get(&op.person) {
                Some(why) => {
                    self.conflicts
                        .push((op.person.clone(), op.kind.op(), why.clone()));
                    with_op.insert(op.person);
                }
                None => kept.push(op),
            }
        }
        self.ops = kept;
        for (person, why) in conflicts {
            if !with_op.contains(person) {
                self.unchanged = self.unchanged.saturating_sub(1);
                self.conflicts
                    .push((person.clone(), Op::Update, why.clone()));
            }
        }
        self.conflicts.sort_by(|a, b| a.0.cmp(&b.0));
    }
}

/// Computes the operations that bring one vendor in line with the source.
pub fn plan(
    desired: &BTreeMap<PersonId, Desired>,
    known: &BTreeMap<PersonId, VendorRecord>,
    on_remove: OnRemove,
) -> Plan {
    plan_with(desired, known, Policy::removal(on_remove))
}

/// [`plan`] under a vendor's whole [`Policy`].
pub fn plan_with(
    desired: &BTreeMap<PersonId, Desired>,
    known: &BTreeMap<PersonId, VendorRecord>,
    policy: Policy<'_>,
) -> Plan {
    plan_sorted_with(
        desired.iter().map(|(k, v)| (k, v.clone())),
        known.iter().map(|(k, v)| (k.clone(), v.clone())),
        policy,
    )
}

/// [`plan`] over two streams, each sorted by person id with no id twice: a merge-join,
/// so neither side has to be held in memory (a pass streams the store's records, which
/// sled yields in key order). Same decisions, same order as [`plan`]. Person ids are
/// only copied for the people an operation or a skip is about.
pub fn plan_sorted<P: Borrow<PersonId>, K: Known>(
    desired: impl IntoIterator<Item = (P, Desired)>,
    known: impl IntoIterator<Item = K>,
    on_remove: OnRemove,
) -> Plan {
    plan_sorted_with(desired, known, Policy::removal(on_remove))
}

/// [`plan_sorted`] under a vendor's whole [`Policy`].
pub fn plan_sorted_with<P: Borrow<PersonId>, K: Known>(
    desired: impl IntoIterator<Item = (P, Desired)>,
    known: impl IntoIterator<Item = K>,
    policy: Policy<'_>,
) -> Plan {
    let mut out = Plan::default();
    let mut desired = desired.into_iter().peekable();
    let mut known = known.into_iter().peekable();
    loop {
        let order = match (desired.peek(), known.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((a, _)), Some(b)) => a.borrow().as_str().cmp(b.person()),
        };
        match order {
            Ordering::Less => {
                let Some((id, wanted)) = desired.next() else {
                    break;
                };
                decide::<K>(
                    &mut out,
                    || id.borrow().clone(),
                    Some(&wanted),
                    None,
                    policy,
                );
            }
            Ordering::Greater => {
                let Some(record) = known.next() else {
                    break;
                };
                let id = || PersonId(record.person().to_string());
                decide(&mut out, id, None, Some(&record), policy);
            }
            Ordering::Equal => {
                let (Some((id, wanted)), Some(record)) = (desired.next(), known.next()) else {
                    break;
                };
                let id = || id.borrow().clone();
                decide(&mut out, id, Some(&wanted), Some(&record), policy);
            }
        }
    }
    out
}

/// One row of the decision table.
fn decide<K: Known>(
    out: &mut Plan,
    id: impl FnOnce() -> PersonId,
    wanted: Option<&Desired>,
    record: Option<&K>,
    policy: Policy<'_>,
) {
    if record.is_some_and(|r| r.state() != RecordState::Deactivated) {
        out.linked += 1;
    }
    let kind = match (wanted, record) {
        (Some(Desired::Hold | Desired::NotYet { .. }), _) => None,
        (Some(Desired::Skip(msg)), r) => {
            let op = if r.is_some() { Op::Update } else { Op::Create };
            out.skipped.push((id(), op, msg.clone()));
            return;
        }
        (Some(Desired::Active(fields)), None) => Some(OpKind::Create {
            fields: fields.clone(),
            resume: false,
        }),
        (Some(Desired::Active(fields)), Some(r)) => active_op(fields, r, policy.create_only),
        (Some(Desired::Inactive(why)), Some(r)) => removal_op(r, *why, OnRemove::Deactivate),
        (None, Some(r)) => removal_op(r, Why::Removed, policy.on_remove),
        (Some(Desired::Inactive(_)), None) | (None, None) => return,
    };
    match kind {
        Some(kind) => out.ops.push(Operation { person: id(), kind }),
        None if record.is_some() => out.unchanged += 1,
        None => {}
    }
}

fn active_op(
    fields: &Fields,
    record: &impl Known,
    create_only: &BTreeSet<String>,
) -> Option<OpKind> {
    match (record.state(), record.remote_id()) {
        (RecordState::Creating, _) | (_, None) => Some(OpKind::Create {
            fields: fields.clone(),
            resume: true,
        }),
        (RecordState::Active, Some(_)) if record.holds(fields) => None,
        (RecordState::Active, Some(remote)) => {
            let pushed = record.fields();
            let fields = keep_create_only(fields, &pushed, create_only, false);
            let changes = changes(&pushed, &fields);
            (!changes.is_empty()).then(|| OpKind::Update {
                remote: remote.to_string(),
                changes,
                fields,
            })
        }
        (RecordState::Deactivated, Some(remote)) => {
            let pushed = record.fields();
            let fields = keep_create_only(fields, &pushed, create_only, false);
            Some(OpKind::Reactivate {
                remote: remote.to_string(),
                changes: changes(&pushed, &fields),
                fields,
            })
        }
    }
}

fn removal_op(record: &impl Known, why: Why, on_remove: OnRemove) -> Option<OpKind> {
    let delete = on_remove == OnRemove::Delete && why == Why::Removed;
    let remote = || record.remote_id().map(String::from);
    match (record.state(), delete) {
        (_, true) => Some(OpKind::Delete { remote: remote() }),
        (RecordState::Deactivated, false) => None,
        (RecordState::Active | RecordState::Creating, false) => Some(OpKind::Deactivate {
            remote: remote(),
            why,
        }),
    }
}

#[cfg(test)]
mod tests;
