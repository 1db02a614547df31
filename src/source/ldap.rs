//! The LDAP / Active Directory source: every entry under `base_dn` that matches `filter`,
//! read with RFC 2696 paged results so that directories of any size (and servers with
//! a size limit) are read completely.
//!
//! Completeness: any LDAP error — bind, a failed page, a size or time limit, a dropped
//! connection, an operation that takes longer than `timeout_secs` — fails the whole read.
//! One entry that cannot be mapped (no id attribute, a malformed email, ...) is an
//! `InvalidRecord` located by its DN, as in every other source.
//!
//! Mapping: configured attribute names fill the JSON person shape of `record.rs`, which
//! then validates it like any other record. AD's binary `objectGUID` is rendered as the
//! canonical GUID text (`id_format = "guid"`, automatic for `objectGUID`). Groups come
//! from a `memberOf`-style attribute on the entry (the group DN's first RDN value, or the
//! whole DN), or from a separate search of group entries (`group_base_dn`). Disabled
//! accounts: AD's `userAccountControl` ACCOUNTDISABLE bit (`active_mode = "ad"`), or any
//! attribute/value pair (`disabled_attribute`, `disabled_values`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::config::{ConfigError, SourceSettings};
use crate::secret::Secret;

use super::{RecordError, Snapshot, Source, SourceError, parse_record, snapshot_from};

/// The `[source]` keys of `type = "ldap"`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    #[serde(default)]
    starttls: bool,
    /// A PEM file of CA certificates to trust instead of the system's.
    tls_ca_file: Option<PathBuf>,
    /// Simple bind; without it the search is anonymous.
    bind_dn: Option<String>,
    bind_password: Option<Secret>,
    bind_password_file: Option<PathBuf>,
    base_dn: String,
    #[serde(default = "default_filter")]
    filter: String,
    #[serde(default)]
    scope: ScopeOpt,
    #[serde(default = "default_page_size")]
    page_size: u32,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    #[serde(default = "default_id_attribute")]
    id_attribute: String,
    id_format: Option<IdFormat>,
    #[serde(default = "default_email")]
    email_attribute: String,
    #[serde(default = "default_username")]
    username_attribute: String,
    #[serde(default = "default_first_name")]
    first_name_attribute: String,
    #[serde(default = "default_last_name")]
    last_name_attribute: String,
    #[serde(default = "default_phone")]
    phone_attribute: String,
    /// Person attribute name → LDAP attribute, e.g. `"motive.eld_mode" = "eldMode"`.
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    /// The entry's attribute listing its groups' DNs; `""` for none.
    #[serde(default = "default_group_attribute")]
    group_attribute: String,
    /// A group's name: the value of its DN's first RDN (`cn`), or the whole DN (`dn`).
    #[serde(default)]
    group_name: GroupName,
    /// Read groups from a search of group entries under this DN instead.
    group_base_dn: Option<String>,
    group_filter: Option<String>,
    group_member_attribute: Option<String>,
    active_mode: Option<ActiveMode>,
    disabled_attribute: Option<String>,
    disabled_values: Option<Vec<String>>,
}

fn default_filter() -> String {
    "(objectClass=person)".into()
}
fn default_page_size() -> u32 {
    500
}
fn default_timeout() -> u64 {
    30
}
fn default_id_attribute() -> String {
    "entryUUID".into()
}
fn default_email() -> String {
    "mail".into()
}
fn default_username() -> String {
    "uid".into()
}
fn default_first_name() -> String {
    "givenName".into()
}
fn default_last_name() -> String {
    "sn".into()
}
fn default_phone() -> String {
    "telephoneNumber".into()
}
fn default_group_attribute() -> String {
    "memberOf".into()
}

const DEFAULT_GROUP_FILTER: &str = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)\
                                    (objectClass=group)(objectClass=posixGroup))";
const DEFAULT_DISABLED_VALUES: &[&str] = &["TRUE"];
/// AD's `userAccountControl` ACCOUNTDISABLE flag.
const UF_ACCOUNTDISABLE: i64 = 0x2;

#[derive(Deserialize, Default, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum ScopeOpt {
    #[default]
    Sub,
    One,
}

#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum IdFormat {
    /// The attribute's text as is.
    Text,
    /// A 16-byte binary GUID (AD `objectGUID`) as canonical lowercase text.
    Guid,
}

#[derive(Deserialize, Default, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum GroupName {
    #[default]
    Cn,
    Dn,
}

#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum ActiveMode {
    /// Everyone found is active (disabled accounts are expected to be filtered out).
    All,
    /// AD: `userAccountControl` with the ACCOUNTDISABLE bit (2) set means disabled.
    Ad,
    /// `disabled_attribute` having one of `disabled_values` means disabled.
    Attribute,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Active {
    All,
    Ad,
    Attribute {
        attribute: String,
        /// Lowercased; `*` matches any value.
        values: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Groups {
    None,
    /// Group DNs in an attribute of the entry.
    MemberOf(String),
    /// A search of group entries, whose member attribute lists DNs (or user names).
    Search {
        base_dn: String,
        filter: String,
        member_attribute: String,
    },
}

/// A simple bind. A password file is read again at every connection, so a rotated
/// password is picked up without a restart.
#[derive(Debug)]
struct Bind {
    dn: String,
    password: Secret,
    file: Option<PathBuf>,
}

impl Bind {
    fn password(&self) -> Result<Secret, String> {
        match &self.file {
            None => Ok(self.password.clone()),
            Some(path) => Secret::from_file(path)
                .map_err(|e| format!("cannot read bind_password_file {}: {e}", path.display())),
        }
    }
}

/// Everything a read needs, validated.
#[derive(Debug)]
struct Config {
    url: Url,
    starttls: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Where `tls` came from, for messages; `None`: the system's trust store.
    tls_ca_file: Option<PathBuf>,
    bind: Option<Bind>,
    base_dn: String,
    filter: String,
    scope: ScopeOpt,
    page_size: i32,
    timeout: Duration,
    map: Mapping,
}

/// How an entry becomes a person (no I/O, unit-tested).
#[derive(Debug, Clone)]
struct Mapping {
    id_attribute: String,
    id_format: IdFormat,
    email: String,
    username: String,
    first_name: String,
    last_name: String,
    phone: String,
    attributes: BTreeMap<String, String>,
    groups: Groups,
    group_name: GroupName,
    active: Active,
}

pub struct LdapSource {
    config: Arc<Config>,
}

impl LdapSource {
    /// # Errors
    /// A missing or invalid key, named as `source.KEY`.
    pub fn from_settings(settings: &SourceSettings) -> Result<Self, ConfigError> {
        super::http::require(settings, &["url", "base_dn"])?;
        let o: Options = super::http::parse_options(settings)?;
        let url = Url::parse(&o.url)
            .map_err(|e| ConfigError::invalid("source.url", format!("`{}`: {e}", o.url)))?;
        match url.scheme() {
            "ldap" | "ldaps" => {}
            other => {
                return Err(ConfigError::invalid(
                    "source.url",
                    format!("scheme `{other}` is not supported (use ldap:// or ldaps://)"),
                ));
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ConfigError::invalid("source.url", "has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ConfigError::invalid(
                "source.url",
                "must not carry credentials; use `bind_dn` and `bind_password`",
            ));
        }
        if o.starttls && url.scheme() == "ldaps" {
            return Err(ConfigError::invalid(
                "source.starttls",
                "cannot be combined with an ldaps:// url (that is TLS already)",
            ));
        }
        let tls_ca_file = o.tls_ca_file.as_ref().map(|p| settings.path(p));
        let tls = match &tls_ca_file {
            None => None,
            Some(_) if url.scheme() == "ldap" && !o.starttls => {
                return Err(ConfigError::invalid(
                    "source.tls_ca_file",
                    "is only used with ldaps:// or starttls = true",
                ));
            }
            Some(path) => Some(tls_config(path)?),
        };
        let password_file = o.bind_password_file.as_ref().map(|p| settings.path(p));
        let password = settings.secret(
            "bind_password",
            o.bind_password,
            o.bind_password_file,
            o.bind_dn.is_some(),
        )?;
        let bind = match (o.bind_dn, password) {
            (Some(dn), Some(password)) if !dn.trim().is_empty() => Some(Bind {
                dn,
                password,
                file: password_file,
            }),
            (Some(_), _) => return Err(ConfigError::invalid("source.bind_dn", "is empty")),
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    "source.bind_password",
                    "is given without `bind_dn`",
                ));
            }
            (None, None) => None,
        };
        non_empty("source.base_dn", &o.base_dn)?;
        non_empty("source.filter", &o.filter)?;
        check_filter("source.filter", &o.filter)?;
        let page_size = i32::try_from(o.page_size)
            .ok()
            .filter(|n| (1..=100_000).contains(n))
            .ok_or_else(|| ConfigError::invalid("source.page_size", "must be 1 to 100000"))?;
        if o.timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "source.timeout_secs",
                "must be at least 1",
            ));
        }
        for (key, v) in [
            ("source.id_attribute", &o.id_attribute),
            ("source.email_attribute", &o.email_attribute),
            ("source.username_attribute", &o.username_attribute),
            ("source.first_name_attribute", &o.first_name_attribute),
            ("source.last_name_attribute", &o.last_name_attribute),
            ("source.phone_attribute", &o.phone_attribute),
        ] {
            check_attribute_name(key, v)?;
        }
        for (name, attr) in &o.attributes {
            if name.trim().is_empty() {
                return Err(ConfigError::invalid(
                    "source.attributes",
                    "has an empty name",
                ));
            }
            check_attribute_name(&format!("source.attributes.{name}"), attr)?;
        }
        let id_format =
            o.id_format
                .unwrap_or(if o.id_attribute.eq_ignore_ascii_case("objectGUID") {
                    IdFormat::Guid
                } else {
                    IdFormat::Text
                });
        let groups = match o.group_base_dn {
            Some(base_dn) => {
                non_empty("source.group_base_dn", &base_dn)?;
                let filter = o
                    .group_filter
                    .unwrap_or_else(|| DEFAULT_GROUP_FILTER.into());
                check_filter("source.group_filter", &filter)?;
                let member_attribute = o.group_member_attribute.unwrap_or_else(|| "member".into());
                check_attribute_name("source.group_member_attribute", &member_attribute)?;
                Groups::Search {
                    base_dn,
                    filter,
                    member_attribute,
                }
            }
            None => {
                for (key, given) in [
                    ("source.group_filter", o.group_filter.is_some()),
                    (
                        "source.group_member_attribute",
                        o.group_member_attribute.is_some(),
                    ),
                ] {
                    if given {
                        return Err(ConfigError::invalid(
                            key,
                            "only applies with `group_base_dn` (a search of group entries)",
                        ));
                    }
                }
                if o.group_attribute.trim().is_empty() {
                    Groups::None
                } else {
                    check_attribute_name("source.group_attribute", &o.group_attribute)?;
                    Groups::MemberOf(o.group_attribute)
                }
            }
        };
        let mode = o.active_mode.unwrap_or(if o.disabled_attribute.is_some() {
            ActiveMode::Attribute
        } else {
            ActiveMode::All
        });
        let active = match mode {
            ActiveMode::Attribute => {
                let Some(attribute) = o.disabled_attribute else {
                    return Err(ConfigError::invalid(
                        "source.disabled_attribute",
                        "is required with active_mode = \"attribute\"",
                    ));
                };
                check_attribute_name("source.disabled_attribute", &attribute)?;
                let values: Vec<String> = o
                    .disabled_values
                    .unwrap_or_else(|| {
                        DEFAULT_DISABLED_VALUES
                            .iter()
                            .map(|s| (*s).into())
                            .collect()
                    })
                    .iter()
                    .map(|v| v.trim().to_lowercase())
                    .collect();
                if values.is_empty() || values.iter().any(String::is_empty) {
                    return Err(ConfigError::invalid(
                        "source.disabled_values",
                        "must list non-empty values (\"*\" for any value)",
                    ));
                }
                Active::Attribute { attribute, values }
            }
            other => {
                for (key, given) in [
                    ("source.disabled_attribute", o.disabled_attribute.is_some()),
                    ("source.disabled_values", o.disabled_values.is_some()),
                ] {
                    if given {
                        return Err(ConfigError::invalid(
                            key,
                            "only applies with active_mode = \"attribute\"",
                        ));
                    }
                }
                if other == ActiveMode::Ad {
                    Active::Ad
                } else {
                    Active::All
                }
            }
        };
        Ok(Self {
            config: Arc::new(Config {
                url,
                starttls: o.starttls,
                tls,
                tls_ca_file,
                bind,
                base_dn: o.base_dn,
                filter: o.filter,
                scope: o.scope,
                page_size,
                timeout: Duration::from_secs(o.timeout_secs),
                map: Mapping {
                    id_attribute: o.id_attribute,
                    id_format,
                    email: o.email_attribute,
                    username: o.username_attribute,
                    first_name: o.first_name_attribute,
                    last_name: o.last_name_attribute,
                    phone: o.phone_attribute,
                    attributes: o.attributes,
                    groups,
                    group_name: o.group_name,
                    active,
                },
            }),
        })
    }
}

fn non_empty(key: &str, v: &str) -> Result<(), ConfigError> {
    if v.trim().is_empty() {
        return Err(ConfigError::invalid(key, "is empty"));
    }
    Ok(())
}

fn check_filter(key: &str, filter: &str) -> Result<(), ConfigError> {
    ldap3::parse_filter(filter)
        .map(|_| ())
        .map_err(|_| ConfigError::invalid(key, format!("`{filter}` is not a valid LDAP filter")))
}

/// An attribute description: letters, digits, `-`, `;` (options) or a dotted OID.
fn check_attribute_name(key: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ';' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!("`{name}` is not an LDAP attribute name"),
        ))
    }
}

fn tls_config(path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let key = "source.tls_ca_file";
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| ConfigError::invalid(key, format!("cannot read {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ConfigError::invalid(
            key,
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| {
            ConfigError::invalid(
                key,
                format!("{}: unusable certificate: {e}", path.display()),
            )
        })?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::invalid(key, format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[async_trait]
impl Source for LdapSource {
    async fn fetch(&self) -> Result<Snapshot, SourceError> {
        let config = Arc::clone(&self.config);
        let (users, groups) = run_isolated(&self.describe(), async move {
            let mut ldap = connect(&config).await?;
            let users = search_all(&mut ldap, &config, Target::Users).await?;
            let groups = match &config.map.groups {
                Groups::Search { .. } => {
                    Some(search_all(&mut ldap, &config, Target::Groups).await?)
                }
                _ => None,
            };
            let _ = ldap.unbind().await;
            Ok((users, groups))
        })
        .await?;
        self.config
            .map
            .snapshot(&users, groups.as_deref())
            .map_err(|message| SourceError::Unreadable {
                path: self.describe(),
                message,
            })
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "ldap {}{} base {} filter {}",
            c.url,
            if c.starttls { " (starttls)" } else { "" },
            c.base_dn,
            c.filter
        )
    }

    /// Binds, then asks for a handful of matching entries (not a full read).
    async fn check(&self) -> Result<String, SourceError> {
        let config = Arc::clone(&self.config);
        run_isolated(&self.describe(), async move {
            let mut ldap = connect(&config).await?;
            // Does the server announce RFC 2696 paged results?
            let paging = ldap
                .with_timeout(config.timeout)
                .search("", Scope::Base, "(objectClass=*)", vec!["supportedControl"])
                .await
                .ok()
                .and_then(|r| r.success().ok())
                .and_then(|(entries, _)| entries.into_iter().find(is_entry))
                .map(|e| {
                    SearchEntry::construct(e)
                        .attrs
                        .values()
                        .flatten()
                        .any(|v| v == "1.2.840.113556.1.4.319")
                });
            const PROBE: i32 = 5;
            let result = ldap
                .with_timeout(config.timeout)
                .with_search_options(ldap3::SearchOptions::new().sizelimit(PROBE))
                .search(
                    &config.base_dn,
                    config.scope.into(),
                    &config.filter,
                    vec![config.map.id_attribute.as_str()],
                )
                .await
                .map_err(|e| format!("probe search under {} failed: {e}", config.base_dn))?;
            // sizeLimitExceeded (rc 4) is the expected answer when more entries match; the
            // entries that came before it are still there.
            let ldap3::SearchResult(entries, outcome) = result;
            if outcome.rc != 0 && outcome.rc != 4 {
                return Err(format!(
                    "probe search under {} failed: {outcome}",
                    config.base_dn
                ));
            }
            let _ = ldap.unbind().await;
            // AD adds referrals (search result references) to other partitions.
            let entries: Vec<_> = entries.into_iter().filter(is_entry).collect();
            let n = entries.len();
            let Some(first) = entries.into_iter().next() else {
                return Err(format!(
                    "bind ok, but no entry under {} matches {}",
                    config.base_dn, config.filter
                ));
            };
            let count = if n as i32 >= PROBE {
                format!("at least {n} entries match")
            } else {
                format!("{n} entries match")
            };
            let first = SearchEntry::construct(first).dn;
            Ok(format!(
                "bound as {}; {count} (first: {first}); paged results {}",
                config.bind.as_ref().map_or("anonymous", |b| b.dn.as_str()),
                match paging {
                    Some(true) => "supported",
                    Some(false) => "NOT announced by the server (reads may hit its size limit)",
                    None => "unknown (root DSE not readable)",
                }
            ))
        })
        .await
    }
}

/// A real entry, not a referral or an intermediate message.
fn is_entry(e: &ldap3::ResultEntry) -> bool {
    !e.is_ref() && !e.is_intermediate()
}

impl From<ScopeOpt> for Scope {
    fn from(s: ScopeOpt) -> Self {
        match s {
            ScopeOpt::Sub => Scope::Subtree,
            ScopeOpt::One => Scope::OneLevel,
        }
    }
}

/// Runs the LDAP work in its own task, so that a panic inside the client library (it
/// panics on undecodable BER) fails this read instead of the pass.
async fn run_isolated<T: Send + 'static>(
    describe: &str,
    work: impl Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, SourceError> {
    let unreadable = |message: String| SourceError::Unreadable {
        path: describe.to_string(),
        message,
    };
    match tokio::spawn(work).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(message)) => Err(unreadable(message)),
        Err(e) => Err(unreadable(format!("the LDAP client failed: {e}"))),
    }
}

async fn connect(config: &Config) -> Result<ldap3::Ldap, String> {
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(config.timeout)
        .set_starttls(config.starttls);
    if let Some(tls) = &config.tls {
        settings = settings.set_config(Arc::clone(tls));
    }
    let (conn, mut ldap) = LdapConnAsync::from_url_with_settings(settings, &config.url)
        .await
        .map_err(|e| {
            format!(
                "cannot connect to {}: {}",
                config.url,
                connect_error(config, &e)
            )
        })?;
    ldap3::drive!(conn);
    if let Some(bind) = &config.bind {
        let dn = &bind.dn;
        let password = bind.password()?;
        ldap.with_timeout(config.timeout)
            .simple_bind(dn, password.expose())
            .await
            .and_then(ldap3::LdapResult::success)
            .map_err(|e| format!("bind as {dn} failed: {e}"))?;
    }
    Ok(ldap)
}

/// Why a connection failed, in words an operator can act on: a refused certificate says
/// which host it was refused for and what it was checked against.
fn connect_error(config: &Config, e: &ldap3::LdapError) -> String {
    use rustls::CertificateError as C;
    let host = config.url.host_str().unwrap_or_default();
    let trust = match &config.tls_ca_file {
        Some(path) => format!("tls_ca_file {}", path.display()),
        None => "the system trust store (set tls_ca_file for a private CA)".into(),
    };
    if let ldap3::LdapError::LdapResult { result } = e
        && config.starttls
    {
        return format!("the server refused StartTLS: {result}");
    }
    let Some(tls) = rustls_error(e) else {
        return e.to_string();
    };
    let rustls::Error::InvalidCertificate(cert) = tls else {
        return format!("TLS handshake with {host} failed: {tls}");
    };
    match cert {
        C::UnknownIssuer => format!(
            "the server's TLS certificate is not trusted for host {host}: it was not issued \
             by a CA in {trust}"
        ),
        C::NotValidForName => {
            format!("the server's TLS certificate is not valid for host {host}")
        }
        C::NotValidForNameContext { presented, .. } => format!(
            "the server's TLS certificate is not valid for host {host}: it was issued for {}",
            presented
                .iter()
                .map(|n| san_text(n))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        C::Expired | C::ExpiredContext { .. } => {
            format!("the server's TLS certificate for host {host} has expired ({cert:?})")
        }
        other => format!(
            "the server's TLS certificate for host {host} was refused ({other:?}); checked \
             against {trust}"
        ),
    }
}

/// A certificate name as rustls reports it (`DnsName("ldap.example.com")`), as plain text.
fn san_text(presented: &str) -> &str {
    presented
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .map_or(presented, |inner| inner.trim_matches('"'))
}

/// The rustls error behind a failed TLS handshake (tokio-rustls wraps it in an I/O error).
fn rustls_error(e: &ldap3::LdapError) -> Option<&rustls::Error> {
    let mut at: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = at {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // An I/O error's `source()` skips the error it wraps; look inside it.
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return Some(inner);
        }
        at = err.source();
    }
    None
}

#[derive(Clone, Copy)]
enum Target {
    Users,
    Groups,
}

/// One paged search, read to its end; any error fails it.
async fn search_all(
    ldap: &mut ldap3::Ldap,
    config: &Config,
    target: Target,
) -> Result<Vec<Entry>, String> {
    let (base, filter, attrs, what) = match (target, &config.map.groups) {
        (
            Target::Groups,
            Groups::Search {
                base_dn,
                filter,
                member_attribute,
            },
        ) => (
            base_dn.as_str(),
            filter.as_str(),
            vec![member_attribute.clone()],
            "groups",
        ),
        _ => (
            config.base_dn.as_str(),
            config.filter.as_str(),
            config.map.requested_attributes(),
            "entries",
        ),
    };
    let adapters: Vec<Box<dyn Adapter<String, Vec<String>>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(config.page_size)),
    ];
    let scope = match target {
        Target::Users => config.scope.into(),
        Target::Groups => Scope::Subtree,
    };
    let fail = |n: usize, e: &dyn std::fmt::Display| {
        format!("reading {what} under {base} failed after {n} entries: {e}")
    };
    let mut stream = ldap
        .with_timeout(config.timeout)
        .streaming_search_with(adapters, base, scope, filter, attrs)
        .await
        .map_err(|e| fail(0, &e))?;
    let mut out = Vec::new();
    loop {
        match stream.next().await {
            Ok(Some(entry)) => out.push(Entry::from(SearchEntry::construct(entry))),
            Ok(None) => break,
            Err(e) => {
                let _ = stream.finish().await;
                return Err(fail(out.len(), &e));
            }
        }
    }
    stream
        .finish()
        .await
        .success()
        .map_err(|e| fail(out.len(), &e))?;
    Ok(out)
}

/// One entry's DN and its attributes (names lowercased; values as bytes, binary or not).
#[derive(Debug, Clone, Default)]
struct Entry {
    dn: String,
    attrs: HashMap<String, Vec<Vec<u8>>>,
}

impl From<SearchEntry> for Entry {
    fn from(e: SearchEntry) -> Self {
        let mut attrs: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
        for (name, values) in e.attrs {
            attrs
                .entry(name.to_ascii_lowercase())
                .or_default()
                .extend(values.into_iter().map(String::into_bytes));
        }
        for (name, values) in e.bin_attrs {
            attrs
                .entry(name.to_ascii_lowercase())
                .or_default()
                .extend(values);
        }
        Self { dn: e.dn, attrs }
    }
}

impl Entry {
    fn values(&self, attr: &str) -> &[Vec<u8>] {
        self.attrs
            .get(&attr.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    /// The first non-blank value as text.
    fn text(&self, attr: &str) -> Option<String> {
        self.values(attr)
            .iter()
            .map(|v| String::from_utf8_lossy(v).trim().to_string())
            .find(|s| !s.is_empty())
    }

    /// Whether the server sent `attr` in ranges (`member;range=0-1499`, AD) instead of
    /// whole.
    fn ranged(&self, attr: &str) -> bool {
        let prefix = format!("{};range=", attr.to_ascii_lowercase());
        self.attrs.keys().any(|k| k.starts_with(&prefix))
    }

    fn texts(&self, attr: &str) -> Vec<String> {
        self.values(attr)
            .iter()
            .map(|v| String::from_utf8_lossy(v).trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// Which groups each member (a normalized DN, or a plain user name) is in.
type GroupIndex = HashMap<String, BTreeSet<String>>;

impl Mapping {
    fn requested_attributes(&self) -> Vec<String> {
        let mut attrs = vec![
            self.id_attribute.clone(),
            self.email.clone(),
            self.username.clone(),
            self.first_name.clone(),
            self.last_name.clone(),
            self.phone.clone(),
        ];
        attrs.extend(self.attributes.values().cloned());
        if let Groups::MemberOf(a) = &self.groups {
            attrs.push(a.clone());
        }
        match &self.active {
            Active::Ad => attrs.push("userAccountControl".into()),
            Active::Attribute { attribute, .. } => attrs.push(attribute.clone()),
            Active::All => {}
        }
        let mut seen = BTreeSet::new();
        attrs.retain(|a| seen.insert(a.to_ascii_lowercase()));
        attrs
    }

    /// # Errors
    /// A group whose members the server sent only in part (AD's ranged retrieval of
    /// large multi-valued attributes): membership would be incomplete.
    fn group_index(&self, groups: &[Entry]) -> Result<GroupIndex, String> {
        let Groups::Search {
            member_attribute, ..
        } = &self.groups
        else {
            return Ok(GroupIndex::new());
        };
        let mut index = GroupIndex::new();
        for g in groups {
            if g.ranged(member_attribute) {
                return Err(format!(
                    "group {} lists its `{member_attribute}` values in ranges (more than the \
                     server returns at once, e.g. AD's 1500); its membership cannot be read \
                     completely with a group search: use group_attribute = \"memberOf\" \
                     instead of group_base_dn",
                    g.dn
                ));
            }
            let name = self.group_display(&g.dn);
            for member in g.texts(member_attribute) {
                let key = if member.contains('=') {
                    normalize_dn(&member)
                } else {
                    member.to_lowercase()
                };
                index.entry(key).or_default().insert(name.clone());
            }
        }
        Ok(index)
    }

    fn group_display(&self, dn: &str) -> String {
        match self.group_name {
            GroupName::Dn => dn.trim().to_string(),
            GroupName::Cn => first_rdn_value(dn).unwrap_or_else(|| dn.trim().to_string()),
        }
    }

    /// # Errors
    /// Group data that cannot be read completely (see `group_index`).
    fn snapshot(&self, users: &[Entry], groups: Option<&[Entry]>) -> Result<Snapshot, String> {
        let index = groups.map(|g| self.group_index(g)).transpose()?;
        Ok(snapshot_from(users.iter().map(|entry| {
            let parsed = self
                .to_record(entry, index.as_ref())
                .and_then(|v| parse_record(&v));
            (format!("entry {}", entry.dn), parsed)
        })))
    }

    /// The JSON person shape of one entry; an error keeps what can protect the person.
    fn to_record(&self, e: &Entry, index: Option<&GroupIndex>) -> Result<Value, RecordError> {
        let email = e.text(&self.email);
        let fail = |id: Option<String>, message: String| RecordError {
            id,
            email: email.clone(),
            message,
        };
        let id = self.id(e).map_err(|m| fail(None, m))?;
        let mut obj = Map::new();
        obj.insert("id".into(), Value::String(id.clone()));
        for (field, attr) in [
            ("email", &self.email),
            ("username", &self.username),
            ("first_name", &self.first_name),
            ("last_name", &self.last_name),
            ("phone", &self.phone),
        ] {
            if let Some(v) = e.text(attr) {
                obj.insert(field.into(), Value::String(v));
            }
        }
        let active = match &self.active {
            Active::All => true,
            Active::Ad => {
                let Some(raw) = e.text("userAccountControl") else {
                    return Err(fail(
                        Some(id),
                        "no userAccountControl (is it readable by the bind DN?); cannot tell \
                         whether the account is disabled"
                            .into(),
                    ));
                };
                let flags: i64 = raw.parse().map_err(|_| {
                    fail(
                        Some(id.clone()),
                        format!("userAccountControl `{raw}` is not a number"),
                    )
                })?;
                flags & UF_ACCOUNTDISABLE == 0
            }
            Active::Attribute { attribute, values } => !e.texts(attribute).iter().any(|v| {
                values
                    .iter()
                    .any(|want| want == "*" || *want == v.to_lowercase())
            }),
        };
        obj.insert("active".into(), Value::Bool(active));
        let mut groups = BTreeSet::new();
        match (&self.groups, index) {
            (Groups::MemberOf(attr), _) if e.ranged(attr) => {
                return Err(fail(
                    Some(id),
                    format!(
                        "`{attr}` came in ranges (too many values to return at once); the \
                         groups cannot be read completely"
                    ),
                ));
            }
            (Groups::MemberOf(attr), _) => {
                groups.extend(e.texts(attr).iter().map(|dn| self.group_display(dn)));
            }
            (Groups::Search { .. }, Some(index)) => {
                if let Some(g) = index.get(&normalize_dn(&e.dn)) {
                    groups.extend(g.iter().cloned());
                }
                if let Some(name) = e.text(&self.username)
                    && let Some(g) = index.get(&name.to_lowercase())
                {
                    groups.extend(g.iter().cloned());
                }
            }
            _ => {}
        }
        groups.retain(|g| !g.is_empty());
        if !groups.is_empty() {
            obj.insert(
                "groups".into(),
                Value::Array(groups.into_iter().map(Value::String).collect()),
            );
        }
        let attributes: Map<String, Value> = self
            .attributes
            .iter()
            .filter_map(|(name, attr)| e.text(attr).map(|v| (name.clone(), Value::String(v))))
            .collect();
        if !attributes.is_empty() {
            obj.insert("attributes".into(), Value::Object(attributes));
        }
        Ok(Value::Object(obj))
    }

    fn id(&self, e: &Entry) -> Result<String, String> {
        let attr = &self.id_attribute;
        let values = e.values(attr);
        let first = match values {
            [] => return Err(format!("no `{attr}` attribute (the id)")),
            [one] => one,
            more => {
                return Err(format!(
                    "`{attr}` (the id) has {} values, expected one",
                    more.len()
                ));
            }
        };
        match self.id_format {
            IdFormat::Guid => guid_text(first).ok_or_else(|| {
                format!(
                    "`{attr}` is not a GUID ({} bytes; expected 16 bytes or GUID text)",
                    first.len()
                )
            }),
            IdFormat::Text => match std::str::from_utf8(first) {
                Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                Ok(_) => Err(format!("`{attr}` (the id) is empty")),
                Err(_) => Err(format!(
                    "`{attr}` (the id) is binary; set id_format = \"guid\" if it is a GUID"
                )),
            },
        }
    }
}

/// A binary GUID as AD shows it: the first three groups are little-endian, e.g. bytes
/// `00 01 02 … 0f` → `03020100-0504-0706-0809-0a0b0c0d0e0f`. Text that already is a GUID
/// (with or without braces) is normalized to the same form.
fn guid_text(raw: &[u8]) -> Option<String> {
    if let [a0, a1, a2, a3, b0, b1, c0, c1, rest @ ..] = raw
        && rest.len() == 8
    {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        return Some(format!(
            "{}-{}-{}-{}-{}",
            hex(&[*a3, *a2, *a1, *a0]),
            hex(&[*b1, *b0]),
            hex(&[*c1, *c0]),
            hex(&rest[..2]),
            hex(&rest[2..])
        ));
    }
    let text = std::str::from_utf8(raw).ok()?.trim();
    let text = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(text);
    let groups: Vec<&str> = text.split('-').collect();
    let shape_ok = groups.len() == 5
        && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()));
    shape_ok.then(|| text.to_ascii_lowercase())
}

/// Compares DNs loosely: case-insensitive, no blanks around separators.
fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut escaped = false;
    for c in dn.trim().chars() {
        if escaped {
            out.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                out.push(c);
                escaped = true;
            }
            ',' | '=' | '+' => {
                while out.ends_with(' ') {
                    out.pop();
                }
                out.push(c);
            }
            ' ' if out.ends_with([',', '=', '+']) => {}
            _ => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// The value of a DN's first RDN, unescaped: `cn=Ops\, North,ou=g,dc=x` → `Ops, North`.
fn first_rdn_value(dn: &str) -> Option<String> {
    let (_, rest) = dn.trim().split_once('=')?;
    let mut out = Vec::new();
    let mut bytes = rest.bytes().peekable();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => {
                let Some(n) = bytes.next() else { break };
                let hex_pair = bytes
                    .peek()
                    .copied()
                    .filter(|_| n.is_ascii_hexdigit())
                    .filter(u8::is_ascii_hexdigit);
                match hex_pair {
                    Some(m) => {
                        bytes.next();
                        let s = [n, m];
                        let v = std::str::from_utf8(&s)
                            .ok()
                            .and_then(|s| u8::from_str_radix(s, 16).ok())?;
                        out.push(v);
                    }
                    None => out.push(n),
                }
            }
            b',' | b'+' => break,
            _ => out.push(b),
        }
    }
    let s = String::from_utf8_lossy(&out).trim().to_string();
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml_like: &[(&str, Value)]) -> SourceSettings {
        let options = toml_like
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        crate::source::test_settings("ldap", options)
    }

    fn base() -> Vec<(&'static str, Value)> {
        vec![
            ("url", Value::from("ldap://127.0.0.1:389")),
            ("base_dn", Value::from("dc=example,dc=com")),
        ]
    }

    fn with(extra: &[(&'static str, Value)]) -> SourceSettings {
        let mut all = base();
        all.extend(extra.iter().cloned());
        settings(&all)
    }

    fn err(s: SourceSettings) -> String {
        match LdapSource::from_settings(&s) {
            Ok(_) => panic!("expected a config error"),
            Err(e) => e.to_string(),
        }
    }

    fn entry(dn: &str, attrs: &[(&str, &[&[u8]])]) -> Entry {
        Entry {
            dn: dn.into(),
            attrs: attrs
                .iter()
                .map(|(k, vs)| {
                    (
                        k.to_ascii_lowercase(),
                        vs.iter().map(|v| v.to_vec()).collect(),
                    )
                })
                .collect(),
        }
    }

    fn mapping(extra: &[(&'static str, Value)]) -> Mapping {
        let s = LdapSource::from_settings(&with(extra)).expect("valid");
        s.config.map.clone()
    }

    #[test]
    fn guid_rendering_matches_ad() {
        let raw: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            guid_text(&raw).as_deref(),
            Some("03020100-0504-0706-0809-0a0b0c0d0e0f")
        );
        // objectGUID base64 `1B0trVAx10qGfYz8a4nrsQ==`; the text agrees with .NET's
        // `new Guid(bytes)` and Python's `uuid.UUID(bytes_le=…)`.
        let real = [
            0xd4, 0x1d, 0x2d, 0xad, 0x50, 0x31, 0xd7, 0x4a, 0x86, 0x7d, 0x8c, 0xfc, 0x6b, 0x89,
            0xeb, 0xb1,
        ];
        assert_eq!(
            guid_text(&real).as_deref(),
            Some("ad2d1dd4-3150-4ad7-867d-8cfc6b89ebb1")
        );
        assert_eq!(
            guid_text(b"{AD2D1DD4-3150-4AD7-867D-8CFC6B89EBB1}").as_deref(),
            Some("ad2d1dd4-3150-4ad7-867d-8cfc6b89ebb1")
        );
        assert_eq!(guid_text(b"short"), None);
    }

    #[test]
    fn dn_helpers() {
        assert_eq!(
            first_rdn_value("CN=Ops\\, North,OU=Groups,DC=x").as_deref(),
            Some("Ops, North")
        );
        assert_eq!(
            first_rdn_value("cn=caf\\c3\\a9,dc=x").as_deref(),
            Some("café")
        );
        assert_eq!(first_rdn_value("cn=drivers").as_deref(), Some("drivers"));
        assert_eq!(first_rdn_value("nodn"), None);
        assert_eq!(
            normalize_dn("CN=Ann Lee, OU=People ,DC=Example"),
            "cn=ann lee,ou=people,dc=example"
        );
    }

    #[test]
    fn ad_entry_maps_to_a_person() {
        let m = mapping(&[
            ("id_attribute", Value::from("objectGUID")),
            ("username_attribute", Value::from("sAMAccountName")),
            ("active_mode", Value::from("ad")),
            (
                "attributes",
                serde_json::json!({"motive.eld_mode": "eldMode"}),
            ),
        ]);
        assert_eq!(m.id_format, IdFormat::Guid);
        let guid: Vec<u8> = (0u8..16).collect();
        let e = entry(
            "CN=Ann Lee,OU=People,DC=corp",
            &[
                ("objectGUID", &[&guid]),
                ("sAMAccountName", &[b"ann"]),
                ("givenName", &[b"Ann"]),
                ("SN", &[b"Lee"]),
                ("mail", &[b"ann@corp.example"]),
                ("userAccountControl", &[b"514"]),
                (
                    "memberOf",
                    &[
                        b"CN=Drivers,OU=Groups,DC=corp",
                        b"CN=Ops\\, North,OU=Groups,DC=corp",
                    ],
                ),
                ("eldMode", &[b"logs"]),
            ],
        );
        let s = m.snapshot(&[e], None).expect("snapshot");
        assert!(s.invalid.is_empty(), "{:?}", s.invalid);
        let p = &s.people[0];
        assert_eq!(p.id.as_str(), "03020100-0504-0706-0809-0a0b0c0d0e0f");
        assert_eq!(p.username.as_deref(), Some("ann"));
        assert_eq!(p.last_name.as_deref(), Some("Lee"));
        assert!(!p.active, "514 has ACCOUNTDISABLE");
        assert!(p.groups.contains("Drivers") && p.groups.contains("Ops, North"));
        assert_eq!(p.attributes["motive.eld_mode"], "logs");
    }

    #[test]
    fn bad_entries_are_invalid_records_named_by_dn() {
        let m = mapping(&[("active_mode", Value::from("ad"))]);
        let s = m
            .snapshot(
                &[
                    entry("uid=a,dc=x", &[("mail", &[b"a@x.io"])]),
                    entry(
                        "uid=b,dc=x",
                        &[("entryUUID", &[b"b1"]), ("userAccountControl", &[b"x"])],
                    ),
                    entry("uid=c,dc=x", &[("entryUUID", &[b"c1"])]),
                    entry(
                        "uid=d,dc=x",
                        &[
                            ("entryUUID", &[b"d1"]),
                            ("userAccountControl", &[b"512"]),
                            ("mail", &[b"not-an-email"]),
                        ],
                    ),
                    entry(
                        "uid=e,dc=x",
                        &[("entryUUID", &[b"e1"]), ("userAccountControl", &[b"512"])],
                    ),
                ],
                None,
            )
            .expect("snapshot");
        assert_eq!(s.people.len(), 1);
        let msg = |dn: &str| {
            s.invalid
                .iter()
                .find(|r| r.location == format!("entry {dn}"))
                .unwrap_or_else(|| panic!("no invalid record for {dn}: {:?}", s.invalid))
                .clone()
        };
        let a = msg("uid=a,dc=x");
        assert!(a.message.contains("no `entryUUID`"), "{}", a.message);
        assert_eq!(a.email.as_deref(), Some("a@x.io"));
        assert!(msg("uid=b,dc=x").message.contains("not a number"));
        assert_eq!(msg("uid=c,dc=x").id.as_deref(), Some("c1"));
        assert!(msg("uid=d,dc=x").message.contains("malformed email"));
    }

    #[test]
    fn disabled_attribute_and_group_search() {
        let m = mapping(&[
            ("disabled_attribute", Value::from("pwdAccountLockedTime")),
            ("disabled_values", serde_json::json!(["*"])),
            ("group_base_dn", Value::from("ou=groups,dc=x")),
            ("group_name", Value::from("dn")),
        ]);
        let users = [
            entry(
                "uid=a,ou=people,dc=x",
                &[("entryUUID", &[b"1"]), ("uid", &[b"a"])],
            ),
            entry(
                "uid=b,ou=people,dc=x",
                &[
                    ("entryUUID", &[b"2"]),
                    ("uid", &[b"b"]),
                    ("pwdAccountLockedTime", &[b"000001010000Z"]),
                ],
            ),
        ];
        let groups = [
            entry(
                "cn=drivers,ou=groups,dc=x",
                &[("member", &[b"UID=a, ou=People,dc=x"])],
            ),
            entry("cn=posix,ou=groups,dc=x", &[("member", &[b"b"])]),
        ];
        let m = Mapping {
            groups: Groups::Search {
                base_dn: "ou=groups,dc=x".into(),
                filter: DEFAULT_GROUP_FILTER.into(),
                member_attribute: "member".into(),
            },
            ..m
        };
        let s = m.snapshot(&users, Some(&groups)).expect("snapshot");
        assert!(s.invalid.is_empty(), "{:?}", s.invalid);
        assert!(s.people[0].active);
        assert!(s.people[0].groups.contains("cn=drivers,ou=groups,dc=x"));
        assert!(!s.people[1].active);
        assert!(s.people[1].groups.contains("cn=posix,ou=groups,dc=x"));
    }

    #[test]
    fn ranged_values_are_never_taken_as_complete() {
        let m = mapping(&[("group_base_dn", Value::from("ou=groups,dc=x"))]);
        let users = [entry("uid=a,dc=x", &[("entryUUID", &[b"1"])])];
        let big = [entry(
            "cn=all,ou=groups,dc=x",
            &[("member;range=0-1499", &[b"uid=a,dc=x"])],
        )];
        let e = m
            .snapshot(&users, Some(&big))
            .expect_err("incomplete group");
        assert!(
            e.contains("cn=all,ou=groups,dc=x") && e.contains("ranges"),
            "{e}"
        );

        let m = mapping(&[]);
        let s = m
            .snapshot(
                &[entry(
                    "uid=b,dc=x",
                    &[
                        ("entryUUID", &[b"2"]),
                        ("memberOf;range=0-1499", &[b"cn=g,dc=x"]),
                    ],
                )],
                None,
            )
            .expect("snapshot");
        assert_eq!(s.invalid.len(), 1);
        assert_eq!(s.invalid[0].id.as_deref(), Some("2"));
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let m = mapping(&[]);
        let s = m
            .snapshot(
                &[
                    entry("uid=a,dc=x", &[("entryUUID", &[b"same"])]),
                    entry("uid=b,dc=x", &[("entryUUID", &[b"same"])]),
                ],
                None,
            )
            .expect("snapshot");
        assert!(s.people.is_empty());
        assert_eq!(s.invalid.len(), 2);
    }

    #[test]
    fn requested_attributes_are_deduplicated() {
        let m = mapping(&[
            ("active_mode", Value::from("ad")),
            ("attributes", serde_json::json!({"a": "MAIL", "b": "title"})),
        ]);
        let attrs = m.requested_attributes();
        assert!(attrs.contains(&"userAccountControl".to_string()));
        assert!(attrs.contains(&"memberOf".to_string()));
        assert!(attrs.contains(&"title".to_string()));
        assert_eq!(
            attrs
                .iter()
                .filter(|a| a.eq_ignore_ascii_case("mail"))
                .count(),
            1
        );
    }

    #[test]
    fn config_errors_name_the_key() {
        assert!(err(settings(&[("url", Value::from("ldap://h"))])).contains("source.base_dn"));
        assert!(err(settings(&[("base_dn", Value::from("dc=x"))])).contains("source.url"));
        assert!(err(with(&[("url", Value::from("http://h"))])).contains("source.url"));
        assert!(
            err(with(&[
                ("url", Value::from("ldaps://h")),
                ("starttls", Value::from(true))
            ]))
            .contains("source.starttls")
        );
        assert!(
            err(with(&[("bind_dn", Value::from("cn=r,dc=x"))])).contains("source.bind_password")
        );
        assert!(
            err(with(&[("bind_password", Value::from("pw"))])).contains("source.bind_password")
        );
        assert!(err(with(&[("page_size", Value::from(0))])).contains("source.page_size"));
        assert!(err(with(&[("page_size", Value::from("many"))])).contains("source.page_size"));
        assert!(
            err(with(&[("filter", Value::from("objectClass=person)"))])).contains("source.filter")
        );
        assert!(
            err(with(&[("active_mode", Value::from("attribute"))]))
                .contains("source.disabled_attribute")
        );
        assert!(
            err(with(&[
                ("active_mode", Value::from("ad")),
                ("disabled_values", serde_json::json!(["x"]))
            ]))
            .contains("source.disabled_values")
        );
        assert!(
            err(with(&[("group_filter", Value::from("(cn=*)"))])).contains("source.group_filter")
        );
        assert!(err(with(&[("id_format", Value::from("uuid"))])).contains("source.id_format"));
        assert!(err(with(&[("bind_pasword", Value::from("x"))])).contains("bind_pasword"));
        assert!(
            err(with(&[("tls_ca_file", Value::from("ca.pem"))])).contains("source.tls_ca_file")
        );
        assert!(
            err(with(&[
                ("url", Value::from("ldaps://h")),
                ("tls_ca_file", Value::from("ca.pem"))
            ]))
            .contains("source.tls_ca_file")
        );
    }

    #[test]
    fn the_password_never_shows() {
        let s = LdapSource::from_settings(&with(&[
            ("bind_dn", Value::from("cn=r,dc=x")),
            ("bind_password", Value::from("hunter2-secret")),
        ]))
        .expect("valid");
        assert!(!format!("{:?}", s.config).contains("hunter2"));
        assert!(!s.describe().contains("hunter2"));
    }

    #[test]
    fn refused_certificates_are_explained_with_the_host() {
        use rustls::CertificateError as C;
        let s = LdapSource::from_settings(&with(&[("url", Value::from("ldaps://dc1.corp.test"))]))
            .expect("valid");
        let tls = |cert: C| ldap3::LdapError::Io {
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(cert),
            ),
        };
        let unknown = connect_error(&s.config, &tls(C::UnknownIssuer));
        assert!(
            unknown.contains("not trusted for host dc1.corp.test")
                && unknown.contains("system trust store"),
            "{unknown}"
        );
        let name = connect_error(
            &s.config,
            &tls(C::NotValidForNameContext {
                expected: rustls::pki_types::ServerName::try_from("dc1.corp.test")
                    .expect("name")
                    .to_owned(),
                presented: vec![
                    "DnsName(\"dc2.corp.test\")".into(),
                    "IpAddress(10.0.0.2)".into(),
                ],
            }),
        );
        assert!(
            name.contains(
                "not valid for host dc1.corp.test: it was issued for dc2.corp.test, 10.0.0.2"
            ),
            "{name}"
        );
        let expired = connect_error(&s.config, &tls(C::Expired));
        assert!(expired.contains("has expired"), "{expired}");
        // Anything that is not TLS keeps the client's own words.
        let plain = connect_error(
            &s.config,
            &ldap3::LdapError::Io {
                source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            },
        );
        assert!(plain.contains("refused"), "{plain}");
    }
}
