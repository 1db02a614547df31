//! DriveQuant DriveKit drivers, via the admin API (`/v3/drivekit/admin/drivers/…`).
//!
//! DriveKit's admin API cannot create drivers: a driver exists once the mobile app has
//! signed in with its user id. So "create" here *links*: it sets the driver's identity
//! and enables them; a 404 ("Driver Not Found") means the driver has not signed in yet,
//! which is `VendorError::Waiting` — the person is reported as skipped with that message
//! and linked on a later pass, never a failure.
//!
//! Matching key: the DriveKit user id, which is the person's id unless the person has
//! an attribute `NAME.user_id` (kept in the mapped fields as `user_id`, so a change of it
//! is noticed and relinks the person to the new driver).
//!
//! Lookup pages through the driver listing (`account/page`) and finds the user id, so
//! that a link that reached DriveKit just before a crash, or a driver who signed in,
//! is adopted, and a person removed while only a `Creating` intent was stored is still
//! disabled. The listing is cached for `LISTING_TTL` (single-flight) so that a pass with
//! many drivers still waiting does not page through every driver once per person; a
//! stale "absent" is harmless because linking is an idempotent PUT. ENABLE/DISABLE
//! cannot be read back from DriveKit at all, so a found driver's status is unknown
//! (`None`): adopting it always sends `ENABLE` explicitly, and afterwards the store is the
//! record of what was set.
//!
//! Whether the identity PUT clears omitted fields is undocumented, so all three identity
//! fields are always sent together, a missing one as `""`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use url::Url;

use super::{Allowed, Remote, Vendor, VendorError, VendorSettings};
use crate::budget::Budget;
use crate::config::{ConfigError, Secret};
use crate::http::{self, BodyCap, Http, Reply};
use crate::model::{Case, Changes, Fields, KeyOf, MapError, Person, PersonId, UniqueKey};

pub const DEFAULT_BASE_URL: &str = "https://service.drivequant.com";

const DRIVERS: &str = "/v3/drivekit/admin/drivers";

/// The identity fields, under DriveKit's own names (which roster uses too).
const IDENTITY: &[&str] = &["firstname", "lastname", "pseudo"];

/// The mapped field carrying the driver's user id.
const USER_ID: &str = "user_id";

/// The driver's user id is unique per company (the SDK's `alreadyUsed`,
/// `shared/vendors/drivekit.md`); whether DriveKit ignores its case is not documented,
/// so roster assumes it does. It is the lookup key and says whose driver it is.
const UNIQUE: &[UniqueKey] = &[UniqueKey {
    name: "DriveKit user id",
    of: KeyOf::Field(USER_ID),
    case: Case::Insensitive,
    identifies: true,
}];

/// DriveKit's smallest page, and its default.
const PAGE_SIZE: u32 = 1000;

/// How long one read of the driver listing serves lookups.
const LISTING_TTL: Duration = Duration::from_secs(30);

/// The `[vendors.NAME]` keys of `type = "drivekit"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    api_key: Option<Secret>,
    api_key_file: Option<std::path::PathBuf>,
}

/// A default user id would give everyone the same driver: only `pseudo` has a default.
const DEFAULTS: Allowed = Allowed {
    test: |f| f == "pseudo",
    hint: "allowed: pseudo",
};
/// What `drivekit.F` attributes may set.
const ATTRIBUTES: Allowed = Allowed {
    test: |f| f == "pseudo" || f == USER_ID,
    hint: "allowed: pseudo, user_id",
};

/// Every driver's identity by user id, as last read.
type Listing = Arc<BTreeMap<String, Fields>>;

pub struct DriveKit {
    settings: VendorSettings,
    base: Url,
    api_key: Secret,
    http: Http,
    listing: tokio::sync::Mutex<Option<(Instant, Listing)>>,
}

impl DriveKit {
    /// # Errors
    /// A missing or doubled `api_key`, unknown keys, or a `[defaults]` other than `pseudo`.
    pub fn new(settings: &VendorSettings, o: &Options, http: Http) -> Result<Self, ConfigError> {
        let api_key =
            settings
                .secrets()
                .required("api_key", o.api_key.clone(), o.api_key_file.clone())?;
        super::check_defaults(settings, DEFAULTS)?;
        let base = super::base_url(settings, DEFAULT_BASE_URL)?;
        Ok(Self {
            settings: settings.clone(),
            base,
            api_key,
            http,
            listing: tokio::sync::Mutex::new(None),
        })
    }

    /// `…/drivers/{user_id}/{what}`, the user id encoded as one path segment.
    fn driver_url(&self, user_id: &str, what: &str) -> Result<Url, VendorError> {
        let mut url = http::endpoint(&self.base, DRIVERS);
        url.path_segments_mut()
            .map_err(|()| VendorError::Protocol("base_url cannot take a path".into()))?
            .pop_if_empty()
            .push(user_id)
            .push(what);
        Ok(url)
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http
            .request(method, url)
            .header("DriveKit-Admin-API-Key", self.api_key.expose())
    }

    /// Sends and classifies by status only (DriveKit's error bodies are undocumented).
    async fn call(
        &self,
        budget: &Budget,
        route: &str,
        req: RequestBuilder,
    ) -> Result<Reply, VendorError> {
        let reply = self.http.send(budget, route, BodyCap::WRITE, req).await?;
        if reply.status.is_success() {
            Ok(reply)
        } else {
            Err(super::classify(&reply, |_| None))
        }
    }

    fn page_url(&self) -> Url {
        http::endpoint(&self.base, &format!("{DRIVERS}/account/page"))
    }

    /// One page of the driver listing (retried on its own: it is a read).
    async fn page(&self, budget: &Budget, number: u32) -> Result<Value, VendorError> {
        let query = [
            ("pageSize", PAGE_SIZE.to_string()),
            ("pageNumber", number.to_string()),
        ];
        let reply = self
            .http
            .fetch(
                budget,
                "GET drivers/account/page",
                BodyCap::PAGE,
                None,
                || self.request(Method::GET, self.page_url()).query(&query),
            )
            .await?;
        if !reply.is_success() {
            return Err(super::classify(&reply, |_| None));
        }
        Ok(reply.json()?)
    }

    /// Every driver, from the cache when it is fresh.
    async fn listing(&self, budget: &Budget) -> Result<Listing, VendorError> {
        let mut cache = self.listing.lock().await;
        if let Some((at, listing)) = cache.as_ref()
            && at.elapsed() < LISTING_TTL
        {
            return Ok(Arc::clone(listing));
        }
        let mut drivers = BTreeMap::new();
        let mut number = 0;
        loop {
            let page = self.page(budget, number).await?;
            let data = page
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| VendorError::Protocol("driver listing without `data`".into()))?;
            for d in data {
                if let Some(id) = d.get("userId").and_then(Value::as_str) {
                    drivers.insert(id.to_string(), identity_of(d, id));
                }
            }
            let more = page
                .get("hasNext")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !more || data.is_empty() {
                break;
            }
            number += 1;
        }
        let listing = Arc::new(drivers);
        *cache = Some((Instant::now(), Arc::clone(&listing)));
        Ok(listing)
    }

    /// Sets all three identity fields at once.
    async fn put_identity(
        &self,
        budget: &Budget,
        user_id: &str,
        fields: &Fields,
    ) -> Result<(), VendorError> {
        let body: serde_json::Map<String, Value> = IDENTITY
            .iter()
            .map(|k| {
                (
                    (*k).to_string(),
                    json!(fields.get(*k).map_or("", String::as_str)),
                )
            })
            .collect();
        let req = self
            .request(Method::PUT, self.driver_url(user_id, "identity")?)
            .json(&Value::Object(body));
        self.call(budget, "PUT drivers/{id}/identity", req)
            .await
            .map(|_| ())
    }

    async fn put_status(
        &self,
        budget: &Budget,
        user_id: &str,
        active: bool,
    ) -> Result<(), VendorError> {
        let status = if active { "ENABLE" } else { "DISABLE" };
        let req = self
            .request(Method::PUT, self.driver_url(user_id, "status")?)
            .json(&json!({ "status": status }));
        self.call(budget, "PUT drivers/{id}/status", req)
            .await
            .map(|_| ())
    }
}

/// The driver's id for `person`: the `user_id` field, else the person's id.
fn user_id<'a>(person: &'a PersonId, fields: &'a Fields) -> &'a str {
    fields.get(USER_ID).map_or(person.as_str(), String::as_str)
}

/// A listed driver's identity, under roster's field names (empty values left out).
fn identity_of(driver: &Value, id: &str) -> Fields {
    let mut out = Fields::new();
    for k in IDENTITY {
        if let Some(v) = driver
            .get(*k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            out.insert((*k).to_string(), v.to_string());
        }
    }
    out.insert(USER_ID.into(), id.to_string());
    out
}

fn waiting(user_id: &str) -> VendorError {
    VendorError::Waiting(format!(
        "driver `{user_id}` has not signed in to the DriveKit app yet; will retry next pass"
    ))
}

#[async_trait]
impl Vendor for DriveKit {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn map(&self, person: &Person) -> Result<Fields, MapError> {
        let mut fields = super::vendor_fields(&self.settings, person, ATTRIBUTES)?;
        let own_pseudo = person
            .attributes
            .contains_key(&format!("{}.pseudo", self.settings.name));
        if !own_pseudo && let Some(u) = person.username.as_ref().filter(|u| !u.is_empty()) {
            fields.insert("pseudo".into(), u.to_string());
        }
        if let Some(v) = &person.first_name {
            fields.insert("firstname".into(), v.to_string());
        }
        if let Some(v) = &person.last_name {
            fields.insert("lastname".into(), v.to_string());
        }
        fields.retain(|_, v| !v.is_empty());
        let id = fields
            .get(USER_ID)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| person.id.as_str().to_string());
        if id.is_empty() {
            return Err(MapError(format!(
                "attribute `{}.user_id` is empty",
                self.settings.name
            )));
        }
        fields.insert(USER_ID.into(), id);
        Ok(fields)
    }

    fn unique_keys(&self) -> &'static [UniqueKey] {
        UNIQUE
    }

    fn field_names(&self) -> super::FieldNames {
        super::FieldNames {
            listed: vec!["firstname", "lastname", "pseudo", USER_ID],
            more: None,
        }
    }

    fn flow(&self) -> &std::sync::Arc<http::Flow> {
        self.http.flow()
    }

    async fn check(&self, budget: &Budget) -> Result<(), VendorError> {
        self.page(budget, 0)
            .await
            .map(|_| ())
            .map_err(|e| super::check_failure(e, &self.page_url()))
    }

    async fn lookup(
        &self,
        budget: &Budget,
        person: &PersonId,
        fields: &Fields,
    ) -> Result<Option<Remote>, VendorError> {
        let id = user_id(person, fields);
        let listing = self.listing(budget).await?;
        Ok(listing.get(id).map(|identity| Remote {
            id: id.to_string(),
            // ENABLE/DISABLE cannot be read back.
            active: None,
            fields: identity.clone(),
        }))
    }

    async fn list(&self, budget: &Budget) -> Result<Vec<Remote>, VendorError> {
        Ok(self
            .listing(budget)
            .await?
            .iter()
            .map(|(id, identity)| Remote {
                id: id.clone(),
                active: None,
                fields: identity.clone(),
            })
            .collect())
    }

    async fn create(
        &self,
        budget: &Budget,
        person: &PersonId,
        fields: &Fields,
    ) -> Result<String, VendorError> {
        let id = user_id(person, fields);
        for result in [
            self.put_identity(budget, id, fields).await,
            self.put_status(budget, id, true).await,
        ] {
            match result {
                Ok(()) => {}
                Err(VendorError::NotFound(_)) => return Err(waiting(id)),
                Err(e) => return Err(e),
            }
        }
        Ok(id.to_string())
    }

    async fn update(
        &self,
        budget: &Budget,
        remote: &str,
        changes: &Changes,
        fields: &Fields,
    ) -> Result<(), VendorError> {
        if let Some(new) = fields.get(USER_ID).filter(|new| new.as_str() != remote) {
            // A different driver now: the executor relinks on NotFound. The previous
            // driver is left as it is (a swap of two ids must not disable either).
            return Err(VendorError::NotFound(format!(
                "the DriveKit user id changed from `{remote}` to `{new}`"
            )));
        }
        if IDENTITY.iter().any(|k| changes.contains_key(*k)) {
            self.put_identity(budget, remote, fields).await?;
        }
        Ok(())
    }

    async fn set_active(
        &self,
        budget: &Budget,
        remote: &str,
        active: bool,
    ) -> Result<(), VendorError> {
        self.put_status(budget, remote, active).await
    }
}

#[cfg(test)]
mod tests;
