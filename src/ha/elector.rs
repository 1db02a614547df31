//! The election loop: one task per daemon that tries to take the Lease, renews it while
//! holding it, and publishes "I lead now" on a `watch` channel.
//!
//! Timing (all on the local monotonic clock):
//! - every `retry_period` a candidate reads the Lease and takes it if it is free or has
//!   stayed unchanged for its `leaseDurationSeconds`; the leader renews it;
//! - the leader's claim is good until `renew_deadline` after the start of its last
//!   successful write. When that passes without a newer one (API server slow,
//!   unreachable, or the Lease taken), the channel flips to `false` at that instant,
//!   even while a request still hangs: the pass stops starting vendor calls. A standby
//!   waits `lease_duration` from the moment it saw that write, so the two never overlap;
//! - after a takeover from a holder that stopped renewing, "leader" is published only
//!   after the fence (`record::fence`), when every call that holder had in flight has
//!   timed out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use tokio::sync::watch;
use tokio::time::sleep_until;
use tracing::{debug, error, info, warn};

use super::lease::{LeaseApi, LeaseError};
use super::record::{self, Decision, Observed, Takeover};

/// The election's timings.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    /// How often a candidate tries and the leader renews.
    pub retry_period: Duration,
    /// The longest a vendor call may take (`retry.request_timeout_secs`): the fence.
    pub request_timeout: Duration,
}

impl Timing {
    /// `retry_period` is a quarter of the renew deadline (between 250 ms and 2 s, client-go's
    /// default), so a leader gets about four tries before it must step down.
    pub fn new(
        lease_duration: Duration,
        renew_deadline: Duration,
        request_timeout: Duration,
    ) -> Self {
        let retry_period =
            (renew_deadline / 4).clamp(Duration::from_millis(250), Duration::from_secs(2));
        Self {
            lease_duration,
            renew_deadline,
            retry_period,
            request_timeout,
        }
    }
}

enum Attempt {
    Acquired {
        takeover: Takeover,
        sent: Instant,
    },
    HeldBy(String),
    /// Another candidate wrote first; read again next time.
    Lost,
}

pub struct Elector {
    api: LeaseApi,
    me: String,
    timing: Timing,
    leader: watch::Sender<bool>,
    /// Incremented each time "leader" is published (`Leadership::term`).
    term: Arc<AtomicU64>,
    observed: Option<Observed>,
    /// The Lease as last written by this replica while it holds it.
    held: Option<Lease>,
    /// The last failure logged at WARN (repeats go to DEBUG).
    last_error: Option<String>,
    last_holder: Option<String>,
}

pub(super) fn wall_now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

impl Elector {
    pub fn new(
        api: LeaseApi,
        me: String,
        timing: Timing,
        leader: watch::Sender<bool>,
        term: Arc<AtomicU64>,
    ) -> Self {
        Self {
            api,
            me,
            timing,
            leader,
            term,
            observed: None,
            held: None,
            last_error: None,
            last_holder: None,
        }
    }

    /// Runs until `quit` turns true; then gives the Lease up if held.
    pub async fn run(mut self, mut quit: watch::Receiver<bool>) {
        let lease = self.api.path();
        info!(lease = %lease, identity = %self.me, retry_ms = self.timing.retry_period.as_millis() as u64, "Leader election started; standby until this replica holds the lease.");
        loop {
            if *quit.borrow() {
                return;
            }
            // ---- candidate ----
            let attempt = tokio::select! {
                _ = quit.changed() => return,
                a = self.try_acquire() => a,
            };
            let (takeover, sent) = match attempt {
                Ok(Attempt::Acquired { takeover, sent }) => {
                    self.recovered();
                    (takeover, sent)
                }
                Ok(Attempt::HeldBy(holder)) => {
                    self.recovered();
                    if self.last_holder.as_ref() != Some(&holder) {
                        if holder == self.me {
                            info!(lease = %lease, holder = %holder, "Standby: the lease names this replica from an earlier run; waiting for it to expire.");
                        } else {
                            info!(lease = %lease, holder = %holder, "Standby: the lease is held by another replica.");
                        }
                        self.last_holder = Some(holder);
                    }
                    self.pause(&mut quit).await;
                    continue;
                }
                Ok(Attempt::Lost) => {
                    self.pause(&mut quit).await;
                    continue;
                }
                Err(e) => {
                    self.failed("Cannot read or take the lease", &e);
                    self.pause(&mut quit).await;
                    continue;
                }
            };
            // ---- leader ----
            self.last_holder = None;
            let fence = record::fence(
                takeover,
                self.timing.lease_duration,
                self.timing.renew_deadline,
                self.timing.request_timeout,
            );
            let mut valid_until = sent + self.timing.renew_deadline;
            let publish_at = Instant::now() + fence;
            if fence.is_zero() {
                self.publish();
                info!(lease = %lease, identity = %self.me, takeover = ?takeover, "Leadership acquired: this replica runs the passes.");
            } else {
                info!(lease = %lease, identity = %self.me, takeover = ?takeover, wait_secs = fence.as_secs_f64(),
                    "Lease acquired from a holder that stopped renewing; waiting until every vendor call it may have had in flight has timed out.");
            }
            let mut next_try = Instant::now() + self.timing.retry_period;
            let reason = loop {
                let published = *self.leader.borrow();
                tokio::select! {
                    _ = quit.changed() => {
                        self.release().await;
                        return;
                    }
                    _ = sleep_until(valid_until.into()) => {
                        break format!(
                            "no renewal succeeded within renew_deadline ({} s)",
                            self.timing.renew_deadline.as_secs()
                        );
                    }
                    _ = sleep_until(publish_at.into()), if !published => {
                        self.publish();
                        info!(lease = %lease, identity = %self.me, "Leadership acquired: this replica runs the passes.");
                    }
                    renewed = async {
                        sleep_until(next_try.into()).await;
                        let sent = Instant::now();
                        (sent, self.renew().await)
                    } => {
                        let (sent, result) = renewed;
                        next_try = sent + self.timing.retry_period;
                        match result {
                            Ok(true) => {
                                self.recovered();
                                valid_until = sent + self.timing.renew_deadline;
                            }
                            Ok(false) => break "another replica holds the lease".to_string(),
                            Err(e) => self.failed("Cannot renew the lease", &e),
                        }
                    }
                }
            };
            // Flip first: the pass stops starting vendor calls at once.
            let was = self.leader.send_replace(false);
            self.held = None;
            if was {
                error!(lease = %lease, identity = %self.me, reason = %reason, "Leadership lost: stopped starting vendor calls; standby now.");
            } else {
                warn!(lease = %lease, identity = %self.me, reason = %reason, "Lost the lease before acting as leader; standby now.");
            }
            self.pause(&mut quit).await;
        }
    }

    /// "Leader now", in a new term.
    fn publish(&self) {
        self.term.fetch_add(1, Ordering::SeqCst);
        self.leader.send_replace(true);
    }

    async fn pause(&self, quit: &mut watch::Receiver<bool>) {
        tokio::select! {
            _ = quit.changed() => {}
            _ = tokio::time::sleep(self.timing.retry_period) => {}
        }
    }

    fn failed(&mut self, what: &str, e: &LeaseError) {
        let text = e.to_string();
        if self.last_error.as_ref() != Some(&text) {
            warn!(lease = %self.api.path(), error = %text, "{what}.");
            self.last_error = Some(text);
        } else {
            debug!(lease = %self.api.path(), error = %text, "{what}.");
        }
    }

    fn recovered(&mut self) {
        if self.last_error.take().is_some() {
            info!(lease = %self.api.path(), "The Kubernetes API server answers again.");
        }
    }

    fn note(&mut self, spec: &LeaseSpec) {
        self.observed = Some(record::observe(self.observed.take(), spec, Instant::now()));
    }

    async fn try_acquire(&mut self) -> Result<Attempt, LeaseError> {
        let Some(current) = self.api.get().await? else {
            let sent = Instant::now();
            let spec = record::created(&self.me, wall_now(), self.timing.lease_duration);
            return match self.api.create(spec).await {
                Ok(lease) => {
                    self.take(lease);
                    Ok(Attempt::Acquired {
                        takeover: Takeover::FromNobody,
                        sent,
                    })
                }
                Err(LeaseError::Conflict(_)) => Ok(Attempt::Lost),
                Err(e) => Err(e),
            };
        };
        self.note(&current.spec.clone().unwrap_or_default());
        let Some(observed) = &self.observed else {
            return Ok(Attempt::Lost);
        };
        match record::decide(
            &self.me,
            false,
            observed,
            Instant::now(),
            wall_now(),
            self.timing.lease_duration,
        ) {
            Decision::HeldBy(holder) => Ok(Attempt::HeldBy(holder)),
            Decision::Write { spec, takeover } => {
                let sent = Instant::now();
                match self.api.replace(&current, spec).await {
                    Ok(lease) => {
                        self.take(lease);
                        Ok(Attempt::Acquired { takeover, sent })
                    }
                    Err(LeaseError::Conflict(_) | LeaseError::NotFound(_)) => Ok(Attempt::Lost),
                    Err(e) => Err(e),
                }
            }
        }
    }

    fn take(&mut self, lease: Lease) {
        self.note(&lease.spec.clone().unwrap_or_default());
        self.held = Some(lease);
    }

    /// One renewal: `Ok(false)` when the Lease is no longer this replica's.
    async fn renew(&mut self) -> Result<bool, LeaseError> {
        let Some(held) = self.held.clone() else {
            return Ok(false);
        };
        let spec = held.spec.clone().unwrap_or_default();
        let renewed = LeaseSpec {
            renew_time: Some(wall_now()),
            ..spec
        };
        let conflict = match self.api.replace(&held, renewed).await {
            Ok(lease) => {
                self.take(lease);
                return Ok(true);
            }
            Err(LeaseError::Conflict(m)) => m,
            Err(LeaseError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        // Someone else wrote it: read it and go on only if it still names this replica.
        debug!(lease = %self.api.path(), conflict = %conflict, "Lease changed under the leader; reading it again.");
        let Some(current) = self.api.get().await? else {
            return Ok(false);
        };
        let spec = current.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.me.as_str()) {
            self.note(&spec);
            return Ok(false);
        }
        let renewed = LeaseSpec {
            renew_time: Some(wall_now()),
            lease_duration_seconds: held.spec.as_ref().and_then(|s| s.lease_duration_seconds),
            ..spec
        };
        match self.api.replace(&current, renewed).await {
            Ok(lease) => {
                self.take(lease);
                Ok(true)
            }
            Err(LeaseError::Conflict(_) | LeaseError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up (no holder), so a standby takes over on its next try. Only
    /// called once this replica has stopped making vendor calls.
    async fn release(&mut self) {
        self.leader.send_replace(false);
        let Some(held) = self.held.take() else {
            return;
        };
        let spec = record::released(&held.spec.clone().unwrap_or_default(), wall_now());
        let result = match self.api.replace(&held, spec.clone()).await {
            Err(LeaseError::Conflict(_)) => match self.api.get().await {
                Ok(Some(current))
                    if current
                        .spec
                        .as_ref()
                        .and_then(|s| s.holder_identity.as_deref())
                        == Some(self.me.as_str()) =>
                {
                    self.api.replace(&current, spec).await.map(|_| ())
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            },
            other => other.map(|_| ()),
        };
        match result {
            Ok(()) => {
                info!(lease = %self.api.path(), identity = %self.me, "Lease released: a standby can take over at once.")
            }
            Err(e) => {
                warn!(lease = %self.api.path(), error = %e, "Could not release the lease; a standby takes over when it expires.")
            }
        }
    }
}
