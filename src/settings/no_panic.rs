//! Property tests: loading the config never panics, whatever the file says and whatever
//! the `ROSTER__…` environment holds (issue 11, medium 4). Inputs range from arbitrary
//! text to a valid config with arbitrary values under the keys roster reads.

use proptest::prelude::*;

use super::*;
use crate::source::no_panic::{config, text};

const VALID: &str = r#"
[source]
type = "file"
path = "people.json"

[vendors.motive]
type = "motive"
api_key = "k"
[vendors.motive.defaults]
role = "driver"
"#;

/// Keys roster reads, written as dotted keys at the top of the file.
const KEYS: &[&str] = &[
    "state_dir",
    "state_cache_mb",
    "schedule",
    "schedule_jitter_secs",
    "shutdown_grace_secs",
    "full_schedule",
    "progress_log_secs",
    "log_format",
    "log_level",
    "server.listen",
    "server.trigger_token",
    "server.trigger_token_file",
    "safety.max_deactivations",
    "safety.max_deactivation_ratio",
    "safety.max_source_drop_ratio",
    "retry.initial_interval_ms",
    "retry.max_interval_secs",
    "retry.max_elapsed_secs",
    "retry.pass_budget_secs",
    "retry.request_timeout_secs",
    "history.max_entries",
    "history.max_age_days",
    "ha.lease",
    "ha.namespace",
    "ha.identity",
    "ha.lease_duration_secs",
    "ha.renew_deadline_secs",
    "notify",
];

/// The same keys and the vendor's, as `ROSTER__…` variables.
const ENV: &[&str] = &[
    "ROSTER__STATE_DIR",
    "ROSTER__SCHEDULE",
    "ROSTER__SHUTDOWN_GRACE_SECS",
    "ROSTER__RETRY__REQUEST_TIMEOUT_SECS",
    "ROSTER__RETRY__PASS_BUDGET_SECS",
    "ROSTER__SAFETY__MAX_DEACTIVATION_RATIO",
    "ROSTER__HISTORY__MAX_AGE_DAYS",
    "ROSTER__SERVER__LISTEN",
    "ROSTER__SOURCE__TYPE",
    "ROSTER__SOURCE__PATH",
    "ROSTER__VENDORS__MOTIVE__API_KEY",
    "ROSTER__VENDORS__MOTIVE__BASE_URL",
    "ROSTER__VENDORS__MOTIVE__CONCURRENCY",
    "ROSTER__VENDORS__MOTIVE__TYPE",
    "ROSTER__VENDORS__MOTIVE__DEFAULTS__ROLE",
    "ROSTER__VENDORS__OTHER__TYPE",
    "ROSTER__",
    "ROSTER____",
    "ROSTER__HA__LEASE_DURATION_SECS",
    "HOSTNAME",
];

/// A TOML value of any type, edge cases included.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        Just("18446744073709551615".to_string()),
        Just("99999999999999999999".to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        text().prop_map(|t| serde_json::Value::from(t).to_string()),
        Just("[]".to_string()),
        Just("[1, \"a\"]".to_string()),
        Just("{ a = 1 }".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
    ]
}

fn env_vars() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (
            prop::sample::select(ENV).prop_map(String::from),
            prop_oneof![text(), any::<i64>().prop_map(|i| i.to_string())],
        ),
        0..4,
    )
}

fn load(text: &str, env: Vec<(String, String)>) {
    // Any outcome but a panic: settings, or an error naming the key.
    let _ = load_str(text, Path::new("/nonexistent"), env);
}

#[test]
fn the_base_config_loads() {
    // Otherwise every case below would stop at the same error.
    load_str(VALID, Path::new("/nonexistent"), Vec::new()).expect("valid");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_never_panics(file in prop_oneof![any::<String>(), text()], env in env_vars()) {
        load(&file, env);
    }

    #[test]
    fn any_value_under_a_known_key_never_panics(
        lines in prop::collection::vec((prop::sample::select(KEYS), toml_value()), 0..5),
        env in env_vars(),
    ) {
        let head: String = lines.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        load(&format!("{head}{VALID}"), env);
    }

    #[test]
    fn any_value_in_a_vendor_table_never_panics(
        key in prop_oneof![
            prop::sample::select(&[
                "base_url", "concurrency", "rate_limit", "min_rate", "scope", "on_remove",
                "type", "api_key_file", "match_by", "defaults", "fields",
            ][..]).prop_map(String::from),
            text(),
        ],
        value in toml_value(),
        env in env_vars(),
    ) {
        let key = serde_json::Value::from(key).to_string();
        let text = VALID.replace("api_key = \"k\"", &format!("api_key = \"k\"\n{key} = {value}"));
        load(&text, env);
    }
}
