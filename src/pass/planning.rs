//! Each vendor's plan: the source merge-joined with the store's records (or, in a full
//! pass, with the records corrected to the vendor's listing first).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use tracing::warn;

use super::context::Slot;
use crate::budget::Budget;
use crate::model::{Fields, Person, PersonId, Snapshot, VendorRecord};
use crate::plan::{self, Collisions, Conflicts, Desired, Plan, Target, desired_sorted, held_ids};
use crate::report::DriftReport;
use crate::store::{Store, StoreError, StoredRecord};
use crate::vendor::Vendor;
use crate::vendor::VendorSettings;

/// The moment a pass plans for, and how far ahead it looks for changes the clock alone
/// will bring (`plan --upcoming`).
#[derive(Debug, Clone, Copy)]
pub struct When {
    pub now: DateTime<Utc>,
    pub upcoming_until: Option<DateTime<Utc>>,
}

/// One vendor's plan at `when.now`: the source (sorted by id) merge-joined with the
/// store's records, or with `known` when `--full` has already read and corrected them;
/// with the earliest moment a date rule changes it (`Plan::next_due`) and, when asked,
/// the changes due until then (`Plan::upcoming`). People who would share an account
/// there (`plan::identity`) are set aside, found as the plan streams by, so nobody is
/// mapped twice.
///
/// # Errors
/// Store failures.
pub fn plan_vendor(
    store: &Store,
    snapshot: &Snapshot,
    sorted: &[&Person],
    settings: &VendorSettings,
    vendor: &dyn Vendor,
    known: Option<BTreeMap<PersonId, VendorRecord>>,
    when: When,
) -> Result<Plan, StoreError> {
    let target = Slot(settings, vendor);
    let mut failed = None;
    let held = match &known {
        Some(known) => held_ids(snapshot, known.iter().map(|(k, v)| (k.clone(), v.clone()))),
        None => held_ids(
            snapshot,
            stored_records(store, &settings.name, &mut failed)?,
        ),
    };
    let mut collisions = Collisions::new(vendor.unique_keys());
    collisions.reserve(sorted.len());
    let watch = !collisions.is_empty();
    let desired = desired_sorted(&target, sorted, &held, when.now).inspect(|(id, d)| {
        if let (true, Desired::Active(f)) = (watch, d) {
            collisions.observe(id, f);
        }
    });
    let mut plan = match known {
        Some(known) => plan::plan_sorted_with(desired, known, target.policy()),
        None => {
            let known = stored_records(store, &settings.name, &mut failed)?;
            plan::plan_sorted_with(desired, known, target.policy())
        }
    };
    if let Some(e) = failed {
        return Err(e);
    }
    let conflicts = collisions.finish(|id| mapped(sorted, &target, id, when.now));
    for (person, why) in &conflicts {
        warn!(user = %person, error = %why, "Two people would share one account; both set aside at this vendor.");
    }
    plan.set_aside(&conflicts);
    // The earliest moment a date rule changes what this vendor should hold for someone.
    plan.next_due = target.dates().next_due_of(sorted.iter().copied(), when.now);
    if let Some(until) = when.upcoming_until {
        plan.upcoming = upcoming(store, &target, sorted, when.now, until)?;
    }
    Ok(plan)
}

/// Who would share an account at this vendor among `sorted` (the whole source), for a
/// command that plans one person (`explain`): the same check a pass makes.
pub fn conflicts_among(
    sorted: &[&Person],
    settings: &VendorSettings,
    vendor: &dyn Vendor,
    now: DateTime<Utc>,
) -> Conflicts {
    let target = Slot(settings, vendor);
    let mut collisions = Collisions::new(vendor.unique_keys());
    if collisions.is_empty() {
        return Conflicts::new();
    }
    let wanted: Vec<(&PersonId, Desired)> = sorted
        .iter()
        .map(|p| (&p.id, plan::desire(&target, p, now)))
        .collect();
    for (id, d) in &wanted {
        if let Desired::Active(f) = d {
            collisions.observe(id, f);
        }
    }
    collisions.finish(|id| mapped(sorted, &target, id, now))
}

/// The fields `id` should have at this vendor at `now`, when wanted active there.
fn mapped(
    sorted: &[&Person],
    target: &Slot<'_>,
    id: &PersonId,
    now: DateTime<Utc>,
) -> Option<Fields> {
    let at = sorted.binary_search_by(|p| p.id.cmp(id)).ok()?;
    match plan::desire(target, sorted[at], now) {
        Desired::Active(f) => Some(f),
        _ => None,
    }
}

/// The changes due between `now` and `until`, in due order (then by person).
fn upcoming(
    store: &Store,
    target: &Slot<'_>,
    sorted: &[&Person],
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<(PersonId, plan::upcoming::Due)>, StoreError> {
    let rules = target.dates();
    let mut out = Vec::new();
    for p in sorted {
        if rules.next_due(p, now).is_none_or(|d| d > until) {
            continue;
        }
        let record = store.get(&target.0.name, &p.id)?;
        for due in plan::upcoming::upcoming(target, p, record.as_ref(), target.policy(), now, until)
        {
            out.push((p.id.clone(), due));
        }
    }
    out.sort_by(|a, b| (a.1.at, &a.0).cmp(&(b.1.at, &b.0)));
    Ok(out)
}

/// A vendor's stored records as a stream; the first store error ends it and is left in
/// `failed` (the caller must check it before using anything built from the stream).
fn stored_records<'a>(
    store: &Store,
    vendor: &str,
    failed: &'a mut Option<StoreError>,
) -> Result<impl Iterator<Item = StoredRecord> + 'a, StoreError> {
    Ok(store
        .stored(vendor)?
        .map_while(move |r| r.map_err(|e| *failed = Some(e)).ok()))
}

/// Reads the vendor's accounts and corrects `known` to them (see `plan::drift`). The
/// listing's pages retry on their own (`http::Http::fetch`).
pub async fn check_drift(
    vendor: &dyn Vendor,
    known: &mut BTreeMap<PersonId, VendorRecord>,
    create_only: &BTreeSet<String>,
    budget: &Budget,
) -> DriftReport {
    // A listing has nothing to finish: a signal ends it at once.
    let mut stop = budget.shutdown().clone();
    let listed = tokio::select! {
        biased;
        r = vendor.list(budget) => r,
        () = stop.wait() => {
            warn!("Stopping: the account listing is dropped; drift not checked at this vendor.");
            return DriftReport {
                unavailable: Some("not checked: roster is stopping".into()),
                ..DriftReport::default()
            };
        }
    };
    match listed {
        Ok(accounts) => {
            let details = plan::drift::reconcile_records(known, &accounts, create_only);
            for d in &details {
                warn!(user = %d.person, drift = ?d.kind, "Drift: changed at the vendor behind roster's back; repairing.");
            }
            DriftReport {
                found: details.len(),
                details,
                unavailable: None,
            }
        }
        Err(error) => {
            warn!(error = %error, "Cannot list accounts; drift not checked at this vendor.");
            DriftReport {
                unavailable: Some(error.to_string()),
                ..DriftReport::default()
            }
        }
    }
}
