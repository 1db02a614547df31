//! The `[source]` keys of `type = "ldap"`, and what they mean together.

#[allow(clippy::wildcard_imports)]
use super::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::config::{ConfigError, Secret};

use super::Build;

/// The `[source]` keys of `type = "ldap"`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub(super) url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    #[serde(default)]
    pub(super) starttls: bool,
    /// A PEM file of CA certificates to trust instead of the system's.
    pub(super) tls_ca_file: Option<PathBuf>,
    /// Simple bind; without it the search is anonymous.
    pub(super) bind_dn: Option<String>,
    pub(super) bind_password: Option<Secret>,
    pub(super) bind_password_file: Option<PathBuf>,
    pub(super) base_dn: String,
    #[serde(default = "default_filter")]
    pub(super) filter: String,
    #[serde(default)]
    pub(super) scope: ScopeOpt,
    #[serde(default = "default_page_size")]
    pub(super) page_size: u32,
    #[serde(default = "default_timeout")]
    pub(super) timeout_secs: u64,
    #[serde(default = "default_id_attribute")]
    pub(super) id_attribute: String,
    pub(super) id_format: Option<IdFormat>,
    #[serde(default = "default_email")]
    pub(super) email_attribute: String,
    #[serde(default = "default_username")]
    pub(super) username_attribute: String,
    #[serde(default = "default_first_name")]
    pub(super) first_name_attribute: String,
    #[serde(default = "default_last_name")]
    pub(super) last_name_attribute: String,
    #[serde(default = "default_phone")]
    pub(super) phone_attribute: String,
    /// The attributes holding `start_date` and `end_date` (GeneralizedTime, or ISO 8601
    /// text); none by default.
    pub(super) start_date_attribute: Option<String>,
    pub(super) end_date_attribute: Option<String>,
    /// Person attribute name → LDAP attribute, e.g. `"motive.eld_mode" = "eldMode"`.
    #[serde(default)]
    pub(super) attributes: BTreeMap<String, String>,
    /// The entry's attribute listing its groups' DNs; `""` for none.
    #[serde(default = "default_group_attribute")]
    pub(super) group_attribute: String,
    /// A group's name: the value of its DN's first RDN (`cn`), or the whole DN (`dn`).
    #[serde(default)]
    pub(super) group_name: GroupName,
    /// Read groups from a search of group entries under this DN instead.
    pub(super) group_base_dn: Option<String>,
    pub(super) group_filter: Option<String>,
    pub(super) group_member_attribute: Option<String>,
    pub(super) active_mode: Option<ActiveMode>,
    pub(super) disabled_attribute: Option<String>,
    pub(super) disabled_values: Option<Vec<String>>,
}

pub(super) fn default_filter() -> String {
    "(objectClass=person)".into()
}
pub(super) fn default_page_size() -> u32 {
    500
}
pub(super) fn default_timeout() -> u64 {
    30
}
pub(super) fn default_id_attribute() -> String {
    "entryUUID".into()
}
pub(super) fn default_email() -> String {
    "mail".into()
}
pub(super) fn default_username() -> String {
    "uid".into()
}
pub(super) fn default_first_name() -> String {
    "givenName".into()
}
pub(super) fn default_last_name() -> String {
    "sn".into()
}
pub(super) fn default_phone() -> String {
    "telephoneNumber".into()
}
pub(super) fn default_group_attribute() -> String {
    "memberOf".into()
}

pub(super) const DEFAULT_GROUP_FILTER: &str = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)\
                                    (objectClass=group)(objectClass=posixGroup))";
pub(super) const DEFAULT_DISABLED_VALUES: &[&str] = &["TRUE"];
/// AD's `userAccountControl` ACCOUNTDISABLE flag.
pub(super) const UF_ACCOUNTDISABLE: i64 = 0x2;

#[derive(Deserialize, Default, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum ScopeOpt {
    #[default]
    Sub,
    One,
}

#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum IdFormat {
    /// The attribute's text as is.
    Text,
    /// A 16-byte binary GUID (AD `objectGUID`) as canonical lowercase text.
    Guid,
}

#[derive(Deserialize, Default, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum GroupName {
    #[default]
    Cn,
    Dn,
}

#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum ActiveMode {
    /// Everyone found is active (disabled accounts are expected to be filtered out).
    All,
    /// AD: `userAccountControl` with the ACCOUNTDISABLE bit (2) set means disabled.
    Ad,
    /// `disabled_attribute` having one of `disabled_values` means disabled.
    Attribute,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Active {
    All,
    Ad,
    Attribute {
        attribute: String,
        /// Lowercased; `*` matches any value.
        values: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Groups {
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

impl LdapSource {
    /// # Errors
    /// A missing or invalid key, named as `source.KEY`.
    pub fn from_options(o: Options, settings: &Build) -> Result<Self, ConfigError> {
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
        for (key, attr) in [
            ("source.start_date_attribute", &o.start_date_attribute),
            ("source.end_date_attribute", &o.end_date_attribute),
        ] {
            if let Some(attr) = attr {
                check_attribute_name(key, attr)?;
            }
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
                    start_date: o.start_date_attribute,
                    end_date: o.end_date_attribute,
                    attributes: o.attributes,
                    groups,
                    group_name: o.group_name,
                    active,
                },
            }),
        })
    }
}

pub(super) fn non_empty(key: &str, v: &str) -> Result<(), ConfigError> {
    if v.trim().is_empty() {
        return Err(ConfigError::invalid(key, "is empty"));
    }
    Ok(())
}

pub(super) fn check_filter(key: &str, filter: &str) -> Result<(), ConfigError> {
    ldap3::parse_filter(filter)
        .map(|_| ())
        .map_err(|_| ConfigError::invalid(key, format!("`{filter}` is not a valid LDAP filter")))
}

/// An attribute description: letters, digits, `-`, `;` (options) or a dotted OID.
pub(super) fn check_attribute_name(key: &str, name: &str) -> Result<(), ConfigError> {
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

pub(super) fn tls_config(path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
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
