//! One daemon pass: run it, log its summary, feed the metrics, answer whoever asked for
//! it over the admin socket, then send the alerts.

use std::time::Instant;

use chrono::{DateTime, Utc};
use tracing::{error, info, warn};

use super::metrics::Metrics;
use super::reload::Running;
use crate::admin::server::Requested;
use crate::pass::{PassOptions, run_once};
use crate::shutdown::Shutdown;
use crate::store::Store;

/// How a daemon pass ended, for the loop's next decision.
#[derive(Debug, Default)]
pub(super) struct Ran {
    /// Not refused, failed or stopped part-way.
    pub(super) completed: bool,
    /// When a start or end date next changes the plan, if ever (a pass that failed
    /// outright knows of none: the schedule goes on).
    pub(super) next_due: Option<DateTime<Utc>>,
}

/// Runs one pass with `shutdown` as its stop signal (with `[ha]`, it also fires on losing
/// the Lease). A pass asked for over the admin socket gets its report on `reply` as soon
/// as it is known (before alerts go out, as `roster reconcile` prints before sending).
pub(super) async fn run_pass(
    running: &Running,
    store: &Store,
    shutdown: &Shutdown,
    metrics: &Metrics,
    reason: &str,
    opts: &PassOptions,
    reply: Option<tokio::sync::oneshot::Sender<Requested>>,
) -> Ran {
    info!(reason, full = opts.full, force = opts.force, vendors = ?opts.only, "Pass starting.");
    if shutdown.is_triggered() {
        // Leadership was lost (or shutdown began) before it started.
        warn!(
            reason,
            "Pass not started: this replica is stopping or no longer leads."
        );
        if let Some(reply) = reply {
            let _ = reply.send(Requested::NotStarted);
        }
        return Ran::default();
    }
    let started = Instant::now();
    match run_once(&running.ctx, store, opts, shutdown).await {
        Ok(report) => {
            metrics.pass(&report, started.elapsed().as_secs_f64());
            let total = |f: fn(&crate::report::VendorReport) -> usize| -> usize {
                report.vendors.values().map(f).sum()
            };
            let summary = format!(
                "created={} updated={} deactivated={} reactivated={} adopted={} deleted={} unchanged={} failed={} skipped={}",
                total(|v| v.created),
                total(|v| v.updated),
                total(|v| v.deactivated),
                total(|v| v.reactivated),
                total(|v| v.adopted),
                total(|v| v.deleted),
                total(|v| v.unchanged),
                total(|v| v.failed),
                total(|v| v.skipped),
            );
            let completed = match &report.refused {
                Some(why) => {
                    error!(reason = %why, "Pass refused; nothing was pushed.");
                    false
                }
                None => {
                    info!(
                        people = report.source.records - report.source.invalid,
                        invalid = report.source.invalid,
                        duration_ms = started.elapsed().as_millis() as u64,
                        counts = %summary,
                        "Pass complete."
                    );
                    // Stopped part-way (shutdown, or the Lease lost): not complete.
                    !shutdown.is_triggered()
                }
            };
            if let Some(reply) = reply {
                let _ = reply.send(Requested::Ran(Ok(report.clone())));
            }
            // A pass cut short by shutdown says nothing about the vendors; and delivery
            // must not hold up a shutdown (what is not recorded is sent after a later pass).
            if !shutdown.is_triggered() {
                let mut stop = shutdown.clone();
                tokio::select! {
                    () = running.notifier.after_pass(store, &report) => {}
                    _ = stop.wait() => warn!("Shutting down: alert delivery abandoned; it is tried again after the next pass."),
                }
            }
            Ran {
                completed,
                next_due: report.next_due,
            }
        }
        Err(e) => {
            error!(error = %e, "Pass failed.");
            if let Some(reply) = reply {
                let _ = reply.send(Requested::Ran(Err(e.to_string())));
            }
            Ran::default()
        }
    }
}
