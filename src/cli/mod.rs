//! The command line: parsing (clap) and one function per command, each returning the
//! process exit code of `spec/interface.md`.
//!
//! Output discipline: results go to stdout (the table, or one JSON object with
//! `--json`); logs and errors go to stderr.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

mod check;
mod explain;
mod history;
mod rebuild;
mod served;
mod signals;
mod status;

pub use served::AdminHandler;

use history::parse_since;

use crate::admin::{self, Answer};
use crate::config::ConfigError;
use crate::out::{errln, outln, outp};
use crate::pass::{Context, PassOptions, run_once};
use crate::pass::{Hooks, NoHooks};
use crate::report::{Report, exit};
use crate::settings::{self, Settings};
use crate::store::{Store, StoreError};

#[derive(Debug, Parser)]
#[command(
    name = "roster",
    version,
    about = "Keeps vendor user lists in step with one source of truth."
)]
pub struct Cli {
    /// Config file (else $ROSTER_CONFIG, else ./roster.toml).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One full pass now: read the source, diff, push, record.
    Reconcile(ReconcileArgs),
    /// Every operation a pass would make; pushes nothing, writes nothing.
    Plan(PlanArgs),
    /// What the store knows: per vendor, linked people and the last pass.
    Status(JsonArg),
    /// Validates the config and the source, and checks each vendor's credentials.
    Check,
    /// The daemon: passes on `schedule` until SIGTERM/SIGINT; serves health and metrics.
    Run,
    /// One person: the source record, mapped fields and stored record per vendor, and
    /// what a pass would do and why. Calls no vendor, writes nothing.
    Explain(ExplainArgs),
    /// Rebuilds a lost or empty store by finding every person's account at each vendor
    /// by its matching key. Makes no write call to any vendor.
    RebuildState(JsonArg),
    /// The audit history of write calls.
    History(HistoryArgs),
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The person's id in the source.
    pub person: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// Only this person.
    #[arg(long)]
    pub person: Option<String>,
    /// Only this vendor.
    #[arg(long)]
    pub vendor: Option<String>,
    /// Only since then: an RFC 3339 time, a date (2026-11-01), or an age (90m, 24h, 7d).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Compute and print the plan without pushing or writing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Only this vendor (repeatable).
    #[arg(long = "vendor", value_name = "NAME")]
    pub vendors: Vec<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Go ahead even when a safety limit trips.
    #[arg(long)]
    pub force: bool,
    /// Also read every vendor's accounts and repair drift (changes made at the vendor).
    #[arg(long)]
    pub full: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[arg(long = "vendor", value_name = "NAME")]
    pub vendors: Vec<String>,
    #[arg(long)]
    pub json: bool,
    /// Also read every vendor's accounts and show the drift a full pass would repair.
    #[arg(long)]
    pub full: bool,
    /// Also list the changes start and end dates bring within this window (90m, 24h,
    /// 7d, 2w), each with the time it becomes due.
    #[arg(long, value_name = "WINDOW", value_parser = parse_window)]
    pub upcoming: Option<chrono::TimeDelta>,
}

/// A window ahead: a count and a unit (`s`, `m`, `h`, `d`, `w`), at most ten years.
///
/// # Errors
/// A message saying which forms are accepted (a clap value parser: clap prints it).
pub fn parse_window(s: &str) -> Result<chrono::TimeDelta, String> {
    use chrono::TimeDelta;
    let t = s.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, _)) => t.split_at(i),
        None => ("", ""),
    };
    let bad = || format!("`{s}` is not a window: a count and a unit, e.g. 90m, 24h, 7d or 2w");
    let n: i64 = num.parse().map_err(|_| bad())?;
    let window = match unit {
        "s" => TimeDelta::try_seconds(n),
        "m" => TimeDelta::try_minutes(n),
        "h" => TimeDelta::try_hours(n),
        "d" => TimeDelta::try_days(n),
        "w" => TimeDelta::try_weeks(n),
        _ => None,
    }
    .ok_or_else(bad)?;
    let most = TimeDelta::days(3650);
    if window <= TimeDelta::zero() || window > most {
        return Err(format!(
            "`{s}`: the window must be more than 0 and at most 3650d"
        ));
    }
    Ok(window)
}

#[derive(Debug, Args)]
pub struct JsonArg {
    #[arg(long)]
    pub json: bool,
}

/// Loads and validates the config named on the command line.
///
/// # Errors
/// Any config error; the caller exits 2.
pub fn load_settings(cli: &Cli) -> Result<Settings, ConfigError> {
    settings::load(&settings::config_path(cli.config.clone()))
}

/// Runs the command; returns the exit code.
pub async fn run(cli: Cli, settings: Settings) -> i32 {
    match cli.command {
        Command::Reconcile(a) => {
            let opts = PassOptions {
                dry_run: a.dry_run,
                force: a.force,
                full: a.full,
                only: a.vendors,
                upcoming: None,
            };
            pass(settings, opts, a.json).await
        }
        Command::Plan(a) => {
            let opts = PassOptions {
                dry_run: true,
                force: false,
                full: a.full,
                only: a.vendors,
                upcoming: a.upcoming,
            };
            pass(settings, opts, a.json).await
        }
        Command::Status(a) => status::command(&settings, a.json).await,
        Command::Check => check::command(settings).await,
        Command::Run => {
            crate::daemon::run(
                settings,
                settings::config_path(cli.config),
                Arc::new(AdminHandler),
            )
            .await
        }
        Command::Explain(a) => explain::command(settings, &a).await,
        Command::RebuildState(a) => rebuild::command(settings, a.json).await,
        Command::History(a) => history::command(&settings, &a).await,
    }
}

pub(super) fn config_error(e: &ConfigError) -> i32 {
    errln!("roster: {e}");
    exit::CONFIG
}

/// Opens the store; a read-only command on a state dir that does not exist yet uses an
/// empty one in memory rather than creating the directory.
fn open_store(settings: &Settings, read_only: bool) -> Result<Store, StoreError> {
    if read_only && !settings.state_dir.exists() {
        Store::temporary()
    } else {
        Store::open_with_cache(&settings.state_dir, settings.state_cache_mb)
    }
}

/// Opens the store, or, when a daemon holds it, has the daemon run `asked` and prints
/// its answer: `Err` is then the command's exit code. With no daemon answering, the
/// store's own error (exit 2), as without an admin socket.
pub(super) async fn open_or_ask(
    settings: &Settings,
    read_only: bool,
    asked: admin::Command,
) -> Result<Store, i32> {
    let locked = match open_store(settings, read_only) {
        Ok(store) => return Ok(store),
        Err(e @ StoreError::Locked { .. }) => e,
        Err(e) => {
            errln!("roster: {e}");
            return Err(exit::CONFIG);
        }
    };
    match admin::client::ask(settings, asked).await {
        Ok(Answer::Done {
            stdout,
            stderr,
            exit_code,
        }) => {
            outp!("{stdout}");
            crate::out::err(format_args!("{stderr}"));
            Err(exit_code)
        }
        Ok(Answer::Refused { message }) => {
            errln!("roster: {locked}");
            errln!(
                "roster: the daemon on {} refused: {message}",
                settings.server.admin_socket.display()
            );
            Err(exit::CONFIG)
        }
        Err(admin::client::AskError::NoDaemon { .. }) => {
            errln!("roster: {locked}");
            Err(exit::CONFIG)
        }
        Err(e) => {
            errln!("roster: {locked}");
            errln!("roster: {e}");
            Err(exit::CONFIG)
        }
    }
}

/// The store (or the daemon's answer to `asked`, see `open_or_ask`) and the built
/// connectors a command works with, or the exit code.
pub(super) async fn prepare(
    settings: Settings,
    read_only: bool,
    hooks: Arc<dyn Hooks>,
    asked: admin::Command,
) -> Result<(Store, Context), i32> {
    let store = open_or_ask(&settings, read_only, asked).await?;
    let ctx = Context::build(settings, hooks).map_err(|e| config_error(&e))?;
    Ok((store, ctx))
}

async fn pass(settings: Settings, opts: PassOptions, json_out: bool) -> i32 {
    if let Err(code) = known_vendors(&settings, &opts) {
        return code;
    }
    let hooks: Arc<dyn Hooks> =
        if !opts.dry_run && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            Arc::new(crate::progress::TerminalBars::new())
        } else {
            Arc::new(NoHooks)
        };
    let notifier = match crate::notify::Notifier::new(&settings.notify) {
        Ok(n) => n,
        Err(e) => {
            errln!("roster: notify: {e}");
            return exit::CONFIG;
        }
    };
    let grace = std::time::Duration::from_secs(settings.shutdown_grace_secs);
    let asked = admin::Command::Pass {
        dry_run: opts.dry_run,
        force: opts.force,
        full: opts.full,
        vendors: opts.only.clone(),
        json: json_out,
        upcoming_ms: opts.upcoming.map(|t| t.num_milliseconds()),
    };
    let (store, ctx) = match prepare(settings, opts.dry_run, hooks, asked).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    let interrupts = match signals::Interrupts::install(grace) {
        Ok(i) => i,
        Err(e) => {
            errln!("roster: cannot install signal handlers: {e}");
            return exit::CONFIG;
        }
    };
    let report = match run_once(&ctx, &store, &opts, &interrupts.shutdown).await {
        Ok(r) => r,
        Err(e) => {
            errln!("roster: {e}");
            return interrupts.exit_code().unwrap_or(exit::FAILED_OPS);
        }
    };
    print_report(&report, json_out);
    // After the report is out; delivery problems are logged and change no exit code.
    notifier.after_pass(&store, &report).await;
    // Interrupted: the partial report is printed, and the code says it was cut short.
    interrupts.exit_code().unwrap_or_else(|| report.exit_code())
}

/// Every `--vendor` must name a configured vendor (exit 2 otherwise).
fn known_vendors(settings: &Settings, opts: &PassOptions) -> Result<(), i32> {
    match opts
        .only
        .iter()
        .find(|v| !settings.vendors.contains_key(*v))
    {
        None => Ok(()),
        Some(unknown) => {
            // A flag, not a config key: said as the flag (exit 2, a usage error).
            errln!(
                "roster: --vendor {unknown}: no vendor named `{unknown}` in the config (have: {})",
                settings
                    .vendors
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Err(exit::CONFIG)
        }
    }
}

fn print_report(report: &Report, json_out: bool) {
    if json_out {
        match serde_json::to_string_pretty(report) {
            Ok(s) => outln!("{s}"),
            Err(e) => errln!("roster: cannot encode the report: {e}"),
        }
    } else {
        outp!("{}", report.table());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upcoming_windows_are_a_count_and_a_unit() {
        assert_eq!(parse_window("7d"), Ok(chrono::TimeDelta::days(7)));
        assert_eq!(parse_window("90m"), Ok(chrono::TimeDelta::minutes(90)));
        assert_eq!(parse_window("2w"), Ok(chrono::TimeDelta::weeks(2)));
        for bad in [
            "",
            "7",
            "d",
            "7y",
            "-1d",
            "0h",
            "3651d",
            "99999999999999999w",
            "7é",
        ] {
            assert!(parse_window(bad).is_err(), "{bad}");
        }
    }
}
