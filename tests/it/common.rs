//! The one test harness: the vendor sandbox on a loopback port and a temporary directory
//! with a config and a people file. Passes run either through the real `roster` binary
//! (`run`, `json`, `reconcile`) or in process through the library (`in_process`, then
//! `pass_in` / `pass_without` with a `Context` from `context_from`), with the store at
//! hand for checks.

use std::path::PathBuf;
use std::process::Output;

use chrono::Utc;
use roster::model::{Fields, PersonId, RecordState, VendorRecord};
use roster::pass::{Context, NoHooks, PassOptions, run_once};
use roster::report::Report;
use roster::settings::load_str;
use roster::shutdown::Shutdown;
use roster::store::Store;
use roster_sandbox::{Credentials, Sandbox};
use serde_json::Value;
use tempfile::TempDir;

pub const MOTIVE_KEY: &str = "sandbox-motive-key";

pub struct Env {
    pub sandbox: Sandbox,
    pub dir: TempDir,
    pub config: PathBuf,
    /// Open only for in-process passes (the binary locks the state directory itself).
    store: Option<Store>,
    /// The limits in-process configs (`config_around`) use.
    pub limits: Limits,
}

/// The `safety` and `retry` limits an in-process suite may need raised.
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

/// Settings that keep retries short so failure tests finish quickly.
pub const FAST_RETRY: &str = "[retry]\ninitial_interval_ms = 10\nmax_interval_secs = 3\n\
                              max_elapsed_secs = 8\npass_budget_secs = 30\nrequest_timeout_secs = 5\n";

impl Env {
    /// A sandbox plus a config with `safety` and `vendors` TOML, where `{url:NAME}` is
    /// replaced by the sandbox URL of vendor NAME.
    pub async fn new(safety: &str, vendors: &str) -> Self {
        Self::with_retry(FAST_RETRY, safety, vendors).await
    }

    /// `new` with a whole `[retry]` table of its own.
    pub async fn with_retry(retry: &str, safety: &str, vendors: &str) -> Self {
        let sandbox = Sandbox::start(Credentials::default())
            .await
            .expect("sandbox starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut vendors = vendors.to_string();
        for v in ["motive", "drivekit", "telematics", "rocketchat"] {
            vendors = vendors.replace(&format!("{{url:{v}}}"), &sandbox.url(v));
        }
        let text = format!(
            "state_dir = \"state\"\n{retry}\n[safety]\n{safety}\n\n[source]\ntype = \"file\"\n\
             path = \"people.json\"\n\n{vendors}\n"
        );
        let config = dir.path().join("roster.toml");
        std::fs::write(&config, text).expect("write config");
        Self {
            sandbox,
            dir,
            config,
            store: None,
            limits: Limits::default(),
        }
    }

    /// The usual single-Motive setup with generous safety limits.
    pub async fn motive() -> Self {
        Self::new(
            "max_deactivations = 50\nmax_deactivation_ratio = 1.0\nmax_source_drop_ratio = 1.0",
            &motive_vendor("motive", MOTIVE_KEY),
        )
        .await
    }

    /// A sandbox plus a config with a whole `[source]` table: `source` is the TOML after
    /// the `[source]` line (sub-tables may follow it). `{url:NAME}` is replaced by the
    /// sandbox URL of NAME in `source` and `vendors` (vendors, and the `scim` and `hr`
    /// source fakes), and `{dir}` by the temporary directory.
    pub async fn with_source(source: &str, safety: &str, vendors: &str) -> Self {
        let sandbox = Sandbox::start(Credentials::default())
            .await
            .expect("sandbox starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let fill = |text: &str| {
            let mut text = text.replace("{dir}", &dir.path().display().to_string());
            for v in [
                "motive",
                "drivekit",
                "telematics",
                "rocketchat",
                "scim",
                "hr",
            ] {
                text = text.replace(&format!("{{url:{v}}}"), &sandbox.url(v));
            }
            text
        };
        let text = format!(
            "state_dir = \"state\"\n{FAST_RETRY}\n[safety]\n{safety}\n\n{vendors}\n\n[source]\n{source}\n",
            vendors = fill(vendors),
            source = fill(source),
        );
        let config = dir.path().join("roster.toml");
        std::fs::write(&config, text).expect("write config");
        Self {
            sandbox,
            dir,
            config,
            store: None,
            limits: Limits::default(),
        }
    }

    /// `with_source` for the source fakes feeding Motive: safety limits that let every
    /// removal through, and `secret` written to `{dir}/SECRET_FILE`, where the source
    /// reads it (so the config never holds it).
    pub async fn with_source_secret(
        source: &str,
        vendors: &str,
        secret_file: &str,
        secret: &str,
    ) -> Self {
        let env = Self::with_source(source, LOOSE_SAFETY, vendors).await;
        std::fs::write(env.path(secret_file), secret).expect("secret file");
        env
    }

    /// `json`, also asserting that none of `secrets` shows in stdout or stderr.
    pub async fn json_without(&self, args: &[&str], secrets: &[&str]) -> (i32, Value) {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        for text in [&stdout, &stderr] {
            assert_no_secrets(text);
            for s in secrets {
                assert!(
                    !text.contains(s),
                    "a source secret leaked into output:\n{text}"
                );
            }
        }
        let report = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
        (out.status.code().expect("exit code"), report)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the people file (`people.json`): any JSON array (a `Value`, a slice…).
    pub fn write_people<T: serde::Serialize + ?Sized>(&self, people: &T) {
        let text = serde_json::to_string(people).expect("json");
        std::fs::write(self.path("people.json"), text).expect("write people");
    }

    pub fn write_people_pretty(&self, people: &[Value]) {
        let text = serde_json::to_string_pretty(people).expect("json");
        std::fs::write(self.path("people.json"), text).expect("write people");
    }

    // ---- in process, through the library ----

    /// For passes in process: the store lives in the temporary directory, as `roster`
    /// keeps it.
    pub async fn in_process() -> Self {
        let mut env = Self::new("", "").await;
        env.store = Some(Store::open(&env.path("state")).expect("store opens"));
        env
    }

    /// `in_process` with a store in memory.
    pub async fn in_process_temporary() -> Self {
        let mut env = Self::new("", "").await;
        env.store = Some(Store::temporary().expect("store"));
        env
    }

    pub fn store(&self) -> &Store {
        self.store.as_ref().expect("an in-process env")
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
        Context::build(settings, std::sync::Arc::new(NoHooks)).expect("context")
    }

    /// One pass in process.
    pub async fn pass_in(&self, ctx: &Context) -> Report {
        run_once(
            ctx,
            self.store(),
            &PassOptions::default(),
            &Shutdown::never(),
        )
        .await
        .expect("pass runs")
    }

    /// `pass_in`, also asserting that the pass was not refused and that none of `secrets`
    /// shows in the JSON report.
    pub async fn pass_without(&self, ctx: &Context, secrets: &[&str]) -> Report {
        let report = self.pass_in(ctx).await;
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
        self.store()
            .put(vendor, &PersonId::from(id), &record)
            .await
            .expect("put");
    }

    pub fn record_in(&self, vendor: &str, id: &str) -> Option<VendorRecord> {
        self.store()
            .get(vendor, &PersonId::from(id))
            .expect("store read")
    }

    /// Runs `roster --config … ARGS` to completion.
    pub async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.expect("roster runs")
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_roster"));
        c.arg("--config").arg(&self.config).args(args);
        c.env_remove("RUST_LOG");
        c.kill_on_drop(true);
        c
    }

    /// Runs a command with `--json`; returns the exit code and the parsed report.
    pub async fn json(&self, args: &[&str]) -> (i32, Value) {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_no_secrets(&stdout);
        assert_no_secrets(&stderr);
        let report = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
        (out.status.code().expect("exit code"), report)
    }

    pub async fn reconcile(&self) -> (i32, Value) {
        self.json(&["reconcile"]).await
    }
}

/// Safety limits loose enough for passes of hundreds of people.
pub const LOOSE_SAFETY: &str =
    "max_deactivations = 500\nmax_deactivation_ratio = 1.0\nmax_source_drop_ratio = 1.0";

/// A `scope` for `motive_vendor_with`: only people in the `drivers` group.
pub const DRIVERS_ONLY: &str = "scope = { groups = [\"drivers\"] }\n";

pub fn motive_vendor(name: &str, key: &str) -> String {
    motive_vendor_with(name, key, "")
}

/// `motive_vendor` with `extra` keys (whole lines) in the vendor's table.
pub fn motive_vendor_with(name: &str, key: &str, extra: &str) -> String {
    format!(
        "[vendors.{name}]\ntype = \"motive\"\nbase_url = \"{{url:motive}}\"\napi_key = \"{key}\"\n{extra}\
         [vendors.{name}.defaults]\nrole = \"driver\"\neld_mode = \"logs\"\ntime_tracking_mode = \"logs\"\n"
    )
}

/// The four vendors' tables, named `motive`, `drivekit`, `telematics` and `chat`, with
/// the sandbox's credentials (`{url:NAME}` is filled in by `Env`).
pub fn all_vendors() -> String {
    let c = Credentials::default();
    format!(
        r#"
[vendors.motive]
type = "motive"
base_url = "{{url:motive}}"
api_key = "{motive}"
[vendors.motive.defaults]
role = "driver"
eld_mode = "logs"
time_tracking_mode = "logs"

[vendors.drivekit]
type = "drivekit"
base_url = "{{url:drivekit}}"
api_key = "{drivekit}"

[vendors.telematics]
type = "telematics"
base_url = "{{url:telematics}}"
email = "{tm_email}"
password = "{tm_password}"
instance_id = "{tm_id}"
instance_key = "{tm_key}"

[vendors.chat]
type = "rocketchat"
base_url = "{{url:rocketchat}}"
user_id = "{rc_user}"
auth_token = "{rc_token}"
"#,
        motive = c.motive_api_key,
        drivekit = c.drivekit_api_key,
        tm_email = c.telematics_email,
        tm_password = c.telematics_password,
        tm_id = c.telematics_instance_id,
        tm_key = c.telematics_instance_key,
        rc_user = c.rocketchat_user_id,
        rc_token = c.rocketchat_auth_token,
    )
}

/// No credential of the sandbox may show up in output.
pub fn assert_no_secrets(text: &str) {
    let c = Credentials::default();
    for s in [
        c.motive_api_key,
        c.motive_token,
        c.drivekit_api_key,
        c.telematics_password,
        c.telematics_instance_key,
        c.rocketchat_auth_token,
        c.hr_client_secret,
    ] {
        assert!(!text.contains(&s), "a secret leaked into output:\n{text}");
    }
}

/// `n` people E0, E1, … (first name P, last name L0, L1, …, email p0@example.com, …).
pub fn numbered_people(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                person(
                    &format!("E{i}"),
                    "P",
                    &format!("L{i}"),
                    &format!("p{i}@example.com"),
                )
            })
            .collect(),
    )
}

pub fn person(id: &str, first: &str, last: &str, email: &str) -> Value {
    serde_json::json!({ "id": id, "first_name": first, "last_name": last, "email": email })
}

/// The counts of one vendor in a report.
pub fn counts(report: &Value, vendor: &str) -> [i64; 7] {
    let v = &report["vendors"][vendor];
    let n = |k: &str| v[k].as_i64().unwrap_or_else(|| panic!("no `{k}` in {v}"));
    [
        n("created"),
        n("updated"),
        n("deactivated"),
        n("reactivated"),
        n("unchanged"),
        n("failed"),
        n("skipped"),
    ]
}
