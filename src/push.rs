//! Executing one vendor's plan: bounded concurrency, retries, and a store write right
//! after every call the vendor acknowledged.
//!
//! Crash safety of creates (a create is not idempotent): before a create, the person is
//! looked up by matching key and an existing account is adopted; an intent record
//! (`Creating`) is written before the create call, and a retried create looks up again
//! first. So a process killed between the vendor's reply and the store write leaves an
//! intent that the next pass resolves by lookup, never by a second create.
//!
//! Credentials rejected (`Auth`) stop this vendor for the rest of the pass; other
//! vendors are unaffected because each runs its own `push`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use futures::StreamExt;
use tracing::{debug, warn};

use crate::diff::{OpKind, Operation, Plan};
use crate::model::{Fields, PersonId, changes};
use crate::pace::Pacer;
use crate::report::{OpError, Outcome, VendorReport};
use crate::retry::Retry;
use crate::shutdown::Shutdown;
use crate::store::{HistoryEntry, RecordState, Store, StoreError, VendorRecord};
use crate::vendor::{Remote, Vendor, VendorError};

/// What one operation achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    Created,
    Adopted,
    Updated,
    Deactivated,
    Reactivated,
    Deleted,
    /// Nothing was needed after all (e.g. a pending create that never reached the vendor).
    Nothing,
}

/// Why one operation did not complete.
#[derive(Debug)]
enum Failure {
    /// Counted as skipped: the person cannot be handled yet (DriveKit: not signed in).
    Skip(String),
    Fail(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Fail(format!(
            "the vendor acknowledged, but the store write failed: {e}"
        ))
    }
}

pub struct Pusher {
    pub vendor: Arc<dyn Vendor>,
    pub store: Store,
    pub retry: Retry,
    pub concurrency: usize,
    pub shutdown: Shutdown,
    /// Paces every call to this vendor (every attempt, retries included).
    pub pacer: Arc<Pacer>,
    /// Set once the vendor rejects the credentials: no further calls this pass.
    auth_failed: AtomicBool,
    /// Hears of each retry (vendor, error), for metrics.
    pub on_retry: crate::sync::RetryHook,
    /// Hears of each finished operation (vendor, done, total), for progress display.
    pub on_progress: Option<crate::sync::ProgressHook>,
    done: std::sync::atomic::AtomicUsize,
}

impl Pusher {
    pub fn new(vendor: Arc<dyn Vendor>, store: Store, retry: Retry, concurrency: usize) -> Self {
        let vendor_name = vendor.name().to_string();
        Self {
            vendor,
            store,
            retry,
            concurrency: concurrency.max(1),
            shutdown: Shutdown::never(),
            pacer: Arc::new(Pacer::unlimited(&vendor_name)),
            auth_failed: AtomicBool::new(false),
            on_retry: Arc::new(|_, _| {}),
            on_progress: None,
            done: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn name(&self) -> &str {
        self.vendor.name()
    }

    /// Runs every operation of `plan` and reports what happened.
    pub async fn push(&self, plan: &Plan) -> VendorReport {
        let mut report = VendorReport {
            unchanged: plan.unchanged,
            skipped: plan.skipped.len(),
            ..VendorReport::default()
        };
        for (person, op, message) in &plan.skipped {
            report.errors.push(OpError {
                person: person.to_string(),
                op: (*op).to_string(),
                message: message.clone(),
                outcome: Outcome::Skipped,
            });
        }
        // The futures are made up front rather than in a `map` closure on the stream:
        // rustc cannot prove a closure-made future `Send` for every lifetime
        // (rust-lang/rust#102211), and the daemon runs passes on spawned tasks.
        let ops: Vec<_> = plan
            .ops
            .iter()
            .map(|op| async move {
                let result = self.run_op(op).await;
                let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
                if let Some(hook) = &self.on_progress {
                    hook(self.name(), done, plan.ops.len());
                }
                (op, result)
            })
            .collect();
        let results: Vec<(&Operation, Result<Done, Failure>)> = futures::stream::iter(ops)
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut results = results;
        results.sort_by(|a, b| a.0.person.cmp(&b.0.person));
        for (op, result) in results {
            match result {
                Ok(done) => match done {
                    Done::Created => report.created += 1,
                    Done::Adopted => report.adopted += 1,
                    Done::Updated => report.updated += 1,
                    Done::Deactivated => report.deactivated += 1,
                    Done::Reactivated => report.reactivated += 1,
                    Done::Deleted => report.deleted += 1,
                    Done::Nothing => report.unchanged += 1,
                },
                Err(failure) => {
                    let (message, outcome) = match failure {
                        Failure::Skip(m) => {
                            report.skipped += 1;
                            (m, Outcome::Skipped)
                        }
                        Failure::Fail(m) => {
                            report.failed += 1;
                            (m, Outcome::Failed)
                        }
                    };
                    report.errors.push(OpError {
                        person: op.person.to_string(),
                        op: op.kind.name().to_string(),
                        message,
                        outcome,
                    });
                }
            }
        }
        report
    }

    async fn run_op(&self, op: &Operation) -> Result<Done, Failure> {
        if self.auth_failed.load(Ordering::SeqCst) {
            return Err(Failure::Fail(
                "not attempted: the vendor rejected roster's credentials earlier in this pass"
                    .into(),
            ));
        }
        if self.shutdown.is_triggered() {
            return Err(Failure::Fail(
                "not attempted: roster is shutting down or lost the HA lease".into(),
            ));
        }
        let person = &op.person;
        debug!(vendor = %self.name(), user = %person, op = op.kind.name(), "Starting operation.");
        let result = match &op.kind {
            OpKind::Create { fields, .. } => self.create(person, fields).await,
            OpKind::Update {
                remote,
                changes,
                fields,
            } => match self
                .write(person, "update", names(changes), move || {
                    self.vendor.update(remote, changes, fields)
                })
                .await
            {
                Ok(()) => {
                    self.record(person, Some(remote), RecordState::Active, fields)
                        .await?;
                    Ok(Done::Updated)
                }
                Err(VendorError::NotFound(_)) => self.relink(person, fields).await,
                Err(e) => Err(self.failure(e)),
            },
            OpKind::Reactivate {
                remote,
                changes,
                fields,
            } => self.reactivate(person, remote, changes, fields).await,
            OpKind::Deactivate { remote, .. } => self.deactivate(person, remote.as_deref()).await,
            OpKind::Delete { remote } => self.delete(person, remote.as_deref()).await,
        };
        if let Err(Failure::Fail(message)) = &result {
            warn!(vendor = %self.name(), user = %person, op = op.kind.name(), error = %message, "Operation failed; it will be retried next pass.");
        }
        result
    }

    /// Calls the vendor with pacing and retries, reporting each retry.
    async fn call<T, F, Fut>(&self, mut call: F) -> Result<T, VendorError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, VendorError>>,
    {
        let paced = || {
            let fut = call();
            async move {
                match self.pacer.ready(&self.shutdown).await {
                    Ok(()) => {}
                    Err(crate::pace::NotReady::Stopped) => {
                        return Err(VendorError::Transport(
                            "not sent: roster is shutting down or lost the HA lease".into(),
                        ));
                    }
                    // Handed to the retry policy, which gives up on a wait this long.
                    Err(crate::pace::NotReady::Held(left)) => {
                        return Err(VendorError::RateLimited {
                            retry_after: Some(left),
                        });
                    }
                }
                let result = fut.await;
                self.pacer.observe(&result);
                result
            }
        };
        let result = self
            .retry
            .run(paced, |error, wait| {
                warn!(vendor = %self.name(), error = %error, delay_ms = wait.as_millis() as u64, "Retrying vendor call.");
                (self.on_retry)(self.name(), error);
            })
            .await;
        if let Err(VendorError::Auth { .. }) = &result {
            self.auth_failed.store(true, Ordering::SeqCst);
        }
        result
    }

    /// A vendor write with retries, kept in the audit history.
    async fn write<T, F, Fut>(
        &self,
        person: &PersonId,
        op: &str,
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

    fn audit<T>(
        &self,
        person: &PersonId,
        op: &str,
        fields: Vec<String>,
        result: &Result<T, VendorError>,
    ) {
        let (outcome, message) = match result {
            Ok(_) => ("ok", None),
            Err(VendorError::Waiting(m)) => ("skipped", Some(m.clone())),
            Err(e) => ("failed", Some(e.to_string())),
        };
        let entry = HistoryEntry {
            time: Utc::now(),
            vendor: self.name().to_string(),
            person: person.to_string(),
            op: op.to_string(),
            outcome: outcome.to_string(),
            fields,
            message,
        };
        if let Err(error) = self.store.record_history(&entry) {
            warn!(vendor = %self.name(), user = %person, error = %error, "Could not record audit history.");
        }
    }

    fn failure(&self, e: VendorError) -> Failure {
        match e {
            VendorError::Waiting(m) => Failure::Skip(m),
            VendorError::Auth { .. } => {
                Failure::Fail(format!("{e}; no further calls to this vendor in this pass"))
            }
            other => Failure::Fail(other.to_string()),
        }
    }

    async fn record(
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

    async fn lookup(&self, person: &PersonId, fields: &Fields) -> Result<Option<Remote>, Failure> {
        self.call(move || self.vendor.lookup(person, fields))
            .await
            .map_err(|e| self.failure(e))
    }

    async fn create(&self, person: &PersonId, fields: &Fields) -> Result<Done, Failure> {
        if let Some(remote) = self.lookup(person, fields).await? {
            return self.adopt(person, remote, fields).await;
        }
        self.record(person, None, RecordState::Creating, fields)
            .await?;
        let first = &AtomicBool::new(true);
        let vendor = &self.vendor;
        let made = self
            .call(move || async move {
                // A retried create may follow one that reached the vendor: look first.
                if !first.swap(false, Ordering::SeqCst)
                    && let Some(remote) = vendor.lookup(person, fields).await?
                {
                    return Ok(Err(remote));
                }
                vendor.create(person, fields).await.map(Ok)
            })
            .await;
        // A create that turned into an adoption (found on a retry) wrote nothing.
        if !matches!(made, Ok(Err(_))) {
            self.audit(person, "create", fields.keys().cloned().collect(), &made);
        }
        match made {
            Ok(Ok(id)) => {
                self.record(person, Some(&id), RecordState::Active, fields)
                    .await?;
                debug!(vendor = %self.name(), user = %person, "Created.");
                Ok(Done::Created)
            }
            Ok(Err(remote)) => self.adopt(person, remote, fields).await,
            Err(VendorError::Exists(detail)) => match self.lookup(person, fields).await? {
                Some(remote) => self.adopt(person, remote, fields).await,
                None => Err(Failure::Fail(format!(
                    "the vendor says the account exists ({detail}) but no account matches \
                     this person's key"
                ))),
            },
            Err(e) => {
                // A definite refusal means no account was made: drop the intent. Anything
                // else leaves it, so the next pass looks up before creating.
                if matches!(
                    e,
                    VendorError::Rejected { .. }
                        | VendorError::Auth { .. }
                        | VendorError::Waiting(_)
                ) {
                    self.store.remove(self.name(), person).await?;
                }
                Err(self.failure(e))
            }
        }
    }

    /// Links an account found by matching key, then brings it in line with the source.
    async fn adopt(
        &self,
        person: &PersonId,
        remote: Remote,
        fields: &Fields,
    ) -> Result<Done, Failure> {
        // An unknown status (DriveKit) is treated as inactive: enabling is then explicit.
        let active = remote.active == Some(true);
        let state = if active {
            RecordState::Active
        } else {
            RecordState::Deactivated
        };
        let rid = remote.id.as_str();
        self.record(person, Some(rid), state, &remote.fields)
            .await?;
        debug!(vendor = %self.name(), user = %person, remote = %remote.id, "Adopted existing account.");
        if !active {
            self.write(person, "reactivate", Vec::new(), move || {
                self.vendor.set_active(rid, true)
            })
            .await
            .map_err(|e| self.failure(e))?;
            self.record(person, Some(rid), RecordState::Active, &remote.fields)
                .await?;
        }
        let delta = &changes(&remote.fields, fields);
        if !delta.is_empty() {
            self.write(person, "update", names(delta), move || {
                self.vendor.update(rid, delta, fields)
            })
            .await
            .map_err(|e| self.failure(e))?;
            self.record(person, Some(rid), RecordState::Active, fields)
                .await?;
        }
        Ok(Done::Adopted)
    }

    /// The stored account is gone at the vendor: forget it and create or adopt afresh.
    async fn relink(&self, person: &PersonId, fields: &Fields) -> Result<Done, Failure> {
        warn!(vendor = %self.name(), user = %person, "Account no longer exists at the vendor; linking again.");
        self.store.remove(self.name(), person).await?;
        self.create(person, fields).await
    }

    async fn reactivate(
        &self,
        person: &PersonId,
        remote: &str,
        delta: &crate::model::Changes,
        fields: &Fields,
    ) -> Result<Done, Failure> {
        let pushed = self
            .store
            .get(self.name(), person)?
            .map(|r| r.fields)
            .unwrap_or_default();
        match self
            .write(person, "reactivate", Vec::new(), move || {
                self.vendor.set_active(remote, true)
            })
            .await
        {
            Ok(()) => {}
            Err(VendorError::NotFound(_)) => return self.relink(person, fields).await,
            Err(e) => return Err(self.failure(e)),
        }
        self.record(person, Some(remote), RecordState::Active, &pushed)
            .await?;
        if !delta.is_empty() {
            self.write(person, "update", names(delta), move || {
                self.vendor.update(remote, delta, fields)
            })
            .await
            .map_err(|e| self.failure(e))?;
            self.record(person, Some(remote), RecordState::Active, fields)
                .await?;
        }
        Ok(Done::Reactivated)
    }

    /// Finds the account for a removal when only an intent was stored.
    async fn resolve(
        &self,
        person: &PersonId,
        remote: Option<&str>,
    ) -> Result<Option<(String, Fields)>, Failure> {
        let stored = self.store.get(self.name(), person)?;
        let fields = stored
            .as_ref()
            .map(|r| r.fields.clone())
            .unwrap_or_default();
        match remote {
            Some(id) => Ok(Some((id.to_string(), fields))),
            None => match self.lookup(person, &fields).await? {
                Some(r) => Ok(Some((r.id, fields))),
                None => {
                    // The create never reached the vendor: nothing to remove.
                    self.store.remove(self.name(), person).await?;
                    Ok(None)
                }
            },
        }
    }

    async fn deactivate(&self, person: &PersonId, remote: Option<&str>) -> Result<Done, Failure> {
        let Some((id, fields)) = self.resolve(person, remote).await? else {
            return Ok(Done::Nothing);
        };
        let rid = id.as_str();
        match self
            .write(person, "deactivate", Vec::new(), move || {
                self.vendor.set_active(rid, false)
            })
            .await
        {
            Ok(()) => {}
            // Gone at the vendor is as deactivated as it gets; keep the record so a
            // return is handled as a relink.
            Err(VendorError::NotFound(_)) => {
                warn!(vendor = %self.name(), user = %person, "Account to deactivate no longer exists at the vendor.");
            }
            Err(e) => return Err(self.failure(e)),
        }
        self.record(person, Some(&id), RecordState::Deactivated, &fields)
            .await?;
        Ok(Done::Deactivated)
    }

    async fn delete(&self, person: &PersonId, remote: Option<&str>) -> Result<Done, Failure> {
        let Some((id, _)) = self.resolve(person, remote).await? else {
            return Ok(Done::Nothing);
        };
        let rid = id.as_str();
        match self
            .write(person, "delete", Vec::new(), move || {
                self.vendor.delete(rid)
            })
            .await
        {
            Ok(()) | Err(VendorError::NotFound(_)) => {}
            Err(e) => return Err(self.failure(e)),
        }
        self.store.remove(self.name(), person).await?;
        Ok(Done::Deleted)
    }
}

fn names(changes: &crate::model::Changes) -> Vec<String> {
    changes.keys().cloned().collect()
}
