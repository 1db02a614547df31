//! `roster rebuild-state`: recover a lost or emptied store by finding each person's
//! account at each vendor by its matching key. Reads only: no write call is made.
//!
//! Afterwards the store holds what the vendors hold, so a normal pass with an unchanged
//! source makes no write call; people with no account yet are created by the next
//! normal pass (which looks them up again first, so nothing is duplicated).

use std::collections::BTreeMap;

use chrono::Utc;
use futures::StreamExt;
use serde::Serialize;
use tracing::warn;

use crate::diff::Desired;
use crate::retry::Retry;
use crate::shutdown::Shutdown;
use crate::source::Snapshot;
use crate::store::{RecordState, Store, StoreError, VendorRecord};
use crate::sync::Context;

#[derive(Debug, Default, Serialize)]
pub struct RebuildReport {
    pub vendors: BTreeMap<String, VendorRebuild>,
}

#[derive(Debug, Default, Serialize)]
pub struct VendorRebuild {
    /// Accounts found and recorded.
    pub linked: usize,
    /// People who already had a record (left as they were).
    pub already_known: usize,
    /// People with no account at the vendor: the next pass creates them if wanted.
    pub not_found: usize,
    pub failed: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<crate::report::OpError>,
}

/// Links every person of `snapshot` that has an account at a vendor.
///
/// # Errors
/// Store failures.
pub async fn rebuild(
    ctx: &Context,
    store: &Store,
    snapshot: &Snapshot,
) -> Result<RebuildReport, StoreError> {
    let retry = Retry::new(ctx.settings.retry);
    let budget = &ctx.budget(&Shutdown::never());
    let mut report = RebuildReport::default();
    for (settings, vendor) in &ctx.vendors {
        crate::sync::remember_flow(store, &settings.name, vendor.flow())?;
        let known = store.load(&settings.name)?;
        let mut out = VendorRebuild::default();
        let mut todo = Vec::new();
        for p in &snapshot.people {
            if known.contains_key(&p.id) {
                out.already_known += 1;
                continue;
            }
            let desired = crate::sync::desire(settings, vendor.as_ref(), p);
            // The matching key may sit in the mapped fields (a username, a driver id), so
            // map even people the vendor should not have; use nothing if that fails.
            let fields = match &desired {
                Desired::Active(f) => f.clone(),
                _ => vendor.map(p).unwrap_or_default(),
            };
            todo.push((p.id.clone(), fields));
        }
        let lookups: Vec<_> = todo
            .iter()
            .map(|(id, fields)| {
                let retry = &retry;
                let vendor = vendor.as_ref();
                async move {
                    let found = retry
                        .run(budget, || vendor.lookup(budget, id, fields), |_, _| {})
                        .await;
                    (id, found)
                }
            })
            .collect();
        let results: Vec<_> = futures::stream::iter(lookups)
            .buffer_unordered(settings.concurrency)
            .collect()
            .await;
        for (id, found) in results {
            match found {
                Ok(Some(remote)) => {
                    // A status the vendor cannot report (DriveKit) is taken as active: for
                    // people the source wants active that is the usual truth, and for the
                    // others the next pass then disables them explicitly.
                    let active = remote.active.unwrap_or(true);
                    let now = Utc::now();
                    let record = VendorRecord {
                        remote_id: Some(remote.id),
                        state: if active {
                            RecordState::Active
                        } else {
                            RecordState::Deactivated
                        },
                        fields: remote.fields,
                        linked_at: now,
                        updated_at: now,
                    };
                    store.put(&settings.name, id, &record).await?;
                    out.linked += 1;
                }
                Ok(None) => out.not_found += 1,
                Err(error) => {
                    warn!(vendor = %settings.name, user = %id, error = %error, "Lookup failed.");
                    out.failed += 1;
                    out.errors.push(crate::report::OpError {
                        person: id.to_string(),
                        op: "lookup".into(),
                        message: error.to_string(),
                        outcome: crate::report::Outcome::Failed,
                    });
                }
            }
        }
        crate::sync::keep_flow(store, &settings.name, vendor.flow()).await?;
        report.vendors.insert(settings.name.clone(), out);
    }
    Ok(report)
}
