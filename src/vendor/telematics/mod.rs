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
//!
//! Files: `login.rs` (the admin login and refresh on the wire; the session itself is
//! `http::session`'s), `wire.rs` (Damoov's user shape), `users.rs` (the `Vendor` calls).

mod login;
#[cfg(test)]
mod tests;
mod users;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, RequestBuilder};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::{Allowed, PersonField, Remote, Vendor, VendorError, VendorSettings};
use crate::budget::Budget;
use crate::config::{ConfigError, Secret};
use crate::http::session::{LoginLimit, Session};
use crate::http::{self, BodyCap, Http, Reply};

use login::*;
use wire::*;

pub const DEFAULT_BASE_URL: &str = "https://user.telematicssdk.com";

/// The person's id as `ClientId` is roster's matching key. Damoov does not keep it
/// unique (`shared/vendors/telematics.md`), but roster keeps only the account whose
/// ClientId equals the id exactly, with case, so it is unique to roster; nothing else
/// (not the email) is unique at Damoov.
const UNIQUE: &[crate::model::UniqueKey] = &[crate::model::UniqueKey {
    name: "person id (Damoov ClientId)",
    of: crate::model::KeyOf::PersonId,
    case: crate::model::Case::Sensitive,
    identifies: true,
}];

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
        crate::vendor::check_defaults(settings, NO_FIELDS)?;
        let base = crate::vendor::base_url(settings, DEFAULT_BASE_URL)?;
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
            Err(crate::vendor::classify(&reply, envelope_message))
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
