//! The HTTP source: an HR system's JSON API, read page by page, each person mapped from
//! the JSON by JSON pointers (RFC 6901).
//!
//! Pagination: `none` (one request), `next_link` (a URL in the body at `next_pointer`, or
//! the `Link: <…>; rel="next"` header), `page` (a page-number parameter) or `offset` (an
//! offset parameter, e.g. Keycloak's `first`/`max`). Numbered pages end at an empty page,
//! or when `total_pointer`'s count is reached; a short page does not end the read,
//! because servers cap page sizes silently.
//!
//! Completeness: any failed request (after `retries`), timeout, non-2xx status, body that
//! is not JSON or has no array at `records_pointer`, a next link seen before, more than
//! `max_pages` pages, or a total that changes between pages or is not reached, fails the
//! whole read. One record that cannot be mapped is an `InvalidRecord` located as
//! `page N, record M`.
//!
//! Also home of the small helpers the other remote sources share (option parsing that
//! names `source.KEY`, and a JSON GET with retry).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::budget::Budget;
use crate::config::{ConfigError, RetrySettings, SourceSettings};
use crate::http::{self, BodyCap, Http, Observer};
use crate::secret::Secret;

use super::record::value_kind as kind;
use super::{Snapshot, Source, SourceError, parse_record, snapshot_from};

// ---------------------------------------------------------------------------------------
// Shared helpers.

/// Fails with `source.KEY is required` for the first of `keys` that is missing.
pub(super) fn require(settings: &SourceSettings, keys: &[&str]) -> Result<(), ConfigError> {
    for key in keys {
        if !settings.options.contains_key(*key) {
            return Err(ConfigError::invalid(
                format!("source.{key}"),
                format!("is required for a source of type {}", settings.kind),
            ));
        }
    }
    Ok(())
}

/// Deserializes the source's keys, naming the key at fault as `source.KEY` (serde alone
/// would not say which key had the wrong type).
pub(super) fn parse_options<T: serde::de::DeserializeOwned>(
    settings: &SourceSettings,
) -> Result<T, ConfigError> {
    let value = Value::Object(settings.options.clone());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." || path.is_empty() {
            "source".to_string()
        } else {
            format!("source.{path}")
        };
        ConfigError::invalid(
            key,
            format!(
                "{} (for a source of type {})",
                e.into_inner(),
                settings.kind
            ),
        )
    })
}

pub(super) use crate::http::shown;

pub(super) fn check_http_url(key: &str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| ConfigError::invalid(key, format!("`{raw}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::invalid(
            key,
            format!("`{}` is not an http(s) URL", shown(&url)),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::invalid(
            key,
            "must not carry credentials; use the auth keys",
        ));
    }
    Ok(url)
}

/// A credential sent as a header: given inline, or in a file that is read again for
/// every request, so a token that another process rotates is picked up without a
/// restart (the file is also read once at config load, to report a mistake early).
pub(super) struct Credential {
    header: HeaderName,
    /// Put before the secret, e.g. `Bearer `.
    prefix: &'static str,
    inline: Option<Secret>,
    file: Option<PathBuf>,
}

impl Credential {
    /// Resolves `key` / `key_file` from the source's settings.
    ///
    /// # Errors
    /// As `SourceSettings::secret`, or a value that cannot be a header value.
    pub(super) fn from_settings(
        settings: &SourceSettings,
        key: &str,
        inline: Option<Secret>,
        file: Option<PathBuf>,
        required: bool,
        header: HeaderName,
        prefix: &'static str,
    ) -> Result<Option<Self>, ConfigError> {
        let path = file.as_ref().map(|p| settings.path(p));
        let Some(secret) = settings.secret(key, inline, file, required)? else {
            return Ok(None);
        };
        let credential = Self {
            header,
            prefix,
            inline: path.is_none().then_some(secret),
            file: path,
        };
        credential.value().map_err(|_| {
            ConfigError::invalid(
                format!("source.{key}"),
                "is not usable as a header value (no line breaks or control characters)",
            )
        })?;
        Ok(Some(credential))
    }

    fn value(&self) -> Result<HeaderValue, String> {
        let secret = match (&self.inline, &self.file) {
            (Some(s), _) => s.clone(),
            (None, Some(path)) => {
                let s = Secret::from_file(path).map_err(|e| {
                    format!("cannot read the credential file {}: {e}", path.display())
                })?;
                if s.expose().is_empty() {
                    return Err(format!("the credential file {} is empty", path.display()));
                }
                s
            }
            (None, None) => return Err("no credential".into()),
        };
        let mut value = HeaderValue::from_str(&format!("{}{}", self.prefix, secret.expose()))
            .map_err(|_| "the credential is not usable as a header value".to_string())?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// What the remote sources share of their HTTP setup: the shared layer's client for
/// `source`, its timeout and page cap, and the retries of a failed page.
pub(super) struct Remote<'a> {
    pub timeout_secs: u64,
    pub retries: u32,
    pub max_page_mb: u64,
    pub retry: &'a RetrySettings,
    pub observer: Arc<dyn Observer>,
}

/// One JSON GET client with an optional credential header, on the shared layer
/// (`crate::http`): paced, capped, pages retried under the retry policy.
pub(super) struct JsonGet {
    http: Http,
    auth: Option<Credential>,
    retries: u32,
    cap: BodyCap,
    route: &'static str,
}

/// A page as received.
pub(super) struct JsonPage {
    pub body: Value,
    pub headers: HeaderMap,
}

impl JsonGet {
    /// # Errors
    /// The HTTP client cannot be built.
    pub(super) fn new(
        remote: Remote<'_>,
        auth: Option<Credential>,
        route: &'static str,
    ) -> Result<Self, ConfigError> {
        let http = Http::new(http::Options {
            name: "source",
            timeout: Duration::from_secs(remote.timeout_secs),
            flow: http::FlowSettings::default(),
            retry: *remote.retry,
            observer: remote.observer,
        })
        .map_err(|e| ConfigError::invalid("source", e.to_string()))?;
        Ok(Self {
            http,
            auth,
            retries: remote.retries,
            cap: BodyCap::page_mib(remote.max_page_mb),
            route,
        })
    }

    pub(super) fn flow(&self) -> &Arc<http::Flow> {
        self.http.flow()
    }

    /// GETs `url` and parses the JSON body. Transport failures and 5xx are tried again up
    /// to `retries` times, 429s as long as the source's pauses fit the pass budget
    /// (`crate::http::Http::fetch`); anything else, or the last failure, is an error
    /// message (without the query or any header).
    pub(super) async fn get(
        &self,
        budget: &Budget,
        url: &Url,
        accept: &str,
    ) -> Result<JsonPage, String> {
        let credential = match &self.auth {
            Some(auth) => Some((auth.header.clone(), auth.value()?)),
            None => None,
        };
        let at = shown(url);
        let reply = self
            .http
            .fetch(budget, self.route, self.cap, Some(self.retries), || {
                let mut request = self
                    .http
                    .request(Method::GET, url.clone())
                    .header("Accept", accept);
                if let Some((header, value)) = &credential {
                    request = request.header(header.clone(), value.clone());
                }
                request
            })
            .await
            .map_err(|e| format!("GET {at}: {e}"))?;
        if !reply.is_success() {
            return Err(format!(
                "GET {at}: HTTP {}{}",
                reply.status,
                error_detail(&reply.body)
            ));
        }
        let body = serde_json::from_str(&reply.body)
            .map_err(|e| format!("GET {at}: the body is not JSON: {e}"))?;
        Ok(JsonPage {
            body,
            headers: reply.headers,
        })
    }
}

/// A short reason from an error body: RFC 7644's `detail`, or a common `message`/`error`,
/// else the start of the text.
fn error_detail(text: &str) -> String {
    if let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) {
        for key in ["detail", "message", "error_description", "error"] {
            if let Some(Value::String(s)) = obj.get(key) {
                let mut out = format!(": {}", truncate(s, 200));
                if let Some(Value::String(t)) = obj.get("scimType") {
                    out.push_str(&format!(" (scimType {t})"));
                }
                return out;
            }
        }
    }
    let t = text.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!(": {}", truncate(t, 200))
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

// ---------------------------------------------------------------------------------------
// The HTTP source.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    url: String,
    #[serde(default = "default_auth_header")]
    auth_header: String,
    auth_value: Option<Secret>,
    auth_value_file: Option<PathBuf>,
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

pub(super) fn default_max_page_mb() -> u64 {
    64
}

fn default_auth_header() -> String {
    "Authorization".into()
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
struct Fields {
    id: String,
    email: Option<String>,
    username: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
    active: Option<String>,
    groups: Option<String>,
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
enum Paging {
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

/// How a record becomes a person (no I/O, unit-tested).
#[derive(Debug, Clone)]
struct Mapping {
    fields: Fields,
    attributes: BTreeMap<String, String>,
    active_values: Option<Vec<String>>,
    group_item_pointer: Option<String>,
}

pub struct HttpSource {
    url: Url,
    get: JsonGet,
    records_pointer: String,
    paging: Paging,
    max_pages: u64,
    map: Mapping,
}

/// `timeout_secs` and `max_page_mb` within bounds, naming the key.
pub(super) fn check_page_limits(timeout_secs: u64, max_page_mb: u64) -> Result<(), ConfigError> {
    if !(1..=3600).contains(&timeout_secs) {
        return Err(ConfigError::invalid(
            "source.timeout_secs",
            "must be from 1 to 3600",
        ));
    }
    if !(1..=4096).contains(&max_page_mb) {
        return Err(ConfigError::invalid(
            "source.max_page_mb",
            "must be from 1 to 4096 (MiB)",
        ));
    }
    Ok(())
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
    pub fn from_settings(
        settings: &SourceSettings,
        retry: &RetrySettings,
        observer: Arc<dyn Observer>,
    ) -> Result<Self, ConfigError> {
        require(settings, &["url", "fields"])?;
        let o: Options = parse_options(settings)?;
        let url = check_http_url("source.url", &o.url)?;
        let header = HeaderName::from_bytes(o.auth_header.trim().as_bytes()).map_err(|_| {
            ConfigError::invalid(
                "source.auth_header",
                format!("`{}` is not a header name", o.auth_header),
            )
        })?;
        let auth = Credential::from_settings(
            settings,
            "auth_value",
            o.auth_value,
            o.auth_value_file,
            false,
            header,
            "",
        )?;
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
                    retry,
                    observer,
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

    /// Reads every page: the records of each, in order, with their locations.
    async fn read_all(&self, budget: &Budget) -> Result<Vec<(String, Value)>, String> {
        let mut out: Vec<(String, Value)> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut url = self.url.clone();
        let mut page_no: u64 = 0;
        let mut expected_total: Option<u64> = None;
        loop {
            page_no += 1;
            if page_no > self.max_pages {
                return Err(format!(
                    "more than max_pages = {} pages; refusing to read on (a paging loop?)",
                    self.max_pages
                ));
            }
            if let Paging::Numbered {
                param,
                start,
                by_offset,
                size,
                ..
            } = &self.paging
            {
                let n = if *by_offset {
                    start + out.len() as u64
                } else {
                    start + page_no - 1
                };
                url = with_query(&self.url, param, &n.to_string());
                if let Some((p, size)) = size {
                    url = with_query(&url, p, &size.to_string());
                }
            }
            if !seen.insert(url.to_string()) {
                return Err(format!(
                    "page {page_no} would fetch {} again (the next link repeats); refusing a \
                     paging loop",
                    shown(&url)
                ));
            }
            let page = self.get.get(budget, &url, "application/json").await?;
            let records = self
                .records(&page.body)
                .map_err(|e| format!("page {page_no}: {e}"))?;
            let n = records.len();
            out.extend(
                records
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (format!("page {page_no}, record {} (index {i})", i + 1), v)),
            );
            match &self.paging {
                Paging::None => return Ok(out),
                Paging::NextLink(pointer) => {
                    let next = match pointer {
                        Some(p) => match page.body.pointer(p) {
                            None | Some(Value::Null) => None,
                            Some(Value::String(s)) if s.trim().is_empty() => None,
                            Some(Value::String(s)) => Some(s.trim().to_string()),
                            Some(other) => {
                                return Err(format!(
                                    "page {page_no}: the next link at {p} is not a string: {other}"
                                ));
                            }
                        },
                        None => link_next(&page.headers),
                    };
                    match next {
                        None => return Ok(out),
                        Some(next) => {
                            url = url.join(&next).map_err(|e| {
                                format!("page {page_no}: the next link `{next}` is not a URL: {e}")
                            })?;
                            if url.origin() != self.url.origin() {
                                return Err(format!(
                                    "page {page_no}: the next link leads to another host ({}); \
                                     refusing to send the credential there",
                                    shown(&url)
                                ));
                            }
                        }
                    }
                }
                Paging::Numbered { total_pointer, .. } => {
                    let total = match total_pointer {
                        None => None,
                        Some(p) => Some(
                            total_at(&page.body, p).map_err(|e| format!("page {page_no}: {e}"))?,
                        ),
                    };
                    if let (Some(before), Some(now)) = (expected_total, total)
                        && before != now
                    {
                        return Err(format!(
                            "page {page_no}: the total changed from {before} to {now} during the \
                             read; the list moved under the pages, so the read may have missed \
                             or repeated people"
                        ));
                    }
                    expected_total = total.or(expected_total);
                    let got = out.len() as u64;
                    match total {
                        Some(t) if got >= t => {
                            if got > t {
                                return Err(format!("read {got} records but the total says {t}"));
                            }
                            return Ok(out);
                        }
                        Some(t) if n == 0 => {
                            return Err(format!(
                                "page {page_no} is empty after {got} of {t} records; the read is \
                                 incomplete"
                            ));
                        }
                        _ if n == 0 => return Ok(out),
                        _ => {}
                    }
                }
            }
        }
    }

    fn records(&self, body: &Value) -> Result<Vec<Value>, String> {
        let at = if self.records_pointer.is_empty() {
            Some(body)
        } else {
            body.pointer(&self.records_pointer)
        };
        match at {
            Some(Value::Array(items)) => Ok(items.clone()),
            // An API that omits an empty list, or sends null for it.
            Some(Value::Null) => Ok(Vec::new()),
            None => Err(format!("no `{}` in the body", self.records_pointer)),
            Some(other) => Err(format!(
                "expected an array at `{}`, found {}",
                if self.records_pointer.is_empty() {
                    "the body"
                } else {
                    &self.records_pointer
                },
                kind(other)
            )),
        }
    }
}

fn with_query(url: &Url, key: &str, value: &str) -> Url {
    let mut u = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    u.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(key, value);
    u
}

fn total_at(body: &Value, pointer: &str) -> Result<u64, String> {
    match body.pointer(pointer) {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("the total at {pointer} is not a count: {n}")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("the total at {pointer} is not a count: `{s}`")),
        Some(other) => Err(format!(
            "the total at {pointer} is not a count: {}",
            kind(other)
        )),
        None => Err(format!("no total at {pointer}")),
    }
}

/// The `rel="next"` target of an RFC 8288 `Link` header.
fn link_next(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all("link") {
        let Ok(text) = value.to_str() else { continue };
        let mut rest = text;
        while let Some(start) = rest.find('<') {
            let Some(end) = rest[start..].find('>') else {
                break;
            };
            let target = &rest[start + 1..start + end];
            let after = &rest[start + end + 1..];
            let params_end = after.find('<').unwrap_or(after.len());
            let params = &after[..params_end];
            let is_next = params.split(';').any(|p| {
                let p = p.trim().trim_end_matches(',').trim();
                p.strip_prefix("rel=").is_some_and(|v| {
                    v.trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
                })
            });
            if is_next {
                return Some(target.to_string());
            }
            rest = after;
        }
    }
    None
}

/// A scalar as text for a text field; a structure is left as is for `parse_record` to
/// reject with its field name.
fn scalar_text(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Number(n) => Some(Value::String(n.to_string())),
        Value::Bool(b) => Some(Value::String(b.to_string())),
        other => Some(other.clone()),
    }
}

impl Mapping {
    fn to_record(&self, rec: &Value) -> Result<crate::model::Person, super::RecordError> {
        let mut obj = Map::new();
        let f = &self.fields;
        // The id keeps a number a number: `parse_record` reads it as its text.
        if let Some(v) = rec.pointer(&f.id) {
            obj.insert("id".into(), v.clone());
        }
        for (name, p) in [
            ("email", &f.email),
            ("username", &f.username),
            ("first_name", &f.first_name),
            ("last_name", &f.last_name),
            ("phone", &f.phone),
        ] {
            if let Some(p) = p
                && let Some(v) = rec.pointer(p).and_then(scalar_text)
            {
                obj.insert(name.into(), v);
            }
        }
        if let Some(p) = &f.active {
            let raw = rec.pointer(p).filter(|v| !v.is_null());
            let active = match (&self.active_values, raw) {
                (Some(_), None) => {
                    return Err(self.fail(
                        &obj,
                        format!("no status at {p} (fields.active); cannot tell whether active"),
                    ));
                }
                (Some(values), Some(v)) => {
                    let text = match v {
                        Value::String(s) => s.trim().to_lowercase(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        other => {
                            return Err(self.fail(
                                &obj,
                                format!("the status at {p} is {}, expected text", kind(other)),
                            ));
                        }
                    };
                    Some(Value::Bool(values.contains(&text)))
                }
                (None, Some(Value::Number(n))) => Some(Value::String(n.to_string())),
                (None, v) => v.cloned(),
            };
            if let Some(a) = active {
                obj.insert("active".into(), a);
            }
        }
        if let Some(p) = &f.groups
            && let Some(v) = rec.pointer(p)
        {
            let groups = match (v, &self.group_item_pointer) {
                (Value::Array(items), Some(ip)) => Value::Array(
                    items
                        .iter()
                        .filter_map(|i| i.pointer(ip).cloned())
                        .collect(),
                ),
                (other, _) => other.clone(),
            };
            obj.insert("groups".into(), groups);
        }
        let attributes: Map<String, Value> = self
            .attributes
            .iter()
            .filter_map(|(name, p)| {
                rec.pointer(p)
                    .and_then(scalar_text)
                    .map(|v| (name.clone(), v))
            })
            .collect();
        if !attributes.is_empty() {
            obj.insert("attributes".into(), Value::Object(attributes));
        }
        parse_record(&Value::Object(obj))
    }

    /// A mapping failure that still salvages the id and email, as `parse_record` would.
    fn fail(&self, obj: &Map<String, Value>, message: String) -> super::RecordError {
        let id = obj.get("id").and_then(|v| match v {
            Value::String(s) => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        super::RecordError {
            id: id.filter(|s| !s.is_empty()),
            email: obj
                .get("email")
                .and_then(Value::as_str)
                .map(|s| s.trim().to_string()),
            message,
        }
    }

    fn snapshot(&self, records: Vec<(String, Value)>) -> Snapshot {
        snapshot_from(
            records
                .into_iter()
                .map(|(location, rec)| (location, self.to_record(&rec))),
        )
    }
}

#[async_trait]
impl Source for HttpSource {
    async fn fetch(&self, budget: &Budget) -> Result<Snapshot, SourceError> {
        let records = self
            .read_all(budget)
            .await
            .map_err(|message| SourceError::Unreadable {
                path: self.describe(),
                message,
            })?;
        Ok(self.map.snapshot(records))
    }

    fn flow(&self) -> Option<&Arc<http::Flow>> {
        Some(self.get.flow())
    }

    fn describe(&self) -> String {
        let paging = match &self.paging {
            Paging::None => "",
            Paging::NextLink(_) => ", next links",
            Paging::Numbered {
                by_offset: false, ..
            } => ", numbered pages",
            Paging::Numbered {
                by_offset: true, ..
            } => ", offsets",
        };
        format!("http {}{paging}", shown(&self.url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(v: Value) -> SourceSettings {
        crate::source::test_settings("http", v.as_object().expect("object").clone())
    }

    fn build(s: &SourceSettings) -> Result<HttpSource, ConfigError> {
        HttpSource::from_settings(s, &RetrySettings::default(), Arc::new(http::Quiet))
    }

    fn source(v: Value) -> HttpSource {
        build(&settings(v)).expect("valid")
    }

    fn err(v: Value) -> String {
        match build(&settings(v)) {
            Ok(_) => panic!("expected a config error"),
            Err(e) => e.to_string(),
        }
    }

    fn base() -> Value {
        json!({"url": "http://127.0.0.1:1/hr", "fields": {"id": "/employeeId"}})
    }

    fn with(extra: Value) -> Value {
        let mut b = base();
        for (k, v) in extra.as_object().expect("object") {
            b[k] = v.clone();
        }
        b
    }

    #[test]
    fn record_mapping_with_pointers_and_status_values() {
        let s = source(with(json!({
            "fields": {"id": "/employeeId", "email": "/work/email", "first_name": "/name/first",
                       "last_name": "/name/last", "phone": "/work/phone", "active": "/status",
                       "groups": "/teams", "username": "/login"},
            "group_item_pointer": "/name",
            "active_values": ["Active", "on_leave"],
            "attributes": {"motive.eld_mode": "/fleet/eld", "hr.grade": "/grade"},
        })));
        let rec = json!({"employeeId": 1007, "work": {"email": "a@b.io", "phone": 5551234},
                         "name": {"first": "Ann", "last": "Lee"}, "status": "ON_LEAVE",
                         "teams": [{"name": "drivers"}, {"name": "ops"}], "login": "ann",
                         "fleet": {"eld": "logs"}, "grade": 7});
        let p = s.map.to_record(&rec).expect("valid");
        assert_eq!(p.id.as_str(), "1007");
        assert_eq!(p.phone.as_deref(), Some("5551234"));
        assert!(p.active);
        assert!(p.groups.contains("drivers") && p.groups.contains("ops"));
        assert_eq!(p.attributes["motive.eld_mode"], "logs");
        assert_eq!(p.attributes["hr.grade"], "7");

        let gone = json!({"employeeId": "8", "status": "terminated"});
        assert!(!s.map.to_record(&gone).expect("valid").active);
        let unknown = s
            .map
            .to_record(&json!({"employeeId": "9", "work": {"email": "x@y.io"}}))
            .expect_err("no status");
        assert_eq!(unknown.id.as_deref(), Some("9"));
        assert_eq!(unknown.email.as_deref(), Some("x@y.io"));
        assert!(
            s.map.to_record(&json!({"name": {"first": "x"}})).is_err(),
            "no id"
        );
    }

    #[test]
    fn boolean_status_and_string_groups() {
        let s = source(with(json!({
            "fields": {"id": "/id", "active": "/enabled", "groups": "/groups"},
        })));
        let p = s
            .map
            .to_record(&json!({"id": "1", "enabled": false, "groups": "a;b"}))
            .expect("ok");
        assert!(!p.active);
        assert_eq!(p.groups.len(), 2);
        let p = s
            .map
            .to_record(&json!({"id": "2", "enabled": 1}))
            .expect("ok");
        assert!(p.active);
    }

    #[test]
    fn link_header_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            "link",
            HeaderValue::from_static(
                "<https://x/api?after=1>; rel=\"self\", <https://x/api?after=2&limit=3>; rel=\"next\"",
            ),
        );
        assert_eq!(
            link_next(&h).as_deref(),
            Some("https://x/api?after=2&limit=3")
        );
        let mut h = HeaderMap::new();
        h.insert("link", HeaderValue::from_static("</p?page=1>; rel=prev"));
        assert_eq!(link_next(&h), None);
    }

    #[test]
    fn query_building_replaces_the_parameter() {
        let u = Url::parse("http://h/x?status=all&page=9").expect("url");
        assert_eq!(
            with_query(&u, "page", "2").as_str(),
            "http://h/x?status=all&page=2"
        );
    }

    #[test]
    fn records_pointer_and_errors() {
        let s = source(with(json!({"records_pointer": "/data/employees"})));
        assert_eq!(
            s.records(&json!({"data": {"employees": [1, 2]}}))
                .expect("ok")
                .len(),
            2
        );
        assert!(s.records(&json!({"data": {}})).is_err());
        assert!(s.records(&json!({"data": {"employees": {}}})).is_err());
        let s = source(base());
        assert_eq!(s.records(&json!([{"a": 1}])).expect("ok").len(), 1);
    }

    #[test]
    fn config_errors_name_the_key() {
        assert!(err(json!({"fields": {"id": "/id"}})).contains("source.url"));
        assert!(err(json!({"url": "http://h"})).contains("source.fields"));
        assert!(err(json!({"url": "http://h", "fields": {}})).contains("id"));
        assert!(err(with(json!({"url": "ftp://h"}))).contains("source.url"));
        assert!(err(with(json!({"records_pointer": "data"}))).contains("source.records_pointer"));
        assert!(err(with(json!({"fields": {"id": "id"}}))).contains("source.fields.id"));
        assert!(err(with(json!({"fields": {"id": "/id", "mail": "/m"}}))).contains("mail"));
        assert!(err(with(json!({"pagination": "pages"}))).contains("source.pagination"));
        assert!(err(with(json!({"page_param": "p"}))).contains("source.page_param"));
        assert!(
            err(with(json!({"pagination": "page", "page_size": 10})))
                .contains("source.page_size_param")
        );
        assert!(
            err(with(json!({"pagination": "page", "next_pointer": "/next"})))
                .contains("source.next_pointer")
        );
        assert!(err(with(json!({"active_values": ["active"]}))).contains("source.active_values"));
        assert!(err(with(json!({"timeout_secs": "slow"}))).contains("source.timeout_secs"));
        assert!(err(with(json!({"auth_header": "bad header"}))).contains("source.auth_header"));
        assert!(err(with(json!({"auth_value": "a\nb"}))).contains("source.auth_value"));
        assert!(
            err(with(json!({"auth_value": "x", "auth_value_file": "f"})))
                .contains("source.auth_value")
        );
    }

    #[test]
    fn secrets_and_queries_are_not_shown() {
        let s = source(with(
            json!({"url": "https://h/api?api_key=SECRET1", "auth_value": "Bearer SECRET2"}),
        ));
        assert!(!s.describe().contains("SECRET"));
        assert_eq!(
            shown(&Url::parse("https://u:p@h/x?k=v#f").expect("url")),
            "https://h/x"
        );
    }

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
            let settings = crate::config::load_str(
                &format!(
                    "state_dir = \"/tmp/x\"\n[vendors.m]\ntype = \"motive\"\napi_key = \"k\"\n{toml}"
                ),
                std::path::Path::new("/"),
                Vec::new(),
            )
            .unwrap_or_else(|e| panic!("{e}\n{toml}"));
            if let Err(e) = super::super::build(
                &settings.source,
                &RetrySettings::default(),
                Arc::new(http::Quiet),
            ) {
                panic!("{e}\n{toml}");
            }
            checked += 1;
        }
        assert!(checked >= 9, "only {checked} examples found");
    }

    #[test]
    fn error_bodies_are_summarized() {
        assert_eq!(
            error_detail(
                r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401","detail":"bad token"}"#
            ),
            ": bad token"
        );
        assert_eq!(error_detail(""), "");
        assert!(error_detail(&"x".repeat(500)).len() < 300);
    }
}
