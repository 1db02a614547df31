//! The `scim` source against a provider that leaves `User.groups` out of `/Users` (as
//! RFC 7643 allows) and keeps membership on `/Groups`, through the real binary to a
//! group-scoped vendor (Motive, `drivers` only) and an unscoped one (DriveKit).

use axum::http::Method;
use roster_sandbox::scim::UserGroups;
use roster_sandbox::{Credentials, Fault};
use serde_json::{Value, json};

use crate::common::{DRIVERS_ONLY, Env, MOTIVE_KEY, counts, motive_vendor_with};

fn token() -> String {
    Credentials::default().scim_token
}

fn user(n: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "externalId": format!("E{n:02}"),
        "userName": format!("user{n:02}"),
        "name": {"givenName": format!("Given{n}"), "familyName": format!("Family{n}")},
        "emails": [{"value": format!("user{n:02}@example.com"), "type": "work", "primary": true}],
        "active": true
    })
}

/// Motive scoped to `drivers`, DriveKit unscoped; people are known by `externalId`,
/// while group members name the SCIM `id`. Pages of 2 at most, so both lists page.
async fn env(groups_from: &str) -> Env {
    let vendors = format!(
        "{}\n[vendors.drivekit]\ntype = \"drivekit\"\nbase_url = \"{{url:drivekit}}\"\n\
         api_key = \"{}\"\n",
        motive_vendor_with("motive", MOTIVE_KEY, DRIVERS_ONLY),
        Credentials::default().drivekit_api_key
    );
    let env = Env::with_source_secret(
        &format!(
            "type = \"scim\"\nbase_url = \"{{url:scim}}/v2\"\ntoken_file = \"{{dir}}/scim.token\"\n\
             retries = 1\ntimeout_secs = 5\ncount = 4\nid_field = \"externalId\"\n{groups_from}"
        ),
        &vendors,
        "scim.token",
        &token(),
    )
    .await;
    env.sandbox.scim.set_user_groups(UserGroups::Omitted);
    env.sandbox.scim.set_max_page_size(2);
    env
}

/// The provider's directory (and the DriveKit app's drivers): 12 users; `drivers` holds 5 of them directly and a sixth
/// through the nested group `night`; `office` two others; two groups are empty.
/// Returns the users' SCIM ids and the ids of `drivers` and `night`.
fn directory(env: &Env) -> (Vec<String>, String, String) {
    let scim = &env.sandbox.scim;
    let users: Vec<String> = (1..=12).map(|n| scim.add(user(n))).collect();
    // DriveKit drivers come to exist by signing in to the app; roster then links them.
    for n in 1..=12 {
        env.sandbox.drivekit.sign_in(&format!("E{n:02}"));
    }
    let direct: Vec<&str> = users[..5].iter().map(String::as_str).collect();
    let drivers = scim.add_group("drivers", &direct).expect("group");
    let night = scim.add_group("night", &[&users[5]]).expect("group");
    scim.add_member(&drivers, &night).expect("nested");
    scim.add_group("office", &[&users[6], &users[7]])
        .expect("group");
    scim.add_group("contractors", &[]).expect("group");
    scim.add_group("alumni", &[]).expect("group");
    (users, drivers, night)
}

/// The queries of the GETs of one list (`/Users` or `/Groups`).
fn list_queries(env: &Env, list: &str) -> Vec<String> {
    env.sandbox
        .scim
        .control
        .calls()
        .into_iter()
        .filter(|c| c.method == "GET" && c.path.ends_with(list))
        .map(|c| c.query)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_by_group_from_the_groups_endpoint() {
    let env = env("groups_from = \"groups\"").await;
    let (users, drivers, night) = directory(&env);
    let (motive, drivekit) = (&env.sandbox.motive, &env.sandbox.drivekit);
    let tok = token();

    let out = env.run(&["check"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("5 groups in /Groups"), "{text}");

    env.sandbox.scim.control.clear_calls();
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["source"]["records"], 12, "{r}");
    // The five direct members and the one in `night` (inside `drivers`).
    assert_eq!(counts(&r, "motive"), [6, 0, 0, 0, 0, 0, 0], "{r}");
    assert_eq!(r["vendors"]["drivekit"]["adopted"], 12, "{r}");
    assert_eq!(
        drivekit.driver("E12").expect("driver")["firstname"],
        "Given12"
    );
    for n in 1..=6 {
        assert_eq!(
            motive.by_external_id(&format!("E{n:02}")).len(),
            1,
            "E{n:02}"
        );
    }
    for n in 7..=12 {
        assert!(
            motive.by_external_id(&format!("E{n:02}")).is_empty(),
            "E{n:02}"
        );
    }
    // Both lists were paged (pages of 2) with the same rules; /Users was asked to leave
    // `groups` out, /Groups for what membership needs.
    let user_pages = list_queries(&env, "/Users");
    let group_pages = list_queries(&env, "/Groups");
    assert_eq!(user_pages.len(), 6, "{user_pages:?}");
    assert_eq!(group_pages.len(), 3, "{group_pages:?}");
    assert!(
        user_pages
            .iter()
            .all(|q| q.contains("excludedAttributes=groups")),
        "{user_pages:?}"
    );
    for (q, start) in group_pages
        .iter()
        .zip(["startIndex=1&", "startIndex=3&", "startIndex=5&"])
    {
        assert!(
            q.contains(start) && q.contains("attributes=displayName%2Cmembers"),
            "{q}"
        );
    }

    // Out of `drivers`: deactivated at Motive, untouched at DriveKit.
    env.sandbox
        .scim
        .remove_member(&drivers, &users[0])
        .expect("member");
    motive.control.clear_calls();
    drivekit.control.clear_calls();
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [0, 0, 1, 0, 5, 0, 0], "{r}");
    assert_eq!(counts(&r, "drivekit"), [0, 0, 0, 0, 12, 0, 0], "{r}");
    assert_eq!(motive.by_external_id("E01")[0]["status"], "deactivated");
    assert_eq!(motive.control.writes(), 1);
    assert_eq!(drivekit.control.writes(), 0);
    assert_eq!(drivekit.status("E01"), Some("ENABLE"));

    // A nested group taken out of `drivers` takes its members with it.
    env.sandbox
        .scim
        .remove_member(&drivers, &night)
        .expect("member");
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 0, "{r}");
    // (E01, already deactivated, counts as unchanged.)
    assert_eq!(counts(&r, "motive"), [0, 0, 1, 0, 5, 0, 0], "{r}");
    assert_eq!(motive.by_external_id("E06")[0]["status"], "deactivated");
    assert_eq!(drivekit.status("E06"), Some("ENABLE"));

    // Back in the group: reactivated.
    env.sandbox
        .scim
        .add_member(&drivers, &users[0])
        .expect("member");
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [0, 0, 0, 1, 5, 0, 0], "{r}");
    assert_eq!(motive.by_external_id("E01")[0]["status"], "active");
}

/// `auto` (the default) reads `/Groups` only when `/Users` brings no `groups`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_reads_groups_only_when_users_do_not_carry_them() {
    let env = env("").await;
    directory(&env);
    let tok = token();
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[0], 6, "{r}");
    assert_eq!(list_queries(&env, "/Groups").len(), 3);
    // `auto` needs to see `User.groups`, so it does not ask the provider to leave it out.
    assert!(
        list_queries(&env, "/Users")
            .iter()
            .all(|q| !q.contains("excludedAttributes"))
    );

    // The provider starts filling `User.groups` (direct and indirect): the same people
    // are in scope, and /Groups is no longer read.
    env.sandbox.scim.set_user_groups(UserGroups::Derived);
    env.sandbox.scim.control.clear_calls();
    env.sandbox.motive.control.clear_calls();
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [0, 0, 0, 0, 6, 0, 0], "{r}");
    assert!(list_queries(&env, "/Groups").is_empty());
    assert_eq!(env.sandbox.motive.control.writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_inconsistent_groups_read_refuses_the_pass() {
    let env = env("groups_from = \"groups\"").await;
    let (users, drivers, _) = directory(&env);
    let (scim, motive, drivekit) = (
        &env.sandbox.scim,
        &env.sandbox.motive,
        &env.sandbox.drivekit,
    );
    let tok = token();
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[0], 6);

    // Someone leaves `drivers`, but page 2 of /Groups fails (every retry too): the pass
    // is refused, nothing is written anywhere, nobody is deactivated.
    scim.remove_member(&drivers, &users[1]).expect("member");
    scim.control.inject(
        Fault::new(
            Some(Method::GET),
            "/Groups",
            503,
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"503","detail":"groups index rebuilding"}"#,
        )
        .query_contains("startIndex=3&")
        .times(5),
    );
    motive.control.clear_calls();
    drivekit.control.clear_calls();
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 3, "{r}");
    let refused = r["refused"].as_str().unwrap_or_default();
    assert!(
        refused.contains("/Groups")
            && refused.contains("503")
            && refused.contains("groups index rebuilding"),
        "{refused}"
    );
    assert_eq!(motive.control.writes(), 0);
    assert_eq!(drivekit.control.writes(), 0);
    assert_eq!(motive.by_external_id("E02")[0]["status"], "active");
    scim.control.clear_faults();

    // A group is created between two pages of /Groups: totalResults moves, refused.
    // (6 pages of /Users, then page 1 of /Groups.)
    scim.after_list_requests(7, |s| {
        s.add_group("late", &[]).expect("group");
    });
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 3, "{r}");
    let refused = r["refused"].as_str().unwrap_or_default();
    assert!(
        refused.contains("/Groups page 2") && refused.contains("totalResults changed"),
        "{refused}"
    );
    assert_eq!(motive.control.writes(), 0);
    assert_eq!(drivekit.control.writes(), 0);

    // A listing that does not add up (a group without a name to scope by): refused.
    let nameless = scim.add_group("nameless", &[&users[9]]).expect("group");
    scim.update_group(&nameless, json!({"displayName": null}));
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 3, "{r}");
    let refused = r["refused"].as_str().unwrap_or_default();
    assert!(refused.contains("has no `displayName`"), "{refused}");
    assert_eq!(motive.control.writes(), 0);
    scim.remove_group(&nameless);

    // Whole again: the departure goes through, at the scoped vendor only.
    let (code, r) = env.json_without(&["reconcile"], &[&tok]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [0, 0, 1, 0, 5, 0, 0], "{r}");
    assert_eq!(counts(&r, "drivekit"), [0, 0, 0, 0, 12, 0, 0], "{r}");
    assert_eq!(motive.by_external_id("E02")[0]["status"], "deactivated");
}
