//! Rocket.Chat's rate limiter: a fixed window per route and client, and the
//! `X-RateLimit-*` headers (reset in epoch milliseconds) on every limited reply.

use super::*;

pub(super) struct Limiter {
    /// `None`: off (the caller holds `api-bypass-rate-limit`): no headers either.
    pub(super) rule: Option<(u32, Duration)>,
    /// (route, client) → (window start in epoch ms, calls in the window).
    pub(super) windows: HashMap<String, (u64, u32)>,
}

/// What the limiter decided for one call.
pub(super) struct Limit {
    pub(super) limit: u32,
    pub(super) remaining: u32,
    pub(super) reset_ms: u64,
    pub(super) allowed: bool,
    pub(super) now_ms: u64,
}

impl Limiter {
    pub(super) fn hit(&mut self, key: String) -> Option<Limit> {
        let (calls, window) = self.rule?;
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let now_ms = epoch_ms();
        let entry = self.windows.entry(key).or_insert((now_ms, 0));
        if now_ms >= entry.0.saturating_add(window_ms) {
            *entry = (now_ms, 0);
        }
        entry.1 += 1;
        Some(Limit {
            limit: calls,
            remaining: calls.saturating_sub(entry.1),
            reset_ms: entry.0.saturating_add(window_ms),
            allowed: entry.1 <= calls,
            now_ms,
        })
    }
}

pub(super) fn with_limit_headers(mut response: Response, limit: Option<&Limit>) -> Response {
    if let Some(l) = limit {
        let h = response.headers_mut();
        for (k, v) in [
            ("x-ratelimit-limit", l.limit.to_string()),
            ("x-ratelimit-remaining", l.remaining.to_string()),
            ("x-ratelimit-reset", l.reset_ms.to_string()),
        ] {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(k, v);
            }
        }
    }
    response
}
