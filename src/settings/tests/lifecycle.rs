//! `[lifecycle]`, the per-vendor date keys and `create_only`: defaults, overrides, and mistakes named by their key.

use super::*;

#[test]
fn lifecycle_days_default_globally_and_per_vendor() {
    let text = format!(
        "{MINIMAL}provision_days_before_start = 3\n\
         [vendors.other]\ntype = \"motive\"\napi_key = \"k\"\nend_grace_days = 0\n\
         [lifecycle]\ntime_zone = \"Europe/Berlin\"\nend_grace_days = 2\n"
    );
    let s = load(&text).expect("valid");
    let tz: chrono_tz::Tz = "Europe/Berlin".parse().expect("zone");
    assert_eq!(s.lifecycle.time_zone, tz);
    let m = s.vendors["motive"].dates;
    assert_eq!(
        (m.time_zone, m.provision_days_before_start, m.end_grace_days),
        (tz, 3, 2),
        "the vendor's lead days, the global grace"
    );
    let o = s.vendors["other"].dates;
    assert_eq!(
        (o.time_zone, o.provision_days_before_start, o.end_grace_days),
        (tz, 0, 0),
        "the vendor's own 0 wins over the global 2"
    );
    let s = load(MINIMAL).expect("valid");
    assert_eq!(s.vendors["motive"].dates, crate::plan::DateRules::default());
    let s = with_env(
        MINIMAL,
        &[
            ("ROSTER__LIFECYCLE__TIME_ZONE", "America/New_York"),
            ("ROSTER__VENDORS__MOTIVE__END_GRACE_DAYS", "7"),
            ("ROSTER__VENDORS__MOTIVE__CREATE_ONLY", "role, eld_mode"),
        ],
    )
    .expect("env");
    let v = &s.vendors["motive"];
    assert_eq!(v.dates.time_zone, chrono_tz::Tz::America__New_York);
    assert_eq!(v.dates.end_grace_days, 7);
    assert_eq!(
        v.create_only.iter().map(String::as_str).collect::<Vec<_>>(),
        ["eld_mode", "role"]
    );
}

#[test]
fn lifecycle_mistakes_name_the_key() {
    let e = err(&format!(
        "{MINIMAL}[lifecycle]\ntime_zone = \"Europe/Berln\"\n"
    ));
    assert!(
        e.contains("lifecycle.time_zone") && e.contains("Europe/Berln"),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}[lifecycle]\nend_grace_days = 4000\n"));
    assert!(e.contains("lifecycle.end_grace_days"), "{e}");
    let e = err(&format!("{MINIMAL}[lifecycle]\ntimezone = \"UTC\"\n"));
    assert!(
        e.contains("lifecycle.timezone") && e.contains("time_zone"),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}provision_days_before_start = -1\n"));
    assert!(
        e.contains("vendors.motive.provision_days_before_start"),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}end_grace_days = 3651\n"));
    assert!(e.contains("vendors.motive.end_grace_days"), "{e}");
    let e = err(&format!(
        "{MINIMAL}create_only = \"role\"\ncreate_only_x = 1\n"
    ));
    assert!(e.contains("vendors.motive.create_only_x"), "{e}");
}

#[test]
fn create_only_names_are_checked_against_the_vendors_fields() {
    let build = |extra: &str| {
        let text = format!("{MINIMAL}{extra}\n");
        let s = load(&text).expect("loads");
        crate::vendor::build(
            &s.vendors["motive"],
            &s.retry,
            std::sync::Arc::new(crate::http::Quiet),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    build("create_only = [\"role\", \"first_name\", \"eld_mode\", \"time_tracking_mode\"]")
        .expect("known fields");
    let e = build("create_only = [\"role\", \"eld_mode\"]").expect_err("half the pair");
    assert!(
        e.contains("vendors.motive.create_only") && e.contains("`time_tracking_mode`"),
        "{e}"
    );
    let e = build("create_only = [\"rol\"]").expect_err("typo");
    assert!(
        e.contains("vendors.motive.create_only")
            && e.contains("`rol` is not a field of motive vendors")
            && e.contains("did you mean `role`?"),
        "{e}"
    );
    // The keys accounts are found and matched by stay roster's.
    for key in ["email", "username"] {
        let e = build(&format!("create_only = [\"role\", \"{key}\"]")).expect_err(key);
        assert!(
            e.contains("vendors.motive.create_only")
                && e.contains(&format!("`{key}` cannot be create-only")),
            "{e}"
        );
    }
    let e = err(&format!("{MINIMAL}create_only = [\" \"]\n"));
    assert!(e.contains("vendors.motive.create_only"), "{e}");
    let chat = "[vendors.chat]\ntype = \"rocketchat\"\nbase_url = \"https://chat.example.com\"\n\
                user_id = \"u\"\nauth_token = \"t\"\ncreate_only = [\"name\", \"customFields.team\"]\n";
    let s = load(&format!("{MINIMAL}{chat}")).expect("loads");
    crate::vendor::build(
        &s.vendors["chat"],
        &s.retry,
        std::sync::Arc::new(crate::http::Quiet),
    )
    .map(|_| ())
    .expect("Rocket.Chat's open-ended custom fields are fields");
    let s = load(&format!(
        "{MINIMAL}{}",
        chat.replace("\"name\"", "\"username\"")
    ))
    .expect("loads");
    let e = crate::vendor::build(
        &s.vendors["chat"],
        &s.retry,
        std::sync::Arc::new(crate::http::Quiet),
    )
    .map(|_| ())
    .expect_err("a Rocket.Chat username is how accounts are found");
    assert!(
        e.to_string().contains("`username` cannot be create-only"),
        "{e}"
    );
}
