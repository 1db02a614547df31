//! Executing one vendor's plan: bounded concurrency, retries, and a store write right
//! after every call the vendor acknowledged (the calls themselves are in `writes.rs`).
//!
//! Credentials rejected (`Auth`) stop this vendor for the rest of the pass; other
//! vendors are unaffected because each runs its own `push`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use futures::StreamExt;
use tracing::{Instrument, debug, debug_span, error, warn};

use super::halt::Halt;
use super::hooks::Hooks;
use super::summary;
use crate::budget::Budget;
use crate::http::NotSent;
use crate::model::{Fields, Op, Outcome, PersonId, RecordState, VendorRecord};
use crate::plan::{Claims, Operation, Plan};
use crate::report::{Credentials, OpError, VendorReport};
use crate::retry::Retry;
use crate::store::{HistoryEntry, Store, StoreError};
use crate::vendor::{Vendor, VendorError};

/// What one operation achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Done {
    Created,
    Adopted,
    Updated,
    Deactivated,
    Reactivated,
    Deleted,
    /// Nothing was needed after all (e.g. a pending create that never reached the vendor).
    Nothing,
}

/// Why one operation did not complete; each keeps its class for the report and metrics.
#[derive(Debug)]
pub(super) enum Failure {
    /// The vendor's answer (or why roster did not ask): its class says which.
    Vendor(VendorError),
    /// The store could not be read or written before anything was sent for this person
    /// (the create intent, a lookup's link): nothing reached the vendor.
    Store(StoreError),
    /// The vendor acknowledged a write, but recording it failed: done at the vendor, not
    /// in the store.
    Unrecorded(StoreError),
    /// Not attempted: the pass stopped at its first failed store write.
    Halted,
    /// Still in flight when the shutdown grace period ran out: dropped where it stood.
    Abandoned,
    /// Not attempted: the vendor refused roster's credentials earlier in this pass.
    CredentialsRefused,
    /// A create collided with an account no lookup finds.
    Unmatched(String),
    /// The account found for this person is someone else's (linked to another person,
    /// or holding another person's values): not linked, nothing sent.
    Conflict(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            e @ StoreError::Linked { .. } => Self::Conflict(format!(
                "{e}: one account is never linked to two people, so it is not linked to this \
                 person"
            )),
            e => Self::Store(e),
        }
    }
}

impl From<VendorError> for Failure {
    fn from(e: VendorError) -> Self {
        Self::Vendor(e)
    }
}

impl Failure {
    /// A store failure after the vendor acknowledged a write (a `Linked` refusal stays a
    /// conflict).
    pub(super) fn unrecorded(e: StoreError) -> Self {
        match Self::from(e) {
            Self::Store(e) => Self::Unrecorded(e),
            other => other,
        }
    }

    /// Skipped (cannot be done yet, e.g. a DriveKit driver who has not signed in) or
    /// failed (tried again next pass).
    fn outcome(&self) -> Outcome {
        match self {
            Self::Vendor(VendorError::Waiting(_)) | Self::Conflict(_) => Outcome::Skipped,
            _ => Outcome::Failed,
        }
    }

    /// The vendor's HTTP status, when the failure is its answer.
    fn status(&self) -> Option<u16> {
        match self {
            Self::Vendor(e) => e.status(),
            _ => None,
        }
    }

    /// The failure's class, as reports and metrics name it.
    fn kind(&self) -> &'static str {
        match self {
            Self::Vendor(e) => e.kind(),
            Self::Store(_) | Self::Unrecorded(_) => "store",
            Self::Halted => "not_sent",
            Self::Abandoned => "interrupted",
            Self::CredentialsRefused => "auth",
            Self::Unmatched(_) | Self::Conflict(_) => "conflict",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Vendor(VendorError::NotSent(NotSent::Shutdown)) => {
                "not attempted: roster is shutting down or lost the HA lease".into()
            }
            Self::Vendor(e @ VendorError::Auth { .. }) => {
                format!("{e}; no further calls to this vendor in this pass")
            }
            Self::Vendor(e) => e.to_string(),
            Self::Store(e) => {
                format!("the store failed ({e}); nothing was done at the vendor for this person")
            }
            Self::Unrecorded(e) => format!(
                "done at the vendor, not recorded: the next pass will look it up (the store \
                 write failed: {e})"
            ),
            Self::Halted => {
                "not attempted: the pass stopped at the first failed store write".into()
            }
            Self::Abandoned => "interrupted: still in flight when shutdown_grace_secs ran out; \
                                the next pass looks the person up and finishes it"
                .into(),
            Self::CredentialsRefused => {
                "not attempted: the vendor rejected roster's credentials earlier in this pass"
                    .into()
            }
            Self::Unmatched(detail) => format!(
                "the vendor says the account exists ({detail}) but no account matches this \
                 person's key"
            ),
            Self::Conflict(why) => why.clone(),
        }
    }
}

/// Runs one vendor's operations. Pacing, holds and sessions are the vendor's own
/// (`http`); this adds retries, the store writes and the report.
pub struct Pusher {
    pub(super) vendor: Arc<dyn Vendor>,
    pub(super) store: Store,
    retry: Retry,
    /// The pass's deadline and shutdown: every wait comes out of it.
    pub(super) budget: Budget,
    concurrency: usize,
    /// Hears of retries and progress.
    hooks: Arc<dyn Hooks>,
    /// Set once the vendor rejects the credentials: no further calls this pass.
    auth_failed: AtomicBool,
    /// Set once a call is answered past authentication (for the report's `credentials`).
    auth_accepted: AtomicBool,
    /// Setup problems already explained in the log this pass (logged once each).
    advised: Mutex<BTreeSet<&'static str>>,
    /// Stops the whole pass at the first failed store write (shared by every vendor).
    halt: Option<Arc<Halt>>,
    done: AtomicUsize,
    /// The vendor's `create_only` fields: an adopted account keeps its own values.
    pub(super) create_only: BTreeSet<String>,
}

impl Pusher {
    pub fn new(
        vendor: Arc<dyn Vendor>,
        store: Store,
        retry: Retry,
        budget: Budget,
        concurrency: usize,
        hooks: Arc<dyn Hooks>,
    ) -> Self {
        Self {
            vendor,
            store,
            retry,
            budget,
            concurrency: concurrency.max(1),
            hooks,
            auth_failed: AtomicBool::new(false),
            auth_accepted: AtomicBool::new(false),
            advised: Mutex::new(BTreeSet::new()),
            halt: None,
            done: AtomicUsize::new(0),
            create_only: BTreeSet::new(),
        }
    }

    /// Stops the pass through `halt` at the first failed store write. Its shutdown must
    /// be the one of this pusher's budget.
    pub(super) fn with_halt(mut self, halt: Arc<Halt>) -> Self {
        self.halt = Some(halt);
        self
    }

    fn halted(&self) -> bool {
        self.halt.as_ref().is_some_and(|h| h.why().is_some())
    }

    /// Fields an adopted account keeps where it has a value (`create_only`).
    #[must_use]
    pub fn with_create_only(mut self, fields: BTreeSet<String>) -> Self {
        self.create_only = fields;
        self
    }

    pub(super) fn name(&self) -> &str {
        self.vendor.name()
    }

    /// Runs every operation of `plan` and reports what happened.
    pub async fn push(&self, plan: &Plan) -> VendorReport {
        let mut report = summary::base(plan);
        let claims = &Claims::from_plan(self.vendor.unique_keys(), plan);
        // The futures are made up front rather than in a `map` closure on the stream:
        // rustc cannot prove a closure-made future `Send` for every lifetime
        // (rust-lang/rust#102211), and the daemon runs passes on spawned tasks.
        let ops: Vec<_> = plan
            .ops
            .iter()
            .map(|op| {
                let span = debug_span!("person", user = %op.person, op = %op.kind.op());
                async move {
                    let result = self.run_op(op, claims).await;
                    let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
                    self.hooks.progress(self.name(), done, plan.ops.len());
                    (op, result)
                }
                .instrument(span)
            })
            .collect();
        let mut results: Vec<(&Operation, Result<Done, Failure>)> = futures::stream::iter(ops)
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        results.sort_by(|a, b| a.0.person.cmp(&b.0.person));
        for (op, result) in results {
            match result {
                Ok(Done::Created) => report.created += 1,
                Ok(Done::Adopted) => report.adopted += 1,
                Ok(Done::Updated) => report.updated += 1,
                Ok(Done::Deactivated) => report.deactivated += 1,
                Ok(Done::Reactivated) => report.reactivated += 1,
                Ok(Done::Deleted) => report.deleted += 1,
                Ok(Done::Nothing) => report.unchanged += 1,
                Err(failure) => {
                    let outcome = failure.outcome();
                    match outcome {
                        Outcome::Skipped => report.skipped += 1,
                        _ => report.failed += 1,
                    }
                    report.errors.push(OpError {
                        person: op.person.to_string(),
                        op: op.kind.op(),
                        message: failure.message(),
                        outcome,
                        kind: Some(failure.kind().into()),
                        status: failure.status(),
                    });
                }
            }
        }
        report.credentials = if self.auth_failed.load(Ordering::SeqCst) {
            Some(Credentials::Rejected)
        } else if self.auth_accepted.load(Ordering::SeqCst) {
            Some(Credentials::Accepted)
        } else {
            None
        };
        report
    }

    async fn run_op(&self, op: &Operation, claims: &Claims) -> Result<Done, Failure> {
        if self.auth_failed.load(Ordering::SeqCst) {
            return Err(Failure::CredentialsRefused);
        }
        if self.halted() {
            return Err(Failure::Halted);
        }
        if self.budget.is_stopped() {
            return Err(Failure::Vendor(VendorError::NotSent(NotSent::Shutdown)));
        }
        debug!("Starting operation.");
        let mut abandon = self.budget.shutdown().clone();
        let mut result = tokio::select! {
            biased;
            r = self.dispatch(&op.person, &op.kind, claims) => r,
            () = abandon.abandoned() => Err(Failure::Abandoned),
        };
        match &result {
            Err(Failure::Store(e) | Failure::Unrecorded(e)) => {
                if let Some(halt) = &self.halt {
                    halt.stop(format!("{} at {}: {e}", op.person, self.name()));
                }
            }
            // The pass's shutdown fired because the store failed, not roster stopping.
            Err(Failure::Vendor(VendorError::NotSent(NotSent::Shutdown))) if self.halted() => {
                result = Err(Failure::Halted);
            }
            _ => {}
        }
        if let Err(failure) = &result {
            self.explain(failure);
            if failure.outcome() == Outcome::Failed {
                warn!(error = %failure.message(), "Operation failed; it will be retried next pass.");
            }
        }
        result
    }

    /// Logs a vendor setup problem once per pass, with its fix.
    fn explain(&self, failure: &Failure) {
        if let Failure::Vendor(VendorError::Setup { detail, fix }) = failure {
            let first = self
                .advised
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(fix);
            if first {
                error!(error = %detail, fix, "The vendor refuses these calls until its setup is fixed.");
            }
        }
    }

    /// Calls the vendor with retries (pacing is the vendor's `http` layer's), reporting
    /// each retry.
    pub(super) async fn call<T, F, Fut>(&self, call: F) -> Result<T, VendorError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, VendorError>>,
    {
        let result = self
            .retry
            .run(&self.budget, call, |error, wait| {
                warn!(error = %error, delay_ms = wait.as_millis() as u64, "Retrying vendor call.");
                self.hooks.retry(self.name(), error, wait);
            })
            .await;
        match &result {
            Err(VendorError::Auth { .. }) => self.auth_failed.store(true, Ordering::SeqCst),
            // Answers only an authenticated caller gets.
            Ok(_)
            | Err(
                VendorError::Rejected { .. }
                | VendorError::NotFound(_)
                | VendorError::Exists(_)
                | VendorError::Waiting(_),
            ) => self.auth_accepted.store(true, Ordering::SeqCst),
            Err(_) => {}
        }
        result
    }

    /// A vendor write with retries, kept in the audit history.
    pub(super) async fn write<T, F, Fut>(
        &self,
        person: &PersonId,
        op: Op,
        fields: Vec<String>,
        call: F,
    ) -> Result<T, VendorError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, VendorError>>,
    {
        let result = self.call(call).await;
        self.audit(person, op, fields, &result);
        result
    }

    pub(super) fn audit<T>(
        &self,
        person: &PersonId,
        op: Op,
        fields: Vec<String>,
        result: &Result<T, VendorError>,
    ) {
        let (outcome, message) = match result {
            Ok(_) => (Outcome::Ok, None),
            Err(VendorError::Waiting(m)) => (Outcome::Skipped, Some(m.clone())),
            Err(e) => (Outcome::Failed, Some(e.to_string())),
        };
        let entry = HistoryEntry {
            time: Utc::now(),
            vendor: self.name().to_string(),
            person: person.to_string(),
            op,
            outcome,
            fields,
            message,
        };
        if let Err(error) = self.store.record_history(&entry) {
            warn!(error = %error, "Could not record audit history.");
        }
    }

    /// Writes what the vendor acknowledged (keeping when the person was first linked).
    pub(super) async fn record(
        &self,
        person: &PersonId,
        remote: Option<&str>,
        state: RecordState,
        fields: &Fields,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let linked_at = self
            .store
            .get(self.name(), person)?
            .map_or(now, |r| r.linked_at);
        let record = VendorRecord {
            remote_id: remote.map(String::from),
            state,
            fields: fields.clone(),
            linked_at,
            updated_at: now,
        };
        self.store.put(self.name(), person, &record).await
    }
}
