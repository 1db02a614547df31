//! One account, one person. PURE: no I/O, no clock.
//!
//! A vendor keeps some values unique across its accounts (`model::UniqueKey`: a
//! username, an email, roster's external id) and compares them its own way (Rocket.Chat
//! ignores case). Two people the source gives the same such value would need the same
//! account, and whichever went first would hand it to the other. So:
//!
//! - [`Collisions`] finds, as a vendor's plan streams by, every value wanted by more than
//!   one person; [`super::Plan::set_aside`] takes all of those people out of the plan
//!   (no create, adoption or change at that vendor), each reported with the others' ids,
//!   until the source gives each their own value. Nobody else is affected.
//! - [`judge`] decides whether an account the create protocol found by lookup may be
//!   linked to this person: not when its identifying value (an email) is not the
//!   person's, nor when one of its values is wanted by another person this pass creates.
//!   (That the account is not linked to someone else already is the store's rule.)

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use crate::model::{Case, Fields, KeyOf, PersonId, Remote, UniqueKey};

use super::{OpKind, Plan};

/// People who cannot be given an account at one vendor as the source has them, and why
/// (naming the others).
pub type Conflicts = BTreeMap<PersonId, String>;

/// The unique values of the people a vendor should hold, gathered as the plan streams by.
///
/// Holds a 64-bit hash and a reference per value (16 bytes), not the value: a pass over
/// a million people must not hold every username and email again. Equal hashes are
/// confirmed on the values themselves in [`Collisions::finish`], so a hash collision can
/// never set anyone aside.
pub struct Collisions<'a> {
    keys: Vec<(usize, UniqueKey)>,
    seen: Vec<(u64, &'a PersonId)>,
}

impl<'a> Collisions<'a> {
    /// For a vendor with these keys. A person id compared with case is unique by
    /// definition (the source refuses duplicate ids), so such a key is not watched.
    pub fn new(keys: &[UniqueKey]) -> Self {
        let keys = keys
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, k)| !(k.of == KeyOf::PersonId && k.case == Case::Sensitive))
            .collect();
        Self {
            keys,
            seen: Vec::new(),
        }
    }

    /// Room for `people` observations at once: every vendor's check runs beside the
    /// others', so growing by doubling would hold up to twice what is needed.
    pub fn reserve(&mut self, people: usize) {
        if !self.keys.is_empty() {
            self.seen
                .reserve_exact(people.saturating_mul(self.keys.len()));
        }
    }

    /// Whether there is anything to watch.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Notes the values of one person the vendor should hold with `fields`.
    pub fn observe(&mut self, person: &'a PersonId, fields: &Fields) {
        for (i, key) in &self.keys {
            if let Some(v) = key.value(person, fields) {
                self.seen.push((digest(*i, &key.normalized(v)), person));
            }
        }
    }

    /// The people who share a value with someone else. `fields_of` maps a person again
    /// (only people whose hashes met are asked for), to compare the values themselves.
    pub fn finish(mut self, fields_of: impl Fn(&PersonId) -> Option<Fields>) -> Conflicts {
        self.seen.sort_unstable_by_key(|(h, _)| *h);
        let mut out = Conflicts::new();
        let mut start = 0;
        while start < self.seen.len() {
            let hash = self.seen[start].0;
            let end = start + self.seen[start..].partition_point(|(h, _)| *h == hash);
            if end - start > 1 {
                let people: Vec<&PersonId> = self.seen[start..end].iter().map(|s| s.1).collect();
                self.confirm(&people, &fields_of, &mut out);
            }
            start = end;
        }
        out
    }

    /// Groups `people` (whose hashes met) by their real values; every group of two or
    /// more is a conflict for each of its members.
    fn confirm(
        &self,
        people: &[&PersonId],
        fields_of: &impl Fn(&PersonId) -> Option<Fields>,
        out: &mut Conflicts,
    ) {
        let mapped: Vec<(&PersonId, Fields)> = people
            .iter()
            .filter_map(|p| fields_of(p).map(|f| (*p, f)))
            .collect();
        for (_, key) in &self.keys {
            let mut groups: BTreeMap<String, Vec<(&PersonId, &str)>> = BTreeMap::new();
            for (p, f) in &mapped {
                if let Some(v) = key.value(p, f) {
                    let members = groups.entry(key.normalized(v).into_owned()).or_default();
                    if !members.iter().any(|(q, _)| q == p) {
                        members.push((p, v));
                    }
                }
            }
            for members in groups.values().filter(|m| m.len() > 1) {
                for (p, v) in members {
                    let others: Vec<String> = members
                        .iter()
                        .filter(|(q, _)| q != p)
                        .map(|(q, w)| format!("{q} (`{w}`)"))
                        .collect();
                    let why = format!(
                        "{} `{v}` is also wanted by {}{}: one account cannot be two people, so \
                         none of them is created, adopted or changed at this vendor until each \
                         has their own {} in the source",
                        key.name,
                        others.join(", "),
                        key.compared(),
                        key.name
                    );
                    out.entry((*p).clone())
                        .and_modify(|m| {
                            m.push_str("; ");
                            m.push_str(&why);
                        })
                        .or_insert(why);
                }
            }
        }
    }
}

fn digest(key: usize, value: &str) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    value.hash(&mut h);
    h.finish()
}

/// The unique values of the people a pass is about to create (or adopt for) at one
/// vendor, by normalized value: an account found for one of them that holds another's
/// value is not theirs.
#[derive(Debug, Default)]
pub struct Claims {
    owners: HashMap<(usize, String), PersonId>,
}

impl Claims {
    /// From the create operations of `plan` (after conflicts are set aside, so each value
    /// has one owner).
    pub fn from_plan(keys: &[UniqueKey], plan: &Plan) -> Self {
        Self::of(
            keys,
            plan.ops.iter().filter_map(|op| match &op.kind {
                OpKind::Create { fields, .. } => Some((&op.person, fields)),
                _ => None,
            }),
        )
    }

    /// The values of `people` (each with the fields the vendor should hold).
    pub fn of<'a>(
        keys: &[UniqueKey],
        people: impl IntoIterator<Item = (&'a PersonId, &'a Fields)>,
    ) -> Self {
        let mut owners = HashMap::new();
        for (person, fields) in people {
            for (i, key) in keys.iter().enumerate() {
                if let Some(v) = key.value(person, fields) {
                    owners
                        .entry((i, key.normalized(v).into_owned()))
                        .or_insert_with(|| person.clone());
                }
            }
        }
        Self { owners }
    }

    fn owner(&self, key: usize, normalized: &str) -> Option<&PersonId> {
        self.owners.get(&(key, normalized.to_string()))
    }
}

/// Whether `account`, found by lookup for `person` (who wants `wanted`, and whose stored
/// record, if any, holds `earlier`: an interrupted create's intent, or what was last
/// pushed), may be linked to them.
///
/// # Errors
/// Why not, in words naming the key and the value: an identifying value of the account
/// that is neither what the person wants nor what roster last sent for them, or a value
/// of the account that another person of this pass wants.
pub fn judge(
    keys: &[UniqueKey],
    person: &PersonId,
    wanted: &Fields,
    earlier: Option<&Fields>,
    account: &Remote,
    claims: &Claims,
) -> Result<(), String> {
    for (i, key) in keys.iter().enumerate() {
        // The account's value, read back from the vendor; a key it does not report (an
        // external id) cannot be compared here.
        if key.of == KeyOf::PersonId {
            continue;
        }
        let Some(theirs) = key.value(person, &account.fields) else {
            continue;
        };
        let Some(mine) = key.value(person, wanted) else {
            continue;
        };
        if key.same(theirs, mine) {
            continue;
        }
        if let Some(other) = claims
            .owner(i, &key.normalized(theirs))
            .filter(|o| *o != person)
        {
            return Err(format!(
                "the account found ({}) has {} `{theirs}`, which {other} has in the source: \
                 it is not linked to {person}",
                account.id, key.name
            ));
        }
        let sent_before = earlier
            .and_then(|e| key.value(person, e))
            .is_some_and(|e| key.same(theirs, e));
        if key.identifies && !sent_before {
            return Err(format!(
                "the account found ({}) has {} `{theirs}`, but {person} has `{mine}`{}: it is \
                 not known to be theirs, so it is not linked; if it is, set its {} to `{mine}` \
                 at the vendor (or the source to `{theirs}`) and the next pass adopts it",
                account.id,
                key.name,
                key.compared(),
                key.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
