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
pub(super) fn connect_error(config: &Config, e: &ldap3::LdapError) -> String {
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
