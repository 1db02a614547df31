//! The `[source]` table, typed: its `type` and that kind's options (each kind's struct
//! is defined beside the source), and what building a source needs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Source, file, hr, ldap, scim};
use crate::config::parse::{self, Table};
use crate::config::{ConfigError, RetrySettings, Secret, Secrets};
use crate::http::Observer;

/// Every `type` the `[source]` table may have.
pub const KINDS: &[&str] = &["file", "ldap", "scim", "http"];

/// A source kind and its options.
#[derive(Clone)]
pub enum SourceConfig {
    File(file::Options),
    Ldap(ldap::Options),
    Scim(scim::Options),
    Http(hr::Options),
}

/// Shows the kind only: options may carry credentials (a URL's query, a bind DN).
impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceConfig({})", self.kind())
    }
}

impl SourceConfig {
    /// Parses `[source]`.
    ///
    /// # Errors
    /// `Invalid` naming the key at fault (`source.type` for an unknown kind).
    pub fn parse(table: Table) -> Result<Self, ConfigError> {
        let (kind, options) = parse::tagged("source", table)?;
        let value = parse::value(options);
        Ok(match kind.as_str() {
            "file" => Self::File(parse::parse("source", value)?),
            "ldap" => Self::Ldap(parse::parse("source", value)?),
            "scim" => Self::Scim(parse::parse("source", value)?),
            "http" => Self::Http(parse::parse("source", value)?),
            other => return Err(parse::unknown_kind("source", "source", other, KINDS)),
        })
    }

    /// The `type` as written in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::File(_) => "file",
            Self::Ldap(_) => "ldap",
            Self::Scim(_) => "scim",
            Self::Http(_) => "http",
        }
    }

    /// Builds the source, checking what its options mean together.
    ///
    /// # Errors
    /// `ConfigError` naming the key at fault.
    pub fn build(&self, b: &Build) -> Result<Box<dyn Source>, ConfigError> {
        Ok(match self {
            Self::File(o) => Box::new(file::FileSource::from_options(o, b)?),
            Self::Ldap(o) => Box::new(ldap::LdapSource::from_options(o.clone(), b)?),
            Self::Scim(o) => Box::new(scim::ScimSource::from_options(o.clone(), b)?),
            Self::Http(o) => Box::new(hr::HttpSource::from_options(o.clone(), b)?),
        })
    }
}

/// What building a source needs besides its options.
#[derive(Clone)]
pub struct Build {
    /// Relative paths are relative to the config file's directory.
    pub base_dir: PathBuf,
    pub retry: RetrySettings,
    pub observer: Arc<dyn Observer>,
}

impl Build {
    pub fn path(&self, p: &Path) -> PathBuf {
        self.base_dir.join(p)
    }

    /// `source.KEY` inline or as `KEY_file`; with `required`, one must be given.
    ///
    /// # Errors
    /// As `config::Secrets`.
    pub fn secret(
        &self,
        key: &str,
        inline: Option<Secret>,
        file: Option<PathBuf>,
        required: bool,
    ) -> Result<Option<Secret>, ConfigError> {
        let secrets = Secrets {
            prefix: "source".into(),
            base_dir: &self.base_dir,
        };
        if required {
            secrets.required(key, inline, file).map(Some)
        } else {
            secrets.optional(key, inline, file)
        }
    }
}

/// A source kind's options from JSON, as a config would give them, for unit tests.
///
/// # Errors
/// As parsing `[source]`.
#[cfg(test)]
pub(crate) fn test_options<T: serde::de::DeserializeOwned>(
    options: serde_json::Value,
) -> Result<T, ConfigError> {
    fn to_config(v: &serde_json::Value) -> config::Value {
        use config::ValueKind as K;
        use serde_json::Value as J;
        let kind = match v {
            J::Null => K::Nil,
            J::Bool(b) => K::Boolean(*b),
            J::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => K::I64(i),
                (None, Some(u)) => K::U64(u),
                _ => K::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => K::String(s.clone()),
            J::Array(items) => K::Array(items.iter().map(to_config).collect()),
            J::Object(map) => {
                K::Table(map.iter().map(|(k, v)| (k.clone(), to_config(v))).collect())
            }
        };
        config::Value::new(None, kind)
    }
    parse::parse("source", to_config(&options))
}

/// What the sources' unit tests build with: nothing on disk, default retries.
#[cfg(test)]
pub(crate) fn test_build() -> Build {
    Build {
        base_dir: PathBuf::from("/nonexistent"),
        retry: RetrySettings::default(),
        observer: Arc::new(crate::http::Quiet),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `[source]` example in docs/sources.md is a valid config (secret files are
    /// swapped for inline values, since they do not exist here).
    #[test]
    fn every_example_in_the_sources_doc_builds() {
        let doc = include_str!("../../docs/sources.md");
        let mut checked = 0;
        for block in doc.split("```toml").skip(1) {
            let Some((toml, _)) = block.split_once("```") else {
                continue;
            };
            if !toml.contains("[source]") {
                continue;
            }
            let toml: String = toml
                .lines()
                .filter(|l| !l.trim_start().starts_with("tls_ca_file"))
                .map(|l| match l.split_once("_file = ") {
                    Some((key, _)) => format!("{key} = \"dummy secret\""),
                    None => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n");
            let settings = crate::settings::load_str(
                &format!(
                    "state_dir = \"/tmp/x\"\n[vendors.m]\ntype = \"motive\"\napi_key = \"k\"\n{toml}"
                ),
                Path::new("/"),
                Vec::new(),
            )
            .unwrap_or_else(|e| panic!("{e}\n{toml}"));
            if let Err(e) = settings.source.build(&test_build()) {
                panic!("{e}\n{toml}");
            }
            checked += 1;
        }
        assert!(checked >= 12, "only {checked} examples found");
    }

    #[test]
    fn an_unknown_kind_is_named_once_with_its_table() {
        let mut table = Table::new();
        table.insert("type".into(), config::Value::from("ftp"));
        let e = SourceConfig::parse(table).expect_err("unknown");
        let text = e.to_string();
        assert!(
            text.contains("source.type") && text.contains("`ftp`") && text.contains("file, ldap"),
            "{text}"
        );
    }
}
