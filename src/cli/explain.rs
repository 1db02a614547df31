//! `roster explain <person-id>`: everything roster knows about one person and what a
//! pass would do for them at each vendor, and why. No side effects: it reads the source
//! and the store, calls no vendor, writes nothing.
//!
//! It uses the same `pass::desire` and `plan::plan` as a pass, so the answer cannot
//! disagree with what the next pass does (drift aside, which only `--full` can see).

use crate::out::{errln, outln};
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{
    Fields, InvalidRecord, Op, Person, PersonId, RecordState, Snapshot, VendorRecord, Why,
};
use std::sync::Arc;

use super::{ExplainArgs, prepare};
use crate::pass::Slot;
use crate::pass::{Context, NoHooks};
use crate::plan::{self, DateRules, Desired, OpKind, Stage, Target};
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
    /// `active`, `inactive`, `out_of_scope`, `removed`, `ended`, `not_yet` (before the
    /// start date), `skipped`, `held`, or `conflict` (active, but another person would
    /// need the same account: set aside).
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
    /// The start and end date rule that applies, when the person has dates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dates: Option<DatesPart>,
}

/// Which date rule applies to the person at this vendor, and what it brings next.
#[derive(Debug, Serialize)]
pub struct DatesPart {
    /// `not_yet`, `joined`, `ended` or `conflict`.
    pub rule: &'static str,
    /// The rule in words, with the moments it uses.
    pub detail: String,
    /// When the next change for this person is due here (none: no date rule pending).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_due: Option<DateTime<Utc>>,
    /// The operation a pass makes then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<ExplainedOp>,
}

#[derive(Debug, Serialize)]
pub struct ExplainedOp {
    pub op: Op,
    pub fields: Vec<String>,
}

/// Builds the explanation at the moment `now` from a source snapshot and each vendor's
/// stored record.
pub fn explain(
    ctx: &Context,
    id: &PersonId,
    snapshot: &Snapshot,
    stored: &BTreeMap<String, Option<VendorRecord>>,
    now: DateTime<Utc>,
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
            (Some(p), true) => Some(crate::pass::desire_at(settings, vendor.as_ref(), p, now)),
            (None, true) => None,
        };
        let desired: BTreeMap<PersonId, Desired> =
            wanted.iter().map(|d| (id.clone(), d.clone())).collect();
        let known: BTreeMap<PersonId, VendorRecord> =
            record.iter().map(|r| (id.clone(), r.clone())).collect();
        let slot = Slot(settings, vendor.as_ref());
        let mut plan = plan::plan_with(&desired, &known, slot.policy());
        // The same check a pass makes: someone else wanting this person's account.
        if let Some(Desired::Active(_)) = &wanted {
            let mut conflicts =
                crate::pass::conflicts_among(&sorted, settings, vendor.as_ref(), now);
            conflicts.retain(|p, _| p == id);
            plan.set_aside(&conflicts);
        }
        let conflict = plan.conflicts.first().map(|(_, _, why)| why.clone());
        let op = plan.ops.first().map(|o| &o.kind);
        let why = match &conflict {
            Some(why) => format!("set aside: {why}"),
            None => reason(
                wanted.as_ref(),
                record.as_ref(),
                op,
                &invalid,
                &settings.create_only,
            ),
        };
        let dates = match (person, invalid.is_empty()) {
            (Some(p), true) => dates(&slot, p, record.as_ref(), now),
            _ => None,
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
                    Some(Desired::Inactive(Why::Ended)) => "ended",
                    Some(Desired::NotYet { .. }) => "not_yet",
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
                dates,
            },
        );
    }
    Explanation {
        person: id.to_string(),
        source,
        vendors,
    }
}

/// The date rule that applies to `p` at this vendor, and the next change it brings.
fn dates(
    slot: &Slot<'_>,
    p: &Person,
    record: Option<&VendorRecord>,
    now: DateTime<Utc>,
) -> Option<DatesPart> {
    let rules = slot.dates();
    let (rule, detail) = match rules.stage(p, now) {
        Stage::Undated => return None,
        Stage::NotYet { from } => (
            "not_yet",
            format!(
                "not yet joined: start_date {}{}, so from {}; until then no account is \
                 created and an existing one is left as it is",
                show_when(p.start_date),
                lead(&rules),
                show_in(from, &rules)
            ),
        ),
        Stage::Joined { until } => (
            "joined",
            match until {
                Some(until) => format!(
                    "joined{}; end_date {}{}, so deactivated from {}",
                    started(p, &rules),
                    show_when(p.end_date),
                    grace(&rules),
                    show_in(until, &rules)
                ),
                None => format!("joined{}; no end date", started(p, &rules)),
            },
        ),
        Stage::Ended { since } => (
            "ended",
            format!(
                "ended: end_date {}{}, so deactivated as if inactive since {}",
                show_when(p.end_date),
                grace(&rules),
                show_in(since, &rules)
            ),
        ),
        Stage::Conflict(message) => ("conflict", message),
    };
    let next = plan::upcoming::upcoming(
        slot,
        p,
        record,
        slot.policy(),
        now,
        DateTime::<Utc>::MAX_UTC,
    )
    .into_iter()
    .next();
    Some(DatesPart {
        rule,
        detail,
        next_due: next
            .as_ref()
            .map(|d| d.at)
            .or_else(|| rules.next_due(p, now)),
        next: next.map(|d| ExplainedOp {
            op: d.kind.op(),
            fields: d.kind.field_names(),
        }),
    })
}

fn show(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn show_when(w: Option<crate::model::When>) -> String {
    w.map_or_else(|| "-".into(), |w| w.to_string())
}

/// A moment in UTC, and in the configured zone when that is another.
fn show_in(t: DateTime<Utc>, rules: &DateRules) -> String {
    if rules.time_zone == chrono_tz::Tz::UTC {
        return show(t);
    }
    let local = t.with_timezone(&rules.time_zone);
    format!(
        "{} ({} {})",
        show(t),
        local.format("%Y-%m-%d %H:%M"),
        rules.time_zone.name()
    )
}

fn started(p: &Person, rules: &DateRules) -> String {
    match p.start_date {
        Some(s) => format!(
            " (start_date {s}{}, so from {})",
            lead(rules),
            show_in(rules.provision_from(s), rules)
        ),
        None => String::new(),
    }
}

fn lead(rules: &DateRules) -> String {
    match rules.provision_days_before_start {
        0 => String::new(),
        1 => " less 1 provisioning day".into(),
        n => format!(" less {n} provisioning days"),
    }
}

fn grace(rules: &DateRules) -> String {
    match rules.end_grace_days {
        0 => String::new(),
        1 => " plus 1 grace day".into(),
        n => format!(" plus {n} grace days"),
    }
}

fn reason(
    wanted: Option<&Desired>,
    record: Option<&VendorRecord>,
    op: Option<&OpKind>,
    invalid: &[&InvalidRecord],
    create_only: &std::collections::BTreeSet<String>,
) -> String {
    match (op, wanted) {
        (Some(OpKind::Create { resume: false, .. }), _) => {
            "in the source, active and in scope, not linked yet: the pass looks the person up \
             by matching key and adopts the account found if it is this person's (one linked \
             to someone else, or with someone else's email, is reported as a conflict), or \
             creates one"
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
        (None, Some(Desired::NotYet { from })) => format!(
            "not yet joined (before the start date): nothing is done for this person here \
             until {}",
            show(*from)
        ),
        (None, Some(Desired::Active(f))) => {
            // Create-only fields are never sent after the create: a difference there is
            // the vendor's value, kept on purpose.
            let kept: Vec<&str> = create_only
                .iter()
                .filter(|k| {
                    f.get(k.as_str())
                        .is_some_and(|v| record.and_then(|r| r.fields.get(k.as_str())) != Some(v))
                })
                .map(String::as_str)
                .collect();
            if kept.is_empty() {
                "unchanged: the account matches the source".into()
            } else {
                format!(
                    "unchanged: the account matches the source except create-only {} (sent \
                     at create only; the vendor's value is kept, nothing is sent)",
                    kept.join(", ")
                )
            }
        }
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
    answer(&ctx, &store, args).await
}

/// Reads the source and `store`, prints the explanation.
pub(crate) async fn answer(ctx: &Context, store: &Store, args: &ExplainArgs) -> i32 {
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
    let e = explain(ctx, &id, &snapshot, &stored, chrono::Utc::now());
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
        if p.start_date.is_some() || p.end_date.is_some() {
            outln!(
                "  start_date {}, end_date {}",
                show_when(p.start_date),
                show_when(p.end_date)
            );
        }
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
        if let Some(d) = &v.dates {
            outln!("  dates: {}", d.detail);
            match (&d.next_due, &d.next) {
                (Some(at), Some(op)) => outln!("  next change due: {} ({})", show(*at), op.op),
                (Some(at), None) => outln!("  next change due: {} (no call)", show(*at)),
                _ => outln!("  next change due: none"),
            }
        }
    }
    exit::OK
}
