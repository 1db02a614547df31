//! Damoov's wire: the envelope and its errors, ids, request body checks, and the
//! form `find` returns a user in.

use super::*;

pub(super) fn envelope(status: StatusCode, result: Value) -> Response {
    (
        status,
        Json(json!({ "Result": result, "Status": status.as_u16(), "Title": "", "Errors": [] })),
    )
        .into_response()
}

pub(super) fn error(status: StatusCode, title: &str, key: &str, message: &str) -> Response {
    let errors = if key.is_empty() && message.is_empty() {
        json!([])
    } else {
        json!([{ "Key": key, "Message": message }])
    };
    (
        status,
        Json(
            json!({ "Result": null, "Status": status.as_u16(), "Title": title, "Errors": errors }),
        ),
    )
        .into_response()
}

pub(super) fn bad_request(key: &str, message: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "One or more validation errors occurred.",
        key,
        message,
    )
}

pub(super) fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

pub(super) fn uuid_v4() -> String {
    let b: [u8; 16] = std::array::from_fn(|_| rand::random::<u8>());
    let h: Vec<String> = b
        .iter()
        .enumerate()
        .map(|(i, x)| match i {
            6 => format!("{:02x}", (x & 0x0f) | 0x40),
            8 => format!("{:02x}", (x & 0x3f) | 0x80),
            _ => format!("{x:02x}"),
        })
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

pub(super) fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The user as `find` returns it.
pub(super) fn read_form(u: &User, include_account_info: bool) -> Value {
    let p = |k: &str| u.profile.get(k).map_or(Value::Null, |v| json!(v));
    let name = |s: &str| {
        if include_account_info {
            json!(s)
        } else {
            Value::Null
        }
    };
    json!({
        "DeviceToken": u.token,
        "DateCreated": u.created,
        "Status": if u.status == Status::Active { "Active" } else { "Inactive" },
        "ActivityStatus": "No Data",
        "UserProfile": {
            "FirstName": p("FirstName"), "LastName": p("LastName"), "Gender": "None",
            "Birthday": null, "MaritalStatus": null, "ChildrenCount": null, "Address": null,
            "Country": u.country, "District": null, "City": null, "Nickname": p("Nickname"),
            "Email": p("Email"), "Phone": p("Phone"), "ImageUrl": null, "ExternalImageUrl": null
        },
        "MobileDevice": {
            "MobileUid": null, "DeviceModel": null, "OsType": null, "OsVersion": null,
            "SdkVersion": null, "AppVersion": null, "VirtualImei": "000000000000000"
        },
        "AccountInfo": {
            "CompanyId": COMPANY_ID, "CompanyName": name("Sandbox Company"),
            "ApplicationId": APPLICATION_ID, "ApplicationName": name("Sandbox App"),
            "InstanceId": u.instance_id, "InstanceName": name("Common")
        },
        "UserWallets": [],
        "IdentityId": null,
        "IdentityProvider": null,
        "UserFields": [ Value::Object(u.flags.clone()) ]
    })
}

/// Parses a request body that must be a JSON object.
pub(super) fn object(body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(bad_request("$", "The request body must be a JSON object.")),
        Err(e) => Err(bad_request("$", &format!("The JSON is invalid: {e}"))),
    }
}

pub(super) fn refuse_unknown(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), Response> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(bad_request(k, &format!("Unknown field '{k}'."))),
        None => Ok(()),
    }
}

/// A string-or-null field; anything else is a 400.
pub(super) fn opt_str<'a>(
    body: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, Response> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad_request(
            key,
            &format!("The JSON value could not be converted to System.String (field {key})."),
        )),
    }
}

/// Validates a written `UserFields` object and returns it merged onto the defaults.
pub(super) fn written_flags(v: &Value) -> Result<Map<String, Value>, Response> {
    let Value::Object(given) = v else {
        return Err(bad_request(
            "UserFields",
            "UserFields must be an object when written.",
        ));
    };
    let mut flags = default_flags();
    for (k, v) in given {
        match (k.as_str(), v) {
            ("ClientId", Value::String(_) | Value::Null) => {}
            (
                "Enabled" | "EnableTracking" | "EnableLogging" | "EnableRealTimeLocation",
                Value::Bool(_),
            ) => {}
            (k, _) if FLAGS.contains(&k) => {
                return Err(bad_request(
                    &format!("UserFields.{k}"),
                    "The value has the wrong type.",
                ));
            }
            (k, _) => {
                return Err(bad_request(
                    &format!("UserFields.{k}"),
                    &format!("Unknown field '{k}'."),
                ));
            }
        }
        flags.insert(k.clone(), v.clone());
    }
    Ok(flags)
}

pub(super) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}
