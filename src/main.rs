//! The `roster` binary: parse the command line, load the config, set up logging, run
//! the command, exit with its code.

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use roster::cli::{self, Cli, Command};
use roster::config::LogFormat;
use roster::report::exit;

// A pass allocates and frees millions of small strings (parse, map, compare). With
// glibc's malloc that was a quarter of a no-op pass's time, and freed memory stayed with
// the planning threads (1M people: 1.10 GiB peak vs 0.92 GiB with mimalloc).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    // Logging is configured by the config itself; what loading it warns about (a secret
    // file others may read) goes to stderr as plain lines.
    let early = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let settings = match tracing::subscriber::with_default(early, || cli::load_settings(&cli)) {
        Ok(s) => s,
        Err(e) => {
            roster::out::err(format_args!("roster: {e}\n"));
            std::process::exit(exit::CONFIG);
        }
    };
    // With [ha], every outbound call names this replica (before any client is built).
    if let Some(ha) = &settings.ha {
        roster::http::client::set_identity(&ha.identity);
    }
    // kube-client logs every failed request at ERROR; the HA elector (issue 17) logs
    // Lease failures itself, once per distinct error (RUST_LOG can turn kube's back on).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{},reqwest=warn,sled=warn,kube_client=off",
            settings.log.level
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match settings.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    // Every command but the daemon is one-shot, paid for as a whole process (a CronJob,
    // a systemd timer): one thread runs it (planning has its own threads, the file
    // source and the store's flushes use the blocking pool), and the store is left to
    // the exit rather than torn down (see `store::leave_to_exit`).
    let one_shot = !matches!(cli.command, Command::Run);
    let runtime = if one_shot {
        roster::store::leave_to_exit();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            roster::out::err(format_args!(
                "roster: cannot start the async runtime: {e}\n"
            ));
            std::process::exit(exit::CONFIG);
        }
    };
    let code = runtime.block_on(cli::run(cli, settings));
    std::process::exit(code);
}
