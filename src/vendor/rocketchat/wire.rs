//! What Rocket.Chat's wire format asks of roster's values: header-safe credentials,
//! valid usernames, role lists, and the random password users.create requires.

#[allow(clippy::wildcard_imports)]
use super::*;
use std::collections::BTreeSet;

use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use super::{Allowed, VendorSettings};
use crate::config::{ConfigError, Secret};

/// A credential as a sensitive header value.
pub(super) fn header_value(
    settings: &VendorSettings,
    key: &str,
    secret: &Secret,
) -> Result<HeaderValue, ConfigError> {
    let mut v = HeaderValue::from_str(secret.expose().trim()).map_err(|_| {
        ConfigError::invalid(
            settings.key(key),
            "contains characters that cannot be sent in an HTTP header",
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// The vendor fields roster manages at Rocket.Chat.
pub(super) const FIELDS: Allowed = Allowed {
    test: is_vendor_field,
    hint: "allowed: roles, customFields.NAME",
};

pub(super) fn is_vendor_field(name: &str) -> bool {
    name == ROLES
        || name
            .strip_prefix(CUSTOM_PREFIX)
            .is_some_and(|k| !k.trim().is_empty())
}

/// Rocket.Chat's default `UTF8_User_Names_Validation`: `[0-9a-zA-Z-_.]+`.
pub(super) fn valid_username(u: &str) -> bool {
    !u.is_empty()
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Role ids, sorted and deduplicated, `,`-joined; `None` when there are none.
pub(super) fn normalize_roles(v: &str) -> Option<String> {
    let roles: BTreeSet<&str> = v
        .split([',', ';'])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();
    (!roles.is_empty()).then(|| roles.into_iter().collect::<Vec<_>>().join(","))
}

pub(super) fn roles_json(v: &str) -> Value {
    json!(
        v.split([',', ';'])
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .collect::<Vec<_>>()
    )
}

/// A fresh password for users.create: 40 characters with lower and upper case letters,
/// digits and symbols (so it passes any password policy a workspace may enable), no three
/// equal characters in a row. Never logged, stored or returned.
pub(super) fn random_password() -> String {
    use rand::RngExt;
    use rand::seq::{IndexedRandom, SliceRandom};
    const CLASSES: [&[u8]; 4] = [
        b"abcdefghijkmnopqrstuvwxyz",
        b"ABCDEFGHJKLMNPQRSTUVWXYZ",
        b"23456789",
        b"!#%+-.:=?@^_~",
    ];
    let mut rng = rand::rng();
    loop {
        let mut chars: Vec<u8> = CLASSES
            .iter()
            .filter_map(|class| class.choose(&mut rng).copied())
            .collect();
        while chars.len() < 40 {
            let class = CLASSES[rng.random_range(0..CLASSES.len())];
            if let Some(c) = class.choose(&mut rng) {
                chars.push(*c);
            }
        }
        chars.shuffle(&mut rng);
        if chars.windows(3).all(|w| !(w[0] == w[1] && w[1] == w[2])) {
            return chars.into_iter().map(char::from).collect();
        }
    }
}
