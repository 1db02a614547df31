//! Shutdown signalling: one trigger, many listeners, two steps.
//!
//! Owns: `Shutdown` (a cloneable receiver) and `Trigger`. First `trigger()`: work checks
//! `is_triggered()` before starting anything new and lets what is in flight finish. Then,
//! if that takes longer than the grace period allows, `abandon()`: what is still in
//! flight is dropped where it stands (the create protocol makes that safe: an
//! interrupted create left an intent that the next pass resolves by lookup).

use tokio::sync::watch;

/// Running; stopping (nothing new starts); abandoning (in-flight work is dropped).
const RUNNING: u8 = 0;
const STOPPING: u8 = 1;
const ABANDONING: u8 = 2;

#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<u8>,
}

#[derive(Debug)]
pub struct Trigger {
    tx: watch::Sender<u8>,
}

/// A linked trigger and listener.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(RUNNING);
    (Trigger { tx }, Shutdown { rx })
}

impl Trigger {
    /// Nothing new starts; in-flight work finishes.
    pub fn trigger(&self) {
        self.tx.send_if_modified(|s| {
            let changed = *s < STOPPING;
            *s = (*s).max(STOPPING);
            changed
        });
    }

    /// In-flight work is dropped too (implies `trigger`).
    pub fn abandon(&self) {
        self.tx.send_replace(ABANDONING);
    }

    /// Another handle firing the same shutdown.
    pub fn sender(&self) -> Trigger {
        Trigger {
            tx: self.tx.clone(),
        }
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

impl Shutdown {
    /// A listener that never fires (one-shot commands).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(RUNNING);
        // Keep the sender alive forever so `wait` pends instead of returning.
        std::mem::forget(tx);
        Self { rx }
    }

    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow() >= STOPPING
    }

    pub fn is_abandoned(&self) -> bool {
        *self.rx.borrow() >= ABANDONING
    }

    /// Completes once shutdown is triggered.
    pub async fn wait(&mut self) {
        self.reach(STOPPING).await;
    }

    /// Completes once in-flight work is to be abandoned.
    pub async fn abandoned(&mut self) {
        self.reach(ABANDONING).await;
    }

    async fn reach(&mut self, level: u8) {
        while *self.rx.borrow_and_update() < level {
            if self.rx.changed().await.is_err() {
                // The trigger is gone without firing; treat as "never".
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stopping_comes_before_abandoning_and_abandoning_implies_it() {
        let (trigger, shutdown) = channel();
        assert!(!shutdown.is_triggered());
        trigger.trigger();
        assert!(shutdown.is_triggered() && !shutdown.is_abandoned());
        shutdown.clone().wait().await;
        let waiting = tokio::spawn({
            let mut s = shutdown.clone();
            async move { s.abandoned().await }
        });
        trigger.trigger();
        assert!(!waiting.is_finished());
        trigger.sender().abandon();
        waiting.await.expect("abandoned");
        trigger.trigger();
        assert!(shutdown.is_abandoned(), "never goes back");

        let (trigger, shutdown) = channel();
        trigger.abandon();
        assert!(shutdown.is_triggered());
    }
}
