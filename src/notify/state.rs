//! PURE: the de-duplication state machine of one target. The clock is passed in.
//!
//! Per condition:
//!
//! | held (alerted before)? | this pass sees it | alert                          |
//! | ---------------------- | ----------------- | ------------------------------ |
//! | no                     | active            | raised                         |
//! | yes                    | active            | raised again (a reminder) once `repeat_after` has passed since the last one, else nothing |
//! | yes                    | clear             | recovered                      |
//! | no                     | clear             | nothing                        |
//! | either                 | not observed      | nothing; the state is kept     |
//!
//! `due` only decides; `record` moves the state once the alert was delivered (or was
//! not wanted), so an alert that could not be delivered is decided again next pass.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::config::EventName;
use super::event::{Condition, Seen};

/// What one target has been told: every condition alerted and not yet recovered. Kept
/// in the store between passes (and processes): condition names, vendor names and
/// times only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    /// By `Condition::key`.
    #[serde(default)]
    pub held: BTreeMap<String, Held>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    pub condition: Condition,
    /// When the condition was first alerted.
    pub since: DateTime<Utc>,
    /// When it was last alerted (first time or reminder).
    pub last_sent: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub condition: Condition,
    pub change: Change,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The condition holds. `repeat`: a reminder of one alerted at `since`.
    Raised { repeat: bool, since: DateTime<Utc> },
    /// The condition, alerted at `since`, has ended.
    Recovered { since: DateTime<Utc> },
}

impl Alert {
    /// The event name a target subscribes to.
    pub fn event(&self) -> EventName {
        match self.change {
            Change::Raised { .. } => self.condition.problem.event(),
            Change::Recovered { .. } => EventName::Recovered,
        }
    }
}

/// The alerts this pass's observations call for: recoveries first, then raised
/// conditions, each in condition order.
pub fn due(
    state: &AlertState,
    observed: &[(Condition, Seen)],
    now: DateTime<Utc>,
    repeat_after: Duration,
) -> Vec<Alert> {
    let repeat_after = chrono::Duration::from_std(repeat_after).unwrap_or(chrono::Duration::MAX);
    let mut recovered = Vec::new();
    let mut raised = Vec::new();
    for (condition, seen) in observed {
        let held = state.held.get(&condition.key());
        match (held, seen) {
            (None, Seen::Active) => raised.push(Alert {
                condition: condition.clone(),
                change: Change::Raised {
                    repeat: false,
                    since: now,
                },
            }),
            // A clock set back is not a reason to repeat.
            (Some(h), Seen::Active) if now - h.last_sent >= repeat_after => raised.push(Alert {
                condition: condition.clone(),
                change: Change::Raised {
                    repeat: true,
                    since: h.since,
                },
            }),
            (Some(h), Seen::Clear) => recovered.push(Alert {
                condition: condition.clone(),
                change: Change::Recovered { since: h.since },
            }),
            (Some(_), Seen::Active) | (None, Seen::Clear) => {}
        }
    }
    recovered.sort_by(|a, b| a.condition.cmp(&b.condition));
    raised.sort_by(|a, b| a.condition.cmp(&b.condition));
    recovered.extend(raised);
    recovered
}

/// Moves the state past `alert`, once it was delivered (or was not wanted).
pub fn record(state: &mut AlertState, alert: &Alert, now: DateTime<Utc>) {
    let key = alert.condition.key();
    match alert.change {
        Change::Raised { since, .. } => {
            state.held.insert(
                key,
                Held {
                    condition: alert.condition.clone(),
                    since,
                    last_sent: now,
                },
            );
        }
        Change::Recovered { .. } => {
            state.held.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::event::Problem;
    use chrono::TimeZone;

    const DAY: Duration = Duration::from_secs(86_400);

    fn t(hours: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
            .single()
            .expect("date")
            + chrono::Duration::hours(hours)
    }

    /// Runs one pass: what is due, all of it delivered.
    fn pass(
        state: &mut AlertState,
        observed: &[(Condition, Seen)],
        now: DateTime<Utc>,
    ) -> Vec<Alert> {
        let alerts = due(state, observed, now, DAY);
        for a in &alerts {
            record(state, a, now);
        }
        alerts
    }

    #[test]
    fn once_then_after_repeat_after_then_once_on_recovery() {
        let refused = Condition::pass_refused();
        let active = [(refused.clone(), Seen::Active)];
        let mut s = AlertState::default();
        let first = pass(&mut s, &active, t(0));
        assert_eq!(
            first,
            vec![Alert {
                condition: refused.clone(),
                change: Change::Raised {
                    repeat: false,
                    since: t(0)
                }
            }]
        );
        // Every hour for almost a day: quiet.
        for h in 1..24 {
            assert!(pass(&mut s, &active, t(h)).is_empty(), "hour {h}");
        }
        // 24 h after the first alert: one reminder, still dated from the start.
        let again = pass(&mut s, &active, t(24));
        assert_eq!(
            again[0].change,
            Change::Raised {
                repeat: true,
                since: t(0)
            }
        );
        assert!(pass(&mut s, &active, t(30)).is_empty());
        // The reminder restarted the clock.
        assert_eq!(pass(&mut s, &active, t(48)).len(), 1);
        let clear = [(refused.clone(), Seen::Clear)];
        let back = pass(&mut s, &clear, t(50));
        assert_eq!(back[0].change, Change::Recovered { since: t(0) });
        assert_eq!(back[0].event(), EventName::Recovered);
        assert!(pass(&mut s, &clear, t(51)).is_empty(), "recovery said once");
        assert!(s.held.is_empty());
        // It can come back, as a new first alert.
        let new = pass(&mut s, &active, t(52));
        assert_eq!(
            new[0].change,
            Change::Raised {
                repeat: false,
                since: t(52)
            }
        );
    }

    #[test]
    fn an_unobserved_condition_keeps_its_state_and_sends_nothing() {
        let creds = Condition::at(Problem::CredentialsRejected, "motive");
        let mut s = AlertState::default();
        pass(&mut s, &[(creds.clone(), Seen::Active)], t(0));
        // Refused passes (vendors not called) for two days: no reminder, no recovery.
        let only_refusal = [(Condition::pass_refused(), Seen::Active)];
        let alerts = pass(&mut s, &only_refusal, t(48));
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].condition, Condition::pass_refused());
        assert!(s.held.contains_key("credentials_rejected/motive"));
        // Seen again, past repeat_after: a reminder.
        let alerts = pass(&mut s, &[(creds.clone(), Seen::Active)], t(49));
        assert_eq!(
            alerts[0].change,
            Change::Raised {
                repeat: true,
                since: t(0)
            }
        );
    }

    #[test]
    fn several_conditions_at_once_each_on_its_own_clock() {
        let refused = Condition::pass_refused();
        let failing_m = Condition::at(Problem::OperationsFailed, "motive");
        let failing_r = Condition::at(Problem::OperationsFailed, "rocketchat");
        let creds_d = Condition::at(Problem::CredentialsRejected, "drivekit");
        let mut s = AlertState::default();
        let a = pass(
            &mut s,
            &[
                (failing_r.clone(), Seen::Active),
                (failing_m.clone(), Seen::Active),
                (refused.clone(), Seen::Clear),
            ],
            t(0),
        );
        let keys: Vec<String> = a.iter().map(|a| a.condition.key()).collect();
        assert_eq!(
            keys,
            ["operations_failed/motive", "operations_failed/rocketchat"]
        );
        // Motive recovers while DriveKit's credentials break: recovery first.
        let a = pass(
            &mut s,
            &[
                (failing_m.clone(), Seen::Clear),
                (failing_r.clone(), Seen::Active),
                (creds_d.clone(), Seen::Active),
            ],
            t(12),
        );
        let got: Vec<(String, EventName)> =
            a.iter().map(|a| (a.condition.key(), a.event())).collect();
        assert_eq!(
            got,
            [
                ("operations_failed/motive".to_string(), EventName::Recovered),
                (
                    "credentials_rejected/drivekit".to_string(),
                    EventName::CredentialsRejected
                ),
            ]
        );
        // At 24 h only Rocket.Chat's (alerted at 0) is due again; DriveKit's at 36 h.
        let a = pass(
            &mut s,
            &[
                (failing_r.clone(), Seen::Active),
                (creds_d.clone(), Seen::Active),
            ],
            t(24),
        );
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].condition, failing_r);
        let a = pass(
            &mut s,
            &[
                (failing_r.clone(), Seen::Active),
                (creds_d.clone(), Seen::Active),
            ],
            t(36),
        );
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].condition, creds_d);
    }

    #[test]
    fn an_undelivered_alert_is_decided_again() {
        let refused = [(Condition::pass_refused(), Seen::Active)];
        let s = AlertState::default();
        // Delivered nowhere, so not recorded.
        assert_eq!(due(&s, &refused, t(0), DAY).len(), 1);
        let again = due(&s, &refused, t(1), DAY);
        assert_eq!(
            again[0].change,
            Change::Raised {
                repeat: false,
                since: t(1)
            }
        );
    }

    #[test]
    fn a_clock_set_back_sends_no_reminder() {
        let refused = [(Condition::pass_refused(), Seen::Active)];
        let mut s = AlertState::default();
        pass(&mut s, &refused, t(10));
        assert!(pass(&mut s, &refused, t(-100)).is_empty());
    }

    #[test]
    fn the_state_round_trips_as_json_without_surprises() {
        let mut s = AlertState::default();
        pass(
            &mut s,
            &[(
                Condition::at(Problem::CredentialsRejected, "motive"),
                Seen::Active,
            )],
            t(0),
        );
        let json = serde_json::to_string(&s).expect("json");
        assert_eq!(
            json,
            "{\"held\":{\"credentials_rejected/motive\":{\"condition\":{\"problem\":\
             \"credentials_rejected\",\"vendor\":\"motive\"},\"since\":\"2026-11-01T00:00:00Z\",\
             \"last_sent\":\"2026-11-01T00:00:00Z\"}}}"
        );
        let back: AlertState = serde_json::from_str(&json).expect("back");
        assert_eq!(back, s);
    }
}
