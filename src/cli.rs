//! The command line: parsing (clap) and one function per command, each returning the
//! process exit code of `spec/interface.md`.
//!
//! Output discipline: results go to stdout (the table, or one JSON object with
//! `--json`); logs and errors go to stderr.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::config::{self, ConfigError, Settings};
use crate::report::{Report, exit};
use crate::shutdown::Shutdown;
use crate::store::{RecordState, Store};
use crate::sync::{Context, PassOptions, run_once};

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

#[derive(Debug, Args)]
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

/// `--since`: an RFC 3339 time, a date (midnight UTC), or an age counted back from now.
///
/// # Errors
/// A message saying which forms are accepted.
pub fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    use chrono::{DateTime, NaiveDate, Utc};
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map_or_else(Utc::now, |t| t.and_utc()));
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a time (2026-11-01T08:00:00Z), a date (2026-11-01) or an age (90m, 24h, 7d)"))?;
    let age = match unit {
        "s" => chrono::Duration::seconds(n),
        "m" => chrono::Duration::minutes(n),
        "h" => chrono::Duration::hours(n),
        "d" => chrono::Duration::days(n),
        _ => return Err(format!("`{s}`: an age ends in s, m, h or d")),
    };
    Ok(Utc::now() - age)
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
    config::load(&config::config_path(cli.config.clone()))
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
            };
            pass(settings, opts, a.json).await
        }
        Command::Plan(a) => {
            let opts = PassOptions {
                dry_run: true,
                force: false,
                full: a.full,
                only: a.vendors,
            };
            pass(settings, opts, a.json).await
        }
        Command::Status(a) => status(&settings, a.json),
        Command::Check => check(settings).await,
        Command::Run => crate::daemon::run(settings).await,
        Command::Explain(a) => explain(settings, &a).await,
        Command::RebuildState(a) => rebuild_state(settings, a.json).await,
        Command::History(a) => history(&settings, &a),
    }
}

fn config_error(e: &ConfigError) -> i32 {
    eprintln!("roster: {e}");
    exit::CONFIG
}

/// Opens the store; a read-only command on a state dir that does not exist yet uses an
/// empty one in memory rather than creating the directory.
fn open_store(settings: &Settings, read_only: bool) -> Result<Store, i32> {
    let result = if read_only && !settings.state_dir.exists() {
        Store::temporary()
    } else {
        Store::open_with_cache(&settings.state_dir, settings.state_cache_mb)
    };
    result.map_err(|e| {
        eprintln!("roster: {e}");
        exit::CONFIG
    })
}

/// The store and the built connectors a command works with, or the exit code.
fn prepare(settings: Settings, read_only: bool) -> Result<(Store, Context), i32> {
    let store = open_store(&settings, read_only)?;
    let ctx = Context::build(settings).map_err(|e| config_error(&e))?;
    Ok((store, ctx))
}

async fn pass(settings: Settings, opts: PassOptions, json_out: bool) -> i32 {
    if let Some(unknown) = opts
        .only
        .iter()
        .find(|v| !settings.vendors.contains_key(*v))
    {
        return config_error(&ConfigError::invalid(
            "--vendor",
            format!(
                "no vendor named `{unknown}` in the config (have: {})",
                settings
                    .vendors
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let (store, mut ctx) = match prepare(settings, opts.dry_run) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let notifier = match crate::notify::Notifier::new(&ctx.settings.notify) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("roster: notify: {e}");
            return exit::CONFIG;
        }
    };
    if !opts.dry_run && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ctx.on_progress = Some(crate::progress::terminal_bars());
    }
    let report = match run_once(&ctx, &store, &opts, &Shutdown::never()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("roster: {e}");
            return exit::FAILED_OPS;
        }
    };
    print_report(&report, json_out);
    // After the report is out; delivery problems are logged and change no exit code.
    notifier.after_pass(&store, &report).await;
    report.exit_code()
}

fn print_report(report: &Report, json_out: bool) {
    if json_out {
        match serde_json::to_string_pretty(report) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("roster: cannot encode the report: {e}"),
        }
    } else {
        print!("{}", report.table());
    }
}

fn status(settings: &Settings, json_out: bool) -> i32 {
    if !settings.state_dir.exists() {
        if json_out {
            println!(
                "{}",
                json!({ "state_dir": settings.state_dir, "vendors": {}, "last_run": null })
            );
        } else {
            println!(
                "no state yet at {} (no pass has run)",
                settings.state_dir.display()
            );
        }
        return exit::OK;
    }
    let store = match open_store(settings, false) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut names: Vec<String> = settings.vendors.keys().cloned().collect();
    for n in store.vendors() {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let mut vendors = serde_json::Map::new();
    for name in names {
        let records = match store.load(&name) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("roster: {e}");
                return exit::FAILED_OPS;
            }
        };
        let count = |s: RecordState| records.values().filter(|r| r.state == s).count();
        vendors.insert(
            name.clone(),
            json!({
                "linked": records.len(),
                "active": count(RecordState::Active),
                "deactivated": count(RecordState::Deactivated),
                "pending_create": count(RecordState::Creating),
                "configured": settings.vendors.contains_key(&name),
            }),
        );
    }
    let last: Option<Report> = store.last_report().unwrap_or_else(|e| {
        eprintln!("roster: {e}");
        None
    });
    let last_run = last.as_ref().map(|r| {
        json!({
            "started_at": r.started_at,
            "finished_at": r.finished_at,
            "outcome": match r.exit_code() { 0 => "ok", 1 => "failed_operations", _ => "refused" },
            "refused": r.refused,
            "failed": r.vendors.values().map(|v| v.failed).sum::<usize>(),
        })
    });
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "state_dir": settings.state_dir,
                "vendors": vendors,
                "last_run": last_run,
            }))
            .unwrap_or_default()
        );
    } else {
        println!("state: {}", settings.state_dir.display());
        println!(
            "{:<14} {:>8} {:>8} {:>12} {:>15}",
            "vendor", "linked", "active", "deactivated", "pending_create"
        );
        for (name, v) in &vendors {
            let n = |k: &str| v[k].as_u64().unwrap_or(0);
            println!(
                "{:<14} {:>8} {:>8} {:>12} {:>15}",
                name,
                n("linked"),
                n("active"),
                n("deactivated"),
                n("pending_create")
            );
        }
        match &last {
            None => println!("last run: none"),
            Some(r) => {
                let when = r.finished_at.map(|t| t.to_rfc3339()).unwrap_or_default();
                match &r.refused {
                    Some(why) => println!("last run: {when} refused: {why}"),
                    None => println!(
                        "last run: {when} ({} failed operations)",
                        r.vendors.values().map(|v| v.failed).sum::<usize>()
                    ),
                }
            }
        }
    }
    exit::OK
}

async fn check(settings: Settings) -> i32 {
    let ctx = match Context::build(settings) {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    println!("config: ok");
    let mut code = exit::OK;
    match ctx.source.check().await {
        Ok(summary) => println!("source: ok ({}): {summary}", ctx.source.describe()),
        Err(e) => {
            println!("source: FAILED ({}): {e}", ctx.source.describe());
            code = exit::REFUSED;
        }
    }
    for (settings, vendor) in &ctx.vendors {
        match vendor.check().await {
            Ok(()) => println!("vendor {}: ok", settings.name),
            Err(e) => {
                println!("vendor {}: FAILED: {e}", settings.name);
                if code == exit::OK {
                    code = exit::FAILED_OPS;
                }
            }
        }
    }
    code
}

async fn explain(settings: Settings, args: &ExplainArgs) -> i32 {
    let (store, ctx) = match prepare(settings, true) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let snapshot = match ctx.source.fetch().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("roster: {e}");
            return exit::REFUSED;
        }
    };
    let id = crate::model::PersonId(args.person.trim().to_string());
    let mut stored = std::collections::BTreeMap::new();
    for (vs, _) in &ctx.vendors {
        match store.get(&vs.name, &id) {
            Ok(r) => {
                stored.insert(vs.name.clone(), r);
            }
            Err(e) => {
                eprintln!("roster: {e}");
                return exit::FAILED_OPS;
            }
        }
    }
    let e = crate::explain::explain(&ctx, &id, &snapshot, &stored);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
        return exit::OK;
    }
    println!("person {}: {} in the source", e.person, e.source.status);
    if let Some(p) = &e.source.record {
        let show = |v: &Option<Box<str>>| v.as_deref().unwrap_or("-").to_string();
        println!(
            "  name {} {}, email {}, username {}, phone {}, active {}, groups [{}]",
            show(&p.first_name),
            show(&p.last_name),
            show(&p.email),
            show(&p.username),
            show(&p.phone),
            p.active,
            p.groups.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        for (k, v) in &p.attributes {
            println!("  attribute {k} = {v}");
        }
    }
    for err in &e.source.errors {
        println!("  invalid: {err}");
    }
    for (name, v) in &e.vendors {
        println!("{name}: wanted {}", v.wanted);
        if let Some(f) = &v.fields {
            let shown: Vec<String> = f.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("  fields: {}", shown.join(", "));
        }
        match &v.stored {
            Some(r) => println!(
                "  stored: {:?}, vendor id {}, last acknowledged {}",
                r.state,
                r.remote_id
                    .as_deref()
                    .unwrap_or("(unknown: create not confirmed)"),
                r.updated_at.to_rfc3339()
            ),
            None => println!("  stored: nothing (not linked)"),
        }
        match &v.operation {
            Some(op) if op.fields.is_empty() => println!("  next pass: {}", op.op),
            Some(op) => println!("  next pass: {} [{}]", op.op, op.fields.join(", ")),
            None => println!("  next pass: nothing"),
        }
        println!("  why: {}", v.why);
    }
    exit::OK
}

async fn rebuild_state(settings: Settings, json_out: bool) -> i32 {
    let (store, ctx) = match prepare(settings, false) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let snapshot = match ctx.source.fetch().await {
        Ok(s) if !s.people.is_empty() => s,
        Ok(_) => {
            eprintln!("roster: the source has no valid records; nothing to rebuild from");
            return exit::REFUSED;
        }
        Err(e) => {
            eprintln!("roster: {e}");
            return exit::REFUSED;
        }
    };
    let report = match crate::rebuild::rebuild(&ctx, &store, &snapshot).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("roster: {e}");
            return exit::FAILED_OPS;
        }
    };
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        println!(
            "{:<14} {:>8} {:>14} {:>10} {:>7}",
            "vendor", "linked", "already_known", "not_found", "failed"
        );
        for (name, v) in &report.vendors {
            println!(
                "{:<14} {:>8} {:>14} {:>10} {:>7}",
                name, v.linked, v.already_known, v.not_found, v.failed
            );
            for e in &v.errors {
                println!("  {name}: lookup {} failed: {}", e.person, e.message);
            }
        }
    }
    if report.vendors.values().any(|v| v.failed > 0) {
        exit::FAILED_OPS
    } else {
        exit::OK
    }
}

fn history(settings: &Settings, args: &HistoryArgs) -> i32 {
    if !settings.state_dir.exists() {
        println!("{}", if args.json { "[]" } else { "no history yet" });
        return exit::OK;
    }
    let store = match open_store(settings, false) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let filter = crate::store::HistoryFilter {
        person: args.person.clone(),
        vendor: args.vendor.clone(),
        since: args.since,
    };
    let entries = match store.history(&filter) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("roster: {e}");
            return exit::FAILED_OPS;
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&entries).unwrap_or_default()
        );
        return exit::OK;
    }
    for e in &entries {
        let fields = if e.fields.is_empty() {
            String::new()
        } else {
            format!(" [{}]", e.fields.join(", "))
        };
        let message = e
            .message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        println!(
            "{} {} {} {} {}{fields}{message}",
            e.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            e.vendor,
            e.person,
            e.op,
            e.outcome
        );
    }
    exit::OK
}
