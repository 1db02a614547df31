//! The fake's Groups (RFC 7643 §4.2): `displayName` and `members`, where a member is a
//! User or another Group (nested groups). Memberships are stored as `{value, type}` and
//! rendered with `$ref` and `display` from the current state, so a renamed user or
//! group shows its new name. And `User.groups` (RFC 7643 §4.1.2, read-only): a provider
//! may fill it from these memberships (`direct` and `indirect`), return it as stored, or
//! leave it out, as many do.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};

/// What `/Users` says about a user's groups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserGroups {
    /// Whatever `groups` the user was added with (the fake's original behaviour).
    #[default]
    AsStored,
    /// Never returned: membership is only on `/Groups/{id}.members`.
    Omitted,
    /// Computed from `/Groups`: every group the user is in, `direct` or `indirect`
    /// (through nested groups), replacing anything stored.
    Derived,
}

pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// A member as stored: the id and whether it is a `User` or a `Group`.
pub fn member(value: &str, is_group: bool) -> Value {
    json!({"value": value, "type": if is_group { "Group" } else { "User" }})
}

/// The ids in a group's `members`.
pub fn member_ids(group: &Map<String, Value>) -> impl Iterator<Item = &str> {
    group
        .get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("value").and_then(Value::as_str))
}

/// A group for the wire: each member gets its `$ref` (under `base`, the `…/scim/v2`
/// URL) and `display` (the user's `displayName` or `userName`, the group's
/// `displayName`).
pub fn render_group(
    group: &Map<String, Value>,
    users: &HashMap<&str, &Map<String, Value>>,
    groups: &HashMap<&str, &Map<String, Value>>,
    base: &str,
) -> Map<String, Value> {
    let mut out = group.clone();
    if let Some(Value::Array(members)) = out.get_mut("members") {
        for m in members.iter_mut() {
            let Some(obj) = m.as_object_mut() else {
                continue;
            };
            let id = obj
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let is_group = obj.get("type").and_then(Value::as_str) == Some("Group");
            let (path, display) = if is_group {
                let name = groups.get(id.as_str()).and_then(|g| g.get("displayName"));
                ("Groups", name.cloned())
            } else {
                let u = users.get(id.as_str());
                let name = u
                    .and_then(|u| u.get("displayName"))
                    .or_else(|| u.and_then(|u| u.get("userName")));
                ("Users", name.cloned())
            };
            obj.insert("$ref".into(), json!(format!("{base}/{path}/{id}")));
            if let Some(d) = display {
                obj.insert("display".into(), d);
            }
        }
    }
    out
}

/// Every user's groups as `User.groups` items: direct memberships, then the groups
/// that contain those (transitively, each once, cycles included) as `indirect`.
pub fn derived_user_groups(
    groups: &BTreeMap<u64, Map<String, Value>>,
    base: &str,
) -> HashMap<String, Vec<Value>> {
    let by_id: HashMap<&str, &Map<String, Value>> = groups
        .values()
        .filter_map(|g| g.get("id").and_then(Value::as_str).map(|id| (id, g)))
        .collect();
    // Group id → the groups that list it as a member.
    let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
    for (id, g) in &by_id {
        for m in member_ids(g) {
            if by_id.contains_key(m) {
                parents.entry(m).or_default().push(id);
            }
        }
    }
    let item = |gid: &str, kind: &str| {
        let name = by_id
            .get(gid)
            .and_then(|g| g.get("displayName"))
            .cloned()
            .unwrap_or(Value::Null);
        json!({"value": gid, "$ref": format!("{base}/Groups/{gid}"), "display": name, "type": kind})
    };
    let mut out: HashMap<String, Vec<Value>> = HashMap::new();
    let mut direct: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for (gid, g) in &by_id {
        for m in member_ids(g) {
            if !by_id.contains_key(m) {
                direct.entry(m).or_default().insert(gid);
            }
        }
    }
    for (user, gids) in direct {
        let mut seen: BTreeSet<&str> = gids.clone();
        let mut items: Vec<Value> = gids.iter().map(|g| item(g, "direct")).collect();
        let mut queue: Vec<&str> = gids.into_iter().collect();
        while let Some(g) = queue.pop() {
            for p in parents.get(g).into_iter().flatten() {
                if seen.insert(p) {
                    items.push(item(p, "indirect"));
                    queue.push(p);
                }
            }
        }
        out.insert(user.to_string(), items);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str, name: &str, members: &[(&str, bool)]) -> Map<String, Value> {
        let members: Vec<Value> = members.iter().map(|(m, g)| member(m, *g)).collect();
        json!({"id": id, "displayName": name, "members": members})
            .as_object()
            .cloned()
            .expect("object")
    }

    #[test]
    fn derived_groups_follow_nesting_and_survive_cycles() {
        let groups: BTreeMap<u64, Map<String, Value>> = [
            group("g1", "drivers", &[("u1", false), ("g2", true)]),
            group("g2", "night", &[("u2", false), ("g1", true)]),
            group("g3", "office", &[("u3", false)]),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, g)| (i as u64, g))
        .collect();
        let d = derived_user_groups(&groups, "http://h/scim/v2");
        let names = |u: &str| -> Vec<(String, String)> {
            let mut v: Vec<_> = d[u]
                .iter()
                .map(|i| {
                    (
                        i["display"].as_str().unwrap_or_default().to_string(),
                        i["type"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            names("u2"),
            [
                ("drivers".into(), "indirect".into()),
                ("night".into(), "direct".into())
            ]
        );
        assert_eq!(
            names("u1"),
            [
                ("drivers".into(), "direct".into()),
                ("night".into(), "indirect".into())
            ]
        );
        assert_eq!(names("u3"), [("office".into(), "direct".into())]);
        assert_eq!(d["u3"][0]["$ref"], "http://h/scim/v2/Groups/g3");
    }
}
