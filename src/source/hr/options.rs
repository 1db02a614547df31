//! The `[source]` keys of `type = "http"`, and what they mean together.

use std::collections::BTreeMap;
use std::path::PathBuf;

use reqwest::header::HeaderName;
use serde::Deserialize;

use super::super::Build;
use super::super::remote::{
    Auth, Credential, JsonGet, Remote, check_http_url, check_page_limits, check_token_url,
    default_max_page_mb,
};
use super::{HttpSource, Mapping};
use crate::config::{ConfigError, Secret};
use crate::http::oauth2::{ClientAuth, ClientCredentials, ClientSecret};

/// The `[source]` keys of `type = "http"`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    url: String,
    /// `header` (`auth_header` and `auth_value`, or no credential) or `oauth2`.
    #[serde(default)]
    auth: AuthMode,
    /// Default `Authorization`.
    auth_header: Option<String>,
    auth_value: Option<Secret>,
    auth_value_file: Option<PathBuf>,
    /// OAuth2 client credentials (`auth = "oauth2"`): the token endpoint.
    token_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    client_secret_file: Option<PathBuf>,
    /// Space-separated scopes; none: the server's default.
    scope: Option<String>,
    /// How the client authenticates to the token endpoint (default `basic`).
    client_auth: Option<ClientAuth>,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    #[serde(default = "default_retries")]
    retries: u32,
    #[serde(default)]
    records_pointer: String,
    fields: Fields,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    /// Values of `fields.active` that mean active (case-insensitive); every other value
    /// means inactive. Without it, `active` must be a boolean (or true/false/yes/no/1/0).
    active_values: Option<Vec<String>>,
    /// For `fields.groups` listing objects: the pointer to the name inside each.
    group_item_pointer: Option<String>,
    #[serde(default)]
    pagination: Pagination,
    next_pointer: Option<String>,
    page_param: Option<String>,
    page_start: Option<u64>,
    offset_param: Option<String>,
    offset_start: Option<u64>,
    page_size_param: Option<String>,
    page_size: Option<u64>,
    total_pointer: Option<String>,
    #[serde(default = "default_max_pages")]
    max_pages: u64,
    /// The largest page roster reads, in MiB.
    #[serde(default = "default_max_page_mb")]
    max_page_mb: u64,
}

fn default_timeout() -> u64 {
    30
}
fn default_retries() -> u32 {
    2
}
fn default_max_pages() -> u64 {
    10_000
}

/// Person field → JSON pointer inside one record.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct Fields {
    pub(super) id: String,
    pub(super) email: Option<String>,
    pub(super) username: Option<String>,
    pub(super) first_name: Option<String>,
    pub(super) last_name: Option<String>,
    pub(super) phone: Option<String>,
    pub(super) active: Option<String>,
    pub(super) groups: Option<String>,
    pub(super) start_date: Option<String>,
    pub(super) end_date: Option<String>,
}

/// How the HTTP source's requests are authorized.
#[derive(Deserialize, Default, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum AuthMode {
    /// A static credential in `auth_header` (or none).
    #[default]
    Header,
    /// OAuth2 client credentials (RFC 6749 §4.4).
    Oauth2,
}

#[derive(Deserialize, Default, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Pagination {
    #[default]
    None,
    NextLink,
    Page,
    Offset,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Paging {
    None,
    /// `Some(pointer)` to a URL in the body, `None` for the `Link` header.
    NextLink(Option<String>),
    Numbered {
        param: String,
        start: u64,
        /// Counts records (offset) rather than pages.
        by_offset: bool,
        size: Option<(String, u64)>,
        total_pointer: Option<String>,
    },
}

/// `auth = "header"`: `auth_header` and `auth_value` (or none), no OAuth2 key.
fn header_auth(o: &Options, b: &Build) -> Result<Auth, ConfigError> {
    for (key, given) in [
        ("token_url", o.token_url.is_some()),
        ("client_id", o.client_id.is_some()),
        ("client_secret", o.client_secret.is_some()),
        ("client_secret_file", o.client_secret_file.is_some()),
        ("scope", o.scope.is_some()),
        ("client_auth", o.client_auth.is_some()),
    ] {
        if given {
            return Err(ConfigError::invalid(
                format!("source.{key}"),
                "is only used with auth = \"oauth2\"",
            ));
        }
    }
    let name = o.auth_header.as_deref().unwrap_or("Authorization");
    let header = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
        ConfigError::invalid(
            "source.auth_header",
            format!("`{name}` is not a header name"),
        )
    })?;
    let credential = Credential::from_build(
        b,
        "auth_value",
        o.auth_value.clone(),
        o.auth_value_file.clone(),
        false,
        header,
        "",
    )?;
    Ok(credential.map_or(Auth::None, Auth::Header))
}

/// `auth = "oauth2"`: the token endpoint and the client, no static credential.
fn oauth2_auth(o: &Options, b: &Build) -> Result<Auth, ConfigError> {
    for (key, given) in [
        ("auth_header", o.auth_header.is_some()),
        ("auth_value", o.auth_value.is_some()),
        ("auth_value_file", o.auth_value_file.is_some()),
    ] {
        if given {
            return Err(ConfigError::invalid(
                format!("source.{key}"),
                "is not used with auth = \"oauth2\" (the token is sent as \
                 `Authorization: Bearer`)",
            ));
        }
    }
    let required = |key: &str| {
        ConfigError::invalid(
            format!("source.{key}"),
            "is required with auth = \"oauth2\"",
        )
    };
    let token_url = check_token_url(
        "source.token_url",
        o.token_url
            .as_deref()
            .ok_or_else(|| required("token_url"))?,
    )?;
    let client_id = o
        .client_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| required("client_id"))?
        .to_string();
    // Read once now to report a mistake at load; a file is read again for every token
    // request, so a rotated secret is picked up without a restart.
    let secret = b
        .secret(
            "client_secret",
            o.client_secret.clone(),
            o.client_secret_file.clone(),
            true,
        )?
        .ok_or_else(|| required("client_secret"))?;
    let client_secret = match &o.client_secret_file {
        Some(path) => ClientSecret::File(b.path(path)),
        None => ClientSecret::Inline(secret),
    };
    let scopes: Vec<String> = match &o.scope {
        Some(s) if s.trim().is_empty() => {
            return Err(ConfigError::invalid(
                "source.scope",
                "is empty (leave it out for the server's default)",
            ));
        }
        Some(s) => s.split_whitespace().map(String::from).collect(),
        None => Vec::new(),
    };
    Ok(Auth::OAuth2(ClientCredentials {
        token_url,
        client_id,
        client_secret,
        scopes,
        client_auth: o.client_auth.unwrap_or_default(),
    }))
}

fn check_pointer(key: &str, p: &str, allow_empty: bool) -> Result<(), ConfigError> {
    if (p.is_empty() && allow_empty) || p.starts_with('/') {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!("`{p}` is not a JSON pointer (it must start with `/`, e.g. `/data/items`)"),
        ))
    }
}

impl HttpSource {
    /// # Errors
    /// A missing or invalid key, named as `source.KEY`.
    pub fn from_options(o: Options, b: &Build) -> Result<Self, ConfigError> {
        let url = check_http_url("source.url", &o.url)?;
        let auth = match o.auth {
            AuthMode::Header => header_auth(&o, b)?,
            AuthMode::Oauth2 => oauth2_auth(&o, b)?,
        };
        if o.timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "source.timeout_secs",
                "must be at least 1",
            ));
        }
        if o.max_pages == 0 {
            return Err(ConfigError::invalid(
                "source.max_pages",
                "must be at least 1",
            ));
        }
        check_page_limits(o.timeout_secs, o.max_page_mb)?;
        check_pointer("source.records_pointer", &o.records_pointer, true)?;
        let f = &o.fields;
        for (name, p) in [
            ("id", Some(&f.id)),
            ("email", f.email.as_ref()),
            ("username", f.username.as_ref()),
            ("first_name", f.first_name.as_ref()),
            ("last_name", f.last_name.as_ref()),
            ("phone", f.phone.as_ref()),
            ("active", f.active.as_ref()),
            ("groups", f.groups.as_ref()),
            ("start_date", f.start_date.as_ref()),
            ("end_date", f.end_date.as_ref()),
        ] {
            if let Some(p) = p {
                check_pointer(&format!("source.fields.{name}"), p, false)?;
            }
        }
        for (name, p) in &o.attributes {
            check_pointer(&format!("source.attributes.{name}"), p, false)?;
        }
        if let Some(p) = &o.group_item_pointer {
            check_pointer("source.group_item_pointer", p, false)?;
        }
        if let Some(values) = &o.active_values {
            if f.active.is_none() {
                return Err(ConfigError::invalid(
                    "source.active_values",
                    "needs `fields.active` (the pointer to the status)",
                ));
            }
            if values.is_empty() {
                return Err(ConfigError::invalid("source.active_values", "is empty"));
            }
        }
        let not_for = |key: &str, given: bool, mode: &str| -> Result<(), ConfigError> {
            if given {
                Err(ConfigError::invalid(
                    format!("source.{key}"),
                    format!("does not apply to pagination = \"{mode}\""),
                ))
            } else {
                Ok(())
            }
        };
        let numbered_only = [
            ("page_param", o.page_param.is_some()),
            ("page_start", o.page_start.is_some()),
            ("offset_param", o.offset_param.is_some()),
            ("offset_start", o.offset_start.is_some()),
            ("page_size_param", o.page_size_param.is_some()),
            ("page_size", o.page_size.is_some()),
            ("total_pointer", o.total_pointer.is_some()),
        ];
        let paging = match o.pagination {
            Pagination::None => {
                for (k, given) in numbered_only {
                    not_for(k, given, "none")?;
                }
                not_for("next_pointer", o.next_pointer.is_some(), "none")?;
                Paging::None
            }
            Pagination::NextLink => {
                for (k, given) in numbered_only {
                    not_for(k, given, "next_link")?;
                }
                if let Some(p) = &o.next_pointer {
                    check_pointer("source.next_pointer", p, false)?;
                }
                Paging::NextLink(o.next_pointer)
            }
            Pagination::Page | Pagination::Offset => {
                let by_offset = o.pagination == Pagination::Offset;
                let mode = if by_offset { "offset" } else { "page" };
                not_for("next_pointer", o.next_pointer.is_some(), mode)?;
                let (param, start) = if by_offset {
                    not_for("page_param", o.page_param.is_some(), mode)?;
                    not_for("page_start", o.page_start.is_some(), mode)?;
                    (
                        o.offset_param.unwrap_or_else(|| "offset".into()),
                        o.offset_start.unwrap_or(0),
                    )
                } else {
                    not_for("offset_param", o.offset_param.is_some(), mode)?;
                    not_for("offset_start", o.offset_start.is_some(), mode)?;
                    (
                        o.page_param.unwrap_or_else(|| "page".into()),
                        o.page_start.unwrap_or(1),
                    )
                };
                if param.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        format!("source.{mode}_param"),
                        "is empty",
                    ));
                }
                let size = match (o.page_size_param, o.page_size) {
                    (Some(p), Some(n)) if n > 0 && !p.trim().is_empty() => Some((p, n)),
                    (Some(_), Some(_)) => {
                        return Err(ConfigError::invalid(
                            "source.page_size",
                            "must be at least 1 (and page_size_param not empty)",
                        ));
                    }
                    (None, Some(n)) if by_offset && n > 0 => Some(("limit".to_string(), n)),
                    (None, None) if by_offset => Some(("limit".to_string(), 100)),
                    (Some(_), None) => {
                        return Err(ConfigError::invalid(
                            "source.page_size",
                            "is required with page_size_param",
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(ConfigError::invalid(
                            "source.page_size_param",
                            "is required with page_size (the query parameter that carries it)",
                        ));
                    }
                    (None, None) => None,
                };
                if let Some(p) = &o.total_pointer {
                    check_pointer("source.total_pointer", p, false)?;
                }
                Paging::Numbered {
                    param,
                    start,
                    by_offset,
                    size,
                    total_pointer: o.total_pointer,
                }
            }
        };
        Ok(Self {
            url,
            get: JsonGet::new(
                Remote {
                    timeout_secs: o.timeout_secs,
                    retries: o.retries,
                    max_page_mb: o.max_page_mb,
                    retry: b.retry,
                    observer: b.observer.clone(),
                },
                auth,
                "GET page",
            )?,
            records_pointer: o.records_pointer,
            paging,
            max_pages: o.max_pages,
            map: Mapping {
                fields: o.fields,
                attributes: o.attributes,
                active_values: o
                    .active_values
                    .map(|v| v.iter().map(|s| s.trim().to_lowercase()).collect()),
                group_item_pointer: o.group_item_pointer,
            },
        })
    }
}
