//! The harness the vendor tests share: the sandbox, a temporary directory holding the
//! people file, a store, and passes run through the library (config → `Context` →
//! `run_once`). Each vendor file adds its own `[vendors.NAME]` table and secrets.

// Every test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use chrono::Utc;
use roster::model::{Fields, PersonId};
use roster::model::{RecordState, VendorRecord};
use roster::pass::{Context, PassOptions, run_once};
use roster::report::Report;
use roster::settings::load_str;
use roster::shutdown::Shutdown;
use roster::store::Store;
use roster_sandbox::{Credentials, Sandbox};
use serde_json::Value;
use tempfile::TempDir;

/// The `safety` and `retry` limits a suite may need raised (many people, slow pacing).
#[derive(Clone, Copy)]
pub struct Limits {
    pub max_deactivations: u32,
    pub max_elapsed_secs: u64,
    pub pass_budget_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_deactivations: 50,
            max_elapsed_secs: 10,
            pass_budget_secs: 30,
        }
    }
}

pub struct Env {
    pub sandbox: Sandbox,
    pub dir: TempDir,
    pub store: Store,
    pub limits: Limits,
}

impl Env {
    /// The store lives in the temporary directory, as `roster` keeps it.
    pub async fn new() -> Self {
        Self::start(|dir| Store::open(&dir.path().join("state")).expect("store opens")).await
    }

    pub async fn with_temporary_store() -> Self {
        Self::start(|_| Store::temporary().expect("store")).await
    }

    async fn start(open_store: impl FnOnce(&TempDir) -> Store) -> Self {
        let sandbox = Sandbox::start(Credentials::default())
            .await
            .expect("sandbox starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_store(&dir);
        Self {
            sandbox,
            dir,
            store,
            limits: Limits::default(),
        }
    }

    /// The config text: short retries, safety limits that let every removal through, the
    /// `people.json` file source, then `vendor_table` (whole `[vendors.NAME]` tables).
    pub fn config_around(&self, vendor_table: &str, timeout_secs: u64) -> String {
        let Limits {
            max_deactivations,
            max_elapsed_secs,
            pass_budget_secs,
        } = self.limits;
        format!(
            "state_dir = \"state\"\n\
             [retry]\ninitial_interval_ms = 10\nmax_interval_secs = 5\n\
             max_elapsed_secs = {max_elapsed_secs}\npass_budget_secs = {pass_budget_secs}\n\
             request_timeout_secs = {timeout_secs}\n\
             [safety]\nmax_deactivations = {max_deactivations}\nmax_deactivation_ratio = 1.0\n\
             max_source_drop_ratio = 1.0\n\
             [source]\ntype = \"file\"\npath = \"people.json\"\n\
             {vendor_table}\n"
        )
    }

    pub fn context_from(&self, config: &str) -> Context {
        let settings = load_str(config, self.dir.path(), Vec::new()).expect("config");
        Context::build(settings, std::sync::Arc::new(roster::pass::NoHooks)).expect("context")
    }

    pub fn write_people(&self, people: &[Value]) {
        self.write_people_text(Value::from(people.to_vec()).to_string());
    }

    pub fn write_people_pretty(&self, people: &[Value]) {
        self.write_people_text(
            serde_json::to_string_pretty(&Value::Array(people.to_vec())).expect("json"),
        );
    }

    fn write_people_text(&self, text: String) {
        std::fs::write(self.dir.path().join("people.json"), text).expect("write people");
    }

    pub async fn run(&self, ctx: &Context) -> Report {
        run_once(
            ctx,
            &self.store,
            &PassOptions::default(),
            &Shutdown::never(),
        )
        .await
        .expect("pass runs")
    }

    /// `run`, also asserting that the pass was not refused and that none of `secrets`
    /// shows in the JSON report.
    pub async fn pass_without(&self, ctx: &Context, secrets: &[&str]) -> Report {
        let report = self.run(ctx).await;
        assert!(
            report.refused.is_none(),
            "pass refused: {:?}",
            report.refused
        );
        let text = serde_json::to_string(&report).expect("json");
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "a secret leaked into the report: {text}"
            );
        }
        report
    }

    /// What a crash between writing the intent and the vendor's answer leaves behind: a
    /// record of `id` with no remote id yet.
    pub async fn put_intent(&self, vendor: &str, id: &str) {
        let record = VendorRecord {
            remote_id: None,
            state: RecordState::Creating,
            fields: Fields::new(),
            linked_at: Utc::now(),
            updated_at: Utc::now(),
        };
        self.store
            .put(vendor, &PersonId::from(id), &record)
            .await
            .expect("put");
    }

    pub fn record_in(&self, vendor: &str, id: &str) -> Option<VendorRecord> {
        self.store
            .get(vendor, &PersonId::from(id))
            .expect("store read")
    }
}
