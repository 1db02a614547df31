//! Start and end dates: where a person stands at one vendor at a given moment, and when
//! that next changes. PURE: "now" is always passed in; nothing here reads the clock.
//!
//! The rules (one vendor, one moment `now`):
//!
//! | stage     | when                                                 | what the plan does                        |
//! |-----------|------------------------------------------------------|-------------------------------------------|
//! | not yet   | `now < start − provision_days_before_start`          | nothing: no account is created, an existing one is left exactly as it is |
//! | joined    | from then on, while `now < end + end_grace_days`     | the usual rules (`active`, scope, mapping) |
//! | ended     | `now ≥ end + end_grace_days`                          | deactivated as if `active = false` (reason `ended`) |
//! | conflict  | the end is before the start                          | skipped with a message; nothing changes     |
//!
//! A date-only value is the start of that day in `lifecycle.time_zone`; day arithmetic
//! on it is in calendar days of that zone (so across a DST change a "day" is 23 or 25
//! hours), and a day whose midnight does not exist there starts at its first valid
//! moment. A date-time carries its own offset; its days are 24 hours. `active = false`
//! wins over every date rule.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use crate::model::{Person, When};

/// How one vendor applies people's dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRules {
    /// The zone date-only values are read in.
    pub time_zone: Tz,
    /// Accounts are created this many days before `start_date`.
    pub provision_days_before_start: u32,
    /// Accounts are deactivated this many days after `end_date`.
    pub end_grace_days: u32,
}

impl Default for DateRules {
    fn default() -> Self {
        Self {
            time_zone: Tz::UTC,
            provision_days_before_start: 0,
            end_grace_days: 0,
        }
    }
}

/// Where a person stands by their dates at one vendor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// No date rule applies: no dates, or `active = false` (which wins).
    Undated,
    /// Not yet joined: nothing is done for the person until `from`.
    NotYet { from: DateTime<Utc> },
    /// Joined; deactivated from `until`, if there is an end date.
    Joined { until: Option<DateTime<Utc>> },
    /// Past the end date (and grace) since `since`.
    Ended { since: DateTime<Utc> },
    /// The end is before the start: the dates are wrong, the person is left alone.
    Conflict(String),
}

impl DateRules {
    /// The moment `w` stands for: a date is the start of that day in the time zone.
    pub fn moment(&self, w: When) -> DateTime<Utc> {
        match w {
            When::At(t) => t,
            When::Day(d) => day_start(self.time_zone, d),
        }
    }

    /// From when the person is provisioned: `start − provision_days_before_start`.
    pub fn provision_from(&self, start: When) -> DateTime<Utc> {
        let n = self.provision_days_before_start;
        match start {
            When::At(t) => t
                .checked_sub_signed(TimeDelta::days(i64::from(n)))
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            When::Day(d) => day_start(
                self.time_zone,
                d.checked_sub_days(Days::new(u64::from(n)))
                    .unwrap_or(NaiveDate::MIN),
            ),
        }
    }

    /// From when the person is deactivated: `end + end_grace_days`.
    pub fn ends_at(&self, end: When) -> DateTime<Utc> {
        let n = self.end_grace_days;
        match end {
            When::At(t) => t
                .checked_add_signed(TimeDelta::days(i64::from(n)))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            When::Day(d) => day_start(
                self.time_zone,
                d.checked_add_days(Days::new(u64::from(n)))
                    .unwrap_or(NaiveDate::MAX),
            ),
        }
    }

    /// Whether `a` is before `b`: two dates (or two instants) compare as they are,
    /// without the time zone; a date and an instant compare as moments.
    fn before(&self, a: When, b: When) -> bool {
        match (a, b) {
            (When::Day(a), When::Day(b)) => a < b,
            (When::At(a), When::At(b)) => a < b,
            _ => self.moment(a) < self.moment(b),
        }
    }

    /// Where `p` stands at `now`.
    pub fn stage(&self, p: &Person, now: DateTime<Utc>) -> Stage {
        if !p.active || (p.start_date.is_none() && p.end_date.is_none()) {
            return Stage::Undated;
        }
        if let (Some(start), Some(end)) = (p.start_date, p.end_date) {
            if self.before(end, start) {
                return Stage::Conflict(format!(
                    "end_date {end} is before start_date {start}: the person would never be \
                     active; fix the dates in the source (nothing is changed until then)"
                ));
            }
            // The same day for both (or an instant no later): an empty window is a
            // mistake in the source, said as one, not a person silently never created.
            if self.ends_at(end) <= self.provision_from(start) {
                return Stage::Conflict(format!(
                    "end_date {end} is not after start_date {start} (with the lead and \
                     grace days): the person would never be active; fix the dates in the \
                     source (nothing is changed until then)"
                ));
            }
        }
        let until = p.end_date.map(|e| self.ends_at(e));
        if let Some(since) = until
            && now >= since
        {
            return Stage::Ended { since };
        }
        if let Some(from) = p.start_date.map(|s| self.provision_from(s))
            && now < from
        {
            return Stage::NotYet { from };
        }
        Stage::Joined { until }
    }

    /// The next moment strictly after `now` at which `p`'s stage changes, if any.
    ///
    /// This is what makes a plan stale by the clock alone: a plan computed at `now` holds
    /// until the earliest such moment over everyone (see `next_due_of`).
    pub fn next_due(&self, p: &Person, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.stage(p, now) {
            Stage::Undated | Stage::Conflict(_) | Stage::Ended { .. } => None,
            Stage::NotYet { from } => Some(from),
            Stage::Joined { until } => until,
        }
    }

    /// The earliest [`DateRules::next_due`] over `people`.
    pub fn next_due_of<'a>(
        &self,
        people: impl IntoIterator<Item = &'a Person>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        people
            .into_iter()
            .filter(|p| p.start_date.is_some() || p.end_date.is_some())
            .filter_map(|p| self.next_due(p, now))
            .min()
    }
}

/// The first moment of day `d` in `tz`: midnight, or, where midnight does not exist (a
/// DST change at 00:00, e.g. America/Santiago; Pacific/Apia skipped a whole day), the
/// first local time that does; where midnight happens twice, the first.
fn day_start(tz: Tz, d: NaiveDate) -> DateTime<Utc> {
    let midnight = d.and_time(NaiveTime::MIN);
    if tz == Tz::UTC {
        // The default zone, and a million people a pass: no zone lookup.
        return midnight.and_utc();
    }
    let mut local = midnight;
    // Every gap in the zone database is shorter than two days.
    for _ in 0..(2 * 24 * 4) {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return t.with_timezone(&Utc),
            LocalResult::None => match local.checked_add_signed(TimeDelta::minutes(15)) {
                Some(next) => local = next,
                None => break,
            },
        }
    }
    midnight.and_utc()
}

#[cfg(test)]
mod tests;
