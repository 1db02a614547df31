//! High availability on Kubernetes (issue 17): of the replicas sharing a
//! `coordination.k8s.io/v1` Lease, only the one holding it runs passes.
//!
//! The daemon's whole interface is [`Leadership`]:
//! - [`Leadership::watch`]: "am I leader now" as a `watch::Receiver<bool>`;
//! - [`Leadership::stop_on_loss`]: a pass-scoped [`Shutdown`] that fires on shutdown *or*
//!   when leadership is lost, handed to the pass in place of the daemon's shutdown, so
//!   the executor's existing rule (no new vendor call, no retry, once it fires; in-flight
//!   calls finish and are recorded) also covers losing the Lease;
//! - [`Leadership::release`]: on SIGTERM, after the last vendor call, give the Lease up
//!   so a standby takes over at once.
//!
//! Without an `[ha]` table, [`Leadership::always`] leads from the start and never stops.
//!
//! Files: `config` (the `[ha]` table), `record` (PURE: the election rules on a Lease
//! spec), `lease` (the Lease on the Kubernetes API, resourceVersion-guarded: the only
//! `kube` user), `elector` (the loop and its timing).

mod config;
mod elector;
mod lease;
pub mod record;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::shutdown::{self, Shutdown};

pub use config::HaSettings;
pub use elector::Timing;

/// Whether this replica leads, and the election behind it (if any).
#[derive(Clone)]
pub struct Leadership {
    leader: watch::Receiver<bool>,
    /// How many times this replica has become leader (see [`Leadership::term`]).
    term: Arc<AtomicU64>,
    /// `None` without an election.
    election: Option<Arc<Election>>,
}

struct Election {
    quit: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Kept so the channel never closes while `Leadership` lives.
    _leader: watch::Sender<bool>,
}

impl Leadership {
    /// No election: this process always leads (today's behaviour without `[ha]`).
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(true);
        // The sender must outlive every receiver, or `changed()` would end at once.
        std::mem::forget(tx);
        Self {
            leader: rx,
            term: Arc::new(AtomicU64::new(1)),
            election: None,
        }
    }

    /// Starts the election on the Lease of `settings`, with the standard Kubernetes
    /// client config. `request_timeout` is the vendor calls' timeout (see `record::fence`).
    ///
    /// # Errors
    /// No usable Kubernetes client config.
    pub async fn start(settings: &HaSettings, request_timeout: Duration) -> Result<Self, String> {
        let timing = Timing::new(
            settings.lease_duration,
            settings.renew_deadline,
            request_timeout,
        );
        // A Lease call may take at most a retry period (at least 1 s), so a hung API
        // server costs the leader a try, not its deadline.
        let call_timeout = timing.retry_period.max(Duration::from_secs(1));
        let client = lease::client(call_timeout).await?;
        let api = lease::LeaseApi::new(client, settings.namespace.as_deref(), &settings.lease);
        let (leader_tx, leader) = watch::channel(false);
        let (quit, quit_rx) = watch::channel(false);
        let term = Arc::new(AtomicU64::new(0));
        let elector = elector::Elector::new(
            api,
            settings.identity.clone(),
            timing,
            leader_tx.clone(),
            Arc::clone(&term),
        );
        let task = tokio::spawn(elector.run(quit_rx));
        Ok(Self {
            leader,
            term,
            election: Some(Arc::new(Election {
                quit,
                task: Mutex::new(Some(task)),
                _leader: leader_tx,
            })),
        })
    }

    /// Whether leader election is on (`[ha]` configured).
    pub fn elected(&self) -> bool {
        self.election.is_some()
    }

    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Counts the times this replica became leader (1 from the start without an
    /// election). A new term means another replica may have led meanwhile, so this one's
    /// store may be stale: the daemon starts each term with a full pass.
    pub fn term(&self) -> u64 {
        self.term.load(Ordering::SeqCst)
    }

    /// "Am I leader now", as a channel.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }

    /// A stop signal for one pass: fires when `shutdown` does or leadership is lost
    /// (at once if either already happened). Drop it when the pass ends.
    pub fn stop_on_loss(&self, shutdown: &Shutdown) -> PassStop {
        if self.election.is_none() {
            return PassStop {
                signal: shutdown.clone(),
                task: None,
            };
        }
        let (trigger, signal) = shutdown::channel();
        if shutdown.is_triggered() || !self.is_leader() {
            trigger.trigger();
            return PassStop { signal, task: None };
        }
        let mut global = shutdown.clone();
        let mut leader = self.leader.clone();
        let task = tokio::spawn(async move {
            tokio::select! {
                _ = global.wait() => {}
                _ = leader.wait_for(|l| !*l) => {}
            }
            trigger.trigger();
            // The daemon's grace period ran out: the pass drops what is in flight.
            global.abandoned().await;
            trigger.abandon();
        });
        PassStop {
            signal,
            task: Some(task),
        }
    }

    /// Stops the election; if this replica holds the Lease, gives it up (at most
    /// `limit`). Call only after the last vendor call has ended.
    pub async fn release(&self, limit: Duration) {
        let Some(election) = &self.election else {
            return;
        };
        election.quit.send_replace(true);
        let task = election
            .task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(mut task) = task
            && tokio::time::timeout(limit, &mut task).await.is_err()
        {
            task.abort();
            tracing::warn!(
                "Releasing the lease took too long; a standby takes over when it expires."
            );
        }
    }
}

impl Leadership {
    /// Stops the election *without* giving the Lease up: for an exit while vendor calls
    /// may still be in flight (the grace period ran out). The standby then waits for the
    /// Lease to expire and for those calls to time out (`record::fence`).
    pub fn abandon(&self) {
        let Some(election) = &self.election else {
            return;
        };
        if let Some(task) = election
            .task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

/// A pass's stop signal (see [`Leadership::stop_on_loss`]).
pub struct PassStop {
    signal: Shutdown,
    task: Option<JoinHandle<()>>,
}

impl PassStop {
    pub fn signal(&self) -> &Shutdown {
        &self.signal
    }
}

impl Drop for PassStop {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

#[cfg(test)]
use elector::wall_now as elector_wall_now;
