//! A person's start or end date as the source gives it: a calendar date, or a moment.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// A `start_date` or `end_date`.
///
/// A date-only value stays a calendar date here: which moment it stands for depends on the
/// configured time zone (`lifecycle.time_zone`), which the plan applies (`plan::dates`).
/// A date-time carries its own offset and is kept as the instant it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum When {
    /// `2026-03-01`: the start of that day in the configured time zone.
    Day(NaiveDate),
    /// `2026-03-01T08:00:00+01:00`: that instant.
    At(DateTime<Utc>),
}

impl When {
    /// Reads an ISO 8601 date (`YYYY-MM-DD`) or an RFC 3339 date-time with an offset
    /// (`2026-03-01T08:00:00Z`, `…+01:00`; a space for the `T` is accepted).
    ///
    /// # Errors
    /// What is wrong with the text, in words (the caller names the field).
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d")
            && t.len() == 10
        {
            return Ok(Self::Day(d));
        }
        if let Ok(at) = DateTime::parse_from_rfc3339(t) {
            return Ok(Self::At(at.with_timezone(&Utc)));
        }
        // A date-time without an offset would mean a different moment on every host:
        // refuse it rather than guess.
        let naive = [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
        ]
        .iter()
        .any(|f| NaiveDateTime::parse_from_str(t, f).is_ok());
        if naive {
            return Err(format!(
                "`{t}` has no UTC offset: add one (`Z`, `+01:00`) or give a date only \
                 (YYYY-MM-DD, read in lifecycle.time_zone)"
            ));
        }
        Err(format!(
            "`{t}` is not a date (YYYY-MM-DD) or a date-time with an offset \
             (e.g. 2026-03-01T08:00:00Z)"
        ))
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Day(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Self::At(t) => f.write_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        }
    }
}

impl TryFrom<String> for When {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<When> for String {
    fn from(w: When) -> Self {
        w.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn dates_and_date_times_with_offsets_are_read() {
        assert_eq!(
            When::parse(" 2026-03-01 "),
            Ok(When::Day(
                NaiveDate::from_ymd_opt(2026, 3, 1).expect("date")
            ))
        );
        let at = Utc
            .with_ymd_and_hms(2026, 3, 1, 7, 0, 0)
            .single()
            .expect("time");
        assert_eq!(When::parse("2026-03-01T08:00:00+01:00"), Ok(When::At(at)));
        assert_eq!(When::parse("2026-03-01 07:00:00Z"), Ok(When::At(at)));
        assert_eq!(When::parse("2026-03-01T07:00:00.000Z"), Ok(When::At(at)));
        assert_eq!(When::At(at).to_string(), "2026-03-01T07:00:00Z");
        assert_eq!(
            When::parse("2026-03-01").expect("d").to_string(),
            "2026-03-01"
        );
    }

    #[test]
    fn anything_else_says_what_is_expected() {
        for bad in ["2026-02-30", "01/03/2026", "2026-3-1x", "tomorrow", ""] {
            let e = When::parse(bad).expect_err(bad);
            assert!(e.contains("is not a date"), "{bad}: {e}");
        }
        let e = When::parse("2026-03-01T08:00:00").expect_err("naive");
        assert!(e.contains("no UTC offset"), "{e}");
    }

    #[test]
    fn serde_round_trips_as_text() {
        let w = When::parse("2026-03-01T08:00:00+01:00").expect("w");
        let text = serde_json::to_string(&w).expect("json");
        assert_eq!(text, "\"2026-03-01T07:00:00Z\"");
        assert_eq!(serde_json::from_str::<When>(&text).expect("back"), w);
        assert!(serde_json::from_str::<When>("\"soon\"").is_err());
    }
}
