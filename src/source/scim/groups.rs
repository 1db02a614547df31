//! SCIM group membership read from `/Groups` (RFC 7643 §4.2), for service providers that
//! leave the optional, read-only `User.groups` out of `/Users`.
//!
//! Pure: from the Group resources of one complete read (`id`, `displayName`, `members`)
//! it computes each user id's group names. A member is a user or a group (`type`, else
//! its `$ref`, else whether its `value` is a group id read): a group inside a group
//! passes its members up, so a user in `night` inside `drivers` is in both. Nesting may
//! loop (some directories allow it); each group is expanded once.
//!
//! An inconsistent listing is an error, never a guess, because a missing membership
//! takes people out of a vendor's scope and so deactivates them: a resource that is not
//! an object, a group without `id` or `displayName`, a group listed twice (the listing
//! moved between pages), a member without `value`, a `members` that is not a list, or a
//! member group that was not read. A member user that `/Users` did not return (e.g.
//! filtered out) is not an error; it simply has no person.
//!
//! Not here: the reading itself (paging, completeness) is the SCIM source's, the same
//! as for `/Users` (`mod.rs`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

/// Where a SCIM source takes each user's groups from (`groups_from`).
///
/// The default is `auto`: a provider that fills `User.groups` costs nothing more, and
/// one that leaves it out (RFC 7643 allows it, and many do) still scopes by group,
/// where `users` would silently put everyone out of every group-scoped vendor. What
/// `auto` can cost is the `/Groups` read on such a provider even when no vendor scopes by
/// group; if the token may not read `/Groups`, the pass is refused with a message that
/// names `groups_from = "users"`, never run with groups missing.
#[derive(Deserialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GroupsFrom {
    /// `User.groups` in `/Users` (the provider fills it).
    Users,
    /// `/Groups` and its `members`; `/Users` is asked to leave `groups` out.
    Groups,
    /// `User.groups` when the provider returns it for any user, else `/Groups`.
    #[default]
    Auto,
}

impl GroupsFrom {
    /// Whether the read needs `/Groups`, given the users read from `/Users`.
    pub fn needs_groups_endpoint(self, users: &[(String, Value)]) -> bool {
        match self {
            Self::Users => false,
            Self::Groups => true,
            Self::Auto => !users_carry_groups(users),
        }
    }

    /// A query parameter for `/Users` that spares the provider work: with membership
    /// from `/Groups`, `User.groups` (often costly to compute) is not wanted.
    pub fn users_query(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Groups => Some(("excludedAttributes", "groups")),
            Self::Users | Self::Auto => None,
        }
    }

    /// The key's value as written in the config, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Groups => "groups",
            Self::Auto => "auto",
        }
    }
}

/// The query parameter for `/Groups`: only what membership needs (`id` and `schemas`
/// always come). It also asks for `members` by name, which some providers leave out of
/// a listing unless asked.
pub const GROUPS_QUERY: (&str, &str) = ("attributes", "displayName,members");

/// Whether any user resource has a `groups` attribute. A provider that fills it omits it
/// for users in no group, so one user with it is the sign; none at all means the
/// provider leaves it out (or nobody is in a group: `/Groups` then says so too).
pub fn users_carry_groups(users: &[(String, Value)]) -> bool {
    users.iter().any(|(_, u)| {
        u.as_object()
            .is_some_and(|o| o.keys().any(|k| k.eq_ignore_ascii_case("groups")))
    })
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupsError {
    #[error("{location}: not a Group resource (expected a JSON object)")]
    NotAnObject { location: String },
    #[error("{location}: a group without an `id`")]
    MissingId { location: String },
    #[error(
        "group `{id}` is listed twice ({first} and {again}); the list moved during the read, \
         so memberships may be missing"
    )]
    DuplicateId {
        id: String,
        first: String,
        again: String,
    },
    #[error("group `{id}` ({location}) has no `displayName`, so it has no name to scope by")]
    MissingName { id: String, location: String },
    #[error("group `{group}`: {message}")]
    BadMembers { group: String, message: String },
    #[error(
        "group `{group}` has group `{member}` as a member, but /Groups did not list it; its \
         members cannot be known"
    )]
    UnknownGroup { group: String, member: String },
}

/// Each user id's group names, nested groups expanded.
#[derive(Debug, Default)]
pub struct Membership {
    by_user: HashMap<String, Vec<Arc<str>>>,
}

/// One group as read.
struct Group<'a> {
    name: Arc<str>,
    users: Vec<&'a str>,
    /// Indexes of the groups listed as members.
    subgroups: Vec<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MemberKind {
    User,
    Group,
    /// Said to be neither (a `type` this module does not know): not a person.
    Other,
    Unsaid,
}

impl Membership {
    /// Resolves the Group resources of a complete `/Groups` read, each with its place
    /// (`resource 3 (page 1)`).
    ///
    /// # Errors
    /// An inconsistent listing (see the module comment), naming the group at fault.
    pub fn from_groups(resources: &[(String, Value)]) -> Result<Self, GroupsError> {
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(resources.len());
        let mut raw = Vec::with_capacity(resources.len());
        for (i, (location, r)) in resources.iter().enumerate() {
            let Some(obj) = r.as_object() else {
                return Err(GroupsError::NotAnObject {
                    location: location.clone(),
                });
            };
            let Some(id) = obj
                .get("id")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
            else {
                return Err(GroupsError::MissingId {
                    location: location.clone(),
                });
            };
            if let Some(&first) = index.get(id) {
                return Err(GroupsError::DuplicateId {
                    id: id.to_string(),
                    first: resources[first].0.clone(),
                    again: location.clone(),
                });
            }
            let Some(name) = obj
                .get("displayName")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
            else {
                return Err(GroupsError::MissingName {
                    id: id.to_string(),
                    location: location.clone(),
                });
            };
            let members = match obj.get("members") {
                None | Some(Value::Null) => &[][..],
                Some(Value::Array(items)) => items.as_slice(),
                Some(_) => {
                    return Err(GroupsError::BadMembers {
                        group: id.to_string(),
                        message: "`members` is not a list".into(),
                    });
                }
            };
            index.insert(id, i);
            raw.push((id, Arc::<str>::from(name), members));
        }
        let mut groups = Vec::with_capacity(raw.len());
        for (id, name, members) in raw {
            let mut group = Group {
                name,
                users: Vec::new(),
                subgroups: Vec::new(),
            };
            for m in members {
                let Some(value) = m
                    .get("value")
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                else {
                    return Err(GroupsError::BadMembers {
                        group: id.to_string(),
                        message: format!("a member without a `value`: {}", short(m)),
                    });
                };
                let kind = match member_kind(m) {
                    MemberKind::Unsaid if index.contains_key(value) => MemberKind::Group,
                    MemberKind::Unsaid => MemberKind::User,
                    said => said,
                };
                match kind {
                    MemberKind::User => group.users.push(value),
                    MemberKind::Group => match index.get(value) {
                        Some(&g) => group.subgroups.push(g),
                        None => {
                            return Err(GroupsError::UnknownGroup {
                                group: id.to_string(),
                                member: value.to_string(),
                            });
                        }
                    },
                    MemberKind::Other | MemberKind::Unsaid => {}
                }
            }
            groups.push(group);
        }
        Ok(Self::expand(&groups))
    }

    /// Every user gets the names of its groups and of every group that contains one of
    /// them, however deep; `seen` guards against cycles.
    fn expand(groups: &[Group<'_>]) -> Self {
        let mut parents: Vec<Vec<usize>> = vec![Vec::new(); groups.len()];
        for (g, group) in groups.iter().enumerate() {
            for &sub in &group.subgroups {
                parents[sub].push(g);
            }
        }
        let mut names: HashMap<&str, BTreeSet<Arc<str>>> = HashMap::new();
        let mut seen = vec![usize::MAX; groups.len()];
        let mut stack = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            if group.users.is_empty() {
                continue;
            }
            // The groups `g` is in, itself included (`seen[x] == g` marks this round).
            let mut closure = Vec::new();
            stack.push(g);
            seen[g] = g;
            while let Some(x) = stack.pop() {
                closure.push(Arc::clone(&groups[x].name));
                for &p in &parents[x] {
                    if seen[p] != g {
                        seen[p] = g;
                        stack.push(p);
                    }
                }
            }
            for &user in &group.users {
                names
                    .entry(user)
                    .or_default()
                    .extend(closure.iter().cloned());
            }
        }
        Self {
            by_user: names
                .into_iter()
                .map(|(user, set)| (user.to_string(), set.into_iter().collect()))
                .collect(),
        }
    }

    /// The user's group names, sorted; empty for a user in no group.
    pub fn groups_of(&self, user_id: &str) -> &[Arc<str>] {
        self.by_user.get(user_id).map_or(&[], Vec::as_slice)
    }

    /// How many users are in at least one group.
    pub fn users(&self) -> usize {
        self.by_user.len()
    }
}

fn member_kind(m: &Value) -> MemberKind {
    if let Some(t) = m.get("type").and_then(Value::as_str) {
        return if t.eq_ignore_ascii_case("User") {
            MemberKind::User
        } else if t.eq_ignore_ascii_case("Group") {
            MemberKind::Group
        } else {
            MemberKind::Other
        };
    }
    match m.get("$ref").and_then(Value::as_str) {
        Some(r) if r.contains("/Groups/") => MemberKind::Group,
        Some(r) if r.contains("/Users/") => MemberKind::User,
        _ => MemberKind::Unsaid,
    }
}

/// A member for a message: its JSON, cut short.
fn short(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(120) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests;
