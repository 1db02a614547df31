//! The whole configuration: the TOML file with the `ROSTER__…` environment layered over
//! it, parsed into typed `Settings` — the top-level keys here, `[source]` by its kind
//! (`source::SourceConfig`), each `[vendors.NAME]` by its kind (`vendor::VendorSettings`).
//! Every mistake is a `ConfigError` naming the key; nothing opens the store, reads the
//! source or calls a vendor.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::config::common::bounded;
use crate::config::parse::{self, Table};
use crate::config::{
    ConfigError, HistorySettings, LogFormat, RetrySettings, Safety, Secret, Secrets,
};
use crate::plan::DateRules;
use crate::source::SourceConfig;
use crate::vendor::VendorSettings;

/// The environment prefix: `ROSTER__VENDORS__MOTIVE__TOKEN` overrides `vendors.motive.token`.
pub const ENV_PREFIX: &str = "ROSTER";

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the sled store lives.
    pub state_dir: PathBuf,
    /// sled's page cache, in MiB: how much of the store stays in memory between reads.
    pub state_cache_mb: u64,
    /// The daemon's schedule, parsed at load so a bad expression never reaches the loop.
    pub schedule: Option<Schedule>,
    /// A random delay of up to this many seconds before each scheduled pass, so a fleet
    /// of daemons on the same schedule does not hit a vendor at the same instant.
    pub schedule_jitter_secs: u64,
    /// How long in-flight vendor calls may take to finish after SIGTERM/SIGINT.
    pub shutdown_grace_secs: u64,
    /// The daemon's schedule for full passes (`reconcile --full`: drift repair), if any.
    pub full_schedule: Option<Schedule>,
    /// In the daemon, a progress log line per vendor at most this often during a pass.
    pub progress_log_secs: u64,
    pub server: ServerSettings,
    pub log: LogSettings,
    pub safety: Safety,
    pub retry: RetrySettings,
    pub history: HistorySettings,
    pub source: SourceConfig,
    pub vendors: BTreeMap<String, VendorSettings>,
    /// `[[notify]]`: where alerts about failing passes go.
    pub notify: Vec<crate::notify::TargetSettings>,
    /// `[ha]`: leader election on a Kubernetes Lease; `None` = no election.
    pub ha: Option<crate::ha::HaSettings>,
    /// `[lifecycle]`: the time zone of date-only start and end dates, and the day counts
    /// every vendor uses unless its table has its own (each vendor's resolved rules are
    /// in `VendorSettings::dates`).
    pub lifecycle: DateRules,
    /// Relative paths in the config are relative to this directory.
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub expression: String,
    pub cron: cron::Schedule,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Bearer token for `POST /trigger`; `None` disables the endpoint.
    pub trigger_token: Option<Secret>,
    /// The daemon's admin socket (`server.admin_socket`, default `STATE_DIR/admin.sock`).
    pub admin_socket: PathBuf,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub level: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_dir: Option<PathBuf>,
    state_cache_mb: Option<u64>,
    schedule: Option<String>,
    schedule_jitter_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    full_schedule: Option<String>,
    progress_log_secs: Option<u64>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    safety: Safety,
    #[serde(default)]
    retry: RetrySettings,
    #[serde(default)]
    history: HistorySettings,
    #[serde(default)]
    lifecycle: RawLifecycle,
    source: Option<Table>,
    #[serde(default)]
    vendors: BTreeMap<String, Table>,
    /// `[[notify]]`: a list of tables (checked in `notify::config`).
    notify: Option<config::Value>,
    /// `[ha]` (checked in `ha::HaSettings::parse`).
    ha: Option<Table>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    trigger_token: Option<Secret>,
    trigger_token_file: Option<PathBuf>,
    admin_socket: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLifecycle {
    /// An IANA zone name; date-only start and end dates are days there.
    time_zone: Option<String>,
    provision_days_before_start: Option<u64>,
    end_grace_days: Option<u64>,
}

impl RawLifecycle {
    fn check(self) -> Result<DateRules, ConfigError> {
        let time_zone = match self.time_zone {
            None => chrono_tz::Tz::UTC,
            Some(name) => name.trim().parse().map_err(|_| {
                ConfigError::invalid(
                    "lifecycle.time_zone",
                    format!("`{name}` is not an IANA time zone name (e.g. `Europe/Berlin`, `UTC`)"),
                )
            })?,
        };
        let days = |key: &str, n: Option<u64>| {
            bounded(key, n.unwrap_or(0), 0..=crate::vendor::MAX_DAYS, " days")
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        };
        Ok(DateRules {
            time_zone,
            provision_days_before_start: days(
                "lifecycle.provision_days_before_start",
                self.provision_days_before_start,
            )?,
            end_grace_days: days("lifecycle.end_grace_days", self.end_grace_days)?,
        })
    }
}

/// Where the config file comes from: `--config`, else `$ROSTER_CONFIG`, else `./roster.toml`.
pub fn config_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("ROSTER_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("roster.toml"))
}

/// Loads the file at `path` (which must exist) layered under `ROSTER__…` variables.
///
/// # Errors
/// Any unreadable file, parse error, unknown key, wrong type or invalid value.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        message: error.to_string(),
    })?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    load_str(&text, &base_dir, std::env::vars())
}

/// Loads config text with the given environment (tests pass their own).
///
/// # Errors
/// As [`load`].
pub fn load_str(
    toml_text: &str,
    base_dir: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, ConfigError> {
    // `$HOSTNAME` (a pod's name) is `[ha]`'s default identity.
    let mut hostname = None;
    let env: config::Map<String, String> = env
        .into_iter()
        .filter(|(k, v)| {
            if k == "HOSTNAME" && !v.is_empty() {
                hostname = Some(v.clone());
            }
            k.starts_with(&format!("{ENV_PREFIX}__"))
        })
        .collect();
    let tree = config::Config::builder()
        .add_source(config::File::from_str(toml_text, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                // Every value stays text; each key's type turns it into what it needs
                // (see `config::parse`).
                .try_parsing(false)
                .source(Some(env)),
        )
        .build()
        .map_err(|error| ConfigError::Parse(error.to_string()))?;
    let root: Table = tree
        .try_deserialize()
        .map_err(|error| ConfigError::Parse(error.to_string()))?;
    let raw: RawConfig = parse::parse("", parse::value(root))?;
    validate(raw, base_dir, hostname.as_deref())
}

fn validate(
    raw: RawConfig,
    base_dir: &Path,
    hostname: Option<&str>,
) -> Result<Settings, ConfigError> {
    let state_dir = raw.state_dir.unwrap_or_else(|| "/var/lib/roster".into());
    if state_dir.as_os_str().is_empty() {
        return Err(ConfigError::invalid(
            "state_dir",
            "is empty (give the directory of the store)",
        ));
    }
    let state_cache_mb = bounded(
        "state_cache_mb",
        raw.state_cache_mb.unwrap_or(crate::store::DEFAULT_CACHE_MB),
        1..=1_048_576,
        " MiB",
    )?;
    let schedule_jitter_secs = bounded(
        "schedule_jitter_secs",
        raw.schedule_jitter_secs.unwrap_or(0),
        0..=86_400,
        " s",
    )?;
    let shutdown_grace_secs = bounded(
        "shutdown_grace_secs",
        raw.shutdown_grace_secs.unwrap_or(30),
        0..=86_400,
        " s",
    )?;
    let progress_log_secs = bounded(
        "progress_log_secs",
        raw.progress_log_secs.unwrap_or(30),
        1..=86_400,
        " s",
    )?;
    raw.safety.check()?;
    raw.retry.check()?;
    raw.history.check()?;
    let lifecycle = raw.lifecycle.check()?;

    let full_schedule = raw
        .full_schedule
        .map(|e| parse_schedule("full_schedule", e))
        .transpose()?;
    let schedule = raw
        .schedule
        .map(|e| parse_schedule("schedule", e))
        .transpose()?;

    let listen = raw.server.listen.as_deref().unwrap_or("127.0.0.1:9464");
    let listen = listen.parse().map_err(|_| {
        ConfigError::invalid(
            "server.listen",
            format!("`{listen}` is not an ip:port address"),
        )
    })?;
    let trigger_token = Secrets {
        prefix: "server".into(),
        base_dir,
    }
    .optional(
        "trigger_token",
        raw.server.trigger_token,
        raw.server.trigger_token_file,
    )?;
    if trigger_token
        .as_ref()
        .is_some_and(|t| t.expose().chars().count() < 16)
    {
        return Err(ConfigError::invalid(
            "server.trigger_token",
            "must be at least 16 characters",
        ));
    }

    let level = raw.log_level.unwrap_or_else(|| "info".to_string());
    tracing_subscriber::EnvFilter::try_new(&level)
        .map_err(|error| ConfigError::invalid("log_level", error.to_string()))?;

    let source = match raw.source {
        None => return Err(ConfigError::invalid("source", "is required")),
        Some(table) => SourceConfig::parse(table)?,
    };
    let mut vendors = BTreeMap::new();
    for (name, table) in raw.vendors {
        let settings = VendorSettings::parse(&name, table, base_dir)?.with_lifecycle(&lifecycle);
        vendors.insert(name, settings);
    }
    if vendors.is_empty() {
        return Err(ConfigError::invalid(
            "vendors",
            "at least one vendor is required",
        ));
    }

    let notify = crate::notify::config::parse(raw.notify, base_dir)?;
    let ha = raw
        .ha
        .map(|table| crate::ha::HaSettings::parse(table, hostname))
        .transpose()?;

    Ok(Settings {
        state_dir: base_dir.join(&state_dir),
        state_cache_mb,
        schedule,
        schedule_jitter_secs,
        shutdown_grace_secs,
        full_schedule,
        progress_log_secs,
        server: ServerSettings {
            listen,
            trigger_token,
            admin_socket: match raw.server.admin_socket {
                Some(p) if p.as_os_str().is_empty() => {
                    return Err(ConfigError::invalid(
                        "server.admin_socket",
                        "must not be empty",
                    ));
                }
                // A Unix socket's path is at most 107 bytes (`sun_path`).
                Some(p) if base_dir.join(&p).as_os_str().len() > 107 => {
                    return Err(ConfigError::invalid(
                        "server.admin_socket",
                        "is longer than the 107 bytes a Unix socket's path may have",
                    ));
                }
                Some(p) => base_dir.join(p),
                None => base_dir.join(&state_dir).join("admin.sock"),
            },
        },
        log: LogSettings {
            format: raw.log_format.unwrap_or(LogFormat::Text),
            level,
        },
        safety: raw.safety,
        retry: raw.retry,
        history: raw.history,
        source,
        vendors,
        notify,
        ha,
        lifecycle,
        base_dir: base_dir.to_path_buf(),
    })
}

fn parse_schedule(key: &str, expression: String) -> Result<Schedule, ConfigError> {
    cron::Schedule::from_str(&expression)
        .map(|cron| Schedule {
            expression: expression.clone(),
            cron,
        })
        .map_err(|error| {
            ConfigError::invalid(
                key,
                format!(
                    "`{expression}` is not a cron expression with a seconds field \
                     (sec min hour dom mon dow [year]): {error}"
                ),
            )
        })
}

#[cfg(test)]
mod no_panic;
#[cfg(test)]
mod tests;
