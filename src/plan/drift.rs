//! Drift: changes made at a vendor behind roster's back, found by a full pass
//! (`reconcile --full`). PURE: compares the store's records with the vendor's listing.
//!
//! Repair works through the ordinary plan: the records are corrected to what the vendor
//! really holds, and `diff::plan` then makes the calls that bring the vendor back to the
//! source.
//!
//! | found at the vendor                | record corrected to     | the plan then          |
//! |------------------------------------|-------------------------|------------------------|
//! | account gone                       | record dropped          | creates (or relinks)   |
//! | a pushed field has another value   | the vendor's value      | updates that field     |
//! | active, but roster deactivated it  | active                  | deactivates again      |
//! | inactive, but roster activated it  | deactivated             | reactivates            |
//!
//! Create-only fields (`create_only`) are the vendor's after the create: they are not
//! compared, so a hand edit of one is neither reported nor set back.
//!
//! Limits: a field the vendor does not report (or reports empty) is not compared, so a
//! value cleared at the vendor is not seen; a vendor that cannot report status (DriveKit)
//! has its status left alone; accounts roster never linked are not looked at.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::model::{PersonId, RecordState, Remote, VendorRecord};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DriftKind {
    /// The account no longer exists at the vendor.
    Deleted,
    /// These pushed fields were changed at the vendor.
    Edited { fields: Vec<String> },
    /// Re-enabled at the vendor although roster had deactivated it.
    Reenabled,
    /// Deactivated at the vendor although roster had it active.
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub person: String,
    #[serde(flatten)]
    pub kind: DriftKind,
}

/// Corrects `known` to what the vendor holds and returns every difference found;
/// `create_only` fields are not compared.
pub fn reconcile_records(
    known: &mut BTreeMap<PersonId, VendorRecord>,
    accounts: &[Remote],
    create_only: &BTreeSet<String>,
) -> Vec<Drift> {
    let by_id: HashMap<&str, &Remote> = accounts.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut drift = Vec::new();
    let mut gone = Vec::new();
    for (person, record) in known.iter_mut() {
        let Some(remote_id) = record.remote_id.as_deref() else {
            continue; // a create intent: the pass resolves it by lookup anyway
        };
        let Some(remote) = by_id.get(remote_id) else {
            gone.push(person.clone());
            drift.push(Drift {
                person: person.to_string(),
                kind: DriftKind::Deleted,
            });
            continue;
        };
        let mut edited = Vec::new();
        for (field, pushed) in record.fields.iter_mut() {
            if create_only.contains(field) {
                continue;
            }
            if let Some(now) = remote.fields.get(field)
                && now != pushed
            {
                edited.push(field.clone());
                *pushed = now.clone();
            }
        }
        if !edited.is_empty() {
            drift.push(Drift {
                person: person.to_string(),
                kind: DriftKind::Edited { fields: edited },
            });
        }
        match (remote.active, record.state) {
            (Some(true), RecordState::Deactivated) => {
                record.state = RecordState::Active;
                drift.push(Drift {
                    person: person.to_string(),
                    kind: DriftKind::Reenabled,
                });
            }
            (Some(false), RecordState::Active) => {
                record.state = RecordState::Deactivated;
                drift.push(Drift {
                    person: person.to_string(),
                    kind: DriftKind::Disabled,
                });
            }
            _ => {}
        }
    }
    for person in gone {
        known.remove(&person);
    }
    drift
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Fields;
    use chrono::Utc;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rec(remote: &str, state: RecordState, f: &[(&str, &str)]) -> VendorRecord {
        VendorRecord {
            remote_id: Some(remote.into()),
            state,
            fields: fields(f),
            linked_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn account(id: &str, active: Option<bool>, f: &[(&str, &str)]) -> Remote {
        Remote {
            id: id.into(),
            active,
            fields: fields(f),
        }
    }

    #[test]
    fn every_kind_of_drift_is_found_and_corrected() {
        let mut known: BTreeMap<PersonId, VendorRecord> = [
            (
                "same",
                rec("1", RecordState::Active, &[("email", "a@x.io")]),
            ),
            (
                "edited",
                rec(
                    "2",
                    RecordState::Active,
                    &[("email", "b@x.io"), ("phone", "1")],
                ),
            ),
            ("gone", rec("3", RecordState::Active, &[])),
            ("reenabled", rec("4", RecordState::Deactivated, &[])),
            ("disabled", rec("5", RecordState::Active, &[])),
            ("unknown_status", rec("6", RecordState::Deactivated, &[])),
        ]
        .into_iter()
        .map(|(k, v)| (PersonId::from(k), v))
        .collect();
        let accounts = vec![
            account("1", Some(true), &[("email", "a@x.io"), ("role", "driver")]),
            // Phone not reported: not compared.
            account("2", Some(true), &[("email", "hand@x.io")]),
            account("4", Some(true), &[]),
            account("5", Some(false), &[]),
            account("6", None, &[]),
            account("99", Some(true), &[]),
        ];
        let drift = reconcile_records(&mut known, &accounts, &BTreeSet::new());
        let got: Vec<(&str, &DriftKind)> =
            drift.iter().map(|d| (d.person.as_str(), &d.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("disabled", &DriftKind::Disabled),
                (
                    "edited",
                    &DriftKind::Edited {
                        fields: vec!["email".into()]
                    }
                ),
                ("gone", &DriftKind::Deleted),
                ("reenabled", &DriftKind::Reenabled),
            ]
        );
        assert!(!known.contains_key(&PersonId::from("gone")));
        assert_eq!(
            known[&PersonId::from("edited")].fields["email"],
            "hand@x.io"
        );
        assert_eq!(known[&PersonId::from("edited")].fields["phone"], "1");
        assert_eq!(
            known[&PersonId::from("reenabled")].state,
            RecordState::Active
        );
        assert_eq!(
            known[&PersonId::from("disabled")].state,
            RecordState::Deactivated
        );
        assert_eq!(
            known[&PersonId::from("unknown_status")].state,
            RecordState::Deactivated
        );
    }

    #[test]
    fn a_create_only_field_edited_at_the_vendor_is_not_drift() {
        let mut known: BTreeMap<PersonId, VendorRecord> = [(
            PersonId::from("p"),
            rec(
                "1",
                RecordState::Active,
                &[("email", "a@x.io"), ("role", "driver")],
            ),
        )]
        .into();
        let accounts = vec![account(
            "1",
            Some(true),
            &[("email", "hand@x.io"), ("role", "admin")],
        )];
        let create_only: BTreeSet<String> = ["role".to_string()].into();
        let drift = reconcile_records(&mut known, &accounts, &create_only);
        assert_eq!(
            drift,
            vec![Drift {
                person: "p".into(),
                kind: DriftKind::Edited {
                    fields: vec!["email".into()]
                }
            }],
            "only the managed field is drift"
        );
        let fields = &known[&PersonId::from("p")].fields;
        assert_eq!(fields["role"], "driver", "left as pushed");
        assert_eq!(fields["email"], "hand@x.io");
    }
}
