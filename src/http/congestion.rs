//! The congestion controller: the rate (calls per second) roster allows itself at one
//! vendor, from what the vendor's answers say. PURE: time is passed in (tests drive it
//! with tokio's paused clock).
//!
//! The rules (README, "Performance and pacing", says the same):
//!
//! 1. **Start** at the configured limit (`rate_limit`), or unlimited when none is set.
//!    What an earlier pass learned is a *hint that expires*: the start is the hint
//!    doubled for every `HINT_DOUBLING` of its age, and a hint that has grown back to the
//!    configured limit (without one: to four times itself, i.e. after two doublings) is
//!    dropped. A pass whose rate ends back at the start leaves no hint at all.
//! 2. **A pause is not a rate signal.** A 429 that says when to come back (`Retry-After`,
//!    or a rate-limit reset) holds calls until then (`flow.rs`) and leaves the rate alone:
//!    the vendor asked for a pause, it did not say the rate was too high.
//! 3. **A 429 that says nothing is congestion**: the rate is halved — at most once per
//!    congestion event. A 429 to a call *sent before* the last decrease answers a call of
//!    the round that decrease already dealt with, so 16 concurrent calls refused together
//!    make one decrease, not 16. Without a rate yet (unlimited), the base is the rate
//!    achieved over the last second. Never below the floor: the configured `min_rate`,
//!    else `DEFAULT_FLOOR` (one call a second), and never above the configured limit.
//! 4. **Quick recovery.** Once calls succeed again, the rate doubles every
//!    `RECOVERY_STEP` (slow start) up to the configured limit; without a configured
//!    limit, the limit is lifted altogether once twice the rate before the first decrease
//!    of the episode is reached. A burst of 429s is therefore forgotten within seconds.

use std::time::Duration;

use tokio::time::Instant;

/// The lowest rate congestion can push a vendor to without a configured `min_rate`.
pub const DEFAULT_FLOOR: f64 = 1.0;
/// How often the rate may double while recovering.
pub const RECOVERY_STEP: Duration = Duration::from_millis(250);
/// A learned hint doubles for every this much of its age.
pub const HINT_DOUBLING: Duration = Duration::from_secs(30);

/// A rate an earlier pass ended with, and how long ago.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hint {
    pub rate: f64,
    pub age: Duration,
}

#[derive(Debug, Clone)]
pub struct Controller {
    /// The configured limit (calls per second).
    ceiling: Option<f64>,
    floor: f64,
    /// The current rate; `None` is unlimited.
    rate: Option<f64>,
    /// What a pass starts at (the ceiling, or unlimited): ending there leaves no hint.
    normal: Option<f64>,
    /// The rate before the first decrease of the current congestion episode.
    last_good: Option<f64>,
    last_decrease: Option<Instant>,
    /// When the rate last changed, to space the recovery doublings.
    last_change: Option<Instant>,
}

impl Controller {
    /// `ceiling`: the configured limit; `floor`: the configured minimum, if any.
    pub fn new(ceiling: Option<f64>, floor: Option<f64>, hint: Option<Hint>) -> Self {
        let ceiling = ceiling.filter(|c| c.is_finite() && *c > 0.0);
        let mut floor = floor
            .filter(|f| f.is_finite() && *f > 0.0)
            .unwrap_or(DEFAULT_FLOOR);
        if let Some(c) = ceiling {
            floor = floor.min(c);
        }
        let mut c = Self {
            ceiling,
            floor,
            rate: ceiling,
            normal: ceiling,
            last_good: None,
            last_decrease: None,
            last_change: None,
        };
        if let Some(start) = hint.and_then(|h| c.start_from(h)) {
            c.rate = Some(start);
            c.last_good = Some(c.ceiling.unwrap_or(start * 2.0));
        }
        c
    }

    /// Rule 1: the hint's rate after its age's doublings, or `None` when it expired.
    fn start_from(&self, hint: Hint) -> Option<f64> {
        if !(hint.rate.is_finite() && hint.rate > 0.0) {
            return None;
        }
        let doublings = hint.age.as_secs_f64() / HINT_DOUBLING.as_secs_f64();
        let grown = hint.rate * 2f64.powf(doublings.min(64.0));
        let expired = match self.ceiling {
            Some(c) => grown >= c,
            None => doublings >= 2.0,
        };
        (!expired).then(|| grown.max(self.floor))
    }

    /// Calls per second allowed now; `None` is unlimited.
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    pub fn floor(&self) -> f64 {
        self.floor
    }

    /// What to remember for the next pass: the rate, when it is below normal.
    pub fn hint(&self) -> Option<f64> {
        match (self.rate, self.normal) {
            (Some(r), Some(n)) if r < n => Some(r),
            (Some(r), None) => Some(r),
            _ => None,
        }
    }

    /// Rule 3: a 429 without a wait hint, to a call sent at `sent_at`. `achieved`: calls
    /// per second made over the last second. Returns whether the rate was lowered.
    pub fn on_congestion(&mut self, sent_at: Instant, now: Instant, achieved: f64) -> bool {
        if self.last_decrease.is_some_and(|d| sent_at < d) {
            return false;
        }
        let base = match self.rate {
            Some(r) => r,
            None => achieved.max(self.floor),
        };
        if self.last_good.is_none() {
            self.last_good = Some(base);
        }
        let next = (base / 2.0).max(self.floor);
        self.last_decrease = Some(now);
        self.last_change = Some(now);
        let lowered = self.rate.is_none_or(|r| next < r);
        self.rate = Some(next);
        lowered
    }

    /// Rule 4: a call that was not refused. Returns whether the rate rose.
    pub fn on_success(&mut self, now: Instant) -> bool {
        let Some(rate) = self.rate else {
            return false;
        };
        if self
            .last_change
            .is_some_and(|t| now.duration_since(t) < RECOVERY_STEP)
        {
            return false;
        }
        let doubled = rate * 2.0;
        let next = match self.ceiling {
            Some(c) => Some(doubled.min(c)),
            None if doubled >= 2.0 * self.last_good.unwrap_or(rate) => None,
            None => Some(doubled),
        };
        if next == self.rate {
            return false;
        }
        self.rate = next;
        self.last_change = Some(now);
        if next.is_none_or(|n| self.last_good.is_some_and(|g| n >= g)) {
            self.last_good = None;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[tokio::test(start_paused = true)]
    async fn sixteen_calls_refused_in_one_burst_make_one_decrease() {
        let mut c = Controller::new(Some(20.0), None, None);
        let sent = Instant::now();
        tokio::time::advance(secs(0.05)).await;
        let decreases = (0..16)
            .filter(|_| c.on_congestion(sent, Instant::now(), 16.0))
            .count();
        assert_eq!(decreases, 1);
        assert_eq!(c.rate(), Some(10.0));
        // A call sent after that decrease that is refused too is a new event.
        let later = Instant::now();
        tokio::time::advance(secs(0.05)).await;
        assert!(c.on_congestion(later, Instant::now(), 10.0));
        assert_eq!(c.rate(), Some(5.0));
    }

    /// Drives the controller as a vendor would: calls at the allowed rate, each answered
    /// 50 ms later; every answer is a bare 429 while the storm lasts.
    #[tokio::test(start_paused = true)]
    async fn a_storm_is_forgotten_within_seconds_of_its_end() {
        let mut c = Controller::new(Some(40.0), None, None);
        let start = Instant::now();
        let storm_end = start + secs(8.0);
        let mut in_flight: Vec<Instant> = Vec::new();
        let mut back_at = None;
        let mut lowest = f64::MAX;
        while Instant::now() < start + secs(20.0) {
            let now = Instant::now();
            let answered: Vec<Instant> = in_flight
                .iter()
                .copied()
                .filter(|s| now.duration_since(*s) >= secs(0.05))
                .collect();
            in_flight.retain(|s| now.duration_since(*s) < secs(0.05));
            for sent in answered {
                if now < storm_end {
                    c.on_congestion(sent, now, 40.0);
                } else {
                    c.on_success(now);
                }
            }
            lowest = lowest.min(c.rate().unwrap_or(f64::MAX));
            if now >= storm_end && back_at.is_none() && c.rate() == Some(40.0) {
                back_at = Some(now);
            }
            in_flight.push(now);
            let gap = 1.0 / c.rate().unwrap_or(1000.0);
            tokio::time::advance(secs(gap)).await;
        }
        assert_eq!(lowest, DEFAULT_FLOOR, "the storm pushed it to the floor");
        let back = back_at.expect("recovered").duration_since(storm_end);
        assert!(
            back <= secs(3.0),
            "back to 40/s only {back:?} after the storm"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_holds_and_a_configured_minimum_wins() {
        let mut c = Controller::new(Some(50.0), None, None);
        for _ in 0..20 {
            let now = Instant::now();
            c.on_congestion(now, now, 50.0);
            tokio::time::advance(secs(0.01)).await;
        }
        assert_eq!(c.rate(), Some(DEFAULT_FLOOR));
        let mut c = Controller::new(Some(50.0), Some(5.0), None);
        for _ in 0..20 {
            let now = Instant::now();
            c.on_congestion(now, now, 50.0);
            tokio::time::advance(secs(0.01)).await;
        }
        assert_eq!(c.rate(), Some(5.0));
        // A configured limit below the default floor is its own floor.
        let c = Controller::new(Some(0.1), None, None);
        assert_eq!(c.floor(), 0.1);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_limit_the_base_is_what_was_achieved_and_the_limit_is_lifted_again() {
        let mut c = Controller::new(None, None, None);
        assert_eq!(c.rate(), None);
        let now = Instant::now();
        assert!(c.on_congestion(now, now, 30.0));
        assert_eq!(c.rate(), Some(15.0));
        let mut steps = 0;
        while c.rate().is_some() {
            tokio::time::advance(RECOVERY_STEP).await;
            c.on_success(Instant::now());
            steps += 1;
            assert!(steps < 10, "never lifted");
        }
        // 15 → 30 → (60 ≥ 2 × 30: unlimited).
        assert_eq!(steps, 2);
        assert_eq!(c.hint(), None);
    }

    #[test]
    fn a_hint_is_used_while_fresh_and_expires() {
        let fresh = Hint {
            rate: 2.0,
            age: Duration::ZERO,
        };
        assert_eq!(
            Controller::new(Some(10.0), None, Some(fresh)).rate(),
            Some(2.0)
        );
        let half_minute = Hint {
            rate: 2.0,
            age: HINT_DOUBLING,
        };
        assert_eq!(
            Controller::new(Some(10.0), None, Some(half_minute)).rate(),
            Some(4.0)
        );
        let old = Hint {
            rate: 2.0,
            age: Duration::from_secs(3600),
        };
        assert_eq!(
            Controller::new(Some(10.0), None, Some(old)).rate(),
            Some(10.0)
        );
        assert_eq!(Controller::new(None, None, Some(old)).rate(), None);
        // Never below the floor, even fresh.
        let tiny = Hint {
            rate: 0.01,
            age: Duration::ZERO,
        };
        assert_eq!(
            Controller::new(Some(10.0), None, Some(tiny)).rate(),
            Some(DEFAULT_FLOOR)
        );
        // At the configured limit there is nothing to remember.
        assert_eq!(Controller::new(Some(10.0), None, None).hint(), None);
    }
}
