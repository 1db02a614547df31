//! The `[[notify]]` tables: where alerts go, which events, how often to repeat.
//!
//! Owns: `TargetSettings` and turning the `notify` key into it, through the one parser
//! (`config::parse`: `type` split off with `tagged`, every error naming the key, e.g.
//! `notify[0].url`) and the one secret resolver (`url` / `url_file`). Must not: show a
//! target's URL anywhere — webhook URLs carry their own secret (Slack's do), so they are
//! `Secret`s and messages name the target by its label instead.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::config::common::bounded;
use crate::config::parse::{self, Table};
use crate::config::{ConfigError, Secret, Secrets};

/// Default for `repeat_after_secs`: a condition that lasts is reported again once a day.
pub const DEFAULT_REPEAT_AFTER: Duration = Duration::from_secs(24 * 3600);
const REPEAT_AFTER_SECS: std::ops::RangeInclusive<u64> = 60..=30 * 86_400;
/// Default for `timeout_secs`: one delivery attempt, connect to last byte.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const TIMEOUT_SECS: std::ops::RangeInclusive<u64> = 1..=60;

/// The `type`s a target can have.
pub const KINDS: &[&str] = &["webhook", "slack"];

/// The body format a target receives (its `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// roster's own JSON document (see `body::webhook`).
    Webhook,
    /// `{"text": ...}`, as Slack's incoming webhooks (and Mattermost's, Rocket.Chat's)
    /// take it.
    Slack,
}

/// An event a target can subscribe to (`events = [...]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    /// The pass was refused: a safety limit, or a source unreadable, incomplete or empty.
    PassRefused,
    /// A vendor answered 401/403: no further calls were made to it in that pass.
    CredentialsRejected,
    /// Operations failed at a vendor after all retries (retried next pass).
    OperationsFailed,
    /// A condition that was alerted has ended.
    Recovered,
}

impl EventName {
    pub const ALL: [EventName; 4] = [
        EventName::PassRefused,
        EventName::CredentialsRejected,
        EventName::OperationsFailed,
        EventName::Recovered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventName::PassRefused => "pass_refused",
            EventName::CredentialsRejected => "credentials_rejected",
            EventName::OperationsFailed => "operations_failed",
            EventName::Recovered => "recovered",
        }
    }
}

/// One validated `[[notify]]` table.
#[derive(Debug, Clone)]
pub struct TargetSettings {
    /// How logs and errors name this target, and the key of its alert state in the
    /// store: `name` when given, else `notify[INDEX]`.
    pub label: String,
    pub format: Format,
    /// Where to POST. A secret: never printed.
    pub url: Secret,
    /// Subscribed events (all when the table has no `events`).
    pub events: Vec<EventName>,
    /// A condition that lasts is alerted again after this long.
    pub repeat_after: Duration,
    /// Time limit of one delivery attempt.
    pub timeout: Duration,
}

impl TargetSettings {
    pub fn wants(&self, event: EventName) -> bool {
        self.events.contains(&event)
    }
}

/// A `[[notify]]` table's keys besides `type`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    name: Option<String>,
    url: Option<Secret>,
    url_file: Option<PathBuf>,
    /// Names, checked in `check` so that a wrong one is said with the right ones.
    events: Option<Vec<String>>,
    repeat_after_secs: Option<u64>,
    timeout_secs: Option<u64>,
}

/// Validates the `notify` key: a list of `[[notify]]` tables (or nothing);
/// `base_dir` resolves a relative `url_file`.
///
/// # Errors
/// The first invalid key, named as `notify[INDEX].KEY`.
pub fn parse(
    raw: Option<config::Value>,
    base_dir: &Path,
) -> Result<Vec<TargetSettings>, ConfigError> {
    let tables = match raw.map(|v| v.kind) {
        None => Vec::new(),
        Some(config::ValueKind::Array(items)) => items,
        // The environment layer can only make tables: `ROSTER__NOTIFY__0__URL` turns the
        // file's list into `{ "0": { "url": ... } }`, losing the file's entries.
        Some(config::ValueKind::Table(_)) => {
            return Err(ConfigError::invalid(
                "notify",
                "must be a list of [[notify]] tables; they cannot be set or overridden from \
                 the environment (ROSTER__NOTIFY__...): keep the URL in a file and give its \
                 path as `url_file`",
            ));
        }
        Some(_) => {
            return Err(ConfigError::invalid(
                "notify",
                "must be a list of [[notify]] tables",
            ));
        }
    };
    let mut targets: Vec<TargetSettings> = Vec::with_capacity(tables.len());
    for (index, table) in tables.into_iter().enumerate() {
        let config::ValueKind::Table(table) = table.kind else {
            return Err(ConfigError::invalid(
                format!("notify[{index}]"),
                "must be a table",
            ));
        };
        let target = parse_one(index, table, base_dir)?;
        if targets.iter().any(|t| t.label == target.label) {
            return Err(ConfigError::invalid(
                format!("notify[{index}].name"),
                format!("`{}` names two targets", target.label),
            ));
        }
        targets.push(target);
    }
    Ok(targets)
}

fn parse_one(index: usize, table: Table, base_dir: &Path) -> Result<TargetSettings, ConfigError> {
    let at = format!("notify[{index}]");
    let key = |k: &str| parse::join(&at, k);
    let (kind, rest) = parse::tagged(&at, table)?;
    let format = match kind.as_str() {
        "webhook" => Format::Webhook,
        "slack" => Format::Slack,
        other => return Err(parse::unknown_kind(&at, "notify", other, KINDS)),
    };
    let o: Options = parse::parse(&at, parse::value(rest))?;

    let label = match o.name {
        None => at.clone(),
        Some(name)
            if !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
        {
            name
        }
        Some(_) => {
            return Err(ConfigError::invalid(
                key("name"),
                "use 1 to 64 letters, digits, `-`, `_` or `.`",
            ));
        }
    };

    let url = Secrets {
        prefix: at.clone(),
        base_dir,
    }
    .required("url", o.url, o.url_file)?;
    // The message must not repeat the URL: it is the secret.
    let parsed = Url::parse(url.expose().trim())
        .map_err(|error| ConfigError::invalid(key("url"), format!("is not a URL ({error})")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(ConfigError::invalid(
            key("url"),
            "must be an http:// or https:// URL with a host",
        ));
    }
    let url = Secret::new(parsed.as_str());

    let events = match o.events {
        None => EventName::ALL.to_vec(),
        Some(list) if list.is_empty() => {
            return Err(ConfigError::invalid(
                key("events"),
                "names no event; leave it out to get every event",
            ));
        }
        Some(names) => {
            let mut list = Vec::with_capacity(names.len());
            for (i, name) in names.iter().enumerate() {
                let Some(event) = EventName::ALL.into_iter().find(|e| e.as_str() == name) else {
                    let known: Vec<&str> = EventName::ALL.iter().map(|e| e.as_str()).collect();
                    return Err(ConfigError::invalid(
                        key(&format!("events[{i}]")),
                        format!(
                            "no event named `{name}`; did you mean one of: {}?",
                            known.join(", ")
                        ),
                    ));
                };
                list.push(event);
            }
            list.sort();
            list.dedup();
            list
        }
    };

    let repeat_after = match o.repeat_after_secs {
        None => DEFAULT_REPEAT_AFTER,
        Some(s) => Duration::from_secs(bounded(
            &key("repeat_after_secs"),
            s,
            REPEAT_AFTER_SECS,
            " s (a minute to 30 days)",
        )?),
    };
    let timeout = match o.timeout_secs {
        None => DEFAULT_TIMEOUT,
        Some(s) => Duration::from_secs(bounded(&key("timeout_secs"), s, TIMEOUT_SECS, " s")?),
    };

    Ok(TargetSettings {
        label,
        format,
        url,
        events,
        repeat_after,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_URL: &str = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX";

    /// One TOML table, read through the `config` crate as the real loader reads it.
    fn table(text: &str) -> Table {
        config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .expect("toml")
            .try_deserialize()
            .expect("table")
    }

    fn list(tables: Vec<Table>) -> Option<config::Value> {
        Some(config::Value::new(
            None,
            config::ValueKind::Array(tables.into_iter().map(parse::value).collect()),
        ))
    }

    fn parse_at(text: &str, dir: &Path) -> Result<Vec<TargetSettings>, ConfigError> {
        parse(list(vec![table(text)]), dir)
    }

    fn err(text: &str) -> String {
        let e = parse_at(text, Path::new("/nonexistent"))
            .expect_err("should be rejected")
            .to_string();
        assert!(!e.contains("XXXXsecretXXXX"), "the URL leaked: {e}");
        e
    }

    #[test]
    fn defaults_and_label() {
        let t = parse_at(
            &format!("type = \"slack\"\nurl = \"{SECRET_URL}\""),
            Path::new("/"),
        )
        .expect("valid");
        assert_eq!(t[0].label, "notify[0]");
        assert_eq!(t[0].format, Format::Slack);
        assert_eq!(t[0].events, EventName::ALL.to_vec());
        assert_eq!(t[0].repeat_after, Duration::from_secs(86_400));
        assert_eq!(t[0].timeout, Duration::from_secs(10));
        assert!(!format!("{t:?}").contains("XXXXsecretXXXX"));
    }

    #[test]
    fn url_from_a_file_named_relative_to_the_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("hook"), format!("{SECRET_URL}\n")).expect("write");
        let t = parse_at(
            "type = \"webhook\"\nname = \"ops\"\nurl_file = \"hook\"\nevents = [\"pass_refused\", \"recovered\"]\nrepeat_after_secs = 3600",
            dir.path(),
        )
        .expect("valid");
        assert_eq!(t[0].url.expose(), SECRET_URL);
        assert_eq!(t[0].label, "ops");
        assert_eq!(
            t[0].events,
            vec![EventName::PassRefused, EventName::Recovered]
        );
        assert!(t[0].wants(EventName::Recovered) && !t[0].wants(EventName::OperationsFailed));
        assert_eq!(t[0].repeat_after, Duration::from_secs(3600));
    }

    #[test]
    fn every_mistake_names_its_key_and_never_the_url() {
        let cases = [
            ("url = \"https://h/x\"", "notify[0].type"),
            ("type = \"email\"\nurl = \"https://h/x\"", "notify[0].type"),
            ("type = \"slack\"", "notify[0].url"),
            (
                &format!("type = \"slack\"\nurl = \"{SECRET_URL}\"\nurl_file = \"f\""),
                "notify[0].url",
            ),
            (
                "type = \"slack\"\nurl = \"ftp://XXXXsecretXXXX/x\"",
                "notify[0].url",
            ),
            (
                "type = \"slack\"\nurl = \"XXXXsecretXXXX\"",
                "notify[0].url",
            ),
            (
                "type = \"slack\"\nurl_file = \"missing\"",
                "notify[0].url_file",
            ),
            (
                &format!("type = \"slack\"\nurl = \"{SECRET_URL}\"\nevents = [\"pass_refusd\"]"),
                "notify[0].events[0]",
            ),
            (
                &format!("type = \"slack\"\nurl = \"{SECRET_URL}\"\nevents = []"),
                "notify[0].events",
            ),
            (
                &format!("type = \"slack\"\nurl = \"{SECRET_URL}\"\nrepeat_after_secs = 5"),
                "notify[0].repeat_after_secs",
            ),
            (
                &format!("type = \"slack\"\nurl = \"{SECRET_URL}\"\ntimeout_secs = 0"),
                "notify[0].timeout_secs",
            ),
            (
                &format!("type = \"slack\"\nurl = \"{SECRET_URL}\"\nrepeat_after = 5"),
                "notify[0].repeat_after",
            ),
            (
                &format!("type = \"slack\"\nurl = \"{SECRET_URL}\"\nname = \"a b\""),
                "notify[0].name",
            ),
        ];
        for (text, key) in cases {
            let e = err(text);
            assert!(e.contains(&format!("`{key}`")), "{text}: {e}");
        }
        let e = err(&format!(
            "type = \"slack\"\nurl = \"{SECRET_URL}\"\nevents = [\"recovered\", \"bogus\"]"
        ));
        assert!(
            e.contains("notify[0].events[1]")
                && e.contains("`bogus`")
                && e.contains("pass_refused, credentials_rejected, operations_failed, recovered"),
            "the wrong name and the right ones: {e}"
        );
    }

    #[test]
    fn two_targets_cannot_share_a_name() {
        let one = table(&format!(
            "type = \"slack\"\nname = \"ops\"\nurl = \"{SECRET_URL}\""
        ));
        let e = parse(list(vec![one.clone(), one]), Path::new("/"))
            .expect_err("duplicate")
            .to_string();
        assert!(e.contains("notify[1].name"), "{e}");
    }
}
