//! Loading and validating the configuration.
//!
//! Owns: the TOML + environment layering (`config` crate), defaults, and turning raw
//! values into typed `Settings`. Every mistake becomes a `ConfigError` naming the key at
//! fault. Must not: open the store, read the source, or call a vendor. Vendor-specific
//! keys are left in `VendorSettings::options` for the connector to validate
//! (`vendor::build`), so a new vendor adds no code here.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::secret::Secret;

/// The environment prefix: `ROSTER__VENDORS__MOTIVE__TOKEN` overrides `vendors.motive.token`.
pub const ENV_PREFIX: &str = "ROSTER";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("config: {0}")]
    Parse(String),
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

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
    pub source: SourceSettings,
    pub vendors: BTreeMap<String, VendorSettings>,
    // [ha] (issue 17): leader election on a Kubernetes Lease; `None` = no election.
    pub ha: Option<HaSettings>,
    /// Relative paths in the config are relative to this directory.
    pub base_dir: PathBuf,
}

// ---- [ha] (issue 17) ----

/// `[ha]`: only the replica holding the Lease `namespace/lease` runs passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaSettings {
    /// The Lease's name (a DNS subdomain).
    pub lease: String,
    /// `None`: the Kubernetes client's default namespace (in a pod: its own, from the
    /// service account's namespace file).
    pub namespace: Option<String>,
    /// This replica's name in the Lease (`holderIdentity`) and in its `User-Agent`.
    pub identity: String,
    /// How long the Lease holds after its last renewal, as the standby counts it.
    pub lease_duration: Duration,
    /// The leader stops starting vendor calls when no renewal has succeeded for this
    /// long; shorter than `lease_duration`, so it stops before a standby may take over.
    pub renew_deadline: Duration,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHa {
    lease: Option<String>,
    namespace: Option<String>,
    identity: Option<String>,
    lease_duration_secs: Option<u64>,
    renew_deadline_secs: Option<u64>,
}

/// `[ha]`; `hostname` is `$HOSTNAME` (the pod's name), the default identity.
fn validate_ha(raw: RawHa, hostname: Option<&str>) -> Result<HaSettings, ConfigError> {
    let lease = raw
        .lease
        .ok_or_else(|| ConfigError::invalid("ha.lease", "is required in an [ha] table"))?;
    if !is_dns_name(&lease, 253, true) {
        return Err(ConfigError::invalid(
            "ha.lease",
            format!(
                "`{lease}` is not a Kubernetes object name (lower-case letters, digits, `-` and `.`, at most 253)"
            ),
        ));
    }
    if let Some(ns) = &raw.namespace
        && !is_dns_name(ns, 63, false)
    {
        return Err(ConfigError::invalid(
            "ha.namespace",
            format!(
                "`{ns}` is not a Kubernetes namespace name (lower-case letters, digits and `-`, at most 63)"
            ),
        ));
    }
    let identity = match raw.identity.or_else(|| hostname.map(str::to_string)) {
        Some(id) => id,
        None => {
            return Err(ConfigError::invalid(
                "ha.identity",
                "is required when $HOSTNAME is not set",
            ));
        }
    };
    // It also goes into the User-Agent header, so: visible ASCII without parentheses.
    if identity.is_empty()
        || identity.len() > 128
        || !identity
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:@".contains(c))
    {
        return Err(ConfigError::invalid(
            "ha.identity",
            format!("`{identity}` must be 1 to 128 letters, digits or `-._:@`"),
        ));
    }
    let duration = raw.lease_duration_secs.unwrap_or(15);
    if !(2..=3600).contains(&duration) {
        return Err(ConfigError::invalid(
            "ha.lease_duration_secs",
            "must be a whole number of seconds from 2 to 3600",
        ));
    }
    let deadline = raw.renew_deadline_secs.unwrap_or(10);
    if deadline < 1 || deadline >= duration {
        return Err(ConfigError::invalid(
            "ha.renew_deadline_secs",
            format!(
                "must be at least 1 and below ha.lease_duration_secs ({duration}): the leader \
                 must stop before a standby may take over"
            ),
        ));
    }
    Ok(HaSettings {
        lease,
        namespace: raw.namespace,
        identity,
        lease_duration: Duration::from_secs(duration),
        renew_deadline: Duration::from_secs(deadline),
    })
}

/// A DNS-1123 subdomain (`dots`) or label.
fn is_dns_name(s: &str, max: usize, dots: bool) -> bool {
    let ok_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    !s.is_empty()
        && s.len() <= max
        && s.chars().all(ok_char)
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub level: String,
}

/// Limits that stop a broken source or a bad change from emptying the vendors.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Safety {
    /// Refuse a pass that deactivates more than this many people at one vendor.
    pub max_deactivations: u64,
    /// Refuse a pass that deactivates more than this share of a vendor's active people.
    pub max_deactivation_ratio: f64,
    /// Refuse a pass whose source has lost more than this share of the people the last
    /// completed pass read: a half-failed export must not read as people leaving.
    pub max_source_drop_ratio: f64,
}

impl Default for Safety {
    fn default() -> Self {
        Self {
            max_deactivations: 50,
            max_deactivation_ratio: 0.2,
            max_source_drop_ratio: 0.2,
        }
    }
}

/// How hard one pass tries before leaving an operation for the next pass.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// First wait after a retryable failure.
    pub initial_interval_ms: u64,
    /// Longest single wait between two attempts (a longer `Retry-After` gives up instead).
    pub max_interval_secs: u64,
    /// Give up on one operation after this long.
    pub max_elapsed_secs: u64,
    /// Give up on every operation still retrying this long after the pass started.
    pub pass_budget_secs: u64,
    /// HTTP request timeout.
    pub request_timeout_secs: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            initial_interval_ms: 500,
            max_interval_secs: 60,
            max_elapsed_secs: 300,
            pass_budget_secs: 900,
            request_timeout_secs: 30,
        }
    }
}

impl RetrySettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

/// How much audit history (every vendor write call) the store keeps.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySettings {
    /// Entries beyond this many are dropped, oldest first, after each pass.
    pub max_entries: usize,
    /// Entries older than this are dropped after each pass.
    pub max_age_days: u32,
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_age_days: 365,
        }
    }
}

/// The `[source]` table: its `type`, and the rest raw for that source kind to validate
/// (`source::build`), so a new source kind adds no code here.
#[derive(Clone)]
pub struct SourceSettings {
    pub kind: String,
    pub options: Map<String, Value>,
    pub base_dir: PathBuf,
}

/// Shows option names only: their values may be credentials.
impl std::fmt::Debug for SourceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSettings")
            .field("kind", &self.kind)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SourceSettings {
    /// Deserializes the source-specific keys into the source's own struct, which should
    /// use `deny_unknown_fields` so a typo is reported by name.
    ///
    /// # Errors
    /// `ConfigError::Invalid` naming `source` and serde's complaint.
    pub fn parse_options<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConfigError> {
        serde_json::from_value(Value::Object(self.options.clone())).map_err(|error| {
            ConfigError::invalid(
                "source",
                format!("{error} (for a source of type {})", self.kind),
            )
        })
    }

    /// A path from the config, relative to the config file's directory.
    pub fn path(&self, p: &Path) -> PathBuf {
        self.base_dir.join(p)
    }

    /// Resolves a credential given inline as `key` or as a file in `key_file`.
    ///
    /// # Errors
    /// Both given, an unreadable or empty file, or (when `required`) neither given.
    pub fn secret(
        &self,
        key: &str,
        inline: Option<Secret>,
        file: Option<PathBuf>,
        required: bool,
    ) -> Result<Option<Secret>, ConfigError> {
        resolve_secret(
            &format!("source.{key}"),
            key,
            inline,
            file,
            &self.base_dir,
            required,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnRemove {
    #[default]
    Deactivate,
    Delete,
}

/// One `[vendors.NAME]` table: the keys every vendor shares, typed; the rest raw.
#[derive(Clone)]
pub struct VendorSettings {
    /// The table name; the vendor's name in reports, the store and metrics.
    pub name: String,
    /// The `type` key: which connector serves this vendor.
    pub kind: String,
    /// Host root of the vendor's API, or `None` to use the connector's default.
    pub base_url: Option<Url>,
    /// Only people in any of these groups are in scope; `None` means everyone.
    pub scope_groups: Option<BTreeSet<String>>,
    /// Vendor fields used when a person has no `NAME.FIELD` attribute.
    pub defaults: BTreeMap<String, String>,
    /// How many calls to this vendor may be in flight at once.
    pub concurrency: usize,
    /// `rate_limit = { calls = N, per_secs = S }`: at most N calls per S seconds to this
    /// vendor (all its endpoints together); `None`: no limit beyond what the vendor's
    /// answers teach (see `pace`).
    pub rate_limit: Option<RateLimit>,
    pub on_remove: OnRemove,
    /// Connector-specific keys, validated by the connector.
    pub options: Map<String, Value>,
    pub base_dir: PathBuf,
}

/// Shows option names only: their values may be credentials.
impl std::fmt::Debug for VendorSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorSettings")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url.as_ref().map(Url::as_str))
            .field("scope_groups", &self.scope_groups)
            .field("defaults", &self.defaults)
            .field("concurrency", &self.concurrency)
            .field("rate_limit", &self.rate_limit)
            .field("on_remove", &self.on_remove)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A vendor's rate limit: `calls` per `per_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub calls: u32,
    pub per_secs: f64,
}

impl RateLimit {
    pub fn per_second(self) -> f64 {
        f64::from(self.calls) / self.per_secs
    }
}

fn parse_rate_limit(key: &str, v: Value) -> Result<RateLimit, ConfigError> {
    let shape = "must be a table `{ calls = N, per_secs = S }` (N from 1 to 1000000, S > 0)";
    let Value::Object(mut t) = v else {
        return Err(ConfigError::invalid(key, shape));
    };
    if let Some(extra) = t
        .keys()
        .find(|k| !matches!(k.as_str(), "calls" | "per_secs"))
    {
        return Err(ConfigError::invalid(
            format!("{key}.{extra}"),
            "unknown key (expected: calls, per_secs)",
        ));
    }
    let calls = match t.remove("calls").and_then(|c| c.as_u64()) {
        Some(n) if (1..=1_000_000).contains(&n) => n as u32,
        _ => {
            return Err(ConfigError::invalid(
                format!("{key}.calls"),
                "must be a whole number from 1 to 1000000",
            ));
        }
    };
    let per_secs = match t.remove("per_secs").and_then(|c| c.as_f64()) {
        Some(s) if s > 0.0 && s <= 86_400.0 => s,
        _ => {
            return Err(ConfigError::invalid(
                format!("{key}.per_secs"),
                "must be a number of seconds above 0 and at most 86400",
            ));
        }
    };
    Ok(RateLimit { calls, per_secs })
}

impl VendorSettings {
    /// Key path for error messages, e.g. `vendors.motive.api_key`.
    pub fn key(&self, field: &str) -> String {
        format!("vendors.{}.{}", self.name, field)
    }

    /// Deserializes the connector-specific keys into the connector's own struct, which
    /// should use `deny_unknown_fields` so a typo is reported by name.
    ///
    /// # Errors
    /// `ConfigError::Invalid` naming the vendor table and serde's complaint.
    pub fn parse_options<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConfigError> {
        serde_json::from_value(Value::Object(self.options.clone())).map_err(|error| {
            ConfigError::invalid(
                format!("vendors.{}", self.name),
                format!("{error} (for a vendor of type {})", self.kind),
            )
        })
    }

    /// Resolves a credential given either inline as `key` or as a file in `key_file`.
    ///
    /// # Errors
    /// Both given, an unreadable file, or (when `required`) neither given.
    pub fn secret(
        &self,
        key: &str,
        inline: Option<Secret>,
        file: Option<PathBuf>,
        required: bool,
    ) -> Result<Option<Secret>, ConfigError> {
        resolve_secret(&self.key(key), key, inline, file, &self.base_dir, required)
    }
}

/// `key` inline or `key_file`; `full_key` is the key path used in messages.
fn resolve_secret(
    full_key: &str,
    key: &str,
    inline: Option<Secret>,
    file: Option<PathBuf>,
    base_dir: &Path,
    required: bool,
) -> Result<Option<Secret>, ConfigError> {
    let file_key = format!("{full_key}_file");
    match (inline, file) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            full_key,
            format!("give either `{key}` or `{key}_file`, not both"),
        )),
        (Some(s), None) if s.expose().is_empty() => Err(ConfigError::invalid(full_key, "is empty")),
        (Some(s), None) => Ok(Some(s)),
        (None, Some(path)) => {
            let path = base_dir.join(path);
            let secret = Secret::from_file(&path).map_err(|error| {
                ConfigError::invalid(
                    &file_key,
                    format!("cannot read {}: {error}", path.display()),
                )
            })?;
            if secret.expose().is_empty() {
                return Err(ConfigError::invalid(
                    file_key,
                    format!("{} is empty", path.display()),
                ));
            }
            Ok(Some(secret))
        }
        (None, None) if required => Err(ConfigError::invalid(
            full_key,
            format!("is required (or `{key}_file`)"),
        )),
        (None, None) => Ok(None),
    }
}

// ---- raw shapes, as the file and environment give them ----

#[derive(Debug, Deserialize)]
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
    source: Option<Map<String, Value>>,
    #[serde(default)]
    vendors: BTreeMap<String, Map<String, Value>>,
    ha: Option<RawHa>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    trigger_token: Option<Secret>,
    trigger_token_file: Option<PathBuf>,
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
    let built = config::Config::builder()
        .add_source(config::File::from_str(toml_text, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        )
        .build()
        .map_err(|error| ConfigError::Parse(error.to_string()))?;
    let raw: RawConfig = built
        .try_deserialize()
        .map_err(|error| ConfigError::Parse(error.to_string()))?;
    validate(raw, base_dir, hostname.as_deref())
}

fn validate(
    raw: RawConfig,
    base_dir: &Path,
    hostname: Option<&str>,
) -> Result<Settings, ConfigError> {
    let state_dir = base_dir.join(raw.state_dir.unwrap_or_else(|| "/var/lib/roster".into()));
    let state_cache_mb = raw.state_cache_mb.unwrap_or(crate::store::DEFAULT_CACHE_MB);
    if state_cache_mb == 0 {
        return Err(ConfigError::invalid(
            "state_cache_mb",
            "must be at least 1 (MiB)",
        ));
    }

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

    let trigger_token = match (raw.server.trigger_token, raw.server.trigger_token_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                "server.trigger_token",
                "give either `trigger_token` or `trigger_token_file`, not both",
            ));
        }
        (Some(t), None) => Some(t),
        (None, Some(path)) => {
            let path = base_dir.join(path);
            Some(Secret::from_file(&path).map_err(|error| {
                ConfigError::invalid(
                    "server.trigger_token_file",
                    format!("cannot read {}: {error}", path.display()),
                )
            })?)
        }
        (None, None) => None,
    };
    if trigger_token
        .as_ref()
        .is_some_and(|t| t.expose().len() < 16)
    {
        return Err(ConfigError::invalid(
            "server.trigger_token",
            "must be at least 16 characters",
        ));
    }

    let level = raw.log_level.unwrap_or_else(|| "info".to_string());
    tracing_subscriber::EnvFilter::try_new(&level)
        .map_err(|error| ConfigError::invalid("log_level", error.to_string()))?;

    let safety = raw.safety;
    for (key, value) in [
        (
            "safety.max_deactivation_ratio",
            safety.max_deactivation_ratio,
        ),
        ("safety.max_source_drop_ratio", safety.max_source_drop_ratio),
    ] {
        if !(0.0..=1.0).contains(&value) {
            return Err(ConfigError::invalid(key, "must be between 0 and 1"));
        }
    }

    let source = match raw.source {
        None => return Err(ConfigError::invalid("source", "is required")),
        Some(s) => validate_source(s, base_dir)?,
    };

    let mut vendors = BTreeMap::new();
    for (name, table) in raw.vendors {
        let settings = validate_vendor(&name, table, base_dir)?;
        vendors.insert(name, settings);
    }
    if vendors.is_empty() {
        return Err(ConfigError::invalid(
            "vendors",
            "at least one vendor is required",
        ));
    }
    let ha = raw.ha.map(|h| validate_ha(h, hostname)).transpose()?;

    Ok(Settings {
        state_dir,
        state_cache_mb,
        schedule,
        schedule_jitter_secs: raw.schedule_jitter_secs.unwrap_or(0),
        shutdown_grace_secs: raw.shutdown_grace_secs.unwrap_or(30),
        full_schedule,
        progress_log_secs: raw.progress_log_secs.unwrap_or(30).max(1),
        server: ServerSettings {
            listen,
            trigger_token,
        },
        log: LogSettings {
            format: raw.log_format.unwrap_or(LogFormat::Text),
            level,
        },
        safety,
        retry: raw.retry,
        history: raw.history,
        source,
        vendors,
        ha,
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

fn validate_source(
    mut table: Map<String, Value>,
    base_dir: &Path,
) -> Result<SourceSettings, ConfigError> {
    let kind = match table.remove("type") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(ConfigError::invalid("source.type", "must be a string")),
        None => return Err(ConfigError::invalid("source.type", "is required")),
    };
    if !crate::source::KINDS.contains(&kind.as_str()) {
        return Err(ConfigError::invalid(
            "source.type",
            format!(
                "unknown source type `{kind}` (expected one of: {})",
                crate::source::KINDS.join(", ")
            ),
        ));
    }
    Ok(SourceSettings {
        kind,
        options: table,
        base_dir: base_dir.to_path_buf(),
    })
}

fn validate_vendor(
    name: &str,
    mut table: Map<String, Value>,
    base_dir: &Path,
) -> Result<VendorSettings, ConfigError> {
    let key = |k: &str| format!("vendors.{name}.{k}");
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ConfigError::invalid(
            format!("vendors.{name}"),
            "vendor names may use letters, digits, `-` and `_` only",
        ));
    }
    let kind = match table.remove("type") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(ConfigError::invalid(key("type"), "must be a string")),
        None => return Err(ConfigError::invalid(key("type"), "is required")),
    };
    if !crate::vendor::KINDS.contains(&kind.as_str()) {
        return Err(ConfigError::invalid(
            key("type"),
            format!(
                "unknown vendor type `{kind}` (expected one of: {})",
                crate::vendor::KINDS.join(", ")
            ),
        ));
    }
    let base_url = match table.remove("base_url") {
        None => None,
        Some(Value::String(s)) => {
            Some(parse_base_url(&s).map_err(|m| ConfigError::invalid(key("base_url"), m))?)
        }
        Some(_) => return Err(ConfigError::invalid(key("base_url"), "must be a string")),
    };
    let scope_groups = match table.remove("scope") {
        None => None,
        Some(Value::Object(mut scope)) => {
            let groups = scope.remove("groups");
            if let Some(extra) = scope.keys().next() {
                return Err(ConfigError::invalid(
                    key(&format!("scope.{extra}")),
                    "unknown key (expected: groups)",
                ));
            }
            match groups {
                None => None,
                Some(Value::Array(items)) => Some(
                    items
                        .into_iter()
                        .map(|v| match v {
                            Value::String(s) => Ok(s),
                            _ => Err(ConfigError::invalid(
                                key("scope.groups"),
                                "must be a list of strings",
                            )),
                        })
                        .collect::<Result<BTreeSet<_>, _>>()?,
                ),
                // One group from the environment arrives as a plain string.
                Some(Value::String(s)) => Some(
                    s.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(String::from)
                        .collect(),
                ),
                Some(_) => {
                    return Err(ConfigError::invalid(
                        key("scope.groups"),
                        "must be a list of strings",
                    ));
                }
            }
        }
        Some(_) => return Err(ConfigError::invalid(key("scope"), "must be a table")),
    };
    let defaults = match table.remove("defaults") {
        None => BTreeMap::new(),
        Some(Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s,
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    _ => {
                        return Err(ConfigError::invalid(
                            key(&format!("defaults.{k}")),
                            "must be a string, number or boolean",
                        ));
                    }
                };
                Ok((k, value))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ConfigError::invalid(key("defaults"), "must be a table")),
    };
    let concurrency = match table.remove("concurrency") {
        None => 4,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=256).contains(&n) => n as usize,
            _ => {
                return Err(ConfigError::invalid(
                    key("concurrency"),
                    "must be a whole number from 1 to 256",
                ));
            }
        },
    };
    let rate_limit = table
        .remove("rate_limit")
        .map(|v| parse_rate_limit(&key("rate_limit"), v))
        .transpose()?;
    let on_remove = match table.remove("on_remove") {
        None => OnRemove::Deactivate,
        Some(v) => serde_json::from_value(v).map_err(|_| {
            ConfigError::invalid(key("on_remove"), "must be `deactivate` or `delete`")
        })?,
    };
    Ok(VendorSettings {
        name: name.to_string(),
        kind,
        base_url,
        scope_groups,
        defaults,
        concurrency,
        rate_limit,
        on_remove,
        options: table,
        base_dir: base_dir.to_path_buf(),
    })
}

fn parse_base_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|error| format!("`{s}` is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "`{s}` must be an http:// or https:// URL with a host"
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        state_dir = "state"
        [source]
        type = "file"
        path = "people.json"
        [vendors.motive]
        type = "motive"
        api_key = "k"
    "#;

    fn load(text: &str) -> Result<Settings, ConfigError> {
        load_str(text, Path::new("/etc/roster"), Vec::new())
    }

    fn err(text: &str) -> String {
        load(text)
            .expect_err("config should be rejected")
            .to_string()
    }

    #[test]
    fn example_config_parses_and_builds_every_vendor() {
        let text = include_str!("../config/example.toml");
        let settings = load_str(text, Path::new("config"), Vec::new()).expect("example parses");
        assert_eq!(settings.vendors.len(), 4);
        assert!(settings.schedule.is_some());
        let secrets_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut settings = settings;
        for v in settings.vendors.values_mut() {
            v.base_dir = secrets_dir.clone();
        }
        for v in settings.vendors.values() {
            crate::vendor::build(v, &settings.retry).expect("example vendor builds");
        }
    }

    #[test]
    fn minimal_config_resolves_relative_paths_against_the_config_dir() {
        let s = load(MINIMAL).expect("valid");
        assert_eq!(s.state_dir, Path::new("/etc/roster/state"));
        assert_eq!(s.source.kind, "file");
        assert_eq!(
            s.source.path(Path::new("people.json")),
            Path::new("/etc/roster/people.json")
        );
        assert_eq!(s.safety.max_deactivations, 50);
    }

    #[test]
    fn unknown_top_level_key_is_named() {
        let e = err(&format!("shedule = \"x\"\n{MINIMAL}"));
        assert!(e.contains("shedule"), "{e}");
    }

    #[test]
    fn unknown_key_in_safety_is_named() {
        let e = err(&format!("{MINIMAL}\n[safety]\nmax_deactivation = 3"));
        assert!(e.contains("max_deactivation"), "{e}");
    }

    #[test]
    fn wrong_type_is_reported() {
        let e = err(&format!(
            "{MINIMAL}\n[safety]\nmax_deactivations = \"many\""
        ));
        assert!(e.contains("max_deactivations"), "{e}");
    }

    #[test]
    fn bad_cron_names_schedule() {
        let e = err(&format!("schedule = \"*/5 * * * *\"\n{MINIMAL}"));
        assert!(e.contains("`schedule`"), "{e}");
    }

    #[test]
    fn unknown_vendor_type_names_the_key() {
        let e = err(&MINIMAL.replace("type = \"motive\"", "type = \"slack\""));
        assert!(
            e.contains("vendors.motive.type") && e.contains("slack"),
            "{e}"
        );
    }

    #[test]
    fn bad_url_names_the_key() {
        let e = err(&format!("{MINIMAL}\nbase_url = \"not a url\""));
        assert!(e.contains("vendors.motive.base_url"), "{e}");
    }

    #[test]
    fn environment_overrides_file_with_double_underscore_keys() {
        let env = vec![
            (
                "ROSTER__SAFETY__MAX_DEACTIVATIONS".to_string(),
                "7".to_string(),
            ),
            (
                "ROSTER__VENDORS__MOTIVE__BASE_URL".to_string(),
                "http://127.0.0.1:1".to_string(),
            ),
            ("ROSTER_CONFIG".to_string(), "ignored".to_string()),
        ];
        let s = load_str(MINIMAL, Path::new("/"), env).expect("valid");
        assert_eq!(s.safety.max_deactivations, 7);
        assert_eq!(
            s.vendors["motive"].base_url.as_ref().map(Url::as_str),
            Some("http://127.0.0.1:1/")
        );
    }

    #[test]
    fn environment_can_supply_a_secret() {
        let text = MINIMAL.replace("api_key = \"k\"", "");
        let env = vec![(
            "ROSTER__VENDORS__MOTIVE__API_KEY".to_string(),
            "from-env".to_string(),
        )];
        let s = load_str(&text, Path::new("/"), env).expect("valid");
        assert_eq!(s.vendors["motive"].options["api_key"], "from-env");
    }

    #[test]
    fn debug_output_never_shows_option_values() {
        let s = load(
            MINIMAL
                .replace("api_key = \"k\"", "api_key = \"hunter2\"")
                .as_str(),
        )
        .expect("valid");
        let shown = format!("{s:?}");
        assert!(
            shown.contains("api_key") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn no_ha_table_means_no_election() {
        assert_eq!(load(MINIMAL).expect("valid").ha, None);
    }

    #[test]
    fn ha_defaults_identity_from_hostname_and_keys_from_the_issue() {
        let text = format!("{MINIMAL}\n[ha]\nlease = \"roster\"\n");
        let env = vec![("HOSTNAME".to_string(), "roster-1".to_string())];
        let ha = load_str(&text, Path::new("/"), env)
            .expect("valid")
            .ha
            .expect("[ha]");
        assert_eq!(
            ha,
            HaSettings {
                lease: "roster".into(),
                namespace: None,
                identity: "roster-1".into(),
                lease_duration: Duration::from_secs(15),
                renew_deadline: Duration::from_secs(10),
            }
        );
        let env = vec![
            ("HOSTNAME".to_string(), "roster-1".to_string()),
            ("ROSTER__HA__IDENTITY".to_string(), "roster-0".to_string()),
            (
                "ROSTER__HA__LEASE_DURATION_SECS".to_string(),
                "3".to_string(),
            ),
            (
                "ROSTER__HA__RENEW_DEADLINE_SECS".to_string(),
                "2".to_string(),
            ),
        ];
        let ha = load_str(
            &format!("{text}namespace = \"sync\"\n"),
            Path::new("/"),
            env,
        )
        .expect("valid")
        .ha
        .expect("[ha]");
        assert_eq!(ha.identity, "roster-0");
        assert_eq!(ha.namespace.as_deref(), Some("sync"));
        assert_eq!(ha.lease_duration, Duration::from_secs(3));
        assert_eq!(ha.renew_deadline, Duration::from_secs(2));
    }

    #[test]
    fn ha_mistakes_name_the_key() {
        let ha = |body: &str| err(&format!("{MINIMAL}\n[ha]\nidentity = \"r-0\"\n{body}"));
        let e = ha("");
        assert!(e.contains("`ha.lease`"), "{e}");
        let e = ha("lease = \"Roster_Lease\"");
        assert!(e.contains("`ha.lease`"), "{e}");
        let e = ha("lease = \"roster\"\nnamespace = \"a.b\"");
        assert!(e.contains("`ha.namespace`"), "{e}");
        let e = ha("lease = \"roster\"\nlease_duration_secs = 1");
        assert!(e.contains("`ha.lease_duration_secs`"), "{e}");
        let e = ha("lease = \"roster\"\nrenew_deadline_secs = 15");
        assert!(e.contains("`ha.renew_deadline_secs`"), "{e}");
        let e = ha("lease = \"roster\"\nrenew_deadline_secs = 0");
        assert!(e.contains("`ha.renew_deadline_secs`"), "{e}");
        let e = ha("lease = \"roster\"\nrenew_deadlin_secs = 3");
        assert!(e.contains("renew_deadlin_secs"), "{e}");
        let e = err(&format!(
            "{MINIMAL}\n[ha]\nlease = \"roster\"\nidentity = \"a (b)\""
        ));
        assert!(e.contains("`ha.identity`"), "{e}");
        // No identity and no $HOSTNAME.
        let e = err(&format!("{MINIMAL}\n[ha]\nlease = \"roster\"\n"));
        assert!(e.contains("`ha.identity`") && e.contains("HOSTNAME"), "{e}");
    }

    #[test]
    fn secret_from_file_and_both_forms_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("tok"), "s3cret\n").expect("write");
        let s = load_str(MINIMAL, dir.path(), Vec::new()).expect("valid");
        let v = &s.vendors["motive"];
        let got = v
            .secret("token", None, Some("tok".into()), true)
            .expect("file read");
        assert_eq!(
            got.map(|s| s.expose().to_string()).as_deref(),
            Some("s3cret")
        );
        let e = v
            .secret("token", Some(Secret::new("a")), Some("tok".into()), true)
            .expect_err("both");
        assert!(e.to_string().contains("vendors.motive.token"));
        let e = v.secret("token", None, None, true).expect_err("missing");
        assert!(e.to_string().contains("vendors.motive.token"));
    }
}
