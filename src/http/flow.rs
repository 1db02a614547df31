//! Flow control for one remote (a vendor, or a source's API): every call is admitted
//! here before it is sent and reported here when it is answered.
//!
//! Owns, per remote: the configured limit and the congestion controller (`congestion.rs`)
//! as an even spacing of calls; the vendor-wide hold (a `Retry-After` pause); and the
//! rate-limit windows the remote announces in its headers — per route where the remote
//! limits each route on its own (Rocket.Chat), else one for all calls. Every wait is taken
//! from the pass's `Budget` (it ends at once on shutdown and never outlasts the pass), and
//! a pause longer than `retry.max_interval_secs` is not waited for at all: the call fails
//! at once, saying so, and the next pass tries again.
//!
//! A pause holds every call to the vendor (RFC 6585: "before making a new request") —
//! unless the vendor served another call while the refused one was in flight, or serves
//! one that was in flight when the 429 came back: it is still serving others, so the
//! pause was about that request alone, and only it waits its `Retry-After` (the retry
//! policy's wait). A vendor that refuses some calls at random is then not paused as a
//! whole for every refusal.
//!
//! Holds do not outlive a pass (`start_pass` clears them): a vendor that asked for a day's
//! pause is asked again by the next pass's first call. Route windows do, since they carry
//! the server's own reset time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use tokio::time::Instant;
use tracing::{debug, info};

use super::Observer;
use super::congestion::{Controller, Hint};
use super::headers::RateInfo;
use super::session::{Gate, LoginLog};
use crate::budget::Budget;

mod not_sent;
mod spacing;
pub use not_sent::{NotSent, Waiting};
use spacing::{achieved, reserve, tolerance};

/// Added to a server's reset time against clock granularity and small skew.
const RESET_MARGIN: Duration = Duration::from_millis(150);
/// Resets closer than this belong to the same window (servers compute Reset per reply).
const SAME_WINDOW: Duration = Duration::from_millis(500);
/// How often a call waiting for a probe's answer looks again.
const PROBE_POLL: Duration = Duration::from_millis(20);
/// The achieved rate is measured over this long.
const ACHIEVED_WINDOW: Duration = Duration::from_secs(1);

/// A remote's limits from the config.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FlowSettings {
    /// `rate_limit`: calls per second, and the burst allowed at that rate.
    pub ceiling: Option<(f64, u32)>,
    /// `min_rate`: the congestion floor (calls per second).
    pub floor: Option<f64>,
    /// The remote limits each route on its own (Rocket.Chat): its windows and holds are
    /// kept per route, and a route nothing is known of is probed by one call at a time.
    pub per_route: bool,
    /// Do not wait for the windows the remote's rate-limit fields announce (the remote's
    /// 429s still pause calls).
    pub ignore_windows: bool,
}

/// How a call ended, for `Flow::learn`.
pub enum Observed<'a> {
    Reply {
        status: StatusCode,
        headers: &'a HeaderMap,
        /// `Some` when the remote refused the call for its rate (a 429, or a vendor's own
        /// way of saying so), with the wait it asked for, if any.
        throttled: Option<Option<Duration>>,
    },
    /// No reply (transport failure, timeout).
    NoReply,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    /// Nothing known: where routes are limited separately, one call probes at a time.
    Unknown,
    /// The remote sends no rate-limit fields here.
    Unlimited,
    /// Calls left in the current window (net of reserved ones) and when it resets.
    Limited { remaining: u64, reset: Instant },
}

#[derive(Debug, Clone, Copy)]
struct RouteState {
    window: Window,
    in_flight: u64,
}

/// A vendor-wide pause: until when, and since when (calls sent before `since` that
/// succeed afterwards lift it).
#[derive(Debug, Clone, Copy)]
struct Hold {
    until: Instant,
    since: Instant,
}

struct State {
    controller: Controller,
    /// Theoretical arrival time of the next call (GCRA): calls are spaced by 1/rate.
    tat: Option<Instant>,
    hold: Option<Hold>,
    /// When the last successful reply came back.
    last_success: Option<Instant>,
    routes: HashMap<String, RouteState>,
    admitted: VecDeque<Instant>,
}

/// One remote's flow control, shared by all of its calls (and kept across passes).
pub struct Flow {
    name: String,
    settings: FlowSettings,
    state: Mutex<State>,
    /// Logins made and the vendor's login block (`session.rs`), kept with the rest of
    /// this remote's flow state so the pass can keep it between runs.
    logins: Mutex<Gate>,
    observer: Arc<dyn Observer>,
}

/// An admitted call. Report its outcome with `Flow::learn`; dropped unreported (the call
/// was cancelled), it frees its slot.
pub struct Ticket<'a> {
    flow: &'a Flow,
    key: String,
    route: String,
    sent_at: Instant,
    open: bool,
}

impl Ticket<'_> {
    pub fn sent_at(&self) -> Instant {
        self.sent_at
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.open
            && let Some(st) = self.flow.lock().routes.get_mut(&self.key)
        {
            st.in_flight = st.in_flight.saturating_sub(1);
        }
    }
}

impl Flow {
    pub fn new(name: &str, settings: FlowSettings, observer: Arc<dyn Observer>) -> Self {
        let controller = Controller::new(settings.ceiling.map(|c| c.0), settings.floor, None);
        Self {
            name: name.to_string(),
            settings,
            state: Mutex::new(State {
                controller,
                tat: None,
                hold: None,
                last_success: None,
                routes: HashMap::new(),
                admitted: VecDeque::new(),
            }),
            logins: Mutex::new(Gate::default()),
            observer,
        }
    }

    /// Works on the login gate (see `session.rs`).
    pub fn login_gate<R>(&self, f: impl FnOnce(&mut Gate) -> R) -> R {
        f(&mut self.logins.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The login gate as kept between runs; `None` when nothing is worth keeping.
    pub fn login_log(&self) -> Option<LoginLog> {
        self.login_gate(|g| (!g.is_empty()).then(|| g.log()))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn settings(&self) -> &FlowSettings {
        &self.settings
    }

    /// A new pass: drops holds, starts the rate from `hint` (what an earlier pass
    /// learned, with its age) or from the configured limit, and takes in the logins an
    /// earlier run made.
    pub fn start_pass(&self, hint: Option<Hint>, logins: Option<&LoginLog>) {
        if let Some(log) = logins {
            self.login_gate(|g| g.restore(log));
        }
        let mut st = self.lock();
        st.controller = Controller::new(
            self.settings.ceiling.map(|c| c.0),
            self.settings.floor,
            hint,
        );
        st.hold = None;
        st.tat = None;
        if let Some(rate) = st.controller.rate().filter(|_| hint.is_some()) {
            info!(remote = %self.name, rate_per_sec = rate, "Starting below the configured rate: an earlier pass was rate limited.");
        }
        self.report(&st, Instant::now());
    }

    /// What this pass learned, to keep for the next one (see `congestion.rs`).
    pub fn hint(&self) -> Option<f64> {
        self.lock().controller.hint()
    }

    /// The current rate (`None`: unlimited) and the vendor-wide hold left.
    pub fn status(&self) -> (Option<f64>, Option<Duration>) {
        let st = self.lock();
        let now = Instant::now();
        (
            st.controller.rate(),
            st.hold.map(|h| h.until.saturating_duration_since(now)),
        )
    }

    fn key(&self, route: &str) -> String {
        if self.settings.per_route {
            route.to_string()
        } else {
            String::new()
        }
    }

    /// Waits until a call on `route` may be sent.
    ///
    /// # Errors
    /// Shutdown, the pass budget, or a pause longer than the budget's `max_hold`.
    pub async fn admit(&self, route: &str, budget: &Budget) -> Result<Ticket<'_>, NotSent> {
        let key = self.key(route);
        loop {
            budget
                .check()
                .map_err(|s| NotSent::from_stop(s, Waiting::Pacing))?;
            let (wait, waiting) = {
                let mut st = self.lock();
                match self.next_wait(&mut st, &key, route, budget.max_hold())? {
                    None => {
                        let now = Instant::now();
                        reserve(&mut st, &key, now, self.settings.ceiling);
                        return Ok(Ticket {
                            flow: self,
                            key,
                            route: route.to_string(),
                            sent_at: now,
                            open: true,
                        });
                    }
                    Some(w) => w,
                }
            };
            if wait >= Duration::from_secs(5) {
                info!(remote = %self.name, route, wait_ms = wait.as_millis() as u64, waiting = %waiting, "Waiting before the next call.");
            } else if wait > PROBE_POLL {
                debug!(remote = %self.name, route, wait_ms = wait.as_millis() as u64, waiting = %waiting, "Waiting before the next call.");
            }
            budget
                .wait(wait)
                .await
                .map_err(|s| NotSent::from_stop(s, waiting))?;
        }
    }

    /// How long the next call on `key` must wait, and for what; `None`: send now.
    fn next_wait(
        &self,
        st: &mut State,
        key: &str,
        route: &str,
        max_hold: Duration,
    ) -> Result<Option<(Duration, Waiting)>, NotSent> {
        let now = Instant::now();
        let held = |left: Duration, waiting: Waiting| -> Result<_, NotSent> {
            if left > max_hold {
                Err(NotSent::Held {
                    waiting,
                    left,
                    max_hold,
                })
            } else {
                Ok(Some((left, waiting)))
            }
        };
        if let Some(hold) = st.hold {
            if hold.until > now {
                return held(hold.until - now, Waiting::VendorPause);
            }
            st.hold = None;
        }
        let route_state = st.routes.entry(key.to_string()).or_insert(RouteState {
            window: Window::Unknown,
            in_flight: 0,
        });
        if let Window::Limited { reset, .. } = route_state.window
            && now >= reset + RESET_MARGIN
        {
            route_state.window = Window::Unknown;
        }
        match route_state.window {
            Window::Unknown
                if self.settings.per_route
                    && !self.settings.ignore_windows
                    && route_state.in_flight > 0 =>
            {
                return Ok(Some((PROBE_POLL, Waiting::Window(route.to_string()))));
            }
            Window::Limited {
                remaining: 0,
                reset,
            } => {
                return held(
                    (reset + RESET_MARGIN).saturating_duration_since(now),
                    Waiting::Window(route.to_string()),
                );
            }
            _ => {}
        }
        if let (Some(rate), Some(tat)) = (st.controller.rate(), st.tat) {
            let allowed = tat.checked_sub(tolerance(rate, self.burst(st)));
            if let Some(at) = allowed.filter(|at| *at > now) {
                return Ok(Some((at - now, Waiting::Pacing)));
            }
        }
        Ok(None)
    }

    fn burst(&self, st: &State) -> u32 {
        match (self.settings.ceiling, st.controller.rate()) {
            (Some((c, burst)), Some(r)) if r >= c => burst,
            _ => 1,
        }
    }

    /// Learns from how an admitted call ended.
    pub fn learn(&self, mut ticket: Ticket<'_>, observed: Observed<'_>) {
        ticket.open = false;
        let mut st = self.lock();
        let now = Instant::now();
        if let Some(rs) = st.routes.get_mut(&ticket.key) {
            rs.in_flight = rs.in_flight.saturating_sub(1);
        }
        let Observed::Reply {
            status,
            headers,
            throttled,
        } = observed
        else {
            return;
        };
        let info = RateInfo::parse(headers, SystemTime::now());
        match throttled {
            Some(wait) => {
                self.observer.throttled(&self.name, &ticket.route);
                match wait.filter(|w| !w.is_zero()) {
                    Some(wait) if self.settings.per_route => {
                        if let Some(rs) = st.routes.get_mut(&ticket.key) {
                            rs.window = Window::Limited {
                                remaining: 0,
                                reset: now + wait,
                            };
                        }
                    }
                    // Served others while this one was in flight: only it waits.
                    Some(_) if st.last_success.is_some_and(|t| t > ticket.sent_at) => {}
                    Some(wait) => {
                        let until = now + wait;
                        st.hold = Some(match st.hold {
                            Some(h) => Hold {
                                until: h.until.max(until),
                                since: h.since,
                            },
                            None => Hold { until, since: now },
                        });
                        debug!(remote = %self.name, wait_ms = wait.as_millis() as u64, "The vendor asked for a pause.");
                    }
                    None => {
                        let achieved = achieved(&mut st.admitted, now);
                        if st.controller.on_congestion(ticket.sent_at, now, achieved) {
                            info!(remote = %self.name, rate_per_sec = st.controller.rate().unwrap_or(0.0), "Rate limited without a hint; slowing down.");
                        }
                    }
                }
            }
            None => {
                if let Some(rs) = st.routes.get_mut(&ticket.key)
                    && !self.settings.ignore_windows
                {
                    learn_window(rs, info, status, now, self.settings.per_route);
                }
                // Served while the others were refused: not a pause for everyone.
                if status.is_success() {
                    st.last_success = Some(now);
                    if st.hold.is_some_and(|h| ticket.sent_at < h.since) {
                        debug!(remote = %self.name, "A call in flight succeeded after a 429: only the refused calls wait.");
                        st.hold = None;
                    }
                }
                if !status.is_server_error() && st.controller.on_success(now) {
                    debug!(remote = %self.name, rate_per_sec = ?st.controller.rate(), "Pacing rate raised.");
                }
            }
        }
        self.report(&st, now);
    }

    fn report(&self, st: &State, now: Instant) {
        self.observer.pacing(
            &self.name,
            st.controller.rate(),
            st.hold.map(|h| h.until.saturating_duration_since(now)),
        );
    }
}

/// A reply's rate-limit fields (or their absence) into the route's window.
fn learn_window(
    rs: &mut RouteState,
    info: Option<RateInfo>,
    status: StatusCode,
    now: Instant,
    per_route: bool,
) {
    let others = rs.in_flight;
    match info.and_then(|i| Some((i.remaining?, i.reset?))) {
        Some((remaining, reset)) => {
            let reset = now + reset;
            rs.window = match rs.window {
                Window::Limited {
                    remaining: cur,
                    reset: cur_reset,
                } if abs_diff(cur_reset, reset) <= SAME_WINDOW => Window::Limited {
                    remaining: cur.min(remaining),
                    reset: cur_reset.max(reset),
                },
                // A late reply from an earlier window tells nothing new.
                Window::Limited {
                    reset: cur_reset, ..
                } if reset < cur_reset => rs.window,
                // A new window: calls still in flight may not be counted in it yet.
                _ => Window::Limited {
                    remaining: remaining.saturating_sub(others),
                    reset,
                },
            };
        }
        None if status.is_success() && per_route => rs.window = Window::Unlimited,
        None if status.is_success() && rs.window == Window::Unknown => {
            rs.window = Window::Unlimited;
        }
        None => {}
    }
}

fn abs_diff(a: Instant, b: Instant) -> Duration {
    if a > b { a - b } else { b - a }
}

#[cfg(test)]
mod tests;
