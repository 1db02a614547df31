//! Sessions: a bearer token bought with a login, and the limits on logging in.
//!
//! Owns, per configured vendor (never process-wide: two vendor tables are two budgets):
//! the token, cached for its lifetime and renewed single-flight (one task renews while
//! the others wait for its result); renewal before expiry or after a 401 by *refreshing*
//! the token (the refresh token the vendor returns is kept for the next time), and a new
//! login only when the refresh is refused; and the login gate — at most `attempts`
//! logins in any `window`, no login at all while the vendor's login block lasts (a 429 on
//! login, for `Retry-After` or the documented block), and none for `FAILED_PAUSE` after a
//! failed login, so tasks queued behind a failed login do not each spend an attempt.
//!
//! The connector only says how to log in and refresh on the wire (`Authenticator`). The
//! login gate lives in the vendor's `Flow`, which the pass keeps in the store, so the
//! limit also holds across runs (a crash loop or a cron job every few seconds never
//! trips the vendor's block).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use reqwest::StatusCode;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{Flow, Reply};
use crate::budget::Budget;
use crate::config::Secret;

/// After a failed login (not a refusal), logins wait this long, so a burst of queued
/// tasks does not turn one outage into a login storm.
const FAILED_PAUSE: Duration = Duration::from_secs(5);
/// Renew this long before the token expires (at most a tenth of its lifetime).
const RENEW_MARGIN: Duration = Duration::from_secs(300);

/// How many logins a vendor allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimit {
    pub attempts: usize,
    pub window: Duration,
    /// How long logins are blocked after the vendor refuses one for its rate, when it
    /// does not say.
    pub block: Duration,
}

/// A token as a login or refresh returns it (`Debug` shows no secret: `Secret` redacts).
#[derive(Clone, Debug)]
pub struct Token {
    pub access: Secret,
    pub refresh: Option<Secret>,
    pub lifetime: Duration,
}

/// What a failed login or refresh means for the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// The credentials (or the refresh token) were refused.
    Refused,
    /// The vendor refused for its login rate, with its wait if it gave one.
    Throttled(Option<Duration>),
    /// No usable answer (transport, 5xx, garbage): try again later.
    Unavailable,
}

/// The connector's error type, as the session needs to see it.
pub trait AuthError: Clone + fmt::Display + Send + Sync {
    fn failure(&self) -> AuthFailure;
    /// The error for a login the gate did not allow: `wait` until one is allowed, and
    /// the last login's failure, if it failed.
    fn login_limited(limit: LoginLimit, wait: Duration, last: Option<String>) -> Self;
}

/// How to log in and refresh, on the wire.
#[async_trait]
pub trait Authenticator: Send + Sync {
    type Error: AuthError;
    async fn login(&self, budget: &Budget) -> Result<Token, Self::Error>;
    async fn refresh(
        &self,
        budget: &Budget,
        access: &Secret,
        refresh: &Secret,
    ) -> Result<Token, Self::Error>;
}

struct Live {
    access: Secret,
    refresh: Option<Secret>,
    renew_at: Instant,
    expires_at: Instant,
    /// Which token this is, so that a task that saw a 401 with an old token does not
    /// renew again what another task has just renewed.
    generation: u64,
}

/// Logins made and the vendor's block.
#[derive(Debug, Default)]
pub struct Gate {
    attempts: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

/// The gate as kept between runs, in wall-clock time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginLog {
    pub attempts: Vec<SystemTime>,
    pub blocked_until: Option<SystemTime>,
}

struct State<E> {
    live: Option<Live>,
    generations: u64,
    /// The last login's failure, when, and how long no login is tried after it.
    failed: Option<(Instant, E, Duration)>,
}

/// A token in use: the secret and its generation.
#[derive(Clone)]
pub struct Bearer {
    pub token: Secret,
    generation: u64,
}

pub struct Session<A: Authenticator> {
    name: String,
    auth: A,
    limit: LoginLimit,
    /// Holds the login gate.
    flow: Arc<Flow>,
    state: tokio::sync::Mutex<State<A::Error>>,
}

impl<A: Authenticator> Session<A> {
    pub fn new(name: &str, auth: A, limit: LoginLimit, flow: Arc<Flow>) -> Self {
        Self {
            name: name.to_string(),
            auth,
            limit,
            flow,
            state: tokio::sync::Mutex::new(State {
                live: None,
                generations: 0,
                failed: None,
            }),
        }
    }

    pub fn authenticator(&self) -> &A {
        &self.auth
    }

    /// A usable token, renewing it first when it is due.
    ///
    /// # Errors
    /// The renewal's failure, or the login gate's refusal.
    pub async fn bearer(&self, budget: &Budget) -> Result<Bearer, A::Error> {
        let mut st = self.state.lock().await;
        if let Some(live) = &st.live
            && Instant::now() < live.renew_at
        {
            return Ok(Bearer {
                token: live.access.clone(),
                generation: live.generation,
            });
        }
        self.renew(&mut st, budget).await
    }

    /// Sends with the token; on a 401, renews once and sends again.
    ///
    /// # Errors
    /// The session's or the call's error.
    pub async fn send<F, Fut>(&self, budget: &Budget, send: F) -> Result<Reply, A::Error>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<Reply, A::Error>>,
    {
        self.send_as(budget, send).await
    }

    /// `send` for a caller whose calls fail with an error type of its own (a source's
    /// read), which the session's errors convert into.
    ///
    /// # Errors
    /// The session's or the call's error.
    pub async fn send_as<F, Fut, E>(&self, budget: &Budget, send: F) -> Result<Reply, E>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<Reply, E>>,
        E: From<A::Error>,
    {
        let bearer = self.bearer(budget).await?;
        let reply = send(bearer.token.clone()).await?;
        if reply.status != StatusCode::UNAUTHORIZED {
            return Ok(reply);
        }
        debug!(vendor = %self.name, "The vendor refused the token; renewing it.");
        let bearer = self.renew_after_401(budget, bearer.generation).await?;
        send(bearer.token).await
    }

    async fn renew_after_401(&self, budget: &Budget, generation: u64) -> Result<Bearer, A::Error> {
        let mut st = self.state.lock().await;
        if let Some(live) = st.live.as_mut() {
            if live.generation != generation {
                return Ok(Bearer {
                    token: live.access.clone(),
                    generation: live.generation,
                });
            }
            // This token was refused: never hand it out again, even if a refresh fails.
            let now = Instant::now();
            live.renew_at = now;
            live.expires_at = now;
        }
        self.renew(&mut st, budget).await
    }

    /// Refreshes (or logs in when there is nothing to refresh, or the refresh is
    /// refused). Called with the lock held: one renewal at a time.
    async fn renew(&self, st: &mut State<A::Error>, budget: &Budget) -> Result<Bearer, A::Error> {
        if let Some(live) = &st.live
            && let Some(refresh) = live.refresh.clone()
        {
            match self.auth.refresh(budget, &live.access, &refresh).await {
                Ok(token) => return Ok(install(st, token)),
                Err(e) if e.failure() == AuthFailure::Refused => {
                    debug!(vendor = %self.name, "Token refresh refused; logging in again.");
                }
                // The vendor could not be asked: keep using the token while it lasts.
                Err(e) => {
                    if Instant::now() < live.expires_at {
                        return Ok(Bearer {
                            token: live.access.clone(),
                            generation: live.generation,
                        });
                    }
                    return Err(e);
                }
            }
        }
        self.login(st, budget).await
    }

    async fn login(&self, st: &mut State<A::Error>, budget: &Budget) -> Result<Bearer, A::Error> {
        let now = Instant::now();
        if let Some((at, e, pause)) = &st.failed
            && now.duration_since(*at) < *pause
        {
            return Err(e.clone());
        }
        let last = st.failed.as_ref().map(|(_, e, _)| e.to_string());
        if let Err(wait) = self.flow.login_gate(|g| g.reserve(now, self.limit)) {
            return Err(A::Error::login_limited(self.limit, wait, last));
        }
        debug!(vendor = %self.name, "Logging in.");
        match self.auth.login(budget).await {
            Ok(token) => {
                st.failed = None;
                Ok(install(st, token))
            }
            Err(e) => {
                // No login for a while after a failure: refused credentials are not tried
                // again within the window; after a 429 the gate's block says when.
                let pause = match e.failure() {
                    AuthFailure::Refused => self.limit.window,
                    AuthFailure::Unavailable => FAILED_PAUSE,
                    AuthFailure::Throttled(wait) => {
                        let wait = wait.unwrap_or(self.limit.block);
                        self.flow
                            .login_gate(|g| g.blocked_until = Some(Instant::now() + wait));
                        warn!(vendor = %self.name, wait_secs = wait.as_secs(), "The vendor refused the login for its login rate; no login will be tried until the block is over.");
                        Duration::ZERO
                    }
                };
                st.failed = Some((Instant::now(), e.clone(), pause));
                Err(e)
            }
        }
    }
}

fn install<E>(st: &mut State<E>, token: Token) -> Bearer {
    st.generations += 1;
    let now = Instant::now();
    let lifetime = token.lifetime;
    let live = Live {
        access: token.access,
        refresh: token.refresh,
        renew_at: now + lifetime.saturating_sub(RENEW_MARGIN.min(lifetime / 10)),
        expires_at: now + lifetime,
        generation: st.generations,
    };
    let bearer = Bearer {
        token: live.access.clone(),
        generation: live.generation,
    };
    st.live = Some(live);
    bearer
}

impl Gate {
    /// The gate in wall-clock time, for the store.
    pub fn log(&self) -> LoginLog {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let to_wall = |t: Instant| wall - now.saturating_duration_since(t);
        LoginLog {
            attempts: self.attempts.iter().map(|t| to_wall(*t)).collect(),
            blocked_until: self
                .blocked_until
                .map(|t| wall + t.saturating_duration_since(now)),
        }
    }

    /// Takes in what an earlier run logged (this run's own record wins where it has one).
    pub fn restore(&mut self, log: &LoginLog) {
        let (now, wall) = (Instant::now(), SystemTime::now());
        if self.attempts.is_empty() {
            let mut attempts: Vec<Instant> = log
                .attempts
                .iter()
                .filter_map(|t| now.checked_sub(wall.duration_since(*t).unwrap_or_default()))
                .collect();
            attempts.sort();
            self.attempts = attempts.into();
        }
        if let Some(until) = log.blocked_until {
            let until = now + until.duration_since(wall).unwrap_or_default();
            self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
        }
    }

    /// Whether nothing is worth keeping.
    pub fn is_empty(&self) -> bool {
        self.attempts.is_empty() && self.blocked_until.is_none()
    }

    /// Takes one login attempt, or says how long until one is allowed.
    fn reserve(&mut self, now: Instant, limit: LoginLimit) -> Result<(), Duration> {
        if let Some(until) = self.blocked_until {
            if now < until {
                return Err(until - now);
            }
            self.blocked_until = None;
        }
        while self
            .attempts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limit.window)
        {
            self.attempts.pop_front();
        }
        if self.attempts.len() >= limit.attempts {
            let oldest = self.attempts.front().copied().unwrap_or(now);
            return Err((oldest + limit.window).saturating_duration_since(now));
        }
        self.attempts.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
