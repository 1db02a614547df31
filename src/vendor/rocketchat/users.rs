//! The `Vendor` calls: users.info / users.list / users.create / users.update /
//! users.setActiveStatus / users.delete, and `me` for `check`.

#[allow(clippy::wildcard_imports)]
use super::*;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value, json};
use tracing::debug;

use super::{Remote, Vendor, VendorError};
use crate::budget::Budget;
use crate::http::{self, BodyCap};
use crate::model::{Changes, Fields, MapError, Person, PersonId};

#[async_trait]
impl Vendor for RocketChat {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn map(&self, person: &Person) -> Result<Fields, MapError> {
        let mut fields = crate::vendor::vendor_fields(&self.settings, person, FIELDS)?;
        crate::vendor::put_person_fields(person, &mut fields, PERSON_FIELDS.iter().copied());
        let missing: Vec<&str> = ["name", "username", "email"]
            .into_iter()
            .filter(|k| fields.get(*k).is_none_or(|v| v.trim().is_empty()))
            .map(|k| {
                if k == "name" {
                    "name (first/last name)"
                } else {
                    k
                }
            })
            .collect();
        if !missing.is_empty() {
            return Err(MapError(format!(
                "Rocket.Chat needs a name, a username and an email for every user; missing: {}",
                missing.join(", ")
            )));
        }
        if let Some(u) = fields.get("username")
            && !valid_username(u)
        {
            return Err(MapError(format!(
                "username `{u}` is not valid for Rocket.Chat (letters a-z/A-Z, digits, `-`, `_` \
                 and `.` only)"
            )));
        }
        match fields.get(ROLES).map(|r| normalize_roles(r)) {
            Some(Some(r)) => {
                fields.insert(ROLES.into(), r);
            }
            Some(None) => {
                fields.remove(ROLES);
            }
            None => {}
        }
        Ok(fields)
    }

    fn unique_keys(&self) -> &'static [crate::model::UniqueKey] {
        UNIQUE
    }

    fn field_names(&self) -> crate::vendor::FieldNames {
        let person = PERSON_FIELDS.iter().map(|(name, _)| *name);
        crate::vendor::FieldNames {
            listed: person.chain([ROLES]).collect(),
            more: Some(FIELDS),
        }
    }

    fn flow(&self) -> &Arc<http::Flow> {
        self.http.flow()
    }

    async fn check(&self, budget: &Budget) -> Result<(), VendorError> {
        let reply = self
            .call(budget, Method::GET, "me", &[], None)
            .await
            .map_err(|e| crate::vendor::check_failure(e, &self.url("me")))?;
        let me = reply.json()?;
        match me.get("_id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => Ok(()),
            _ => Err(VendorError::Protocol(
                "`me` answered without the user's _id".into(),
            )),
        }
    }

    async fn lookup(
        &self,
        budget: &Budget,
        _person: &PersonId,
        fields: &Fields,
    ) -> Result<Option<Remote>, VendorError> {
        let mut found = None;
        if let Some(username) = fields.get("username") {
            found = self.info(budget, "username", username).await?;
        }
        if found.is_none()
            && self.lookup_by_email
            && let Some(email) = fields.get("email")
        {
            found = self.info(budget, "email", email).await?;
        }
        let Some(body) = found else {
            return Ok(None);
        };
        let user = body
            .get("user")
            .and_then(Value::as_object)
            .ok_or_else(|| VendorError::Protocol("users.info answered without a user".into()))?;
        Self::remote(user, fields).map(Some)
    }

    async fn list(&self, budget: &Budget) -> Result<Vec<Remote>, VendorError> {
        const COUNT: usize = 100;
        let mut out = Vec::new();
        let mut offset = 0usize;
        loop {
            let (count, at) = (COUNT.to_string(), offset.to_string());
            let query = [("count", count.as_str()), ("offset", at.as_str())];
            let reply = self
                .http
                .fetch(budget, "GET users.list", BodyCap::PAGE, None, || {
                    self.request(Method::GET, "users.list", &query, None)
                })
                .await?;
            if !reply.is_success() {
                return Err(classify(&reply));
            }
            let body = reply.json()?;
            let users = body
                .get("users")
                .and_then(Value::as_array)
                .ok_or_else(|| VendorError::Protocol("users.list without `users`".into()))?;
            for user in users.iter().filter_map(Value::as_object) {
                // Roles and custom fields are only read for people roster manages them
                // for, which a listing cannot know: they are left out of drift checks.
                out.push(Self::remote(user, &Fields::new())?);
            }
            offset += users.len();
            let total = body.get("total").and_then(Value::as_u64).unwrap_or(0) as usize;
            if users.is_empty() || offset >= total {
                break;
            }
        }
        Ok(out)
    }

    async fn create(
        &self,
        budget: &Budget,
        _person: &PersonId,
        fields: &Fields,
    ) -> Result<String, VendorError> {
        let mut body = Map::new();
        for k in ["name", "email", "username"] {
            let v = fields.get(k).ok_or_else(|| VendorError::Rejected {
                status: 0,
                detail: format!("Rocket.Chat needs a {k} to create a user"),
            })?;
            body.insert(k.into(), json!(v));
        }
        body.insert("password".into(), json!(random_password()));
        if self.password_mode == PasswordMode::SetRandomPassword {
            body.insert("setRandomPassword".into(), json!(true));
        }
        body.insert(
            "joinDefaultChannels".into(),
            json!(self.join_default_channels),
        );
        body.insert("sendWelcomeEmail".into(), json!(self.send_welcome_email));
        body.insert(
            "requirePasswordChange".into(),
            json!(self.require_password_change),
        );
        body.insert("verified".into(), json!(self.email_verified));
        if let Some(r) = fields.get(ROLES) {
            body.insert(ROLES.into(), roles_json(r));
        }
        let custom: Map<String, Value> = fields
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(CUSTOM_PREFIX)?.to_string(), json!(v))))
            .collect();
        if !custom.is_empty() {
            body.insert("customFields".into(), Value::Object(custom));
        }
        let body = Value::Object(body);
        let reply = match self
            .call(budget, Method::POST, "users.create", &[], Some(&body))
            .await
        {
            Ok(r) => r,
            Err(VendorError::Rejected { detail, .. })
                if detail.contains("[error-field-unavailable]")
                    || detail.contains("is already in use") =>
            {
                return Err(VendorError::Exists(detail));
            }
            Err(e) => return Err(e),
        };
        let answer = reply.json()?;
        let user = answer
            .get("user")
            .and_then(Value::as_object)
            .ok_or_else(|| VendorError::Protocol("users.create answered without a user".into()))?;
        Self::remote(user, fields).map(|r| r.id)
    }

    async fn update(
        &self,
        budget: &Budget,
        remote: &str,
        changes: &Changes,
        fields: &Fields,
    ) -> Result<(), VendorError> {
        let mut data = Map::new();
        let mut custom_changed = false;
        for (k, v) in changes {
            match (k.as_str(), v) {
                ("name" | "username" | "email", Some(v)) => {
                    data.insert(k.clone(), json!(v));
                }
                ("name" | "username" | "email", None) => {
                    return Err(VendorError::Unsupported(
                        "clearing a Rocket.Chat user's name, username or email",
                    ));
                }
                (ROLES, Some(v)) => {
                    data.insert(ROLES.into(), roles_json(v));
                }
                (ROLES, None) => {
                    data.insert(ROLES.into(), json!([DEFAULT_ROLE]));
                }
                (k, _) if k.starts_with(CUSTOM_PREFIX) => custom_changed = true,
                (k, _) => debug!(field = k, "Field not managed at Rocket.Chat; not sent."),
            }
        }
        if custom_changed {
            // Rocket.Chat saves custom fields as a set: send every managed one together,
            // and an empty value for the ones removed from the source.
            let mut custom: Map<String, Value> = fields
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(CUSTOM_PREFIX)?.to_string(), json!(v))))
                .collect();
            for (k, v) in changes {
                if let (Some(name), None) = (k.strip_prefix(CUSTOM_PREFIX), v) {
                    custom.insert(name.to_string(), json!(""));
                }
            }
            data.insert("customFields".into(), Value::Object(custom));
        }
        if data.contains_key("email") && self.email_verified {
            data.insert("verified".into(), json!(true));
        }
        if data.is_empty() {
            return Ok(());
        }
        let body = json!({ "userId": remote, "data": data });
        self.call(budget, Method::POST, "users.update", &[], Some(&body))
            .await
            .map(|_| ())
    }

    async fn set_active(
        &self,
        budget: &Budget,
        remote: &str,
        active: bool,
    ) -> Result<(), VendorError> {
        let body = json!({
            "userId": remote,
            "activeStatus": active,
            "confirmRelinquish": self.confirm_relinquish,
        });
        self.call(
            budget,
            Method::POST,
            "users.setActiveStatus",
            &[],
            Some(&body),
        )
        .await
        .map(|_| ())
    }

    async fn delete(&self, budget: &Budget, remote: &str) -> Result<(), VendorError> {
        let body = json!({ "userId": remote, "confirmRelinquish": self.confirm_relinquish });
        self.call(budget, Method::POST, "users.delete", &[], Some(&body))
            .await
            .map(|_| ())
    }

    fn supports_delete(&self) -> bool {
        true
    }
}
