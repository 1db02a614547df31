//! Retrying calls. The only module that uses the `backoff` crate (flagged unmaintained
//! upstream, RUSTSEC-2025-0012), so that swapping it touches one file.
//!
//! Policy: what a failure says decides (`Retryable`): never again (a refusal), after the
//! exponential backoff (transport errors, timeouts, 5xx, a 429 without a hint), or after
//! the remote's own hint (`Retry-After`). Every operation has its own time limit
//! (`retry.max_elapsed_secs`), every wait comes out of the pass's `Budget` (a wait that
//! would outlast it gives up at once), a hint longer than `retry.max_interval_secs` gives
//! up for this pass, and shutdown ends a backoff wait at once (the next attempt is then
//! refused before anything is sent).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backoff::exponential::ExponentialBackoff;
use backoff::future::Sleeper;
use tokio::time::Instant;

use crate::budget::Budget;
use crate::config::RetrySettings;
use crate::shutdown::Shutdown;

/// What a failure says about trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Trying the same call again cannot help.
    Never,
    /// It may work later: wait the backoff.
    Backoff,
    /// The remote said when: wait this long (a rate limit's pause).
    After(Duration),
}

/// A failure the retry policy can judge.
pub trait Retryable {
    fn verdict(&self) -> Verdict;
    /// Whether this failure counts against `Retry::max_retries` (a rate limit does not:
    /// it is bounded by time only).
    fn counts(&self) -> bool {
        true
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Retry {
    settings: RetrySettings,
    /// At most this many retries after `Backoff` failures that `count` (rate limits are
    /// bounded by time only: a rate limit that lifts is worth waiting for).
    max_retries: Option<u32>,
}

/// backoff's clock on tokio's time, so tests on a paused clock see their own time.
#[derive(Debug, Clone, Copy, Default)]
struct TokioClock;

impl backoff::Clock for TokioClock {
    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }
}

/// backoff's sleeps, ended at once by shutdown.
struct StoppableSleep(Shutdown);

impl Sleeper for StoppableSleep {
    type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

    fn sleep(&self, dur: Duration) -> Self::Sleep {
        let mut stop = self.0.clone();
        Box::pin(async move {
            tokio::select! {
                () = tokio::time::sleep(dur) => {}
                () = stop.wait() => {}
            }
        })
    }
}

impl Retry {
    pub fn new(settings: RetrySettings) -> Self {
        Self {
            settings,
            max_retries: None,
        }
    }

    /// Gives up after `n` retries of failures that are not rate limits.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = Some(n);
        self
    }

    pub fn settings(&self) -> &RetrySettings {
        &self.settings
    }

    /// Runs `call` until it succeeds, fails for good, or the limits run out; the last
    /// error is returned. `on_retry` hears of each retry and its wait.
    ///
    /// # Errors
    /// The last error.
    pub async fn run<T, E, F, Fut>(
        &self,
        budget: &Budget,
        mut call: F,
        on_retry: impl Fn(&E, Duration),
    ) -> Result<T, E>
    where
        E: Retryable,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = Instant::now();
        let limit =
            (started + Duration::from_secs(self.settings.max_elapsed_secs)).min(budget.deadline());
        let max_wait = Duration::from_secs(self.settings.max_interval_secs);
        let mut policy = ExponentialBackoff::<TokioClock> {
            initial_interval: Duration::from_millis(self.settings.initial_interval_ms),
            current_interval: Duration::from_millis(self.settings.initial_interval_ms),
            max_interval: max_wait,
            max_elapsed_time: Some(limit.saturating_duration_since(started)),
            ..ExponentialBackoff::default()
        };
        backoff::backoff::Backoff::reset(&mut policy);
        let retries = AtomicU32::new(0);
        let max_retries = self.max_retries;
        let op = || {
            let fut = call();
            let retries = &retries;
            async move {
                let e = match fut.await {
                    Ok(v) => return Ok(v),
                    Err(e) => e,
                };
                if budget.is_stopped() {
                    return Err(backoff::Error::permanent(e));
                }
                match e.verdict() {
                    Verdict::Never => Err(backoff::Error::permanent(e)),
                    // The backoff crate obeys a hint without checking its own limits,
                    // so they are checked here.
                    Verdict::After(wait) if wait > max_wait || Instant::now() + wait > limit => {
                        Err(backoff::Error::permanent(e))
                    }
                    Verdict::After(wait) => Err(backoff::Error::retry_after(e, wait)),
                    Verdict::Backoff => {
                        let n = if e.counts() {
                            retries.fetch_add(1, Ordering::SeqCst) + 1
                        } else {
                            0
                        };
                        if max_retries.is_some_and(|max| n > max) || Instant::now() >= limit {
                            Err(backoff::Error::permanent(e))
                        } else {
                            Err(backoff::Error::transient(e))
                        }
                    }
                }
            }
        };
        let notify = |e: E, wait: Duration| on_retry(&e, wait);
        backoff::future::Retry::new(
            StoppableSleep(budget.shutdown().clone()),
            policy,
            notify,
            op,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[derive(Debug, PartialEq)]
    enum Fail {
        Server,
        Refused,
        Limited(Duration),
    }

    impl Retryable for Fail {
        fn verdict(&self) -> Verdict {
            match self {
                Self::Server => Verdict::Backoff,
                Self::Refused => Verdict::Never,
                Self::Limited(d) => Verdict::After(*d),
            }
        }
    }

    fn settings() -> RetrySettings {
        RetrySettings {
            initial_interval_ms: 100,
            max_interval_secs: 2,
            max_elapsed_secs: 5,
            pass_budget_secs: 5,
            request_timeout_secs: 1,
        }
    }

    fn budget() -> Budget {
        Budget::new(
            Duration::from_secs(5),
            Duration::from_secs(2),
            Shutdown::never(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn retries_server_errors_then_succeeds() {
        let calls = AtomicU32::new(0);
        let retries = AtomicU32::new(0);
        let r = Retry::new(settings())
            .run(
                &budget(),
                || async {
                    if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                        Err(Fail::Server)
                    } else {
                        Ok(7)
                    }
                },
                |_, _| {
                    retries.fetch_add(1, Ordering::SeqCst);
                },
            )
            .await;
        assert_eq!(r, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(retries.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_are_not_retried_and_the_retry_count_is_kept() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = Retry::new(settings())
            .run(
                &budget(),
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(Fail::Refused)
                },
                |_, _| {},
            )
            .await;
        assert_eq!(r, Err(Fail::Refused));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        let r: Result<(), _> = Retry::new(settings())
            .max_retries(1)
            .run(
                &budget(),
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(Fail::Server)
                },
                |_, _| {},
            )
            .await;
        assert_eq!(r, Err(Fail::Server));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hint_is_honoured_an_excessive_one_gives_up_and_neither_counts_as_a_retry() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let r = Retry::new(settings())
            .max_retries(0)
            .run(
                &budget(),
                || async {
                    if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                        Err(Fail::Limited(Duration::from_secs(1)))
                    } else {
                        Ok(())
                    }
                },
                |_, _| {},
            )
            .await;
        assert_eq!(r, Ok(()));
        assert_eq!(started.elapsed(), Duration::from_secs(2));

        let calls = AtomicU32::new(0);
        let r: Result<(), _> = Retry::new(settings())
            .run(
                &budget(),
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(Fail::Limited(Duration::from_secs(3600)))
                },
                |_, _| {},
            )
            .await;
        assert!(matches!(r, Err(Fail::Limited(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_pass_budget_and_shutdown_end_the_retries() {
        // Hints that fit the operation's limit but not what is left of the pass.
        let short = Budget::new(
            Duration::from_millis(1500),
            Duration::from_secs(2),
            Shutdown::never(),
        );
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let r: Result<(), _> = Retry::new(settings())
            .run(
                &short,
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(Fail::Limited(Duration::from_secs(1)))
                },
                |_, _| {},
            )
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(started.elapsed(), Duration::from_secs(1));

        let (trigger, shutdown) = crate::shutdown::channel();
        let b = Budget::new(Duration::from_secs(60), Duration::from_secs(2), shutdown);
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let policy = Retry::new(settings());
        let retrying = policy.run(
            &b,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(Fail::Limited(Duration::from_secs(2)))
            },
            |_, _| {},
        );
        let fire = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            trigger.trigger();
        };
        let (r, ()) = tokio::join!(retrying, fire);
        assert!(r.is_err());
        assert_eq!(started.elapsed(), Duration::from_millis(300));
        // The attempt after the interrupted wait still ran; the caller's gate refuses it
        // before anything is sent (see `http::Flow::admit`).
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
