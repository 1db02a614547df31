//! What every connector's mapping shares: vendor fields from `[defaults]` and
//! `NAME.FIELD` attributes, and the person's own fields under the vendor's names.

use super::VendorSettings;
use crate::config::ConfigError;
use crate::model::{Fields, KeyOf, MapError, Person, UniqueKey};

/// Which vendor fields a connector manages: a name test, and how to list them in a
/// message.
#[derive(Clone, Copy)]
pub struct Allowed {
    pub test: fn(&str) -> bool,
    /// E.g. `allowed: roles, customFields.NAME`; empty for none.
    pub hint: &'static str,
}

impl Allowed {
    fn explain(&self) -> String {
        if self.hint.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.hint)
        }
    }
}

/// The vendor-specific fields for `person`: attribute `NAME.FIELD` wins over
/// `[vendors.NAME.defaults] FIELD`. Fields not `allowed` are an error naming them.
///
/// # Errors
/// The first unknown field, by name and origin.
pub fn vendor_fields(
    settings: &VendorSettings,
    person: &Person,
    allowed: Allowed,
) -> Result<Fields, MapError> {
    let mut out = Fields::new();
    for (k, v) in &settings.defaults {
        out.insert(k.clone(), v.clone());
    }
    for (k, v) in &person.attributes {
        if let Some(field) = k
            .strip_prefix(settings.name.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
        {
            if !(allowed.test)(field) {
                return Err(MapError(format!(
                    "attribute `{k}`: `{field}` is not a {} field{}",
                    settings.kind.name(),
                    allowed.explain()
                )));
            }
            out.insert(field.to_string(), v.clone());
        }
    }
    Ok(out)
}

/// Checks `[vendors.NAME.defaults]` against the fields a connector manages.
///
/// # Errors
/// `ConfigError` naming the unknown default.
pub fn check_defaults(settings: &VendorSettings, allowed: Allowed) -> Result<(), ConfigError> {
    match settings.defaults.keys().find(|k| !(allowed.test)(k)) {
        Some(k) => Err(ConfigError::invalid(
            settings.key(&format!("defaults.{k}")),
            format!("not a {} field{}", settings.kind.name(), allowed.explain()),
        )),
        None => Ok(()),
    }
}

/// Every field name a connector's `map` can produce, to check config keys that name
/// fields (`create_only`).
#[derive(Clone)]
pub struct FieldNames {
    /// The fixed names.
    pub listed: Vec<&'static str>,
    /// Open-ended names beyond the list (Rocket.Chat's `customFields.NAME`), if any.
    pub more: Option<Allowed>,
}

impl FieldNames {
    pub fn contains(&self, name: &str) -> bool {
        self.listed.contains(&name) || self.more.is_some_and(|m| (m.test)(name))
    }
}

/// Checks `create_only` against the fields the connector produces: a typo would
/// silently let roster overwrite the field it was meant to protect.
///
/// # Errors
/// `ConfigError` naming `vendors.NAME.create_only`, the unknown name and the likely
/// intended one.
pub fn check_create_only(
    settings: &VendorSettings,
    names: &FieldNames,
    unique: &[UniqueKey],
) -> Result<(), ConfigError> {
    // A value roster finds and matches accounts by must stay what roster last sent: left
    // to the vendor, a lost store (or a new leader's) would look the person up by the new
    // value, find nothing and create a second account beside the old one.
    if let Some(key) = settings.create_only.iter().find(|f| {
        unique
            .iter()
            .any(|k| matches!(k.of, KeyOf::Field(name) if name == f.as_str()))
    }) {
        return Err(ConfigError::invalid(
            settings.key("create_only"),
            format!(
                "`{key}` cannot be create-only: {} vendors keep it unique and roster finds \
                 and matches accounts by it (left to the vendor, a lost store would create \
                 a second account)",
                settings.kind.name()
            ),
        ));
    }
    let Some(unknown) = settings.create_only.iter().find(|f| !names.contains(f)) else {
        return Ok(());
    };
    let mut message = format!(
        "`{unknown}` is not a field of {} vendors",
        settings.kind.name()
    );
    if let Some(meant) = crate::config::parse::closest(unknown, names.listed.iter().copied()) {
        message.push_str(&format!("; did you mean `{meant}`?"));
    }
    message.push_str(&format!(" (fields: {}", names.listed.join(", ")));
    if let Some(more) = names.more {
        message.push_str(&format!("; {}", more.hint));
    }
    message.push(')');
    Err(ConfigError::invalid(settings.key("create_only"), message))
}

/// Puts the person's own fields (those present) into `out` under the given names.
pub fn put_person_fields<'a>(
    person: &Person,
    out: &mut Fields,
    names: impl IntoIterator<Item = (&'a str, PersonField)>,
) {
    for (name, field) in names {
        if let Some(v) = field.get(person) {
            out.insert(name.to_string(), v);
        }
    }
}

/// The parts of a person a connector can send.
#[derive(Debug, Clone, Copy)]
pub enum PersonField {
    FirstName,
    LastName,
    DisplayName,
    Email,
    Username,
    Phone,
}

impl PersonField {
    pub fn get(self, p: &Person) -> Option<String> {
        match self {
            Self::FirstName => p.first_name.as_deref().map(String::from),
            Self::LastName => p.last_name.as_deref().map(String::from),
            Self::DisplayName => p.display_name(),
            Self::Email => p.email.as_deref().map(String::from),
            Self::Username => p.username.as_deref().map(String::from),
            Self::Phone => p.phone.as_deref().map(String::from),
        }
    }
}
