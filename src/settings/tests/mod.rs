//! Loading the config: every mistake names its key, the environment layers over the file
//! with any value as text for text keys, durations and counts are bounded, and no error
//! shows a secret.

use super::*;
use crate::vendor::VendorKind;

mod lifecycle;
mod tables;

const MINIMAL: &str = r#"
    state_dir = "state"
    [source]
    type = "file"
    path = "people.json"
    [vendors.motive]
    type = "motive"
    api_key = "k"
"#;

fn load(text: &str) -> Result<Settings, ConfigError> {
    load_str(text, Path::new("/etc/roster"), Vec::new())
}

fn err(text: &str) -> String {
    load(text)
        .expect_err("config should be rejected")
        .to_string()
}

fn with_env(text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let env = env
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect::<Vec<_>>();
    load_str(text, Path::new("/"), env)
}

fn motive_api_key(s: &Settings) -> Option<String> {
    match &s.vendors["motive"].kind {
        VendorKind::Motive(o) => o.api_key.as_ref().map(|k| k.expose().to_string()),
        other => panic!("not motive: {other:?}"),
    }
}

#[test]
fn example_config_parses_and_builds_every_vendor() {
    let text = include_str!("../../../config/example.toml");
    let settings = load_str(text, Path::new("config"), Vec::new()).expect("example parses");
    assert_eq!(settings.vendors.len(), 4);
    assert!(settings.schedule.is_some());
    assert_eq!(settings.notify.len(), 2);
    let secrets_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings = settings;
    for v in settings.vendors.values_mut() {
        v.base_dir = secrets_dir.clone();
    }
    for v in settings.vendors.values() {
        crate::vendor::build(v, &settings.retry, std::sync::Arc::new(crate::http::Quiet))
            .expect("example vendor builds");
    }
}

#[test]
fn minimal_config_resolves_relative_paths_against_the_config_dir() {
    let s = load(MINIMAL).expect("valid");
    assert_eq!(s.state_dir, Path::new("/etc/roster/state"));
    assert_eq!(s.source.kind(), "file");
    let build = crate::source::Build {
        base_dir: s.base_dir.clone(),
        retry: s.retry,
        observer: std::sync::Arc::new(crate::http::Quiet),
    };
    let source = s.source.build(&build).expect("file source");
    assert!(
        source.describe().contains("/etc/roster/people.json"),
        "{}",
        source.describe()
    );
    assert_eq!(s.safety.max_deactivations, 50);
}

#[test]
fn unknown_top_level_key_is_named() {
    let e = err(&format!("shedule = \"x\"\n{MINIMAL}"));
    assert!(e.contains("shedule"), "{e}");
}

#[test]
fn unknown_key_in_safety_is_named() {
    let e = err(&format!("{MINIMAL}\n[safety]\nmax_deactivation = 3"));
    assert!(e.contains("safety.max_deactivation"), "{e}");
}

#[test]
fn wrong_type_is_reported() {
    let e = err(&format!(
        "{MINIMAL}\n[safety]\nmax_deactivations = \"many\""
    ));
    assert!(e.contains("safety.max_deactivations"), "{e}");
}

#[test]
fn bad_cron_names_schedule() {
    let e = err(&format!("schedule = \"*/5 * * * *\"\n{MINIMAL}"));
    assert!(e.contains("`schedule`"), "{e}");
}

#[test]
fn unknown_vendor_type_names_the_key() {
    let e = err(&MINIMAL.replace("type = \"motive\"", "type = \"slack\""));
    assert!(
        e.contains("vendors.motive.type") && e.contains("slack"),
        "{e}"
    );
}

#[test]
fn unknown_keys_are_named_by_their_whole_path() {
    let e = err(&MINIMAL.replace("api_key = \"k\"", "api_key = \"k\"\napi_kye = \"x\""));
    assert!(e.contains("vendors.motive.api_kye"), "{e}");
    let e = err(&MINIMAL.replace("path = \"people.json\"", "path = \"p.json\"\npaht = 1"));
    assert!(e.contains("source.paht"), "{e}");
    let e = err(&MINIMAL.replace("path = \"people.json\"", ""));
    assert!(e.contains("source.path") && e.contains("required"), "{e}");
    let e = err(&format!("{MINIMAL}\nrate_limit = {{ calls = 5, per = 1 }}"));
    assert!(e.contains("vendors.motive.rate_limit.per"), "{e}");
}

#[test]
fn bad_url_names_the_key() {
    let e = err(&format!("{MINIMAL}\nbase_url = \"not a url\""));
    assert!(e.contains("vendors.motive.base_url"), "{e}");
}

#[test]
fn environment_overrides_file_with_double_underscore_keys() {
    let s = with_env(
        MINIMAL,
        &[
            ("ROSTER__SAFETY__MAX_DEACTIVATIONS", "7"),
            ("ROSTER__SAFETY__MAX_DEACTIVATION_RATIO", "0.5"),
            ("ROSTER__VENDORS__MOTIVE__BASE_URL", "http://127.0.0.1:1"),
            ("ROSTER__VENDORS__MOTIVE__CONCURRENCY", "8"),
            ("ROSTER__VENDORS__MOTIVE__SCOPE__GROUPS", "drivers, ops"),
            ("ROSTER_CONFIG", "ignored"),
        ],
    )
    .expect("valid");
    assert_eq!(s.safety.max_deactivations, 7);
    assert_eq!(s.safety.max_deactivation_ratio, 0.5);
    let v = &s.vendors["motive"];
    assert_eq!(
        v.base_url.as_ref().map(url::Url::as_str),
        Some("http://127.0.0.1:1/")
    );
    assert_eq!(v.concurrency, 8);
    assert_eq!(
        v.scope_groups
            .as_ref()
            .map(|g| g.iter().cloned().collect::<Vec<_>>()),
        Some(vec!["drivers".to_string(), "ops".to_string()])
    );
}

#[test]
fn environment_can_supply_a_secret() {
    let text = MINIMAL.replace("api_key = \"k\"", "");
    let s = with_env(&text, &[("ROSTER__VENDORS__MOTIVE__API_KEY", "from-env")]).expect("valid");
    assert_eq!(motive_api_key(&s).as_deref(), Some("from-env"));
}

/// Issue 11: an all-digit, boolean-looking or number-looking secret from the environment
/// is the secret as written, and no config error shows a secret's value.
#[test]
fn any_environment_value_is_text_for_a_text_key() {
    let text = MINIMAL.replace("api_key = \"k\"", "");
    for value in ["123456789", "true", "1e5", "007", "-3.50"] {
        let s = with_env(&text, &[("ROSTER__VENDORS__MOTIVE__API_KEY", value)])
            .unwrap_or_else(|e| panic!("{value}: {e}"));
        assert_eq!(motive_api_key(&s).as_deref(), Some(value));
    }
    let s = with_env(
        &format!("{MINIMAL}\n[vendors.motive.defaults]\ndriver_company_id = 1"),
        &[("ROSTER__VENDORS__MOTIVE__DEFAULTS__DOT_ID", "0042")],
    )
    .expect("valid");
    assert_eq!(s.vendors["motive"].defaults["dot_id"], "0042");
    assert_eq!(s.vendors["motive"].defaults["driver_company_id"], "1");
}

#[test]
fn no_config_error_shows_a_secret() {
    let secret = "s3cr3t-987654321";
    let both = with_env(
        &MINIMAL.replace("api_key = \"k\"", "api_key_file = \"/nonexistent\""),
        &[("ROSTER__VENDORS__MOTIVE__API_KEY", secret)],
    )
    .map(|s| {
        crate::vendor::build(
            &s.vendors["motive"],
            &s.retry,
            std::sync::Arc::new(crate::http::Quiet),
        )
        .map(|_| ())
    });
    let text = match both {
        Ok(Err(e)) | Err(e) => e.to_string(),
        Ok(Ok(())) => panic!("both forms accepted"),
    };
    assert!(
        text.contains("vendors.motive.api_key") && !text.contains(secret),
        "{text}"
    );
    let short = with_env(MINIMAL, &[("ROSTER__SERVER__TRIGGER_TOKEN", "short-1234")])
        .expect_err("too short")
        .to_string();
    assert!(
        short.contains("server.trigger_token") && !short.contains("short-1234"),
        "{short}"
    );
    let table = with_env(
        MINIMAL
            .replace("api_key = \"k\"", "api_key = { nested = 987654321 }")
            .as_str(),
        &[],
    )
    .expect_err("not text")
    .to_string();
    assert!(
        table.contains("vendors.motive.api_key") && !table.contains("987654321"),
        "{table}"
    );
}

/// Issue 11: durations and counts are bounded at load, naming the key.
#[test]
fn durations_and_counts_are_bounded() {
    for (extra, key) in [
        ("[history]\nmax_age_days = 99999999", "history.max_age_days"),
        (
            "[retry]\nrequest_timeout_secs = 0",
            "retry.request_timeout_secs",
        ),
        (
            "[retry]\npass_budget_secs = 9223372036854775807",
            "retry.pass_budget_secs",
        ),
        ("[retry]\nmax_interval_secs = 0", "retry.max_interval_secs"),
        (
            "shutdown_grace_secs = 9223372036854775807",
            "shutdown_grace_secs",
        ),
        ("state_cache_mb = 0", "state_cache_mb"),
    ] {
        let text = if extra.starts_with('[') {
            format!("{MINIMAL}\n{extra}")
        } else {
            format!("{extra}\n{MINIMAL}")
        };
        let e = err(&text);
        assert!(e.contains(key), "{extra}: {e}");
    }
    let e = with_env(
        MINIMAL,
        &[("ROSTER__PROGRESS_LOG_SECS", "18446744073709551615")],
    )
    .expect_err("u64::MAX")
    .to_string();
    assert!(e.contains("progress_log_secs"), "{e}");
    let e = err(&MINIMAL.replace("state_dir = \"state\"", "state_dir = \"\""));
    assert!(e.contains("state_dir"), "{e}");
    let e = err(&format!("{MINIMAL}\nconcurrency = 0"));
    assert!(e.contains("vendors.motive.concurrency"), "{e}");
}

#[test]
fn debug_output_never_shows_option_values() {
    let s = load(
        MINIMAL
            .replace("api_key = \"k\"", "api_key = \"hunter2\"")
            .as_str(),
    )
    .expect("valid");
    let shown = format!("{s:?}");
    assert!(
        shown.contains("api_key") && !shown.contains("hunter2"),
        "{shown}"
    );
}

#[test]
fn the_trigger_token_uses_the_one_resolver() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("tok"), "a-trigger-token-of-32-characters\n").expect("write");
    let s = load_str(
        &format!("{MINIMAL}\n[server]\ntrigger_token_file = \"tok\""),
        dir.path(),
        Vec::new(),
    )
    .expect("valid");
    assert_eq!(
        s.server.trigger_token.as_ref().map(Secret::expose),
        Some("a-trigger-token-of-32-characters")
    );
    let e = load_str(
        &format!("{MINIMAL}\n[server]\ntrigger_token_file = \"/dev/zero\""),
        dir.path(),
        Vec::new(),
    )
    .expect_err("not a regular file")
    .to_string();
    assert!(
        e.contains("server.trigger_token_file") && e.contains("regular file"),
        "{e}"
    );
}

#[test]
fn the_admin_socket_defaults_to_the_state_dir_and_a_path_too_long_is_refused() {
    let s = load(MINIMAL).expect("minimal");
    assert_eq!(
        s.server.admin_socket,
        Path::new("/etc/roster/state/admin.sock")
    );
    let s = load(&format!(
        "{MINIMAL}\n[server]\nadmin_socket = \"/run/roster/admin.sock\"\n"
    ))
    .expect("absolute");
    assert_eq!(s.server.admin_socket, Path::new("/run/roster/admin.sock"));
    let long = format!("/run/{}/admin.sock", "d".repeat(100));
    let e = err(&format!("{MINIMAL}\n[server]\nadmin_socket = \"{long}\"\n"));
    assert!(
        e.contains("server.admin_socket") && e.contains("107 bytes"),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}\n[server]\nadmin_socket = \"\"\n"));
    assert!(e.contains("server.admin_socket"), "{e}");
}
