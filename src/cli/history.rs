//! `roster history`: the audit history of write calls.

use super::{HistoryArgs, open_or_ask};
use crate::admin::Command;
use crate::out::{errln, outln};
use crate::report::exit;
use crate::settings::Settings;

/// `--since`: an RFC 3339 time, a date (midnight UTC), or an age counted back from now.
///
/// # Errors
/// A message saying which forms are accepted (a clap value parser: clap prints it).
pub(super) fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    use chrono::{DateTime, NaiveDate, Utc};
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map_or_else(Utc::now, |t| t.and_utc()));
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a time (2026-11-01T08:00:00Z), a date (2026-11-01) or an age (90m, 24h, 7d)"))?;
    let age = match unit {
        "s" => chrono::TimeDelta::try_seconds(n),
        "m" => chrono::TimeDelta::try_minutes(n),
        "h" => chrono::TimeDelta::try_hours(n),
        "d" => chrono::TimeDelta::try_days(n),
        _ => return Err(format!("`{s}`: an age ends in s, m, h or d")),
    };
    // chrono panics on an age past its range (about 292 million years) and on a time
    // before year -262143: here both are usage errors, never a panic.
    let too_far =
        || format!("`{s}`: an age must be positive and reach back no further than year 1");
    let since = age
        .filter(|a| *a >= chrono::TimeDelta::zero())
        .and_then(|a| Utc::now().checked_sub_signed(a))
        .ok_or_else(too_far)?;
    if chrono::Datelike::year(&since) < 1 {
        return Err(too_far());
    }
    Ok(since)
}

pub(super) async fn command(settings: &Settings, args: &HistoryArgs) -> i32 {
    if !settings.state_dir.exists() {
        outln!("{}", if args.json { "[]" } else { "no history yet" });
        return exit::OK;
    }
    let asked = Command::History {
        person: args.person.clone(),
        vendor: args.vendor.clone(),
        since: args.since,
        json: args.json,
    };
    let store = match open_or_ask(settings, false, asked).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    show(&store, args)
}

/// Prints the entries of `store`'s history that `args` selects.
pub(crate) fn show(store: &crate::store::Store, args: &HistoryArgs) -> i32 {
    let filter = crate::store::HistoryFilter {
        person: args.person.clone(),
        vendor: args.vendor.clone(),
        since: args.since,
    };
    let entries = match store.history(&filter) {
        Ok(e) => e,
        Err(e) => {
            errln!("roster: {e}");
            return exit::FAILED_OPS;
        }
    };
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&entries).unwrap_or_default()
        );
        return exit::OK;
    }
    for e in &entries {
        let fields = if e.fields.is_empty() {
            String::new()
        } else {
            format!(" [{}]", e.fields.join(", "))
        };
        let message = e
            .message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        outln!(
            "{} {} {} {} {}{fields}{message}",
            e.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            e.vendor,
            e.person,
            e.op,
            e.outcome
        );
    }
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn ages_past_the_calendar_are_usage_errors_not_panics() {
        for bad in [
            "300000000d",
            "9223372036854775807s",
            "-9223372036854775808d",
            "99999999999h",
            "3000000d",
            "-5d",
        ] {
            let e = parse_since(bad).expect_err(bad);
            assert!(e.contains(bad), "{e}");
        }
        let week = parse_since("7d").expect("7d");
        let age = chrono::Utc::now() - week;
        assert!(age >= chrono::TimeDelta::days(7) && age < chrono::TimeDelta::days(8));
        assert!(parse_since("2026-11-01").is_ok());
        assert!(parse_since("700000d").is_ok(), "about 1900 years back");
    }
}
