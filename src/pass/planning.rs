//! Each vendor's plan: the source merge-joined with the store's records (or, in a full
//! pass, with the records corrected to the vendor's listing first).

use std::collections::BTreeMap;

use tracing::warn;

use super::context::Slot;
use crate::budget::Budget;
use crate::model::{Fields, Person, PersonId, Snapshot, VendorRecord};
use crate::plan::{self, Collisions, Conflicts, Desired, Plan, desired_sorted, held_ids};
use crate::report::DriftReport;
use crate::store::{Store, StoreError, StoredRecord};
use crate::vendor::Vendor;
use crate::vendor::VendorSettings;

/// One vendor's plan: the source (sorted by id) merge-joined with the store's records, or
/// with `known` when `--full` has already read and corrected them. People who would share
/// an account there (`plan::identity`) are set aside, found as the plan streams by, so
/// nobody is mapped twice.
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
    let watch = !collisions.is_empty();
    let desired = desired_sorted(&target, sorted, &held).inspect(|(id, d)| {
        if let (true, Desired::Active(f)) = (watch, d) {
            collisions.observe(id, f);
        }
    });
    let mut plan = match known {
        Some(known) => plan::plan_sorted(desired, known, settings.on_remove),
        None => {
            let known = stored_records(store, &settings.name, &mut failed)?;
            plan::plan_sorted(desired, known, settings.on_remove)
        }
    };
    if let Some(e) = failed {
        return Err(e);
    }
    let conflicts = collisions.finish(|id| mapped(sorted, &target, id));
    for (person, why) in &conflicts {
        warn!(user = %person, error = %why, "Two people would share one account; both set aside at this vendor.");
    }
    plan.set_aside(&conflicts);
    Ok(plan)
}

/// Who would share an account at this vendor among `sorted` (the whole source), for a
/// command that plans one person (`explain`): the same check a pass makes.
pub fn conflicts_among(
    sorted: &[&Person],
    settings: &VendorSettings,
    vendor: &dyn Vendor,
) -> Conflicts {
    let target = Slot(settings, vendor);
    let mut collisions = Collisions::new(vendor.unique_keys());
    if collisions.is_empty() {
        return Conflicts::new();
    }
    let wanted: Vec<(&PersonId, Desired)> = sorted
        .iter()
        .map(|p| (&p.id, plan::desire(&target, p)))
        .collect();
    for (id, d) in &wanted {
        if let Desired::Active(f) = d {
            collisions.observe(id, f);
        }
    }
    collisions.finish(|id| mapped(sorted, &target, id))
}

/// The fields `id` should have at this vendor, when wanted active there.
fn mapped(sorted: &[&Person], target: &Slot<'_>, id: &PersonId) -> Option<Fields> {
    let at = sorted.binary_search_by(|p| p.id.cmp(id)).ok()?;
    match plan::desire(target, sorted[at]) {
        Desired::Active(f) => Some(f),
        _ => None,
    }
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
            let details = plan::drift::reconcile_records(known, &accounts);
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
