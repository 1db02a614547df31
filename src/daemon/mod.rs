//! `roster run`: passes on the cron schedule, on-demand passes, the HTTP endpoints, and
//! graceful shutdown.
//!
//! Runtime: one scheduler task runs passes one at a time (a tick or wake-up that comes
//! while a pass runs is not queued behind it: at most one on-demand request is kept,
//! and scheduled ticks are recomputed after each pass). A signal task turns
//! SIGTERM/SIGINT into the shutdown trigger and SIGUSR1 into a wake-up. On shutdown the
//! scheduler starts nothing new, the running pass stops launching vendor calls and lets
//! the in-flight ones finish; `main` waits at most `shutdown_grace_secs` for that, then
//! flushes the store.

pub mod metrics;
pub mod schedule;
pub mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use tokio::sync::Notify;
use tracing::{error, info, warn};

use crate::pass::Both;
use crate::pass::{Context, PassOptions, run_once};
use crate::progress::LogLines;
use crate::report::exit;
use crate::settings::Settings;
use crate::shutdown::{self, Shutdown};
use crate::store::Store;
use metrics::Metrics;
use schedule::{next_after, next_wake};
use server::{ServerState, router};

/// Runs the daemon until SIGTERM/SIGINT; returns the exit code.
pub async fn run(settings: Settings) -> i32 {
    let Some(schedule) = settings.schedule.clone() else {
        eprintln!("roster: config key `schedule`: is required for `roster run`");
        return exit::CONFIG;
    };
    let store = match Store::open_with_cache(&settings.state_dir, settings.state_cache_mb) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("roster: {e}");
            return exit::CONFIG;
        }
    };
    let grace = Duration::from_secs(settings.shutdown_grace_secs);
    let jitter = settings.schedule_jitter_secs;
    let listen = settings.server.listen;
    let trigger_token = settings.server.trigger_token.clone();
    let full_schedule = settings.full_schedule.clone().map(|s| s.cron);
    let progress_every = Duration::from_secs(settings.progress_log_secs);
    let metrics = Arc::new(Metrics::new());
    let hooks = Both(Arc::clone(&metrics), LogLines::new(progress_every));
    let ctx = match Context::build(settings, Arc::new(hooks)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("roster: {e}");
            return exit::CONFIG;
        }
    };

    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("roster: config key `server.listen`: cannot listen on {listen}: {e}");
            return exit::CONFIG;
        }
    };
    let addr = listener
        .local_addr()
        .map_or_else(|_| listen.to_string(), |a| a.to_string());

    let (trigger, shutdown) = shutdown::channel();
    let wake = Arc::new(Notify::new());
    let state = Arc::new(ServerState {
        metrics: Arc::clone(&metrics),
        store: store.clone(),
        ready: AtomicBool::new(true),
        wake: Arc::clone(&wake),
        trigger_token,
    });

    if let Err(e) = spawn_signal_task(trigger, Arc::clone(&wake), Arc::clone(&state)) {
        eprintln!("roster: cannot install signal handlers: {e}");
        return exit::CONFIG;
    }

    let mut server_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        let app = router(state);
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { server_shutdown.wait().await })
            .await;
        if let Err(e) = served {
            error!(error = %e, "HTTP server failed.");
        }
    });
    info!(addr = %addr, schedule = %schedule.expression, "Daemon started; serving /healthz /readyz /metrics.");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);

    let scheduler = tokio::spawn(scheduler_loop(
        ctx,
        store.clone(),
        Schedules {
            regular: schedule.cron,
            full: full_schedule,
        },
        jitter,
        wake,
        shutdown.clone(),
        metrics,
    ));

    let mut stop = shutdown.clone();
    let mut scheduler = scheduler;
    let code = tokio::select! {
        _ = stop.wait() => {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
            info!(grace_secs = grace.as_secs(), "Shutting down: no new vendor calls; waiting for in-flight ones.");
            match tokio::time::timeout(grace, &mut scheduler).await {
                Ok(_) => exit::OK,
                Err(_) => {
                    error!("In-flight vendor calls did not finish within the grace period; exiting anyway (the next pass resumes by lookup).");
                    scheduler.abort();
                    exit::FAILED_OPS
                }
            }
        }
        ended = &mut scheduler => {
            // The scheduler also stops on shutdown and may get there first.
            if shutdown.is_triggered() && ended.is_ok() {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
                exit::OK
            } else {
                error!(result = ?ended.err(), "The scheduler stopped unexpectedly.");
                exit::FAILED_OPS
            }
        }
    };
    if let Err(e) = store.flush().await {
        error!(error = %e, "Could not flush the store.");
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    info!(exit_code = code, "Stopped.");
    code
}

fn spawn_signal_task(
    trigger: shutdown::Trigger,
    wake: Arc<Notify>,
    state: Arc<ServerState>,
) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { info!("SIGTERM received."); break; }
                _ = int.recv() => { info!("SIGINT received."); break; }
                _ = usr1.recv() => { info!("SIGUSR1 received: starting a pass."); wake.notify_one(); }
            }
        }
        state.ready.store(false, Ordering::SeqCst);
        trigger.trigger();
    });
    Ok(())
}

/// The daemon's two schedules: ordinary passes and (optionally) full passes.
struct Schedules {
    regular: cron::Schedule,
    full: Option<cron::Schedule>,
}

impl Schedules {
    /// The next tick after `now` and whether it is a full pass (a tick of both is one
    /// full pass).
    fn next(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<(chrono::DateTime<chrono::Utc>, Duration, bool)> {
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

async fn scheduler_loop(
    ctx: Context,
    store: Store,
    schedules: Schedules,
    jitter_secs: u64,
    wake: Arc<Notify>,
    shutdown: Shutdown,
    metrics: Arc<Metrics>,
) {
    let mut stop = shutdown.clone();
    // A start or end date the last pass (of this daemon, or before it started) saw
    // coming: the daemon runs a pass then, even between ticks.
    let mut due: Option<DateTime<Utc>> = store
        .last_report::<crate::report::Report>()
        .ok()
        .flatten()
        .and_then(|r| r.next_due);
    loop {
        let now = Utc::now();
        let tick = schedules.next(now).map(|(at, _, full)| (at, full));
        let Some(next) = next_wake(tick, due, now) else {
            warn!("The schedule has no future run; waiting for on-demand passes only.");
            tokio::select! {
                _ = stop.wait() => return,
                _ = wake.notified() => {}
            }
            due = run_pass(&ctx, &store, &shutdown, &metrics, "on demand", false).await;
            continue;
        };
        let jitter = if jitter_secs > 0 {
            Duration::from_millis(rand::random_range(0..=jitter_secs * 1000))
        } else {
            Duration::ZERO
        };
        let timer = if next.due { "date due" } else { "scheduled" };
        info!(next_run = %next.at, full = next.full, reason = timer, jitter_ms = jitter.as_millis() as u64, "Next pass scheduled.");
        let (reason, full) = tokio::select! {
            _ = stop.wait() => return,
            _ = tokio::time::sleep(next.wait + jitter) => (timer, next.full),
            _ = wake.notified() => ("on demand", false),
        };
        if shutdown.is_triggered() {
            return;
        }
        due = run_pass(&ctx, &store, &shutdown, &metrics, reason, full).await;
    }
}

/// Runs one pass; returns when a start or end date next changes the plan, if ever
/// (a pass that failed outright knows of none: the schedule goes on).
async fn run_pass(
    ctx: &Context,
    store: &Store,
    shutdown: &Shutdown,
    metrics: &Metrics,
    reason: &str,
    full: bool,
) -> Option<DateTime<Utc>> {
    info!(reason, full, "Pass starting.");
    let started = Instant::now();
    let opts = PassOptions {
        full,
        ..PassOptions::default()
    };
    match run_once(ctx, store, &opts, shutdown).await {
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
            match &report.refused {
                Some(why) => error!(reason = %why, "Pass refused; nothing was pushed."),
                None => info!(
                    people = report.source.records - report.source.invalid,
                    invalid = report.source.invalid,
                    duration_ms = started.elapsed().as_millis() as u64,
                    counts = %summary,
                    "Pass complete."
                ),
            }
            report.next_due
        }
        Err(e) => {
            error!(error = %e, "Pass failed.");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use std::str::FromStr;

    #[test]
    fn the_earlier_tick_wins_and_a_shared_tick_is_one_full_pass() {
        let s = Schedules {
            regular: cron::Schedule::from_str("0 */15 * * * *").expect("cron"),
            full: Some(cron::Schedule::from_str("0 0 3 * * *").expect("cron")),
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
        };
        assert!(only_full.next(at(1, 0)).expect("next").2);
    }
}
