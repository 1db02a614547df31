//! `roster explain <person-id>`: everything roster knows about one person and what a
//! pass would do for them at each vendor, and why. No side effects: it reads the source
//! and the store, calls no vendor, writes nothing.
//!
//! It uses the same `pass::desire` and `plan::plan` as a pass, so the answer cannot
//! disagree with what the next pass does (drift aside, which only `--full` can see).

use crate::out::{errln, outln};
use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{
    Fields, InvalidRecord, Op, Person, PersonId, RecordState, Snapshot, VendorRecord, Why,
};
use std::sync::Arc;

use super::{ExplainArgs, prepare};
use crate::pass::{Context, NoHooks};
use crate::plan::{self, Desired, OpKind};
use crate::report::exit;
use crate::settings::Settings;
use crate::shutdown::Shutdown;
use crate::store::Store;

#[derive(Debug, Serialize)]
pub struct Explanation {
    pub person: String,
    pub source: SourcePart,
    pub vendors: BTreeMap<String, VendorPart>,
}

#[derive(Debug, Serialize)]
pub struct SourcePart {
    /// `valid`, `invalid` or `absent`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<Person>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct VendorPart {
    /// `active`, `inactive`, `out_of_scope`, `removed`, `skipped`, `held`, or `conflict`
    /// (active, but another person would need the same account: set aside).
    pub wanted: &'static str,
    /// The fields this vendor should hold (when wanted active).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Fields>,
    /// What roster last pushed there.
    pub stored: Option<VendorRecord>,
    /// The operation the next pass would make, if any.
    pub operation: Option<ExplainedOp>,
    /// Why, in words.
    pub why: String,
}

#[derive(Debug, Serialize)]
pub struct ExplainedOp {
    pub op: Op,
    pub fields: Vec<String>,
}

/// Builds the explanation from a source snapshot and each vendor's stored record.
pub fn explain(
    ctx: &Context,
    id: &PersonId,
    snapshot: &Snapshot,
    stored: &BTreeMap<String, Option<VendorRecord>>,
) -> Explanation {
    let person = snapshot.people.iter().find(|p| &p.id == id);
    let invalid: Vec<&InvalidRecord> = snapshot
        .invalid
        .iter()
        .filter(|r| r.id.as_deref() == Some(id.as_str()))
        .collect();
    let source = SourcePart {
        status: match (person, invalid.is_empty()) {
            (Some(_), _) => "valid",
            (None, false) => "invalid",
            (None, true) => "absent",
        },
        record: person.cloned(),
        errors: invalid.iter().map(|r| r.to_string()).collect(),
    };
    let mut sorted: Vec<&Person> = snapshot.people.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let mut vendors = BTreeMap::new();
    for (settings, vendor) in &ctx.vendors {
        let record = stored.get(&settings.name).cloned().flatten();
        let wanted = match (person, invalid.is_empty()) {
            (_, false) => Some(Desired::Hold),
            (Some(p), true) => Some(crate::pass::desire(settings, vendor.as_ref(), p)),
            (None, true) => None,
        };
        let desired: BTreeMap<PersonId, Desired> =
            wanted.iter().map(|d| (id.clone(), d.clone())).collect();
        let known: BTreeMap<PersonId, VendorRecord> =
            record.iter().map(|r| (id.clone(), r.clone())).collect();
        let mut plan = plan::plan(&desired, &known, settings.on_remove);
        // The same check a pass makes: someone else wanting this person's account.
        if let Some(Desired::Active(_)) = &wanted {
            let mut conflicts = crate::pass::conflicts_among(&sorted, settings, vendor.as_ref());
            conflicts.retain(|p, _| p == id);
            plan.set_aside(&conflicts);
        }
        let conflict = plan.conflicts.first().map(|(_, _, why)| why.clone());
        let op = plan.ops.first().map(|o| &o.kind);
        let why = match &conflict {
            Some(why) => format!("set aside: {why}"),
            None => reason(wanted.as_ref(), record.as_ref(), op, &invalid),
        };
        vendors.insert(
            settings.name.clone(),
            VendorPart {
                wanted: match &wanted {
                    Some(Desired::Active(_)) if conflict.is_some() => "conflict",
                    Some(Desired::Active(_)) => "active",
                    Some(Desired::Inactive(Why::Inactive)) => "inactive",
                    Some(Desired::Inactive(Why::OutOfScope)) => "out_of_scope",
                    Some(Desired::Inactive(Why::Removed)) | None => "removed",
                    Some(Desired::Skip(_)) => "skipped",
                    Some(Desired::Hold) => "held",
                },
                fields: match &wanted {
                    Some(Desired::Active(f)) => Some(f.clone()),
                    _ => None,
                },
                stored: record,
                operation: op.map(|k| ExplainedOp {
                    op: k.op(),
                    fields: k.field_names(),
                }),
                why,
            },
        );
    }
    Explanation {
        person: id.to_string(),
        source,
        vendors,
    }
}

fn reason(
    wanted: Option<&Desired>,
    record: Option<&VendorRecord>,
    op: Option<&OpKind>,
    invalid: &[&InvalidRecord],
) -> String {
    match (op, wanted) {
        (Some(OpKind::Create { resume: false, .. }), _) => {
            "in the source, active and in scope, not linked yet: the pass looks the person up \
             by matching key, adopts an existing account, or creates one"
                .into()
        }
        (Some(OpKind::Create { resume: true, .. }), _) => {
            "a create was started but never confirmed: the pass looks the person up and adopts \
             the account if the vendor made it, or creates it"
                .into()
        }
        (Some(OpKind::Update { changes, .. }), _) => format!(
            "changed in the source since the last push: {}",
            changes.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
        (Some(OpKind::Reactivate { changes, .. }), _) if changes.is_empty() => {
            "active again in the source: reactivated with the same account".into()
        }
        (Some(OpKind::Reactivate { changes, .. }), _) => format!(
            "active again in the source: reactivated with the same account, then updated: {}",
            changes.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
        (Some(OpKind::Deactivate { why, .. }), _) => format!("{}: deactivated", why.as_str()),
        (Some(OpKind::Delete { .. }), _) => {
            "removed from the source and the vendor's on_remove is delete: deleted".into()
        }
        (None, Some(Desired::Hold)) => format!(
            "the source record is invalid ({}): the person keeps their current state until it \
             is fixed",
            invalid
                .iter()
                .map(|r| r.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        ),
        (None, Some(Desired::Skip(msg))) => format!("cannot be sent as the source has it: {msg}"),
        (None, Some(Desired::Active(_))) => "unchanged: the account matches the source".into(),
        (None, Some(Desired::Inactive(why))) => match record.map(|r| r.state) {
            Some(RecordState::Deactivated) => format!("{}: already deactivated", why.as_str()),
            _ => format!("{}: never linked, nothing to do", why.as_str()),
        },
        (None, None) => match record.map(|r| r.state) {
            Some(RecordState::Deactivated) => "not in the source: already deactivated".into(),
            _ => "not in the source and not linked at this vendor".into(),
        },
    }
}

/// The command: reads the source and the store, prints the explanation.
pub(super) async fn command(settings: Settings, args: &ExplainArgs) -> i32 {
    let asked = crate::admin::Command::Explain {
        person: args.person.clone(),
        json: args.json,
    };
    let (store, ctx) = match prepare(settings, true, Arc::new(NoHooks), asked).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    show(&ctx, &store, args).await
}

/// Reads the source and `store`, prints the explanation.
pub(crate) async fn show(ctx: &Context, store: &Store, args: &ExplainArgs) -> i32 {
    let snapshot = match ctx.source.fetch(&ctx.budget(&Shutdown::never())).await {
        Ok(s) => s,
        Err(e) => {
            errln!("roster: {e}");
            return exit::REFUSED;
        }
    };
    let id = crate::model::PersonId(args.person.trim().to_string());
    let mut stored = std::collections::BTreeMap::new();
    for (vs, _) in &ctx.vendors {
        match store.get(&vs.name, &id) {
            Ok(r) => {
                stored.insert(vs.name.clone(), r);
            }
            Err(e) => {
                errln!("roster: {e}");
                return exit::FAILED_OPS;
            }
        }
    }
    let e = explain(ctx, &id, &snapshot, &stored);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
        return exit::OK;
    }
    outln!("person {}: {} in the source", e.person, e.source.status);
    if let Some(p) = &e.source.record {
        let show = |v: &Option<Box<str>>| v.as_deref().unwrap_or("-").to_string();
        outln!(
            "  name {} {}, email {}, username {}, phone {}, active {}, groups [{}]",
            show(&p.first_name),
            show(&p.last_name),
            show(&p.email),
            show(&p.username),
            show(&p.phone),
            p.active,
            p.groups.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        for (k, v) in &p.attributes {
            outln!("  attribute {k} = {v}");
        }
    }
    for err in &e.source.errors {
        outln!("  invalid: {err}");
    }
    for (name, v) in &e.vendors {
        outln!("{name}: wanted {}", v.wanted);
        if let Some(f) = &v.fields {
            let shown: Vec<String> = f.iter().map(|(k, v)| format!("{k}={v}")).collect();
            outln!("  fields: {}", shown.join(", "));
        }
        match &v.stored {
            Some(r) => outln!(
                "  stored: {:?}, vendor id {}, last acknowledged {}",
                r.state,
                r.remote_id
                    .as_deref()
                    .unwrap_or("(unknown: create not confirmed)"),
                r.updated_at.to_rfc3339()
            ),
            None => outln!("  stored: nothing (not linked)"),
        }
        match &v.operation {
            Some(op) if op.fields.is_empty() => outln!("  next pass: {}", op.op),
            Some(op) => outln!("  next pass: {} [{}]", op.op, op.fields.join(", ")),
            None => outln!("  next pass: nothing"),
        }
        outln!("  why: {}", v.why);
    }
    exit::OK
}
