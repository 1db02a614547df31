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
