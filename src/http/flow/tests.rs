//! Flow control on tokio's paused clock: a simulated vendor answers, no HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use tokio::time::Instant;

use super::*;
use crate::http::Quiet;
use crate::retry::{Retry, Retryable, Verdict};
use crate::shutdown::Shutdown;

fn flow(ceiling: Option<f64>, per_route: bool) -> Flow {
    Flow::new(
        "v",
        FlowSettings {
            ceiling: ceiling.map(|c| (c, 1)),
            floor: None,
            per_route,
            ignore_windows: false,
        },
        Arc::new(Quiet),
    )
}

fn budget(secs: u64) -> Budget {
    Budget::new(
        Duration::from_secs(secs),
        Duration::from_secs(60),
        Shutdown::never(),
    )
}

fn ok(f: &Flow, t: Ticket<'_>) {
    f.learn(
        t,
        Observed::Reply {
            status: StatusCode::OK,
            headers: &HeaderMap::new(),
            throttled: None,
        },
    );
}

fn refused(f: &Flow, t: Ticket<'_>, wait: Option<Duration>) {
    f.learn(
        t,
        Observed::Reply {
            status: StatusCode::TOO_MANY_REQUESTS,
            headers: &HeaderMap::new(),
            throttled: Some(wait),
        },
    );
}

#[tokio::test(start_paused = true)]
async fn a_pause_holds_every_call_and_leaves_the_rate_alone() {
    let f = flow(Some(10.0), false);
    let b = budget(60);
    let t = f.admit("r", &b).await.expect("admitted");
    refused(&f, t, Some(Duration::from_secs(2)));
    assert_eq!(f.status().0, Some(10.0), "a pause is not a rate signal");
    let started = Instant::now();
    let t = f.admit("other route", &b).await.expect("admitted");
    assert!(started.elapsed() >= Duration::from_secs(2));
    ok(&f, t);
    assert_eq!(f.status(), (Some(10.0), None));
}

#[tokio::test(start_paused = true)]
async fn a_call_in_flight_that_succeeds_after_a_429_lifts_the_pause() {
    let f = flow(None, false);
    let b = budget(60);
    let refused_call = f.admit("r", &b).await.expect("admitted");
    let served_call = f.admit("r", &b).await.expect("admitted");
    tokio::time::advance(Duration::from_millis(50)).await;
    refused(&f, refused_call, Some(Duration::from_secs(1)));
    assert!(f.status().1.is_some(), "paused");
    ok(&f, served_call);
    assert_eq!(f.status().1, None, "the vendor served a call after the 429");
    let started = Instant::now();
    f.admit("r", &b).await.expect("admitted");
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn sixteen_bare_429s_in_one_burst_are_one_decrease() {
    let f = flow(Some(32.0), false);
    let b = budget(60);
    let mut tickets = Vec::new();
    for _ in 0..16 {
        tickets.push(f.admit("r", &b).await.expect("admitted"));
    }
    tokio::time::advance(Duration::from_millis(50)).await;
    for t in tickets {
        refused(&f, t, None);
    }
    assert_eq!(f.status().0, Some(16.0));
}

#[tokio::test(start_paused = true)]
async fn a_long_pause_fails_at_once_and_names_it() {
    let f = flow(None, false);
    let b = budget(600);
    let t = f.admit("r", &b).await.expect("admitted");
    refused(&f, t, Some(Duration::from_secs(86_400)));
    let started = Instant::now();
    match f.admit("r", &b).await {
        Err(NotSent::Held { waiting, left, .. }) => {
            assert_eq!(waiting, Waiting::VendorPause);
            assert!(left > Duration::from_secs(86_000));
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("admitted during a day's pause"),
    }
    assert_eq!(started.elapsed(), Duration::ZERO);
    let message = NotSent::Held {
        waiting: Waiting::VendorPause,
        left: Duration::from_secs(86_400),
        max_hold: Duration::from_secs(60),
    }
    .to_string();
    assert!(
        message.contains("the vendor's requested pause") && message.contains("max_interval_secs"),
        "{message}"
    );
    // The next pass asks again: holds do not outlive a pass.
    f.start_pass(None, None);
    assert!(f.admit("r", &b).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn waits_end_on_shutdown_and_never_outlast_the_budget() {
    let f = flow(None, false);
    let t = f.admit("r", &budget(60)).await.expect("admitted");
    refused(&f, t, Some(Duration::from_secs(30)));
    // 30 s of pause does not fit into 10 s of budget: refused at once.
    let short = budget(10);
    let started = Instant::now();
    assert!(matches!(
        f.admit("r", &short).await,
        Err(NotSent::OutOfTime {
            waiting: Waiting::VendorPause,
            ..
        })
    ));
    assert_eq!(started.elapsed(), Duration::ZERO);
    // Shutdown ends the wait the moment it fires.
    let (trigger, shutdown) = crate::shutdown::channel();
    let b = Budget::new(Duration::from_secs(600), Duration::from_secs(60), shutdown);
    let fire = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        trigger.trigger();
    };
    let (admitted, ()) = tokio::join!(f.admit("r", &b), fire);
    assert!(matches!(admitted, Err(NotSent::Shutdown)));
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn the_configured_limit_spaces_calls() {
    let f = flow(Some(4.0), false);
    let b = budget(60);
    let started = Instant::now();
    for _ in 0..9 {
        let t = f.admit("r", &b).await.expect("admitted");
        ok(&f, t);
    }
    // 9 calls at 4/s: the first at once, then every 250 ms.
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

fn limit_headers(remaining: u64, reset_in: Duration) -> HeaderMap {
    let reset_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .saturating_add(reset_in)
        .as_millis();
    let mut h = HeaderMap::new();
    h.insert("x-ratelimit-limit", HeaderValue::from_static("10"));
    h.insert(
        "x-ratelimit-remaining",
        HeaderValue::from_str(&remaining.to_string()).expect("v"),
    );
    h.insert(
        "x-ratelimit-reset",
        HeaderValue::from_str(&reset_ms.to_string()).expect("v"),
    );
    h
}

#[tokio::test(start_paused = true)]
async fn per_route_windows_come_from_the_headers_and_one_call_probes_an_unknown_route() {
    let f = flow(None, true);
    let b = budget(600);
    let first = f.admit("GET users.info", &b).await.expect("probe");
    // While the probe is out, a second call on the same route waits for its answer.
    let waiting = async {
        let t = f.admit("GET users.info", &b).await.expect("admitted");
        (Instant::now(), t)
    };
    let answer = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        f.learn(
            first,
            Observed::Reply {
                status: StatusCode::OK,
                headers: &limit_headers(1, Duration::from_secs(2)),
                throttled: None,
            },
        );
        Instant::now()
    };
    let ((admitted_at, second), answered_at) = tokio::join!(waiting, answer);
    assert!(admitted_at >= answered_at);
    // The window's last call went to `second`: a third waits for the reset (about 2 s).
    f.learn(
        second,
        Observed::Reply {
            status: StatusCode::OK,
            headers: &limit_headers(0, Duration::from_secs(2)),
            throttled: None,
        },
    );
    let started = Instant::now();
    let third = f.admit("GET users.info", &b).await.expect("after reset");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1800) && waited <= Duration::from_millis(2500),
        "{waited:?}"
    );
    // Another route is not held up by this one.
    let started = Instant::now();
    let other = f.admit("POST users.create", &b).await.expect("other route");
    assert_eq!(started.elapsed(), Duration::ZERO);
    ok(&f, third);
    ok(&f, other);
}

#[derive(Debug)]
struct Limited(Option<Duration>);

impl Retryable for Limited {
    fn verdict(&self) -> Verdict {
        match self.0 {
            Some(d) => Verdict::After(d),
            None => Verdict::Backoff,
        }
    }
}

/// The issue's case: half of all calls answered 429 with `Retry-After: 1` (the same call
/// never refused more than twice in a row); 10 people at concurrency 4 take seconds.
#[tokio::test(start_paused = true)]
async fn random_429s_with_retry_after_still_finish_a_ten_person_pass_in_seconds() {
    let f = flow(None, false);
    let b = budget(900);
    let retry = Retry::new(crate::config::RetrySettings::default());
    let coin = AtomicU32::new(0x2545_f491);
    let flip = || {
        // xorshift: a fixed, even mix of heads and tails.
        let mut x = coin.load(Ordering::SeqCst);
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        coin.store(x, Ordering::SeqCst);
        x.is_multiple_of(2)
    };
    let refusals = AtomicU32::new(0);
    let started = Instant::now();
    let ops = (0..10).map(|_| {
        let in_a_row = AtomicU32::new(0);
        let (f, b, retry, flip, refusals) = (&f, &b, &retry, &flip, &refusals);
        async move {
            retry
                .run(
                    b,
                    || async {
                        let t = f.admit("r", b).await.map_err(|_| Limited(None))?;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        if in_a_row.load(Ordering::SeqCst) < 2 && flip() {
                            in_a_row.fetch_add(1, Ordering::SeqCst);
                            refusals.fetch_add(1, Ordering::SeqCst);
                            refused(f, t, Some(Duration::from_secs(1)));
                            return Err(Limited(Some(Duration::from_secs(1))));
                        }
                        in_a_row.store(0, Ordering::SeqCst);
                        ok(f, t);
                        Ok(())
                    },
                    |_, _| {},
                )
                .await
        }
    });
    let results: Vec<Result<(), Limited>> = futures::stream::iter(ops)
        .buffer_unordered(4)
        .collect()
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(
        refusals.load(Ordering::SeqCst) >= 5,
        "the vendor did refuse"
    );
    let took = started.elapsed();
    assert!(took <= Duration::from_secs(10), "took {took:?}");
}
