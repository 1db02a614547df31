//! Even spacing of calls at the controller's rate (GCRA, with a burst only at the
//! configured ceiling) and the achieved rate.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::{ACHIEVED_WINDOW, State, Window};

/// GCRA's tolerance: how far ahead of its theoretical time a call may go (the burst).
pub(super) fn tolerance(rate: f64, burst: u32) -> Duration {
    Duration::from_secs_f64(f64::from(burst.saturating_sub(1)) / rate)
}

/// Takes a slot for an admitted call: the route window's remaining count, the
/// spacing's next theoretical arrival time (GCRA), the achieved-rate record.
pub(super) fn reserve(st: &mut State, key: &str, now: Instant, ceiling: Option<(f64, u32)>) {
    if let Some(rs) = st.routes.get_mut(key) {
        if let Window::Limited { remaining, .. } = &mut rs.window {
            *remaining = remaining.saturating_sub(1);
        }
        rs.in_flight += 1;
    }
    if let Some(rate) = st.controller.rate() {
        let burst = match ceiling {
            Some((c, b)) if rate >= c => b,
            _ => 1,
        };
        let interval = Duration::from_secs_f64(1.0 / rate);
        let base = st.tat.filter(|t| *t > now).unwrap_or(now);
        // After an idle spell, the bucket holds at most `burst` calls.
        let earliest = now.checked_sub(tolerance(rate, burst)).unwrap_or(now);
        st.tat = Some(base.max(earliest) + interval);
    }
    st.admitted.push_back(now);
    while st
        .admitted
        .front()
        .is_some_and(|t| now.duration_since(*t) > ACHIEVED_WINDOW)
    {
        st.admitted.pop_front();
    }
}

/// Calls admitted per second over the last `ACHIEVED_WINDOW`.
pub(super) fn achieved(admitted: &mut VecDeque<Instant>, now: Instant) -> f64 {
    while admitted
        .front()
        .is_some_and(|t| now.duration_since(*t) > ACHIEVED_WINDOW)
    {
        admitted.pop_front();
    }
    admitted.len() as f64 / ACHIEVED_WINDOW.as_secs_f64()
}
