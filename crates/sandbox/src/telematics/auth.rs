//! The admin login (with its rate limit and block) and the token refresh.

use super::*;

pub(super) async fn login(State(t): State<Telematics>, body: Bytes) -> Reply {
    {
        let mut st = t.lock();
        let now = Instant::now();
        if let Some(until) = st.blocked_until {
            if now < until {
                return Err(too_many(until - now));
            }
            st.blocked_until = None;
        }
        let window = st.limits.login_window;
        while st
            .login_attempts
            .front()
            .is_some_and(|a| now.duration_since(*a) >= window)
        {
            st.login_attempts.pop_front();
        }
        st.login_attempts.push_back(now);
        if st.login_attempts.len() > st.limits.login_limit {
            let block = st.limits.login_block;
            st.blocked_until = Some(now + block);
            return Err(too_many(block));
        }
    }
    let body = object(&body)?;
    let fields = match body.get("LoginFields") {
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(bad_request(
                "LoginFields",
                "The JSON value could not be converted to System.String.",
            ));
        }
        None => {
            return Err(bad_request(
                "LoginFields",
                "The LoginFields field is required.",
            ));
        }
    };
    let password = opt_str(&body, "Password")?.unwrap_or_default();
    let inner: Value = serde_json::from_str(fields)
        .map_err(|_| bad_request("LoginFields", "LoginFields must hold a JSON object."))?;
    let email = inner
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if email.is_empty() || !email.eq_ignore_ascii_case(&t.email) || password != t.password {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Login",
            "Invalid login or password.",
        ));
    }
    let mut st = t.lock();
    let result = t.issue(&mut st);
    Ok(envelope(StatusCode::OK, result))
}

pub(super) fn too_many(wait: Duration) -> Response {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "Too Many Requests",
        "Login",
        "Login rate limit exceeded; try again later.",
    );
    if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        r.headers_mut().insert("retry-after", v);
    }
    r
}

pub(super) async fn refresh(State(t): State<Telematics>, body: Bytes) -> Reply {
    let body = object(&body)?;
    let access = opt_str(&body, "AccessToken")?.unwrap_or_default();
    let refresh = opt_str(&body, "RefreshToken")?.unwrap_or_default();
    let mut st = t.lock();
    if st.refresh.get(refresh).is_none_or(|a| a != access) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "RefreshToken",
            "Invalid refresh token.",
        ));
    }
    st.refresh.remove(refresh);
    st.access.remove(access);
    let result = t.issue(&mut st);
    Ok(envelope(StatusCode::OK, result))
}
