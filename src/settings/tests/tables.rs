//! The `[[notify]]` and `[ha]` tables: loaded whole from the file, every mistake named by its key.

use super::*;

#[test]
fn notify_tables_load_and_the_environment_cannot_override_them() {
    let text = format!(
        "{MINIMAL}\n[[notify]]\ntype = \"slack\"\nurl = \"https://hooks.example/T/B/s3cret\"\n\
         [[notify]]\ntype = \"webhook\"\nname = \"ops\"\nurl = \"https://ops.example/hook\"\n\
         events = [\"pass_refused\"]\n"
    );
    let s = load(&text).expect("valid");
    let labels: Vec<&str> = s.notify.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, ["notify[0]", "ops"]);
    assert!(!format!("{s:?}").contains("s3cret"));
    let e = with_env(
        &text,
        &[("ROSTER__NOTIFY__0__URL", "https://other.example/x")],
    )
    .expect_err("an override of a list element is refused")
    .to_string();
    assert!(e.contains("`notify`") && e.contains("url_file"), "{e}");
    assert!(!e.contains("s3cret") && !e.contains("other.example"), "{e}");
    assert!(load(MINIMAL).expect("valid").notify.is_empty());
}

#[test]
fn no_ha_table_means_no_election() {
    assert_eq!(load(MINIMAL).expect("valid").ha, None);
}

#[test]
fn ha_defaults_identity_from_hostname_and_keys_from_the_issue() {
    use crate::ha::HaSettings;
    use std::time::Duration;
    let text = format!("{MINIMAL}\n[ha]\nlease = \"roster\"\n");
    let ha = with_env(&text, &[("HOSTNAME", "roster-1")])
        .expect("valid")
        .ha
        .expect("[ha]");
    assert_eq!(
        ha,
        HaSettings {
            lease: "roster".into(),
            namespace: None,
            identity: "roster-1".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
        }
    );
    let ha = with_env(
        &format!("{text}namespace = \"sync\"\n"),
        &[
            ("HOSTNAME", "roster-1"),
            ("ROSTER__HA__IDENTITY", "roster-0"),
            ("ROSTER__HA__LEASE_DURATION_SECS", "3"),
            ("ROSTER__HA__RENEW_DEADLINE_SECS", "2"),
        ],
    )
    .expect("valid")
    .ha
    .expect("[ha]");
    assert_eq!(ha.identity, "roster-0");
    assert_eq!(ha.namespace.as_deref(), Some("sync"));
    assert_eq!(ha.lease_duration, Duration::from_secs(3));
    assert_eq!(ha.renew_deadline, Duration::from_secs(2));
}

#[test]
fn ha_mistakes_name_the_key() {
    let ha = |body: &str| err(&format!("{MINIMAL}\n[ha]\nidentity = \"r-0\"\n{body}"));
    let e = ha("");
    assert!(e.contains("`ha.lease`"), "{e}");
    let e = ha("lease = \"Roster_Lease\"");
    assert!(e.contains("`ha.lease`"), "{e}");
    let e = ha("lease = \"roster\"\nnamespace = \"a.b\"");
    assert!(e.contains("`ha.namespace`"), "{e}");
    let e = ha("lease = \"roster\"\nlease_duration_secs = 1");
    assert!(e.contains("`ha.lease_duration_secs`"), "{e}");
    let e = ha("lease = \"roster\"\nrenew_deadline_secs = 15");
    assert!(e.contains("`ha.renew_deadline_secs`"), "{e}");
    let e = ha("lease = \"roster\"\nrenew_deadline_secs = 0");
    assert!(e.contains("`ha.renew_deadline_secs`"), "{e}");
    let e = ha("lease = \"roster\"\nrenew_deadlin_secs = 3");
    assert!(e.contains("renew_deadlin_secs"), "{e}");
    let e = err(&format!(
        "{MINIMAL}\n[ha]\nlease = \"roster\"\nidentity = \"a (b)\""
    ));
    assert!(e.contains("`ha.identity`"), "{e}");
    // No identity and no $HOSTNAME.
    let e = err(&format!("{MINIMAL}\n[ha]\nlease = \"roster\"\n"));
    assert!(e.contains("`ha.identity`") && e.contains("HOSTNAME"), "{e}");
}
