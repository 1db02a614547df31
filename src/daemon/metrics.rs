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

use std::time::Duration;

use crate::http::Observer;
use crate::pass::Hooks;
use crate::report::Report;
use crate::vendor::VendorError;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    operations: Family<Labels, Counter>,
    failures: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    rate_limited: Family<Labels, Counter>,
    pacing_rate: Family<Labels, Gauge<f64, AtomicU64>>,
    pacing_hold: Family<Labels, Gauge<f64, AtomicU64>>,
    passes: Family<Labels, Counter>,
    pass_duration: Histogram,
    last_success: Family<Labels, Gauge<f64, AtomicU64>>,
    source_people: Gauge,
    source_invalid: Gauge,
    safety_refusals: Counter,
    pass_refused: Gauge,
    failed_operations: Family<Labels, Gauge>,
    credentials_rejected: Family<Labels, Gauge>,
    schedule_interval: Gauge,
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
        let failures = Family::<Labels, Counter>::default();
        registry.register(
            "operation_failures",
            "Failed or skipped vendor operations by vendor, op and the failure's class \
             (the report's `kind`: auth, rejected, rate_limited, transport, setup, ...)",
            failures.clone(),
        );
        let retries = Family::<Labels, Counter>::default();
        registry.register("retries", "Retried vendor calls by vendor", retries.clone());
        let rate_limited = Family::<Labels, Counter>::default();
        registry.register(
            "rate_limited",
            "Replies refusing a call for its rate (429 Too Many Requests), by vendor (or \
             `source`) and route",
            rate_limited.clone(),
        );
        let pacing_rate = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "pacing_rate_per_second",
            "The rate roster allows itself at each vendor now (0: unlimited)",
            pacing_rate.clone(),
        );
        let pacing_hold = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "pacing_hold_seconds",
            "What is left of the pause a vendor asked for (0: none)",
            pacing_hold.clone(),
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
        // Gauges for conditions, so an alert rule follows the last pass exactly (a counter
        // series born at its first increment shows no `increase` to Prometheus).
        let pass_refused = Gauge::default();
        registry.register(
            "pass_refused",
            "1 when the last pass was refused (safety limit, unreadable or empty source), else 0",
            pass_refused.clone(),
        );
        let failed_operations = Family::<Labels, Gauge>::default();
        registry.register(
            "failed_operations",
            "Operations that failed after all retries in the last pass, by vendor",
            failed_operations.clone(),
        );
        let credentials_rejected = Family::<Labels, Gauge>::default();
        registry.register(
            "credentials_rejected",
            "1 while the vendor rejects roster's credentials (set by a pass that got a 401/403, \
             cleared by one whose calls were accepted)",
            credentials_rejected.clone(),
        );
        let schedule_interval = Gauge::default();
        registry.register(
            "schedule_interval_seconds",
            "The longest gap between two ticks of the daemon's schedule (alert rules use it \
             to tell a stale sync)",
            schedule_interval.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica runs the passes (holds the lease; always without [ha]), else 0",
            leader.clone(),
        );
        Self {
            registry,
            operations,
            failures,
            retries,
            rate_limited,
            pacing_rate,
            pacing_hold,
            passes,
            pass_duration,
            last_success,
            source_people,
            source_invalid,
            safety_refusals,
            pass_refused,
            failed_operations,
            credentials_rejected,
            schedule_interval,
            leader,
        }
    }

    /// Creates the per-vendor series at 0 before the first pass, so the first 429 or
    /// failure is an increase Prometheus can see.
    pub fn vendors<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            let v = Self::vendor(name);
            let _ = self.rate_limited.get_or_create(&v);
            let _ = self.retries.get_or_create(&v);
            let _ = self.failed_operations.get_or_create(&v);
        }
    }

    /// The schedule's longest gap between ticks (see `schedule::longest_gap`).
    pub fn schedule_interval(&self, interval: std::time::Duration) {
        self.schedule_interval
            .set(i64::try_from(interval.as_secs()).unwrap_or(i64::MAX));
    }

    fn vendor(v: &str) -> Labels {
        vec![("vendor".into(), v.into())]
    }

    /// A pass finished (or was refused).
    pub fn pass(&self, report: &Report, seconds: f64) {
        let outcome = report.outcome().as_str();
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
            self.pass_refused.set(1);
            return;
        }
        self.pass_refused.set(0);
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
            for (op, n) in crate::pass::op_counts(v) {
                count(op.as_str(), "ok", n);
            }
            for e in &v.errors {
                count(e.op.as_str(), e.outcome.as_str(), 1);
                if let Some(kind) = &e.kind {
                    self.failures
                        .get_or_create(&vec![
                            ("vendor".into(), name.clone()),
                            ("op".into(), e.op.as_str().into()),
                            ("kind".into(), kind.clone()),
                        ])
                        .inc();
                }
            }
            self.failed_operations
                .get_or_create(&Self::vendor(name))
                .set(i64::try_from(v.failed).unwrap_or(i64::MAX));
            match v.credentials {
                Some(crate::report::Credentials::Rejected) => {
                    self.credentials_rejected
                        .get_or_create(&Self::vendor(name))
                        .set(1);
                }
                Some(crate::report::Credentials::Accepted) => {
                    self.credentials_rejected
                        .get_or_create(&Self::vendor(name))
                        .set(0);
                }
                None => {}
            }
            if v.failed == 0 {
                self.last_success
                    .get_or_create(&Self::vendor(name))
                    .set(now);
            }
        }
    }

    /// This replica became leader (`true`) or standby (HA).
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

impl Observer for Metrics {
    fn throttled(&self, remote: &str, route: &str) {
        self.rate_limited
            .get_or_create(&vec![
                ("vendor".into(), remote.into()),
                ("route".into(), route.into()),
            ])
            .inc();
    }

    fn pacing(&self, remote: &str, rate: Option<f64>, hold: Option<Duration>) {
        self.pacing_rate
            .get_or_create(&Self::vendor(remote))
            .set(rate.unwrap_or(0.0));
        self.pacing_hold
            .get_or_create(&Self::vendor(remote))
            .set(hold.map_or(0.0, |h| h.as_secs_f64()));
    }
}

impl Hooks for Metrics {
    /// A vendor call is being retried.
    fn retry(&self, vendor: &str, _error: &VendorError, _wait: Duration) {
        self.retries.get_or_create(&Self::vendor(vendor)).inc();
    }
}

#[cfg(test)]
mod tests;
