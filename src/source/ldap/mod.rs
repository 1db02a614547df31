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
//!
//! Files: `options.rs` (the `[source]` keys and what they mean together), `conn.rs`
//! (connecting, binding, paged searches), `mapping.rs` (an entry into a person).

mod conn;
mod mapping;
#[cfg(test)]
mod no_panic;
mod options;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ldap3::{Scope, SearchEntry};
use url::Url;

use crate::config::Secret;

use super::{Build, RecordError, Snapshot, Source, SourceError, parse_record, snapshot_from};

use conn::*;
use mapping::*;
pub use options::Options;
use options::*;

/// A simple bind. A password file is read again at every connection, so a rotated
/// password is picked up without a restart.
#[derive(Debug)]
struct Bind {
    dn: String,
    password: Secret,
    file: Option<PathBuf>,
}

impl Bind {
    fn password(&self) -> Result<Secret, LdapError> {
        match &self.file {
            None => Ok(self.password.clone()),
            Some(path) => {
                Secret::from_file(path).map_err(|e| LdapError(format!("bind_password_file: {e}")))
            }
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

pub struct LdapSource {
    config: Arc<Config>,
}

#[async_trait]
impl Source for LdapSource {
    async fn fetch(&self, _budget: &crate::budget::Budget) -> Result<Snapshot, SourceError> {
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
            .map_err(|e| SourceError::Unreadable {
                path: self.describe(),
                message: e.to_string(),
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
    async fn check(&self, _budget: &crate::budget::Budget) -> Result<String, SourceError> {
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
                return Err(LdapError(format!(
                    "probe search under {} failed: {outcome}",
                    config.base_dn
                )));
            }
            let _ = ldap.unbind().await;
            // AD adds referrals (search result references) to other partitions.
            let entries: Vec<_> = entries.into_iter().filter(is_entry).collect();
            let n = entries.len();
            let Some(first) = entries.into_iter().next() else {
                return Err(LdapError(format!(
                    "bind ok, but no entry under {} matches {}",
                    config.base_dn, config.filter
                )));
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
