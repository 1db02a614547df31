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
//! - Test hooks: `add`/`update`/`remove` change the directory directly; `after_list_requests`
//!   runs a closure once N more list requests were answered (to inject a fault on page
//!   N+1 via `control`, or change the list mid-read); `set_total_skew` makes
//!   `totalResults` lie (a provider whose count and pages disagree).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::control::{self, Control};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

type Hook = Box<dyn FnOnce(&Scim) + Send>;

#[derive(Default)]
struct Directory {
    /// Creation sequence → user.
    users: BTreeMap<u64, Map<String, Value>>,
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
            .route("/v2/Users", get(list).post(create))
            .route("/v2/Users/{id}", get(fetch).put(replace).delete(remove))
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
        if let Some(u) = g.users.values_mut().find(|u| u["id"] == id)
            && let Value::Object(changes) = changes
        {
            for (k, v) in changes {
                if v.is_null() {
                    u.remove(&k);
                } else {
                    u.insert(k, v);
                }
            }
            touch(u);
        }
    }

    pub fn remove(&self, id: &str) {
        self.lock().users.retain(|_, u| u["id"] != id);
    }

    pub fn users(&self) -> Vec<Value> {
        self.lock()
            .users
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

async fn list(
    State(s): State<Scim>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Reply {
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
    let (body, hooks) = {
        let mut g = s.lock();
        let count = num("count", g.max_page as i64)?.clamp(0, g.max_page as i64);
        let matching: Vec<&Map<String, Value>> = g
            .users
            .values()
            .filter(|u| filter.as_ref().is_none_or(|f| f.matches(u)))
            .collect();
        let total = matching.len() as i64 + g.total_skew;
        let page: Vec<Value> = matching
            .into_iter()
            .skip(usize::try_from(start - 1).unwrap_or(usize::MAX))
            .take(usize::try_from(count).unwrap_or(0))
            .cloned()
            .map(Value::Object)
            .collect();
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

async fn fetch(State(s): State<Scim>, headers: HeaderMap, Path(id): Path<String>) -> Reply {
    s.authorize(&headers)?;
    s.lock()
        .users
        .values()
        .find(|u| u["id"] == id.as_str())
        .map(|u| scim_json(StatusCode::OK, Value::Object(u.clone())))
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
