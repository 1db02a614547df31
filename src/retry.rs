//! Retrying vendor calls. The only module that uses the `backoff` crate (flagged
//! unmaintained upstream, RUSTSEC-2025-0012), so that swapping it touches one file.
//!
//! Policy: retry transport errors, timeouts, 5xx and 429 with exponential backoff,
//! honouring `Retry-After`; never retry anything else. Every operation has its own time
//! limit and all of a pass's operations share one deadline, so a vendor that keeps
//! failing cannot hold a pass open.

use std::future::Future;
use std::time::Duration;

use backoff::ExponentialBackoff;
use tokio::time::Instant;

use crate::config::RetrySettings;
use crate::shutdown::Shutdown;
use crate::vendor::VendorError;

#[derive(Debug, Clone)]
pub struct Retry {
    settings: RetrySettings,
    deadline: Instant,
    /// Once this fires (shutdown), failures are no longer retried.
    stop: Option<Shutdown>,
}

impl Retry {
    /// A policy whose pass deadline starts now.
    pub fn for_pass(settings: RetrySettings) -> Self {
        Self {
            settings,
            deadline: Instant::now() + Duration::from_secs(settings.pass_budget_secs),
            stop: None,
        }
    }

    /// Stops retrying once `shutdown` fires; calls already sent still finish.
    pub fn stop_on(mut self, shutdown: Shutdown) -> Self {
        self.stop = Some(shutdown);
        self
    }

    /// Runs `call` until it succeeds, fails permanently, or the time limits run out; the
    /// last error is returned. `on_retry` hears of each retry (for logs and metrics).
    ///
    /// # Errors
    /// The last `VendorError`.
    pub async fn run<T, F, Fut>(
        &self,
        mut call: F,
        on_retry: impl Fn(&VendorError, Duration),
    ) -> Result<T, VendorError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, VendorError>>,
    {
        let started = Instant::now();
        let limit = started + Duration::from_secs(self.settings.max_elapsed_secs);
        let limit = limit.min(self.deadline);
        let max_wait = Duration::from_secs(self.settings.max_interval_secs);
        let policy = ExponentialBackoff {
            initial_interval: Duration::from_millis(self.settings.initial_interval_ms),
            max_interval: max_wait,
            max_elapsed_time: Some(limit.saturating_duration_since(started)),
            ..ExponentialBackoff::default()
        };
        let stop = self.stop.clone();
        let op = || {
            let fut = call();
            let stopping = stop.as_ref().is_some_and(Shutdown::is_triggered);
            async move {
                match fut.await {
                    Ok(v) => Ok(v),
                    Err(e) if !e.is_retryable() || stopping => Err(backoff::Error::permanent(e)),
                    Err(e) => {
                        let hint = match &e {
                            VendorError::RateLimited { retry_after } => *retry_after,
                            _ => None,
                        };
                        match hint {
                            // The backoff crate obeys a hint without checking its own
                            // limits, so the limits are checked here.
                            Some(wait) if wait > max_wait || Instant::now() + wait > limit => {
                                Err(backoff::Error::permanent(e))
                            }
                            Some(wait) => Err(backoff::Error::retry_after(e, wait)),
                            None if Instant::now() >= limit => Err(backoff::Error::permanent(e)),
                            None => Err(backoff::Error::transient(e)),
                        }
                    }
                }
            }
        };
        backoff::future::retry_notify(policy, op, |e: VendorError, wait| on_retry(&e, wait)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn settings() -> RetrySettings {
        RetrySettings {
            initial_interval_ms: 1,
            max_interval_secs: 2,
            max_elapsed_secs: 5,
            pass_budget_secs: 5,
            request_timeout_secs: 1,
        }
    }

    #[tokio::test]
    async fn retries_server_errors_then_succeeds() {
        let calls = AtomicU32::new(0);
        let retries = AtomicU32::new(0);
        let r = Retry::for_pass(settings())
            .run(
                || async {
                    if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                        Err(VendorError::Server {
                            status: 500,
                            detail: "x".into(),
                        })
                    } else {
                        Ok(7)
                    }
                },
                |_, _| {
                    retries.fetch_add(1, Ordering::SeqCst);
                },
            )
            .await;
        assert_eq!(r.expect("ok"), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(retries.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = Retry::for_pass(settings())
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(VendorError::Rejected {
                        status: 400,
                        detail: "bad".into(),
                    })
                },
                |_, _| {},
            )
            .await;
        assert!(matches!(r, Err(VendorError::Rejected { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn retry_after_is_honoured_but_an_excessive_one_gives_up() {
        let calls = AtomicU32::new(0);
        let started = std::time::Instant::now();
        let r = Retry::for_pass(settings())
            .run(
                || async {
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        Err(VendorError::RateLimited {
                            retry_after: Some(Duration::from_secs(1)),
                        })
                    } else {
                        Ok(())
                    }
                },
                |_, _| {},
            )
            .await;
        assert!(r.is_ok());
        assert!(started.elapsed() >= Duration::from_secs(1));

        let calls = AtomicU32::new(0);
        let r: Result<(), _> = Retry::for_pass(settings())
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(VendorError::RateLimited {
                        retry_after: Some(Duration::from_secs(3600)),
                    })
                },
                |_, _| {},
            )
            .await;
        assert!(matches!(r, Err(VendorError::RateLimited { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
