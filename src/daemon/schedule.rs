//! When the daemon's next pass is due: the next cron tick, or, when it comes first, the
//! moment a start or end date changes what a vendor should hold (`Report::next_due` of
//! the last pass).
//!
//! Pure: the clock is passed in (cron reads no clock here), so it is testable without
//! waiting. Missed ticks are skipped, not replayed: the next tick is always computed
//! from the moment the previous pass ended.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The next tick strictly after `now`, and how long until it.
pub fn next_after(
    schedule: &cron::Schedule,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, Duration)> {
    let next = schedule.after(&now).next()?;
    Some((next, (next - now).to_std().unwrap_or(Duration::ZERO)))
}

/// How many upcoming gaps `longest_gap` looks at: enough to cover a week of a daily or
/// weekday schedule.
const GAPS_LOOKED_AT: usize = 64;

/// The longest gap between two consecutive ticks among the next few after `now`: how
/// long a healthy daemon may go without a pass (a weekday schedule's weekend, not its
/// weekday gap). `None` for a schedule with fewer than two future ticks.
pub fn longest_gap(schedule: &cron::Schedule, now: DateTime<Utc>) -> Option<Duration> {
    let ticks: Vec<DateTime<Utc>> = schedule.after(&now).take(GAPS_LOOKED_AT + 1).collect();
    ticks
        .windows(2)
        .filter_map(|w| match w {
            [a, b] => (*b - *a).to_std().ok(),
            _ => None,
        })
        .max()
}

/// How long after a due moment the daemon starts its pass, so that the pass, reading
/// the clock again, sees the moment as past (timers and the wall clock drift apart by
/// milliseconds).
pub const DUE_MARGIN: Duration = Duration::from_secs(1);

/// The daemon's next wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wake {
    pub at: DateTime<Utc>,
    pub wait: Duration,
    /// A full pass (drift repair).
    pub full: bool,
    /// Woken for a date rule's due moment rather than a cron tick.
    pub due: bool,
}

/// The earlier of the next cron tick (`tick`: when, and whether it is a full pass) and
/// `due` plus [`DUE_MARGIN`]; a due moment already past wakes at once. A tick at or
/// before the due wake-up serves both.
pub fn next_wake(
    tick: Option<(DateTime<Utc>, bool)>,
    due: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<Wake> {
    let margin = chrono::TimeDelta::from_std(DUE_MARGIN).unwrap_or_default();
    let due = due.map(|d| d.checked_add_signed(margin).unwrap_or(d).max(now));
    let wait = |at: DateTime<Utc>| (at - now).to_std().unwrap_or(Duration::ZERO);
    match (tick, due) {
        (Some((at, full)), Some(d)) if at <= d => Some(Wake {
            at,
            wait: wait(at),
            full,
            due: false,
        }),
        (_, Some(d)) => Some(Wake {
            at: d,
            wait: wait(d),
            full: false,
            due: true,
        }),
        (Some((at, full)), None) => Some(Wake {
            at,
            wait: wait(at),
            full,
            due: false,
        }),
        (None, None) => None,
    }
}

/// The daemon's two schedules: ordinary passes and (optionally) full passes.
pub struct Schedules {
    pub regular: cron::Schedule,
    pub full: Option<cron::Schedule>,
    /// A random delay of up to this many seconds before each scheduled pass.
    pub jitter_secs: u64,
}

impl Schedules {
    /// The next tick after `now` and whether it is a full pass (a tick of both is one
    /// full pass).
    pub fn next(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, Duration, bool)> {
        let regular = next_after(&self.regular, now);
        let full = self.full.as_ref().and_then(|f| next_after(f, now));
        match (regular, full) {
            (Some((r, _)), Some((f, fw))) if f <= r => Some((f, fw, true)),
            (Some((r, rw)), _) => Some((r, rw, false)),
            (None, Some((f, fw))) => Some((f, fw, true)),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::str::FromStr;

    #[test]
    fn a_due_moment_before_the_tick_wakes_the_daemon_a_second_after_it() {
        let t = |h, m, s| {
            Utc.with_ymd_and_hms(2026, 11, 22, h, m, s)
                .single()
                .expect("date")
        };
        let now = t(10, 0, 0);
        let tick = Some((t(10, 15, 0), false));
        let w = next_wake(tick, Some(t(10, 5, 0)), now).expect("wake");
        assert_eq!(
            (w.at, w.wait, w.full, w.due),
            (t(10, 5, 1), Duration::from_secs(301), false, true)
        );
        // The tick comes first (or at the same time): one scheduled pass serves both.
        let w = next_wake(tick, Some(t(10, 15, 0)), now).expect("wake");
        assert_eq!((w.at, w.due), (t(10, 15, 0), false));
        let w = next_wake(Some((t(10, 15, 0), true)), Some(t(11, 0, 0)), now).expect("wake");
        assert_eq!((w.at, w.full, w.due), (t(10, 15, 0), true, false));
        // Already past (the daemon was down): at once.
        let w = next_wake(tick, Some(t(9, 0, 0)), now).expect("wake");
        assert_eq!((w.at, w.wait, w.due), (now, Duration::ZERO, true));
        // No schedule left: the due moment alone; nothing at all: no wake-up.
        let w = next_wake(None, Some(t(12, 0, 0)), now).expect("wake");
        assert_eq!((w.at, w.due), (t(12, 0, 1), true));
        assert_eq!(next_wake(None, None, now), None);
        assert_eq!(next_wake(tick, None, now).map(|w| w.at), Some(t(10, 15, 0)));
    }

    #[test]
    fn next_tick_is_strictly_after_now() {
        let s = cron::Schedule::from_str("0 */15 * * * *").expect("cron");
        let now = Utc
            .with_ymd_and_hms(2026, 11, 22, 10, 7, 30)
            .single()
            .expect("date");
        let (at, wait) = next_after(&s, now).expect("next");
        assert_eq!(
            at,
            Utc.with_ymd_and_hms(2026, 11, 22, 10, 15, 0)
                .single()
                .expect("date")
        );
        assert_eq!(wait, Duration::from_secs(450));
        // Exactly on a tick: the next one, not this one.
        let (at2, _) = next_after(&s, at).expect("next");
        assert_eq!(
            at2,
            Utc.with_ymd_and_hms(2026, 11, 22, 10, 30, 0)
                .single()
                .expect("date")
        );
    }

    #[test]
    fn a_long_pass_skips_missed_ticks() {
        let s = cron::Schedule::from_str("*/10 * * * * *").expect("cron");
        // A pass started at :00 and ended at :35: the ticks at :10, :20, :30 are gone.
        let ended = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 35)
            .single()
            .expect("date");
        let (at, _) = next_after(&s, ended).expect("next");
        assert_eq!(
            at,
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 40)
                .single()
                .expect("date")
        );
    }

    #[test]
    fn a_schedule_in_the_past_has_no_next() {
        let s = cron::Schedule::from_str("0 0 0 1 1 * 2020").expect("cron");
        assert!(next_after(&s, Utc::now()).is_none());
    }

    #[test]
    fn the_longest_gap_covers_irregular_schedules() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 25, 10, 0, 0)
            .single()
            .expect("date");
        let every_15 = cron::Schedule::from_str("0 */15 * * * *").expect("cron");
        assert_eq!(longest_gap(&every_15, now), Some(Duration::from_secs(900)));
        // Weekdays at 09:00: Friday to Monday is the longest wait.
        let weekdays = cron::Schedule::from_str("0 0 9 * * Mon-Fri").expect("cron");
        assert_eq!(
            longest_gap(&weekdays, now),
            Some(Duration::from_secs(3 * 86_400))
        );
        let once = cron::Schedule::from_str("0 0 0 1 1 * 2030").expect("cron");
        assert_eq!(longest_gap(&once, now), None);
    }

    #[test]
    fn the_earlier_tick_wins_and_a_shared_tick_is_one_full_pass() {
        let s = Schedules {
            regular: cron::Schedule::from_str("0 */15 * * * *").expect("cron"),
            full: Some(cron::Schedule::from_str("0 0 3 * * *").expect("cron")),
            jitter_secs: 0,
        };
        let at = |h, m| {
            Utc.with_ymd_and_hms(2026, 11, 22, h, m, 0)
                .single()
                .expect("date")
        };
        let (next, _, full) = s.next(at(2, 50)).expect("next");
        assert_eq!(
            (next, full),
            (at(3, 0), true),
            "03:00 is both: one full pass"
        );
        let (next, _, full) = s.next(at(3, 0)).expect("next");
        assert_eq!((next, full), (at(3, 15), false));
        let only_full = Schedules {
            regular: cron::Schedule::from_str("0 0 0 1 1 * 2020").expect("cron"),
            full: s.full.clone(),
            jitter_secs: 0,
        };
        assert!(only_full.next(at(1, 0)).expect("next").2);
    }
}
