//! Each vendor's plan: the source merge-joined with the store's records (or, in a full
//! pass, with the records corrected to the vendor's listing first).

use std::collections::BTreeMap;

use tracing::warn;

use super::context::Slot;
use crate::budget::Budget;
use crate::model::{Person, PersonId, Snapshot, VendorRecord};
use crate::plan::{self, Plan, desired_sorted, held_ids};
use crate::report::DriftReport;
use crate::store::{Store, StoreError, StoredRecord};
use crate::vendor::Vendor;
use crate::vendor::VendorSettings;

/// One vendor's plan: the source (sorted by id) merge-joined with the store's records, or
/// with `known` when `--full` has already read and corrected them.
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
    if let Some(known) = known {
        let held = held_ids(snapshot, known.iter().map(|(k, v)| (k.clone(), v.clone())));
        let desired = desired_sorted(&target, sorted, &held);
        return Ok(plan::plan_sorted(desired, known, settings.on_remove));
    }
    let mut failed = None;
    let held = held_ids(
        snapshot,
        stored_records(store, &settings.name, &mut failed)?,
    );
    let desired = desired_sorted(&target, sorted, &held);
    let known = stored_records(store, &settings.name, &mut failed)?;
    let plan = plan::plan_sorted(desired, known, settings.on_remove);
    match failed {
        Some(e) => Err(e),
        None => Ok(plan),
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
    match vendor.list(budget).await {
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
