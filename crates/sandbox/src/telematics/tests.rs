use super::*;

#[test]
fn ids_and_dates_look_like_damoov_s() {
    let u = uuid_v4();
    assert!(is_uuid(&u), "{u}");
    assert_eq!(&u[14..15], "4");
    let d = now_iso();
    assert_eq!(d.len(), 26, "{d}");
    assert_eq!(&d[10..11], "T");
}

#[test]
fn written_user_fields_replace_wholesale() {
    let f = written_flags(&json!({ "Enabled": false })).expect("valid");
    assert_eq!(f["ClientId"], Value::Null);
    assert_eq!(f["EnableTracking"], json!(true));
    assert_eq!(f["Enabled"], json!(false));
    assert!(written_flags(&json!([{ "Enabled": false }])).is_err());
    assert!(written_flags(&json!({ "enabled": false })).is_err());
}
