//! Stopping a pass at its first failed store write (a full disk, a broken store).
//!
//! The record is what keeps the next pass from doing a call twice or losing an account,
//! so once one cannot be written no further vendor call starts — at any vendor: the
//! pass's own shutdown fires, which ends every wait, retry and new operation the way
//! SIGTERM does, and in-flight calls finish. The report then says, per person, exactly
//! what reached the vendor (`push::Failure`).

use std::sync::OnceLock;

use tracing::error;

use crate::shutdown::{self, Shutdown, Trigger};

pub struct Halt {
    trigger: Trigger,
    why: OnceLock<String>,
    /// Forwards the caller's shutdown to the pass's; ended with the pass.
    forward: tokio::task::JoinHandle<()>,
}

impl Halt {
    /// A halt for one pass, and the shutdown the pass's budget should use: fired by
    /// `outer` (SIGTERM, the daemon stopping) or by [`Halt::stop`].
    pub fn new(outer: &Shutdown) -> (Self, Shutdown) {
        let (trigger, inner) = shutdown::channel();
        let forward = {
            let mut outer = outer.clone();
            let to = trigger.sender();
            tokio::spawn(async move {
                outer.wait().await;
                to.trigger();
                outer.abandoned().await;
                to.abandon();
            })
        };
        (
            Self {
                trigger,
                why: OnceLock::new(),
                forward,
            },
            inner,
        )
    }

    /// Stops the pass: no vendor call starts after this.
    pub fn stop(&self, why: String) {
        if self.why.set(why.clone()).is_ok() {
            error!(error = %why, "A store write failed; the pass stops: no further vendor call starts.");
        }
        self.trigger.trigger();
    }

    /// Why the pass stopped, if it did.
    pub fn why(&self) -> Option<&str> {
        self.why.get().map(String::as_str)
    }
}

impl Drop for Halt {
    fn drop(&mut self) {
        self.forward.abort();
    }
}
