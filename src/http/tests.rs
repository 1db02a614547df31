//! The client against small local servers (127.0.0.1:0): redirects, body caps, retries.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap as AxumHeaders, StatusCode as AxumStatus};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::*;
use crate::shutdown::Shutdown;

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn http() -> Http {
    Http::new(Options {
        name: "motive",
        timeout: Duration::from_secs(5),
        flow: FlowSettings::default(),
        retry: RetrySettings {
            initial_interval_ms: 10,
            max_interval_secs: 2,
            max_elapsed_secs: 10,
            pass_budget_secs: 30,
            request_timeout_secs: 5,
        },
        observer: Arc::new(Quiet),
    })
    .expect("client")
}

fn budget() -> Budget {
    Budget::new(
        Duration::from_secs(30),
        Duration::from_secs(5),
        Shutdown::never(),
    )
}

const KEY: &str = "sk-live-hunter2";

#[tokio::test]
async fn a_redirect_to_another_origin_is_never_followed_and_names_the_target() {
    let stolen: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&stolen);
    let elsewhere = serve(Router::new().fallback(move |headers: AxumHeaders| {
        let seen = Arc::clone(&seen);
        async move {
            let mut seen = seen.lock().expect("lock");
            for (k, v) in &headers {
                seen.push(format!("{k}: {}", v.to_str().unwrap_or_default()));
            }
            "{}"
        }
    }))
    .await;
    for status in [301u16, 302, 307, 308] {
        let target = format!("{elsewhere}/steal");
        let home = serve(Router::new().fallback(move || {
            let target = target.clone();
            async move {
                Response::builder()
                    .status(status)
                    .header("location", target)
                    .body(Body::empty())
                    .expect("response")
            }
        }))
        .await;
        let h = http();
        let url = Url::parse(&format!("{home}/v1/users")).expect("url");
        let request = h
            .request(Method::POST, url)
            .header("X-Api-Key", KEY)
            .body("{\"password\":\"pw\"}");
        let e = h
            .send(&budget(), "POST /v1/users", BodyCap::WRITE, request)
            .await
            .expect_err("a redirect elsewhere is an error");
        let text = e.to_string();
        assert!(
            matches!(e, Error::Redirect { .. })
                && text.contains("motive")
                && text.contains(&elsewhere.replace("http://", "")),
            "{text}"
        );
        assert!(!text.contains(KEY), "{text}");
    }
    assert!(
        stolen.lock().expect("lock").is_empty(),
        "the other host was called"
    );
}

#[tokio::test]
async fn a_redirect_within_the_origin_is_followed() {
    let app = Router::new()
        .route(
            "/old",
            get(|| async {
                Response::builder()
                    .status(308)
                    .header("location", "/new")
                    .body(Body::empty())
                    .expect("response")
            }),
        )
        .route(
            "/new",
            get(|headers: AxumHeaders| async move {
                match headers.get("x-api-key") {
                    Some(k) if k == KEY => (AxumStatus::OK, "{\"ok\":true}"),
                    _ => (AxumStatus::UNAUTHORIZED, "{}"),
                }
            }),
        );
    let base = serve(app).await;
    let h = http();
    let request = h
        .request(
            Method::GET,
            Url::parse(&format!("{base}/old")).expect("url"),
        )
        .header("X-Api-Key", KEY);
    let reply = h
        .send(&budget(), "GET /old", BodyCap::READ, request)
        .await
        .expect("followed");
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.url.ends_with("/new"), "{}", reply.url);
}

#[tokio::test]
async fn replies_over_the_cap_are_refused_whether_sized_or_chunked() {
    let app = Router::new()
        .route("/sized", get(|| async { "x".repeat(2 << 20) }))
        .route(
            "/chunked",
            get(|| async {
                let chunks = futures::stream::iter(
                    (0..64).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 64 * 1024])),
                );
                Body::from_stream(chunks).into_response()
            }),
        )
        .route("/small", get(|| async { "{\"id\":1}" }));
    let base = serve(app).await;
    let h = http();
    for path in ["/sized", "/chunked"] {
        let request = h.request(
            Method::GET,
            Url::parse(&format!("{base}{path}")).expect("url"),
        );
        let e = h
            .send(&budget(), path, BodyCap::WRITE, request)
            .await
            .expect_err("too large");
        assert!(matches!(e, Error::TooLarge(_)), "{path}: {e}");
        assert!(e.to_string().contains("1024 KiB"), "{e}");
    }
    // The same reply fits a page's cap.
    let request = h.request(
        Method::GET,
        Url::parse(&format!("{base}/chunked")).expect("url"),
    );
    let reply = h
        .send(&budget(), "/chunked", BodyCap::PAGE, request)
        .await
        .expect("a page may be large");
    assert_eq!(reply.body.len(), 64 * 64 * 1024);
    let request = h.request(
        Method::GET,
        Url::parse(&format!("{base}/small")).expect("url"),
    );
    assert!(
        h.send(&budget(), "/small", BodyCap::WRITE, request)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn fetch_waits_out_429s_and_counts_only_other_failures_as_retries() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let base = serve(Router::new().fallback(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            match n {
                0..=2 => Response::builder()
                    .status(429)
                    .header("retry-after", "0.2")
                    .body(Body::from("{}"))
                    .expect("response"),
                3 => Response::builder()
                    .status(503)
                    .body(Body::from("down"))
                    .expect("response"),
                _ => Response::new(Body::from("[1,2]")),
            }
        }
    }))
    .await;
    let h = http();
    let url = Url::parse(&format!("{base}/page")).expect("url");
    let reply = h
        .fetch(&budget(), "GET /page", BodyCap::PAGE, Some(1), || {
            h.request(Method::GET, url.clone())
        })
        .await
        .expect("read");
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[test]
fn endpoint_keeps_base_path_prefix() {
    let b = Url::parse("http://h:1/motive").expect("url");
    assert_eq!(
        endpoint(&b, "/v1/users").as_str(),
        "http://h:1/motive/v1/users"
    );
    let b = Url::parse("https://api.gomotive.com").expect("url");
    assert_eq!(
        endpoint(&b, "v1/users").as_str(),
        "https://api.gomotive.com/v1/users"
    );
}
