//! The user endpoints: create, find, the filtered page, update, remove.

use super::*;

pub(super) async fn create(State(t): State<Telematics>, headers: HeaderMap, body: Bytes) -> Reply {
    let id_ok =
        header(&headers, "InstanceId").is_some_and(|v| v.eq_ignore_ascii_case(&t.instance_id));
    let key_ok = header(&headers, "InstanceKey").is_some_and(|v| v == t.instance_key);
    if !id_ok || !key_ok {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "InstanceKey",
            "Invalid InstanceId or InstanceKey.",
        ));
    }
    let body = object(&body)?;
    refuse_unknown(&body, CREATE_KEYS)?;
    let mut profile = BTreeMap::new();
    for k in PROFILE {
        if let Some(v) = opt_str(&body, k)?.filter(|v| !v.is_empty()) {
            profile.insert(*k, v.to_string());
        }
    }
    let flags = match body.get("UserFields") {
        None | Some(Value::Null) => default_flags(),
        Some(v) => written_flags(v)?,
    };
    let want_token = match body.get("CreateAccessToken") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad_request("CreateAccessToken", "Must be a boolean.")),
    };
    let mut st = t.lock();
    let token = match opt_str(&body, "CustomToken")? {
        None => uuid_v4(),
        Some(c) if !is_uuid(c) => return Err(bad_request("CustomToken", "Must be a UUID.")),
        Some(c) if st.users.contains_key(&c.to_ascii_lowercase()) => {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "One or more validation errors occurred.",
                "CustomToken",
                "A user with this token already exists.",
            ));
        }
        Some(c) => c.to_ascii_lowercase(),
    };
    st.users.insert(
        token.clone(),
        User {
            token: token.clone(),
            created: now_iso(),
            status: Status::Active,
            profile,
            country: None,
            flags,
            instance_id: t.instance_id.clone(),
        },
    );
    let (access, refresh) = if want_token {
        let access = format!("eyJ1c2VyIjp0cnVlfQ.{}", random_hex(24));
        st.user_tokens.insert(access.clone());
        (
            json!({ "Token": access, "ExpiresIn": 432_000 }),
            json!(random_hex(32)),
        )
    } else {
        (Value::Null, Value::Null)
    };
    Ok(envelope(
        StatusCode::OK,
        json!({ "DeviceToken": token, "AccessToken": access, "RefreshToken": refresh }),
    ))
}

/// `POST /v1/Management/users/GetFilteredPage` with the flat body of the vendor notes:
/// `PageNumber` (1-based) and `PageSize` required, `ShowInactiveUsers`,
/// `IncludeAccountInfo`, `InstanceIds` optional.
pub(super) async fn filtered_page(
    State(t): State<Telematics>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Reply {
    t.admin(&headers)?;
    let Some(Json(Value::Object(b))) = body else {
        return Err(bad_request("", "A non-empty request body is required."));
    };
    let number = |k: &str| -> Result<usize, Response> {
        match b.get(k).and_then(Value::as_u64) {
            Some(n) if n >= 1 => Ok(n as usize),
            _ => Err(bad_request(
                k,
                &format!("{k} must be a whole number of 1 or more."),
            )),
        }
    };
    let (page, size) = (number("PageNumber")?, number("PageSize")?);
    let flag = |k: &str| b.get(k).and_then(Value::as_bool).unwrap_or(false);
    let (show_inactive, account_info) = (flag("ShowInactiveUsers"), flag("IncludeAccountInfo"));
    let st = t.lock();
    let all: Vec<Value> = st
        .users
        .values()
        .filter(|u| match u.status {
            Status::Active => true,
            Status::Deactivated => show_inactive,
            Status::Deleted => false,
        })
        .map(|u| read_form(u, account_info))
        .collect();
    let total = all.len();
    let pages = total.div_ceil(size);
    let users: Vec<Value> = all.into_iter().skip((page - 1) * size).take(size).collect();
    Ok(envelope(
        StatusCode::OK,
        json!({
            "Users": users,
            "HasPreviousPage": page > 1,
            "HasNextPage": page < pages,
            "TotalUsers": total,
            "TotalPages": pages,
            "CurrentPage": page,
        }),
    ))
}

pub(super) async fn find(
    State(t): State<Telematics>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Reply {
    t.admin(&headers)?;
    let flag = |name: &str| -> Result<bool, Response> {
        match q.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            None => Ok(false),
            Some((_, v)) => v.parse::<bool>().map_err(|_| {
                bad_request(name, &format!("The value '{v}' is not valid for {name}."))
            }),
        }
    };
    let show_inactive = flag("ShowInactiveUsers")?;
    let account_info = flag("IncludeAccountInfo")?;
    let filters: Vec<(&str, &str)> = q
        .iter()
        .filter_map(|(k, v)| {
            FIND_FILTERS
                .iter()
                .find(|f| f.eq_ignore_ascii_case(k))
                .map(|f| (*f, v.as_str()))
        })
        .filter(|(_, v)| !v.is_empty())
        .collect();
    if filters.is_empty() {
        return Err(bad_request(
            "",
            "At least one search parameter is required.",
        ));
    }
    for (k, v) in &filters {
        if *k == "DeviceToken" && !is_uuid(v) {
            return Err(bad_request(
                k,
                &format!("The value '{v}' is not valid for DeviceToken."),
            ));
        }
        if *k == "OsType" && !matches!(*v, "android" | "iOS") {
            return Err(bad_request(
                k,
                &format!("The value '{v}' is not valid for OsType."),
            ));
        }
    }
    let st = t.lock();
    let found: Vec<Value> = st
        .users
        .values()
        .filter(|u| match u.status {
            Status::Active => true,
            Status::Deactivated => show_inactive,
            Status::Deleted => false,
        })
        .filter(|u| {
            filters.iter().all(|(k, v)| {
                let p = |name: &str| {
                    u.profile
                        .get(name)
                        .is_some_and(|x| x.eq_ignore_ascii_case(v))
                };
                match *k {
                    "DeviceToken" => u.token.eq_ignore_ascii_case(v),
                    "ClientId" => u.flags.get("ClientId").and_then(Value::as_str) == Some(*v),
                    "FullName" => {
                        let full = format!(
                            "{} {}",
                            u.profile.get("FirstName").map_or("", String::as_str),
                            u.profile.get("LastName").map_or("", String::as_str)
                        );
                        full.trim().eq_ignore_ascii_case(v)
                    }
                    "Country" => u
                        .country
                        .as_deref()
                        .is_some_and(|c| c.eq_ignore_ascii_case(v)),
                    "OsType" => false,
                    name => p(name),
                }
            })
        })
        .map(|u| read_form(u, account_info))
        .collect();
    Ok(envelope(StatusCode::OK, Value::Array(found)))
}

pub(super) async fn update(State(t): State<Telematics>, headers: HeaderMap, body: Bytes) -> Reply {
    t.admin(&headers)?;
    let Some(target) = header(&headers, "UserDeviceToken").filter(|v| !v.is_empty()) else {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "One or more validation errors occurred.",
            "UserDeviceToken",
            "The UserDeviceToken header is required to update another user.",
        ));
    };
    let content_type = header(&headers, "content-type").unwrap_or_default();
    if !content_type.starts_with("application/json-patch+json") {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            "Content-Type",
            "Expected application/json-patch+json.",
        ));
    }
    let body = object(&body)?;
    refuse_unknown(&body, UPDATE_KEYS)?;
    for k in PROFILE.iter().chain(["Country"].iter()) {
        opt_str(&body, k)?;
    }
    let status = match opt_str(&body, "Status")? {
        None => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            bad_request(
                "Status",
                &format!("The JSON value '{s}' could not be converted to UserStatus (Active, Deactivated, Deleted)."),
            )
        })?),
    };
    if let Some(g) = opt_str(&body, "Gender")?
        && !["None", "Male", "Female", "Other"].contains(&g)
    {
        return Err(bad_request(
            "Gender",
            &format!("The JSON value '{g}' is not a Gender."),
        ));
    }
    if opt_str(&body, "NewPassword")?.is_some() && opt_str(&body, "OldPassword")?.is_none() {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "One or more validation errors occurred.",
            "OldPassword",
            "OldPassword is required to set NewPassword.",
        ));
    }
    let flags = match body.get("UserFields") {
        None | Some(Value::Null) => None,
        Some(v) => Some(written_flags(v)?),
    };
    let mut st = t.lock();
    let Some(user) = st
        .users
        .values_mut()
        .find(|u| u.token.eq_ignore_ascii_case(target) && u.status != Status::Deleted)
    else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "Not Found",
            "UserDeviceToken",
            "User not found.",
        ));
    };
    for k in PROFILE {
        match opt_str(&body, k)? {
            None => {}
            Some("") => {
                user.profile.remove(k);
            }
            Some(v) => {
                user.profile.insert(k, v.to_string());
            }
        }
    }
    match opt_str(&body, "Country")? {
        None => {}
        Some("") => user.country = None,
        Some(v) => user.country = Some(v.to_string()),
    }
    if let Some(s) = status {
        user.status = s;
    }
    if let Some(f) = flags {
        user.flags = f;
    }
    Ok(envelope(StatusCode::OK, Value::Null))
}

pub(super) async fn remove(
    State(t): State<Telematics>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Reply {
    t.admin(&headers)?;
    let mut st = t.lock();
    let key = st
        .users
        .keys()
        .find(|k| k.eq_ignore_ascii_case(&token))
        .cloned();
    match key {
        Some(k) => {
            st.users.remove(&k);
            Ok((
                StatusCode::OK,
                Json(json!({ "Status": 200, "Title": "", "Errors": [] })),
            )
                .into_response())
        }
        None => Err(error(
            StatusCode::NOT_FOUND,
            "Not Found",
            "DeviceToken",
            "User not found.",
        )),
    }
}
