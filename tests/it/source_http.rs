//! The `http` source against the sandbox's HR API fake (three pagination styles),
//! through the real binary to the Motive fake.

use axum::http::Method;
use roster_sandbox::{Credentials, Fault};
use serde_json::{Value, json};

use crate::common::{DRIVERS_ONLY, Env, MOTIVE_KEY, counts, motive_vendor_with};

fn bearer() -> String {
    format!("Bearer {}", Credentials::default().hr_token)
}

const MAPPING: &str = "active_values = [\"active\", \"on_leave\"]\n\
                       [source.fields]\nid = \"/employeeId\"\nemail = \"/work/email\"\n\
                       phone = \"/work/phone\"\nfirst_name = \"/name/first\"\nlast_name = \"/name/last\"\n\
                       active = \"/status\"\ngroups = \"/teams\"\n\
                       [source.attributes]\n\"motive.eld_mode\" = \"/fleet/eldMode\"\n";

fn employee(n: usize, status: &str) -> Value {
    json!({
        "employeeId": format!("E{n:04}"),
        "name": {"first": format!("First{n}"), "last": format!("Last{n}")},
        "work": {"email": format!("e{n:04}@example.com"), "phone": format!("+1555100{n:04}")},
        "status": status,
        "teams": ["drivers"],
        "fleet": {"eldMode": "logs"},
    })
}

/// An env whose source reads `path` of the HR fake with `paging` keys.
async fn env(path: &str, paging: &str) -> Env {
    Env::with_source_secret(
        &format!(
            "type = \"http\"\nurl = \"{{url:hr}}{path}\"\nauth_value_file = \"{{dir}}/hr.secret\"\n\
             timeout_secs = 5\nretries = 1\n{paging}\n{MAPPING}"
        ),
        &motive_vendor_with("motive", MOTIVE_KEY, DRIVERS_ONLY),
        "hr.secret",
        &format!("{}\n", bearer()),
    )
    .await
}

const NEXT_LINK: &str = "records_pointer = \"/data/employees\"\npagination = \"next_link\"\n\
                         next_pointer = \"/links/next\"";
const PAGES: &str = "records_pointer = \"/data/employees\"\npagination = \"page\"\n\
                     page_size_param = \"per_page\"\npage_size = 100\ntotal_pointer = \"/meta/total\"";

fn list_calls(env: &Env) -> usize {
    env.sandbox
        .hr
        .control
        .calls()
        .iter()
        .filter(|c| c.method == "GET")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_add_change_disable_remove() {
    let env = env("/v1/employees?limit=2", NEXT_LINK).await;
    let (hr, motive) = (&env.sandbox.hr, &env.sandbox.motive);
    let mut staff = vec![
        employee(1, "active"),
        employee(2, "on_leave"),
        employee(3, "active"),
        employee(4, "terminated"),
    ];
    hr.set_employees(staff.clone());
    let secret = bearer();

    let (code, r) = env.json_without(&["reconcile"], &[&secret]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["source"]["records"], 4);
    assert_eq!(counts(&r, "motive"), [3, 0, 0, 0, 0, 0, 0], "{r}");
    assert_eq!(
        list_calls(&env),
        2,
        "two pages of two via relative next links"
    );
    let e1 = motive.by_external_id("E0001");
    assert_eq!(e1[0]["email"], "e0001@example.com");
    assert_eq!(e1[0]["phone"], "+15551000001");
    assert!(
        motive.by_external_id("E0004").is_empty(),
        "terminated: never created"
    );

    // Change, disable (a status that is not in active_values), add.
    staff[0]["name"]["last"] = json!("Changed");
    staff[1]["status"] = json!("terminated");
    staff.push(employee(5, "active"));
    hr.set_employees(staff.clone());
    let (code, r) = env.json_without(&["reconcile"], &[&secret]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [1, 1, 1, 0, 1, 0, 0], "{r}");
    assert_eq!(motive.by_external_id("E0001")[0]["last_name"], "Changed");
    assert_eq!(motive.by_external_id("E0002")[0]["status"], "deactivated");
    assert_eq!(motive.by_external_id("E0005")[0]["status"], "active");

    // Removed from the HR system: deactivated.
    staff.remove(2);
    hr.set_employees(staff.clone());
    let (code, r) = env.json_without(&["reconcile"], &[&secret]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [0, 0, 1, 0, 3, 0, 0], "{r}");
    assert_eq!(motive.by_external_id("E0003")[0]["status"], "deactivated");

    // Back from leave: reactivated, no second account.
    staff[1]["status"] = json!("active");
    hr.set_employees(staff);
    let (code, r) = env.json_without(&["reconcile"], &[&secret]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[3], 1, "{r}");
    assert_eq!(motive.by_external_id("E0002").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbered_pages_and_link_headers_read_everything() {
    // Page numbers: asks for 100 a page, the server caps at 25, the total says 90.
    let env_pages = env("/v2/employees", PAGES).await;
    env_pages
        .sandbox
        .hr
        .set_employees((1..=90).map(|n| employee(n, "active")).collect());
    let (code, r) = env_pages.json_without(&["plan"], &[&bearer()]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["source"]["records"], 90, "{r}");
    assert_eq!(counts(&r, "motive")[0], 90);
    assert_eq!(list_calls(&env_pages), 4, "25 + 25 + 25 + 15");

    // Link headers (absolute URLs), a bare array body, no total: 60 in pages of 25.
    let env_links = env("/v3/employees", "pagination = \"next_link\"").await;
    env_links
        .sandbox
        .hr
        .set_employees((1..=60).map(|n| employee(n, "active")).collect());
    let (code, r) = env_links.json_without(&["plan"], &[&bearer()]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["source"]["records"], 60, "{r}");
    assert_eq!(list_calls(&env_links), 3);

    // Page numbers without a total: the read ends at the first empty page.
    let env_empty = env(
        "/v2/employees",
        "records_pointer = \"/data/employees\"\npagination = \"page\"\npage_size_param = \"per_page\"\npage_size = 20",
    )
    .await;
    env_empty
        .sandbox
        .hr
        .set_employees((1..=45).map(|n| employee(n, "active")).collect());
    let (code, r) = env_empty.json_without(&["plan"], &[&bearer()]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["source"]["records"], 45, "{r}");
    assert_eq!(list_calls(&env_empty), 4, "20 + 20 + 5 + an empty page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_page_a_loop_or_a_short_read_refuses_the_pass() {
    let env = env(
        "/v2/employees",
        &PAGES.replace("page_size = 100", "page_size = 10"),
    )
    .await;
    let (hr, motive) = (&env.sandbox.hr, &env.sandbox.motive);
    hr.set_employees((1..=35).map(|n| employee(n, "active")).collect());
    let secret = bearer();
    let (code, r) = env.json_without(&["reconcile"], &[&secret]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[0], 35);

    // Page 2 answers 500 (retries too): refused, nothing pushed, nobody deactivated.
    hr.after_list_requests(1, |h| {
        h.control.inject(
            Fault::new(
                Some(Method::GET),
                "/employees",
                500,
                r#"{"message":"db down"}"#,
            )
            .times(5),
        );
    });
    motive.control.clear_calls();
    let (code, r) = env.json_without(&["reconcile"], &[&secret]).await;
    assert_eq!(code, 3, "{r}");
    let refused = r["refused"].as_str().unwrap_or_default();
    assert!(
        refused.contains("500") && refused.contains("db down"),
        "{refused}"
    );
    assert_eq!(motive.control.writes(), 0);
    hr.control.clear_faults();

    // Page 3 is not JSON.
    hr.after_list_requests(2, |h| {
        h.control.inject(Fault::new(
            Some(Method::GET),
            "/employees",
            200,
            "<html>oops</html>",
        ));
    });
    let (code, r) = env.json_without(&["reconcile"], &[&secret]).await;
    assert_eq!(code, 3, "{r}");
    assert!(
        r["refused"]
            .as_str()
            .is_some_and(|m| m.contains("not JSON")),
        "{r}"
    );

    // The total promises more than the pages hold.
    hr.set_total_skew(7);
    let (code, r) = env.json_without(&["reconcile"], &[&secret]).await;
    assert_eq!(code, 3, "{r}");
    assert!(
        r["refused"]
            .as_str()
            .is_some_and(|m| m.contains("incomplete")),
        "{r}"
    );
    hr.set_total_skew(0);
    assert_eq!(motive.control.writes(), 0);
    assert!(motive.users().iter().all(|u| u["status"] == "active"));

    // A next link that loops forever is caught.
    let looping = self::env("/v1/employees?limit=5", NEXT_LINK).await;
    looping
        .sandbox
        .hr
        .set_employees((1..=20).map(|n| employee(n, "active")).collect());
    looping.sandbox.hr.set_next_loop(true);
    let (code, r) = looping.json_without(&["reconcile"], &[&secret]).await;
    assert_eq!(code, 3, "{r}");
    assert!(
        r["refused"]
            .as_str()
            .is_some_and(|m| m.contains("paging loop")),
        "{r}"
    );
    assert_eq!(looping.sandbox.motive.control.writes(), 0);

    // A wrong secret: refused with the status.
    std::fs::write(env.path("hr.secret"), "Bearer nope").expect("secret");
    let (code, r) = env
        .json_without(&["reconcile"], &[&secret, "Bearer nope"])
        .await;
    assert_eq!(code, 3, "{r}");
    assert!(
        r["refused"].as_str().is_some_and(|m| m.contains("401")),
        "{r}"
    );
}

/// The source answers every page 429 for a few seconds (first with `Retry-After`, then
/// with no hint at all), then recovers: the read waits it out, page retries are not
/// spent on it, and everyone is created once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_throttles_its_pages_is_waited_for() {
    let env = env(
        "/v2/employees",
        &PAGES.replace("page_size = 100", "page_size = 5"),
    )
    .await;
    let (hr, motive) = (&env.sandbox.hr, &env.sandbox.motive);
    hr.set_employees((1..=20).map(|n| employee(n, "active")).collect());
    let secret = bearer();
    for reply in [
        roster_sandbox::StormReply::RetryAfter(1),
        roster_sandbox::StormReply::Bare,
    ] {
        motive.control.clear_calls();
        let storm = std::time::Duration::from_secs(3);
        hr.control.storm(storm, reply);
        let started = std::time::Instant::now();
        let (code, r) = env.json_without(&["reconcile"], &[&secret]).await;
        let took = started.elapsed();
        assert_eq!(code, 0, "{reply:?}: {r}");
        assert!(hr.control.count_status(429) > 0, "the source did refuse");
        assert!(
            took <= storm + std::time::Duration::from_secs(4),
            "{reply:?}: the read took {took:?}"
        );
        hr.control.clear_calls();
        hr.set_employees(
            (1..=20)
                .map(|n| {
                    let mut e = employee(n, "active");
                    e["name"]["last"] = json!(format!("{reply:?}{n}"));
                    e
                })
                .collect(),
        );
    }
    assert_eq!(motive.users().len(), 20, "everyone exactly once");
}
