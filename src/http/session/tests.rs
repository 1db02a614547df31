//! Sessions against a scripted authenticator, on tokio's paused clock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use reqwest::header::HeaderMap;

use super::*;

#[derive(Debug, Clone, PartialEq)]
enum E {
    Refused,
    Down,
    Throttled(Option<Duration>),
    Limited(Duration, Option<String>),
}

impl fmt::Display for E {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused => f.write_str("login refused"),
            Self::Down => f.write_str("server error 502"),
            Self::Throttled(_) => f.write_str("429 on login"),
            Self::Limited(wait, last) => {
                write!(f, "login limit, {}s; last: {last:?}", wait.as_secs())
            }
        }
    }
}

impl AuthError for E {
    fn failure(&self) -> AuthFailure {
        match self {
            Self::Refused => AuthFailure::Refused,
            Self::Down | Self::Limited(..) => AuthFailure::Unavailable,
            Self::Throttled(w) => AuthFailure::Throttled(*w),
        }
    }

    fn login_limited(_: LoginLimit, wait: Duration, last: Option<String>) -> Self {
        Self::Limited(wait, last)
    }
}

#[derive(Default)]
struct Fake {
    logins: AtomicU32,
    refreshes: AtomicU32,
    /// What the next logins answer (an empty script: success).
    login_script: Mutex<Vec<E>>,
    refresh_refused: std::sync::atomic::AtomicBool,
    /// The refresh tokens the refreshes were given.
    refreshed_with: Mutex<Vec<String>>,
}

fn token(n: u32) -> Token {
    Token {
        access: Secret::new(format!("access-{n}")),
        refresh: Some(Secret::new(format!("refresh-{n}"))),
        lifetime: Duration::from_secs(3600),
    }
}

#[async_trait]
impl Authenticator for Fake {
    type Error = E;

    async fn login(&self, _: &Budget) -> Result<Token, E> {
        let n = self.logins.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut script = self.login_script.lock().expect("lock");
        if !script.is_empty() {
            return Err(script.remove(0));
        }
        Ok(token(n * 100))
    }

    async fn refresh(&self, _: &Budget, _: &Secret, refresh: &Secret) -> Result<Token, E> {
        let n = self.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
        self.refreshed_with
            .lock()
            .expect("lock")
            .push(refresh.expose().to_string());
        if self.refresh_refused.load(Ordering::SeqCst) {
            return Err(E::Refused);
        }
        Ok(token(n))
    }
}

const LIMIT: LoginLimit = LoginLimit {
    attempts: 4,
    window: Duration::from_secs(60),
    block: Duration::from_secs(3600),
};

fn session() -> Session<Fake> {
    let flow = Flow::new(
        "tm",
        super::super::FlowSettings::default(),
        Arc::new(super::super::Quiet),
    );
    Session::new("tm", Fake::default(), LIMIT, Arc::new(flow))
}

fn reply(status: u16) -> Reply {
    Reply {
        status: StatusCode::from_u16(status).expect("status"),
        headers: HeaderMap::new(),
        body: String::new(),
        url: "http://h/x".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_login() {
    let s = session();
    let b = Budget::unlimited();
    let all = futures::future::join_all((0..8).map(|_| s.bearer(&b))).await;
    assert!(all.iter().all(Result::is_ok));
    assert_eq!(s.authenticator().logins.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_401_refreshes_with_the_newest_refresh_token_and_logs_in_only_when_refused() {
    let s = session();
    let b = Budget::unlimited();
    let sent = Mutex::new(Vec::new());
    let send = |token: Secret| {
        let first = sent.lock().expect("lock").is_empty();
        sent.lock().expect("lock").push(token.expose().to_string());
        async move { Ok::<_, E>(reply(if first { 401 } else { 200 })) }
    };
    let r = s.send(&b, send).await.expect("sent");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        *sent.lock().expect("lock"),
        ["access-100", "access-1"],
        "login, then one refresh after the 401"
    );
    // A second 401 refreshes again with the refresh token the first refresh returned.
    sent.lock().expect("lock").clear();
    s.send(&b, send).await.expect("sent");
    let fake = s.authenticator();
    assert_eq!(
        *fake.refreshed_with.lock().expect("lock"),
        ["refresh-100", "refresh-1"]
    );
    assert_eq!(fake.logins.load(Ordering::SeqCst), 1);
    // A refused refresh falls back to one login.
    fake.refresh_refused.store(true, Ordering::SeqCst);
    sent.lock().expect("lock").clear();
    s.send(&b, send).await.expect("sent");
    assert_eq!(fake.logins.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_login_pauses_logins_and_says_what_happened() {
    let s = session();
    let b = Budget::unlimited();
    *s.authenticator().login_script.lock().expect("lock") = vec![E::Down; 10];
    // Queued callers get the failure itself, without spending more attempts.
    let all = futures::future::join_all((0..4).map(|_| s.bearer(&b))).await;
    assert!(all.iter().all(|r| matches!(r, Err(E::Down))));
    assert_eq!(s.authenticator().logins.load(Ordering::SeqCst), 1);
    // After the pause, logins are tried again, up to the limit per window...
    for _ in 0..3 {
        tokio::time::advance(FAILED_PAUSE).await;
        assert!(matches!(s.bearer(&b).await, Err(E::Down)));
    }
    assert_eq!(s.authenticator().logins.load(Ordering::SeqCst), 4);
    tokio::time::advance(FAILED_PAUSE).await;
    // ...and then the limit says so, naming the last real failure.
    match s.bearer(&b).await {
        Err(E::Limited(wait, Some(last))) => {
            assert!(wait <= LIMIT.window);
            assert_eq!(last, "server error 502");
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("logged in"),
    }
    assert_eq!(s.authenticator().logins.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn a_429_on_login_blocks_logins_for_its_wait_or_the_documented_block() {
    let s = session();
    let b = Budget::unlimited();
    *s.authenticator().login_script.lock().expect("lock") = vec![E::Throttled(None)];
    assert!(matches!(s.bearer(&b).await, Err(E::Throttled(None))));
    tokio::time::advance(Duration::from_secs(120)).await;
    match s.bearer(&b).await {
        Err(E::Limited(wait, _)) => assert!(wait > Duration::from_secs(3000), "{wait:?}"),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("logged in during the block"),
    }
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert!(s.bearer(&b).await.is_ok());
    assert_eq!(s.authenticator().logins.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn the_login_log_survives_a_new_session() {
    let s = session();
    let b = Budget::unlimited();
    for _ in 0..4 {
        s.bearer(&b).await.expect("login");
        let mut st = s.state.lock().await;
        st.live = None;
    }
    let log = s.flow.login_log().expect("logins to keep");
    assert_eq!(log.attempts.len(), 4);
    // A new run (a new flow and session) restored from the log may not log in yet.
    let fresh = session();
    fresh.flow.start_pass(None, Some(&log));
    assert!(matches!(fresh.bearer(&b).await, Err(E::Limited(..))));
    assert_eq!(fresh.authenticator().logins.load(Ordering::SeqCst), 0);
    tokio::time::advance(LIMIT.window).await;
    assert!(fresh.bearer(&b).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn refused_credentials_are_not_tried_again_within_the_window() {
    let s = session();
    let b = Budget::unlimited();
    *s.authenticator().login_script.lock().expect("lock") = vec![E::Refused];
    assert!(matches!(s.bearer(&b).await, Err(E::Refused)));
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(matches!(s.bearer(&b).await, Err(E::Refused)));
    assert_eq!(s.authenticator().logins.load(Ordering::SeqCst), 1);
    tokio::time::advance(Duration::from_secs(31)).await;
    assert!(s.bearer(&b).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn logins_are_limited_per_vendor_and_a_block_outlasts_the_window() {
    let mut gate = Gate::default();
    let now = Instant::now();
    for _ in 0..LIMIT.attempts {
        gate.reserve(now, LIMIT).expect("within the limit");
    }
    let wait = gate.reserve(now, LIMIT).expect_err("over the limit");
    assert!(wait > Duration::ZERO && wait <= LIMIT.window, "{wait:?}");
    // A new window admits logins again; a block holds them past it.
    let later = now + LIMIT.window;
    gate.blocked_until = Some(later + Duration::from_secs(600));
    let wait = gate.reserve(later, LIMIT).expect_err("blocked");
    assert_eq!(wait, Duration::from_secs(600));
    let after = later + Duration::from_secs(600);
    gate.reserve(after, LIMIT).expect("the block is over");
}
