//! The values a vendor should hold for one person, and what changed.

use std::collections::BTreeMap;

/// The values a vendor should hold for one person, by the vendor's own field names.
///
/// A missing key means "no value". Kept as strings so that the diff and the store are
/// vendor-agnostic; each connector converts to its wire types.
pub type Fields = BTreeMap<String, String>;

/// Why a person cannot be sent to a vendor as the source has them (reported as skipped,
/// never sent); the message names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MapError(pub String);

/// Reads as its message.
impl std::ops::Deref for MapError {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// A field change to send: `None` clears the value at the vendor.
pub type Changes = BTreeMap<String, Option<String>>;

/// The fields whose value differs between what was pushed and what is wanted.
pub fn changes(pushed: &Fields, wanted: &Fields) -> Changes {
    let mut out = Changes::new();
    for (k, v) in wanted {
        if pushed.get(k) != Some(v) {
            out.insert(k.clone(), Some(v.clone()));
        }
    }
    for k in pushed.keys() {
        if !wanted.contains_key(k) {
            out.insert(k.clone(), None);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn changes_reports_added_changed_and_cleared_fields() {
        let pushed = f(&[("email", "a@x.io"), ("phone", "1"), ("role", "driver")]);
        let wanted = f(&[("email", "b@x.io"), ("role", "driver"), ("username", "ab")]);
        let c = changes(&pushed, &wanted);
        assert_eq!(c.get("email"), Some(&Some("b@x.io".to_string())));
        assert_eq!(c.get("phone"), Some(&None));
        assert_eq!(c.get("username"), Some(&Some("ab".to_string())));
        assert!(!c.contains_key("role"));
    }
}
