//! `roster rebuild-state`: recover a lost or emptied store by finding each person's
//! account at each vendor by its matching key. Reads only: no write call is made.
//!
//! Afterwards the store holds what the vendors hold, so a normal pass with an unchanged
//! source makes no write call; people with no account yet are created by the next
//! normal pass (which looks them up again first, so nothing is duplicated).

use crate::out::{errln, outln};
use std::collections::BTreeMap;

use chrono::Utc;
use futures::StreamExt;
use serde::Serialize;
use tracing::{Instrument, debug_span, info_span, warn};

use crate::model::{Op, Outcome, Person, PersonId, VendorRecord};
use std::sync::Arc;

use super::prepare;
use crate::pass::{Context, NoHooks};
use crate::plan::{Claims, Desired, judge};
use crate::report::exit;
use crate::retry::Retry;
use crate::settings::Settings;
use crate::shutdown::Shutdown;
use crate::source::Snapshot;
use crate::store::{Store, StoreError};

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
    /// People whose account would be someone else's too (two people with one username,
    /// an account linked to another person, or holding another person's email): not
    /// linked, each in `errors`.
    pub conflicts: usize,
    pub failed: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<crate::report::OpError>,
}

impl VendorRebuild {
    fn conflict(&mut self, person: &PersonId, why: String) {
        warn!(user = %person, error = %why, "Not linked: the account would be someone else's too.");
        self.conflicts += 1;
        self.errors.push(crate::report::OpError {
            person: person.to_string(),
            op: Op::Lookup,
            message: why,
            outcome: Outcome::Skipped,
            kind: Some("conflict".into()),
            status: None,
        });
    }
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
    let now = Utc::now();
    for (settings, vendor) in &ctx.vendors {
        crate::pass::recall_flow(store, &settings.name, vendor.flow())?;
        let known = store.load(&settings.name)?;
        let mut out = VendorRebuild::default();
        let mut sorted: Vec<&Person> = snapshot.people.iter().collect();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        let shared = crate::pass::conflicts_among(&sorted, settings, vendor.as_ref(), now);
        let mut todo = Vec::new();
        for p in &snapshot.people {
            if known.contains_key(&p.id) {
                out.already_known += 1;
                continue;
            }
            if let Some(why) = shared.get(&p.id) {
                out.conflict(&p.id, why.clone());
                continue;
            }
            let desired = crate::pass::desire_at(settings, vendor.as_ref(), p, now);
            // The matching key may sit in the mapped fields (a username, a driver id), so
            // map even people the vendor should not have; use nothing if that fails.
            let (fields, wanted_active) = match desired {
                Desired::Active(f) => (f, true),
                _ => (vendor.map(p).unwrap_or_default(), false),
            };
            todo.push((p.id.clone(), fields, wanted_active));
        }
        let claims = Claims::of(
            vendor.unique_keys(),
            todo.iter()
                .filter(|(_, _, active)| *active)
                .map(|(id, f, _)| (id, f)),
        );
        let lookups: Vec<_> = todo
            .iter()
            .map(|(id, fields, wanted_active)| {
                let retry = &retry;
                let vendor = vendor.as_ref();
                async move {
                    let found = retry
                        .run(budget, || vendor.lookup(budget, id, fields), |_, _| {})
                        .await;
                    (id, fields, found, *wanted_active)
                }
                .instrument(debug_span!("person", user = %id))
            })
            .collect();
        let results: Vec<_> = futures::stream::iter(lookups)
            .buffer_unordered(settings.concurrency)
            .collect()
            .instrument(info_span!("vendor", vendor = %settings.name))
            .await;
        for (id, fields, found, wanted_active) in results {
            match found {
                Ok(Some(remote)) => {
                    let theirs = match store.holder(&settings.name, &remote.id)? {
                        Some(holder) if holder != *id => Err(format!(
                            "the account found by lookup ({}) is linked to {holder}: not \
                             linked to {id}",
                            remote.id
                        )),
                        _ => judge(vendor.unique_keys(), id, fields, None, &remote, &claims),
                    };
                    if let Err(why) = theirs {
                        out.conflict(id, why);
                        continue;
                    }
                    // A status the vendor cannot report (DriveKit) is recorded as what the
                    // source wants: no call is made here (`Remote::state_to_record`).
                    let now = Utc::now();
                    let record = VendorRecord {
                        state: remote.state_to_record(wanted_active),
                        remote_id: Some(remote.id),
                        fields: remote.fields,
                        linked_at: now,
                        updated_at: now,
                    };
                    match store.put(&settings.name, id, &record).await {
                        Ok(()) => out.linked += 1,
                        Err(e @ StoreError::Linked { .. }) => out.conflict(id, e.to_string()),
                        Err(e) => return Err(e),
                    }
                }
                Ok(None) => out.not_found += 1,
                Err(error) => {
                    warn!(vendor = %settings.name, user = %id, error = %error, "Lookup failed.");
                    out.failed += 1;
                    out.errors.push(crate::report::OpError {
                        person: id.to_string(),
                        op: Op::Lookup,
                        message: error.to_string(),
                        outcome: Outcome::Failed,
                        kind: Some(error.kind().into()),
                        status: error.status(),
                    });
                }
            }
        }
        crate::pass::keep_flow(store, &settings.name, vendor.flow()).await?;
        report.vendors.insert(settings.name.clone(), out);
    }
    Ok(report)
}

/// The command: reads the source, relinks by lookup, prints what it found.
pub(super) async fn command(settings: Settings, json_out: bool) -> i32 {
    let asked = crate::admin::Command::RebuildState;
    let (store, ctx) = match prepare(settings, false, Arc::new(NoHooks), asked).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    let snapshot = match ctx.source.fetch(&ctx.budget(&Shutdown::never())).await {
        Ok(s) if !s.people.is_empty() => s,
        Ok(_) => {
            errln!("roster: the source has no valid records; nothing to rebuild from");
            return exit::REFUSED;
        }
        Err(e) => {
            errln!("roster: {e}");
            return exit::REFUSED;
        }
    };
    let report = match rebuild(&ctx, &store, &snapshot).await {
        Ok(r) => r,
        Err(e) => {
            errln!("roster: {e}");
            return exit::FAILED_OPS;
        }
    };
    if json_out {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        outln!(
            "{:<14} {:>8} {:>14} {:>10} {:>10} {:>7}",
            "vendor",
            "linked",
            "already_known",
            "not_found",
            "conflicts",
            "failed"
        );
        for (name, v) in &report.vendors {
            outln!(
                "{:<14} {:>8} {:>14} {:>10} {:>10} {:>7}",
                name,
                v.linked,
                v.already_known,
                v.not_found,
                v.conflicts,
                v.failed
            );
            for e in &v.errors {
                let what = if e.kind.as_deref() == Some("conflict") {
                    "not linked"
                } else {
                    "lookup failed"
                };
                outln!("  {name}: {} {what}: {}", e.person, e.message);
            }
        }
    }
    if report.vendors.values().any(|v| v.failed > 0) {
        exit::FAILED_OPS
    } else {
        exit::OK
    }
}
