//! The dispatcher (route, auth, limiter, permission, validation, in Rocket.Chat's
//! order) and one function per operation.

use super::*;

pub(super) fn parse_query(raw: Option<&str>) -> BTreeMap<String, String> {
    url_decode_pairs(raw.unwrap_or_default())
}

/// `application/x-www-form-urlencoded` pairs (the last of a repeated key wins).
pub(super) fn url_decode_pairs(s: &str) -> BTreeMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = |b: u8| char::from(b).to_digit(16);
                    match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                        (Some(h), Some(l)) => {
                            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                            i += 2;
                        }
                        _ => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

pub(super) async fn dispatch(
    State(rc): State<RocketChat>,
    method: Method,
    Path(op): Path<String>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((verb, name, needs)) = OPERATIONS
        .iter()
        .find(|(m, n, _)| *m == method.as_str() && *n == op)
    else {
        return not_found();
    };
    if !rc.authorized(&headers) {
        return failure(
            StatusCode::UNAUTHORIZED,
            "You must be logged in to do this.",
            None,
            None,
        );
    }
    let client = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map_or_else(|| "local".to_string(), |v| v.trim().to_string());
    let limit = rc
        .lock()
        .limiter
        .hit(format!("{method} /api/v1/{name} {client}"));
    if let Some(l) = limit.as_ref().filter(|l| !l.allowed) {
        let secs = l.reset_ms.saturating_sub(l.now_ms).div_ceil(1000);
        let response = failure(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Error, too many requests. Please slow down. You must wait {secs} seconds before \
                 trying this endpoint again. [error-too-many-requests]"
            ),
            None,
            None,
        );
        return with_limit_headers(response, Some(l));
    }
    let response = handle(&rc, verb, name, needs, raw_query.as_deref(), &body);
    with_limit_headers(response, limit.as_ref())
}

pub(super) fn handle(
    rc: &RocketChat,
    method: &str,
    name: &str,
    needs: &[&str],
    raw_query: Option<&str>,
    body: &[u8],
) -> Response {
    let mut st = rc.lock();
    if !needs.is_empty() && !needs.iter().any(|p| st.permissions.contains(*p)) {
        let message = if name == "users.delete" {
            "unauthorized".to_string()
        } else {
            "User does not have the permissions required for this action [error-unauthorized]"
                .to_string()
        };
        return failure(StatusCode::FORBIDDEN, &message, None, None);
    }
    let query = parse_query(raw_query);
    let body: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => Some(v),
            Err(e) => return bad(&format!("Invalid JSON body: {e}"), "invalid-params", None),
        }
    };
    if let Some(b) = &body {
        st.bodies.push((name.to_string(), b.clone()));
    }
    if let Some((doc, op)) = operation(method, name) {
        let errors = check_request(doc, op, &query, body.as_ref());
        if !errors.is_empty() {
            return bad(&errors.join("\n "), "invalid-params", None);
        }
    }
    let body = body.unwrap_or_else(|| json!({}));
    match name {
        "users.create" => create(&mut st, &body),
        "users.update" => update(&mut st, &body),
        "users.info" => info(&st, &query),
        "users.list" => list(&st, &query),
        "users.setActiveStatus" => set_active_status(&mut st, &body),
        "users.delete" => delete(&mut st, &body),
        "me" => me(&st),
        _ => not_found(),
    }
}

pub(super) fn invalid_user() -> Response {
    bad(
        "The required \"userId\" or \"username\" param provided does not match any users",
        "error-invalid-user",
        None,
    )
}

pub(super) fn create(st: &mut St, body: &Value) -> Response {
    let s = |k: &str| body.get(k).and_then(Value::as_str);
    let flag = |k: &str, d: bool| body.get(k).and_then(Value::as_bool).unwrap_or(d);
    let (Some(name), Some(email), Some(username), Some(password)) =
        (s("name"), s("email"), s("username"), s("password"))
    else {
        return bad("Invalid request", "invalid-params", None);
    };
    if name.trim().is_empty() {
        return bad(
            "The field Name is required",
            "error-the-field-is-required",
            Some(json!({ "method": "insertOrUpdateUser", "field": "Name" })),
        );
    }
    if let Some(r) = st.identity_error(None, Some(username), Some(email)) {
        return r;
    }
    let id = new_id();
    let now = iso_now();
    let mut doc = json!({
        "_id": id,
        "createdAt": now,
        "_updatedAt": now,
        "username": username,
        "emails": [{ "address": email, "verified": flag("verified", false) }],
        "type": "user",
        "status": "offline",
        "active": flag("active", true),
        "roles": body.get("roles").cloned().unwrap_or_else(|| json!(["user"])),
        "name": name,
        "requirePasswordChange": flag("requirePasswordChange", false),
        "settings": {},
    });
    for k in ["nickname", "bio", "statusText"] {
        if let Some(v) = s(k) {
            doc[k] = json!(v);
        }
    }
    if let Some(c) = body.get("customFields") {
        doc["customFields"] = c.clone();
    }
    if !flag("active", true) {
        doc["inactiveReason"] = json!("deactivated");
    }
    let doc = doc.as_object().cloned().unwrap_or_default();
    let user = User {
        doc,
        password: password.to_string(),
    };
    let out = public(&user);
    st.users.push(user);
    ok(json!({ "user": out }))
}

pub(super) fn update(st: &mut St, body: &Value) -> Response {
    let Some(id) = body.get("userId").and_then(Value::as_str) else {
        return bad(
            "must have required property 'userId'",
            "invalid-params",
            None,
        );
    };
    if id.is_empty() {
        return bad(
            "must NOT have fewer than 1 characters",
            "invalid-params",
            None,
        );
    }
    let Some(i) = st.find(id) else {
        return invalid_user();
    };
    let data = body
        .get("data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let s = |k: &str| data.get(k).and_then(Value::as_str);
    if let Some(n) = s("name")
        && n.trim().is_empty()
    {
        return bad(
            "The field Name is required",
            "error-the-field-is-required",
            Some(json!({ "method": "insertOrUpdateUser", "field": "Name" })),
        );
    }
    if let Some(r) = st.identity_error(Some(id), s("username"), s("email")) {
        return r;
    }
    let user = &mut st.users[i];
    for (k, v) in &data {
        match k.as_str() {
            "name" | "username" | "roles" | "requirePasswordChange" | "freeSwitchExtension" => {
                user.doc.insert(k.clone(), v.clone());
            }
            "email" => {
                user.doc.insert(
                    "emails".into(),
                    json!([{ "address": v, "verified": false }]),
                );
            }
            "password" => user.password = v.as_str().unwrap_or_default().to_string(),
            "active" => {
                let active = v.as_bool().unwrap_or(true);
                user.doc.insert("active".into(), json!(active));
                if active {
                    user.doc.remove("inactiveReason");
                } else {
                    user.doc
                        .insert("inactiveReason".into(), json!("deactivated"));
                }
            }
            "customFields" => {
                let mut merged = user
                    .doc
                    .get("customFields")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                if let Some(c) = v.as_object() {
                    for (ck, cv) in c {
                        merged.insert(ck.clone(), cv.clone());
                    }
                }
                user.doc
                    .insert("customFields".into(), Value::Object(merged));
            }
            _ => {}
        }
    }
    // `verified` applies to the (possibly new) address.
    if let Some(v) = data.get("verified").and_then(Value::as_bool)
        && let Some(e) = user
            .doc
            .get_mut("emails")
            .and_then(Value::as_array_mut)
            .and_then(|a| a.first_mut())
    {
        e["verified"] = json!(v);
    }
    user.doc.insert("_updatedAt".into(), json!(iso_now()));
    ok(json!({ "user": public(user) }))
}

pub(super) const LOOKUP_KEYS: &[&str] = &[
    "userId",
    "username",
    "importId",
    "email",
    "freeSwitchExtension",
];

pub(super) fn info(st: &St, query: &BTreeMap<String, String>) -> Response {
    let given: Vec<(&str, &str)> = LOOKUP_KEYS
        .iter()
        .filter_map(|k| query.get(*k).map(|v| (*k, v.as_str())))
        .collect();
    if given.len() != 1 {
        let message = if given.is_empty() {
            "must have required property 'userId'\n must have required property 'username'\n \
             must have required property 'importId'\n must match a schema in anyOf"
        } else {
            "must match exactly one schema in oneOf"
        };
        return bad(message, "invalid-params", None);
    }
    let (key, value) = given[0];
    match st.find_by(key, value) {
        Some(i) => ok(json!({ "user": public(&st.users[i]) })),
        None => failure(StatusCode::BAD_REQUEST, "User not found.", None, None),
    }
}

pub(super) fn list(st: &St, query: &BTreeMap<String, String>) -> Response {
    let count = query
        .get("count")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(50)
        .min(100);
    let offset = query
        .get("offset")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    let matching: Vec<&User> = st
        .users
        .iter()
        .filter(|u| {
            query
                .get("email")
                .is_none_or(|e| email_of(&u.doc).is_some_and(|x| x.eq_ignore_ascii_case(e)))
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(count)
        .map(|u| public(u))
        .collect();
    ok(json!({
        "count": page.len(),
        "users": page,
        "offset": offset,
        "total": matching.len(),
    }))
}

pub(super) fn set_active_status(st: &mut St, body: &Value) -> Response {
    let (Some(id), Some(active)) = (
        body.get("userId").and_then(Value::as_str),
        body.get("activeStatus").and_then(Value::as_bool),
    ) else {
        return bad(
            "must have required property 'activeStatus'\n",
            "invalid-params",
            None,
        );
    };
    let Some(i) = st.find(id) else {
        return invalid_user();
    };
    let user = &mut st.users[i];
    user.doc.insert("active".into(), json!(active));
    if active {
        user.doc.remove("inactiveReason");
    } else {
        user.doc
            .insert("inactiveReason".into(), json!("deactivated"));
    }
    user.doc.insert("_updatedAt".into(), json!(iso_now()));
    ok(json!({ "user": { "_id": id, "active": active } }))
}

pub(super) fn delete(st: &mut St, body: &Value) -> Response {
    let Some(id) = body.get("userId").and_then(Value::as_str) else {
        return bad(
            "The required \"userId\" or \"username\" param was not provided",
            "error-user-param-not-provided",
            None,
        );
    };
    let Some(i) = st.find(id) else {
        return invalid_user();
    };
    st.users.remove(i);
    ok(json!({ "deletedRooms": [] }))
}

pub(super) fn me(st: &St) -> Response {
    match st.find(&st.admin_id) {
        Some(i) => ok(public(&st.users[i])),
        None => failure(
            StatusCode::UNAUTHORIZED,
            "You must be logged in to do this.",
            None,
            None,
        ),
    }
}
