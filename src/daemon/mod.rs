//! `roster run`: passes on the cron schedule, on-demand passes, the HTTP endpoints, and
//! graceful shutdown.
//!
//! Runtime: one scheduler task runs passes one at a time (a tick or wake-up that comes
//! while a pass runs is not queued behind it: at most one on-demand request is kept,
//! and scheduled ticks are recomputed after each pass). A signal task turns
//! SIGTERM/SIGINT into the shutdown trigger, SIGUSR1 into a wake-up and SIGHUP into a
//! reload of the config and its secrets at the next pass boundary (`reload.rs`). On shutdown the
//! scheduler starts nothing new, the running pass stops launching vendor calls and lets
//! the in-flight ones finish; `main` waits at most `shutdown_grace_secs` for that, then
//! flushes the store.
//!
//! High availability: with `[ha]`, the scheduler runs passes only while this replica
//! holds the Lease (`crate::ha::Leadership`): a standby waits, a new leader starts with a
//! full pass (repeated until one completes), each pass gets a stop signal that also fires
//! on losing the Lease, and on a clean shutdown the Lease is released after the last
//! vendor call.

use crate::out::errln;
pub mod metrics;
mod pass;
mod reload;
pub mod schedule;
pub mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use tokio::sync::{Notify, mpsc, watch};
use tracing::{error, info, warn};

use crate::admin::server::{Handler, PassRequest, Requested, Shared};
use crate::ha::Leadership;
use crate::pass::PassOptions;
use crate::report::exit;
use crate::settings::Settings;
use crate::shutdown::{self, Shutdown};
use crate::store::Store;
use metrics::Metrics;
use pass::run_pass;
use reload::{Reloader, Running};
use schedule::{Schedules, next_wake};
use server::{ServerState, router};

/// Runs the daemon until SIGTERM/SIGINT; returns the exit code. `config_path` is read
/// again on SIGHUP. `commands` answers the CLI's commands on the admin socket (the CLI's
/// own code: `cli::AdminHandler`).
pub async fn run(
    settings: Settings,
    config_path: std::path::PathBuf,
    commands: Arc<dyn Handler>,
) -> i32 {
    let Some(schedule) = settings.schedule.clone() else {
        errln!("roster: config key `schedule`: is required for `roster run`");
        return exit::CONFIG;
    };
    let store = match Store::open_with_cache(&settings.state_dir, settings.state_cache_mb) {
        Ok(s) => s,
        Err(e) => {
            errln!("roster: {e}");
            return exit::CONFIG;
        }
    };
    let grace = Duration::from_secs(settings.shutdown_grace_secs);
    let listen = settings.server.listen;
    let trigger_token = settings.server.trigger_token.clone();
    let ha = settings.ha.clone();
    let request_timeout = settings.retry.request_timeout();
    let metrics = Arc::new(Metrics::new());
    let admin_socket = settings.server.admin_socket.clone();
    // The settings the admin socket's commands run with, replaced on each reload.
    let (lent_settings, lent_watch) = watch::channel(Arc::new(settings.clone()));
    let running = match reload::running(settings, &metrics) {
        Ok(r) => r,
        Err(e) => {
            errln!("roster: {e}");
            return exit::CONFIG;
        }
    };

    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            errln!("roster: config key `server.listen`: cannot listen on {listen}: {e}");
            return exit::CONFIG;
        }
    };
    let addr = listener
        .local_addr()
        .map_or_else(|_| listen.to_string(), |a| a.to_string());
    // A state directory too deep for the default socket path keeps the daemon running
    // without one (the CLI then says the store is in use, as before); a configured path
    // that long is refused at load.
    let admin = match crate::admin::server::bind(&admin_socket).await {
        Ok(s) => Some(s),
        Err(e @ crate::admin::server::BindError::TooLong(_)) => {
            warn!(error = %e, "No admin socket: commands run beside this daemon cannot reach it.");
            None
        }
        Err(e) => {
            errln!("roster: {e}");
            return exit::CONFIG;
        }
    };

    // Leader election when [ha] is set; otherwise this process leads.
    let leadership = match &ha {
        Some(ha) => match Leadership::start(ha, request_timeout).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("roster: config key `ha`: {e}");
                return exit::CONFIG;
            }
        },
        None => Leadership::always(),
    };
    let mut leader_watch = leadership.watch();
    let leader_metrics = Arc::clone(&metrics);
    tokio::spawn(async move {
        loop {
            leader_metrics.set_leader(*leader_watch.borrow_and_update());
            if leader_watch.changed().await.is_err() {
                break;
            }
        }
    });

    let (trigger, shutdown) = shutdown::channel();
    let wake = Arc::new(Notify::new());
    let state = Arc::new(ServerState {
        metrics: Arc::clone(&metrics),
        store: store.clone(),
        ready: AtomicBool::new(true),
        wake: Arc::clone(&wake),
        trigger_token: std::sync::RwLock::new(trigger_token),
        leader: leadership.watch(),
    });
    let reloader = Reloader {
        path: config_path,
        metrics: Arc::clone(&metrics),
        server: Arc::clone(&state),
    };
    let reload = Arc::new(Notify::new());

    let abandon = trigger.sender();
    if let Err(e) = spawn_signal_task(
        trigger,
        Arc::clone(&wake),
        Arc::clone(&reload),
        Arc::clone(&state),
    ) {
        errln!("roster: cannot install signal handlers: {e}");
        return exit::CONFIG;
    }

    let (passes, requests) = mpsc::channel(crate::admin::server::MAX_QUEUED_PASSES);
    let shared = Arc::new(Shared {
        store: store.clone(),
        settings: lent_watch,
        passes,
        leader: leadership.watch(),
    });
    let admin_path = admin
        .as_ref()
        .map_or_else(|| "-".into(), |a| a.path().display().to_string());
    let admin_server = admin.map(|admin| {
        tokio::spawn(crate::admin::server::serve(
            admin,
            shared,
            commands,
            shutdown.clone(),
        ))
    });

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
    let identity = ha.as_ref().map_or("-", |h| h.identity.as_str());
    info!(addr = %addr, admin_socket = %admin_path, schedule = %schedule.expression, ha_identity = %identity, "Daemon started; serving /healthz /readyz /metrics.");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);

    let scheduler = tokio::spawn(scheduler_loop(
        running,
        store.clone(),
        Wakers { wake, reload },
        requests,
        shutdown.clone(),
        (metrics, reloader, lent_settings),
        leadership.clone(),
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
                    error!("In-flight vendor calls did not finish within the grace period; abandoning them (the next pass resumes by lookup).");
                    // The pass drops its calls and ends with its report stored.
                    abandon.abandon();
                    if tokio::time::timeout(Duration::from_secs(5), &mut scheduler).await.is_err() {
                        scheduler.abort();
                    }
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
    // With no vendor call left the standby may take over at once; after an unclean stop
    // it must wait for the Lease to expire instead.
    if code == exit::OK {
        leadership.release(Duration::from_secs(5)).await;
    } else {
        leadership.abandon();
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    if let Some(admin_server) = admin_server {
        let _ = tokio::time::timeout(Duration::from_secs(5), admin_server).await;
    }
    info!(exit_code = code, "Stopped.");
    code
}

fn spawn_signal_task(
    trigger: shutdown::Trigger,
    wake: Arc<Notify>,
    reload: Arc<Notify>,
    state: Arc<ServerState>,
) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { info!("SIGTERM received."); break; }
                _ = int.recv() => { info!("SIGINT received."); break; }
                _ = usr1.recv() => { info!("SIGUSR1 received: starting a pass."); wake.notify_one(); }
                _ = hup.recv() => {
                    info!("SIGHUP received: the config and its secrets are read again before the next pass.");
                    reload.notify_one();
                }
            }
        }
        state.ready.store(false, Ordering::SeqCst);
        trigger.trigger();
    });
    Ok(())
}

/// What wakes the scheduler between passes: a pass requested (SIGUSR1, `POST /trigger`)
/// and a reload requested (SIGHUP). Each keeps one request made during a pass.
struct Wakers {
    wake: Arc<Notify>,
    reload: Arc<Notify>,
}

impl Wakers {
    /// Whether a reload was requested (and not yet applied).
    fn reload_requested(&self) -> bool {
        futures::FutureExt::now_or_never(self.reload.notified()).is_some()
    }
}

/// Applies the reload that was requested: the new config, or (when it does not load) the
/// running one. The admin socket's commands take the new settings too.
fn apply_reload(running: &mut Running, reloader: &Reloader, lent: &watch::Sender<Arc<Settings>>) {
    if let Some(new) = reloader.reload(&running.ctx.settings) {
        *running = new;
        lent.send_replace(Arc::new(running.ctx.settings.clone()));
    }
}

/// Why the scheduler runs its next pass.
enum Next {
    /// A tick of the schedule, or a start or end date due (`reason`, and `true` for a
    /// full pass).
    Timer(&'static str, bool),
    /// SIGUSR1 or `POST /trigger`.
    OnDemand,
    /// `roster reconcile` over the admin socket: its options, and who waits for the report.
    Requested(PassRequest),
    /// This replica has just become the leader.
    NewLeader,
}

async fn scheduler_loop(
    mut running: Running,
    store: Store,
    wakers: Wakers,
    mut requests: mpsc::Receiver<PassRequest>,
    shutdown: Shutdown,
    (metrics, reloader, lent): (Arc<Metrics>, Reloader, watch::Sender<Arc<Settings>>),
    leadership: Leadership,
) {
    let wake = &wakers.wake;
    let mut stop = shutdown.clone();
    let mut leader = leadership.watch();
    // Without an election the process leads from the start and runs no extra pass.
    let mut term = if leadership.elected() {
        0
    } else {
        leadership.term()
    };
    // A term's full pass that did not complete (refused, stopped): the next pass is full.
    let mut full_pending = false;
    // A start or end date the last pass (of this daemon, or before it started) saw
    // coming: the daemon runs a pass then, even between ticks.
    let mut due: Option<DateTime<Utc>> = store
        .last_report::<crate::report::Report>()
        .ok()
        .flatten()
        .and_then(|r| r.next_due);
    loop {
        // A pass boundary: a reload asked for meanwhile applies now.
        if wakers.reload_requested() {
            apply_reload(&mut running, &reloader, &lent);
        }
        // A standby waits for the Lease; a new leader's store may be stale or empty, so
        // each term starts with a full pass (lookup-before-create: no duplicates).
        let new_term = !leadership.is_leader() || leadership.term() != term;
        if new_term {
            if !standby(&mut leader, wake, &mut requests, &mut stop).await {
                return;
            }
            if wakers.reload_requested() {
                apply_reload(&mut running, &reloader, &lent);
            }
            term = leadership.term();
            // A request made to the standby is not carried over.
            let _ = futures::FutureExt::now_or_never(wake.notified());
        }
        let now = Utc::now();
        let tick = running.schedules.next(now).map(|(at, _, full)| (at, full));
        let next = match next_wake(tick, due, now) {
            _ if new_term => {
                // The term's first pass is full; until one completes, every pass is.
                full_pending = true;
                Next::NewLeader
            }
            None => {
                warn!("The schedule has no future run; waiting for on-demand passes only.");
                tokio::select! {
                    _ = stop.wait() => return,
                    _ = wake.notified() => Next::OnDemand,
                    Some(r) = requests.recv() => Next::Requested(r),
                    _ = wakers.reload.notified() => {
                        apply_reload(&mut running, &reloader, &lent);
                        continue;
                    }
                    _ = leader.wait_for(|l| !*l) => continue,
                }
            }
            Some(next) => {
                let jitter_secs = running.schedules.jitter_secs;
                let jitter = if jitter_secs > 0 {
                    Duration::from_millis(rand::random_range(0..=jitter_secs * 1000))
                } else {
                    Duration::ZERO
                };
                let timer = if next.due { "date due" } else { "scheduled" };
                info!(next_run = %next.at, full = next.full, reason = timer, jitter_ms = jitter.as_millis() as u64, "Next pass scheduled.");
                tokio::select! {
                    _ = stop.wait() => return,
                    _ = tokio::time::sleep(next.wait + jitter) => Next::Timer(timer, next.full),
                    _ = wake.notified() => Next::OnDemand,
                    Some(r) = requests.recv() => Next::Requested(r),
                    // Idle is a pass boundary: apply it now (a new schedule counts from here).
                    _ = wakers.reload.notified() => {
                        apply_reload(&mut running, &reloader, &lent);
                        continue;
                    }
                    _ = leader.wait_for(|l| !*l) => continue,
                }
            }
        };
        if shutdown.is_triggered() {
            return;
        }
        let (reason, opts, reply) = match next {
            Next::NewLeader => (
                "new leader",
                PassOptions {
                    full: true,
                    ..PassOptions::default()
                },
                None,
            ),
            Next::Timer(reason, full) => (
                reason,
                PassOptions {
                    full: full || full_pending,
                    ..PassOptions::default()
                },
                None,
            ),
            Next::OnDemand => (
                "on demand",
                PassOptions {
                    full: full_pending,
                    ..PassOptions::default()
                },
                None,
            ),
            Next::Requested(request) if request.reply.is_closed() => {
                info!(
                    "A pass asked for over the admin socket was given up by its client; not run."
                );
                continue;
            }
            Next::Requested(request) => ("admin socket", request.options, Some(request.reply)),
        };
        let pass_stop = leadership.stop_on_loss(&shutdown);
        let ran = run_pass(
            &running,
            &store,
            pass_stop.signal(),
            &metrics,
            reason,
            &opts,
            reply,
        )
        .await;
        // Only a full pass over every vendor does what a term's full pass must.
        if opts.only.is_empty() && opts.full {
            full_pending &= !ran.completed;
        }
        // A pass over some vendors keeps the earlier moments it did not plan
        // (`pass::Pass::keep_known_due`), so its report's moment stands for all.
        due = ran.next_due;
    }
}

/// Waits until this replica leads (`true`) or shuts down (`false`). A pass requested
/// meanwhile (SIGUSR1, the admin socket) is not run: only the leader runs passes.
async fn standby(
    leader: &mut tokio::sync::watch::Receiver<bool>,
    wake: &Notify,
    requests: &mut mpsc::Receiver<PassRequest>,
    stop: &mut Shutdown,
) -> bool {
    loop {
        tokio::select! {
            _ = stop.wait() => return false,
            led = leader.wait_for(|l| *l) => return led.is_ok(),
            _ = wake.notified() => {
                info!("Pass requested, but this replica is a standby: only the leader runs passes.");
            }
            Some(r) = requests.recv() => {
                info!("Pass requested over the admin socket, but this replica is a standby: only the leader runs passes.");
                let _ = r.reply.send(Requested::Standby);
            }
        }
    }
}
