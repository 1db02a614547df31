//! Shutdown signalling: one trigger, many listeners.
//!
//! Owns: `Shutdown` (a cloneable receiver) and `Trigger`. Work checks
//! `is_triggered()` before starting anything new and lets what is in flight finish.

use tokio::sync::watch;

#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

#[derive(Debug)]
pub struct Trigger {
    tx: watch::Sender<bool>,
}

/// A linked trigger and listener.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger { tx }, Shutdown { rx })
}

impl Trigger {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
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
        let (tx, rx) = watch::channel(false);
        // Keep the sender alive forever so `wait` pends instead of returning.
        std::mem::forget(tx);
        Self { rx }
    }

    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes once shutdown is triggered.
    pub async fn wait(&mut self) {
        while !*self.rx.borrow_and_update() {
            if self.rx.changed().await.is_err() {
                // The trigger is gone without firing; treat as "never".
                std::future::pending::<()>().await;
            }
        }
    }
}
