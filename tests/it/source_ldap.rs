//! The `ldap` source against a real OpenLDAP (`slapd`, started per test by `slapd.rs`),
//! through the real binary to the Motive fake.

use crate::common::{Env, MOTIVE_KEY, counts};
use crate::slapd::{AdPerson, CAPPED_DN, READER_DN, SERVICE_PW, SUFFIX, Slapd, TestCa, guid_text};

const SAFETY: &str =
    "max_deactivations = 50\nmax_deactivation_ratio = 1.0\nmax_source_drop_ratio = 1.0";

fn guid(n: u8) -> [u8; 16] {
    // Bytes above 0x7f, so the value is not valid UTF-8 and arrives as binary.
    [
        0xd4, 0x1d, 0x2d, n, 0x50, 0x31, 0xd7, 0x4a, 0x86, 0x7d, 0x8c, 0xfc, 0x6b, 0x89, 0xeb, n,
    ]
}

fn ad_source(slapd: &Slapd, extra: &str) -> String {
    format!(
        "type = \"ldap\"\nurl = \"{url}\"\nbind_dn = \"{READER_DN}\"\n\
         bind_password_file = \"{{dir}}/ldap.pw\"\nbase_dn = \"ou=people,{SUFFIX}\"\n\
         filter = \"(objectClass=adUser)\"\nid_attribute = \"objectGUID\"\n\
         username_attribute = \"sAMAccountName\"\nactive_mode = \"ad\"\npage_size = 2\n\
         timeout_secs = 5\nattributes = {{ \"motive.eld_mode\" = \"eldMode\" }}\n{extra}",
        url = slapd.url()
    )
}

fn secrets() -> [&'static str; 1] {
    [SERVICE_PW]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_style_lifecycle_add_change_disable_remove() {
    let ann = AdPerson {
        uid: "ann",
        first: "Ann",
        last: "Lee",
        mail: "ann@example.com",
        guid: guid(1),
        uac: 512,
        groups: &["drivers"],
        eld_mode: None,
    };
    let bob = AdPerson {
        uid: "bob",
        first: "Bob",
        last: "Ray",
        mail: "bob@example.com",
        guid: guid(2),
        uac: 66048, // NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD
        groups: &["drivers", "office"],
        eld_mode: Some("none"),
    };
    let cy = AdPerson {
        uid: "cy",
        first: "Cy",
        last: "Dee",
        mail: "cy@example.com",
        guid: guid(3),
        uac: 512,
        groups: &["drivers"],
        eld_mode: None,
    };
    let office = AdPerson {
        uid: "olga",
        first: "Olga",
        last: "Fay",
        mail: "olga@example.com",
        guid: guid(4),
        uac: 512,
        groups: &["office"],
        eld_mode: None,
    };
    // An entry without the id attribute: reported by DN, left out, harms nobody.
    let no_guid = format!(
        "dn: uid=noguid,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nobjectClass: adUser\n\
         uid: noguid\ncn: No Guid\nsn: Guid\ngivenName: No\nmail: noguid@example.com\n\
         userAccountControl: 512\n\n"
    );
    let slapd = Slapd::start(&format!(
        "{}{}{}{}{no_guid}",
        ann.ldif(false),
        bob.ldif(false),
        cy.ldif(false),
        office.ldif(false)
    ));
    let env = Env::with_source(
        &ad_source(&slapd, ""),
        SAFETY,
        &format!(
            "{}scope = {{ groups = [\"drivers\"] }}\n{}",
            motive_head(),
            motive_defaults()
        ),
    )
    .await;
    std::fs::write(env.path("ldap.pw"), format!("{SERVICE_PW}\n")).expect("password file");
    let motive = &env.sandbox.motive;

    // `check` binds and probes without reading everything.
    let out = env.run(&["check"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("source: ok"), "{text}");
    assert!(text.contains("paged results supported"), "{text}");
    assert!(!text.contains(SERVICE_PW));

    // 1. Everyone in `drivers` is created; the office person is out of scope.
    let (code, r) = env.json_without(&["reconcile"], &secrets()).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["source"]["records"], 5, "{r}");
    assert_eq!(r["source"]["invalid"], 1, "{r}");
    let err = &r["source"]["errors"][0];
    assert!(
        err["location"]
            .as_str()
            .is_some_and(|l| l.contains("uid=noguid,ou=people")),
        "{err}"
    );
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("objectGUID")),
        "{err}"
    );
    assert_eq!(counts(&r, "motive"), [3, 0, 0, 0, 0, 0, 0], "{r}");
    let a = motive.by_external_id(&guid_text(&ann.guid));
    assert_eq!(a.len(), 1, "the external id is the GUID text");
    assert_eq!(a[0]["email"], "ann@example.com");
    assert_eq!(a[0]["username"], "ann");
    assert_eq!(a[0]["eld_mode"], "logs");
    let b = motive.by_external_id(&guid_text(&bob.guid));
    assert_eq!(b[0]["eld_mode"], "none", "from the eldMode attribute");
    assert!(motive.by_external_id(&guid_text(&office.guid)).is_empty());

    // No change: no write.
    motive.control.clear_calls();
    let (code, r) = env.json_without(&["reconcile"], &secrets()).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [0, 0, 0, 0, 3, 0, 0], "{r}");
    assert_eq!(motive.control.writes(), 0);

    // 2. A change (new mail), a disabled account (ACCOUNTDISABLE), a new person.
    let dee = AdPerson {
        uid: "dee",
        first: "Dee",
        last: "Moss",
        mail: "dee@example.com",
        guid: guid(5),
        uac: 512,
        groups: &["drivers"],
        eld_mode: None,
    };
    slapd.modify(&format!(
        "dn: {}\nchangetype: modify\nreplace: mail\nmail: bob.ray@example.com\n\n\
         dn: {}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n\n{}",
        bob.dn(),
        cy.dn(),
        dee.ldif(true)
    ));
    let (code, r) = env.json_without(&["reconcile"], &secrets()).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [1, 1, 1, 0, 1, 0, 0], "{r}");
    assert_eq!(
        motive.by_external_id(&guid_text(&bob.guid))[0]["email"],
        "bob.ray@example.com"
    );
    assert_eq!(
        motive.by_external_id(&guid_text(&cy.guid))[0]["status"],
        "deactivated"
    );
    assert_eq!(
        motive.by_external_id(&guid_text(&dee.guid))[0]["status"],
        "active"
    );

    // 3. Removed from the directory: deactivated, same account kept.
    slapd.modify(&format!("dn: {}\nchangetype: delete\n\n", ann.dn()));
    let (code, r) = env.json_without(&["reconcile"], &secrets()).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [0, 0, 1, 0, 3, 0, 0], "{r}");
    let a = motive.by_external_id(&guid_text(&ann.guid));
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["status"], "deactivated");

    // 4. Re-enabled: reactivated.
    slapd.modify(&format!(
        "dn: {}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 512\n\n",
        cy.dn()
    ));
    let (code, r) = env.json_without(&["reconcile"], &secrets()).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[3], 1, "{r}");
    assert_eq!(
        motive.by_external_id(&guid_text(&cy.guid))[0]["status"],
        "active"
    );
}

/// `n` inetOrgPerson entries `uid=pNNN` (OpenLDAP style: the id is `entryUUID`), the
/// first `in_group` of them members of the groupOfNames `drivers`.
fn many(n: usize, in_group: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "dn: uid=p{i:03},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: p{i:03}\n\
             cn: Person {i}\ngivenName: Person\nsn: N{i:03}\nmail: p{i:03}@example.com\n\n"
        ));
    }
    s.push_str(&format!(
        "dn: cn=drivers,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: drivers\n"
    ));
    for i in 0..in_group.max(1) {
        s.push_str(&format!("member: uid=p{i:03},ou=people,{SUFFIX}\n"));
    }
    s.push('\n');
    s
}

fn openldap_source(slapd: &Slapd, bind_dn: &str, extra: &str) -> String {
    format!(
        "type = \"ldap\"\nurl = \"{url}\"\nbind_dn = \"{bind_dn}\"\nbind_password = \"{SERVICE_PW}\"\n\
         base_dn = \"ou=people,{SUFFIX}\"\nfilter = \"(objectClass=inetOrgPerson)\"\npage_size = 40\n\
         group_base_dn = \"ou=groups,{SUFFIX}\"\n{extra}",
        url = slapd.url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_read_gets_past_the_servers_size_limit() {
    let slapd = Slapd::start(&many(250, 30));
    // The bind DN's limit is 100 entries per unpaged search: prove it is in force.
    let out = std::process::Command::new(crate::slapd::program("ldapsearch"))
        .args([
            "-x",
            "-H",
            &slapd.url(),
            "-D",
            READER_DN,
            "-w",
            SERVICE_PW,
            "-b",
        ])
        .arg(format!("ou=people,{SUFFIX}"))
        .arg("(objectClass=inetOrgPerson)")
        .arg("dn")
        .output()
        .expect("ldapsearch runs");
    assert_eq!(
        out.status.code(),
        Some(4),
        "an unpaged search must hit sizeLimitExceeded"
    );

    let env = Env::with_source(
        &openldap_source(&slapd, READER_DN, ""),
        SAFETY,
        &format!("{}scope = {{ groups = [\"drivers\"] }}\n", motive_head()),
    )
    .await;
    let (code, r) = env.json_without(&["plan"], &secrets()).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(
        r["source"]["records"], 250,
        "all 250 entries over 7 pages of 40"
    );
    assert_eq!(r["source"]["invalid"], 0, "{r}");
    let ops = r["vendors"]["motive"]["operations"]
        .as_array()
        .expect("operations");
    assert_eq!(
        ops.len(),
        30,
        "the 30 members of drivers (group search) are in scope"
    );
    assert!(ops.iter().all(|o| o["op"] == "create"));
}

fn motive_head() -> String {
    // The vendor table without its defaults sub-table, so keys can follow it.
    format!(
        "[vendors.motive]\ntype = \"motive\"\nbase_url = \"{{url:motive}}\"\napi_key = \"{MOTIVE_KEY}\"\n"
    )
}

fn motive_defaults() -> &'static str {
    "[vendors.motive.defaults]\nrole = \"driver\"\neld_mode = \"logs\"\ntime_tracking_mode = \"logs\"\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_page_or_a_silent_server_refuses_the_pass() {
    let slapd = Slapd::start(&many(150, 1));
    let env = Env::with_source(
        &openldap_source(&slapd, READER_DN, ""),
        SAFETY,
        &format!("{}{}", motive_head(), motive_defaults()),
    )
    .await;
    let motive = &env.sandbox.motive;
    let (code, r) = env.json_without(&["reconcile"], &secrets()).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[0], 150, "{r}");
    let good = std::fs::read_to_string(&env.config).expect("config");

    // The capped account may read 100 entries even when paging: page 3 of 40 fails with
    // sizeLimitExceeded after 80 entries were read. Nothing is pushed.
    std::fs::write(&env.config, good.replace(READER_DN, CAPPED_DN)).expect("config");
    motive.control.clear_calls();
    let (code, r) = env.json_without(&["reconcile"], &secrets()).await;
    assert_eq!(code, 3, "{r}");
    let refused = r["refused"].as_str().unwrap_or_default();
    assert!(
        refused.contains("sizeLimitExceeded") || refused.contains("rc=4"),
        "{refused}"
    );
    assert_eq!(motive.control.writes(), 0, "{:?}", motive.control.calls());
    assert!(motive.users().iter().all(|u| u["status"] == "active"));

    // A server that accepts the connection but never answers: the timeout refuses.
    std::fs::write(
        &env.config,
        good.replace("page_size = 40", "page_size = 40\ntimeout_secs = 1"),
    )
    .expect("config");
    slapd.pause();
    let started = std::time::Instant::now();
    let (code, r) = env.json_without(&["reconcile"], &secrets()).await;
    slapd.resume();
    assert_eq!(code, 3, "{r}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(motive.control.writes(), 0);

    // Back to normal: nothing to do.
    std::fs::write(&env.config, &good).expect("config");
    let (code, r) = env.json_without(&["reconcile"], &secrets()).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[4], 150, "{r}");

    // The server gone: refused, nothing deactivated.
    drop(slapd);
    let (code, r) = env.json_without(&["reconcile"], &secrets()).await;
    assert_eq!(code, 3, "{r}");
    assert!(
        r["refused"].as_str().is_some_and(|m| m.contains("connect")),
        "{r}"
    );
    assert_eq!(motive.control.writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_bad_config_are_reported() {
    let slapd = Slapd::start(&many(3, 1));
    let env = Env::with_source(
        &openldap_source(&slapd, READER_DN, "").replace(SERVICE_PW, "wrong-password"),
        SAFETY,
        &format!("{}{}", motive_head(), motive_defaults()),
    )
    .await;
    let (code, r) = env.json_without(&["reconcile"], &["wrong-password"]).await;
    assert_eq!(code, 3, "{r}");
    assert!(
        r["refused"].as_str().is_some_and(|m| m.contains("bind")),
        "{r}"
    );

    let good = std::fs::read_to_string(&env.config).expect("config");
    // StartTLS asked of a server that has no TLS set up: refused, and said so.
    std::fs::write(
        &env.config,
        good.replace("wrong-password", SERVICE_PW)
            .replace("page_size = 40", "page_size = 40\nstarttls = true"),
    )
    .expect("config");
    let (code, r) = env.json_without(&["reconcile"], &secrets()).await;
    assert_eq!(code, 3, "{r}");
    assert!(
        r["refused"]
            .as_str()
            .is_some_and(|m| m.contains("the server refused StartTLS")),
        "{r}"
    );

    for (bad, key) in [
        (good.replace("base_dn = ", "based_n = "), "source.base_dn"),
        (
            good.replace("page_size = 40", "page_size = 0"),
            "source.page_size",
        ),
        (good.replace("ldap://", "ldapx://"), "source.url"),
    ] {
        std::fs::write(&env.config, &bad).expect("write");
        let out = env.run(&["reconcile"]).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(key), "error should name `{key}`: {err}");
    }
}

/// Files the TLS tests hand to roster: `ca.pem` (the CA that issued the server's
/// certificate) and `other-ca.pem` (a CA that did not).
fn tls_source(url: &str, extra: &str) -> String {
    format!(
        "type = \"ldap\"\nurl = \"{url}\"\nbind_dn = \"{READER_DN}\"\n\
         bind_password_file = \"{{dir}}/ldap.pw\"\nbase_dn = \"ou=people,{SUFFIX}\"\n\
         filter = \"(objectClass=inetOrgPerson)\"\npage_size = 40\ntimeout_secs = 5\n{extra}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldaps_and_starttls_with_a_private_ca() {
    let ca = TestCa::new("roster test CA");
    let cert = ca.server_cert(&["localhost", "127.0.0.1"]);
    let slapd = Slapd::start_tls(&many(60, 1), &cert, &ca.cert_pem);
    let env = Env::with_source(
        &tls_source(&slapd.ldaps_url(), "tls_ca_file = \"ca.pem\"\n"),
        SAFETY,
        &format!("{}{}", motive_head(), motive_defaults()),
    )
    .await;
    std::fs::write(env.path("ldap.pw"), SERVICE_PW).expect("password file");
    std::fs::write(env.path("ca.pem"), &ca.cert_pem).expect("ca file");
    let motive = &env.sandbox.motive;

    let out = env.run(&["check"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("source: ok"), "{text}");
    // More entries match than the probe asks for: the server's sizeLimitExceeded answer
    // still carries the entries it sent.
    assert!(text.contains("at least 5 entries match"), "{text}");

    // ldaps://: everyone read over TLS, all created.
    let (code, r) = env.json_without(&["reconcile"], &secrets()).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["source"]["records"], 60, "{r}");
    assert_eq!(counts(&r, "motive")[0], 60, "{r}");

    // ldap:// + StartTLS on the plain port: the same people, nothing to do.
    let good = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        good.replace(&slapd.ldaps_url(), &slapd.url())
            .replace("tls_ca_file", "starttls = true\ntls_ca_file"),
    )
    .expect("config");
    motive.control.clear_calls();
    let (code, r) = env.json_without(&["reconcile"], &secrets()).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [0, 0, 0, 0, 60, 0, 0], "{r}");
    assert_eq!(motive.control.writes(), 0);
}

/// The refused pass's message, with exit 3 and not one write at the vendor.
async fn refused(env: &Env) -> String {
    let motive = &env.sandbox.motive;
    motive.control.clear_calls();
    let (code, r) = env.json_without(&["reconcile"], &secrets()).await;
    assert_eq!(code, 3, "{r}");
    assert_eq!(motive.control.writes(), 0, "{:?}", motive.control.calls());
    assert!(motive.users().iter().all(|u| u["status"] == "active"));
    r["refused"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_ca_or_another_hosts_certificate_refuses_the_pass() {
    let ca = TestCa::new("roster test CA");
    let other_ca = TestCa::new("some other CA");
    let slapd = Slapd::start_tls(
        &many(20, 1),
        &ca.server_cert(&["localhost", "127.0.0.1"]),
        &ca.cert_pem,
    );
    let env = Env::with_source(
        &tls_source(&slapd.ldaps_url(), "tls_ca_file = \"ca.pem\"\n"),
        SAFETY,
        &format!("{}{}", motive_head(), motive_defaults()),
    )
    .await;
    std::fs::write(env.path("ldap.pw"), SERVICE_PW).expect("password file");
    std::fs::write(env.path("ca.pem"), &ca.cert_pem).expect("ca file");
    std::fs::write(env.path("other-ca.pem"), &other_ca.cert_pem).expect("ca file");
    let (code, r) = env.json_without(&["reconcile"], &secrets()).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive")[0], 20, "{r}");
    let good = std::fs::read_to_string(&env.config).expect("config");

    // Another CA: ldaps:// and StartTLS both refuse, saying so and naming the host.
    let other = good.replace("\"ca.pem\"", "\"other-ca.pem\"");
    let starttls = |config: &str| {
        config
            .replace(&slapd.ldaps_url(), &slapd.url())
            .replace("tls_ca_file", "starttls = true\ntls_ca_file")
    };
    for config in [other.clone(), starttls(&other)] {
        std::fs::write(&env.config, &config).expect("config");
        let message = refused(&env).await;
        assert!(message.contains("not trusted"), "{message}");
        assert!(message.contains("127.0.0.1"), "{message}");
        assert!(message.contains("other-ca.pem"), "{message}");
    }

    // No tls_ca_file: the system's trust store does not know the private CA either.
    std::fs::write(&env.config, good.replace("tls_ca_file = \"ca.pem\"\n", "")).expect("config");
    let message = refused(&env).await;
    assert!(message.contains("not trusted"), "{message}");
    assert!(message.contains("system trust store"), "{message}");

    // The right CA, but a certificate issued for another host name.
    let elsewhere = Slapd::start_tls(
        &many(20, 1),
        &ca.server_cert(&["ldap.elsewhere.test"]),
        &ca.cert_pem,
    );
    for config in [
        good.replace(&slapd.ldaps_url(), &elsewhere.ldaps_url()),
        starttls(&good).replace(&slapd.url(), &elsewhere.url()),
    ] {
        std::fs::write(&env.config, &config).expect("config");
        let message = refused(&env).await;
        assert!(
            message.contains("not valid for host 127.0.0.1"),
            "{message}"
        );
        assert!(
            message.contains("issued for ldap.elsewhere.test"),
            "{message}"
        );
    }

    // Back to the right CA: nothing to do, nobody was harmed.
    std::fs::write(&env.config, &good).expect("config");
    let (code, r) = env.json_without(&["reconcile"], &secrets()).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(counts(&r, "motive"), [0, 0, 0, 0, 20, 0, 0], "{r}");
}
