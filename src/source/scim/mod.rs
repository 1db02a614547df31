//! The SCIM 2.0 source (RFC 7643 / 7644): `GET {base_url}/Users` page by page, and
//! `GET {base_url}/Groups` when membership comes from there (`groups_from`).
//!
//! Paging follows RFC 7644 §3.4.2.4: `startIndex` is 1-based, and the next page starts
//! after the resources actually received — servers may return fewer than `count` (most
//! cap the page size), so the read goes on until `totalResults` resources are in hand.
//!
//! Completeness: any failed request (after `retries`), timeout, non-2xx answer (an
//! RFC 7644 error's `detail` is quoted), a body that is not a ListResponse, an empty page
//! before `totalResults` is reached, or a `totalResults` that changes during the read,
//! fails the whole read — of `/Users` and of `/Groups` alike, because a membership missed
//! takes a person out of a group-scoped vendor. A `/Groups` listing that does not add up
//! (see `groups.rs`) fails it too.
//!
//! Groups (`groups_from`): `users` takes `User.groups[].display`; `groups` reads
//! `/Groups` (asking `/Users` to leave `groups` out) and gives each user the
//! `displayName` of every group whose `members` hold its SCIM `id` — also with
//! `id_field = "externalId"`, since members always name the `id` — nested groups
//! included; `auto` (the default) is `users` when any user came with `groups`, else
//! `groups`.
//!
//! Mapping (core User schema): `id` (or `externalId`, see `id_field`) → id, `userName` →
//! username, `name.givenName`/`name.familyName`, the primary email (else the first),
//! a phone (primary, else `work`, else the first), `active`, the groups above. The
//! enterprise extension fills attributes `scim.employee_number`, `scim.department`,
//! `scim.cost_center`, `scim.organization`, `scim.division`, `scim.manager` (its
//! `value`); `attributes` maps more (any attribute path, e.g. `title` or
//! `urn:…:User:costCenter`); `start_date_attribute` and `end_date_attribute` name the
//! paths of the start and end dates.
//!
//! Files: `mapping.rs` (a ListResponse, and a User resource into a person),
//! `groups.rs` (Group resources into each user's group names; pure).

mod groups;
mod mapping;
#[cfg(test)]
mod no_panic;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::header::HeaderName;
use serde::Deserialize;
use serde_json::Value;
use tracing::debug;
use url::Url;

use crate::budget::Budget;
use crate::config::{ConfigError, Secret};
use crate::http;

use crate::source::Build;
use crate::source::remote::{
    Auth, Credential, JsonGet, Remote, check_http_url, check_page_limits, default_max_page_mb,
    shown,
};
use crate::source::{Snapshot, Source, SourceError};

pub use groups::GroupsFrom;
use groups::{GROUPS_QUERY, Membership};
use mapping::*;

pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub(super) const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ACCEPT: &str = "application/scim+json, application/json";

/// Enterprise extension attribute → person attribute name.
pub(super) const ENTERPRISE_ATTRIBUTES: &[(&str, &str)] = &[
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
    /// A SCIM filter, sent as `filter=` (to `/Users` only).
    filter: Option<String>,
    #[serde(default)]
    id_field: IdField,
    /// Where each user's groups come from.
    #[serde(default)]
    groups_from: GroupsFrom,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    #[serde(default = "default_retries")]
    retries: u32,
    /// Person attribute name → SCIM attribute path.
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    /// SCIM attribute paths of `start_date` and `end_date` (an extension attribute, e.g.
    /// `urn:…:User:startDate`); none by default, as the core schema has none.
    start_date_attribute: Option<String>,
    end_date_attribute: Option<String>,
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
pub(super) enum IdField {
    /// The service provider's own `id`: stable, always present.
    #[default]
    #[serde(rename = "id")]
    Id,
    /// The client-assigned `externalId` (e.g. an employee number set by HR).
    #[serde(rename = "externalId")]
    ExternalId,
}

pub struct ScimSource {
    users_url: Url,
    groups_url: Url,
    count: u32,
    filter: Option<String>,
    groups_from: GroupsFrom,
    get: JsonGet,
    max_pages: u64,
    map: Mapping,
}

/// The two resource lists a read may page through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum List {
    Users,
    Groups,
}

impl List {
    fn route(self) -> &'static str {
        match self {
            Self::Users => "GET /Users",
            Self::Groups => "GET /Groups",
        }
    }
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
        for (key, path) in [
            ("source.start_date_attribute", &o.start_date_attribute),
            ("source.end_date_attribute", &o.end_date_attribute),
        ] {
            if path.as_ref().is_some_and(|p| p.trim().is_empty()) {
                return Err(ConfigError::invalid(
                    key,
                    "is empty (give a SCIM attribute path)",
                ));
            }
        }
        for (name, path) in &o.attributes {
            if name.trim().is_empty() || path.trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("source.attributes.{name}"),
                    "needs a name and a SCIM attribute path",
                ));
            }
        }
        let endpoint = |name: &str| {
            let mut url = base.clone();
            url.set_path(&format!("{}/{name}", base.path().trim_end_matches('/')));
            url
        };
        Ok(Self {
            users_url: endpoint("Users"),
            groups_url: endpoint("Groups"),
            count: o.count,
            filter: o.filter,
            groups_from: o.groups_from,
            get: JsonGet::new(
                Remote {
                    timeout_secs: o.timeout_secs,
                    retries: o.retries,
                    max_page_mb: o.max_page_mb,
                    retry: b.retry,
                    observer: b.observer.clone(),
                },
                Auth::Header(bearer),
                "GET /Users",
            )?,
            max_pages: o.max_pages,
            map: Mapping {
                id_field: o.id_field,
                start_date: o.start_date_attribute,
                end_date: o.end_date_attribute,
                attributes: o.attributes,
                enterprise: o.enterprise_attributes,
            },
        })
    }

    fn page_url(&self, list: List, start_index: u64, count: u32) -> Url {
        let mut url = match list {
            List::Users => self.users_url.clone(),
            List::Groups => self.groups_url.clone(),
        };
        {
            let mut q = url.query_pairs_mut();
            match list {
                List::Users => {
                    if let Some(f) = &self.filter {
                        q.append_pair("filter", f);
                    }
                    if let Some((k, v)) = self.groups_from.users_query() {
                        q.append_pair(k, v);
                    }
                }
                List::Groups => {
                    q.append_pair(GROUPS_QUERY.0, GROUPS_QUERY.1);
                }
            }
            q.append_pair("startIndex", &start_index.to_string())
                .append_pair("count", &count.to_string());
        }
        url
    }

    /// Reads a whole list (or, with `limit`, its first page): each resource with its
    /// place, and `totalResults`.
    async fn read_all(
        &self,
        budget: &Budget,
        list: List,
        limit: Option<u32>,
    ) -> Result<(Vec<(String, Value)>, u64), String> {
        let place = match list {
            List::Users => "",
            List::Groups => "/Groups ",
        };
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
                .get_route(
                    budget,
                    list.route(),
                    &self.page_url(list, start_index, limit.unwrap_or(self.count)),
                    ACCEPT,
                )
                .await
                .map_err(|e| e.0)?;
            let listed =
                ListPage::parse(&page.body).map_err(|e| format!("{place}page {page_no}: {e}"))?;
            if let Some(s) = listed.start_index
                && s != start_index
            {
                return Err(format!(
                    "{place}page {page_no}: asked for startIndex {start_index}, the server \
                     answered {s}"
                ));
            }
            if let Some(before) = total
                && before != listed.total
            {
                return Err(format!(
                    "{place}page {page_no}: totalResults changed from {before} to {} during \
                     the read; the list moved under the pages, so {} may have been missed",
                    listed.total,
                    match list {
                        List::Users => "people",
                        List::Groups => "memberships",
                    }
                ));
            }
            total = Some(listed.total);
            let n = listed.resources.len();
            out.extend(listed.resources.into_iter().enumerate().map(|(i, v)| {
                let at = start_index + i as u64;
                (format!("{place}resource {at} (page {page_no})"), v)
            }));
            let got = out.len() as u64;
            if limit.is_some() {
                return Ok((out, listed.total));
            }
            if got > listed.total {
                return Err(format!(
                    "{place}received {got} resources, more than totalResults {}",
                    listed.total
                ));
            }
            if got == listed.total {
                return Ok((out, listed.total));
            }
            if n == 0 {
                return Err(format!(
                    "{place}page {page_no} (startIndex {start_index}) is empty after {got} of \
                     totalResults {}; the read is incomplete",
                    listed.total
                ));
            }
        }
    }
}

impl ScimSource {
    /// Every user's groups from a whole `/Groups` read.
    ///
    /// # Errors
    /// A failed or inconsistent read, saying why `/Groups` was read.
    async fn membership(&self, budget: &Budget) -> Result<Membership, String> {
        let why = match self.groups_from {
            GroupsFrom::Auto => {
                "groups_from = \"auto\" and no user in /Users came with `groups`; set \
                 groups_from = \"users\" if this provider's groups are not wanted"
            }
            _ => "groups_from = \"groups\"",
        };
        let fail = |e: &dyn std::fmt::Display| format!("reading /Groups ({why}): {e}");
        let (groups, _) = self
            .read_all(budget, List::Groups, None)
            .await
            .map_err(|e| fail(&e))?;
        let membership = Membership::from_groups(&groups).map_err(|e| fail(&e))?;
        debug!(
            groups = groups.len(),
            members = membership.users(),
            "Read group membership from /Groups."
        );
        Ok(membership)
    }
}

#[async_trait]
impl Source for ScimSource {
    async fn fetch(&self, budget: &Budget) -> Result<Snapshot, SourceError> {
        let unreadable = |message| SourceError::Unreadable {
            path: self.describe(),
            message,
        };
        let (resources, _) = self
            .read_all(budget, List::Users, None)
            .await
            .map_err(unreadable)?;
        let membership = if self.groups_from.needs_groups_endpoint(&resources) {
            Some(self.membership(budget).await.map_err(unreadable)?)
        } else {
            None
        };
        Ok(self.map.snapshot(resources, membership.as_ref()))
    }

    fn flow(&self) -> Option<&Arc<http::Flow>> {
        Some(self.get.flow())
    }

    fn describe(&self) -> String {
        let mut out = format!("scim {}", shown(&self.users_url));
        if let Some(f) = &self.filter {
            out.push_str(&format!(" filter {f}"));
        }
        if self.groups_from != GroupsFrom::Users {
            out.push_str(&format!(" groups_from {}", self.groups_from.name()));
        }
        out
    }

    /// One small page of users (and of groups when a pass would read them): proves the
    /// token works and says how many there are.
    async fn check(&self, budget: &Budget) -> Result<String, SourceError> {
        let unreadable = |message| SourceError::Unreadable {
            path: self.describe(),
            message,
        };
        let (resources, total) = self
            .read_all(budget, List::Users, Some(5))
            .await
            .map_err(unreadable)?;
        if total == 0 {
            return Err(unreadable(
                "the server lists no users; a pass would be refused".into(),
            ));
        }
        let groups = if self.groups_from.needs_groups_endpoint(&resources) {
            let (_, groups) = self
                .read_all(budget, List::Groups, Some(5))
                .await
                .map_err(|e| {
                    unreadable(format!(
                        "reading /Groups (groups_from = \"{}\"): {e}",
                        self.groups_from.name()
                    ))
                })?;
            format!("; {groups} groups in /Groups (membership read from there)")
        } else {
            String::new()
        };
        let sample = self.map.snapshot(resources, None);
        Ok(format!(
            "{total} users (totalResults); of the first {}, {} valid, {} invalid{groups}",
            sample.people.len() + sample.invalid.len(),
            sample.people.len(),
            sample.invalid.len()
        ))
    }
}
