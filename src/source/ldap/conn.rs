//! Connecting (TLS, StartTLS, bind) and paged searches read to their end.

#[allow(clippy::wildcard_imports)]
use super::*;
use std::sync::Arc;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};

use super::SourceError;

/// A real entry, not a referral or an intermediate message.
pub(super) fn is_entry(e: &ldap3::ResultEntry) -> bool {
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

/// Why an LDAP read failed (no password in it); the whole read fails with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(super) struct LdapError(pub String);

impl From<String> for LdapError {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// Runs the LDAP work in its own task, so that a panic inside the client library (it
/// panics on undecodable BER) fails this read instead of the pass.
pub(super) async fn run_isolated<T: Send + 'static>(
    describe: &str,
    work: impl Future<Output = Result<T, LdapError>> + Send + 'static,
) -> Result<T, SourceError> {
    let unreadable = |message: String| SourceError::Unreadable {
        path: describe.to_string(),
        message,
    };
    match tokio::spawn(work).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(unreadable(e.0)),
        Err(e) => Err(unreadable(format!("the LDAP client failed: {e}"))),
    }
}

pub(super) async fn connect(config: &Config) -> Result<ldap3::Ldap, LdapError> {
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(config.timeout)
        .set_starttls(config.starttls);
    if let Some(tls) = &config.tls {
        settings = settings.set_config(Arc::clone(tls));
    }
    let (conn, mut ldap) = LdapConnAsync::from_url_with_settings(settings, &config.url)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", config.url))?;
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

#[derive(Clone, Copy)]
pub(super) enum Target {
    Users,
    Groups,
}

/// One paged search, read to its end; any error fails it.
pub(super) async fn search_all(
    ldap: &mut ldap3::Ldap,
    config: &Config,
    target: Target,
) -> Result<Vec<Entry>, LdapError> {
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
                return Err(fail(out.len(), &e).into());
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
