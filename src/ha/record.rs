//! PURE: the election rules on a Lease's spec, after client-go's `leaderelection`.
//!
//! Expiry is judged the way client-go judges it: by how long *this* replica has seen the
//! record stay unchanged, on its own monotonic clock (`Instant`), never by comparing the
//! `renewTime` written by another machine with the local wall clock. So clock skew
//! between nodes cannot make a standby take over early. The wall-clock times written
//! into the Lease (`acquireTime`, `renewTime`) are for people reading it.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

/// The Lease's spec as last seen, and when this replica first saw it so.
#[derive(Debug, Clone)]
pub struct Observed {
    pub spec: LeaseSpec,
    pub since: Instant,
}

/// Records what was read: the clock restarts only when the record changed.
pub fn observe(previous: Option<Observed>, spec: &LeaseSpec, now: Instant) -> Observed {
    match previous {
        Some(p) if p.spec == *spec => p,
        _ => Observed {
            spec: spec.clone(),
            since: now,
        },
    }
}

/// How this replica came to hold the Lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    /// It already led and renewed.
    Renewal,
    /// Nobody held it: it was just created, or its holder released it on shutdown
    /// (after its in-flight vendor calls had ended).
    FromNobody,
    /// Its holder stopped renewing (crashed, partitioned, or an earlier process with
    /// this identity): that holder may still have had vendor calls in flight.
    FromExpired,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Write this spec (guarded by the resourceVersion that was read).
    Write { spec: LeaseSpec, takeover: Takeover },
    /// Another holder's lease is still valid.
    HeldBy(String),
}

/// What to do with the Lease as `observed`, for candidate `me`.
///
/// `leading`: this process holds the Lease now. A record naming `me` that this process
/// did not write (an earlier process with the same identity) is waited out like any
/// other holder's, because that process may have had calls in flight when it died.
pub fn decide(
    me: &str,
    leading: bool,
    observed: &Observed,
    now: Instant,
    wall: MicroTime,
    lease_duration: Duration,
) -> Decision {
    let current = &observed.spec;
    let holder = current.holder_identity.as_deref().filter(|h| !h.is_empty());
    let mine = holder == Some(me);
    let duration_secs = i32::try_from(lease_duration.as_secs()).unwrap_or(i32::MAX);
    if mine && leading {
        return Decision::Write {
            spec: LeaseSpec {
                holder_identity: Some(me.to_string()),
                lease_duration_seconds: Some(duration_secs),
                renew_time: Some(wall),
                ..current.clone()
            },
            takeover: Takeover::Renewal,
        };
    }
    if let Some(holder) = holder {
        // The record's own duration: the holder promised to renew within it.
        let held_for = current
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(lease_duration, Duration::from_secs);
        if now < observed.since + held_for {
            return Decision::HeldBy(holder.to_string());
        }
    }
    let transitions = current.lease_transitions.unwrap_or(0);
    Decision::Write {
        spec: LeaseSpec {
            holder_identity: Some(me.to_string()),
            lease_duration_seconds: Some(duration_secs),
            acquire_time: Some(wall.clone()),
            renew_time: Some(wall),
            lease_transitions: Some(if mine { transitions } else { transitions + 1 }),
            ..current.clone()
        },
        takeover: if holder.is_some() {
            Takeover::FromExpired
        } else {
            Takeover::FromNobody
        },
    }
}

/// The spec of a Lease created by `me`.
pub fn created(me: &str, wall: MicroTime, lease_duration: Duration) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(me.to_string()),
        lease_duration_seconds: Some(i32::try_from(lease_duration.as_secs()).unwrap_or(i32::MAX)),
        acquire_time: Some(wall.clone()),
        renew_time: Some(wall),
        lease_transitions: Some(0),
        ..LeaseSpec::default()
    }
}

/// The spec that gives the Lease up at once (as client-go's `ReleaseOnCancel`): no
/// holder, so a standby takes it on its next try without waiting for it to expire.
pub fn released(current: &LeaseSpec, wall: MicroTime) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        acquire_time: Some(wall.clone()),
        renew_time: Some(wall),
        ..current.clone()
    }
}

/// How long a new leader waits before its first vendor call after `takeover`: every
/// call the previous holder could still have had in flight has then timed out. The
/// previous holder stopped starting calls at most `renew_deadline` after its last
/// renewal, each call lasts at most `request_timeout`, and this replica took over no
/// sooner than `lease_duration` after seeing that renewal.
pub fn fence(
    takeover: Takeover,
    lease_duration: Duration,
    renew_deadline: Duration,
    request_timeout: Duration,
) -> Duration {
    match takeover {
        Takeover::FromExpired => (renew_deadline + request_timeout).saturating_sub(lease_duration),
        Takeover::Renewal | Takeover::FromNobody => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);

    fn wall(secs: i64) -> MicroTime {
        MicroTime(
            k8s_openapi::jiff::Timestamp::from_second(1_800_000_000 + secs).expect("timestamp"),
        )
    }

    fn held_by(holder: Option<&str>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(String::from),
            lease_duration_seconds: Some(15),
            renew_time: Some(wall(0)),
            acquire_time: Some(wall(-100)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn another_holder_is_waited_out_on_the_local_clock_whatever_its_timestamps_say() {
        let t0 = Instant::now();
        // renewTime is far in the past by the wall clock: it does not matter.
        let spec = LeaseSpec {
            renew_time: Some(wall(-10_000)),
            ..held_by(Some("roster-0"), 3)
        };
        let seen = observe(None, &spec, t0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(
            decide("roster-1", false, &seen, at(14), wall(14), D),
            Decision::HeldBy("roster-0".into())
        );
        // The same record read again does not restart the clock...
        let seen = observe(Some(seen), &spec, at(10));
        assert_eq!(seen.since, t0);
        // ...and after the lease duration unchanged, it is taken over.
        match decide("roster-1", false, &seen, at(15), wall(15), D) {
            Decision::Write { spec, takeover } => {
                assert_eq!(takeover, Takeover::FromExpired);
                assert_eq!(spec.holder_identity.as_deref(), Some("roster-1"));
                assert_eq!(spec.lease_transitions, Some(4));
                assert_eq!(spec.acquire_time, Some(wall(15)));
            }
            other => panic!("expected a takeover, got {other:?}"),
        }
        // A renewal (changed record) restarts the clock.
        let renewed = LeaseSpec {
            renew_time: Some(wall(14)),
            ..spec
        };
        let seen = observe(Some(seen), &renewed, at(14));
        assert_eq!(
            decide("roster-1", false, &seen, at(20), wall(20), D),
            Decision::HeldBy("roster-0".into())
        );
    }

    #[test]
    fn the_leader_renews_keeping_its_acquire_time() {
        let t0 = Instant::now();
        let seen = observe(None, &held_by(Some("roster-0"), 2), t0);
        match decide("roster-0", true, &seen, t0, wall(5), D) {
            Decision::Write { spec, takeover } => {
                assert_eq!(takeover, Takeover::Renewal);
                assert_eq!(spec.renew_time, Some(wall(5)));
                assert_eq!(spec.acquire_time, Some(wall(-100)));
                assert_eq!(spec.lease_transitions, Some(2));
            }
            other => panic!("expected a renewal, got {other:?}"),
        }
    }

    #[test]
    fn a_record_naming_me_from_an_earlier_process_is_waited_out() {
        let t0 = Instant::now();
        let seen = observe(None, &held_by(Some("roster-0"), 2), t0);
        assert_eq!(
            decide("roster-0", false, &seen, t0, wall(0), D),
            Decision::HeldBy("roster-0".into())
        );
        match decide("roster-0", false, &seen, t0 + D, wall(15), D) {
            Decision::Write { spec, takeover } => {
                assert_eq!(takeover, Takeover::FromExpired);
                assert_eq!(
                    spec.lease_transitions,
                    Some(2),
                    "same holder: no transition"
                );
            }
            other => panic!("expected a takeover, got {other:?}"),
        }
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let t0 = Instant::now();
        let released = released(&held_by(Some("roster-0"), 2), wall(1));
        assert_eq!(released.holder_identity, None);
        assert_eq!(released.lease_duration_seconds, Some(1));
        let seen = observe(None, &released, t0);
        match decide("roster-1", false, &seen, t0, wall(1), D) {
            Decision::Write { spec, takeover } => {
                assert_eq!(takeover, Takeover::FromNobody);
                assert_eq!(spec.holder_identity.as_deref(), Some("roster-1"));
                assert_eq!(spec.lease_duration_seconds, Some(15));
            }
            other => panic!("expected an acquisition, got {other:?}"),
        }
        // An empty string is no holder either.
        let seen = observe(None, &held_by(Some(""), 0), t0);
        assert!(matches!(
            decide("roster-1", false, &seen, t0, wall(0), D),
            Decision::Write {
                takeover: Takeover::FromNobody,
                ..
            }
        ));
    }

    #[test]
    fn the_fence_covers_calls_the_previous_holder_may_still_have_in_flight() {
        let s = Duration::from_secs;
        assert_eq!(fence(Takeover::FromExpired, s(15), s(10), s(30)), s(25));
        assert_eq!(fence(Takeover::FromExpired, s(60), s(10), s(30)), s(0));
        assert_eq!(fence(Takeover::FromNobody, s(15), s(10), s(30)), s(0));
        assert_eq!(fence(Takeover::Renewal, s(15), s(10), s(30)), s(0));
    }
}
