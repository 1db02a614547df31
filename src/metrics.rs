//! Prometheus metrics for the daemon (`/metrics`).
//!
//! Owns: the registry and one method per notable occurrence, so callers never touch
//! metric types. Must not: carry person data or secrets — labels are vendor names,
//! operation names and outcomes only.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::report::Report;
use crate::vendor::VendorError;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    operations: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    rate_limited: Family<Labels, Counter>,
    passes: Family<Labels, Counter>,
    pass_duration: Histogram,
    last_success: Family<Labels, Gauge<f64, AtomicU64>>,
    source_people: Gauge,
    source_invalid: Gauge,
    safety_refusals: Counter,
    // HA (issue 17).
    leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("roster");
        let operations = Family::<Labels, Counter>::default();
        registry.register(
            "operations",
            "Vendor operations by vendor, op and result (ok, failed, skipped)",
            operations.clone(),
        );
        let retries = Family::<Labels, Counter>::default();
        registry.register("retries", "Retried vendor calls by vendor", retries.clone());
        let rate_limited = Family::<Labels, Counter>::default();
        registry.register(
            "rate_limited",
            "Vendor replies of 429 Too Many Requests, by vendor",
            rate_limited.clone(),
        );
        let passes = Family::<Labels, Counter>::default();
        registry.register(
            "passes",
            "Reconcile passes by outcome (ok, failed_operations, refused)",
            passes.clone(),
        );
        let pass_duration = Histogram::new([0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0]);
        registry.register(
            "pass_duration_seconds",
            "Wall time of reconcile passes",
            pass_duration.clone(),
        );
        let last_success = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last pass in which every operation at this vendor succeeded",
            last_success.clone(),
        );
        let source_people = Gauge::default();
        registry.register(
            "source_people",
            "Valid people read from the source in the last pass",
            source_people.clone(),
        );
        let source_invalid = Gauge::default();
        registry.register(
            "source_invalid_records",
            "Invalid source records in the last pass",
            source_invalid.clone(),
        );
        let safety_refusals = Counter::default();
        registry.register(
            "safety_refusals",
            "Passes refused by the safety gate or an unreadable or empty source",
            safety_refusals.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica runs the passes (holds the lease; always without [ha]), else 0",
            leader.clone(),
        );
        Self {
            leader,
            registry,
            operations,
            retries,
            rate_limited,
            passes,
            pass_duration,
            last_success,
            source_people,
            source_invalid,
            safety_refusals,
        }
    }

    fn vendor(v: &str) -> Labels {
        vec![("vendor".into(), v.into())]
    }

    /// A vendor call is being retried.
    pub fn retry(&self, vendor: &str, error: &VendorError) {
        self.retries.get_or_create(&Self::vendor(vendor)).inc();
        if matches!(error, VendorError::RateLimited { .. }) {
            self.rate_limited.get_or_create(&Self::vendor(vendor)).inc();
        }
    }

    /// A pass finished (or was refused).
    pub fn pass(&self, report: &Report, seconds: f64) {
        let outcome = match report.exit_code() {
            0 => "ok",
            1 => "failed_operations",
            _ => "refused",
        };
        self.passes
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .inc();
        self.pass_duration.observe(seconds);
        let people = report.source.records.saturating_sub(report.source.invalid);
        self.source_people
            .set(i64::try_from(people).unwrap_or(i64::MAX));
        self.source_invalid
            .set(i64::try_from(report.source.invalid).unwrap_or(i64::MAX));
        if report.refused.is_some() {
            self.safety_refusals.inc();
            return;
        }
        let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
        for (name, v) in &report.vendors {
            let count = |op: &str, result: &str, n: usize| {
                if n > 0 {
                    self.operations
                        .get_or_create(&vec![
                            ("vendor".into(), name.clone()),
                            ("op".into(), op.into()),
                            ("result".into(), result.into()),
                        ])
                        .inc_by(n as u64);
                }
            };
            count("create", "ok", v.created);
            count("adopt", "ok", v.adopted);
            count("update", "ok", v.updated);
            count("deactivate", "ok", v.deactivated);
            count("reactivate", "ok", v.reactivated);
            count("delete", "ok", v.deleted);
            for e in &v.errors {
                let result = match e.outcome {
                    crate::report::Outcome::Failed => "failed",
                    crate::report::Outcome::Skipped => "skipped",
                };
                count(&e.op, result, 1);
            }
            if v.failed == 0 {
                self.last_success
                    .get_or_create(&Self::vendor(name))
                    .set(now);
            }
        }
    }

    /// HA (issue 17): this replica became leader (`true`) or standby.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{OpError, Outcome, VendorReport};

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
                    op: "update".into(),
                    message: "x".into(),
                    outcome: Outcome::Failed,
                }],
                ..VendorReport::default()
            },
        );
        m.pass(&r, 0.2);
        m.retry("motive", &VendorError::RateLimited { retry_after: None });
        let text = m.render();
        assert!(
            text.contains(
                "roster_operations_total{vendor=\"motive\",op=\"create\",result=\"ok\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("op=\"update\",result=\"failed\"} 1"),
            "{text}"
        );
        assert!(text.contains("roster_source_people 4"), "{text}");
        assert!(
            text.contains("roster_rate_limited_total{vendor=\"motive\"} 1"),
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
    }
}
