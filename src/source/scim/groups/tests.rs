use super::*;
use serde_json::json;

fn listing(groups: &[Value]) -> Vec<(String, Value)> {
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| (format!("resource {} (page 1)", i + 1), g.clone()))
        .collect()
}

fn group(id: &str, name: &str, members: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
           "id": id, "displayName": name, "members": members})
}

fn names(m: &Membership, user: &str) -> Vec<String> {
    m.groups_of(user).iter().map(|n| n.to_string()).collect()
}

#[test]
fn direct_members_get_the_group_names() {
    let m = Membership::from_groups(&listing(&[
        group(
            "g1",
            "drivers",
            json!([{"value": "u1", "type": "User"}, {"value": "u2"}]),
        ),
        group("g2", "office", json!([{"value": "u2", "type": "User"}])),
        json!({"id": "g3", "displayName": "empty"}),
    ]))
    .expect("consistent");
    assert_eq!(names(&m, "u1"), ["drivers"]);
    assert_eq!(names(&m, "u2"), ["drivers", "office"]);
    assert!(m.groups_of("u3").is_empty());
    assert_eq!(m.users(), 2);
}

#[test]
fn nested_groups_pass_their_members_up_and_cycles_end() {
    // all-staff ⊃ drivers ⊃ night ⊃ drivers (a loop), and ops ⊃ night.
    let m = Membership::from_groups(&listing(&[
        group(
            "g-all",
            "all-staff",
            json!([{"value": "g-drv", "type": "Group"}, {"value": "u0", "type": "User"}]),
        ),
        group(
            "g-drv",
            "drivers",
            json!([{"value": "u1", "type": "User"},
                   {"value": "g-night", "$ref": "https://idp/scim/v2/Groups/g-night"}]),
        ),
        // No type, no $ref: a member whose value is a group id read is a group.
        group(
            "g-night",
            "night",
            json!([{"value": "u2"}, {"value": "g-drv"}]),
        ),
        group(
            "g-ops",
            "ops",
            json!([{"value": "g-night", "type": "group"}]),
        ),
    ]))
    .expect("consistent");
    assert_eq!(names(&m, "u0"), ["all-staff"]);
    assert_eq!(names(&m, "u1"), ["all-staff", "drivers", "night", "ops"]);
    assert_eq!(names(&m, "u2"), ["all-staff", "drivers", "night", "ops"]);
}

#[test]
fn members_of_other_types_are_not_people() {
    let m = Membership::from_groups(&listing(&[group(
        "g1",
        "drivers",
        json!([{"value": "d1", "type": "Device"}, {"value": "u1",
                "$ref": "https://idp/scim/v2/Users/u1"}]),
    )]))
    .expect("consistent");
    assert!(m.groups_of("d1").is_empty());
    assert_eq!(names(&m, "u1"), ["drivers"]);
}

#[test]
fn an_inconsistent_listing_is_an_error_naming_the_group() {
    let err = |groups: &[Value]| Membership::from_groups(&listing(groups)).expect_err("bad");
    assert_eq!(
        err(&[group("g1", "a", json!([])), group("g1", "b", json!([]))]),
        GroupsError::DuplicateId {
            id: "g1".into(),
            first: "resource 1 (page 1)".into(),
            again: "resource 2 (page 1)".into(),
        }
    );
    assert_eq!(
        err(&[group(
            "g1",
            "drivers",
            json!([{"value": "g9", "type": "Group"}])
        )]),
        GroupsError::UnknownGroup {
            group: "g1".into(),
            member: "g9".into()
        }
    );
    assert_eq!(
        err(&[group(
            "g1",
            "drivers",
            json!([{"value": "g9", "$ref": "https://idp/v2/Groups/g9"}])
        )]),
        GroupsError::UnknownGroup {
            group: "g1".into(),
            member: "g9".into()
        }
    );
    assert!(matches!(
        err(&[json!({"displayName": "x"})]),
        GroupsError::MissingId { location } if location == "resource 1 (page 1)"
    ));
    assert!(matches!(
        err(&[json!({"id": "g1", "displayName": "  "})]),
        GroupsError::MissingName { id, .. } if id == "g1"
    ));
    assert!(matches!(
        err(&[group("g1", "x", json!({"value": "u1"}))]),
        GroupsError::BadMembers { group, .. } if group == "g1"
    ));
    let e = err(&[group("g1", "x", json!([{"display": "Ann"}]))]);
    assert!(e.to_string().contains("without a `value`"), "{e}");
    assert!(matches!(
        err(&[json!("g1")]),
        GroupsError::NotAnObject { .. }
    ));
}

#[test]
fn a_long_chain_and_a_wide_group_stay_cheap() {
    // g0 ⊃ g1 ⊃ … ⊃ g199, one user at the bottom; 5000 users directly in g0.
    let mut groups: Vec<Value> = (0..200)
        .map(|i| {
            let members = if i + 1 < 200 {
                json!([{"value": format!("g{}", i + 1), "type": "Group"}])
            } else {
                json!([{"value": "deep", "type": "User"}])
            };
            group(&format!("g{i}"), &format!("level{i}"), members)
        })
        .collect();
    let wide: Vec<Value> = (0..5000)
        .map(|i| json!({"value": format!("u{i}"), "type": "User"}))
        .collect();
    groups.push(group("gw", "wide", Value::Array(wide)));
    let m = Membership::from_groups(&listing(&groups)).expect("consistent");
    assert_eq!(m.groups_of("deep").len(), 200);
    assert_eq!(names(&m, "u4999"), ["wide"]);
    assert_eq!(m.users(), 5001);
}

#[test]
fn groups_from_decides_when_groups_are_read() {
    let with = listing(&[json!({"id": "u1"}), json!({"id": "u2", "groups": []})]);
    let without = listing(&[json!({"id": "u1"})]);
    assert!(!GroupsFrom::Users.needs_groups_endpoint(&without));
    assert!(GroupsFrom::Groups.needs_groups_endpoint(&with));
    assert!(!GroupsFrom::Auto.needs_groups_endpoint(&with));
    assert!(GroupsFrom::Auto.needs_groups_endpoint(&without));
    assert_eq!(
        GroupsFrom::Groups.users_query(),
        Some(("excludedAttributes", "groups"))
    );
    assert_eq!(GroupsFrom::Auto.users_query(), None);
    assert_eq!(GroupsFrom::default(), GroupsFrom::Auto);
    let parsed: GroupsFrom = serde_json::from_value(json!("auto")).expect("parses");
    assert_eq!(parsed, GroupsFrom::Auto);
    assert!(serde_json::from_value::<GroupsFrom>(json!("both")).is_err());
}

/// The wire shape of a real listing: the sandbox's SCIM provider, read page by page
/// (pages of 2), `User.groups` left out of `/Users` as many providers do.
#[tokio::test]
async fn the_sandbox_providers_groups_resolve() {
    use roster_sandbox::{Credentials, Sandbox, scim::UserGroups};
    let sandbox = Sandbox::start(Credentials::default())
        .await
        .expect("sandbox");
    let scim = &sandbox.scim;
    scim.set_user_groups(UserGroups::Omitted);
    scim.set_max_page_size(2);
    let users: Vec<String> = (0..12)
        .map(|n| scim.add(json!({"userName": format!("user{n:02}")})))
        .collect();
    let six: Vec<&str> = users[..6].iter().map(String::as_str).collect();
    let drivers = scim.add_group("drivers", &six).expect("group");
    let night = scim.add_group("night", &[&users[11]]).expect("group");
    scim.add_member(&drivers, &night).expect("nested");
    scim.add_group("office", &[&users[6], &users[7]])
        .expect("group");

    let client = reqwest::Client::new();
    let mut read: Vec<(String, Value)> = Vec::new();
    loop {
        let url = format!(
            "{}/v2/Groups?startIndex={}&count=50",
            sandbox.url("scim"),
            read.len() + 1
        );
        let page: Value = client
            .get(url)
            .bearer_auth(Credentials::default().scim_token)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON");
        let resources = page["Resources"].as_array().cloned().unwrap_or_default();
        assert!(!resources.is_empty(), "{page}");
        for r in resources {
            read.push((format!("resource {}", read.len() + 1), r));
        }
        if read.len() as u64 >= page["totalResults"].as_u64().expect("total") {
            break;
        }
    }
    let m = Membership::from_groups(&read).expect("consistent");
    assert_eq!(names(&m, &users[0]), ["drivers"]);
    assert_eq!(names(&m, &users[11]), ["drivers", "night"]);
    assert_eq!(names(&m, &users[7]), ["office"]);
    assert!(m.groups_of(&users[8]).is_empty());
    assert_eq!(m.users(), 9);
}
