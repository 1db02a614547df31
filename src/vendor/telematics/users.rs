//! The `Vendor` calls against Damoov's management and registration endpoints.

#[allow(clippy::wildcard_imports)]
use super::*;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Map, Value, json};
use tracing::warn;

use super::{Remote, Vendor, VendorError};
use crate::budget::Budget;
use crate::http::{self, BodyCap};
use crate::model::{Changes, Fields, MapError, Person, PersonId};

#[async_trait]
impl Vendor for Telematics {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn map(&self, person: &Person) -> Result<Fields, MapError> {
        // No vendor-specific fields: this only rejects stray `NAME.FIELD` attributes.
        let mut fields = crate::vendor::vendor_fields(&self.settings, person, NO_FIELDS)?;
        let names = PERSON_FIELDS.iter().map(|(n, f, _)| (*n, *f));
        crate::vendor::put_person_fields(person, &mut fields, names);
        fields.retain(|_, v| !v.is_empty());
        Ok(fields)
    }

    fn unique_keys(&self) -> &'static [crate::model::UniqueKey] {
        UNIQUE
    }

    fn field_names(&self) -> crate::vendor::FieldNames {
        crate::vendor::FieldNames {
            listed: PERSON_FIELDS.iter().map(|(name, _, _)| *name).collect(),
            more: None,
        }
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
            .map_err(|e| crate::vendor::check_failure(e, &self.url("/v1/Management/users/find")))
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
            warn!(
                accounts = users.len(),
                "Several Damoov users carry this ClientId; adopting the active one created first."
            );
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
            return Err(match crate::vendor::classify(&reply, envelope_message) {
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
