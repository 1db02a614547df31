//! Per-vendor pacing: how fast roster may call one vendor.
//!
//! Owns: the `governor` token bucket in front of every vendor call the executor makes,
//! and the adaptive controller that sets its rate. Must not: touch the store (the caller
//! loads and saves what was learned) or retry (that is `retry.rs`).
//!
//! Policy (AIMD): the rate starts at `vendors.NAME.rate_limit` (or at what an earlier pass
//! learned, whichever is lower), or unlimited when neither is known. A rate-limit answer
//! (`VendorError::RateLimited`, i.e. a 429, with its `Retry-After` when given) halves the
//! rate (from the rate actually achieved, when that is lower) and holds every call to the
//! vendor until the `Retry-After` has passed. While a hold longer than `max_hold`
//! (`retry.max_interval_secs`) lasts, calls fail at once without reaching the vendor (the
//! retry policy gives up on such a wait anyway, and they are retried next pass) — e.g.
//! Damoov's one-hour login block must not park the pass. After every `INCREASE_EVERY`
//! successful calls without a 429 the rate grows by a twentieth of the configured limit
//! (or a tenth of the rate that drew the 429, when none is configured): back to the
//! configured limit, or, without one, back to unlimited once twice the rate that drew the
//! 429 is reached.
//! Waits end at once on shutdown.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;
use tracing::{debug, info};

use crate::config::RateLimit;
use crate::shutdown::Shutdown;
use crate::vendor::VendorError;

/// Successful calls between two increases.
pub const INCREASE_EVERY: u32 = 20;
/// The rate never drops below this (calls per second): one call a minute.
pub const MIN_RATE: f64 = 1.0 / 60.0;
/// Longest `Retry-After` that holds every call, unless set otherwise.
pub const DEFAULT_MAX_HOLD: Duration = Duration::from_secs(60);
/// How far back the achieved rate is measured.
const OBSERVE_WINDOW: Duration = Duration::from_secs(10);

/// The adaptive part alone: pure, driven by the caller's clock (tests use tokio's paused
/// clock).
#[derive(Debug, Clone)]
pub struct Controller {
    /// The configured limit in calls per second, if any.
    ceiling: Option<f64>,
    /// The current rate in calls per second; `None` is unlimited.
    rate: Option<f64>,
    /// The rate that drew the last 429 (the increase step without a ceiling).
    limited_at: Option<f64>,
    successes: u32,
    hold_until: Option<Instant>,
    /// While a hold longer than this lasts, calls fail at once instead of waiting (the
    /// retry policy gives up on such a wait anyway).
    max_hold: Duration,
}

impl Controller {
    /// `learned`: what an earlier pass ended with (calls per second).
    pub fn new(configured: Option<f64>, learned: Option<f64>) -> Self {
        let rate = match (configured, learned) {
            (Some(c), Some(l)) => Some(c.min(l)),
            (c, l) => c.or(l),
        };
        Self {
            ceiling: configured,
            rate: rate.map(|r| r.max(MIN_RATE)),
            limited_at: learned.filter(|_| configured.is_none()),
            successes: 0,
            hold_until: None,
            max_hold: DEFAULT_MAX_HOLD,
        }
    }

    /// See `max_hold`; `retry.max_interval_secs` in a pass.
    pub fn with_max_hold(mut self, max_hold: Duration) -> Self {
        self.max_hold = max_hold;
        self
    }

    /// Calls per second allowed now; `None` is unlimited.
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// Until when every call waits (a `Retry-After`).
    pub fn hold_until(&self) -> Option<Instant> {
        self.hold_until
    }

    /// A rate-limit answer: multiplicative decrease. `achieved`: calls per second
    /// actually made lately.
    pub fn on_rate_limited(&mut self, now: Instant, retry_after: Option<Duration>, achieved: f64) {
        let base = match self.rate {
            Some(r) if achieved > 0.0 => r.min(achieved),
            Some(r) => r,
            None if achieved > 0.0 => achieved,
            None => 1.0,
        };
        self.limited_at = Some(base);
        self.rate = Some((base / 2.0).max(MIN_RATE));
        self.successes = 0;
        if let Some(wait) = retry_after {
            let until = now + wait;
            self.hold_until = Some(self.hold_until.map_or(until, |h| h.max(until)));
        }
    }

    /// A call that was not rate limited: additive increase every `INCREASE_EVERY`.
    /// Returns whether the rate changed.
    pub fn on_success(&mut self) -> bool {
        let Some(rate) = self.rate else {
            return false;
        };
        self.successes += 1;
        if self.successes < INCREASE_EVERY {
            return false;
        }
        self.successes = 0;
        let next = match (self.ceiling, self.limited_at) {
            (Some(c), _) => Some((rate + c / 20.0).min(c)),
            (None, Some(l)) if rate + l / 10.0 >= 2.0 * l => None,
            (None, Some(l)) => Some(rate + l / 10.0),
            (None, None) => None,
        };
        let changed = next != self.rate;
        self.rate = next;
        changed
    }

    pub fn release_hold(&mut self, now: Instant) {
        if self.hold_until.is_some_and(|h| h <= now) {
            self.hold_until = None;
        }
    }
}

/// Why a vendor call was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    /// Roster is shutting down.
    Stopped,
    /// The vendor asked for a pause longer than `max_hold`; this much of it is left.
    Held(Duration),
}

struct State {
    controller: Controller,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    /// When recent calls finished, for the achieved rate.
    recent: VecDeque<Instant>,
}

/// One vendor's pacing, shared by all of its in-flight calls.
pub struct Pacer {
    vendor: String,
    state: Mutex<State>,
}

fn limiter(rate: Option<f64>, burst: u32) -> Option<Arc<DefaultDirectRateLimiter>> {
    let rate = rate?;
    let period = Duration::from_secs_f64(1.0 / rate.max(MIN_RATE));
    let quota = Quota::with_period(period)?
        .allow_burst(NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN));
    Some(Arc::new(RateLimiter::direct(quota)))
}

impl Pacer {
    /// `learned`: the rate an earlier pass ended with (from the store).
    pub fn new(vendor: &str, configured: Option<RateLimit>, learned: Option<f64>) -> Self {
        let controller = Controller::new(configured.map(RateLimit::per_second), learned);
        // A configured limit may be used in bursts of its size (a fixed window allows
        // that); a learned one is spread evenly.
        let burst = match (configured, controller.rate()) {
            (Some(c), Some(r)) if (r - c.per_second()).abs() < f64::EPSILON => c.calls,
            _ => 1,
        };
        let limiter = limiter(controller.rate(), burst);
        Self {
            vendor: vendor.to_string(),
            state: Mutex::new(State {
                controller,
                limiter,
                recent: VecDeque::new(),
            }),
        }
    }

    /// A `Retry-After` longer than `max_hold` does not hold calls (see `Controller`).
    pub fn with_max_hold(self, max_hold: Duration) -> Self {
        let mut st = self.state.into_inner().unwrap_or_else(|p| p.into_inner());
        st.controller = st.controller.with_max_hold(max_hold);
        Self {
            vendor: self.vendor,
            state: Mutex::new(st),
        }
    }

    /// No pacing at all.
    pub fn unlimited(vendor: &str) -> Self {
        Self::new(vendor, None, None)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The rate to remember for the next pass (`None`: nothing learned beyond config).
    pub fn learned(&self) -> Option<f64> {
        self.lock().controller.rate()
    }

    /// Waits for this vendor's next call slot, or until shutdown.
    ///
    /// # Errors
    /// `Stopped` when shutdown fires first; `Held` when the vendor's requested pause is
    /// longer than `max_hold`.
    pub async fn ready(&self, shutdown: &Shutdown) -> Result<(), NotReady> {
        loop {
            if shutdown.is_triggered() {
                return Err(NotReady::Stopped);
            }
            let wait = {
                let mut st = self.lock();
                let now = Instant::now();
                st.controller.release_hold(now);
                match st.controller.hold_until() {
                    Some(until) if until - now > st.controller.max_hold => {
                        return Err(NotReady::Held(until - now));
                    }
                    Some(until) => Some(until - now),
                    None => match &st.limiter {
                        None => None,
                        Some(l) => match l.check() {
                            Ok(()) => None,
                            Err(not_until) => {
                                Some(not_until.wait_time_from(DefaultClock::default().now()))
                            }
                        },
                    },
                }
            };
            let Some(wait) = wait else {
                return Ok(());
            };
            let mut stop = shutdown.clone();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.wait() => return Err(NotReady::Stopped),
            }
        }
    }

    /// Learns from a finished call.
    pub fn observe<T>(&self, result: &Result<T, VendorError>) {
        let mut st = self.lock();
        let now = Instant::now();
        st.recent.push_back(now);
        while st
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > OBSERVE_WINDOW)
        {
            st.recent.pop_front();
        }
        let changed = match result {
            Err(VendorError::RateLimited { retry_after }) => {
                let span = st
                    .recent
                    .front()
                    .map_or(Duration::ZERO, |t| now.duration_since(*t));
                let achieved = if span >= Duration::from_secs(1) {
                    st.recent.len() as f64 / span.as_secs_f64()
                } else {
                    0.0
                };
                st.controller.on_rate_limited(now, *retry_after, achieved);
                info!(
                    vendor = %self.vendor,
                    rate_per_sec = st.controller.rate().unwrap_or(0.0),
                    "Rate limited by the vendor; slowing down."
                );
                true
            }
            _ => st.controller.on_success(),
        };
        if changed {
            let rate = st.controller.rate();
            debug!(vendor = %self.vendor, rate_per_sec = ?rate, "Pacing rate changed.");
            st.limiter = limiter(rate, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_the_lower_of_configured_and_learned() {
        assert_eq!(Controller::new(Some(10.0), Some(4.0)).rate(), Some(4.0));
        assert_eq!(Controller::new(Some(10.0), None).rate(), Some(10.0));
        assert_eq!(Controller::new(None, Some(4.0)).rate(), Some(4.0));
        assert_eq!(Controller::new(None, None).rate(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_halves_and_holds_then_success_climbs_back_to_the_limit() {
        let mut c = Controller::new(Some(10.0), None);
        let now = Instant::now();
        c.on_rate_limited(now, Some(Duration::from_secs(3)), 0.0);
        assert_eq!(c.rate(), Some(5.0));
        assert_eq!(c.hold_until(), Some(now + Duration::from_secs(3)));
        // A second 429 halves again (from what was achieved, when lower).
        c.on_rate_limited(now, None, 2.0);
        assert_eq!(c.rate(), Some(1.0));
        tokio::time::advance(Duration::from_secs(3)).await;
        c.release_hold(Instant::now());
        assert_eq!(c.hold_until(), None);
        // Careful increase: +limit/20 per INCREASE_EVERY successes, capped at the limit.
        for _ in 0..INCREASE_EVERY - 1 {
            assert!(!c.on_success());
        }
        assert!(c.on_success());
        assert_eq!(c.rate(), Some(1.5));
        for _ in 0..INCREASE_EVERY * 100 {
            c.on_success();
        }
        assert_eq!(c.rate(), Some(10.0));
    }

    #[test]
    fn without_a_configured_limit_it_returns_to_unlimited() {
        let mut c = Controller::new(None, None);
        c.on_rate_limited(Instant::now(), None, 8.0);
        assert_eq!(c.rate(), Some(4.0));
        let mut steps = 0;
        while c.rate().is_some() {
            c.on_success();
            steps += 1;
            assert!(steps < 10_000, "never speeds up");
        }
        // 4 → 16 (twice the rate that drew the 429) in steps of 0.8.
        assert_eq!(steps, INCREASE_EVERY as usize * 15);
        assert!(Controller::new(None, None).rate().is_none());
    }

    #[test]
    fn an_excessive_retry_after_slows_down_and_is_remembered() {
        let mut c = Controller::new(Some(10.0), None).with_max_hold(Duration::from_secs(10));
        let now = Instant::now();
        c.on_rate_limited(now, Some(Duration::from_secs(3600)), 0.0);
        assert_eq!(c.rate(), Some(5.0));
        assert_eq!(c.hold_until(), Some(now + Duration::from_secs(3600)));
    }

    #[test]
    fn never_below_the_floor() {
        let mut c = Controller::new(Some(0.001), None);
        c.on_rate_limited(Instant::now(), None, 0.0);
        assert_eq!(c.rate(), Some(MIN_RATE));
    }

    #[tokio::test(start_paused = true)]
    async fn pacer_holds_calls_after_a_429_and_shutdown_ends_the_wait() {
        let pacer = Pacer::unlimited("v").with_max_hold(Duration::from_secs(60));
        let never = Shutdown::never();
        assert_eq!(pacer.ready(&never).await, Ok(()));
        pacer.observe::<()>(&Err(VendorError::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        }));
        let started = Instant::now();
        assert_eq!(pacer.ready(&never).await, Ok(()));
        assert!(started.elapsed() >= Duration::from_secs(30));

        // A pause longer than max_hold is not waited for: the call fails at once.
        pacer.observe::<()>(&Err(VendorError::RateLimited {
            retry_after: Some(Duration::from_secs(3600)),
        }));
        let held = Instant::now();
        assert!(
            matches!(pacer.ready(&never).await, Err(NotReady::Held(left)) if left > Duration::from_secs(60))
        );
        assert!(held.elapsed() < Duration::from_secs(1));

        // A shorter one is waited for, and shutdown ends the wait.
        let fresh = Pacer::unlimited("w");
        fresh.observe::<()>(&Err(VendorError::RateLimited {
            retry_after: Some(Duration::from_secs(50)),
        }));
        let started = Instant::now();
        let (trigger, shutdown) = crate::shutdown::channel();
        let waiting = fresh.ready(&shutdown);
        let fire = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            trigger.trigger();
        };
        let (result, ()) = tokio::join!(waiting, fire);
        assert_eq!(result, Err(NotReady::Stopped));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
