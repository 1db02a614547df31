use super::*;

#[test]
fn embedded_specs_parse_and_have_the_operations() {
    for (m, n, _) in OPERATIONS {
        assert!(
            operation(m, n).is_some(),
            "{m} {n} missing from the OpenAPI files"
        );
    }
}

fn errors(method: &str, name: &str, query: &[(&str, &str)], body: Value) -> Vec<String> {
    let (doc, op) = operation(method, name).expect("operation");
    let q = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    check_request(doc, op, &q, Some(&body))
}

#[test]
fn create_body_is_checked_against_the_spec() {
    let ok = json!({"name": "A B", "email": "a@b.io", "username": "ab", "password": "x"});
    assert!(errors("POST", "users.create", &[], ok).is_empty());
    let e = errors(
        "POST",
        "users.create",
        &[],
        json!({"name": "A", "email": "a@b.io"}),
    );
    assert!(
        e.contains(&"must have required property 'password'".to_string()),
        "{e:?}"
    );
    let e = errors(
        "POST",
        "users.create",
        &[],
        json!({"name": 1, "email": "a@b.io", "username": "ab", "password": "x", "colour": "red"}),
    );
    assert!(e.contains(&"must be string".to_string()), "{e:?}");
    assert!(
        e.contains(&"must NOT have additional properties".to_string()),
        "{e:?}"
    );
    // customFields is an open object; roles an array of strings.
    let e = errors(
        "POST",
        "users.create",
        &[],
        json!({"name": "A", "email": "a@b.io", "username": "ab", "password": "x",
               "customFields": {"any": "thing"}, "roles": ["user", 3]}),
    );
    assert_eq!(e, vec!["must be string".to_string()]);
}

#[test]
fn update_nested_data_is_closed_and_query_params_are_checked() {
    let e = errors(
        "POST",
        "users.update",
        &[],
        json!({"userId": "x", "data": {"nickname": "n"}}),
    );
    assert_eq!(e, vec!["must NOT have additional properties".to_string()]);
    assert!(errors("GET", "users.info", &[("username", "ab")], json!(null)).is_empty());
    let e = errors("GET", "users.info", &[("fields", "{}")], json!(null));
    assert_eq!(e, vec!["must NOT have additional properties".to_string()]);
    let e = errors("GET", "users.list", &[("count", "ten")], json!(null));
    assert_eq!(e, vec!["must be integer".to_string()]);
}

#[test]
fn usernames_and_emails() {
    assert!(valid_username("ann.lee-2_x"));
    assert!(!valid_username("ann lee"));
    assert!(!valid_username("änn"));
    assert!(valid_email("a@b.io"));
    assert!(!valid_email("a@b"));
}

#[test]
fn limiter_counts_per_window() {
    let mut l = Limiter {
        rule: Some((2, Duration::from_secs(60))),
        windows: HashMap::new(),
    };
    let a = l.hit("r".into()).expect("on");
    assert!(a.allowed && a.remaining == 1);
    assert!(l.hit("r".into()).expect("on").allowed);
    let c = l.hit("r".into()).expect("on");
    assert!(!c.allowed && c.remaining == 0 && c.reset_ms > c.now_ms);
    assert!(l.hit("other".into()).expect("on").allowed);
    l.rule = None;
    assert!(l.hit("r".into()).is_none());
}

#[test]
fn query_decoding() {
    let q = url_decode_pairs("username=a%2Eb&email=x%40y.io&n=a+b");
    assert_eq!(q["username"], "a.b");
    assert_eq!(q["email"], "x@y.io");
    assert_eq!(q["n"], "a b");
}
