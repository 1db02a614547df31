//! A stateful fake SCIM 2.0 service provider (RFC 7643 / RFC 7644), the `scim` source's
//! counterpart. Base URL: `http://ADDR/scim/v2`.
//!
//! - Auth: `Authorization: Bearer <token>`; otherwise 401 with an RFC 7644 error body
//!   `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401","detail":…}`.
//! - `GET /v2/Users?startIndex=&count=&filter=`: a ListResponse (`totalResults`,
//!   `itemsPerPage`, `startIndex`, `Resources`), in creation order. `startIndex` is
//!   1-based (below 1 counts as 1); `count` is capped at the server's page size (default
//!   50, `set_max_page_size`) whatever the client asks, as real providers do.
//! - `filter`: comparisons `ATTR eq|ne|co|sw|ew VALUE` and `ATTR pr`, joined by `and`;
//!   `ATTR` may be a sub-attribute (`name.familyName`, `emails.value`); values are
//!   `"strings"`, `true`/`false`, `null` or numbers; strings compare case-insensitively
//!   (RFC 7643 `caseExact` false). Anything else: 400 `scimType` `invalidFilter`.
//! - `GET /v2/Users/{id}`, `POST /v2/Users` (201; `userName` required and unique, 409
//!   `uniqueness` otherwise), `PUT /v2/Users/{id}` (replace), `DELETE /v2/Users/{id}` (204).
//! - `GET /v2/Groups` (paged and filtered like `/Users`), `GET /v2/Groups/{id}`,
//!   `POST /v2/Groups` (`displayName` required; every member must exist: 400
//!   `invalidValue` otherwise), `PUT /v2/Groups/{id}`, `DELETE /v2/Groups/{id}`. A member
//!   is `{value, type: "User"|"Group", $ref, display}`; a group member makes nested
//!   groups. Deleting a user or a group removes it from every group, as providers do.
//! - `User.groups` (RFC 7643: optional, read-only) as `set_user_groups` says: returned as
//!   the user was added (default), left out (`UserGroups::Omitted`, as many providers
//!   do), or derived from `/Groups` with `direct`/`indirect` items.
//! - `attributes=` / `excludedAttributes=` (RFC 7644 §3.4.2.5) on every GET of Users
//!   and Groups: comma-separated, case-insensitive, sub-attributes and schema-URN forms;
//!   `id` and `schemas` are always returned.
//! - Test hooks: `add`/`update`/`remove` change users directly, `add_group`,
//!   `add_member`/`remove_member`, `update_group`, `remove_group` change groups;
//!   `after_list_requests` runs a closure once N more list requests (of Users or
//!   Groups) were answered (to inject a fault on page N+1 via `control`, or change the
//!   list mid-read); `set_total_skew` makes `totalResults` lie (a provider whose count
//!   and pages disagree). To fail one page, a `Fault` can also match the page's query
//!   (`Fault::query_contains("startIndex=51")`).

mod attributes;
mod groups;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::control::{self, Control};

pub use groups::{GROUP_SCHEMA, UserGroups};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

type Hook = Box<dyn FnOnce(&Scim) + Send>;

#[derive(Default)]
struct Directory {
    /// Creation sequence → user.
    users: BTreeMap<u64, Map<String, Value>>,
    /// Creation sequence → group (`members` stored as `{value, type}`).
    groups: BTreeMap<u64, Map<String, Value>>,
    user_groups: UserGroups,
    /// Shared by users and groups: an id is unique across resource types (RFC 7643 §3.1).
    next: u64,
    max_page: usize,
    total_skew: i64,
    list_requests: usize,
    hooks: Vec<(usize, Hook)>,
}

/// The fake's handle: its directory for setup and assertions, its control for faults.
#[derive(Clone)]
pub struct Scim {
    state: Arc<Mutex<Directory>>,
    pub control: Control,
    token: String,
}

type Reply = Result<Response, Response>;

fn scim_error(status: StatusCode, scim_type: Option<&str>, detail: &str) -> Response {
    let mut body = json!({
        "schemas": [ERROR_SCHEMA],
        "status": status.as_u16().to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        body["scimType"] = json!(t);
    }
    let mut r = (status, Json(body)).into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/scim+json"),
    );
    r
}

fn scim_json(status: StatusCode, body: Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/scim+json"),
    );
    r
}

impl Scim {
    pub fn new(token: &str) -> Self {
        Self {
            state: Arc::new(Mutex::new(Directory {
                next: 1,
                max_page: 50,
                ..Directory::default()
            })),
            control: Control::default(),
            token: token.to_string(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Directory> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/v2/Users", get(list_users).post(create))
            .route(
                "/v2/Users/{id}",
                get(fetch_user).put(replace).delete(remove),
            )
            .route("/v2/Groups", get(list_groups).post(create_group))
            .route(
                "/v2/Groups/{id}",
                get(fetch_group).put(replace_group).delete(remove_group),
            )
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.control.clone(),
                control::layer,
            ))
    }

    /// The most resources one page carries, whatever `count` asks for.
    pub fn set_max_page_size(&self, n: usize) {
        self.lock().max_page = n.max(1);
    }

    /// Adds this much to every `totalResults` (a provider whose count is wrong).
    pub fn set_total_skew(&self, skew: i64) {
        self.lock().total_skew = skew;
    }

    /// Runs `hook` right after the `n`-th list request from now has been answered.
    pub fn after_list_requests(&self, n: usize, hook: impl FnOnce(&Scim) + Send + 'static) {
        let mut g = self.lock();
        let at = g.list_requests + n;
        g.hooks.push((at, Box::new(hook)));
    }

    /// Adds a user (as a client would POST it); returns its `id`.
    pub fn add(&self, user: Value) -> String {
        let mut g = self.lock();
        let (id, stored) = new_user(&mut g, user);
        let seq = g.next - 1;
        g.users.insert(seq, stored);
        id
    }

    /// Merges top-level attributes into a user (`null` removes one).
    pub fn update(&self, id: &str, changes: Value) {
        let mut g = self.lock();
        if let Some(u) = g.users.values_mut().find(|u| u["id"] == id) {
            merge(u, changes);
            touch(u);
        }
    }

    /// Deletes a user, and its memberships.
    pub fn remove(&self, id: &str) {
        let mut g = self.lock();
        g.users.retain(|_, u| u["id"] != id);
        g.drop_memberships(id);
    }

    /// The users as stored (`groups` only if they were added with it).
    pub fn users(&self) -> Vec<Value> {
        self.lock()
            .users
            .values()
            .cloned()
            .map(Value::Object)
            .collect()
    }

    /// What `/Users` says about groups.
    pub fn set_user_groups(&self, mode: UserGroups) {
        self.lock().user_groups = mode;
    }

    /// Adds a group whose members are these user or group ids; returns its `id`.
    ///
    /// # Errors
    /// A member that does not exist (the HTTP API answers 400 for it).
    pub fn add_group(&self, display_name: &str, members: &[&str]) -> Result<String, String> {
        let mut g = self.lock();
        let members = members
            .iter()
            .map(|m| {
                let kind = g
                    .kind_of(m)
                    .ok_or_else(|| format!("no user or group {m}"))?;
                Ok(groups::member(m, kind == Kind::Groups))
            })
            .collect::<Result<Vec<Value>, String>>()?;
        let (id, stored) = new_group(
            &mut g,
            json!({"displayName": display_name, "members": members}),
        );
        let seq = g.next - 1;
        g.groups.insert(seq, stored);
        Ok(id)
    }

    /// Makes a user or a group a member of `group`.
    ///
    /// # Errors
    /// The group or the member does not exist.
    pub fn add_member(&self, group: &str, member: &str) -> Result<(), String> {
        let mut g = self.lock();
        let kind = g
            .kind_of(member)
            .ok_or_else(|| format!("no user or group {member}"))?;
        let slot = g.group_mut(group)?;
        let members = slot
            .entry("members")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = members
            && !items.iter().any(|m| m["value"] == member)
        {
            items.push(groups::member(member, kind == Kind::Groups));
        }
        touch_group(slot);
        Ok(())
    }

    /// Takes a member out of `group`.
    ///
    /// # Errors
    /// The group does not exist.
    pub fn remove_member(&self, group: &str, member: &str) -> Result<(), String> {
        let mut g = self.lock();
        let slot = g.group_mut(group)?;
        if let Some(Value::Array(items)) = slot.get_mut("members") {
            items.retain(|m| m["value"] != member);
        }
        touch_group(slot);
        Ok(())
    }

    /// Merges top-level attributes into a group (`null` removes one), e.g. a new
    /// `displayName`.
    pub fn update_group(&self, id: &str, changes: Value) {
        let mut g = self.lock();
        if let Some(slot) = g.groups.values_mut().find(|x| x["id"] == id) {
            merge(slot, changes);
            touch_group(slot);
        }
    }

    /// Deletes a group, and its memberships in other groups.
    pub fn remove_group(&self, id: &str) {
        let mut g = self.lock();
        g.groups.retain(|_, x| x["id"] != id);
        g.drop_memberships(id);
    }

    /// The groups as stored (members as `{value, type}`).
    pub fn groups(&self) -> Vec<Value> {
        self.lock()
            .groups
            .values()
            .cloned()
            .map(Value::Object)
            .collect()
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), Response> {
        if crate::control::has_bearer(headers, &self.token) {
            Ok(())
        } else {
            Err(scim_error(
                StatusCode::UNAUTHORIZED,
                None,
                "Authorization failure. The authorization header is invalid or missing.",
            ))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Users,
    Groups,
}

impl Kind {
    fn schema(self) -> &'static str {
        match self {
            Self::Users => USER_SCHEMA,
            Self::Groups => GROUP_SCHEMA,
        }
    }
}

impl Directory {
    fn store(&self, kind: Kind) -> &BTreeMap<u64, Map<String, Value>> {
        match kind {
            Kind::Users => &self.users,
            Kind::Groups => &self.groups,
        }
    }

    /// Whether `id` is a user or a group, if it exists.
    fn kind_of(&self, id: &str) -> Option<Kind> {
        if self.users.values().any(|u| u["id"] == id) {
            Some(Kind::Users)
        } else if self.groups.values().any(|g| g["id"] == id) {
            Some(Kind::Groups)
        } else {
            None
        }
    }

    fn group_mut(&mut self, id: &str) -> Result<&mut Map<String, Value>, String> {
        self.groups
            .values_mut()
            .find(|g| g["id"] == id)
            .ok_or_else(|| format!("no group {id}"))
    }

    fn drop_memberships(&mut self, id: &str) {
        for g in self.groups.values_mut() {
            if let Some(Value::Array(items)) = g.get_mut("members") {
                items.retain(|m| m["value"] != id);
            }
        }
    }

    /// Everything needed to render resources as the wire shows them.
    fn view(&self, base: String) -> View<'_> {
        View {
            derived: (self.user_groups == UserGroups::Derived)
                .then(|| groups::derived_user_groups(&self.groups, &base)),
            users: by_id(&self.users),
            groups: by_id(&self.groups),
            mode: self.user_groups,
            base,
        }
    }
}

fn by_id(resources: &BTreeMap<u64, Map<String, Value>>) -> HashMap<&str, &Map<String, Value>> {
    resources
        .values()
        .filter_map(|r| r.get("id").and_then(Value::as_str).map(|id| (id, r)))
        .collect()
}

struct View<'a> {
    users: HashMap<&'a str, &'a Map<String, Value>>,
    groups: HashMap<&'a str, &'a Map<String, Value>>,
    derived: Option<HashMap<String, Vec<Value>>>,
    mode: UserGroups,
    base: String,
}

impl View<'_> {
    fn render(&self, kind: Kind, r: &Map<String, Value>) -> Map<String, Value> {
        match kind {
            Kind::Groups => groups::render_group(r, &self.users, &self.groups, &self.base),
            Kind::Users => {
                let mut u = r.clone();
                match self.mode {
                    UserGroups::AsStored => {}
                    UserGroups::Omitted => {
                        u.remove("groups");
                    }
                    UserGroups::Derived => {
                        u.remove("groups");
                        let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
                        if let Some(items) = self.derived.as_ref().and_then(|d| d.get(id)) {
                            u.insert("groups".into(), Value::Array(items.clone()));
                        }
                    }
                }
                u
            }
        }
    }
}

/// `attributes=` / `excludedAttributes=` of one request.
struct Projection {
    attributes: Option<String>,
    excluded: Option<String>,
}

impl Projection {
    fn from_query(q: &BTreeMap<String, String>) -> Self {
        Self {
            attributes: q.get("attributes").cloned(),
            excluded: q.get("excludedAttributes").cloned(),
        }
    }

    fn apply(&self, kind: Kind, mut r: Map<String, Value>) -> Map<String, Value> {
        let keys: Vec<String> = r.keys().cloned().collect();
        if let Some(list) = &self.attributes {
            attributes::Tree::parse(list, kind.schema(), &keys).keep(&mut r);
        }
        if let Some(list) = &self.excluded {
            attributes::Tree::parse(list, kind.schema(), &keys).drop_from(&mut r);
        }
        r
    }
}

/// The `…/scim/v2` URL the client used, for `$ref`s.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}/scim/v2")
}

fn touch_group(g: &mut Map<String, Value>) {
    let id = g
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    g.insert(
        "meta".into(),
        json!({"resourceType": "Group", "location": format!("/scim/v2/Groups/{id}")}),
    );
}

fn new_group(g: &mut Directory, group: Value) -> (String, Map<String, Value>) {
    let mut r = match group {
        Value::Object(r) => r,
        _ => Map::new(),
    };
    let seq = g.next;
    g.next += 1;
    let id = format!("{seq:08x}-9a0e-4000-8000-{seq:012x}");
    r.insert("id".into(), json!(id));
    r.entry("schemas").or_insert_with(|| json!([GROUP_SCHEMA]));
    touch_group(&mut r);
    (id, r)
}

/// Merges top-level attributes into a resource: `null` removes one.
fn merge(into: &mut Map<String, Value>, changes: Value) {
    if let Value::Object(changes) = changes {
        for (k, v) in changes {
            if v.is_null() {
                into.remove(&k);
            } else {
                into.insert(k, v);
            }
        }
    }
}

fn touch(u: &mut Map<String, Value>) {
    let id = u
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    u.insert(
        "meta".into(),
        json!({"resourceType": "User", "location": format!("/scim/v2/Users/{id}")}),
    );
}

fn new_user(g: &mut Directory, user: Value) -> (String, Map<String, Value>) {
    let mut u = match user {
        Value::Object(u) => u,
        _ => Map::new(),
    };
    let seq = g.next;
    g.next += 1;
    let id = match u.get("id").and_then(Value::as_str) {
        Some(id) => id.to_string(),
        None => format!("{seq:08x}-5c1e-4000-8000-{seq:012x}"),
    };
    u.insert("id".into(), json!(id));
    u.entry("schemas").or_insert_with(|| json!([USER_SCHEMA]));
    touch(&mut u);
    (id, u)
}

async fn list_users(
    State(s): State<Scim>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Reply {
    list(s, Kind::Users, headers, q).await
}

async fn list_groups(
    State(s): State<Scim>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Reply {
    list(s, Kind::Groups, headers, q).await
}

async fn list(s: Scim, kind: Kind, headers: HeaderMap, q: BTreeMap<String, String>) -> Reply {
    s.authorize(&headers)?;
    let filter = match q.get("filter") {
        Some(f) => Some(
            parse_filter(f)
                .map_err(|m| scim_error(StatusCode::BAD_REQUEST, Some("invalidFilter"), &m))?,
        ),
        None => None,
    };
    let num = |k: &str, default: i64| -> Result<i64, Response> {
        match q.get(k) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                scim_error(
                    StatusCode::BAD_REQUEST,
                    Some("invalidValue"),
                    &format!("{k} must be an integer"),
                )
            }),
        }
    };
    let start = num("startIndex", 1)?.max(1);
    let projection = Projection::from_query(&q);
    let (body, hooks) = {
        let mut g = s.lock();
        let count = num("count", g.max_page as i64)?.clamp(0, g.max_page as i64);
        let (total, page) = {
            let view = g.view(base_url(&headers));
            // Filters see what the wire shows (derived groups included); only the page
            // is rendered otherwise.
            let matching: Vec<&Map<String, Value>> = g
                .store(kind)
                .values()
                .filter(|r| match &filter {
                    None => true,
                    Some(f) if view.mode == UserGroups::Derived || kind == Kind::Groups => {
                        f.matches(&view.render(kind, r))
                    }
                    Some(f) => f.matches(r),
                })
                .collect();
            let total = matching.len() as i64 + g.total_skew;
            let page: Vec<Value> = matching
                .into_iter()
                .skip(usize::try_from(start - 1).unwrap_or(usize::MAX))
                .take(usize::try_from(count).unwrap_or(0))
                .map(|r| Value::Object(projection.apply(kind, view.render(kind, r))))
                .collect();
            (total, page)
        };
        let body = json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total.max(0),
            "itemsPerPage": page.len(),
            "startIndex": start,
            "Resources": page,
        });
        g.list_requests += 1;
        let now = g.list_requests;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut g.hooks)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        g.hooks = later;
        (body, due)
    };
    for (_, hook) in hooks {
        hook(&s);
    }
    Ok(scim_json(StatusCode::OK, body))
}

async fn fetch_user(
    State(s): State<Scim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Reply {
    fetch(s, Kind::Users, headers, id, q)
}

async fn fetch_group(
    State(s): State<Scim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Reply {
    fetch(s, Kind::Groups, headers, id, q)
}

fn fetch(
    s: Scim,
    kind: Kind,
    headers: HeaderMap,
    id: String,
    q: BTreeMap<String, String>,
) -> Reply {
    s.authorize(&headers)?;
    let g = s.lock();
    let view = g.view(base_url(&headers));
    g.store(kind)
        .values()
        .find(|r| r["id"] == id.as_str())
        .map(|r| {
            let shown = Projection::from_query(&q).apply(kind, view.render(kind, r));
            scim_json(StatusCode::OK, Value::Object(shown))
        })
        .ok_or_else(|| not_found(&id))
}

fn not_found(id: &str) -> Response {
    scim_error(
        StatusCode::NOT_FOUND,
        None,
        &format!("Resource {id} not found"),
    )
}

fn check_user(g: &Directory, u: &Value, except: Option<&str>) -> Result<(), Response> {
    let Some(name) = u
        .get("userName")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
    else {
        return Err(scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            "userName is required",
        ));
    };
    let taken = g.users.values().any(|o| {
        Some(o["id"].as_str().unwrap_or_default()) != except
            && o.get("userName")
                .and_then(Value::as_str)
                .is_some_and(|x| x.eq_ignore_ascii_case(name))
    });
    if taken {
        return Err(scim_error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            &format!("userName {name} is already taken"),
        ));
    }
    Ok(())
}

async fn create(State(s): State<Scim>, headers: HeaderMap, body: Option<Json<Value>>) -> Reply {
    s.authorize(&headers)?;
    let Some(Json(mut user @ Value::Object(_))) = body else {
        return Err(scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            "expected a User",
        ));
    };
    if let Some(obj) = user.as_object_mut() {
        obj.remove("id");
    }
    let mut g = s.lock();
    check_user(&g, &user, None)?;
    let (_, stored) = new_user(&mut g, user);
    let seq = g.next - 1;
    g.users.insert(seq, stored.clone());
    Ok(scim_json(StatusCode::CREATED, Value::Object(stored)))
}

async fn replace(
    State(s): State<Scim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<Value>>,
) -> Reply {
    s.authorize(&headers)?;
    let Some(Json(Value::Object(mut user))) = body else {
        return Err(scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            "expected a User",
        ));
    };
    let mut g = s.lock();
    check_user(&g, &Value::Object(user.clone()), Some(&id))?;
    let Some(slot) = g.users.values_mut().find(|u| u["id"] == id.as_str()) else {
        return Err(not_found(&id));
    };
    user.insert("id".into(), json!(id));
    user.entry("schemas")
        .or_insert_with(|| json!([USER_SCHEMA]));
    touch(&mut user);
    *slot = user.clone();
    Ok(scim_json(StatusCode::OK, Value::Object(user)))
}

async fn remove(State(s): State<Scim>, headers: HeaderMap, Path(id): Path<String>) -> Reply {
    s.authorize(&headers)?;
    let mut g = s.lock();
    let before = g.users.len();
    g.users.retain(|_, u| u["id"] != id.as_str());
    if g.users.len() == before {
        return Err(not_found(&id));
    }
    g.drop_memberships(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A group as a client sends it: `displayName` required, every member an existing user
/// or group (its `type` filled in, or checked when given).
fn check_group(g: &Directory, body: Option<Json<Value>>) -> Result<Map<String, Value>, Response> {
    let invalid = |detail: &str| scim_error(StatusCode::BAD_REQUEST, Some("invalidValue"), detail);
    let Some(Json(Value::Object(mut group))) = body else {
        return Err(scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            "expected a Group",
        ));
    };
    if group
        .get("displayName")
        .and_then(Value::as_str)
        .is_none_or(|n| n.trim().is_empty())
    {
        return Err(invalid("displayName is required"));
    }
    let members = match group.remove("members") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid("members must be a list")),
    };
    let mut stored = Vec::new();
    for m in members {
        let Some(value) = m.get("value").and_then(Value::as_str) else {
            return Err(invalid("a member has no value"));
        };
        let Some(kind) = g.kind_of(value) else {
            return Err(invalid(&format!("member {value} does not exist")));
        };
        let want = if kind == Kind::Groups {
            "Group"
        } else {
            "User"
        };
        if let Some(t) = m.get("type").and_then(Value::as_str)
            && t != want
        {
            return Err(invalid(&format!("member {value} is a {want}, not a {t}")));
        }
        stored.push(groups::member(value, kind == Kind::Groups));
    }
    group.insert("members".into(), Value::Array(stored));
    group.remove("id");
    group.remove("meta");
    Ok(group)
}

async fn create_group(
    State(s): State<Scim>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Reply {
    s.authorize(&headers)?;
    let mut g = s.lock();
    let group = check_group(&g, body)?;
    let (id, stored) = new_group(&mut g, Value::Object(group));
    let seq = g.next - 1;
    g.groups.insert(seq, stored);
    let view = g.view(base_url(&headers));
    let shown = g
        .groups
        .values()
        .find(|x| x["id"] == id.as_str())
        .map(|x| view.render(Kind::Groups, x))
        .unwrap_or_default();
    Ok(scim_json(StatusCode::CREATED, Value::Object(shown)))
}

async fn replace_group(
    State(s): State<Scim>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<Value>>,
) -> Reply {
    s.authorize(&headers)?;
    let mut g = s.lock();
    let mut group = check_group(&g, body)?;
    let Some(slot) = g.groups.values_mut().find(|x| x["id"] == id.as_str()) else {
        return Err(not_found(&id));
    };
    group.insert("id".into(), json!(id));
    group
        .entry("schemas")
        .or_insert_with(|| json!([GROUP_SCHEMA]));
    touch_group(&mut group);
    *slot = group;
    let view = g.view(base_url(&headers));
    let shown = g
        .groups
        .values()
        .find(|x| x["id"] == id.as_str())
        .map(|x| view.render(Kind::Groups, x))
        .unwrap_or_default();
    Ok(scim_json(StatusCode::OK, Value::Object(shown)))
}

async fn remove_group(State(s): State<Scim>, headers: HeaderMap, Path(id): Path<String>) -> Reply {
    s.authorize(&headers)?;
    let mut g = s.lock();
    let before = g.groups.len();
    g.groups.retain(|_, x| x["id"] != id.as_str());
    if g.groups.len() == before {
        return Err(not_found(&id));
    }
    g.drop_memberships(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- filters ----

#[derive(Debug)]
enum Cmp {
    Present,
    Op(String, Value),
}

#[derive(Debug)]
struct Filter(Vec<(String, Cmp)>);

impl Filter {
    fn matches(&self, u: &Map<String, Value>) -> bool {
        self.0.iter().all(|(path, cmp)| {
            let values = resolve(u, path);
            match cmp {
                Cmp::Present => values
                    .iter()
                    .any(|v| !v.is_null() && v.as_str().is_none_or(|s| !s.is_empty())),
                Cmp::Op(op, want) if op == "ne" => !values.iter().any(|v| compare("eq", v, want)),
                Cmp::Op(op, want) => values.iter().any(|v| compare(op, v, want)),
            }
        })
    }
}

/// Every value at `path` (a multi-valued attribute gives one per item).
fn resolve<'a>(u: &'a Map<String, Value>, path: &str) -> Vec<&'a Value> {
    let mut parts = path.split('.');
    let first = parts.next().unwrap_or_default();
    let Some(mut at) = find_key(u, first).map(|v| vec![v]) else {
        return Vec::new();
    };
    for part in parts {
        at = at
            .into_iter()
            .flat_map(|v| match v {
                Value::Array(items) => items.iter().collect::<Vec<_>>(),
                other => vec![other],
            })
            .filter_map(|v| v.as_object().and_then(|o| find_key(o, part)))
            .collect();
    }
    at.into_iter()
        .flat_map(|v| match v {
            Value::Array(items) => items.iter().collect::<Vec<_>>(),
            other => vec![other],
        })
        .collect()
}

/// Attribute names are case-insensitive (RFC 7643 §2.1).
fn find_key<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn compare(op: &str, have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::String(h), Value::String(w)) => {
            let (h, w) = (h.to_lowercase(), w.to_lowercase());
            match op {
                "eq" => h == w,
                "co" => h.contains(&w),
                "sw" => h.starts_with(&w),
                "ew" => h.ends_with(&w),
                _ => false,
            }
        }
        (h, w) => op == "eq" && h == w,
    }
}

fn parse_filter(text: &str) -> Result<Filter, String> {
    let tokens = tokenize(text)?;
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let Some(attr) = tokens.get(i) else {
            return Err(format!("incomplete filter `{text}`"));
        };
        if !attr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
        {
            return Err(format!("unsupported filter `{text}` (attribute `{attr}`)"));
        }
        let op = tokens
            .get(i + 1)
            .map(|o| o.to_ascii_lowercase())
            .ok_or_else(|| format!("incomplete filter `{text}`"))?;
        if op == "pr" {
            out.push((attr.clone(), Cmp::Present));
            i += 2;
        } else if ["eq", "ne", "co", "sw", "ew"].contains(&op.as_str()) {
            let raw = tokens
                .get(i + 2)
                .ok_or_else(|| format!("incomplete filter `{text}`"))?;
            let value = if let Some(s) = raw.strip_prefix('"') {
                Value::String(s.to_string())
            } else {
                match raw.to_ascii_lowercase().as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    _ => serde_json::from_str::<serde_json::Number>(raw)
                        .map(Value::Number)
                        .map_err(|_| format!("unsupported value `{raw}` in filter `{text}`"))?,
                }
            };
            out.push((attr.clone(), Cmp::Op(op, value)));
            i += 3;
        } else {
            return Err(format!("unsupported operator `{op}` in filter `{text}`"));
        }
        match tokens.get(i).map(|t| t.to_ascii_lowercase()) {
            None => return Ok(Filter(out)),
            Some(t) if t == "and" => i += 1,
            Some(t) => return Err(format!("unsupported `{t}` in filter `{text}` (only `and`)")),
        }
    }
}

/// Words and quoted strings; a quoted string is returned as `"` + its unescaped content.
fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut s = String::from("\"");
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated string in filter `{text}`")),
                    Some('\\') => s.extend(chars.next()),
                    Some('"') => break,
                    Some(c) => s.push(c),
                }
            }
            out.push(s);
        } else if c == '(' || c == ')' || c == '[' || c == ']' {
            return Err(format!("grouping is not supported in filter `{text}`"));
        } else {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' {
                    break;
                }
                w.push(c);
                chars.next();
            }
            out.push(w);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let u = json!({"userName": "BJensen", "active": true,
            "emails": [{"value": "b@example.com"}], "name": {"familyName": "Jensen"}});
        let u = u.as_object().expect("object");
        for (f, want) in [
            ("userName eq \"bjensen\"", true),
            ("active eq true", true),
            ("active eq false", false),
            (
                "emails.value co \"example\" and name.familyName sw \"J\"",
                true,
            ),
            ("title pr", false),
            ("userName ne \"x\"", true),
        ] {
            assert_eq!(parse_filter(f).expect(f).matches(u), want, "{f}");
        }
        assert!(parse_filter("userName gt \"a\"").is_err());
        assert!(parse_filter("(active eq true)").is_err());
        assert!(parse_filter("active eq true or x pr").is_err());
    }
}
