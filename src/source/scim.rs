//! The SCIM 2.0 source (RFC 7643 / 7644): `GET {base_url}/Users` page by page.
//!
//! Paging follows RFC 7644 §3.4.2.4: `startIndex` is 1-based, and the next page starts
//! after the resources actually received — servers may return fewer than `count` (most
//! cap the page size), so the read goes on until `totalResults` resources are in hand.
//!
//! Completeness: any failed request (after `retries`), timeout, non-2xx answer (an
//! RFC 7644 error's `detail` is quoted), a body that is not a ListResponse, an empty page
//! before `totalResults` is reached, or a `totalResults` that changes during the read,
//! fails the whole read.
//!
//! Mapping (core User schema): `id` (or `externalId`, see `id_field`) → id, `userName` →
//! username, `name.givenName`/`name.familyName`, the primary email (else the first),
//! a phone (primary, else `work`, else the first), `active`, `groups[].display`. The
//! enterprise extension fills attributes `scim.employee_number`, `scim.department`,
//! `scim.cost_center`, `scim.organization`, `scim.division`, `scim.manager` (its
//! `value`); `attributes` maps more (any attribute path, e.g. `title` or
//! `urn:…:User:costCenter`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::header::HeaderName;
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::budget::Budget;
use crate::config::{ConfigError, Secret};
use crate::http;

use super::Build;
use super::remote::{
    Credential, JsonGet, Remote, check_http_url, check_page_limits, default_max_page_mb, shown,
};
use super::{RecordError, Snapshot, Source, SourceError, parse_record, snapshot_from};

pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ACCEPT: &str = "application/scim+json, application/json";

/// Enterprise extension attribute → person attribute name.
const ENTERPRISE_ATTRIBUTES: &[(&str, &str)] = &[
    ("employeeNumber", "scim.employee_number"),
    ("department", "scim.department"),
    ("costCenter", "scim.cost_center"),
    ("organization", "scim.organization"),
    ("division", "scim.division"),
    ("manager.value", "scim.manager"),
];

/// The `[source]` keys of `type = "scim"`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The SCIM root, e.g. `https://idp.example.com/scim/v2`.
    base_url: String,
    token: Option<Secret>,
    token_file: Option<PathBuf>,
    #[serde(default = "default_count")]
    count: u32,
    /// A SCIM filter, sent as `filter=`.
    filter: Option<String>,
    #[serde(default)]
    id_field: IdField,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    #[serde(default = "default_retries")]
    retries: u32,
    /// Person attribute name → SCIM attribute path.
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    /// Set false to leave out the `scim.*` enterprise attributes.
    #[serde(default = "default_true")]
    enterprise_attributes: bool,
    /// A safety stop for a server that never ends its list.
    #[serde(default = "default_max_pages")]
    max_pages: u64,
    /// The largest page roster reads, in MiB.
    #[serde(default = "default_max_page_mb")]
    max_page_mb: u64,
}

fn default_count() -> u32 {
    100
}
fn default_timeout() -> u64 {
    30
}
fn default_retries() -> u32 {
    2
}
fn default_true() -> bool {
    true
}
fn default_max_pages() -> u64 {
    10_000
}

#[derive(Deserialize, Default, Debug, Clone, Copy, PartialEq, Eq)]
enum IdField {
    /// The service provider's own `id`: stable, always present.
    #[default]
    #[serde(rename = "id")]
    Id,
    /// The client-assigned `externalId` (e.g. an employee number set by HR).
    #[serde(rename = "externalId")]
    ExternalId,
}

#[derive(Debug, Clone)]
struct Mapping {
    id_field: IdField,
    attributes: BTreeMap<String, String>,
    enterprise: bool,
}

pub struct ScimSource {
    users_url: Url,
    count: u32,
    filter: Option<String>,
    get: JsonGet,
    max_pages: u64,
    map: Mapping,
}

impl ScimSource {
    /// # Errors
    /// A missing or invalid key, named as `source.KEY`.
    pub fn from_options(o: Options, b: &Build) -> Result<Self, ConfigError> {
        let base = check_http_url("source.base_url", &o.base_url)?;
        if base.query().is_some() {
            return Err(ConfigError::invalid(
                "source.base_url",
                "must not have a query (use `filter` for filters)",
            ));
        }
        let bearer = Credential::from_build(
            b,
            "token",
            o.token,
            o.token_file,
            true,
            HeaderName::from_static("authorization"),
            "Bearer ",
        )?
        .ok_or_else(|| ConfigError::invalid("source.token", "is required"))?;
        if !(1..=10_000).contains(&o.count) {
            return Err(ConfigError::invalid("source.count", "must be 1 to 10000"));
        }
        check_page_limits(o.timeout_secs, o.max_page_mb)?;
        if o.max_pages == 0 {
            return Err(ConfigError::invalid(
                "source.max_pages",
                "must be at least 1",
            ));
        }
        if let Some(f) = &o.filter
            && f.trim().is_empty()
        {
            return Err(ConfigError::invalid("source.filter", "is empty"));
        }
        for (name, path) in &o.attributes {
            if name.trim().is_empty() || path.trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("source.attributes.{name}"),
                    "needs a name and a SCIM attribute path",
                ));
            }
        }
        let mut users_url = base.clone();
        users_url.set_path(&format!("{}/Users", base.path().trim_end_matches('/')));
        Ok(Self {
            users_url,
            count: o.count,
            filter: o.filter,
            get: JsonGet::new(
                Remote {
                    timeout_secs: o.timeout_secs,
                    retries: o.retries,
                    max_page_mb: o.max_page_mb,
                    retry: b.retry,
                    observer: b.observer.clone(),
                },
                Some(bearer),
                "GET /Users",
            )?,
            max_pages: o.max_pages,
            map: Mapping {
                id_field: o.id_field,
                attributes: o.attributes,
                enterprise: o.enterprise_attributes,
            },
        })
    }

    fn page_url(&self, start_index: u64, count: u32) -> Url {
        let mut url = self.users_url.clone();
        {
            let mut q = url.query_pairs_mut();
            if let Some(f) = &self.filter {
                q.append_pair("filter", f);
            }
            q.append_pair("startIndex", &start_index.to_string())
                .append_pair("count", &count.to_string());
        }
        url
    }

    async fn read_all(
        &self,
        budget: &Budget,
        limit: Option<u32>,
    ) -> Result<(Vec<(String, Value)>, u64), String> {
        let mut out: Vec<(String, Value)> = Vec::new();
        let mut total: Option<u64> = None;
        let mut page_no: u64 = 0;
        loop {
            page_no += 1;
            if page_no > self.max_pages {
                return Err(format!("more than max_pages = {} pages", self.max_pages));
            }
            let start_index = out.len() as u64 + 1;
            let page = self
                .get
                .get(
                    budget,
                    &self.page_url(start_index, limit.unwrap_or(self.count)),
                    ACCEPT,
                )
                .await
                .map_err(|e| e.0)?;
            let list = ListPage::parse(&page.body).map_err(|e| format!("page {page_no}: {e}"))?;
            if let Some(s) = list.start_index
                && s != start_index
            {
                return Err(format!(
                    "page {page_no}: asked for startIndex {start_index}, the server answered {s}"
                ));
            }
            if let Some(before) = total
                && before != list.total
            {
                return Err(format!(
                    "page {page_no}: totalResults changed from {before} to {} during the read; \
                     the list moved under the pages, so people may have been missed",
                    list.total
                ));
            }
            total = Some(list.total);
            let n = list.resources.len();
            out.extend(list.resources.into_iter().enumerate().map(|(i, v)| {
                let at = start_index + i as u64;
                (format!("resource {at} (page {page_no})"), v)
            }));
            let got = out.len() as u64;
            if limit.is_some() {
                return Ok((out, list.total));
            }
            if got > list.total {
                return Err(format!(
                    "received {got} resources, more than totalResults {}",
                    list.total
                ));
            }
            if got == list.total {
                return Ok((out, list.total));
            }
            if n == 0 {
                return Err(format!(
                    "page {page_no} (startIndex {start_index}) is empty after {got} of \
                     totalResults {}; the read is incomplete",
                    list.total
                ));
            }
        }
    }
}

/// One ListResponse.
struct ListPage {
    total: u64,
    start_index: Option<u64>,
    resources: Vec<Value>,
}

impl ListPage {
    fn parse(body: &Value) -> Result<Self, String> {
        let Some(obj) = body.as_object() else {
            return Err("expected a SCIM ListResponse object".into());
        };
        if let Some(Value::Array(schemas)) = obj.get("schemas")
            && !schemas.iter().any(|s| s.as_str() == Some(LIST_RESPONSE))
        {
            return Err(format!(
                "not a ListResponse (schemas {})",
                Value::Array(schemas.clone())
            ));
        }
        let count = |key: &str| -> Result<Option<u64>, String> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| format!("`{key}` is not a count: {n}")),
                // Some servers send numbers as strings.
                Some(Value::String(s)) => s
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("`{key}` is not a count: `{s}`")),
                Some(v) => Err(format!("`{key}` is not a count: {v}")),
            }
        };
        let total = count("totalResults")?.ok_or("no `totalResults` in the ListResponse")?;
        let resources = match obj.get("Resources") {
            // RFC 7644: Resources may be left out when there are none.
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(_) => return Err("`Resources` is not a list".into()),
        };
        Ok(Self {
            total,
            start_index: count("startIndex")?,
            resources,
        })
    }
}

/// A path inside a SCIM resource: `name.givenName`, or `urn:…:User:manager.value`.
fn scim_path<'a>(resource: &'a Value, path: &str) -> Option<&'a Value> {
    let (mut at, rest) = match path.rsplit_once(':') {
        Some((schema, attr)) if path.starts_with("urn:") => (resource.get(schema)?, attr),
        _ => (resource, path),
    };
    for part in rest.split('.') {
        at = at.get(part)?;
    }
    Some(at)
}

fn text(v: Option<&Value>) -> Option<Value> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(Value::String(s.clone())),
        Value::Number(n) => Some(Value::String(n.to_string())),
        Value::Bool(b) => Some(Value::String(b.to_string())),
        _ => None,
    }
}

/// The primary item of a multi-valued attribute, else the first of the preferred types,
/// else the first.
fn pick<'a>(items: Option<&'a Value>, prefer_types: &[&str]) -> Option<&'a Value> {
    let items = items?.as_array()?;
    let usable: Vec<&Value> = items
        .iter()
        .filter(|i| {
            i.get("value")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.trim().is_empty())
        })
        .collect();
    usable
        .iter()
        .find(|i| i.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| {
            prefer_types.iter().find_map(|t| {
                usable.iter().find(|i| {
                    i.get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|x| x.eq_ignore_ascii_case(t))
                })
            })
        })
        .or_else(|| usable.first())
        .and_then(|i| i.get("value"))
}

impl Mapping {
    fn to_record(&self, r: &Value) -> Result<crate::model::Person, RecordError> {
        let mut obj = Map::new();
        let id_key = match self.id_field {
            IdField::Id => "id",
            IdField::ExternalId => "externalId",
        };
        if let Some(v) = r.get(id_key) {
            obj.insert("id".into(), v.clone());
        }
        let fields = [
            ("username", text(r.get("userName"))),
            ("first_name", text(scim_path(r, "name.givenName"))),
            ("last_name", text(scim_path(r, "name.familyName"))),
            ("email", text(pick(r.get("emails"), &["work"]))),
            (
                "phone",
                text(pick(r.get("phoneNumbers"), &["work", "mobile"])),
            ),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                obj.insert(k.into(), v);
            }
        }
        match r.get("active") {
            None | Some(Value::Null) => {}
            Some(v) => {
                obj.insert("active".into(), v.clone());
            }
        }
        if let Some(Value::Array(groups)) = r.get("groups") {
            let names: Vec<Value> = groups
                .iter()
                .filter_map(|g| text(g.get("display")).or_else(|| text(g.get("value"))))
                .collect();
            if !names.is_empty() {
                obj.insert("groups".into(), Value::Array(names));
            }
        }
        let mut attributes = Map::new();
        if self.enterprise
            && let Some(ext) = r.get(ENTERPRISE)
        {
            for (path, name) in ENTERPRISE_ATTRIBUTES {
                if let Some(v) = text(scim_path(ext, path)) {
                    attributes.insert((*name).into(), v);
                }
            }
        }
        for (name, path) in &self.attributes {
            if let Some(v) = text(scim_path(r, path)) {
                attributes.insert(name.clone(), v);
            }
        }
        if !attributes.is_empty() {
            obj.insert("attributes".into(), Value::Object(attributes));
        }
        if self.id_field == IdField::ExternalId && obj.get("id").is_none_or(Value::is_null) {
            return Err(RecordError {
                id: None,
                email: obj.get("email").and_then(Value::as_str).map(String::from),
                message: format!(
                    "no `externalId` (id_field = \"externalId\"); SCIM id `{}`",
                    r.get("id").and_then(Value::as_str).unwrap_or("?")
                ),
            });
        }
        parse_record(&Value::Object(obj))
    }

    fn snapshot(&self, resources: Vec<(String, Value)>) -> Snapshot {
        snapshot_from(
            resources
                .into_iter()
                .map(|(location, r)| (location, self.to_record(&r))),
        )
    }
}

#[async_trait]
impl Source for ScimSource {
    async fn fetch(&self, budget: &Budget) -> Result<Snapshot, SourceError> {
        let (resources, _) =
            self.read_all(budget, None)
                .await
                .map_err(|message| SourceError::Unreadable {
                    path: self.describe(),
                    message,
                })?;
        Ok(self.map.snapshot(resources))
    }

    fn flow(&self) -> Option<&Arc<http::Flow>> {
        Some(self.get.flow())
    }

    fn describe(&self) -> String {
        match &self.filter {
            Some(f) => format!("scim {} filter {f}", shown(&self.users_url)),
            None => format!("scim {}", shown(&self.users_url)),
        }
    }

    /// One small page: proves the token works and says how many users there are.
    async fn check(&self, budget: &Budget) -> Result<String, SourceError> {
        let unreadable = |message| SourceError::Unreadable {
            path: self.describe(),
            message,
        };
        let (resources, total) = self.read_all(budget, Some(5)).await.map_err(unreadable)?;
        if total == 0 {
            return Err(unreadable(
                "the server lists no users; a pass would be refused".into(),
            ));
        }
        let sample = self.map.snapshot(resources);
        Ok(format!(
            "{total} users (totalResults); of the first {}, {} valid, {} invalid",
            sample.people.len() + sample.invalid.len(),
            sample.people.len(),
            sample.invalid.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn build(v: Value) -> Result<ScimSource, ConfigError> {
        let o = crate::source::test_options(v)?;
        ScimSource::from_options(o, &crate::source::test_build())
    }

    fn err(v: Value) -> String {
        match build(v) {
            Ok(_) => panic!("expected a config error"),
            Err(e) => e.to_string(),
        }
    }

    fn mapping(id_field: IdField) -> Mapping {
        Mapping {
            id_field,
            attributes: BTreeMap::from([
                ("hr.title".to_string(), "title".to_string()),
                (
                    "motive.eld_mode".to_string(),
                    "urn:example:fleet:1.0:User:eldMode".to_string(),
                ),
            ]),
            enterprise: true,
        }
    }

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "E1001",
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [
                {"value": "babs@home.example", "type": "home"},
                {"value": "bjensen@example.com", "type": "work", "primary": true}
            ],
            "phoneNumbers": [
                {"value": "555-555-4444", "type": "mobile"},
                {"value": "555-555-8377", "type": "work"}
            ],
            "active": true,
            "title": "Tour Guide",
            "groups": [{"value": "e9e3", "display": "drivers"}, {"value": "fc34"}],
            ENTERPRISE: {
                "employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios",
                "division": "Theme Park", "department": "Tour Operations",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
            },
            "urn:example:fleet:1.0:User": {"eldMode": "logs"}
        })
    }

    #[test]
    fn rfc7643_user_maps_to_a_person() {
        let p = mapping(IdField::Id).to_record(&user()).expect("valid");
        assert_eq!(p.id.as_str(), "2819c223-7f76-453a-919d-413861904646");
        assert_eq!(p.username.as_deref(), Some("bjensen"));
        assert_eq!(p.first_name.as_deref(), Some("Barbara"));
        assert_eq!(p.last_name.as_deref(), Some("Jensen"));
        assert_eq!(
            p.email.as_deref(),
            Some("bjensen@example.com"),
            "primary wins"
        );
        assert_eq!(
            p.phone.as_deref(),
            Some("555-555-8377"),
            "work before mobile"
        );
        assert!(p.active);
        assert!(p.groups.contains("drivers") && p.groups.contains("fc34"));
        let a = &p.attributes;
        assert_eq!(a["scim.employee_number"], "701984");
        assert_eq!(a["scim.department"], "Tour Operations");
        assert_eq!(a["scim.cost_center"], "4130");
        assert_eq!(a["scim.organization"], "Universal Studios");
        assert_eq!(a["scim.division"], "Theme Park");
        assert_eq!(a["scim.manager"], "26118915-6090-4610-87e4-49d8ca9f808d");
        assert_eq!(a["hr.title"], "Tour Guide");
        assert_eq!(a["motive.eld_mode"], "logs");
    }

    #[test]
    fn external_id_and_inactive() {
        let mut u = user();
        u["active"] = json!(false);
        let p = mapping(IdField::ExternalId).to_record(&u).expect("valid");
        assert_eq!(p.id.as_str(), "E1001");
        assert!(!p.active);
        u.as_object_mut().expect("object").remove("externalId");
        let e = mapping(IdField::ExternalId)
            .to_record(&u)
            .expect_err("no externalId");
        assert!(e.message.contains("externalId"));
        assert_eq!(e.email.as_deref(), Some("bjensen@example.com"));
    }

    #[test]
    fn first_email_when_none_is_primary() {
        let u =
            json!({"id": "1", "emails": [{"value": ""}, {"value": "a@b.io"}, {"value": "c@d.io"}]});
        let p = mapping(IdField::Id).to_record(&u).expect("valid");
        assert_eq!(p.email.as_deref(), Some("a@b.io"));
    }

    #[test]
    fn list_response_parsing() {
        let ok = ListPage::parse(&json!({"schemas": [LIST_RESPONSE], "totalResults": "3",
            "startIndex": 1, "itemsPerPage": 1, "Resources": [{"id": "1"}]}))
        .expect("ok");
        assert_eq!(
            (ok.total, ok.start_index, ok.resources.len()),
            (3, Some(1), 1)
        );
        let empty =
            ListPage::parse(&json!({"schemas": [LIST_RESPONSE], "totalResults": 0})).expect("ok");
        assert!(empty.resources.is_empty());
        assert!(
            ListPage::parse(&json!({"Resources": []})).is_err(),
            "no totalResults"
        );
        assert!(
            ListPage::parse(
                &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "totalResults": 1})
            )
            .is_err()
        );
        assert!(ListPage::parse(&json!([])).is_err());
    }

    #[test]
    fn page_urls_carry_filter_and_paging() {
        let s = build(json!({
            "base_url": "https://idp.example/scim/v2/", "token": "t0ken",
            "filter": "active eq true", "count": 50
        }))
        .expect("valid");
        let u = s.page_url(51, 50);
        assert_eq!(u.path(), "/scim/v2/Users");
        assert_eq!(
            u.query(),
            Some("filter=active+eq+true&startIndex=51&count=50")
        );
        assert!(!s.describe().contains("t0ken"));
    }

    #[test]
    fn config_errors_name_the_key() {
        assert!(err(json!({"token": "x"})).contains("source.base_url"));
        assert!(err(json!({"base_url": "https://h/scim/v2"})).contains("source.token"));
        assert!(err(json!({"base_url": "nope", "token": "x"})).contains("source.base_url"));
        assert!(
            err(json!({"base_url": "https://h", "token": "x", "count": 0}))
                .contains("source.count")
        );
        assert!(
            err(json!({"base_url": "https://h", "token": "x", "count": "x"}))
                .contains("source.count")
        );
        assert!(
            err(json!({"base_url": "https://h", "token": "x", "id_field": "uuid"}))
                .contains("source.id_field")
        );
        assert!(
            err(json!({"base_url": "https://h", "token": "x", "filtr": "a"})).contains("filtr")
        );
    }
}
