//! RFC 7644 §3.4.2.5 / §3.9: the `attributes` and `excludedAttributes` query parameters,
//! which trim what a GET returns. Names are case-insensitive and may be sub-attributes
//! (`name.givenName`, `members.value`) or fully qualified with a schema URN
//! (`urn:ietf:params:scim:schemas:core:2.0:User:userName`, or an extension's
//! `urn:…:enterprise:2.0:User:employeeNumber`, or the whole extension by its URN).
//! `id` and `schemas` are always returned (`returned: always`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Lower-cased attribute name → the sub-attributes named under it (empty: all of it).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tree(BTreeMap<String, Tree>);

const ALWAYS: &[&str] = &["id", "schemas"];

impl Tree {
    /// Parses a comma-separated list of attribute paths for resources of `core_schema`
    /// (a resource is needed to tell its extension URNs, which contain `:` and `.`).
    pub fn parse(list: &str, core_schema: &str, resource_keys: &[String]) -> Self {
        let mut tree = Self::default();
        for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let segments = segments(raw, core_schema, resource_keys);
            let mut at = &mut tree;
            for s in segments {
                at = at.0.entry(s).or_default();
            }
        }
        tree
    }

    fn is_leaf(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps only the named attributes (and the ones always returned).
    pub fn keep(&self, resource: &mut Map<String, Value>) {
        resource.retain(|k, v| {
            let key = k.to_ascii_lowercase();
            if ALWAYS.contains(&key.as_str()) {
                return true;
            }
            match self.0.get(&key) {
                None => false,
                Some(sub) if sub.is_leaf() => true,
                Some(sub) => {
                    sub.apply(v, Self::keep);
                    true
                }
            }
        });
    }

    /// Drops the named attributes (never the ones always returned).
    pub fn drop_from(&self, resource: &mut Map<String, Value>) {
        resource.retain(|k, v| {
            let key = k.to_ascii_lowercase();
            if ALWAYS.contains(&key.as_str()) {
                return true;
            }
            match self.0.get(&key) {
                None => true,
                Some(sub) if sub.is_leaf() => false,
                Some(sub) => {
                    sub.apply(v, Self::drop_from);
                    true
                }
            }
        });
    }

    /// Applies `f` to a complex value, or to each item of a multi-valued one.
    fn apply(&self, v: &mut Value, f: fn(&Self, &mut Map<String, Value>)) {
        match v {
            Value::Object(o) => f(self, o),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(o) = item {
                        f(self, o);
                    }
                }
            }
            _ => {}
        }
    }
}

/// `urn:…:core:2.0:User:name.givenName` → `["name", "givenname"]`;
/// `urn:…:enterprise:2.0:User:manager.value` → `["urn:…:enterprise:2.0:user", "manager", "value"]`.
fn segments(raw: &str, core_schema: &str, resource_keys: &[String]) -> Vec<String> {
    let lower = raw.to_ascii_lowercase();
    let core = format!("{}:", core_schema.to_ascii_lowercase());
    if let Some(rest) = lower.strip_prefix(&core) {
        return rest.split('.').map(String::from).collect();
    }
    if lower.starts_with("urn:") {
        let extension = resource_keys
            .iter()
            .map(|k| k.to_ascii_lowercase())
            .filter(|k| k.starts_with("urn:"))
            .find(|k| lower == *k || lower.starts_with(&format!("{k}:")));
        let (urn, rest) = match extension {
            Some(urn) => {
                let rest = lower[urn.len()..].trim_start_matches(':').to_string();
                (urn, rest)
            }
            None => match lower.rsplit_once(':') {
                Some((urn, attr)) => (urn.to_string(), attr.to_string()),
                None => (lower.clone(), String::new()),
            },
        };
        let mut out = vec![urn];
        out.extend(rest.split('.').filter(|s| !s.is_empty()).map(String::from));
        return out;
    }
    lower.split('.').map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const EXT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn user() -> Map<String, Value> {
        json!({
            "schemas": [CORE, EXT], "id": "1", "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "b@x.io", "type": "work"}, {"value": "c@x.io", "type": "home"}],
            "groups": [{"value": "g1", "display": "drivers"}],
            EXT: {"employeeNumber": "7", "department": "Fleet"}
        })
        .as_object()
        .cloned()
        .expect("object")
    }

    fn tree(list: &str) -> Tree {
        let keys: Vec<String> = user().keys().cloned().collect();
        Tree::parse(list, CORE, &keys)
    }

    #[test]
    fn attributes_keep_only_what_is_named_plus_id() {
        let mut u = user();
        tree("userName,name.givenName,emails.value").keep(&mut u);
        assert_eq!(
            Value::Object(u),
            json!({"schemas": [CORE, EXT], "id": "1", "userName": "bjensen",
                   "name": {"givenName": "Barbara"},
                   "emails": [{"value": "b@x.io"}, {"value": "c@x.io"}]})
        );
        let mut u = user();
        tree(&format!("{CORE}:USERNAME,{EXT}:department")).keep(&mut u);
        assert_eq!(
            Value::Object(u),
            json!({"schemas": [CORE, EXT], "id": "1", "userName": "bjensen",
                   EXT: {"department": "Fleet"}})
        );
    }

    #[test]
    fn excluded_attributes_drop_what_is_named_but_never_id() {
        let mut u = user();
        tree(&format!("groups,id,name.familyName,{EXT}")).drop_from(&mut u);
        assert!(u.get("groups").is_none());
        assert!(u.get(EXT).is_none());
        assert_eq!(u["id"], "1");
        assert_eq!(u["name"], json!({"givenName": "Barbara"}));
    }
}
