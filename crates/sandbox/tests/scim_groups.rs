//! The SCIM fake's `/Groups` and its `User.groups` modes, over HTTP as a client sees them.

use roster_sandbox::scim::UserGroups;
use roster_sandbox::{Credentials, Fault, Sandbox};
use serde_json::{Value, json};

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// Twelve users `user01`…`user12`, and `drivers` with the first six of them.
async fn setup() -> (Sandbox, Client, Vec<String>, String) {
    let sandbox = Sandbox::start(Credentials::default())
        .await
        .expect("sandbox");
    let scim = &sandbox.scim;
    let users: Vec<String> = (1..=12)
        .map(|n| {
            scim.add(json!({
                "userName": format!("user{n:02}"),
                "displayName": format!("User {n}"),
                "groups": [{"value": "stale", "display": "stored-but-wrong"}],
            }))
        })
        .collect();
    let first_six: Vec<&str> = users[..6].iter().map(String::as_str).collect();
    let drivers = scim.add_group("drivers", &first_six).expect("group");
    let client = Client {
        http: reqwest::Client::new(),
        base: format!("{}/v2", sandbox.url("scim")),
        token: Credentials::default().scim_token,
    };
    (sandbox, client, users, drivers)
}

#[tokio::test]
async fn groups_are_paged_with_members_refs_and_types() {
    let (sandbox, c, users, drivers) = setup().await;
    let scim = &sandbox.scim;
    let night = scim
        .add_group("night", &[&users[6], &drivers])
        .expect("group");
    for n in 0..8 {
        scim.add_group(&format!("team{n}"), &[]).expect("group");
    }
    scim.set_max_page_size(4);

    // Ten groups, pages of at most 4 whatever is asked.
    let (status, page) = c.get("/Groups?startIndex=1&count=100").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["totalResults"], 10);
    assert_eq!(page["itemsPerPage"], 4);
    assert_eq!(page["startIndex"], 1);
    let first = &page["Resources"][0];
    assert_eq!(first["displayName"], "drivers");
    assert_eq!(
        first["schemas"][0],
        "urn:ietf:params:scim:schemas:core:2.0:Group"
    );
    let members = first["members"].as_array().expect("members");
    assert_eq!(members.len(), 6);
    assert_eq!(members[0]["value"], users[0].as_str());
    assert_eq!(members[0]["type"], "User");
    assert_eq!(members[0]["display"], "User 1");
    assert_eq!(
        members[0]["$ref"],
        format!("{}/Users/{}", c.base, users[0]).as_str()
    );
    let nested = &page["Resources"][1]["members"];
    assert_eq!(nested[1]["value"], drivers.as_str());
    assert_eq!(nested[1]["type"], "Group");
    assert_eq!(nested[1]["display"], "drivers");

    let (_, last) = c.get("/Groups?startIndex=9&count=4").await;
    assert_eq!(last["itemsPerPage"], 2);
    assert_eq!(last["Resources"][1]["displayName"], "team7");

    let (_, filtered) = c.get("/Groups?filter=displayName%20eq%20%22NIGHT%22").await;
    assert_eq!(filtered["totalResults"], 1);
    assert_eq!(filtered["Resources"][0]["id"], night.as_str());

    let (status, one) = c.get(&format!("/Groups/{night}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["members"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn user_groups_stored_omitted_or_derived() {
    let (sandbox, c, users, drivers) = setup().await;
    let scim = &sandbox.scim;
    scim.add_group("all-staff", &[&drivers]).expect("group");
    let groups_of = |page: &Value| page["Resources"][0].get("groups").cloned();

    let (_, page) = c.get("/Users?count=1").await;
    assert_eq!(
        groups_of(&page).expect("stored")[0]["display"],
        "stored-but-wrong"
    );

    scim.set_user_groups(UserGroups::Omitted);
    let (_, page) = c.get("/Users?count=1").await;
    assert_eq!(groups_of(&page), None, "{page}");

    scim.set_user_groups(UserGroups::Derived);
    let (_, page) = c.get("/Users?count=1").await;
    let g = groups_of(&page).expect("derived");
    assert_eq!(g.as_array().map(Vec::len), Some(2), "{g}");
    assert_eq!(g[0]["display"], "drivers");
    assert_eq!(g[0]["type"], "direct");
    assert_eq!(g[1]["display"], "all-staff");
    assert_eq!(g[1]["type"], "indirect");
    let (_, u12) = c.get(&format!("/Users/{}", users[11])).await;
    assert_eq!(u12.get("groups"), None, "in no group: {u12}");
}

#[tokio::test]
async fn attributes_and_excluded_attributes_trim_users_and_groups() {
    let (sandbox, c, _, _) = setup().await;
    sandbox.scim.set_user_groups(UserGroups::Derived);

    let (_, page) = c.get("/Users?count=2&excludedAttributes=groups").await;
    let u = &page["Resources"][0];
    assert_eq!(u.get("groups"), None);
    assert_eq!(u["userName"], "user01");

    let (_, page) = c
        .get("/Users?count=2&attributes=urn:ietf:params:scim:schemas:core:2.0:User:userName")
        .await;
    let u = page["Resources"][0].as_object().expect("user");
    let mut keys: Vec<&str> = u.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["id", "schemas", "userName"]);

    let (_, page) = c.get("/Groups?excludedAttributes=members").await;
    let g = &page["Resources"][0];
    assert_eq!(g.get("members"), None);
    assert_eq!(g["displayName"], "drivers");

    let (_, page) = c.get("/Groups?attributes=members.value").await;
    let g = page["Resources"][0].as_object().expect("group");
    assert_eq!(g.get("displayName"), None);
    assert_eq!(
        g["members"][0]
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["value".to_string()])
    );
}

#[tokio::test]
async fn membership_changes_and_one_failing_page() {
    let (sandbox, c, users, drivers) = setup().await;
    let scim = &sandbox.scim;
    let count_members = |v: &Value| v["members"].as_array().map_or(0, Vec::len);

    scim.remove_member(&drivers, &users[0]).expect("member");
    scim.add_member(&drivers, &users[11]).expect("member");
    let (_, g) = c.get(&format!("/Groups/{drivers}")).await;
    assert_eq!(count_members(&g), 6);
    assert!(
        g["members"]
            .as_array()
            .expect("members")
            .iter()
            .all(|m| m["value"] != users[0].as_str())
    );

    // Deleting a user takes it out of its groups.
    let r = c
        .http
        .delete(format!("{}/Users/{}", c.base, users[1]))
        .bearer_auth(&c.token)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 204);
    let (_, g) = c.get(&format!("/Groups/{drivers}")).await;
    assert_eq!(count_members(&g), 5);

    // A client creating a group: members must exist.
    let (status, err) = c
        .send(
            reqwest::Method::POST,
            "/Groups",
            json!({"displayName": "x", "members": [{"value": "nobody"}]}),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["scimType"], "invalidValue");
    let (status, created) = c
        .send(
            reqwest::Method::POST,
            "/Groups",
            json!({"displayName": "ops", "members": [{"value": users[2]}, {"value": drivers}]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["members"][1]["type"], "Group");

    // One page fails, the others do not.
    scim.set_max_page_size(1);
    scim.control.inject(
        Fault::new(None, "/v2/Groups", 500, r#"{"detail":"boom"}"#).query_contains("startIndex=2&"),
    );
    let (ok, _) = c.get("/Groups?startIndex=1&count=1").await;
    let (failed, _) = c.get("/Groups?startIndex=2&count=1").await;
    let (again, _) = c.get("/Groups?startIndex=2&count=1").await;
    assert_eq!((ok, failed, again), (200, 500, 200));
}
