//! `roster status`: what the store knows, per vendor, and the last pass.

use crate::out::{errln, outln};
use serde_json::json;

use super::open_or_ask;
use crate::admin::Command;
use crate::model::RecordState;
use crate::report::{Report, exit};
use crate::settings::Settings;

pub(super) async fn command(settings: &Settings, json_out: bool) -> i32 {
    if !settings.state_dir.exists() {
        if json_out {
            outln!(
                "{}",
                json!({ "state_dir": settings.state_dir, "vendors": {}, "last_run": null })
            );
        } else {
            outln!(
                "no state yet at {} (no pass has run)",
                settings.state_dir.display()
            );
        }
        return exit::OK;
    }
    let store = match open_or_ask(settings, false, Command::Status { json: json_out }).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    show(settings, &store, json_out, None)
}

/// Prints what `store` knows. `role` is the replica's role with `[ha]` when a daemon
/// answers (`leader` or `standby`); the CLI on its own has none to show.
pub(crate) fn show(
    settings: &Settings,
    store: &crate::store::Store,
    json_out: bool,
    role: Option<&str>,
) -> i32 {
    let mut names: Vec<String> = settings.vendors.keys().cloned().collect();
    for n in store.vendors() {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let mut vendors = serde_json::Map::new();
    for name in names {
        // Counted from each record's header (`StoredRecord`): no record's fields are
        // decoded (a header that does not decode is still an error).
        let states: Result<Vec<RecordState>, _> = store
            .stored(&name)
            .and_then(|records| records.map(|r| r.map(|r| r.state())).collect());
        let states = match states {
            Ok(s) => s,
            Err(e) => {
                errln!("roster: {e}");
                return exit::FAILED_OPS;
            }
        };
        let count = |s: RecordState| states.iter().filter(|&&r| r == s).count();
        vendors.insert(
            name.clone(),
            json!({
                "linked": states.len(),
                "active": count(RecordState::Active),
                "deactivated": count(RecordState::Deactivated),
                "pending_create": count(RecordState::Creating),
                "configured": settings.vendors.contains_key(&name),
            }),
        );
    }
    let unlinked = store.unlinked().unwrap_or_else(|e| {
        errln!("roster: {e}");
        Vec::new()
    });
    let last: Option<Report> = store.last_report().unwrap_or_else(|e| {
        errln!("roster: {e}");
        None
    });
    let last_run = last.as_ref().map(|r| {
        json!({
            "started_at": r.started_at,
            "finished_at": r.finished_at,
            "outcome": r.outcome(),
            "refused": r.refused,
            "failed": r.vendors.values().map(|v| v.failed).sum::<usize>(),
            "next_due": r.next_due,
        })
    });
    if json_out {
        let mut out = json!({
            "state_dir": settings.state_dir,
            "vendors": vendors,
            "last_run": last_run,
        });
        if !unlinked.is_empty() {
            out["unlinked"] = json!(unlinked);
        }
        if let Some(role) = role {
            out["replica"] = json!(role);
        }
        outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        outln!("state: {}", settings.state_dir.display());
        match role {
            Some("standby") => {
                outln!("replica: standby (only the lease holder runs passes)");
            }
            Some(role) => outln!("replica: {role}"),
            None => {}
        }
        outln!(
            "{:<14} {:>8} {:>8} {:>12} {:>15}",
            "vendor",
            "linked",
            "active",
            "deactivated",
            "pending_create"
        );
        for (name, v) in &vendors {
            let n = |k: &str| v[k].as_u64().unwrap_or(0);
            outln!(
                "{:<14} {:>8} {:>8} {:>12} {:>15}",
                name,
                n("linked"),
                n("active"),
                n("deactivated"),
                n("pending_create")
            );
        }
        for u in &unlinked {
            outln!(
                "unlinked on upgrade ({}): {} account {} had been linked to several people \
                 ({}); each is linked again by lookup",
                u.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                u.vendor,
                u.remote,
                u.people.join(", ")
            );
        }
        match &last {
            None => outln!("last run: none"),
            Some(r) => {
                let secs = |t: chrono::DateTime<chrono::Utc>| {
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                };
                let when = r.finished_at.map(secs).unwrap_or_default();
                match &r.refused {
                    Some(why) => outln!("last run: {when} refused: {why}"),
                    None => outln!(
                        "last run: {when} ({} failed operations)",
                        r.vendors.values().map(|v| v.failed).sum::<usize>()
                    ),
                }
                if let Some(due) = r.next_due {
                    // Past: the daemon runs its pass about now; a one-shot setup at its
                    // next run.
                    let overdue = if due <= chrono::Utc::now() {
                        " (overdue: the next pass makes it)"
                    } else {
                        ""
                    };
                    outln!(
                        "next change by a start or end date due at {}{overdue}",
                        secs(due)
                    );
                }
            }
        }
    }
    exit::OK
}
