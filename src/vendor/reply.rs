//! A vendor's non-success reply as a `VendorError`, by status; each connector supplies
//! how to read its own error text from the body.

use reqwest::StatusCode;

use super::VendorError;
use crate::http::Reply;

/// Classifies a non-success reply by its status. `detail` extracts the vendor's own
/// error text from the body.
pub fn classify(reply: &Reply, detail: impl Fn(&str) -> Option<String>) -> VendorError {
    let text = detail(&reply.body).unwrap_or_else(|| reply.snippet());
    let status = reply.status.as_u16();
    match reply.status {
        StatusCode::TOO_MANY_REQUESTS => VendorError::RateLimited {
            retry_after: crate::http::headers::retry_after(
                &reply.headers,
                std::time::SystemTime::now(),
            ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;
    use std::time::Duration;

    fn reply(s: u16, h: &[(&str, &str)]) -> Reply {
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
            url: "http://h/x".into(),
        }
    }

    #[test]
    fn classification_by_status() {
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
