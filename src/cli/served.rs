//! The commands a running daemon answers over the admin socket (`crate::admin`): the
//! same code as on the command line, run against the daemon's open store, with what it
//! prints captured (`crate::out::capture`) and sent back with its exit code. So the
//! output and exit codes are those of the command run without a daemon, by construction.
//!
//! - `status`, `history`: read the daemon's store.
//! - `explain`, `plan`, `reconcile --dry-run`: a `Context` of their own, built from the
//!   daemon's settings with no hooks (as the CLI builds one; the daemon's metrics do not
//!   count them), against the daemon's store; they write nothing, so they may run beside
//!   a pass.
//! - `reconcile`: queued to the daemon's scheduler, which runs it after the pass in
//!   progress (passes never overlap), as one of its own passes (metrics, `[[notify]]`);
//!   the report comes back. A standby (`[ha]`) runs none and says so.
//! - `rebuild-state`: refused; it needs the store to itself.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{ExplainArgs, HistoryArgs, explain, history, known_vendors, print_report, status};
use crate::admin::server::{Handler, PassRequest, Requested, Shared as Lent};
use crate::admin::{Answer, Command};
use crate::out::{Captured, capture};
use crate::pass::{Context, NoHooks, PassOptions, run_once};
use crate::report::exit;
use crate::shutdown::Shutdown;

/// The CLI's commands, as the daemon's admin socket handler.
pub struct AdminHandler;

impl Handler for AdminHandler {
    fn handle(self: Arc<Self>, command: Command, lent: Arc<Lent>) -> BoxFuture<'static, Answer> {
        Box::pin(async move {
            let (exit_code, out) = run(command, &lent).await;
            Answer::Done {
                stdout: out.stdout,
                stderr: out.stderr,
                exit_code,
            }
        })
    }
}

/// Runs `command` in the daemon; returns its exit code and what it printed.
async fn run(command: Command, lent: &Arc<Lent>) -> (i32, Captured) {
    match command {
        Command::Status { json } => {
            let lent = Arc::clone(lent);
            blocking(move || status::show(&lent.settings(), &lent.store, json, lent.role())).await
        }
        Command::History {
            person,
            vendor,
            since,
            json,
        } => {
            let lent = Arc::clone(lent);
            let args = HistoryArgs {
                person,
                vendor,
                since,
                json,
            };
            blocking(move || history::show(&lent.store, &args)).await
        }
        Command::Explain { person, json } => {
            capture(async {
                let ctx = match own_context(lent) {
                    Ok(c) => c,
                    Err(code) => return code,
                };
                explain::answer(&ctx, &lent.store, &ExplainArgs { person, json }).await
            })
            .await
        }
        Command::Pass {
            dry_run,
            force,
            full,
            vendors,
            json,
            upcoming_ms,
        } => {
            let opts = PassOptions {
                dry_run,
                force,
                full,
                only: vendors,
                upcoming: upcoming_ms.map(chrono::TimeDelta::milliseconds),
            };
            capture(async {
                if let Err(code) = known_vendors(&lent.settings(), &opts) {
                    return code;
                }
                if opts.dry_run {
                    plan(lent, &opts, json).await
                } else {
                    requested_pass(lent, opts, json).await
                }
            })
            .await
        }
        Command::RebuildState => (
            exit::CONFIG,
            Captured {
                stdout: String::new(),
                stderr: format!(
                    "roster: rebuild-state needs the state directory {} to itself, and the \
                     running daemon (`roster run`, pid {}) holds it: stop the daemon, run \
                     rebuild-state, then start the daemon again\n",
                    lent.settings().state_dir.display(),
                    std::process::id()
                ),
            },
        ),
    }
}

/// A store-reading command on the blocking pool (a status over many people reads them
/// all), its output captured there.
async fn blocking(command: impl FnOnce() -> i32 + Send + 'static) -> (i32, Captured) {
    tokio::task::spawn_blocking(move || crate::out::capture_sync(command))
        .await
        .unwrap_or_else(|e| {
            (
                exit::FAILED_OPS,
                Captured {
                    stdout: String::new(),
                    stderr: format!("roster: the command failed in the daemon: {e}\n"),
                },
            )
        })
}

/// A context like the one the CLI builds for itself, from the daemon's settings.
fn own_context(lent: &Lent) -> Result<Context, i32> {
    Context::build((*lent.settings()).clone(), Arc::new(NoHooks))
        .map_err(|e| super::config_error(&e))
}

async fn plan(lent: &Lent, opts: &PassOptions, json: bool) -> i32 {
    let ctx = match own_context(lent) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match run_once(&ctx, &lent.store, opts, &Shutdown::never()).await {
        Ok(report) => {
            print_report(&report, json);
            report.exit_code()
        }
        Err(e) => {
            crate::out::errln!("roster: {e}");
            exit::FAILED_OPS
        }
    }
}

/// Queues a pass to the daemon's scheduler and prints its report.
async fn requested_pass(lent: &Lent, options: PassOptions, json: bool) -> i32 {
    let standby = || {
        crate::out::errln!(
            "roster: this replica is a standby: only the leader (the holder of the Lease) \
             runs passes; nothing was read or pushed. Run the command on the leader."
        );
        exit::CONFIG
    };
    if !*lent.leader.borrow() {
        return standby();
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    if let Err(e) = lent.passes.try_send(PassRequest { options, reply }) {
        let why = match e {
            tokio::sync::mpsc::error::TrySendError::Full(_) => {
                "too many passes are already waiting"
            }
            tokio::sync::mpsc::error::TrySendError::Closed(_) => "the daemon is shutting down",
        };
        crate::out::errln!("roster: no pass was started: {why}");
        return exit::CONFIG;
    }
    match answer.await {
        Ok(Requested::Ran(Ok(report))) => {
            print_report(&report, json);
            report.exit_code()
        }
        Ok(Requested::Ran(Err(e))) => {
            crate::out::errln!("roster: {e}");
            exit::FAILED_OPS
        }
        Ok(Requested::Standby) => standby(),
        Ok(Requested::NotStarted) => {
            crate::out::errln!(
                "roster: the pass was not started: the daemon is shutting down or this replica \
                 no longer leads; nothing was pushed"
            );
            exit::CONFIG
        }
        Err(_) => {
            crate::out::errln!(
                "roster: the daemon is shutting down; the pass asked for was not started and nothing was pushed"
            );
            exit::CONFIG
        }
    }
}
