//! The executor and the pass against in-process fake vendors (`fake.rs`) and a temporary
//! store: the create protocol, failures, budgets, shutdown and the report. Milliseconds,
//! no HTTP.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;

use super::fake::{Call, FakeVendor};
use super::*;
use crate::budget::Budget;
use crate::http::Observer;
use crate::model::{Fields, Person, RecordState, Snapshot};
use crate::report::Credentials;
use crate::source::{Source, SourceError};
use crate::vendor::VendorError;

mod dates;
mod reuse;

/// A source that returns what the test put in it.
struct Fixed(Mutex<Vec<Person>>, Mutex<Vec<crate::model::InvalidRecord>>);

#[async_trait]
impl Source for Fixed {
    async fn fetch(&self, _budget: &Budget) -> Result<Snapshot, SourceError> {
        Ok(Snapshot {
            people: self.0.lock().expect("lock").clone(),
            invalid: self.1.lock().expect("lock").clone(),
        })
    }

    fn describe(&self) -> String {
        "fixed".into()
    }
}

/// Hears progress and retries.
#[derive(Default)]
struct Heard {
    progress: Mutex<Vec<(String, usize, usize)>>,
    retries: AtomicUsize,
}

impl Observer for Heard {}

impl Hooks for Heard {
    fn retry(&self, _vendor: &str, _error: &VendorError, _wait: Duration) {
        self.retries.fetch_add(1, Ordering::SeqCst);
    }
    fn progress(&self, vendor: &str, done: usize, total: usize) {
        self.progress
            .lock()
            .expect("lock")
            .push((vendor.to_string(), done, total));
    }
}

fn person(id: &str, last: &str) -> Person {
    let mut p = Person::new(id);
    p.first_name = Some("Ann".into());
    p.last_name = Some(last.into());
    p.email = Some(format!("{}@x.io", id.to_lowercase()).into());
    p
}

fn people(n: usize, last: &str) -> Vec<Person> {
    (0..n).map(|i| person(&format!("E{i:02}"), last)).collect()
}

struct Env {
    ctx: Context,
    store: Store,
    source: Arc<Fixed>,
    heard: Arc<Heard>,
}

/// `vendors` by name, each served by its fake; `extra` is more config (e.g. `[retry]`).
fn env(vendors: &[(&str, &Arc<FakeVendor>)], extra: &str, concurrency: usize) -> Env {
    let mut text = format!(
        "state_dir = \"state\"\n{extra}\n[safety]\nmax_deactivation_ratio = 1.0\n\
         max_source_drop_ratio = 1.0\n[source]\ntype = \"file\"\npath = \"p.json\"\n"
    );
    for (name, _) in vendors {
        text.push_str(&format!(
            "[vendors.{name}]\ntype = \"motive\"\napi_key = \"k\"\nconcurrency = {concurrency}\n"
        ));
    }
    let settings =
        crate::settings::load_str(&text, std::path::Path::new("/"), Vec::new()).expect("config");
    let heard = Arc::new(Heard::default());
    let source = Arc::new(Fixed(Mutex::new(Vec::new()), Mutex::new(Vec::new())));
    let vendors = vendors
        .iter()
        .map(|(name, fake)| {
            let settings = settings.vendors[*name].clone();
            (settings, Arc::clone(fake) as Arc<dyn Vendor>)
        })
        .collect();
    let ctx = Context {
        settings,
        source: Box::new(SharedSource(Arc::clone(&source))),
        vendors,
        hooks: heard.clone(),
    };
    Env {
        ctx,
        store: Store::temporary().expect("store"),
        source,
        heard,
    }
}

struct SharedSource(Arc<Fixed>);

#[async_trait]
impl Source for SharedSource {
    async fn fetch(&self, budget: &Budget) -> Result<Snapshot, SourceError> {
        self.0.fetch(budget).await
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

const FAST: &str = "[retry]\ninitial_interval_ms = 1\nmax_interval_secs = 1\nmax_elapsed_secs = 2\n\
                    pass_budget_secs = 5\nrequest_timeout_secs = 1\n";

impl Env {
    fn set(&self, people: Vec<Person>) {
        *self.source.0.lock().expect("lock") = people;
    }

    async fn pass(&self) -> Report {
        self.pass_until(&Shutdown::never()).await
    }

    async fn pass_until(&self, shutdown: &Shutdown) -> Report {
        self.pass_with(&PassOptions::default(), shutdown).await
    }

    async fn pass_with(&self, opts: &PassOptions, shutdown: &Shutdown) -> Report {
        run_once(&self.ctx, &self.store, opts, shutdown)
            .await
            .expect("pass")
    }

    fn record(&self, vendor: &str, id: &str) -> Option<VendorRecord> {
        self.store.get(vendor, &PersonId::from(id)).expect("read")
    }
}

#[tokio::test(start_paused = true)]
async fn creates_once_then_a_second_pass_makes_no_call() {
    let fake = FakeVendor::new("v");
    let env = env(&[("v", &fake)], FAST, 4);
    env.set(people(3, "Lee"));
    let r = env.pass().await;
    let v = &r.vendors["v"];
    assert_eq!((v.created, v.failed, v.skipped), (3, 0, 0), "{v:?}");
    assert_eq!(fake.calls(Call::Lookup), 3, "a lookup before each create");
    assert_eq!(fake.calls(Call::Create), 3);
    let rec = env.record("v", "E00").expect("recorded");
    assert_eq!(rec.state, RecordState::Active);
    assert!(rec.remote_id.is_some());

    let before = fake.writes() + fake.calls(Call::Lookup);
    let r = env.pass().await;
    assert_eq!(r.vendors["v"].unchanged, 3);
    assert_eq!(
        fake.writes() + fake.calls(Call::Lookup),
        before,
        "no call at all"
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_between_intent_and_record_is_resolved_by_lookup_not_a_second_create() {
    let fake = FakeVendor::new("v");
    let env = env(&[("v", &fake)], FAST, 1);
    env.set(vec![person("E1", "Lee")]);
    // What a crash leaves: the vendor made the account, the store only has the intent.
    fake.add("E1", person_fields("Lee"), true);
    let intent = VendorRecord {
        remote_id: None,
        state: RecordState::Creating,
        fields: Fields::new(),
        linked_at: Utc::now(),
        updated_at: Utc::now(),
    };
    env.store
        .put("v", &PersonId::from("E1"), &intent)
        .await
        .expect("intent");
    let r = env.pass().await;
    assert_eq!(r.vendors["v"].adopted, 1, "{:?}", r.vendors["v"]);
    assert_eq!(fake.calls(Call::Create), 0);
    assert_eq!(fake.by_key("E1").len(), 1);
    assert_eq!(
        env.record("v", "E1").expect("linked").state,
        RecordState::Active
    );
}

fn person_fields(last: &str) -> Fields {
    [("name".to_string(), format!("Ann {last}"))].into()
}

#[tokio::test(start_paused = true)]
async fn a_create_whose_reply_is_lost_is_looked_up_on_retry_and_adopted() {
    let fake = FakeVendor::new("v");
    let env = env(&[("v", &fake)], FAST, 1);
    env.set(vec![person("E1", "Lee")]);
    fake.lose_reply(Call::Create);
    let r = env.pass().await;
    let v = &r.vendors["v"];
    assert_eq!((v.adopted, v.failed), (1, 0), "{v:?}");
    assert_eq!(fake.calls(Call::Create), 1, "never created twice");
    assert_eq!(fake.by_key("E1").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_existing_inactive_account_is_adopted_reactivated_and_brought_up_to_date() {
    let fake = FakeVendor::new("v");
    let env = env(&[("v", &fake)], FAST, 1);
    env.set(vec![person("E1", "Lee")]);
    fake.add("E1", person_fields("Old"), false);
    let r = env.pass().await;
    assert_eq!(r.vendors["v"].adopted, 1);
    let account = &fake.by_key("E1")[0];
    assert!(account.active);
    assert_eq!(account.fields["name"], "Ann Lee");
    assert_eq!(fake.calls(Call::Create), 0);
}

#[tokio::test(start_paused = true)]
async fn rejected_credentials_stop_only_that_vendor() {
    let (bad, good) = (FakeVendor::new("bad"), FakeVendor::new("good"));
    let env = env(&[("bad", &bad), ("good", &good)], FAST, 1);
    env.set(people(5, "Lee"));
    bad.fail(
        Call::Lookup,
        VendorError::Auth {
            status: 401,
            detail: "no".into(),
        },
        1,
    );
    let r = env.pass().await;
    assert_eq!(r.vendors["good"].created, 5);
    let b = &r.vendors["bad"];
    assert_eq!((b.created, b.failed), (0, 5), "{b:?}");
    assert_eq!(
        bad.calls(Call::Lookup),
        1,
        "one refusal, then no more calls"
    );
    assert!(b.errors.iter().all(|e| e.kind.as_deref() == Some("auth")));
    assert!(
        b.errors[1..]
            .iter()
            .all(|e| e.message.starts_with("not attempted") && e.status.is_none()),
        "{:?}",
        b.errors
    );
    assert_eq!(b.errors[0].status, Some(401), "the refused call's status");
    assert_eq!(b.credentials, Some(Credentials::Rejected));
    assert_eq!(r.vendors["good"].credentials, Some(Credentials::Accepted));
    assert_eq!(r.exit_code(), 1);
    // Nothing to do: no call answered, nothing learned about the credentials.
    let r = env.pass().await;
    assert_eq!(r.vendors["good"].credentials, None);
}

#[tokio::test(start_paused = true)]
async fn refusals_are_not_retried_and_server_errors_are() {
    let fake = FakeVendor::new("v");
    let env = env(&[("v", &fake)], FAST, 1);
    env.set(vec![person("E1", "Lee"), person("E2", "Ray")]);
    // E1's create is refused; E2's first two creates meet a server error.
    fake.fail(
        Call::Create,
        VendorError::Rejected {
            status: 422,
            detail: "bad email".into(),
        },
        1,
    );
    fake.fail(
        Call::Create,
        VendorError::Server {
            status: 503,
            detail: "down".into(),
        },
        2,
    );
    let r = env.pass().await;
    let v = &r.vendors["v"];
    assert_eq!((v.created, v.failed), (1, 1), "{v:?}");
    assert_eq!(v.errors[0].person, "E1");
    assert_eq!(v.errors[0].kind.as_deref(), Some("rejected"));
    assert_eq!(fake.calls(Call::Create), 4, "1 refused + 2 failed + 1 made");
    assert_eq!(env.heard.retries.load(Ordering::SeqCst), 2);
    // The refused create made nothing: no intent is left behind.
    assert_eq!(env.record("v", "E1"), None);
}

#[tokio::test(start_paused = true)]
async fn a_vendor_that_keeps_failing_costs_the_retry_limits_and_no_more() {
    let fake = FakeVendor::new("v");
    let env = env(&[("v", &fake)], FAST, 2);
    env.set(people(4, "Lee"));
    fake.fail(
        Call::Lookup,
        VendorError::Server {
            status: 500,
            detail: "down".into(),
        },
        10_000,
    );
    let started = tokio::time::Instant::now();
    let r = env.pass().await;
    let v = &r.vendors["v"];
    assert_eq!(v.failed, 4, "{v:?}");
    assert!(v.errors.iter().all(|e| e.kind.as_deref() == Some("server")));
    // max_elapsed_secs = 2 per operation, two at a time: about 4 s; the 5 s pass budget
    // bounds it in any case.
    assert!(
        started.elapsed() <= Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.calls(Call::Create), 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_mid_pass_finishes_in_flight_calls_and_starts_no_new_one() {
    let fake = FakeVendor::new("v");
    let env = env(&[("v", &fake)], FAST, 1);
    env.set(people(6, "Lee"));
    fake.set_latency(Duration::from_millis(100));
    let (trigger, shutdown) = crate::shutdown::channel();
    let fire = async {
        // During the second person's calls (each person: a lookup and a create).
        tokio::time::sleep(Duration::from_millis(250)).await;
        trigger.trigger();
    };
    let (r, ()) = tokio::join!(env.pass_until(&shutdown), fire);
    let v = &r.vendors["v"];
    assert_eq!(v.created + v.failed, 6, "{v:?}");
    assert!(v.created >= 1 && v.created < 6, "{v:?}");
    assert!(
        v.errors.iter().all(|e| e.message.contains("shutting down")),
        "{:?}",
        v.errors
    );
    // Every account the vendor made is recorded: nothing was cut off mid-call.
    for (_, account) in fake.accounts() {
        let rec = env
            .record("v", account.key.as_str())
            .expect("every account made is recorded");
        assert_eq!(rec.state, RecordState::Active);
    }
}

#[tokio::test(start_paused = true)]
async fn progress_and_report_counts_follow_the_operations() {
    let fake = FakeVendor::new("v");
    let env = env(&[("v", &fake)], FAST, 2);
    env.set(people(4, "Lee"));
    env.pass().await;
    // Change two, deactivate one, leave one; one new person cannot be mapped.
    let mut next = people(4, "Lee");
    next[0].last_name = Some("Ray".into());
    next[1].last_name = Some("Ray".into());
    next[2].active = false;
    let mut nameless = Person::new("E99");
    nameless.email = Some("x@y.io".into());
    next.push(nameless);
    env.set(next);
    env.heard.progress.lock().expect("lock").clear();
    let r = env.pass().await;
    let v = &r.vendors["v"];
    assert_eq!(
        (v.updated, v.deactivated, v.unchanged, v.skipped, v.failed),
        (2, 1, 1, 1, 0),
        "{v:?}"
    );
    assert_eq!(v.errors.len(), 1);
    assert_eq!(v.errors[0].op, crate::model::Op::Create);
    assert_eq!(v.errors[0].outcome, crate::model::Outcome::Skipped);
    let progress = env.heard.progress.lock().expect("lock").clone();
    let dones: Vec<usize> = progress.iter().map(|(_, d, _)| *d).collect();
    assert_eq!(dones, [1, 2, 3], "one tick per operation, in order");
    assert!(
        progress
            .iter()
            .all(|(name, _, total)| name == "v" && *total == 3)
    );
    assert!(!fake.by_key("E02")[0].active);
}

#[tokio::test(start_paused = true)]
async fn a_failed_store_write_stops_the_pass_and_the_report_says_what_reached_the_vendor() {
    let (one, two) = (FakeVendor::new("one"), FakeVendor::new("two"));
    let env = env(&[("one", &one), ("two", &two)], FAST, 1);
    env.set(people(6, "Lee"));
    let r = env.pass().await;
    assert_eq!((r.vendors["one"].created, r.vendors["two"].created), (6, 6));

    // Everyone changes; the disk fills after three more record writes.
    env.set(people(6, "Ray"));
    env.store.fail_writes_after(3);
    let r = env.pass().await;
    assert!(r.stopped.is_some(), "{r:?}");
    assert_eq!(r.exit_code(), 1);
    let (updates, recorded): (usize, usize) = [&one, &two]
        .iter()
        .zip(["one", "two"])
        .map(|(fake, name)| (fake.calls(Call::Update), r.vendors[name].updated))
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    assert_eq!(recorded, 3, "three updates recorded: {r:?}");
    let unrecorded: Vec<&crate::report::OpError> = r
        .vendors
        .values()
        .flat_map(|v| &v.errors)
        .filter(|e| e.message.starts_with("done at the vendor, not recorded"))
        .collect();
    // Exactly the calls the vendors acknowledged: recorded, or reported as not recorded.
    assert_eq!(updates, recorded + unrecorded.len(), "{r:?}");
    assert!(
        (1..=2).contains(&unrecorded.len()),
        "one in flight per vendor at most"
    );
    assert!(
        unrecorded
            .iter()
            .all(|e| e.kind.as_deref() == Some("store"))
    );
    let rest: Vec<&crate::report::OpError> = r
        .vendors
        .values()
        .flat_map(|v| &v.errors)
        .filter(|e| !e.message.starts_with("done at the vendor"))
        .collect();
    assert_eq!(recorded + unrecorded.len() + rest.len(), 12);
    assert!(
        rest.iter()
            .all(|e| e.message.contains("not attempted") && e.kind.as_deref() == Some("not_sent")),
        "{rest:?}"
    );

    // The disk has room again: the next pass finishes the job, re-sending what was not
    // recorded, and then there is nothing left to do.
    env.store.fail_writes_after(u64::MAX);
    let r = env.pass().await;
    assert_eq!(r.exit_code(), 0, "{r:?}");
    assert_eq!(r.vendors["one"].updated + r.vendors["two"].updated, 9);
    let r = env.pass().await;
    assert_eq!(r.vendors["one"].unchanged + r.vendors["two"].unchanged, 12);
}

#[tokio::test(start_paused = true)]
async fn a_create_intent_that_cannot_be_written_sends_nothing() {
    let fake = FakeVendor::new("v");
    let env = env(&[("v", &fake)], FAST, 1);
    env.set(people(3, "Lee"));
    env.store.fail_writes_after(0);
    let r = env.pass().await;
    let v = &r.vendors["v"];
    assert_eq!(fake.calls(Call::Create), 0, "{v:?}");
    assert_eq!(v.failed, 3);
    assert!(
        v.errors[0]
            .message
            .contains("nothing was done at the vendor"),
        "{v:?}"
    );
    assert!(
        v.errors[1..]
            .iter()
            .all(|e| e.message.contains("not attempted"))
    );
    assert!(r.stopped.is_some());
}
