//! The test harness: a temporary directory with a config and a people file, the vendor
//! sandbox on a loopback port, and the real `roster` binary run against them.

use std::path::PathBuf;
use std::process::Output;

use roster_sandbox::{Credentials, Sandbox};
use serde_json::Value;
use tempfile::TempDir;

pub const MOTIVE_KEY: &str = "sandbox-motive-key";

pub struct Env {
    pub sandbox: Sandbox,
    pub dir: TempDir,
    pub config: PathBuf,
}

/// Settings that keep retries short so failure tests finish quickly.
pub const FAST_RETRY: &str = "[retry]\ninitial_interval_ms = 10\nmax_interval_secs = 3\n\
                              max_elapsed_secs = 8\npass_budget_secs = 30\nrequest_timeout_secs = 5\n";

impl Env {
    /// A sandbox plus a config with `safety` and `vendors` TOML, where `{url:NAME}` is
    /// replaced by the sandbox URL of vendor NAME.
    pub async fn new(safety: &str, vendors: &str) -> Self {
        let sandbox = Sandbox::start(Credentials::default())
            .await
            .expect("sandbox starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut vendors = vendors.to_string();
        for v in ["motive", "drivekit", "telematics", "rocketchat"] {
            vendors = vendors.replace(&format!("{{url:{v}}}"), &sandbox.url(v));
        }
        let text = format!(
            "state_dir = \"state\"\n{FAST_RETRY}\n[safety]\n{safety}\n\n[source]\ntype = \"file\"\n\
             path = \"people.json\"\n\n{vendors}\n"
        );
        let config = dir.path().join("roster.toml");
        std::fs::write(&config, text).expect("write config");
        Self {
            sandbox,
            dir,
            config,
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

    pub fn write_people(&self, people: &Value) {
        std::fs::write(self.path("people.json"), people.to_string()).expect("write people");
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
