use super::*;
use chrono::{TimeZone, Utc};

fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn rec(state: RecordState, remote: Option<&str>, f: &[(&str, &str)]) -> VendorRecord {
    let t = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("date");
    VendorRecord {
        remote_id: remote.map(String::from),
        state,
        fields: fields(f),
        linked_at: t,
        updated_at: t,
    }
}

/// One row: what the source wants and what the store knows, for person `p`.
struct Case {
    name: &'static str,
    wanted: Option<Desired>,
    known: Option<VendorRecord>,
    on_remove: OnRemove,
    expect: Option<OpKind>,
    unchanged: usize,
    skipped: usize,
}

fn check(c: Case) {
    let id = PersonId::from("p");
    let desired: BTreeMap<_, _> = c.wanted.into_iter().map(|d| (id.clone(), d)).collect();
    let known: BTreeMap<_, _> = c.known.into_iter().map(|r| (id.clone(), r)).collect();
    let p = plan(&desired, &known, c.on_remove);
    let got = p.ops.first().map(|o| o.kind.clone());
    assert_eq!(got, c.expect, "case `{}`", c.name);
    assert_eq!(p.unchanged, c.unchanged, "case `{}` unchanged", c.name);
    assert_eq!(p.skipped.len(), c.skipped, "case `{}` skipped", c.name);
}

const A: &[(&str, &str)] = &[("email", "a@x.io"), ("first_name", "Ann")];
const B: &[(&str, &str)] = &[("email", "b@x.io"), ("first_name", "Ann")];

#[test]
fn table() {
    use RecordState::*;
    let d = OnRemove::Deactivate;
    let cases = vec![
        Case {
            name: "new person is created",
            wanted: Some(Desired::Active(fields(A))),
            known: None,
            on_remove: d,
            expect: Some(OpKind::Create {
                fields: fields(A),
                resume: false,
            }),
            unchanged: 0,
            skipped: 0,
        },
        Case {
            name: "unchanged person needs nothing",
            wanted: Some(Desired::Active(fields(A))),
            known: Some(rec(Active, Some("7"), A)),
            on_remove: d,
            expect: None,
            unchanged: 1,
            skipped: 0,
        },
        Case {
            name: "changed field is an update of that field only",
            wanted: Some(Desired::Active(fields(B))),
            known: Some(rec(Active, Some("7"), A)),
            on_remove: d,
            expect: Some(OpKind::Update {
                remote: "7".into(),
                changes: [("email".to_string(), Some("b@x.io".to_string()))].into(),
                fields: fields(B),
            }),
            unchanged: 0,
            skipped: 0,
        },
        Case {
            name: "removed person is deactivated, not deleted",
            wanted: None,
            known: Some(rec(Active, Some("7"), A)),
            on_remove: d,
            expect: Some(OpKind::Deactivate {
                remote: Some("7".into()),
                why: Why::Removed,
            }),
            unchanged: 0,
            skipped: 0,
        },
        Case {
            name: "removed person is deleted when the vendor says so",
            wanted: None,
            known: Some(rec(Deactivated, Some("7"), A)),
            on_remove: OnRemove::Delete,
            expect: Some(OpKind::Delete {
                remote: Some("7".into()),
            }),
            unchanged: 0,
            skipped: 0,
        },
        Case {
            name: "inactive person is deactivated even with on_remove=delete",
            wanted: Some(Desired::Inactive(Why::Inactive)),
            known: Some(rec(Active, Some("7"), A)),
            on_remove: OnRemove::Delete,
            expect: Some(OpKind::Deactivate {
                remote: Some("7".into()),
                why: Why::Inactive,
            }),
            unchanged: 0,
            skipped: 0,
        },
        Case {
            name: "out of scope is deactivated",
            wanted: Some(Desired::Inactive(Why::OutOfScope)),
            known: Some(rec(Active, Some("7"), A)),
            on_remove: d,
            expect: Some(OpKind::Deactivate {
                remote: Some("7".into()),
                why: Why::OutOfScope,
            }),
            unchanged: 0,
            skipped: 0,
        },
        Case {
            name: "already deactivated and still inactive needs nothing",
            wanted: Some(Desired::Inactive(Why::Inactive)),
            known: Some(rec(Deactivated, Some("7"), A)),
            on_remove: d,
            expect: None,
            unchanged: 1,
            skipped: 0,
        },
        Case {
            name: "inactive and never linked needs nothing",
            wanted: Some(Desired::Inactive(Why::Inactive)),
            known: None,
            on_remove: d,
            expect: None,
            unchanged: 0,
            skipped: 0,
        },
        Case {
            name: "back again is reactivated with the same account and fresh fields",
            wanted: Some(Desired::Active(fields(B))),
            known: Some(rec(Deactivated, Some("7"), A)),
            on_remove: d,
            expect: Some(OpKind::Reactivate {
                remote: "7".into(),
                changes: [("email".to_string(), Some("b@x.io".to_string()))].into(),
                fields: fields(B),
            }),
            unchanged: 0,
            skipped: 0,
        },
        Case {
            name: "a create intent resumes with a lookup",
            wanted: Some(Desired::Active(fields(A))),
            known: Some(rec(Creating, None, A)),
            on_remove: d,
            expect: Some(OpKind::Create {
                fields: fields(A),
                resume: true,
            }),
            unchanged: 0,
            skipped: 0,
        },
        Case {
            name: "removed while a create intent was pending is looked up and deactivated",
            wanted: None,
            known: Some(rec(Creating, None, A)),
            on_remove: d,
            expect: Some(OpKind::Deactivate {
                remote: None,
                why: Why::Removed,
            }),
            unchanged: 0,
            skipped: 0,
        },
        Case {
            name: "held (invalid record) keeps an active account as it is",
            wanted: Some(Desired::Hold),
            known: Some(rec(Active, Some("7"), A)),
            on_remove: d,
            expect: None,
            unchanged: 1,
            skipped: 0,
        },
        Case {
            name: "skipped person is reported, not touched",
            wanted: Some(Desired::Skip("bad pair".into())),
            known: Some(rec(Active, Some("7"), A)),
            on_remove: d,
            expect: None,
            unchanged: 0,
            skipped: 1,
        },
    ];
    for c in cases {
        check(c);
    }
}

#[test]
fn create_only_fields_go_with_the_create_and_never_after() {
    let co: BTreeSet<String> = ["role".to_string()].into();
    let policy = Policy {
        on_remove: OnRemove::Deactivate,
        create_only: &co,
    };
    let one = |wanted: &[(&str, &str)], known: Option<VendorRecord>| {
        let id = PersonId::from("p");
        let desired = BTreeMap::from([(id.clone(), Desired::Active(fields(wanted)))]);
        let known: BTreeMap<_, _> = known.into_iter().map(|r| (id.clone(), r)).collect();
        plan_with(&desired, &known, policy)
    };
    let driver = &[("email", "a@x.io"), ("role", "driver")];
    let admin = &[("email", "a@x.io"), ("role", "admin")];
    let p = one(driver, None);
    assert_eq!(
        p.ops[0].kind,
        OpKind::Create {
            fields: fields(driver),
            resume: false
        },
        "sent on create"
    );
    let p = one(admin, Some(rec(RecordState::Active, Some("7"), driver)));
    assert!(p.ops.is_empty(), "a changed role alone sends nothing");
    assert_eq!(p.unchanged, 1);
    let p = one(
        &[("email", "b@x.io"), ("role", "admin")],
        Some(rec(RecordState::Active, Some("7"), driver)),
    );
    assert_eq!(
        p.ops[0].kind,
        OpKind::Update {
            remote: "7".into(),
            changes: [("email".to_string(), Some("b@x.io".to_string()))].into(),
            fields: fields(&[("email", "b@x.io"), ("role", "driver")]),
        },
        "only the other field; the record keeps the role pushed at the create"
    );
    let p = one(
        &[("email", "a@x.io")],
        Some(rec(RecordState::Active, Some("7"), driver)),
    );
    assert!(
        p.ops.is_empty(),
        "a role gone from the source is not cleared"
    );
    let p = one(
        admin,
        Some(rec(RecordState::Deactivated, Some("7"), driver)),
    );
    assert_eq!(
        p.ops[0].kind,
        OpKind::Reactivate {
            remote: "7".into(),
            changes: Changes::new(),
            fields: fields(driver),
        },
        "a reactivation does not send it either"
    );
    let p = one(
        admin,
        Some(rec(RecordState::Active, Some("7"), &[("email", "a@x.io")])),
    );
    assert!(
        p.ops.is_empty(),
        "made create-only after the create: never sent to that account"
    );
}

#[test]
fn an_adopted_account_gets_a_create_only_field_only_where_it_has_none() {
    let co: BTreeSet<String> = ["role".to_string()].into();
    let wanted = fields(&[("email", "a@x.io"), ("role", "driver")]);
    let bare = fields(&[("email", "a@x.io")]);
    assert_eq!(keep_create_only(&wanted, &bare, &co, true), wanted);
    let set = fields(&[("email", "old@x.io"), ("role", "admin")]);
    assert_eq!(
        keep_create_only(&wanted, &set, &co, true),
        fields(&[("email", "a@x.io"), ("role", "admin")])
    );
}

#[test]
fn operations_are_ordered_by_person_id() {
    let desired: BTreeMap<PersonId, Desired> = ["c", "a", "b"]
        .iter()
        .map(|id| (PersonId::from(*id), Desired::Active(fields(A))))
        .collect();
    let known = [(PersonId::from("0"), rec(RecordState::Active, Some("1"), A))].into();
    let p = plan(&desired, &known, OnRemove::Deactivate);
    let order: Vec<&str> = p.ops.iter().map(|o| o.person.as_str()).collect();
    assert_eq!(order, ["0", "a", "b", "c"]);
    assert_eq!(p.removals(), 1);
}
