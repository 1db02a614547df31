//! A pass's report: the source's counts, each vendor's counts (planned or done), and the
//! closing log lines.

use tracing::info;

use crate::model::{Op, Outcome, PersonId, Snapshot, Why};
use crate::plan::{OpKind, Plan};
use crate::report::{
    OpError, PlannedOp, Report, SourceCounts, SourceRecordError, UpcomingOp, VendorReport, Would,
};

pub fn source_counts(snapshot: &Snapshot) -> SourceCounts {
    SourceCounts {
        records: snapshot.people.len() + snapshot.invalid.len(),
        invalid: snapshot.invalid.len(),
        errors: snapshot
            .invalid
            .iter()
            .map(|r| SourceRecordError {
                location: r.location.clone(),
                id: r.id.clone(),
                message: r.message.clone(),
            })
            .collect(),
    }
}

/// What a vendor's report holds before anything is pushed: the unchanged, and the
/// people skipped by the plan with why.
pub fn base(plan: &Plan) -> VendorReport {
    let mut v = VendorReport {
        unchanged: plan.unchanged,
        skipped: plan.skipped.len() + plan.conflicts.len(),
        ..VendorReport::default()
    };
    let skipped = plan.skipped.iter().map(|s| (s, "unmappable"));
    let aside = plan.conflicts.iter().map(|s| (s, "conflict"));
    for ((person, op, message), kind) in skipped.chain(aside) {
        v.errors.push(OpError {
            person: person.to_string(),
            op: *op,
            message: message.clone(),
            outcome: Outcome::Skipped,
            kind: Some(kind.into()),
            status: None,
        });
    }
    v.errors.sort_by(|a, b| a.person.cmp(&b.person));
    v
}

/// A vendor's report of a dry run or refused pass: what would happen, with every
/// operation listed.
pub fn planned(plan: &Plan) -> VendorReport {
    let mut v = VendorReport {
        operations: Some(Vec::new()),
        ..base(plan)
    };
    for op in &plan.ops {
        match &op.kind {
            OpKind::Create { .. } => v.created += 1,
            OpKind::Update { .. } => v.updated += 1,
            OpKind::Reactivate { .. } => v.reactivated += 1,
            OpKind::Deactivate { .. } => v.deactivated += 1,
            OpKind::Delete { .. } => v.deleted += 1,
        }
        if let Some(ops) = v.operations.as_mut() {
            ops.push(planned_op(&op.person, &op.kind));
        }
    }
    v
}

/// A vendor's report of a refused pass: nothing done (the counts say so), and what would
/// have been done under `would`.
pub fn refused(plan: &Plan) -> VendorReport {
    let p = planned(plan);
    VendorReport {
        would: Some(Would {
            created: p.created,
            updated: p.updated,
            deactivated: p.deactivated,
            reactivated: p.reactivated,
            deleted: p.deleted,
            operations: p.operations.unwrap_or_default(),
        }),
        ..base(plan)
    }
}

/// One operation as a plan lists it, with why for removals.
fn planned_op(person: &PersonId, kind: &OpKind) -> PlannedOp {
    let reason = match kind {
        OpKind::Deactivate { why, .. } => Some(why.code().to_string()),
        OpKind::Delete { .. } => Some(Why::Removed.code().to_string()),
        _ => None,
    };
    PlannedOp {
        person: person.to_string(),
        op: kind.op(),
        fields: kind.field_names(),
        reason,
    }
}

/// The changes a plan found due within `plan --upcoming`'s window.
pub fn upcoming(plan: &Plan) -> Vec<UpcomingOp> {
    plan.upcoming
        .iter()
        .map(|(person, due)| UpcomingOp {
            due: due.at,
            op: planned_op(person, &due.kind),
        })
        .collect()
}

/// One log line per vendor: what was done, or, in a dry run or refused pass, what would
/// have been — under `would_*` names, so a planned count never reads as a done one.
pub fn log(report: &Report) {
    for (name, v) in &report.vendors {
        let would = match (&v.would, report.dry_run) {
            (Some(w), _) => Some((
                w.created,
                w.updated,
                w.deactivated,
                w.reactivated,
                w.deleted,
            )),
            (None, true) => Some((
                v.created,
                v.updated,
                v.deactivated,
                v.reactivated,
                v.deleted,
            )),
            (None, false) => None,
        };
        match would {
            Some((created, updated, deactivated, reactivated, deleted)) => info!(
                vendor = %name,
                would_create = created,
                would_update = updated,
                would_deactivate = deactivated,
                would_reactivate = reactivated,
                would_delete = deleted,
                unchanged = v.unchanged,
                skipped = v.skipped,
                "Pass planned for vendor; nothing was pushed."
            ),
            None => info!(
                vendor = %name,
                created = v.created,
                updated = v.updated,
                deactivated = v.deactivated,
                reactivated = v.reactivated,
                adopted = v.adopted,
                deleted = v.deleted,
                unchanged = v.unchanged,
                failed = v.failed,
                skipped = v.skipped,
                "Pass finished for vendor."
            ),
        }
    }
}

/// The report's op names, for tests and the metrics.
pub fn op_counts(v: &VendorReport) -> [(Op, usize); 6] {
    [
        (Op::Create, v.created),
        (Op::Adopt, v.adopted),
        (Op::Update, v.updated),
        (Op::Deactivate, v.deactivated),
        (Op::Reactivate, v.reactivated),
        (Op::Delete, v.deleted),
    ]
}
