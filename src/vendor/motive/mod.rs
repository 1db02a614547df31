//! Motive (fleet / ELD) users, via `/v1/users`.
//!
//! Matching key: the person's id as an external id under `integration_name` (default
//! `roster`), attached at create with `external_ids_attributes`; Motive keeps that pair
//! unique, and `lookup_by_external_id` finds the account again after a crash.
//!
//! Deactivation is `PUT /v1/users/{id}` with `status: deactivated` (`active` to bring the
//! user back): Motive documents the `status` values but no dedicated endpoint, so this is
//! inferred from the user resource (see `shared/vendors/motive.md`). Motive has no
//! delete-user endpoint.
//!
//! Motive validates `time_tracking_mode` against `eld_mode`; an invalid pair is caught in
//! `map` so that person is skipped with a clear message and nobody else is held up.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use url::Url;

use super::{Allowed, PersonField, Remote, Vendor, VendorError, VendorSettings};
use crate::budget::Budget;
use crate::config::{ConfigError, Secret};
use crate::http::{self, BodyCap, Http, Reply};
use crate::model::{Case, Changes, Fields, KeyOf, MapError, Person, PersonId, UniqueKey};

mod wire;

use wire::{error_message, remote, user_id, user_object, wire_value};

pub const DEFAULT_BASE_URL: &str = "https://api.gomotive.com";

const PERSON_FIELDS: &[(&str, PersonField)] = &[
    ("first_name", PersonField::FirstName),
    ("last_name", PersonField::LastName),
    ("email", PersonField::Email),
    ("username", PersonField::Username),
    ("phone", PersonField::Phone),
];

/// Motive user attributes roster may set from `[defaults]` or `motive.FIELD` attributes.
const VENDOR_FIELDS: &[&str] = &[
    "role",
    "eld_mode",
    "time_tracking_mode",
    "time_zone",
    "duty_status",
    "cycle",
    "violation_alerts",
    "driver_company_id",
    "dot_id",
    "phone_ext",
    "carrier_name",
    "carrier_street",
    "carrier_city",
    "carrier_state",
    "carrier_zip",
    "terminal_street",
    "terminal_city",
    "terminal_state",
    "terminal_zip",
    "drivers_license_number",
    "drivers_license_state",
    "exception_24_hour_restart",
    "exception_8_hour_break",
    "exception_wait_time",
    "exception_short_haul",
    "exception_ca_farm_school_bus",
    "exception_adverse_driving",
    "export_combined",
    "export_recap",
    "export_odometers",
    "metric_units",
    "minute_logs",
    "yard_moves_enabled",
    "personal_conveyance_enabled",
    "manual_driving_enabled",
    "group_ids",
];

const ROLES: &[&str] = &["driver", "fleet_user", "admin"];

/// Motive keeps the (`external_id`, `integration_name`) pair unique (seed 002), and —
/// as far as its answers to a taken value show — emails and usernames. How it compares
/// them is not documented, so roster assumes it ignores case: two people whose values
/// differ only in case are reported rather than risk one account for both. The
/// external id is roster's own mark and the lookup key; emails and usernames are not
/// looked up, so they are handles here.
const UNIQUE: &[UniqueKey] = &[
    UniqueKey {
        name: "person id (Motive external id)",
        of: KeyOf::PersonId,
        case: Case::Insensitive,
        identifies: true,
    },
    UniqueKey {
        name: "email",
        of: KeyOf::Field("email"),
        case: Case::Insensitive,
        identifies: false,
    },
    UniqueKey {
        name: "username",
        of: KeyOf::Field("username"),
        case: Case::Insensitive,
        identifies: false,
    },
];

/// The valid (time_tracking_mode, eld_mode) pairs, from Motive's create/update pages.
const MODE_PAIRS: &[(&str, &str)] = &[
    ("logs", "logs"),
    ("logs", "none"),
    ("timecards", "exempt"),
    ("not_required", "exempt"),
];

/// The `[vendors.NAME]` keys of `type = "motive"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    pub api_key: Option<Secret>,
    pub api_key_file: Option<std::path::PathBuf>,
    pub token: Option<Secret>,
    pub token_file: Option<std::path::PathBuf>,
    /// The `integration_name` roster's external ids are filed under.
    pub integration_name: Option<String>,
}

enum Auth {
    ApiKey(Secret),
    Bearer(Secret),
}

pub struct Motive {
    settings: VendorSettings,
    base: Url,
    auth: Auth,
    integration: String,
    http: Http,
}

/// The vendor fields roster may set at Motive.
const ALLOWED: Allowed = Allowed {
    test: |f| VENDOR_FIELDS.contains(&f),
    hint: "",
};

impl Motive {
    /// # Errors
    /// Missing or doubled credentials, unknown keys or default fields.
    pub fn new(settings: &VendorSettings, o: &Options, http: Http) -> Result<Self, ConfigError> {
        let secrets = settings.secrets();
        let api_key = secrets.optional("api_key", o.api_key.clone(), o.api_key_file.clone())?;
        let token = secrets.optional("token", o.token.clone(), o.token_file.clone())?;
        let auth = match (api_key, token) {
            (Some(k), None) => Auth::ApiKey(k),
            (None, Some(t)) => Auth::Bearer(t),
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    settings.key("token"),
                    "give either `api_key` or `token`, not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::invalid(
                    settings.key("api_key"),
                    "a motive vendor needs `api_key` (or `token` for OAuth), or their `_file` forms",
                ));
            }
        };
        super::check_defaults(settings, ALLOWED)?;
        // Motive takes the two only as an allowed pair: one kept at the vendor and the
        // other sent from the source can make a pair it refuses, on every pass.
        let pair = ["eld_mode", "time_tracking_mode"].map(|f| settings.create_only.contains(f));
        if pair[0] != pair[1] {
            return Err(ConfigError::invalid(
                settings.key("create_only"),
                "name both `eld_mode` and `time_tracking_mode`, or neither: Motive accepts \
                 them only as an allowed pair, so one left to the vendor and the other sent \
                 from the source could be refused on every pass",
            ));
        }
        let integration = o
            .integration_name
            .clone()
            .unwrap_or_else(|| "roster".into());
        if integration.trim().is_empty() {
            return Err(ConfigError::invalid(
                settings.key("integration_name"),
                "must not be empty",
            ));
        }
        let base = super::base_url(settings, DEFAULT_BASE_URL)?;
        Ok(Self {
            settings: settings.clone(),
            base,
            auth,
            integration,
            http,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, http::endpoint(&self.base, path));
        match &self.auth {
            Auth::ApiKey(k) => req.header("X-Api-Key", k.expose()),
            Auth::Bearer(t) => req.bearer_auth(t.expose()),
        }
    }

    /// One paced call; `route` names the endpoint for pacing and metrics.
    async fn call(
        &self,
        budget: &Budget,
        route: &str,
        cap: BodyCap,
        req: reqwest::RequestBuilder,
    ) -> Result<Reply, VendorError> {
        let reply = self.http.send(budget, route, cap, req).await?;
        if reply.status.is_success() {
            Ok(reply)
        } else {
            Err(super::classify(&reply, error_message))
        }
    }
}

#[async_trait]
impl Vendor for Motive {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn map(&self, person: &Person) -> Result<Fields, MapError> {
        let mut fields = super::vendor_fields(&self.settings, person, ALLOWED)?;
        super::put_person_fields(person, &mut fields, PERSON_FIELDS.iter().copied());
        for required in ["first_name", "last_name"] {
            if !fields.contains_key(required) {
                return Err(MapError(format!(
                    "Motive needs a {}",
                    required.replace('_', " ")
                )));
            }
        }
        for (k, v) in fields.iter_mut() {
            if matches!(k.as_str(), "role" | "eld_mode" | "time_tracking_mode") {
                v.make_ascii_lowercase();
            }
        }
        if let Some(role) = fields.get("role")
            && !ROLES.contains(&role.as_str())
        {
            return Err(MapError(format!(
                "role `{role}` is not a Motive role (expected {})",
                ROLES.join(", ")
            )));
        }
        if let (Some(t), Some(e)) = (fields.get("time_tracking_mode"), fields.get("eld_mode"))
            && !MODE_PAIRS.contains(&(t.as_str(), e.as_str()))
        {
            return Err(MapError(format!(
                "time_tracking_mode `{t}` cannot go with eld_mode `{e}` (Motive allows \
                 logs+logs, logs+none, timecards+exempt, not_required+exempt)"
            )));
        }
        Ok(fields)
    }

    fn unique_keys(&self) -> &'static [UniqueKey] {
        UNIQUE
    }

    fn field_names(&self) -> super::FieldNames {
        let person = PERSON_FIELDS.iter().map(|(name, _)| *name);
        super::FieldNames {
            listed: person.chain(VENDOR_FIELDS.iter().copied()).collect(),
            more: None,
        }
    }

    fn flow(&self) -> &std::sync::Arc<http::Flow> {
        self.http.flow()
    }

    async fn check(&self, budget: &Budget) -> Result<(), VendorError> {
        let req = self
            .request(reqwest::Method::GET, "/v1/users")
            .query(&[("per_page", "1"), ("page_no", "1")]);
        self.call(budget, "GET /v1/users", BodyCap::READ, req)
            .await
            .map(|_| ())
            .map_err(|e| super::check_failure(e, &http::endpoint(&self.base, "/v1/users")))
    }

    async fn lookup(
        &self,
        budget: &Budget,
        person: &PersonId,
        fields: &Fields,
    ) -> Result<Option<Remote>, VendorError> {
        let req = self
            .request(reqwest::Method::GET, "/v1/users/lookup_by_external_id")
            .query(&[
                ("external_id", person.as_str()),
                ("integration_name", self.integration.as_str()),
            ]);
        let reply = match self
            .call(
                budget,
                "GET /v1/users/lookup_by_external_id",
                BodyCap::READ,
                req,
            )
            .await
        {
            Ok(r) => r,
            Err(VendorError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let body = reply.json()?;
        let Some(user) = user_object(&body) else {
            return Ok(None);
        };
        let names = PERSON_FIELDS
            .iter()
            .map(|(n, _)| *n)
            .chain(fields.keys().map(String::as_str));
        remote(user, names).map(Some)
    }

    async fn list(&self, budget: &Budget) -> Result<Vec<Remote>, VendorError> {
        const PER_PAGE: usize = 100;
        let names: Vec<&str> = PERSON_FIELDS
            .iter()
            .map(|(n, _)| *n)
            .chain(VENDOR_FIELDS.iter().copied())
            .collect();
        let mut out = Vec::new();
        for page in 1.. {
            let query = [
                ("per_page", PER_PAGE.to_string()),
                ("page_no", page.to_string()),
            ];
            let reply = self
                .http
                .fetch(budget, "GET /v1/users", BodyCap::PAGE, None, || {
                    self.request(reqwest::Method::GET, "/v1/users")
                        .query(&query)
                })
                .await?;
            if !reply.is_success() {
                return Err(super::classify(&reply, error_message));
            }
            let body = reply.json()?;
            let users = body
                .get("users")
                .and_then(Value::as_array)
                .ok_or_else(|| VendorError::Protocol("user list without `users`".into()))?;
            for item in users {
                if let Some(user) = item.get("user").unwrap_or(item).as_object() {
                    out.push(remote(user, names.iter().copied())?);
                }
            }
            // Advance by the page size the server says it used, as Motive's own clients do.
            let per_page = body
                .pointer("/pagination/per_page")
                .and_then(Value::as_u64)
                .map_or(PER_PAGE, |n| n as usize);
            let total = body
                .pointer("/pagination/total")
                .and_then(Value::as_u64)
                .map_or(0, |n| n as usize);
            if users.is_empty() || page * per_page >= total {
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
            .map(|(k, v)| (k.clone(), wire_value(k, v)))
            .collect();
        body.insert("status".into(), json!("active"));
        body.insert(
            "external_ids_attributes".into(),
            json!([{ "external_id": person.as_str(), "integration_name": self.integration }]),
        );
        let req = self
            .request(reqwest::Method::POST, "/v1/users")
            .json(&Value::Object(body));
        let reply = match self
            .call(budget, "POST /v1/users", BodyCap::WRITE, req)
            .await
        {
            Ok(r) => r,
            // The external-id pair is unique at Motive: a collision means the account
            // exists (an earlier create reached Motive); adopt it.
            Err(VendorError::Rejected { detail, .. })
                if detail.to_ascii_lowercase().contains("external")
                    && detail.to_ascii_lowercase().contains("taken") =>
            {
                return Err(VendorError::Exists(detail));
            }
            Err(e) => return Err(e),
        };
        let body = reply.json()?;
        let user = user_object(&body)
            .ok_or_else(|| VendorError::Protocol("create answered without a user".into()))?;
        user_id(user)
    }

    async fn update(
        &self,
        budget: &Budget,
        remote: &str,
        changes: &Changes,
        fields: &Fields,
    ) -> Result<(), VendorError> {
        let mut body: Map<String, Value> = changes
            .iter()
            .map(|(k, v)| {
                let value = v.as_deref().map_or(Value::Null, |s| wire_value(k, s));
                (k.clone(), value)
            })
            .collect();
        // Motive validates the mode pair on every update: send both halves together
        // (a create-only half stays as it is at Motive).
        if changes.contains_key("eld_mode") || changes.contains_key("time_tracking_mode") {
            for k in ["eld_mode", "time_tracking_mode"] {
                if self.settings.create_only.contains(k) {
                    continue;
                }
                if let Some(v) = fields.get(k) {
                    body.insert(k.into(), wire_value(k, v));
                }
            }
        }
        let req = self
            .request(reqwest::Method::PUT, &format!("/v1/users/{remote}"))
            .json(&Value::Object(body));
        self.call(budget, "PUT /v1/users/{id}", BodyCap::WRITE, req)
            .await
            .map(|_| ())
    }

    async fn set_active(
        &self,
        budget: &Budget,
        remote: &str,
        active: bool,
    ) -> Result<(), VendorError> {
        let status = if active { "active" } else { "deactivated" };
        let req = self
            .request(reqwest::Method::PUT, &format!("/v1/users/{remote}"))
            .json(&json!({ "status": status }));
        self.call(budget, "PUT /v1/users/{id}", BodyCap::WRITE, req)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests;
