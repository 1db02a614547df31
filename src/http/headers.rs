//! What a reply says about waiting: `Retry-After` and the rate-limit header fields, in
//! every form vendors send them. PURE: the wall clock is passed in.
//!
//! Rate-limit fields understood:
//! - `X-RateLimit-Limit` / `-Remaining` / `-Reset`, the reset as seconds to wait, as epoch
//!   seconds, or as epoch milliseconds (Rocket.Chat): a value of 10^12 or more is epoch
//!   milliseconds, of 10^9 or more epoch seconds, anything smaller seconds to wait;
//! - the IETF drafts: `RateLimit-Limit` / `-Remaining` / `-Reset` (seconds to wait), the
//!   dictionary `RateLimit: limit=10, remaining=5, reset=30`, the item form
//!   `RateLimit: "default";r=5;t=30`, and `RateLimit-Policy` (`10;w=60` or
//!   `"default";q=10;w=60`) for the window.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// What a reply's rate-limit fields say; every part is optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateInfo {
    /// Calls allowed per window.
    pub limit: Option<u64>,
    /// Calls left in the current window.
    pub remaining: Option<u64>,
    /// Time until the window resets.
    pub reset: Option<Duration>,
    /// The window's length (from a policy field).
    pub window: Option<Duration>,
}

impl RateInfo {
    /// Reads every form; `None` when the reply carries no rate-limit field at all.
    pub fn parse(headers: &HeaderMap, now: SystemTime) -> Option<Self> {
        let mut info = Self::default();
        let mut seen = false;
        for prefix in ["x-ratelimit-", "ratelimit-"] {
            let num = |name: &str| number(headers, &format!("{prefix}{name}"));
            if let Some(v) = num("limit") {
                info.limit.get_or_insert(v);
                seen = true;
            }
            if let Some(v) = num("remaining") {
                info.remaining.get_or_insert(v);
                seen = true;
            }
            if let Some(v) = num("reset") {
                let reset = if prefix == "x-ratelimit-" {
                    reset_from_number(v, now)
                } else {
                    Duration::from_secs(v)
                };
                info.reset.get_or_insert(reset);
                seen = true;
            }
        }
        if let Some(field) = text(headers, "ratelimit") {
            let params = params(&field);
            let get = |keys: &[&str]| {
                keys.iter()
                    .find_map(|k| params.iter().find(|(n, _)| n == k))
                    .and_then(|(_, v)| v.parse::<u64>().ok())
            };
            if let Some(v) = get(&["limit"]) {
                info.limit = Some(v);
            }
            if let Some(v) = get(&["remaining", "r"]) {
                info.remaining = Some(v);
            }
            if let Some(v) = get(&["reset", "t"]) {
                info.reset = Some(Duration::from_secs(v));
            }
            seen = true;
        }
        if let Some(field) = text(headers, "ratelimit-policy") {
            let params = params(&field);
            let first_number = field
                .split([',', ';'])
                .next()
                .and_then(|s| s.trim().parse::<u64>().ok());
            let quota = params
                .iter()
                .find(|(n, _)| n == "q")
                .and_then(|(_, v)| v.parse().ok())
                .or(first_number);
            if info.limit.is_none() {
                info.limit = quota;
            }
            if let Some(w) = params
                .iter()
                .find(|(n, _)| n == "w")
                .and_then(|(_, v)| v.parse::<u64>().ok())
            {
                info.window = Some(Duration::from_secs(w));
            }
            seen = true;
        }
        seen.then_some(info)
    }
}

/// `Retry-After` as seconds or as an HTTP date (a date in the past is zero).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // Some servers send fractions.
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs.min(1e9)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `X-RateLimit-Reset`'s number as a wait (see the module docs for the three forms).
fn reset_from_number(v: u64, now: SystemTime) -> Duration {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    if v >= 1_000_000_000_000 {
        Duration::from_millis(v).saturating_sub(since_epoch)
    } else if v >= 1_000_000_000 {
        Duration::from_secs(v).saturating_sub(since_epoch)
    } else {
        Duration::from_secs(v)
    }
}

fn text(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn number(headers: &HeaderMap, name: &str) -> Option<u64> {
    let v = headers.get(name)?.to_str().ok()?.trim();
    v.parse::<u64>().ok().or_else(|| {
        v.parse::<f64>()
            .ok()
            .filter(|f| *f >= 0.0)
            .map(|f| f as u64)
    })
}

/// The `name=value` parameters of a structured field, in order (the first wins).
fn params(field: &str) -> Vec<(String, String)> {
    field
        .split([',', ';'])
        .filter_map(|part| {
            let (k, v) = part.split_once('=')?;
            Some((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let now = at(NOW);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1.5")]), now),
            Some(Duration::from_millis(1500))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(120));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &date)]), now),
            Some(Duration::from_secs(120))
        );
        // RFC 850 and asctime forms are HTTP dates too.
        let later = at(NOW + 30);
        let rfc850 = "Friday, 15-Jan-27 08:00:30 GMT";
        let when = httpdate::parse_http_date(rfc850).expect("date");
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", rfc850)]),
                when - Duration::from_secs(30)
            ),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(5));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &past)]), later),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn x_ratelimit_reset_in_each_unit() {
        let now = at(NOW);
        let reset = |v: String| {
            RateInfo::parse(
                &headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &v)]),
                now,
            )
            .and_then(|i| i.reset)
        };
        assert_eq!(reset("30".into()), Some(Duration::from_secs(30)));
        assert_eq!(
            reset((NOW + 45).to_string()),
            Some(Duration::from_secs(45)),
            "epoch seconds"
        );
        assert_eq!(
            reset((NOW * 1000 + 2_500).to_string()),
            Some(Duration::from_millis(2_500)),
            "epoch milliseconds (Rocket.Chat)"
        );
        assert_eq!(reset((NOW - 10).to_string()), Some(Duration::ZERO));
        let info = RateInfo::parse(
            &headers(&[
                ("x-ratelimit-limit", "10"),
                ("x-ratelimit-remaining", "4"),
                ("x-ratelimit-reset", "60"),
            ]),
            now,
        )
        .expect("info");
        assert_eq!((info.limit, info.remaining), (Some(10), Some(4)));
    }

    #[test]
    fn ietf_fields_in_every_draft_form() {
        let now = at(NOW);
        let separate = RateInfo::parse(
            &headers(&[
                ("ratelimit-limit", "100"),
                ("ratelimit-remaining", "0"),
                ("ratelimit-reset", "12"),
            ]),
            now,
        )
        .expect("info");
        assert_eq!(
            (separate.limit, separate.remaining, separate.reset),
            (Some(100), Some(0), Some(Duration::from_secs(12)))
        );
        let dictionary = RateInfo::parse(
            &headers(&[
                ("ratelimit", "limit=10, remaining=3, reset=20"),
                ("ratelimit-policy", "10;w=60"),
            ]),
            now,
        )
        .expect("info");
        assert_eq!(
            dictionary,
            RateInfo {
                limit: Some(10),
                remaining: Some(3),
                reset: Some(Duration::from_secs(20)),
                window: Some(Duration::from_secs(60)),
            }
        );
        let item = RateInfo::parse(
            &headers(&[
                ("ratelimit", "\"default\";r=0;t=7"),
                ("ratelimit-policy", "\"default\";q=50;w=10"),
            ]),
            now,
        )
        .expect("info");
        assert_eq!(
            item,
            RateInfo {
                limit: Some(50),
                remaining: Some(0),
                reset: Some(Duration::from_secs(7)),
                window: Some(Duration::from_secs(10)),
            }
        );
        assert_eq!(
            RateInfo::parse(&headers(&[("content-type", "x")]), now),
            None
        );
    }
}
