//! One reconcile pass: read the source, plan each vendor, check the safety limits, push,
//! record the report.
//!
//! Architecture invariants: a failed, partial or empty source read pushes nothing; a
//! tripped safety limit at any vendor pushes nothing anywhere (unless forced); a dry run
//! writes nothing to the store and makes no write call.

mod context;
mod halt;
pub mod hooks;
mod memo;
mod memory;
mod planning;
mod push;
mod safety;
mod summary;
mod writes;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{Instrument, error, info, info_span, warn};

pub use context::{Context, Slot};
pub use hooks::{Both, Hooks, NoHooks};
pub use memory::{keep as keep_flow, recall as recall_flow};
pub use planning::conflicts_among;
pub use push::Pusher;
pub use summary::op_counts;

use crate::budget::Budget;
use crate::model::{Person, PersonId, Snapshot, VendorRecord};
use crate::plan::{Desired, Plan};
use crate::report::{DriftReport, Report};
use crate::retry::Retry;
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};
use crate::vendor::Vendor;
use crate::vendor::VendorSettings;

#[derive(Debug, Clone, Default)]
pub struct PassOptions {
    pub dry_run: bool,
    pub force: bool,
    /// Also read each vendor's accounts and repair drift (`--full`).
    pub full: bool,
    /// Only these vendors (all when empty).
    pub only: Vec<String>,
    /// Also list the changes start and end dates bring within this window
    /// (`plan --upcoming 7d`), each with its due time.
    pub upcoming: Option<chrono::TimeDelta>,
}

#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the source wants a vendor to hold for `person` now (dates, scope, `active`,
/// mapping).
pub fn desire(settings: &VendorSettings, vendor: &dyn Vendor, person: &Person) -> Desired {
    desire_at(settings, vendor, person, Utc::now())
}

/// [`desire`] at the moment `now`.
pub fn desire_at(
    settings: &VendorSettings,
    vendor: &dyn Vendor,
    person: &Person,
    now: DateTime<Utc>,
) -> Desired {
    crate::plan::desire(&Slot(settings, vendor), person, now)
}

type Member<'a> = &'a (VendorSettings, Arc<dyn Vendor>);

/// Runs one pass. A refused pass is a report with `refused` set, not an error: the
/// caller prints it and exits 3.
///
/// # Errors
/// Only store failures that make the pass impossible.
pub async fn run_once(
    ctx: &Context,
    store: &Store,
    opts: &PassOptions,
    shutdown: &Shutdown,
) -> Result<Report, PassError> {
    let span = info_span!("pass", dry_run = opts.dry_run, full = opts.full);
    async {
        let mut pass = Pass::start(ctx, store, opts, shutdown)?;
        let snapshot = match pass.read_source().await {
            Ok(snapshot) => snapshot,
            Err(refused) => return pass.finish(refused).await,
        };
        pass.report.source = summary::source_counts(&snapshot);
        let (plans, drifts) = pass.plan(&snapshot).await?;
        pass.report.next_due = plans.iter().filter_map(|(_, p)| p.next_due).min();
        if let Some(why) = pass.refusal(&snapshot, &plans)? {
            pass.report.refused = Some(why);
        }
        if pass.report.refused.is_some() || opts.dry_run {
            return pass.finish_planned(plans, drifts).await;
        }
        pass.push(plans, drifts).await;
        // From here on a store failure never costs the report: what reached the
        // vendors is in it.
        if pass.report.stopped.is_none()
            && let Err(e) = store
                .set_last_source_count(pass.report.source.records as u64)
                .await
        {
            pass.store_failed(&e);
        }
        pass.finish(pass.report.clone()).await
    }
    .instrument(span)
    .await
}

/// One pass under way.
struct Pass<'a> {
    ctx: &'a Context,
    store: &'a Store,
    opts: &'a PassOptions,
    vendors: Vec<Member<'a>>,
    budget: Budget,
    /// Stops the pass at its first failed store write (fires `budget`'s shutdown).
    halt: Arc<halt::Halt>,
    /// The caller's shutdown (a signal, the daemon stopping).
    shutdown: Shutdown,
    report: Report,
    /// The moment the plan is made for (start and end dates are compared with it).
    now: DateTime<Utc>,
}

impl<'a> Pass<'a> {
    /// Picks the vendors and starts their flow control from what earlier passes kept.
    fn start(
        ctx: &'a Context,
        store: &'a Store,
        opts: &'a PassOptions,
        shutdown: &Shutdown,
    ) -> Result<Self, PassError> {
        let vendors = ctx.selected(&opts.only);
        for (settings, vendor) in &vendors {
            memory::recall(store, &settings.name, vendor.flow())?;
        }
        if let Some(flow) = ctx.source.flow() {
            flow.start_pass(None, None);
        }
        let (halt, stop) = halt::Halt::new(shutdown);
        let now = Utc::now();
        Ok(Self {
            ctx,
            store,
            opts,
            vendors,
            budget: ctx.budget(&stop),
            halt: Arc::new(halt),
            shutdown: shutdown.clone(),
            report: Report {
                dry_run: opts.dry_run,
                started_at: Some(now),
                ..Report::default()
            },
            now,
        })
    }

    /// The whole source, or the report of a pass refused because it cannot be read or
    /// holds nobody.
    async fn read_source(&self) -> Result<Snapshot, Report> {
        let mut refused = self.report.clone();
        // A read has nothing to finish: a signal ends it at once.
        let mut stop = self.budget.shutdown().clone();
        let fetched = tokio::select! {
            biased;
            r = self.ctx.source.fetch(&self.budget) => r,
            () = stop.wait() => {
                warn!("Stopping: the source read is dropped; nothing will be pushed.");
                refused.refused = Some(
                    "the source read was interrupted (roster is stopping); nothing was pushed".into(),
                );
                return Err(refused);
            }
        };
        let snapshot = match fetched {
            Ok(s) => s,
            Err(e) => {
                error!(error = %e, "Source read failed; nothing will be pushed.");
                refused.refused = Some(format!("the source could not be read: {e}"));
                return Err(refused);
            }
        };
        for r in &snapshot.invalid {
            warn!(record = %r.location, error = %r.message, "Invalid source record left out; its person keeps their current state.");
        }
        if snapshot.people.is_empty() {
            error!("Source is empty; nothing will be pushed.");
            refused.source = summary::source_counts(&snapshot);
            refused.refused = Some(format!(
                "the source has no valid records ({} invalid); refusing to treat that as \
                 everyone leaving",
                snapshot.invalid.len()
            ));
            return Err(refused);
        }
        Ok(snapshot)
    }

    /// Each vendor's plan (after reading its accounts, in a full pass).
    async fn plan(
        &self,
        snapshot: &Snapshot,
    ) -> Result<(Vec<(Member<'a>, Plan)>, BTreeMap<String, DriftReport>), PassError> {
        let mut drifts = BTreeMap::new();
        let mut corrected: BTreeMap<String, BTreeMap<PersonId, VendorRecord>> = BTreeMap::new();
        if self.opts.full {
            for (settings, vendor) in &self.vendors {
                let mut known = self.store.load(&settings.name)?;
                let d = planning::check_drift(
                    vendor.as_ref(),
                    &mut known,
                    &settings.create_only,
                    &self.budget,
                )
                .instrument(info_span!("vendor", vendor = %settings.name))
                .await;
                drifts.insert(settings.name.clone(), d);
                corrected.insert(settings.name.clone(), known);
            }
        }
        // Sorted once for every vendor's merge-join against the store.
        let mut sorted: Vec<&Person> = snapshot.people.iter().collect();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        // The no-op fast path (`memo`): a vendor whose last plan had nothing to do is not
        // planned again while nothing that plan depended on has changed.
        // `plan --upcoming` wants what the memo does not keep: it plans in full.
        let now = self.now;
        let people = (!self.opts.full && self.opts.upcoming.is_none())
            .then(|| memo::people(&sorted, &snapshot.invalid));
        let mut recalled: Vec<Option<Plan>> = Vec::new();
        let mut memos: Vec<(Option<String>, u64)> = Vec::new();
        for (settings, _) in &self.vendors {
            let inputs = people.and_then(|p| memo::inputs(p, &self.ctx.settings, settings));
            recalled.push(match &inputs {
                Some(inputs) => memo::recall(self.store, &settings.name, inputs, now)?,
                None => None,
            });
            // Read before planning: a write meanwhile makes the memo stale, never wrong.
            memos.push((inputs, self.store.generation(&settings.name)?));
        }
        let reused: Vec<bool> = recalled.iter().map(Option::is_some).collect();
        // CPU and store reads only, each vendor's independent: one thread per vendor.
        let when = planning::When {
            now: self.now,
            upcoming_until: self
                .opts
                .upcoming
                .and_then(|w| self.now.checked_add_signed(w)),
        };
        let planned: Vec<Result<Plan, StoreError>> = std::thread::scope(|scope| {
            let (sorted, store) = (&sorted, self.store);
            let handles: Vec<_> = self
                .vendors
                .iter()
                .zip(recalled)
                .map(|((settings, vendor), recalled)| {
                    let known = corrected.remove(&settings.name);
                    let span = info_span!("vendor", vendor = %settings.name);
                    scope.spawn(move || match recalled {
                        Some(plan) => Ok(plan),
                        None => {
                            let _in_vendor = span.entered();
                            planning::plan_vendor(
                                store,
                                snapshot,
                                sorted,
                                settings,
                                vendor.as_ref(),
                                known,
                                when,
                            )
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut plans = Vec::new();
        for (((member, plan), (inputs, generation)), reused) in
            self.vendors.iter().zip(planned).zip(memos).zip(reused)
        {
            let plan = plan?;
            if !reused && !self.opts.dry_run && !self.opts.full {
                memo::keep(self.store, &member.0.name, inputs, generation, &plan)?;
            }
            if reused {
                // Planning would have said these again.
                for (person, _, why) in &plan.conflicts {
                    warn!(vendor = %member.0.name, user = %person, error = %why, "Two people would share one account; both set aside at this vendor.");
                }
            }
            info!(vendor = %member.0.name, ops = plan.ops.len(), removals = plan.removals(), unchanged = plan.unchanged, skipped = plan.skipped.len() + plan.conflicts.len(), reused, "Planned.");
            plans.push((*member, plan));
        }
        Ok((plans, drifts))
    }

    /// Why the safety limits refuse this pass, unless forced.
    fn refusal(
        &self,
        snapshot: &Snapshot,
        plans: &[(Member<'a>, Plan)],
    ) -> Result<Option<String>, PassError> {
        let safety = &self.ctx.settings.safety;
        // Invalid records still stand for people (held, not removed): count them all.
        let records = (snapshot.people.len() + snapshot.invalid.len()) as u64;
        let mut limits: Vec<String> = Vec::new();
        limits.extend(safety::source_drop(
            self.store.last_source_count()?,
            records,
            safety,
        ));
        for ((settings, _), plan) in plans {
            limits.extend(safety::refusal(&settings.name, plan, safety));
        }
        if limits.is_empty() {
            return Ok(None);
        }
        let why = limits.join("; ");
        if self.opts.force {
            warn!(reason = %why, "Safety limits exceeded; going ahead because of --force.");
            return Ok(None);
        }
        Ok(Some(format!(
            "safety limit: {why} (use --force to override)"
        )))
    }

    /// Every vendor's plan at once (a slow vendor holds up no other), each vendor's flow
    /// state kept for the next pass. Store failures are in the report.
    async fn push(
        &mut self,
        plans: Vec<(Member<'a>, Plan)>,
        mut drifts: BTreeMap<String, DriftReport>,
    ) {
        let retry = Retry::new(self.ctx.settings.retry);
        let pushes = plans.iter().map(|((settings, vendor), plan)| {
            let pusher = Pusher::new(
                Arc::clone(vendor),
                self.store.clone(),
                retry,
                self.budget.clone(),
                settings.concurrency,
                Arc::clone(&self.ctx.hooks),
            )
            .with_halt(Arc::clone(&self.halt))
            .with_create_only(settings.create_only.clone());
            let span = info_span!("vendor", vendor = %settings.name);
            async move { (settings, vendor, pusher.push(plan).await) }.instrument(span)
        });
        for (settings, vendor, mut report) in futures::future::join_all(pushes).await {
            if let Err(e) = memory::keep(self.store, &settings.name, vendor.flow()).await {
                warn!(vendor = %settings.name, error = %e, "Could not keep the vendor's flow state for the next pass.");
            }
            report.drift = drifts.remove(&settings.name);
            self.report.vendors.insert(settings.name.clone(), report);
        }
        if let Some(why) = self.halt.why() {
            self.report.stopped = Some(format!(
                "a store write failed ({why}); no vendor call started after it, and each \
                 person's entry says what reached the vendor"
            ));
        }
    }

    /// Notes a store failure after the push in the report (which is still printed).
    fn store_failed(&mut self, e: &StoreError) {
        error!(error = %e, "The store cannot be written; the report says what was done.");
        self.report
            .stopped
            .get_or_insert_with(|| format!("the store cannot be written ({e})"));
    }

    /// Finishes a dry run or refused pass: what would have happened.
    async fn finish_planned(
        mut self,
        plans: Vec<(Member<'a>, Plan)>,
        mut drifts: BTreeMap<String, DriftReport>,
    ) -> Result<Report, PassError> {
        for ((settings, _), plan) in &plans {
            // A dry run's counts are what would happen (`dry_run: true` says so); a
            // refused pass did nothing, and keeps what it would have done apart.
            let mut v = if self.opts.dry_run {
                summary::planned(plan)
            } else {
                summary::refused(plan)
            };
            v.drift = drifts.remove(&settings.name);
            if self.opts.upcoming.is_some() {
                v.upcoming = Some(summary::upcoming(plan));
            }
            self.report.vendors.insert(settings.name.clone(), v);
        }
        if let Some(why) = &self.report.refused {
            error!(reason = %why, "Pass refused; nothing was pushed.");
        }
        let report = self.report.clone();
        self.finish(report).await
    }

    /// A pass that did not plan every vendor (`--vendor`, or a source it could not read)
    /// knows only part of when a start or end date is next due: the last report's moment,
    /// while still ahead, stays in (the daemon and `status` read it from the report).
    fn keep_known_due(&self, report: &mut Report) {
        let partial =
            !self.opts.only.is_empty() || (report.refused.is_some() && report.next_due.is_none());
        if !partial {
            return;
        }
        let now = Utc::now();
        let earlier = match self.store.last_report::<Report>() {
            Ok(Some(last)) => last.next_due.filter(|d| *d > now),
            _ => None,
        };
        report.next_due = match (report.next_due, earlier) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Stamps, logs and (outside a dry run) saves the report; prunes the audit history.
    /// A store that cannot take them is said in the report, which is returned anyway.
    async fn finish(&self, mut report: Report) -> Result<Report, PassError> {
        report.finished_at = Some(Utc::now());
        if self.shutdown.is_triggered() {
            report.interrupted = Some(
                "roster was asked to stop during the pass: no vendor call started after that, \
                 calls in flight were let finish (up to shutdown_grace_secs), reads in \
                 progress were dropped; each person's entry says what was not done"
                    .into(),
            );
        }
        if !self.opts.dry_run {
            self.keep_known_due(&mut report);
            let h = self.ctx.settings.history;
            let saved = match self.store.save_report(&report).await {
                Ok(()) => {
                    self.store
                        .prune_history(
                            h.max_entries,
                            chrono::Duration::days(i64::from(h.max_age_days)),
                        )
                        .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = saved {
                error!(error = %e, "The pass's report could not be stored.");
                report
                    .stopped
                    .get_or_insert_with(|| format!("the store cannot be written ({e})"));
            }
        }
        summary::log(&report);
        Ok(report)
    }
}
