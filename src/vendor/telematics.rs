//! Telematics SDK / Damoov users, via the User Service (`user.telematicssdk.com`).
//!
//! Matching key: the person's id as `UserFields.ClientId`, sent at create and found
//! again with `GET /v1/Management/users/find?ClientId=…&ShowInactiveUsers=true` (the
//! flag matters: without it a deactivated user is invisible and would be created
//! twice). Damoov's create is not idempotent, so the executor's lookup-first and
//! `Creating` intent are what prevent duplicates. The vendor id is the `DeviceToken`.
//!
//! Two credentials: the admin login (`email` + `password`) buys a JWT for the
//! management endpoints; `instance_id` + `instance_key` are sent as headers on create.
//! The JWT lives in a shared-layer session (`http::session`): cached for its lifetime,
//! renewed single-flight, refreshed with `Auth/RefreshToken` (keeping the new refresh
//! token Damoov returns) before it expires or after a 401, and a new login only when the
//! refresh is refused. Damoov allows 5 logins per minute per IP and blocks the IP for an
//! hour past that; the session allows this vendor `LOGINS.attempts` a minute (one kept in
//! reserve for a `roster check` on the same host) and, after a 429 on login, none until
//! the block is over.
//!
//! Deactivation follows the vendor notes' conservative advice: Damoov has two levers
//! (`Status` and `UserFields.Enabled`) and does not say how they interact, so both are
//! set. `UserFields` may be replaced wholesale on write, so the current flags are read
//! first and all of them are sent back, `ClientId` included.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tracing::warn;
use url::Url;

use super::{Allowed, PersonField, Remote, Vendor, VendorError, VendorSettings};
use crate::budget::Budget;
use crate::config::{ConfigError, Secret};
use crate::http::session::{Authenticator, LoginLimit, Session, Token};
use crate::http::{self, BodyCap, Http, Reply};
use crate::model::{Changes, Fields, MapError, Person, PersonId};

pub const DEFAULT_BASE_URL: &str = "https://user.telematicssdk.com";

/// roster's field name, the person's field, and Damoov's PascalCase name.
const PERSON_FIELDS: &[(&str, PersonField, &str)] = &[
    ("first_name", PersonField::FirstName, "FirstName"),
    ("last_name", PersonField::LastName, "LastName"),
    ("email", PersonField::Email, "Email"),
    ("phone", PersonField::Phone, "Phone"),
];

/// The `UserFields` flags Damoov documents; only these are copied back on write.
const USER_FLAGS: &[&str] = &[
    "ClientId",
    "Enabled",
    "EnableTracking",
    "EnableLogging",
    "EnableRealTimeLocation",
];

/// Damoov's documented limit is 5 logins per minute per IP, then a one-hour block.
pub const LOGINS: LoginLimit = LoginLimit {
    attempts: 4,
    window: Duration::from_secs(60),
    block: Duration::from_secs(3600),
};

/// Damoov takes no vendor-specific fields.
const NO_FIELDS: Allowed = Allowed {
    test: |_| false,
    hint: "Damoov takes none",
};

/// A DeviceToken no user has, for `check`'s read-only probe.
const PROBE_TOKEN: &str = "00000000-0000-0000-0000-000000000000";

const JSON_PATCH: &str = "application/json-patch+json";

/// The `[vendors.NAME]` keys of `type = "telematics"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    email: Option<Secret>,
    email_file: Option<std::path::PathBuf>,
    password: Option<Secret>,
    password_file: Option<std::path::PathBuf>,
    instance_id: Option<Secret>,
    instance_id_file: Option<std::path::PathBuf>,
    instance_key: Option<Secret>,
    instance_key_file: Option<std::path::PathBuf>,
}

/// The admin login and refresh on the wire.
struct AdminLogin {
    http: Arc<Http>,
    base: Url,
    email: Secret,
    password: Secret,
}

#[async_trait]
impl Authenticator for AdminLogin {
    type Error = VendorError;

    async fn login(&self, budget: &Budget) -> Result<Token, VendorError> {
        let login_fields = json!({ "email": self.email.expose() }).to_string();
        let req = self
            .http
            .request(Method::POST, http::endpoint(&self.base, "/v1/Auth/Login"))
            .json(&json!({ "LoginFields": login_fields, "Password": self.password.expose() }));
        let reply = self.http.send_unpaced(budget, BodyCap::READ, req).await?;
        token_from(&reply, "admin login")
    }

    async fn refresh(
        &self,
        budget: &Budget,
        access: &Secret,
        refresh: &Secret,
    ) -> Result<Token, VendorError> {
        let req = self
            .http
            .request(
                Method::POST,
                http::endpoint(&self.base, "/v1/Auth/RefreshToken"),
            )
            .json(&json!({ "AccessToken": access.expose(), "RefreshToken": refresh.expose() }));
        let reply = self.http.send_unpaced(budget, BodyCap::READ, req).await?;
        token_from(&reply, "token refresh")
    }
}

/// A login or refresh reply: the JWT, its lifetime and the (new) refresh token.
fn token_from(reply: &Reply, what: &str) -> Result<Token, VendorError> {
    if !reply.is_success() {
        let status = reply.status.as_u16();
        let detail = envelope_message(&reply.body).unwrap_or_else(|| reply.snippet());
        return Err(match reply.status {
            s if s.is_server_error() => VendorError::Server {
                status,
                detail: format!("{what}: {detail}"),
            },
            StatusCode::TOO_MANY_REQUESTS => VendorError::RateLimited {
                retry_after: http::headers::retry_after(
                    &reply.headers,
                    std::time::SystemTime::now(),
                ),
            },
            // Any other refusal of a login is a credentials problem.
            _ => VendorError::Auth {
                status,
                detail: format!("{what} refused: {detail}"),
            },
        });
    }
    let body = reply.json()?;
    let result = body.get("Result").unwrap_or(&Value::Null);
    let access = result
        .pointer("/AccessToken/Token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| VendorError::Protocol(format!("{what} answered without a token")))?;
    let lifetime = result
        .pointer("/AccessToken/ExpiresIn")
        .and_then(Value::as_u64)
        .map_or(Duration::from_secs(86_400), Duration::from_secs);
    let refresh = result
        .get("RefreshToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(Secret::new);
    Ok(Token {
        access: Secret::new(access),
        refresh,
        lifetime,
    })
}

pub struct Telematics {
    settings: VendorSettings,
    base: Url,
    instance_id: Secret,
    instance_key: Secret,
    http: Arc<Http>,
    session: Session<AdminLogin>,
}

impl Telematics {
    /// # Errors
    /// Missing or doubled credentials, unknown keys, or any `[defaults]` (Damoov takes
    /// no vendor-specific fields).
    pub fn new(settings: &VendorSettings, o: &Options, http: Http) -> Result<Self, ConfigError> {
        let secrets = settings.secrets();
        let email = secrets.required("email", o.email.clone(), o.email_file.clone())?;
        let password = secrets.required("password", o.password.clone(), o.password_file.clone())?;
        let instance_id = secrets.required(
            "instance_id",
            o.instance_id.clone(),
            o.instance_id_file.clone(),
        )?;
        let instance_key = secrets.required(
            "instance_key",
            o.instance_key.clone(),
            o.instance_key_file.clone(),
        )?;
        super::check_defaults(settings, NO_FIELDS)?;
        let base = super::base_url(settings, DEFAULT_BASE_URL)?;
        let http = Arc::new(http);
        let login = AdminLogin {
            http: Arc::clone(&http),
            base: base.clone(),
            email,
            password,
        };
        Ok(Self {
            settings: settings.clone(),
            session: Session::new(&settings.name, login, LOGINS, Arc::clone(http.flow())),
            base,
            instance_id,
            instance_key,
            http,
        })
    }

    fn url(&self, path: &str) -> Url {
        http::endpoint(&self.base, path)
    }

    /// Calls a management endpoint with the admin JWT (renewed once on a 401).
    async fn admin(
        &self,
        budget: &Budget,
        route: &str,
        cap: BodyCap,
        build: impl Fn(&Secret) -> RequestBuilder,
    ) -> Result<Reply, VendorError> {
        let reply = self
            .session
            .send(budget, |token| {
                let req = build(&token);
                async move { Ok(self.http.send(budget, route, cap, req).await?) }
            })
            .await?;
        if reply.is_success() {
            Ok(reply)
        } else {
            Err(super::classify(&reply, envelope_message))
        }
    }

    // ---- users ----

    /// Users matching the query (deactivated ones included), within this instance.
    async fn find(
        &self,
        budget: &Budget,
        query: &[(&str, &str)],
    ) -> Result<Vec<Value>, VendorError> {
        let url = self.url("/v1/Management/users/find");
        let mut params: Vec<(&str, &str)> = query.to_vec();
        params.push(("ShowInactiveUsers", "true"));
        // No match is an empty array; a 404 here means a wrong base_url, not "nobody".
        let reply = self
            .admin(budget, "GET users/find", BodyCap::READ, |t| {
                self.http
                    .request(Method::GET, url.clone())
                    .bearer_auth(t.expose())
                    .query(&params)
            })
            .await?;
        let body = reply.json()?;
        let users = match body.get("Result") {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(Value::Object(_)) => vec![body["Result"].clone()],
            Some(_) => {
                return Err(VendorError::Protocol(
                    "find answered with an odd Result".into(),
                ));
            }
        };
        let instance = self.instance_id.expose();
        Ok(users
            .into_iter()
            .filter(|u| {
                // A company-level admin sees every instance: keep this one's users only.
                u.pointer("/AccountInfo/InstanceId")
                    .and_then(Value::as_str)
                    .is_none_or(|i| i.eq_ignore_ascii_case(instance))
            })
            .filter(|u| u.get("Status").and_then(Value::as_str) != Some("Deleted"))
            .collect())
    }

    async fn find_by_token(
        &self,
        budget: &Budget,
        device_token: &str,
    ) -> Result<Option<Value>, VendorError> {
        let users = self.find(budget, &[("DeviceToken", device_token)]).await?;
        Ok(users
            .into_iter()
            .find(|u| u.get("DeviceToken").and_then(Value::as_str) == Some(device_token)))
    }

    async fn put_user(
        &self,
        budget: &Budget,
        device_token: &str,
        body: &Value,
    ) -> Result<(), VendorError> {
        let url = self.url("/v1/Management/users");
        let bytes = serde_json::to_vec(body)
            .map_err(|e| VendorError::Protocol(format!("cannot encode the request: {e}")))?;
        self.admin(budget, "PUT users", BodyCap::WRITE, |t| {
            self.http
                .request(Method::PUT, url.clone())
                .bearer_auth(t.expose())
                .header("UserDeviceToken", device_token)
                .header(CONTENT_TYPE, JSON_PATCH)
                .body(bytes.clone())
        })
        .await
        .map(|_| ())
    }
}

/// Damoov's envelope `{"Status", "Title", "Errors": [{"Key", "Message"}]}` as one line.
fn envelope_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let title = v.get("Title").and_then(Value::as_str).unwrap_or_default();
    let errors: Vec<String> = v
        .get("Errors")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|e| {
                    let key = e.get("Key").and_then(Value::as_str).unwrap_or_default();
                    let msg = e.get("Message").and_then(Value::as_str).unwrap_or_default();
                    if key.is_empty() {
                        msg.to_string()
                    } else {
                        format!("{key}: {msg}")
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let text = match (title.is_empty(), errors.is_empty()) {
        (true, true) => return None,
        (false, true) => title.to_string(),
        (true, false) => errors.join("; "),
        (false, false) => format!("{title} ({})", errors.join("; ")),
    };
    Some(text)
}

/// `UserFields` as read: an array with one object (an object is accepted too).
fn user_fields(user: &Value) -> Option<&Map<String, Value>> {
    match user.get("UserFields")? {
        Value::Array(items) => items.first()?.as_object(),
        Value::Object(o) => Some(o),
        _ => None,
    }
}

fn client_id(user: &Value) -> Option<&str> {
    user_fields(user)?.get("ClientId")?.as_str()
}

/// Whether the account is usable: `Status` reads `Active` and `Enabled` is not false.
fn is_active(user: &Value) -> bool {
    let status = user
        .get("Status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let enabled = user_fields(user)
        .and_then(|f| f.get("Enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(true);
    status.eq_ignore_ascii_case("Active") && enabled
}

/// The account's profile under roster's field names.
fn profile_fields(user: &Value) -> Fields {
    let mut out = Fields::new();
    for (name, _, wire) in PERSON_FIELDS {
        if let Some(v) = user
            .pointer(&format!("/UserProfile/{wire}"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            out.insert((*name).to_string(), v.to_string());
        }
    }
    out
}

fn wire_name(field: &str) -> Option<&'static str> {
    PERSON_FIELDS
        .iter()
        .find(|(name, _, _)| *name == field)
        .map(|(_, _, wire)| *wire)
}

/// The update body for `changes`: Damoov's names; a cleared field is sent as `""`
/// (`null` may mean "leave unchanged" to Damoov).
fn update_body(changes: &Changes) -> Map<String, Value> {
    changes
        .iter()
        .filter_map(|(k, v)| {
            let wire = wire_name(k)?;
            Some((wire.to_string(), json!(v.as_deref().unwrap_or(""))))
        })
        .collect()
}

/// The `UserFields` to write: every documented flag as read now, `Enabled` set.
fn flags_with_enabled(user: &Value, enabled: bool) -> Map<String, Value> {
    let mut flags: Map<String, Value> = user_fields(user)
        .map(|f| {
            f.iter()
                .filter(|(k, v)| USER_FLAGS.contains(&k.as_str()) && !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    flags.insert("Enabled".into(), Value::Bool(enabled));
    flags
}

fn date_created(user: &Value) -> &str {
    user.get("DateCreated")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn device_token(user: &Value) -> Result<String, VendorError> {
    user.get("DeviceToken")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .ok_or_else(|| VendorError::Protocol("user without a DeviceToken".into()))
}

#[async_trait]
impl Vendor for Telematics {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn map(&self, person: &Person) -> Result<Fields, MapError> {
        // No vendor-specific fields: this only rejects stray `NAME.FIELD` attributes.
        let mut fields = super::vendor_fields(&self.settings, person, NO_FIELDS)?;
        let names = PERSON_FIELDS.iter().map(|(n, f, _)| (*n, *f));
        super::put_person_fields(person, &mut fields, names);
        fields.retain(|_, v| !v.is_empty());
        Ok(fields)
    }

    fn flow(&self) -> &Arc<http::Flow> {
        self.http.flow()
    }

    async fn check(&self, budget: &Budget) -> Result<(), VendorError> {
        // The login proves the admin credentials; a find proves the JWT may manage users.
        // The instance credentials can only be proven by a create, which is a write.
        self.find(budget, &[("DeviceToken", PROBE_TOKEN)])
            .await
            .map(|_| ())
            .map_err(|e| super::check_failure(e, &self.url("/v1/Management/users/find")))
    }

    async fn lookup(
        &self,
        budget: &Budget,
        person: &PersonId,
        _fields: &Fields,
    ) -> Result<Option<Remote>, VendorError> {
        let mut users: Vec<Value> = self
            .find(budget, &[("ClientId", person.as_str())])
            .await?
            .into_iter()
            .filter(|u| client_id(u) == Some(person.as_str()))
            .collect();
        if users.len() > 1 {
            warn!(vendor = %self.settings.name, user = %person, accounts = users.len(), "Several Damoov users carry this ClientId; adopting the active one created first.");
        }
        // Active first, then the oldest, then by token: the same pick every pass.
        users.sort_by(|a, b| {
            is_active(b)
                .cmp(&is_active(a))
                .then_with(|| date_created(a).cmp(date_created(b)))
                .then_with(|| {
                    let ta = a.get("DeviceToken").and_then(Value::as_str);
                    ta.cmp(&b.get("DeviceToken").and_then(Value::as_str))
                })
        });
        let Some(user) = users.first() else {
            return Ok(None);
        };
        Ok(Some(Remote {
            id: device_token(user)?,
            active: Some(is_active(user)),
            fields: profile_fields(user),
        }))
    }

    async fn list(&self, budget: &Budget) -> Result<Vec<Remote>, VendorError> {
        const PAGE_SIZE: u64 = 100;
        let url = self.url("/v1/Management/users/GetFilteredPage");
        let instance = self.instance_id.expose().to_string();
        let mut out = Vec::new();
        for page in 1u64.. {
            let body = json!({
                "PageNumber": page,
                "PageSize": PAGE_SIZE,
                "ShowInactiveUsers": true,
                "IncludeAccountInfo": false,
                "Sort": "DateCreated",
                "InstanceIds": [instance],
            });
            let reply = self
                .admin(budget, "POST users/GetFilteredPage", BodyCap::PAGE, |t| {
                    self.http
                        .request(Method::POST, url.clone())
                        .bearer_auth(t.expose())
                        .header(CONTENT_TYPE, JSON_PATCH)
                        .body(body.to_string())
                })
                .await?
                .json()?;
            let result = reply
                .get("Result")
                .ok_or_else(|| VendorError::Protocol("GetFilteredPage without Result".into()))?;
            let users = result
                .get("Users")
                .and_then(Value::as_array)
                .ok_or_else(|| VendorError::Protocol("GetFilteredPage without Users".into()))?;
            for user in users {
                if user.get("Status").and_then(Value::as_str) == Some("Deleted") {
                    continue;
                }
                out.push(Remote {
                    id: device_token(user)?,
                    active: Some(is_active(user)),
                    fields: profile_fields(user),
                });
            }
            let more = result
                .get("HasNextPage")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !more || users.is_empty() {
                break;
            }
        }
        Ok(out)
    }

    async fn create(
        &self,
        budget: &Budget,
        person: &PersonId,
        fields: &Fields,
    ) -> Result<String, VendorError> {
        let mut body: Map<String, Value> = fields
            .iter()
            .filter_map(|(k, v)| Some((wire_name(k)?.to_string(), json!(v))))
            .collect();
        body.insert("UserFields".into(), json!({ "ClientId": person.as_str() }));
        body.insert("CreateAccessToken".into(), json!(false));
        let req = self
            .http
            .request(Method::POST, self.url("/v1/Registration/create"))
            .header("InstanceId", self.instance_id.expose())
            .header("InstanceKey", self.instance_key.expose())
            .json(&Value::Object(body));
        let reply = self
            .http
            .send(budget, "POST Registration/create", BodyCap::WRITE, req)
            .await?;
        if !reply.status.is_success() {
            return Err(match super::classify(&reply, envelope_message) {
                VendorError::Auth { status, detail } => VendorError::Auth {
                    status,
                    detail: format!("instance_id / instance_key refused: {detail}"),
                },
                other => other,
            });
        }
        let body = reply.json()?;
        body.pointer("/Result/DeviceToken")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .ok_or_else(|| VendorError::Protocol("create answered without a DeviceToken".into()))
    }

    async fn update(
        &self,
        budget: &Budget,
        remote: &str,
        changes: &Changes,
        _fields: &Fields,
    ) -> Result<(), VendorError> {
        let body = update_body(changes);
        if body.is_empty() {
            return Ok(());
        }
        self.put_user(budget, remote, &Value::Object(body)).await
    }

    async fn set_active(
        &self,
        budget: &Budget,
        remote: &str,
        active: bool,
    ) -> Result<(), VendorError> {
        let user = self
            .find_by_token(budget, remote)
            .await?
            .ok_or_else(|| VendorError::NotFound(format!("no Damoov user {remote}")))?;
        let status = if active { "Active" } else { "Deactivated" };
        let enabled_now = user_fields(&user)
            .and_then(|f| f.get("Enabled"))
            .and_then(Value::as_bool);
        if is_active(&user) == active && enabled_now == Some(active) {
            return Ok(());
        }
        let body = json!({
            "Status": status,
            "UserFields": Value::Object(flags_with_enabled(&user, active)),
        });
        self.put_user(budget, remote, &body).await
    }

    async fn delete(&self, budget: &Budget, remote: &str) -> Result<(), VendorError> {
        let mut url = self.url("/v1/Management/users");
        url.path_segments_mut()
            .map_err(|()| VendorError::Protocol("base_url cannot take a path".into()))?
            .pop_if_empty()
            .push(remote);
        match self
            .admin(budget, "DELETE users/{token}", BodyCap::WRITE, |t| {
                self.http
                    .request(Method::DELETE, url.clone())
                    .bearer_auth(t.expose())
            })
            .await
        {
            Ok(_) => Ok(()),
            // Damoov may answer 403 for a user that is already gone: check before
            // calling it a credentials problem.
            Err(e @ VendorError::Auth { status: 403, .. }) => {
                match self.find_by_token(budget, remote).await? {
                    None => Ok(()),
                    Some(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn supports_delete(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDS: &str =
        "email = \"a@x.io\"\npassword = \"pw\"\ninstance_id = \"i\"\ninstance_key = \"k\"\n";

    fn build(extra: &str) -> Result<Telematics, ConfigError> {
        let table = format!("[vendors.tm]\ntype = \"telematics\"\n{extra}");
        crate::vendor::test_build(&table, "tm", |v| match &v.kind {
            super::super::VendorKind::Telematics(o) => {
                Telematics::new(v, o, crate::vendor::test_http("tm"))
            }
            other => panic!("not telematics: {other:?}"),
        })
    }

    fn person() -> Person {
        let mut p = Person::new("E1");
        p.first_name = Some("Ann".into());
        p.last_name = Some("Lee".into());
        p.email = Some("ann@x.io".into());
        p.username = Some("ann".into());
        p
    }

    #[test]
    fn map_takes_names_email_and_phone() {
        let t = build(CREDS).expect("builds");
        let mut p = person();
        p.phone = Some("+1 555".into());
        let f = t.map(&p).expect("maps");
        let keys: Vec<&str> = f.keys().map(String::as_str).collect();
        assert_eq!(keys, ["email", "first_name", "last_name", "phone"]);
        assert_eq!(f["phone"], "+1 555");
        p.attributes.insert("tm.nickname".into(), "x".into());
        assert!(
            t.map(&p)
                .expect_err("no vendor fields")
                .contains("tm.nickname")
        );
    }

    #[test]
    fn every_credential_is_required_and_named() {
        for key in ["email", "password", "instance_id", "instance_key"] {
            let creds: String = CREDS
                .lines()
                .filter(|l| !l.starts_with(&format!("{key} ")))
                .map(|l| format!("{l}\n"))
                .collect();
            let e = build(&creds).err().expect("refused");
            assert!(e.to_string().contains(&format!("vendors.tm.{key}")), "{e}");
        }
        let e = build(&format!("{CREDS}instance_key_file = \"k\"\n"))
            .err()
            .expect("both");
        assert!(e.to_string().contains("vendors.tm.instance_key"), "{e}");
        let e = build(&format!("{CREDS}token = \"x\"\n"))
            .err()
            .expect("unknown");
        assert!(e.to_string().contains("token"), "{e}");
        let e = build(&format!("{CREDS}[vendors.tm.defaults]\nrole = \"x\"\n"))
            .err()
            .expect("defaults");
        assert!(e.to_string().contains("vendors.tm.defaults.role"), "{e}");
    }

    #[test]
    fn reads_user_fields_as_array_and_status_with_enabled() {
        let user = json!({
            "DeviceToken": "d1", "Status": "Active",
            "UserProfile": { "FirstName": "Ann", "LastName": null, "Email": "", "Phone": "1" },
            "UserFields": [ { "ClientId": "E1", "Enabled": true, "EnableTracking": true,
                              "EnableLogging": false, "EnableRealTimeLocation": false } ]
        });
        assert_eq!(client_id(&user), Some("E1"));
        assert!(is_active(&user));
        let f = profile_fields(&user);
        assert_eq!(f.len(), 2);
        assert_eq!(f["first_name"], "Ann");
        let mut off = user.clone();
        off["UserFields"][0]["Enabled"] = json!(false);
        assert!(!is_active(&off));
        let mut inactive = user.clone();
        inactive["Status"] = json!("Inactive");
        assert!(!is_active(&inactive));
    }

    #[test]
    fn deactivation_keeps_every_flag_and_the_client_id() {
        let user = json!({ "UserFields": [ { "ClientId": "E1", "Enabled": true,
            "EnableTracking": false, "EnableLogging": true, "EnableRealTimeLocation": true,
            "Unknown": 1 } ] });
        let flags = flags_with_enabled(&user, false);
        assert_eq!(
            Value::Object(flags),
            json!({ "ClientId": "E1", "Enabled": false, "EnableTracking": false,
                    "EnableLogging": true, "EnableRealTimeLocation": true })
        );
    }

    #[test]
    fn update_sends_damoov_names_and_clears_with_empty_string() {
        let changes: Changes = [
            ("first_name".to_string(), Some("Bo".to_string())),
            ("phone".to_string(), None),
        ]
        .into();
        assert_eq!(
            Value::Object(update_body(&changes)),
            json!({ "FirstName": "Bo", "Phone": "" })
        );
    }

    #[test]
    fn envelope_errors_are_one_line() {
        let body = r#"{"Status":422,"Title":"One or more validation errors occurred.","Errors":[{"Key":"Email","Message":"bad"}]}"#;
        assert_eq!(
            envelope_message(body).as_deref(),
            Some("One or more validation errors occurred. (Email: bad)")
        );
        assert_eq!(envelope_message("not json"), None);
    }
}
