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
mod tests {
    use super::*;
    use crate::plan::{Operation, Plan};

    const USERNAME: UniqueKey = UniqueKey {
        name: "username",
        of: KeyOf::Field("username"),
        case: Case::Insensitive,
        identifies: false,
    };
    const EMAIL: UniqueKey = UniqueKey {
        name: "email",
        of: KeyOf::Field("email"),
        case: Case::Insensitive,
        identifies: true,
    };
    const EXTERNAL_ID: UniqueKey = UniqueKey {
        name: "external id",
        of: KeyOf::PersonId,
        case: Case::Insensitive,
        identifies: true,
    };
    const CLIENT_ID: UniqueKey = UniqueKey {
        name: "client id",
        of: KeyOf::PersonId,
        case: Case::Sensitive,
        identifies: true,
    };

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// One row: the vendor's keys, the people it should hold (id, username, email), and
    /// who must be set aside, each with the ids their message names.
    struct Case_ {
        name: &'static str,
        keys: &'static [UniqueKey],
        people: &'static [(&'static str, &'static str, &'static str)],
        aside: &'static [(&'static str, &'static [&'static str])],
    }

    fn check(c: &Case_) {
        let ids: Vec<PersonId> = c
            .people
            .iter()
            .map(|(id, _, _)| PersonId::from(*id))
            .collect();
        let mapped = |id: &PersonId| {
            c.people
                .iter()
                .find(|(p, _, _)| *p == id.as_str())
                .map(|(_, u, e)| {
                    let mut f = fields(&[("username", u), ("email", e)]);
                    f.retain(|_, v| !v.is_empty());
                    f
                })
        };
        let mut collisions = Collisions::new(c.keys);
        for id in &ids {
            collisions.observe(id, &mapped(id).expect("mapped"));
        }
        let got = collisions.finish(mapped);
        let who: Vec<&str> = got.keys().map(PersonId::as_str).collect();
        let expected: Vec<&str> = c.aside.iter().map(|(p, _)| *p).collect();
        assert_eq!(who, expected, "case `{}`: {got:?}", c.name);
        for (p, others) in c.aside {
            let message = &got[&PersonId::from(*p)];
            for o in *others {
                assert!(
                    message.contains(&format!("{o} (")),
                    "case `{}`: {p}'s message names {o}: {message}",
                    c.name
                );
            }
        }
    }

    #[test]
    fn values_wanted_twice_set_everyone_involved_aside() {
        let cases = [
            Case_ {
                name: "one username for two people (Rocket.Chat)",
                keys: &[USERNAME, EMAIL],
                people: &[
                    ("E1", "jsmith", "john@x.io"),
                    ("E2", "jsmith", "jane@x.io"),
                    ("E3", "kim", "kim@x.io"),
                ],
                aside: &[("E1", &["E2"]), ("E2", &["E1"])],
            },
            Case_ {
                name: "usernames that differ only in case",
                keys: &[USERNAME, EMAIL],
                people: &[("E1", "kdoe", "k1@x.io"), ("E2", "KDoe", "k2@x.io")],
                aside: &[("E1", &["E2"]), ("E2", &["E1"])],
            },
            Case_ {
                name: "emails that differ only in case",
                keys: &[USERNAME, EMAIL],
                people: &[("E1", "a", "Ann@X.io"), ("E2", "b", "ann@x.io")],
                aside: &[("E1", &["E2"]), ("E2", &["E1"])],
            },
            Case_ {
                name: "three people, one name: each names the two others",
                keys: &[USERNAME],
                people: &[("A", "x", ""), ("B", "X", ""), ("C", "x", "")],
                aside: &[("A", &["B", "C"]), ("B", &["A", "C"]), ("C", &["A", "B"])],
            },
            Case_ {
                name: "ids that differ in case where the vendor ignores case",
                keys: &[EXTERNAL_ID, EMAIL],
                people: &[("E1001", "", "a@x.io"), ("e1001", "", "b@x.io")],
                aside: &[("E1001", &["e1001"]), ("e1001", &["E1001"])],
            },
            Case_ {
                name: "ids that differ in case where the vendor keeps case",
                keys: &[CLIENT_ID],
                people: &[("E1001", "", ""), ("e1001", "", "")],
                aside: &[],
            },
            Case_ {
                name: "a key the vendor does not keep unique is not compared",
                keys: &[EMAIL],
                people: &[("E1", "same", "a@x.io"), ("E2", "same", "b@x.io")],
                aside: &[],
            },
            Case_ {
                name: "missing values never collide",
                keys: &[USERNAME, EMAIL],
                people: &[("E1", "", ""), ("E2", "", "")],
                aside: &[],
            },
        ];
        for c in &cases {
            check(c);
        }
    }

    #[test]
    fn set_aside_takes_people_out_of_the_plan_and_reports_them() {
        let mut plan = Plan {
            ops: vec![
                Operation {
                    person: "E1".into(),
                    kind: OpKind::Create {
                        fields: fields(&[("username", "jsmith")]),
                        resume: false,
                    },
                },
                Operation {
                    person: "E3".into(),
                    kind: OpKind::Create {
                        fields: fields(&[("username", "kim")]),
                        resume: false,
                    },
                },
            ],
            // E2 is linked and unchanged.
            unchanged: 1,
            linked: 1,
            ..Plan::default()
        };
        let conflicts: Conflicts = [
            ("E1".into(), "shared with E2".to_string()),
            ("E2".into(), "shared with E1".to_string()),
        ]
        .into();
        plan.set_aside(&conflicts);
        assert_eq!(
            plan.ops
                .iter()
                .map(|o| o.person.as_str())
                .collect::<Vec<_>>(),
            ["E3"]
        );
        assert_eq!(plan.unchanged, 0);
        let aside: Vec<(&str, crate::model::Op)> = plan
            .conflicts
            .iter()
            .map(|(p, op, _)| (p.as_str(), *op))
            .collect();
        assert_eq!(
            aside,
            [
                ("E1", crate::model::Op::Create),
                ("E2", crate::model::Op::Update)
            ]
        );
    }

    fn account(pairs: &[(&str, &str)]) -> Remote {
        Remote {
            id: "acct-1".into(),
            active: Some(true),
            fields: fields(pairs),
        }
    }

    #[test]
    fn an_account_is_adopted_only_when_it_is_this_persons() {
        let keys = [USERNAME, EMAIL];
        let jane = PersonId::from("E2");
        let wanted = fields(&[("username", "jsmith"), ("email", "jane@x.io")]);
        let none = Claims::default();

        // Found by username, but the email is someone else's: not Jane's.
        let johns = account(&[("username", "jsmith"), ("email", "john@x.io")]);
        let why = judge(&keys, &jane, &wanted, None, &johns, &none).expect_err("not hers");
        assert!(
            why.contains("john@x.io") && why.contains("jane@x.io"),
            "{why}"
        );

        // Same values as the vendor compares them: hers.
        let hers = account(&[("username", "JSmith"), ("email", "Jane@X.io")]);
        assert_eq!(judge(&keys, &jane, &wanted, None, &hers, &none), Ok(()));

        // Found by email with another username (a handle): hers, and renamed.
        let renamed = account(&[("username", "jane.s"), ("email", "jane@x.io")]);
        assert_eq!(judge(&keys, &jane, &wanted, None, &renamed, &none), Ok(()));

        // ... unless that username belongs to someone this pass creates.
        let plan = Plan {
            ops: vec![Operation {
                person: "E7".into(),
                kind: OpKind::Create {
                    fields: fields(&[("username", "jane.s"), ("email", "js@x.io")]),
                    resume: false,
                },
            }],
            ..Plan::default()
        };
        let claims = Claims::from_plan(&keys, &plan);
        let why = judge(&keys, &jane, &wanted, None, &renamed, &claims).expect_err("E7's");
        assert!(why.contains("E7") && why.contains("jane.s"), "{why}");

        // An interrupted create sent the old email; the source changed it since: hers.
        let before = fields(&[("username", "jsmith"), ("email", "old@x.io")]);
        let made = account(&[("username", "jsmith"), ("email", "old@x.io")]);
        assert_eq!(
            judge(&keys, &jane, &wanted, Some(&before), &made, &none),
            Ok(())
        );

        // A key the account does not report, or the person does not have, is not held
        // against the account.
        let bare = account(&[("username", "jsmith")]);
        assert_eq!(judge(&keys, &jane, &wanted, None, &bare, &none), Ok(()));
        assert_eq!(
            judge(&[EXTERNAL_ID], &jane, &wanted, None, &johns, &none),
            Ok(())
        );
    }
}
