//! SIGTERM and SIGINT during a one-shot pass (`reconcile`, `plan`): the first stops
//! the pass from starting vendor calls and lets those in flight finish; when
//! `shutdown_grace_secs` runs out, or at a second signal, what is still in flight is
//! abandoned. The pass then ends with its partial report, which is printed, and the
//! command exits 128 + the signal's number (130 for SIGINT, 143 for SIGTERM), as shells
//! report a process stopped by a signal.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tracing::warn;

use crate::shutdown::{self, Shutdown};

pub(super) struct Interrupts {
    pub shutdown: Shutdown,
    /// The first signal's number, once one came.
    got: Arc<OnceLock<i32>>,
    task: tokio::task::JoinHandle<()>,
}

impl Interrupts {
    /// Listens for SIGTERM and SIGINT from now until dropped.
    ///
    /// # Errors
    /// When the handlers cannot be installed.
    pub fn install(grace: Duration) -> std::io::Result<Self> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (trigger, shutdown) = shutdown::channel();
        let got = Arc::new(OnceLock::new());
        let first = Arc::clone(&got);
        let task = tokio::spawn(async move {
            let (number, name) = tokio::select! {
                _ = term.recv() => (15, "SIGTERM"),
                _ = int.recv() => (2, "SIGINT"),
            };
            let _ = first.set(number);
            warn!(
                signal = name,
                grace_secs = grace.as_secs(),
                "Stopping: no new vendor calls; calls in flight may finish within the grace \
                 period (a second signal abandons them now)."
            );
            trigger.trigger();
            tokio::select! {
                () = tokio::time::sleep(grace) => {}
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            warn!("Abandoning the calls still in flight; the next pass looks them up.");
            trigger.abandon();
        });
        Ok(Self {
            shutdown,
            got,
            task,
        })
    }

    /// 128 + the signal's number, when one came.
    pub fn exit_code(&self) -> Option<i32> {
        self.got.get().map(|n| 128 + n)
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        self.task.abort();
    }
}
