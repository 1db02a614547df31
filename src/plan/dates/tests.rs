//! Table tests of the date rules: what a vendor should hold for a person at a given
//! moment, and when that next changes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::*;
use crate::model::{Fields, MapError, OnRemove, PersonId, RecordState, VendorRecord, Why};
use crate::plan::upcoming::{Due, upcoming};
use crate::plan::{Desired, OpKind, Policy, Target, desire, plan};

struct Vendor {
    rules: DateRules,
}

impl Target for Vendor {
    fn scope(&self) -> Option<&BTreeSet<String>> {
        None
    }
    fn map(&self, p: &Person) -> Result<Fields, MapError> {
        Ok([("id".to_string(), p.id.to_string())].into())
    }
    fn dates(&self) -> DateRules {
        self.rules
    }
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

fn person(start: Option<&str>, end: Option<&str>) -> Person {
    let when = |s: Option<&str>| s.map(|s| When::parse(s).expect("test date"));
    Person {
        start_date: when(start),
        end_date: when(end),
        ..Person::new("p")
    }
}

fn rules(zone: &str, lead: u32, grace: u32) -> DateRules {
    DateRules {
        time_zone: zone.parse::<Tz>().expect("zone"),
        provision_days_before_start: lead,
        end_grace_days: grace,
    }
}

/// What the vendor should hold: `active`, `not_yet`, `ended`, `skip`.
fn wanted(r: DateRules, p: &Person, now: &str) -> &'static str {
    match desire(&Vendor { rules: r }, p, utc(now)) {
        Desired::Active(_) => "active",
        Desired::NotYet { .. } => "not_yet",
        Desired::Inactive(Why::Ended) => "ended",
        Desired::Inactive(_) => "inactive",
        Desired::Skip(_) => "skip",
        Desired::Hold => "hold",
    }
}

struct Case {
    name: &'static str,
    rules: DateRules,
    start: Option<&'static str>,
    end: Option<&'static str>,
    now: &'static str,
    expect: &'static str,
    /// The next change after `now`, if any.
    next: Option<&'static str>,
}

#[test]
fn table() {
    let utc0 = rules("UTC", 0, 0);
    let lead3 = rules("UTC", 3, 0);
    let grace2 = rules("UTC", 0, 2);
    let berlin = rules("Europe/Berlin", 0, 0);
    let cases = [
        Case {
            name: "no dates: always active, nothing due",
            rules: utc0,
            start: None,
            end: None,
            now: "2026-03-01T00:00:00Z",
            expect: "active",
            next: None,
        },
        Case {
            name: "before the start date",
            rules: utc0,
            start: Some("2026-03-10"),
            end: None,
            now: "2026-03-09T23:59:59Z",
            expect: "not_yet",
            next: Some("2026-03-10T00:00:00Z"),
        },
        Case {
            name: "at the start (the first moment of that day)",
            rules: utc0,
            start: Some("2026-03-10"),
            end: None,
            now: "2026-03-10T00:00:00Z",
            expect: "active",
            next: None,
        },
        Case {
            name: "after the start",
            rules: utc0,
            start: Some("2026-03-10"),
            end: None,
            now: "2026-04-01T12:00:00Z",
            expect: "active",
            next: None,
        },
        Case {
            name: "lead days: still before start minus 3 days",
            rules: lead3,
            start: Some("2026-03-10"),
            end: None,
            now: "2026-03-06T23:00:00Z",
            expect: "not_yet",
            next: Some("2026-03-07T00:00:00Z"),
        },
        Case {
            name: "lead days: at start minus 3 days",
            rules: lead3,
            start: Some("2026-03-10"),
            end: None,
            now: "2026-03-07T00:00:00Z",
            expect: "active",
            next: None,
        },
        Case {
            name: "lead days on a date-time are 24 hours each",
            rules: lead3,
            start: Some("2026-03-10T09:30:00+01:00"),
            end: None,
            now: "2026-03-07T08:29:59Z",
            expect: "not_yet",
            next: Some("2026-03-07T08:30:00Z"),
        },
        Case {
            name: "before the end date",
            rules: utc0,
            start: None,
            end: Some("2026-06-30"),
            now: "2026-06-29T23:59:59Z",
            expect: "active",
            next: Some("2026-06-30T00:00:00Z"),
        },
        Case {
            name: "at the end date: deactivated from the start of that day",
            rules: utc0,
            start: None,
            end: Some("2026-06-30"),
            now: "2026-06-30T00:00:00Z",
            expect: "ended",
            next: None,
        },
        Case {
            name: "grace days: still active the day after",
            rules: grace2,
            start: None,
            end: Some("2026-06-30"),
            now: "2026-07-01T18:00:00Z",
            expect: "active",
            next: Some("2026-07-02T00:00:00Z"),
        },
        Case {
            name: "grace days: deactivated after them",
            rules: grace2,
            start: None,
            end: Some("2026-06-30"),
            now: "2026-07-02T00:00:00Z",
            expect: "ended",
            next: None,
        },
        Case {
            name: "an end date-time is that instant",
            rules: utc0,
            start: None,
            end: Some("2026-06-30T17:00:00-04:00"),
            now: "2026-06-30T20:59:59Z",
            expect: "active",
            next: Some("2026-06-30T21:00:00Z"),
        },
        Case {
            name: "a date in Berlin starts at 23:00 UTC the day before (winter)",
            rules: berlin,
            start: Some("2026-01-15"),
            end: None,
            now: "2026-01-14T22:59:59Z",
            expect: "not_yet",
            next: Some("2026-01-14T23:00:00Z"),
        },
        Case {
            name: "... and at 22:00 UTC in summer",
            rules: berlin,
            start: Some("2026-07-15"),
            end: None,
            now: "2026-07-14T22:00:00Z",
            expect: "active",
            next: None,
        },
        Case {
            name: "a date-time keeps its own offset whatever the zone",
            rules: berlin,
            start: Some("2026-07-15T00:00:00Z"),
            end: None,
            now: "2026-07-14T23:00:00Z",
            expect: "not_yet",
            next: Some("2026-07-15T00:00:00Z"),
        },
        Case {
            name: "DST begins: 1 lead day before Monday 30 March is Sunday's midnight (+01:00)",
            rules: rules("Europe/Berlin", 1, 0),
            start: Some("2026-03-30"),
            end: None,
            // 24 hours before Monday's midnight (+02:00) would be 22:00Z; the calendar
            // day before starts an hour later.
            now: "2026-03-28T22:30:00Z",
            expect: "not_yet",
            next: Some("2026-03-28T23:00:00Z"),
        },
        Case {
            name: "DST ends: a grace day over 25 October is 25 hours long",
            rules: rules("Europe/Berlin", 0, 1),
            start: None,
            end: Some("2026-10-25"),
            // 25 Oct 00:00 +02:00 is 24 Oct 22:00Z; one calendar day on is 26 Oct
            // 00:00 +01:00, 25 Oct 23:00Z: 25 hours, not 24.
            now: "2026-10-25T22:00:00Z",
            expect: "active",
            next: Some("2026-10-25T23:00:00Z"),
        },
        Case {
            name: "a day whose midnight does not exist starts at 01:00 (Santiago, 6 Sep 2026)",
            rules: rules("America/Santiago", 0, 0),
            start: Some("2026-09-06"),
            end: None,
            now: "2026-09-06T03:59:59Z",
            expect: "not_yet",
            next: Some("2026-09-06T04:00:00Z"),
        },
        Case {
            name: "both dates: before the start",
            rules: lead3,
            start: Some("2026-03-10"),
            end: Some("2026-03-20"),
            now: "2026-03-01T00:00:00Z",
            expect: "not_yet",
            next: Some("2026-03-07T00:00:00Z"),
        },
        Case {
            name: "both dates: between them, the end is next",
            rules: lead3,
            start: Some("2026-03-10"),
            end: Some("2026-03-20"),
            now: "2026-03-08T00:00:00Z",
            expect: "active",
            next: Some("2026-03-20T00:00:00Z"),
        },
        Case {
            name: "both dates: after the end",
            rules: lead3,
            start: Some("2026-03-10"),
            end: Some("2026-03-20"),
            now: "2026-03-25T00:00:00Z",
            expect: "ended",
            next: None,
        },
        Case {
            name: "both dates on one day: never active without lead or grace days, so skipped",
            rules: utc0,
            start: Some("2026-03-10"),
            end: Some("2026-03-10"),
            now: "2026-03-10T12:00:00Z",
            expect: "skip",
            next: None,
        },
        Case {
            name: "the end before the start is skipped, whenever asked",
            rules: utc0,
            start: Some("2026-03-10"),
            end: Some("2026-03-01"),
            now: "2026-03-05T00:00:00Z",
            expect: "skip",
            next: None,
        },
    ];
    for c in cases {
        let p = person(c.start, c.end);
        assert_eq!(wanted(c.rules, &p, c.now), c.expect, "case `{}`", c.name);
        assert_eq!(
            c.rules.next_due(&p, utc(c.now)),
            c.next.map(utc),
            "case `{}`: next due",
            c.name
        );
    }
}

#[test]
fn inactive_wins_over_every_date() {
    let mut p = person(Some("2030-01-01"), None);
    p.active = false;
    assert_eq!(
        wanted(rules("UTC", 0, 0), &p, "2026-01-01T00:00:00Z"),
        "inactive"
    );
    assert_eq!(
        rules("UTC", 0, 0).next_due(&p, utc("2026-01-01T00:00:00Z")),
        None
    );
}

#[test]
fn the_end_before_the_start_names_both_dates() {
    let p = person(Some("2026-03-10"), Some("2026-03-01"));
    let Desired::Skip(message) = desire(
        &Vendor {
            rules: rules("UTC", 0, 0),
        },
        &p,
        utc("2026-03-05T00:00:00Z"),
    ) else {
        panic!("skipped");
    };
    assert!(
        message.contains("end_date 2026-03-01 is before start_date 2026-03-10"),
        "{message}"
    );
}

fn record(state: RecordState) -> VendorRecord {
    let t = utc("2026-01-01T00:00:00Z");
    VendorRecord {
        remote_id: Some("7".into()),
        state,
        fields: [("id".to_string(), "p".to_string())].into(),
        linked_at: t,
        updated_at: t,
    }
}

/// The plan for one person at `now`: the operation, if any.
fn op_at(p: &Person, r: DateRules, known: Option<VendorRecord>, now: &str) -> Option<OpKind> {
    let desired = BTreeMap::from([(p.id.clone(), desire(&Vendor { rules: r }, p, utc(now)))]);
    let known: BTreeMap<PersonId, VendorRecord> =
        known.map(|k| (p.id.clone(), k)).into_iter().collect();
    plan(&desired, &known, OnRemove::Delete)
        .ops
        .first()
        .map(|o| o.kind.clone())
}

#[test]
fn not_yet_joined_creates_nothing_and_leaves_a_linked_account_alone() {
    let p = person(Some("2026-03-10"), None);
    let r = rules("UTC", 0, 0);
    let now = "2026-03-01T00:00:00Z";
    assert_eq!(op_at(&p, r, None, now), None, "no account is created");
    for state in [RecordState::Active, RecordState::Deactivated] {
        assert_eq!(
            op_at(&p, r, Some(record(state)), now),
            None,
            "{state:?} is left as it is"
        );
    }
    assert!(matches!(
        op_at(&p, r, None, "2026-03-10T00:00:00Z"),
        Some(OpKind::Create { .. })
    ));
}

#[test]
fn ended_deactivates_even_where_removal_deletes() {
    let p = person(None, Some("2026-03-10"));
    let got = op_at(
        &p,
        rules("UTC", 0, 0),
        Some(record(RecordState::Active)),
        "2026-03-10T00:00:00Z",
    );
    assert_eq!(
        got,
        Some(OpKind::Deactivate {
            remote: Some("7".into()),
            why: Why::Ended
        })
    );
}

#[test]
fn upcoming_plays_the_passes_forward() {
    let v = Vendor {
        rules: rules("UTC", 2, 1),
    };
    let p = person(Some("2026-03-10"), Some("2026-03-20"));
    let now = utc("2026-03-01T00:00:00Z");
    let ats = |due: &[Due]| -> Vec<(String, &'static str)> {
        due.iter()
            .map(|d| (d.at.to_rfc3339(), d.kind.op().as_str()))
            .collect()
    };
    let policy = Policy::removal(OnRemove::Deactivate);
    // Nobody linked: created two days before the start, deactivated a day after the end.
    let all = upcoming(&v, &p, None, policy, now, utc("2026-12-31T00:00:00Z"));
    assert_eq!(
        ats(&all),
        [
            ("2026-03-08T00:00:00+00:00".to_string(), "create"),
            ("2026-03-21T00:00:00+00:00".to_string(), "deactivate"),
        ]
    );
    // A window of 7 days sees only the create.
    let week = upcoming(&v, &p, None, policy, now, utc("2026-03-08T00:00:00Z"));
    assert_eq!(ats(&week).len(), 1);
    // Joined already and created by today's pass: only the deactivation is upcoming.
    let joined = upcoming(
        &v,
        &p,
        None,
        policy,
        utc("2026-03-12T00:00:00Z"),
        utc("2026-12-31T00:00:00Z"),
    );
    assert_eq!(
        ats(&joined),
        [("2026-03-21T00:00:00+00:00".to_string(), "deactivate")]
    );
    // A person without dates has nothing upcoming.
    assert!(
        upcoming(
            &v,
            &person(None, None),
            None,
            policy,
            now,
            utc("2030-01-01T00:00:00Z")
        )
        .is_empty()
    );
    // A time zone moves the moments: Berlin's 8 March starts at 23:00 UTC on the 7th.
    let berlin = Vendor {
        rules: rules("Europe/Berlin", 2, 0),
    };
    let b = upcoming(&berlin, &p, None, policy, now, utc("2026-03-31T00:00:00Z"));
    assert_eq!(
        b[0].at,
        Utc.with_ymd_and_hms(2026, 3, 7, 23, 0, 0)
            .single()
            .expect("t")
    );
}

#[test]
fn next_due_of_everyone_is_the_earliest() {
    let r = rules("UTC", 0, 0);
    let people = [
        person(Some("2026-05-01"), None),
        person(None, Some("2026-04-01")),
        person(None, None),
        person(Some("2026-01-01"), None),
    ];
    assert_eq!(
        r.next_due_of(&people, utc("2026-02-01T00:00:00Z")),
        Some(utc("2026-04-01T00:00:00Z"))
    );
    assert_eq!(r.next_due_of(&people, utc("2026-06-01T00:00:00Z")), None);
}
