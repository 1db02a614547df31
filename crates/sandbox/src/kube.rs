//! A fake Kubernetes API server, serving `coordination.k8s.io/v1` Leases as the real one
//! does: bearer auth; GET, POST (create), PUT (replace) and PATCH (JSON merge, strategic
//! merge and JSON patch) on
//! `/apis/coordination.k8s.io/v1/namespaces/{ns}/leases[/{name}]`; 404 before creation,
//! 409 `AlreadyExists` on creating an existing Lease and 409 `Conflict` on a stale
//! `resourceVersion`; every error a `kind: Status` body with the real server's reasons
//! and messages.
//!
//! It has its own router ([`KubeApi::router`]) and its own server ([`KubeServer`]),
//! which can go unreachable on demand: [`KubeApi::set_reachable`]`(false)` stops
//! answering (requests hang, as behind a network partition), [`KubeServer::refuse`]
//! closes the port (connections refused).
//!
//! What it does not do: server-side apply (`application/apply-patch+yaml` is answered
//! 415), watches, lists, other resources, RBAC.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

const GROUP: &str = "coordination.k8s.io";
const API_VERSION: &str = "coordination.k8s.io/v1";
const PREFIX: &str = "/apis/coordination.k8s.io/v1/namespaces";

/// One request the fake answered (or refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseCall {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// When the request arrived.
    pub at: Instant,
    /// The Lease's holder after a successful write.
    pub holder: Option<String>,
}

#[derive(Default)]
struct Inner {
    /// (namespace, name) → the stored object.
    leases: BTreeMap<(String, String), Value>,
    /// The cluster-wide resourceVersion counter.
    revision: u64,
    calls: Vec<LeaseCall>,
}

/// The fake's state and controls. Cloning shares them.
#[derive(Clone)]
pub struct KubeApi {
    inner: Arc<Mutex<Inner>>,
    token: Arc<String>,
    reachable: Arc<watch::Sender<bool>>,
}

impl KubeApi {
    /// A fake accepting `Authorization: Bearer TOKEN`.
    pub fn new(token: &str) -> Self {
        Self {
            inner: Arc::default(),
            token: Arc::new(token.to_string()),
            reachable: Arc::new(watch::channel(true).0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route(&format!("{PREFIX}/{{ns}}/leases"), post(create))
            .route(
                &format!("{PREFIX}/{{ns}}/leases/{{name}}"),
                get(read).put(replace).patch(patch),
            )
            .fallback(|| async {
                status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    "the server could not find the requested resource".into(),
                    None,
                )
            })
            .layer(axum::middleware::from_fn_with_state(self.clone(), front))
            .with_state(self.clone())
    }

    /// `false`: requests are accepted but not answered until it is `true` again, and
    /// are then dropped without touching the state (logged with status 504).
    pub fn set_reachable(&self, reachable: bool) {
        self.reachable.send_replace(reachable);
    }

    /// The stored Lease object.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<Value> {
        self.lock()
            .leases
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// `spec.holderIdentity` of the Lease, if it exists and names one.
    pub fn holder(&self, namespace: &str, name: &str) -> Option<String> {
        self.lease(namespace, name)
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(String::from))
            .filter(|h| !h.is_empty())
    }

    pub fn calls(&self) -> Vec<LeaseCall> {
        self.lock().calls.clone()
    }
}

/// Logs, checks the bearer token, and holds requests while unreachable.
async fn front(State(api): State<KubeApi>, req: Request, next: Next) -> Response {
    let at = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let mut reachable = api.reachable.subscribe();
    let partitioned = !*reachable.borrow_and_update();
    let response = if partitioned {
        // A partition: nothing comes back until it heals, and what was sent meanwhile
        // never reached the server (the client has long given up by then).
        let _ = reachable.wait_for(|r| *r).await;
        status(
            StatusCode::GATEWAY_TIMEOUT,
            "Timeout",
            "the request was lost in a network partition and never reached the server".into(),
            None,
        )
    } else if crate::control::has_bearer(req.headers(), &api.token) {
        next.run(req).await
    } else {
        status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized".into(),
            None,
        )
    };
    let code = response.status().as_u16();
    let holder = match response.extensions().get::<Written>() {
        Some(Written(ns, name)) if method != "GET" => api.holder(ns, name),
        _ => None,
    };
    api.lock().calls.push(LeaseCall {
        method,
        path,
        status: code,
        at,
        holder,
    });
    response
}

/// A `kind: Status` failure, as the API server sends.
fn status(code: StatusCode, reason: &str, message: String, name: Option<&str>) -> Response {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    if let Some(name) = name {
        body["details"] = json!({ "name": name, "group": GROUP, "kind": "leases" });
    }
    (code, axum::Json(body)).into_response()
}

fn not_found(name: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("leases.{GROUP} \"{name}\" not found"),
        Some(name),
    )
}

fn conflict(name: &str) -> Response {
    status(
        StatusCode::CONFLICT,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on leases.{GROUP} \"{name}\": the object has been \
             modified; please apply your changes to the latest version and try again"
        ),
        Some(name),
    )
}

fn bad_request(message: String) -> Response {
    status(StatusCode::BAD_REQUEST, "BadRequest", message, None)
}

fn invalid(name: &str, field: &str, message: &str) -> Response {
    status(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
        format!("Lease.{GROUP} \"{name}\" is invalid: {field}: {message}"),
        Some(name),
    )
}

/// Which Lease a response carries (for the call log).
#[derive(Clone)]
struct Written(String, String);

fn object(code: StatusCode, value: &Value) -> Response {
    let mut response = (code, axum::Json(value.clone())).into_response();
    let meta = &value["metadata"];
    if let (Some(ns), Some(name)) = (meta["namespace"].as_str(), meta["name"].as_str()) {
        response
            .extensions_mut()
            .insert(Written(ns.to_string(), name.to_string()));
    }
    response
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
}

/// The body as a Lease object, checked the way the API server decodes it.
fn decode(body: &[u8], ns: &str) -> Result<Map<String, Value>, Response> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return Err(bad_request(
            "the body of the request was in an unknown format - accepted media types include: \
             application/json, application/yaml, application/vnd.kubernetes.protobuf"
                .into(),
        ));
    };
    if let Some(v) = obj.get("apiVersion").and_then(Value::as_str)
        && v != API_VERSION
    {
        return Err(bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version ({API_VERSION})"
        )));
    }
    if let Some(k) = obj.get("kind").and_then(Value::as_str)
        && k != "Lease"
    {
        return Err(bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind (Lease)"
        )));
    }
    if let Some(n) = obj
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        && n != ns
    {
        return Err(bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        ));
    }
    Ok(obj)
}

/// Field validation of `coordination.k8s.io/v1` Lease.
fn validate(name: &str, obj: &Map<String, Value>) -> Result<(), Response> {
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    if !(spec.is_null() || spec.is_object()) {
        return Err(bad_request("spec: expected an object".into()));
    }
    for field in ["leaseDurationSeconds", "leaseTransitions"] {
        match spec.get(field) {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_i64() {
                Some(n) if field == "leaseDurationSeconds" && n <= 0 => {
                    return Err(invalid(
                        name,
                        &format!("spec.{field}"),
                        &format!("Invalid value: {n}: must be greater than 0"),
                    ));
                }
                Some(n) if n < 0 => {
                    return Err(invalid(
                        name,
                        &format!("spec.{field}"),
                        &format!("Invalid value: {n}: must be greater than or equal to 0"),
                    ));
                }
                Some(n) if i32::try_from(n).is_err() => {
                    return Err(bad_request(format!("spec.{field}: out of range for int32")));
                }
                Some(_) => {}
                None => return Err(bad_request(format!("spec.{field}: expected an integer"))),
            },
        }
    }
    for field in ["acquireTime", "renewTime"] {
        if let Some(v) = spec.get(field)
            && !(v.is_null() || v.as_str().is_some_and(|s| s.len() >= 20 && s.contains('T')))
        {
            return Err(bad_request(format!(
                "spec.{field}: expected an RFC 3339 time with microseconds"
            )));
        }
    }
    Ok(())
}

impl KubeApi {
    /// Stores `obj` as the new version of `ns/name` (keeping identity fields of `old`).
    fn store(
        &self,
        g: &mut Inner,
        ns: &str,
        name: &str,
        mut obj: Map<String, Value>,
        old: Option<&Value>,
    ) -> Value {
        let meta = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        let meta = meta.as_object_mut().map(std::mem::take).unwrap_or_default();
        let mut meta = meta;
        meta.insert("name".into(), name.into());
        meta.insert("namespace".into(), ns.into());
        match old {
            Some(old) => {
                for key in ["uid", "creationTimestamp"] {
                    meta.insert(key.into(), old["metadata"][key].clone());
                }
            }
            None => {
                meta.insert(
                    "uid".into(),
                    format!("5e1d0000-0000-4000-8000-{:012x}", g.revision + 1).into(),
                );
                meta.insert("creationTimestamp".into(), rfc3339_now().into());
            }
        }
        obj.insert("apiVersion".into(), API_VERSION.into());
        obj.insert("kind".into(), "Lease".into());
        // A write that changes nothing keeps its resourceVersion, as the real server does.
        if let Some(old) = old {
            meta.insert(
                "resourceVersion".into(),
                old["metadata"]["resourceVersion"].clone(),
            );
            obj.insert("metadata".into(), Value::Object(meta.clone()));
            if Value::Object(obj.clone()) == *old {
                return old.clone();
            }
        }
        g.revision += 1;
        meta.insert("resourceVersion".into(), g.revision.to_string().into());
        obj.insert("metadata".into(), Value::Object(meta));
        let value = Value::Object(obj);
        g.leases
            .insert((ns.to_string(), name.to_string()), value.clone());
        value
    }
}

async fn read(State(api): State<KubeApi>, Path((ns, name)): Path<(String, String)>) -> Response {
    match api.lease(&ns, &name) {
        Some(l) => object(StatusCode::OK, &l),
        None => not_found(&name),
    }
}

async fn create(State(api): State<KubeApi>, Path(ns): Path<String>, body: Bytes) -> Response {
    let obj = match decode(&body, &ns) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        return invalid(
            "",
            "metadata.name",
            "Required value: name or generateName is required",
        );
    }
    if obj["metadata"]
        .get("resourceVersion")
        .is_some_and(|v| !v.is_null())
    {
        return status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "resourceVersion should not be set on objects to be created".into(),
            None,
        );
    }
    if let Err(r) = validate(&name, &obj) {
        return r;
    }
    let mut g = api.lock();
    if g.leases.contains_key(&(ns.clone(), name.clone())) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("leases.{GROUP} \"{name}\" already exists"),
            Some(&name),
        );
    }
    let stored = api.store(&mut g, &ns, &name, obj, None);
    object(StatusCode::CREATED, &stored)
}

async fn replace(
    State(api): State<KubeApi>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let obj = match decode(&body, &ns) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let given = obj["metadata"]
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if given != name {
        return bad_request(format!(
            "the name of the object ({given}) does not match the name on the URL ({name})"
        ));
    }
    if let Err(r) = validate(&name, &obj) {
        return r;
    }
    let version = obj["metadata"]
        .get("resourceVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(String::from);
    let mut g = api.lock();
    let old = g.leases.get(&(ns.clone(), name.clone())).cloned();
    match (&old, &version) {
        // Leases may be created by an update without a precondition.
        (None, Some(_)) => return not_found(&name),
        (Some(old), Some(v)) if old["metadata"]["resourceVersion"].as_str() != Some(v) => {
            return conflict(&name);
        }
        _ => {}
    }
    let created = old.is_none();
    let stored = api.store(&mut g, &ns, &name, obj, old.as_ref());
    object(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &stored,
    )
}

async fn patch(
    State(api): State<KubeApi>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = content_type(&headers).to_string();
    if kind == "application/apply-patch+yaml" {
        return status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "server-side apply is not implemented by this fake".into(),
            None,
        );
    }
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("the body of the request was not valid JSON".into());
    };
    let mut g = api.lock();
    let Some(old) = g.leases.get(&(ns.clone(), name.clone())).cloned() else {
        return not_found(&name);
    };
    let patched = match kind.as_str() {
        // A Lease has no list with a merge key, so a strategic merge is a merge patch.
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let mut doc = old.clone();
            merge(&mut doc, &patch);
            doc
        }
        "application/json-patch+json" => match json_patch(&old, &patch) {
            Ok(doc) => doc,
            Err(r) => return r,
        },
        other => {
            return status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types \
                     include: application/json-patch+json, application/merge-patch+json, \
                     application/apply-patch+yaml (got `{other}`)"
                ),
                None,
            );
        }
    };
    let Value::Object(obj) = patched else {
        return bad_request("the patched object is not an object".into());
    };
    // A resourceVersion in the patch is a precondition.
    if obj["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"] {
        return conflict(&name);
    }
    if obj["metadata"]["name"].as_str() != Some(name.as_str()) {
        return bad_request("metadata.name: the name cannot be changed by a patch".into());
    }
    if let Err(r) = validate(&name, &obj) {
        return r;
    }
    let stored = api.store(&mut g, &ns, &name, obj, Some(&old));
    object(StatusCode::OK, &stored)
}

/// RFC 7386 JSON merge patch.
fn merge(doc: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *doc = patch.clone();
        return;
    };
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    if let Value::Object(d) = doc {
        for (k, v) in p {
            if v.is_null() {
                d.remove(k);
            } else {
                merge(d.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// RFC 6902 JSON patch: `add`, `remove`, `replace`, `test` on object members.
fn json_patch(doc: &Value, patch: &Value) -> Result<Value, Response> {
    let Some(ops) = patch.as_array() else {
        return Err(bad_request(
            "a JSON patch must be an array of operations".into(),
        ));
    };
    let mut doc = doc.clone();
    for op in ops {
        let path = op["path"].as_str().unwrap_or_default();
        let kind = op["op"].as_str().unwrap_or_default();
        match kind {
            "test" => {
                if doc.pointer(path) != Some(&op["value"]) {
                    return Err(status(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid",
                        format!(
                            "the server rejected our request due to an error in our request: testing value {path} failed"
                        ),
                        None,
                    ));
                }
            }
            "add" | "replace" | "remove" => {
                let (parent, key) = path.rsplit_once('/').unwrap_or(("", path));
                let key = key.replace("~1", "/").replace("~0", "~");
                let Some(Value::Object(target)) = doc.pointer_mut(parent) else {
                    return Err(status(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid",
                        format!("doc is missing path: \"{path}\""),
                        None,
                    ));
                };
                if kind != "add" && !target.contains_key(&key) {
                    return Err(status(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid",
                        format!("doc is missing key: {path}"),
                        None,
                    ));
                }
                if kind == "remove" {
                    target.remove(&key);
                } else {
                    target.insert(key, op["value"].clone());
                }
            }
            other => {
                return Err(bad_request(format!(
                    "unsupported JSON patch operation `{other}`"
                )));
            }
        }
    }
    Ok(doc)
}

/// Now as RFC 3339 in UTC, seconds precision (a `creationTimestamp`).
fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The fake on its own loopback port, which can be closed and opened again.
pub struct KubeServer {
    pub api: KubeApi,
    pub addr: SocketAddr,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl KubeServer {
    /// Starts on a free loopback port, accepting `token`.
    ///
    /// # Errors
    /// If no port can be bound.
    pub async fn start(token: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let mut server = Self {
            api: KubeApi::new(token),
            addr,
            running: None,
        };
        server.serve(listener);
        Ok(server)
    }

    fn serve(&mut self, listener: TcpListener) {
        let (stop, stopped) = oneshot::channel::<()>();
        let app = self.api.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        self.running = Some((stop, task));
    }

    /// The API server's URL (for a kubeconfig's `server`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig that points a client at this fake with `token` in `namespace`.
    pub fn kubeconfig(&self, token: &str, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n    server: {}\n\
             users:\n- name: roster\n  user:\n    token: {token}\ncontexts:\n- name: sandbox\n  context:\n    \
             cluster: sandbox\n    user: roster\n    namespace: {namespace}\ncurrent-context: sandbox\n",
            self.url()
        )
    }

    /// Closes the port: new connections are refused, idle ones closed.
    pub async fn refuse(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    /// Opens the port again after [`refuse`](Self::refuse).
    ///
    /// # Errors
    /// If the port cannot be bound again.
    pub async fn resume(&mut self) -> std::io::Result<()> {
        if self.running.is_none() {
            let listener = TcpListener::bind(self.addr).await?;
            self.serve(listener);
        }
        Ok(())
    }
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        if let Some((_, task)) = &self.running {
            task.abort();
        }
    }
}
