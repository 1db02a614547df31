use super::*;
use crate::model::{Op, Outcome};
use crate::report::{OpError, VendorReport};

#[test]
fn a_pass_moves_the_counters() {
    let m = Metrics::new();
    let mut r = Report::default();
    r.source.records = 5;
    r.source.invalid = 1;
    r.vendors.insert(
        "motive".into(),
        VendorReport {
            created: 2,
            failed: 1,
            errors: vec![OpError {
                person: "E1".into(),
                op: Op::Update,
                message: "x".into(),
                outcome: Outcome::Failed,
                kind: Some("server".into()),
                status: Some(503),
            }],
            ..VendorReport::default()
        },
    );
    m.pass(&r, 0.2);
    m.retry(
        "motive",
        &VendorError::RateLimited { retry_after: None },
        Duration::ZERO,
    );
    m.throttled("motive", "PUT /v1/users/{id}");
    m.pacing("motive", Some(2.5), Some(Duration::from_secs(3)));
    m.pacing("chat", None, None);
    let text = m.render();
    assert!(
        text.contains("roster_operations_total{vendor=\"motive\",op=\"create\",result=\"ok\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("op=\"update\",result=\"failed\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "roster_operation_failures_total{vendor=\"motive\",op=\"update\",kind=\"server\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("roster_source_people 4"), "{text}");
    assert!(
        text.contains(
            "roster_rate_limited_total{vendor=\"motive\",route=\"PUT /v1/users/{id}\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("roster_pacing_rate_per_second{vendor=\"motive\"} 2.5"),
        "{text}"
    );
    assert!(
        text.contains("roster_pacing_hold_seconds{vendor=\"motive\"} 3.0"),
        "{text}"
    );
    assert!(
        text.contains("roster_pacing_rate_per_second{vendor=\"chat\"} 0.0"),
        "{text}"
    );
    assert!(
        text.contains("roster_retries_total{vendor=\"motive\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("roster_passes_total{outcome=\"failed_operations\"} 1"),
        "{text}"
    );
    assert!(!text.contains("E1"), "no person ids on /metrics");
    assert!(text.contains("roster_leader 0"), "{text}");
    m.set_leader(true);
    assert!(m.render().contains("roster_leader 1"));
    assert!(text.contains("roster_pass_refused 0"), "{text}");
    assert!(
        text.contains("roster_failed_operations{vendor=\"motive\"} 1"),
        "{text}"
    );
}

#[test]
fn condition_gauges_follow_the_last_pass() {
    let m = Metrics::new();
    m.vendors(["motive", "rocketchat"]);
    let text = m.render();
    assert!(
        text.contains("roster_rate_limited_total{vendor=\"rocketchat\"} 0"),
        "series exist before the first 429: {text}"
    );
    let mut r = Report {
        refused: Some("safety limit".into()),
        ..Report::default()
    };
    m.pass(&r, 0.1);
    assert!(m.render().contains("roster_pass_refused 1"));
    r.refused = None;
    r.vendors.insert(
        "motive".into(),
        VendorReport {
            failed: 2,
            credentials: Some(crate::report::Credentials::Rejected),
            ..VendorReport::default()
        },
    );
    m.pass(&r, 0.1);
    let text = m.render();
    assert!(text.contains("roster_pass_refused 0"), "{text}");
    assert!(
        text.contains("roster_credentials_rejected{vendor=\"motive\"} 1"),
        "{text}"
    );
    // A pass that made no call says nothing about the credentials.
    r.vendors.insert("motive".into(), VendorReport::default());
    m.pass(&r, 0.1);
    let text = m.render();
    assert!(
        text.contains("roster_credentials_rejected{vendor=\"motive\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("roster_failed_operations{vendor=\"motive\"} 0"),
        "{text}"
    );
    r.vendors.insert(
        "motive".into(),
        VendorReport {
            updated: 1,
            credentials: Some(crate::report::Credentials::Accepted),
            ..VendorReport::default()
        },
    );
    m.pass(&r, 0.1);
    assert!(
        m.render()
            .contains("roster_credentials_rejected{vendor=\"motive\"} 0")
    );
    m.schedule_interval(std::time::Duration::from_secs(900));
    assert!(m.render().contains("roster_schedule_interval_seconds 900"));
}

#[test]
fn the_shipped_alert_rules_use_only_metrics_roster_exports() {
    let m = Metrics::new();
    m.vendors(["motive"]);
    m.schedule_interval(std::time::Duration::from_secs(900));
    let mut r = Report::default();
    r.vendors.insert(
        "motive".into(),
        VendorReport {
            credentials: Some(crate::report::Credentials::Rejected),
            ..VendorReport::default()
        },
    );
    m.pass(&r, 0.1);
    let text = m.render();
    let exported: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    for file in [
        include_str!("../../../deploy/prometheus/roster-rules.yaml"),
        include_str!("../../../deploy/prometheus/roster-rules.test.yaml"),
    ] {
        let mut used = 0;
        for (i, _) in file.match_indices("roster_") {
            let name: String = file[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            assert!(
                exported.contains(name.as_str()),
                "{name} is not exported:\n{text}"
            );
            used += 1;
        }
        assert!(used > 5, "the rules use roster's metrics");
    }
}
