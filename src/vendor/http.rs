//! HTTP plumbing shared by the connectors: the client, URL building, and turning a
//! response into `VendorError` by status.
//!
//! Must not: log request headers or bodies (they carry credentials and person data).

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use url::Url;

use super::VendorError;

pub fn client(timeout: Duration) -> reqwest::Client {
    client_as(timeout, concat!("roster/", env!("CARGO_PKG_VERSION")))
}

/// [`client`] sending `user_agent` (HA, issue 17: it names the replica, `ha::user_agent`).
pub fn client_as(timeout: Duration, user_agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(user_agent)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// `base` + `path`, keeping any path prefix `base` has (`http://h/prefix` + `/v1/x`).
pub fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url
}

/// A response read in full.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The body as JSON.
    ///
    /// # Errors
    /// `Protocol` when the body is not JSON.
    pub fn json(&self) -> Result<serde_json::Value, VendorError> {
        serde_json::from_str(&self.body).map_err(|e| {
            VendorError::Protocol(format!(
                "expected JSON from the vendor (status {}): {e}",
                self.status
            ))
        })
    }
}

/// Sends the request and reads the whole reply; transport failures become `Transport`.
///
/// # Errors
/// `Transport` for anything that is not an HTTP reply.
pub async fn send(request: RequestBuilder) -> Result<Reply, VendorError> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.map_err(transport)?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn transport(error: reqwest::Error) -> VendorError {
    // Without the URL: reqwest puts it in its message and it may carry query values.
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    let mut msg = kind.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    VendorError::Transport(msg)
}

/// Classifies a non-success reply by its status. `detail` extracts the vendor's own
/// error text from the body.
pub fn classify(reply: &Reply, detail: impl Fn(&str) -> Option<String>) -> VendorError {
    let text = detail(&reply.body).unwrap_or_else(|| snippet(&reply.body));
    let status = reply.status.as_u16();
    match reply.status {
        StatusCode::TOO_MANY_REQUESTS => VendorError::RateLimited {
            retry_after: retry_after(&reply.headers),
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => VendorError::Auth {
            status,
            detail: text,
        },
        StatusCode::NOT_FOUND => VendorError::NotFound(text),
        s if s.is_server_error() => VendorError::Server {
            status,
            detail: text,
        },
        _ => VendorError::Rejected {
            status,
            detail: text,
        },
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
        .or(Some(Duration::ZERO))
}

/// The start of a body, for messages; never the whole of a large page.
pub fn snippet(body: &str) -> String {
    let t = body.trim();
    if t.is_empty() {
        return "(empty body)".into();
    }
    let mut s: String = t.chars().take(200).collect();
    if s.len() < t.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn classification_by_status() {
        let reply = |s: u16, h: &[(&str, &str)]| {
            let mut headers = HeaderMap::new();
            for (k, v) in h {
                headers.insert(
                    reqwest::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                    v.parse().expect("value"),
                );
            }
            Reply {
                status: StatusCode::from_u16(s).expect("status"),
                headers,
                body: "{\"m\":\"x\"}".into(),
            }
        };
        let none = |_: &str| None;
        assert!(matches!(
            classify(&reply(429, &[("retry-after", "3")]), none),
            VendorError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(3)
        ));
        assert!(matches!(
            classify(&reply(401, &[]), none),
            VendorError::Auth { .. }
        ));
        assert!(matches!(
            classify(&reply(503, &[]), none),
            VendorError::Server { .. }
        ));
        assert!(matches!(
            classify(&reply(422, &[]), none),
            VendorError::Rejected { .. }
        ));
        assert!(matches!(
            classify(&reply(404, &[]), none),
            VendorError::NotFound(_)
        ));
        assert!(classify(&reply(500, &[]), none).is_retryable());
        assert!(!classify(&reply(400, &[]), none).is_retryable());
    }
}
