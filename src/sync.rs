//! One reconcile pass: read the source, plan each vendor, check the safety limits, push,
//! record the report.
//!
//! Architecture invariants: a failed, partial or empty source read pushes nothing; a
//! tripped safety limit at any vendor pushes nothing anywhere (unless forced); a dry run
//! writes nothing to the store and calls no vendor.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Utc;
use tracing::{error, info, warn};

use crate::config::{HistorySettings, Safety, Settings, VendorSettings};
use crate::diff::{self, Desired, Known, OpKind, Plan, Why};
use crate::model::{Person, PersonId};
use crate::pace::Pacer;
use crate::push::Pusher;
use crate::report::{
    DriftReport, PlannedOp, Report, SourceCounts, SourceRecordError, VendorReport,
};
use crate::retry::Retry;
use crate::shutdown::Shutdown;
use crate::source::{Snapshot, Source};
use crate::store::{Store, StoreError, StoredRecord, VendorRecord};
use crate::vendor::Vendor;

/// Everything a pass needs, built once from the config.
pub struct Context {
    pub settings: Settings,
    pub source: Box<dyn Source>,
    /// Each vendor with its settings, in name order.
    pub vendors: Vec<(VendorSettings, Arc<dyn Vendor>)>,
    /// Hears of every retried vendor call (vendor name, error): the daemon's metrics.
    pub on_retry: Option<RetryHook>,
    /// Hears of every finished operation (vendor, done, total): progress display.
    pub on_progress: Option<ProgressHook>,
}

pub type ProgressHook = Arc<dyn Fn(&str, usize, usize) + Send + Sync>;

pub type RetryHook = Arc<dyn Fn(&str, &crate::vendor::VendorError) + Send + Sync>;

#[derive(Debug, Clone, Default)]
pub struct PassOptions {
    pub dry_run: bool,
    pub force: bool,
    /// Also read each vendor's accounts and repair drift (`--full`).
    pub full: bool,
    /// Only these vendors (all when empty).
    pub only: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Context {
    /// # Errors
    /// Any connector whose keys are invalid.
    pub fn build(settings: Settings) -> Result<Self, crate::config::ConfigError> {
        let source = crate::source::build(&settings.source)?;
        // HA (issue 17): vendor calls name the replica in their User-Agent.
        let agent = crate::ha::user_agent(settings.ha.as_ref());
        let vendors = settings
            .vendors
            .values()
            .map(|v| {
                Ok((
                    v.clone(),
                    crate::vendor::build_as(v, &settings.retry, &agent)?,
                ))
            })
            .collect::<Result<_, crate::config::ConfigError>>()?;
        Ok(Self {
            settings,
            source,
            vendors,
            on_retry: None,
            on_progress: None,
        })
    }

    /// The vendors a pass covers.
    fn selected(&self, only: &[String]) -> Vec<&(VendorSettings, Arc<dyn Vendor>)> {
        self.vendors
            .iter()
            .filter(|(s, _)| only.is_empty() || only.contains(&s.name))
            .collect()
    }
}

/// What a vendor should hold for each person the source knows.
pub fn desired_for(
    settings: &VendorSettings,
    vendor: &dyn Vendor,
    people: &[Person],
    held: &BTreeSet<PersonId>,
) -> BTreeMap<PersonId, Desired> {
    let mut out = BTreeMap::new();
    for p in people {
        out.insert(p.id.clone(), desire(settings, vendor, p));
    }
    for id in held {
        out.insert(id.clone(), Desired::Hold);
    }
    out
}

/// [`desired_for`] as a stream in person-id order, computed as it is consumed; `people`
/// must be sorted by id (a later duplicate wins, as in the map). Held ids win over people.
fn desired_sorted<'a>(
    settings: &'a VendorSettings,
    vendor: &'a dyn Vendor,
    people: &'a [&'a Person],
    held: &'a BTreeSet<PersonId>,
) -> impl Iterator<Item = (&'a PersonId, Desired)> + 'a {
    let mut i = 0;
    let mut held = held.iter().peekable();
    std::iter::from_fn(move || {
        // Of a run of equal ids, the last one counts.
        while i + 1 < people.len() && people[i].id == people[i + 1].id {
            i += 1;
        }
        let person = people.get(i);
        match (person, held.peek()) {
            (None, None) => None,
            (Some(p), Some(h)) if p.id == **h => {
                i += 1;
                held.next().map(|h| (h, Desired::Hold))
            }
            (Some(p), Some(h)) if p.id > **h => held.next().map(|h| (h, Desired::Hold)),
            (None, Some(_)) => held.next().map(|h| (h, Desired::Hold)),
            (Some(p), _) => {
                i += 1;
                Some((&p.id, desire(settings, vendor, p)))
            }
        }
    })
}

pub fn desire(settings: &VendorSettings, vendor: &dyn Vendor, p: &Person) -> Desired {
    if !p.active {
        return Desired::Inactive(Why::Inactive);
    }
    if let Some(groups) = &settings.scope_groups
        && p.groups.is_disjoint(groups)
    {
        return Desired::Inactive(Why::OutOfScope);
    }
    match vendor.map(p) {
        Ok(fields) => Desired::Active(fields),
        Err(message) => Desired::Skip(message),
    }
}

/// People whose invalid source record must not change anything: those with an id, and
/// linked people whose last pushed email matches an id-less invalid record.
fn held_ids<K: Known>(
    snapshot: &Snapshot,
    known: impl IntoIterator<Item = K>,
) -> BTreeSet<PersonId> {
    let mut held: BTreeSet<PersonId> = snapshot
        .invalid
        .iter()
        .filter_map(|r| r.id.clone().map(PersonId))
        .collect();
    let emails: BTreeSet<String> = snapshot
        .invalid
        .iter()
        .filter(|r| r.id.is_none())
        .filter_map(|r| r.email.as_ref().map(|e| e.to_ascii_lowercase()))
        .collect();
    if !emails.is_empty() {
        for r in known {
            if r.fields()
                .get("email")
                .is_some_and(|e| emails.contains(&e.to_ascii_lowercase()))
            {
                held.insert(PersonId(r.person().to_string()));
            }
        }
    }
    held
}

/// Reads the vendor's accounts and corrects `known` to them (see `drift`).
async fn check_drift(
    name: &str,
    vendor: &dyn Vendor,
    known: &mut BTreeMap<PersonId, VendorRecord>,
    retry: &Retry,
) -> DriftReport {
    let listed = retry
        .run(
            || vendor.list(),
            |error, _| warn!(vendor = %name, error = %error, "Retrying the account listing."),
        )
        .await;
    match listed {
        Ok(accounts) => {
            let details = crate::drift::reconcile_records(known, &accounts);
            for d in &details {
                warn!(vendor = %name, user = %d.person, drift = ?d.kind, "Drift: changed at the vendor behind roster's back; repairing.");
            }
            DriftReport {
                found: details.len(),
                details,
                unavailable: None,
            }
        }
        Err(error) => {
            warn!(vendor = %name, error = %error, "Cannot list accounts; drift not checked at this vendor.");
            DriftReport {
                unavailable: Some(error.to_string()),
                ..DriftReport::default()
            }
        }
    }
}

/// Why the safety gate refuses this plan, if it does.
pub fn safety_refusal(vendor: &str, plan: &Plan, safety: &Safety) -> Option<String> {
    let removals = plan.removals();
    if removals == 0 {
        return None;
    }
    if removals as u64 > safety.max_deactivations {
        return Some(format!(
            "{vendor}: {removals} deactivations exceed safety.max_deactivations = {}",
            safety.max_deactivations
        ));
    }
    let linked = plan.linked;
    let ratio = removals as f64 / linked.max(1) as f64;
    if ratio > safety.max_deactivation_ratio {
        return Some(format!(
            "{vendor}: {removals} deactivations of {linked} active people ({:.0}%) exceed \
             safety.max_deactivation_ratio = {}",
            ratio * 100.0,
            safety.max_deactivation_ratio
        ));
    }
    None
}

/// Why the source's size refuses the pass: it lost more than the allowed share of the
/// records the last completed pass read.
pub fn source_drop_refusal(last: Option<u64>, now: u64, safety: &Safety) -> Option<String> {
    let last = last.filter(|&n| n > 0)?;
    if now >= last {
        return None;
    }
    let drop = (last - now) as f64 / last as f64;
    (drop > safety.max_source_drop_ratio).then(|| {
        format!(
            "the source has {now} records, {:.0}% fewer than the {last} of the last completed \
             pass (safety.max_source_drop_ratio = {})",
            drop * 100.0,
            safety.max_source_drop_ratio
        )
    })
}

fn source_counts(snapshot: &Snapshot) -> SourceCounts {
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

fn planned_report(plan: &Plan) -> VendorReport {
    let mut v = VendorReport {
        unchanged: plan.unchanged,
        skipped: plan.skipped.len(),
        operations: Some(Vec::new()),
        ..VendorReport::default()
    };
    for (person, op, message) in &plan.skipped {
        v.errors.push(crate::report::OpError {
            person: person.to_string(),
            op: (*op).to_string(),
            message: message.clone(),
            outcome: crate::report::Outcome::Skipped,
        });
    }
    for op in &plan.ops {
        let why = match &op.kind {
            OpKind::Create { .. } => {
                v.created += 1;
                None
            }
            OpKind::Update { .. } => {
                v.updated += 1;
                None
            }
            OpKind::Reactivate { .. } => {
                v.reactivated += 1;
                None
            }
            OpKind::Deactivate { why, .. } => {
                v.deactivated += 1;
                Some(why.code().to_string())
            }
            OpKind::Delete { .. } => {
                v.deleted += 1;
                Some(Why::Removed.code().to_string())
            }
        };
        if let Some(ops) = v.operations.as_mut() {
            ops.push(PlannedOp {
                person: op.person.to_string(),
                op: op.kind.name().to_string(),
                fields: op.kind.field_names(),
                reason: why,
            });
        }
    }
    v
}

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
) -> Result<Report, SyncError> {
    let started = Utc::now();
    let mut report = Report {
        dry_run: opts.dry_run,
        started_at: Some(started),
        ..Report::default()
    };
    let vendors = ctx.selected(&opts.only);

    let snapshot = match ctx.source.fetch().await {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "Source read failed; nothing will be pushed.");
            report.refused = Some(format!("the source could not be read: {e}"));
            return finish(report, store, opts, ctx.settings.history).await;
        }
    };
    report.source = source_counts(&snapshot);
    for r in &snapshot.invalid {
        warn!(record = %r.location, error = %r.message, "Invalid source record left out; its person keeps their current state.");
    }
    if snapshot.people.is_empty() {
        report.refused = Some(format!(
            "the source has no valid records ({} invalid); refusing to treat that as everyone leaving",
            snapshot.invalid.len()
        ));
        error!("Source is empty; nothing will be pushed.");
        return finish(report, store, opts, ctx.settings.history).await;
    }

    // Invalid records still stand for people (they are held, not removed), so the size
    // check counts every record.
    let records = report.source.records as u64;
    let mut limits = Vec::new();
    limits.extend(source_drop_refusal(
        store.last_source_count()?,
        records,
        &ctx.settings.safety,
    ));

    let retry = Retry::for_pass(ctx.settings.retry).stop_on(shutdown.clone());
    let mut plans = Vec::new();
    let mut drifts = BTreeMap::new();
    // Sorted once for every vendor's merge-join against the store.
    let mut sorted: Vec<&Person> = snapshot.people.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    // `--full` first reads every vendor's accounts (async) and corrects what is known.
    let mut corrected = BTreeMap::new();
    if opts.full {
        for (settings, vendor) in &vendors {
            let mut known = store.load(&settings.name)?;
            let d = check_drift(&settings.name, vendor.as_ref(), &mut known, &retry).await;
            drifts.insert(settings.name.clone(), d);
            corrected.insert(settings.name.clone(), known);
        }
    }
    // Planning is CPU and store reads only, and each vendor's is independent: one thread
    // per vendor.
    let planned: Vec<Result<Plan, StoreError>> = std::thread::scope(|scope| {
        let sorted = &sorted;
        let snapshot = &snapshot;
        let handles: Vec<_> = vendors
            .iter()
            .map(|(settings, vendor)| {
                let known = corrected.remove(&settings.name);
                scope.spawn(move || {
                    plan_vendor(store, snapshot, sorted, settings, vendor.as_ref(), known)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    for ((settings, vendor), plan) in vendors.iter().zip(planned) {
        let plan = plan?;
        info!(
            vendor = %settings.name,
            ops = plan.ops.len(),
            removals = plan.removals(),
            unchanged = plan.unchanged,
            skipped = plan.skipped.len(),
            "Planned."
        );
        limits.extend(safety_refusal(&settings.name, &plan, &ctx.settings.safety));
        plans.push((settings, vendor, plan));
    }
    if !limits.is_empty() {
        let why = limits.join("; ");
        if opts.force {
            warn!(reason = %why, "Safety limits exceeded; going ahead because of --force.");
        } else {
            report.refused = Some(format!("safety limit: {why} (use --force to override)"));
        }
    }

    if report.refused.is_some() || opts.dry_run {
        for (settings, _, plan) in &plans {
            let mut v = planned_report(plan);
            v.drift = drifts.remove(&settings.name);
            report.vendors.insert(settings.name.clone(), v);
        }
        if let Some(why) = &report.refused {
            error!(reason = %why, "Pass refused; nothing was pushed.");
        }
        return finish(report, store, opts, ctx.settings.history).await;
    }

    // What pacing learned in earlier passes, per vendor.
    let mut learned = BTreeMap::new();
    for (settings, _, _) in &plans {
        if let Some(p) = store.pace(&settings.name)? {
            learned.insert(settings.name.clone(), p.rate_per_sec);
        }
    }
    let learned = &learned;
    let pushes = plans.iter().map(|(settings, vendor, plan)| {
        let mut pusher = Pusher::new(
            Arc::clone(vendor),
            store.clone(),
            retry.clone(),
            settings.concurrency,
        );
        pusher.shutdown = shutdown.clone();
        pusher.pacer = Arc::new(
            Pacer::new(
                &settings.name,
                settings.rate_limit,
                learned.get(&settings.name).copied(),
            )
            .with_max_hold(std::time::Duration::from_secs(
                ctx.settings.retry.max_interval_secs,
            )),
        );
        if let Some(hook) = &ctx.on_retry {
            pusher.on_retry = Arc::clone(hook);
        }
        pusher.on_progress = ctx.on_progress.clone();
        async move {
            let report = pusher.push(plan).await;
            (
                settings.name.clone(),
                report,
                pusher.pacer.learned(),
                settings.rate_limit,
            )
        }
    });
    for (name, mut vendor_report, rate, configured) in futures::future::join_all(pushes).await {
        let keep = match (rate, configured.map(crate::config::RateLimit::per_second)) {
            (Some(r), Some(c)) if r < c => Some(r),
            (Some(r), None) => Some(r),
            _ => None,
        };
        let record = keep.map(|rate_per_sec| crate::store::PaceRecord {
            rate_per_sec,
            updated_at: Utc::now(),
        });
        store.set_pace(&name, record.as_ref()).await?;
        vendor_report.drift = drifts.remove(&name);
        report.vendors.insert(name, vendor_report);
    }
    store.set_last_source_count(records).await?;
    finish(report, store, opts, ctx.settings.history).await
}

/// One vendor's plan: the source (sorted by id) merge-joined with the store's records, or
/// with `known` when `--full` has already read and corrected them.
fn plan_vendor(
    store: &Store,
    snapshot: &Snapshot,
    sorted: &[&Person],
    settings: &VendorSettings,
    vendor: &dyn Vendor,
    known: Option<BTreeMap<PersonId, VendorRecord>>,
) -> Result<Plan, StoreError> {
    if let Some(known) = known {
        let held = held_ids(snapshot, known.iter().map(|(k, v)| (k.clone(), v.clone())));
        let desired = desired_sorted(settings, vendor, sorted, &held);
        return Ok(diff::plan_sorted(desired, known, settings.on_remove));
    }
    let mut failed = None;
    let held = held_ids(
        snapshot,
        stored_records(store, &settings.name, &mut failed)?,
    );
    let desired = desired_sorted(settings, vendor, sorted, &held);
    let known = stored_records(store, &settings.name, &mut failed)?;
    let plan = diff::plan_sorted(desired, known, settings.on_remove);
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

async fn finish(
    mut report: Report,
    store: &Store,
    opts: &PassOptions,
    history: HistorySettings,
) -> Result<Report, SyncError> {
    report.finished_at = Some(Utc::now());
    for (name, v) in &report.vendors {
        info!(
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
        );
    }
    if !opts.dry_run {
        store.save_report(&report).await?;
        let h = history;
        store
            .prune_history(
                h.max_entries,
                chrono::Duration::days(i64::from(h.max_age_days)),
            )
            .await?;
    }
    Ok(report)
}
