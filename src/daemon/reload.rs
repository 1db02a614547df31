//! SIGHUP: the config file and its secrets read again, applied at the next pass boundary.
//!
//! Why at a boundary: a pass holds its `Context` (connectors, source, secrets) from start
//! to end, so a pass never mixes two configs; the next one starts with the new. A config
//! that does not load (or whose connectors cannot be built) changes nothing: the error,
//! naming the key, is logged and the running config stays. Settings bound to resources
//! opened at start — the store (`state_dir`, `state_cache_mb`), the listening socket
//! (`server.listen`) and the admin socket (`server.admin_socket`), the Lease election (`[ha]`), logging (`log_format`, `log_level`) and
//! `shutdown_grace_secs` — keep their running values; a change to them is logged as
//! needing a restart.

use std::path::PathBuf;
use std::sync::Arc;

use tracing::{error, info, warn};

use super::metrics::Metrics;
use super::server::ServerState;
use super::{Schedules, schedule};
use crate::config::ConfigError;
use crate::notify::Notifier;
use crate::pass::{Both, Context};
use crate::progress::LogLines;
use crate::settings::{self, Settings};

/// What the scheduler runs with; replaced as a whole by a reload.
pub(super) struct Running {
    pub ctx: Context,
    pub schedules: Schedules,
    pub notifier: Notifier,
}

/// Builds what the daemon runs with from `settings` (at start and on each reload).
///
/// # Errors
/// The config error (naming its key) when `settings` cannot be run.
pub(super) fn running(settings: Settings, metrics: &Arc<Metrics>) -> Result<Running, ConfigError> {
    let Some(schedule) = settings.schedule.clone() else {
        return Err(ConfigError::invalid(
            "schedule",
            "is required for `roster run`",
        ));
    };
    let notifier = Notifier::new(&settings.notify)
        .map_err(|e| ConfigError::invalid("notify", e.to_string()))?;
    let schedules = Schedules {
        regular: schedule.cron,
        full: settings.full_schedule.clone().map(|s| s.cron),
        jitter_secs: settings.schedule_jitter_secs,
    };
    let progress_every = std::time::Duration::from_secs(settings.progress_log_secs);
    let hooks = Both(Arc::clone(metrics), LogLines::new(progress_every));
    let vendors: Vec<String> = settings.vendors.keys().cloned().collect();
    let ctx = Context::build(settings, Arc::new(hooks))?;
    metrics.vendors(vendors.iter().map(String::as_str));
    if let Some(gap) = schedule::longest_gap(&schedules.regular, chrono::Utc::now()) {
        metrics.schedule_interval(gap);
    }
    Ok(Running {
        ctx,
        schedules,
        notifier,
    })
}

/// Reloads on request: holds the config's path and what a reload must leave alone.
pub(super) struct Reloader {
    pub path: PathBuf,
    pub metrics: Arc<Metrics>,
    pub server: Arc<ServerState>,
}

impl Reloader {
    /// Reads the config again and, when it loads, returns what to run from now on.
    /// `None` (the running config stays) when it does not; the error is logged.
    pub fn reload(&self, current: &Settings) -> Option<Running> {
        let mut new = match settings::load(&self.path) {
            Ok(s) => s,
            Err(e) => {
                error!(error = %e, "Config reload (SIGHUP) failed; keeping the running config.");
                return None;
            }
        };
        let fixed = keep_fixed(current, &mut new);
        let token = new.server.trigger_token.clone();
        let vendors: Vec<String> = new.vendors.keys().cloned().collect();
        let running = match running(new, &self.metrics) {
            Ok(r) => r,
            Err(e) => {
                error!(error = %e, "Config reload (SIGHUP) failed; keeping the running config.");
                return None;
            }
        };
        self.server.set_trigger_token(token);
        if !fixed.is_empty() {
            warn!(
                keys = %fixed.join(", "),
                "Config reloaded, but these settings only change with a restart; they keep \
                 their running values."
            );
        }
        info!(
            vendors = %vendors.join(", "),
            "Config and secrets reloaded (SIGHUP); the next pass uses them."
        );
        Some(running)
    }
}

/// Copies into `new` the running values of the settings that cannot change without a
/// restart, and names those that differed (PURE).
pub(super) fn keep_fixed(running: &Settings, new: &mut Settings) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut keep = |key: &'static str, differs: bool| {
        if differs {
            changed.push(key);
        }
    };
    keep("state_dir", running.state_dir != new.state_dir);
    keep(
        "state_cache_mb",
        running.state_cache_mb != new.state_cache_mb,
    );
    keep("server.listen", running.server.listen != new.server.listen);
    keep(
        "server.admin_socket",
        running.server.admin_socket != new.server.admin_socket,
    );
    keep("ha", running.ha != new.ha);
    keep("log_format", running.log.format != new.log.format);
    keep("log_level", running.log.level != new.log.level);
    keep(
        "shutdown_grace_secs",
        running.shutdown_grace_secs != new.shutdown_grace_secs,
    );
    new.state_dir.clone_from(&running.state_dir);
    new.state_cache_mb = running.state_cache_mb;
    new.server.listen = running.server.listen;
    new.server
        .admin_socket
        .clone_from(&running.server.admin_socket);
    new.ha.clone_from(&running.ha);
    new.log = running.log.clone();
    new.shutdown_grace_secs = running.shutdown_grace_secs;
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Settings {
        settings::load_str(text, std::path::Path::new("/tmp"), Vec::new()).expect("config")
    }

    const BASE: &str = r#"
        state_dir = "/var/lib/roster"
        schedule = "0 */15 * * * *"
        [source]
        type = "file"
        path = "people.json"
        [vendors.motive]
        type = "motive"
        api_key = "k"
    "#;

    #[test]
    fn restart_only_settings_keep_their_running_values_and_are_named() {
        let running = load(BASE);
        let mut same = load(&format!("schedule_jitter_secs = 9\n{BASE}"));
        assert!(
            keep_fixed(&running, &mut same).is_empty(),
            "a jitter change applies"
        );
        assert_eq!(same.schedule_jitter_secs, 9);

        let mut new = load(&format!(
            "log_level = \"debug\"\nshutdown_grace_secs = 5\n{}\n[server]\nlisten = \"0.0.0.0:1\"\n",
            BASE.replace("/var/lib/roster", "/srv/other")
        ));
        let changed = keep_fixed(&running, &mut new);
        assert_eq!(
            changed,
            [
                "state_dir",
                "server.listen",
                // Its default is in state_dir.
                "server.admin_socket",
                "log_level",
                "shutdown_grace_secs"
            ]
        );
        assert_eq!(new.state_dir, running.state_dir);
        assert_eq!(new.server.listen, running.server.listen);
        assert_eq!(new.log.level, running.log.level);
        assert_eq!(new.shutdown_grace_secs, running.shutdown_grace_secs);
    }
}
