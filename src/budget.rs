//! What a pass may spend waiting: one deadline and the shutdown signal, shared by every
//! wait of the pass — pacing, holds, rate-limit windows, login limits and retry backoff.
//!
//! Owns: `Budget` and `Stop`. A wait that would end after the deadline fails at once
//! (sleeping until the deadline only to give up then would waste the rest of the pass),
//! and every wait ends the moment shutdown fires.

use std::time::Duration;

use tokio::time::Instant;

use crate::shutdown::Shutdown;

/// Why a wait did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stop {
    #[error("roster is shutting down")]
    Shutdown,
    /// Waiting would outlast the pass budget (`retry.pass_budget_secs`).
    #[error("the pass budget (retry.pass_budget_secs = {}) runs out first", .0.as_secs())]
    OutOfTime(Duration),
}

#[derive(Debug, Clone)]
pub struct Budget {
    deadline: Instant,
    total: Duration,
    /// The longest single pause worth waiting for (`retry.max_interval_secs`): a vendor
    /// that asks for more is not waited for in this pass.
    max_hold: Duration,
    shutdown: Shutdown,
}

impl Budget {
    /// A budget of `total` from now.
    pub fn new(total: Duration, max_hold: Duration, shutdown: Shutdown) -> Self {
        Self {
            deadline: Instant::now() + total,
            total,
            max_hold,
            shutdown,
        }
    }

    /// No practical deadline and no shutdown: one-off calls (tests, `check`).
    pub fn unlimited() -> Self {
        Self::new(
            Duration::from_secs(86_400 * 365),
            Duration::from_secs(86_400),
            Shutdown::never(),
        )
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn max_hold(&self) -> Duration {
        self.max_hold
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    pub fn is_stopped(&self) -> bool {
        self.shutdown.is_triggered()
    }

    /// Time left before the deadline.
    pub fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Whether work may still start.
    ///
    /// # Errors
    /// `Shutdown` once shutdown fired, `OutOfTime` once the deadline passed.
    pub fn check(&self) -> Result<(), Stop> {
        if self.is_stopped() {
            Err(Stop::Shutdown)
        } else if Instant::now() >= self.deadline {
            Err(Stop::OutOfTime(self.total))
        } else {
            Ok(())
        }
    }

    /// Whether a wait of `wait` from now fits.
    ///
    /// # Errors
    /// As `check`, or `OutOfTime` when the wait would end after the deadline.
    pub fn fits(&self, wait: Duration) -> Result<(), Stop> {
        self.check()?;
        if Instant::now() + wait > self.deadline {
            return Err(Stop::OutOfTime(self.total));
        }
        Ok(())
    }

    /// Sleeps `wait`, unless it does not fit or shutdown fires first.
    ///
    /// # Errors
    /// `Shutdown` (at once when shutdown fires during the wait) or `OutOfTime`.
    pub async fn wait(&self, wait: Duration) -> Result<(), Stop> {
        self.fits(wait)?;
        if wait.is_zero() {
            return Ok(());
        }
        let mut stop = self.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(wait) => Ok(()),
            () = stop.wait() => Err(Stop::Shutdown),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_deadline_fails_at_once_and_shutdown_ends_a_wait() {
        let b = Budget::new(
            Duration::from_secs(10),
            Duration::from_secs(5),
            Shutdown::never(),
        );
        let started = Instant::now();
        assert_eq!(
            b.wait(Duration::from_secs(11)).await,
            Err(Stop::OutOfTime(Duration::from_secs(10)))
        );
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(b.wait(Duration::from_secs(4)).await, Ok(()));
        assert_eq!(started.elapsed(), Duration::from_secs(4));

        let (trigger, shutdown) = crate::shutdown::channel();
        let b = Budget::new(Duration::from_secs(100), Duration::from_secs(60), shutdown);
        let started = Instant::now();
        let fire = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            trigger.trigger();
        };
        let (waited, ()) = tokio::join!(b.wait(Duration::from_secs(50)), fire);
        assert_eq!(waited, Err(Stop::Shutdown));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert_eq!(b.check(), Err(Stop::Shutdown));
    }
}
