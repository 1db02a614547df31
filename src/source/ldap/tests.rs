//! The LDAP source's config checks and mapping.

use super::*;
use crate::config::ConfigError;
use serde_json::Value;

fn settings(toml_like: &[(&str, Value)]) -> Value {
    Value::Object(
        toml_like
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect(),
    )
}

fn build(v: Value) -> Result<LdapSource, ConfigError> {
    let o = crate::source::test_options(v)?;
    LdapSource::from_options(o, &crate::source::test_build())
}

fn base() -> Vec<(&'static str, Value)> {
    vec![
        ("url", Value::from("ldap://127.0.0.1:389")),
        ("base_dn", Value::from("dc=example,dc=com")),
    ]
}

fn with(extra: &[(&'static str, Value)]) -> Value {
    let mut all = base();
    all.extend(extra.iter().cloned());
    settings(&all)
}

fn err(s: Value) -> String {
    match build(s) {
        Ok(_) => panic!("expected a config error"),
        Err(e) => e.to_string(),
    }
}

fn entry(dn: &str, attrs: &[(&str, &[&[u8]])]) -> Entry {
    Entry {
        dn: dn.into(),
        attrs: attrs
            .iter()
            .map(|(k, vs)| {
                (
                    k.to_ascii_lowercase(),
                    vs.iter().map(|v| v.to_vec()).collect(),
                )
            })
            .collect(),
    }
}

fn mapping(extra: &[(&'static str, Value)]) -> Mapping {
    let s = build(with(extra)).expect("valid");
    s.config.map.clone()
}

#[test]
fn guid_rendering_matches_ad() {
    let raw: Vec<u8> = (0u8..16).collect();
    assert_eq!(
        guid_text(&raw).as_deref(),
        Some("03020100-0504-0706-0809-0a0b0c0d0e0f")
    );
    // objectGUID base64 `1B0trVAx10qGfYz8a4nrsQ==`; the text agrees with .NET's
    // `new Guid(bytes)` and Python's `uuid.UUID(bytes_le=…)`.
    let real = [
        0xd4, 0x1d, 0x2d, 0xad, 0x50, 0x31, 0xd7, 0x4a, 0x86, 0x7d, 0x8c, 0xfc, 0x6b, 0x89, 0xeb,
        0xb1,
    ];
    assert_eq!(
        guid_text(&real).as_deref(),
        Some("ad2d1dd4-3150-4ad7-867d-8cfc6b89ebb1")
    );
    assert_eq!(
        guid_text(b"{AD2D1DD4-3150-4AD7-867D-8CFC6B89EBB1}").as_deref(),
        Some("ad2d1dd4-3150-4ad7-867d-8cfc6b89ebb1")
    );
    assert_eq!(guid_text(b"short"), None);
}

#[test]
fn dn_helpers() {
    assert_eq!(
        first_rdn_value("CN=Ops\\, North,OU=Groups,DC=x").as_deref(),
        Some("Ops, North")
    );
    assert_eq!(
        first_rdn_value("cn=caf\\c3\\a9,dc=x").as_deref(),
        Some("café")
    );
    assert_eq!(first_rdn_value("cn=drivers").as_deref(), Some("drivers"));
    assert_eq!(first_rdn_value("nodn"), None);
    assert_eq!(
        normalize_dn("CN=Ann Lee, OU=People ,DC=Example"),
        "cn=ann lee,ou=people,dc=example"
    );
}

#[test]
fn ad_entry_maps_to_a_person() {
    let m = mapping(&[
        ("id_attribute", Value::from("objectGUID")),
        ("username_attribute", Value::from("sAMAccountName")),
        ("active_mode", Value::from("ad")),
        (
            "attributes",
            serde_json::json!({"motive.eld_mode": "eldMode"}),
        ),
    ]);
    assert_eq!(m.id_format, IdFormat::Guid);
    let guid: Vec<u8> = (0u8..16).collect();
    let e = entry(
        "CN=Ann Lee,OU=People,DC=corp",
        &[
            ("objectGUID", &[&guid]),
            ("sAMAccountName", &[b"ann"]),
            ("givenName", &[b"Ann"]),
            ("SN", &[b"Lee"]),
            ("mail", &[b"ann@corp.example"]),
            ("userAccountControl", &[b"514"]),
            (
                "memberOf",
                &[
                    b"CN=Drivers,OU=Groups,DC=corp",
                    b"CN=Ops\\, North,OU=Groups,DC=corp",
                ],
            ),
            ("eldMode", &[b"logs"]),
        ],
    );
    let s = m.snapshot(&[e], None).expect("snapshot");
    assert!(s.invalid.is_empty(), "{:?}", s.invalid);
    let p = &s.people[0];
    assert_eq!(p.id.as_str(), "03020100-0504-0706-0809-0a0b0c0d0e0f");
    assert_eq!(p.username.as_deref(), Some("ann"));
    assert_eq!(p.last_name.as_deref(), Some("Lee"));
    assert!(!p.active, "514 has ACCOUNTDISABLE");
    assert!(p.groups.contains("Drivers") && p.groups.contains("Ops, North"));
    assert_eq!(p.attributes["motive.eld_mode"], "logs");
}

#[test]
fn bad_entries_are_invalid_records_named_by_dn() {
    let m = mapping(&[("active_mode", Value::from("ad"))]);
    let s = m
        .snapshot(
            &[
                entry("uid=a,dc=x", &[("mail", &[b"a@x.io"])]),
                entry(
                    "uid=b,dc=x",
                    &[("entryUUID", &[b"b1"]), ("userAccountControl", &[b"x"])],
                ),
                entry("uid=c,dc=x", &[("entryUUID", &[b"c1"])]),
                entry(
                    "uid=d,dc=x",
                    &[
                        ("entryUUID", &[b"d1"]),
                        ("userAccountControl", &[b"512"]),
                        ("mail", &[b"not-an-email"]),
                    ],
                ),
                entry(
                    "uid=e,dc=x",
                    &[("entryUUID", &[b"e1"]), ("userAccountControl", &[b"512"])],
                ),
            ],
            None,
        )
        .expect("snapshot");
    assert_eq!(s.people.len(), 1);
    let msg = |dn: &str| {
        s.invalid
            .iter()
            .find(|r| r.location == format!("entry {dn}"))
            .unwrap_or_else(|| panic!("no invalid record for {dn}: {:?}", s.invalid))
            .clone()
    };
    let a = msg("uid=a,dc=x");
    assert!(a.message.contains("no `entryUUID`"), "{}", a.message);
    assert_eq!(a.email.as_deref(), Some("a@x.io"));
    assert!(msg("uid=b,dc=x").message.contains("not a number"));
    assert_eq!(msg("uid=c,dc=x").id.as_deref(), Some("c1"));
    assert!(msg("uid=d,dc=x").message.contains("malformed email"));
}

#[test]
fn disabled_attribute_and_group_search() {
    let m = mapping(&[
        ("disabled_attribute", Value::from("pwdAccountLockedTime")),
        ("disabled_values", serde_json::json!(["*"])),
        ("group_base_dn", Value::from("ou=groups,dc=x")),
        ("group_name", Value::from("dn")),
    ]);
    let users = [
        entry(
            "uid=a,ou=people,dc=x",
            &[("entryUUID", &[b"1"]), ("uid", &[b"a"])],
        ),
        entry(
            "uid=b,ou=people,dc=x",
            &[
                ("entryUUID", &[b"2"]),
                ("uid", &[b"b"]),
                ("pwdAccountLockedTime", &[b"000001010000Z"]),
            ],
        ),
    ];
    let groups = [
        entry(
            "cn=drivers,ou=groups,dc=x",
            &[("member", &[b"UID=a, ou=People,dc=x"])],
        ),
        entry("cn=posix,ou=groups,dc=x", &[("member", &[b"b"])]),
    ];
    let m = Mapping {
        groups: Groups::Search {
            base_dn: "ou=groups,dc=x".into(),
            filter: DEFAULT_GROUP_FILTER.into(),
            member_attribute: "member".into(),
        },
        ..m
    };
    let s = m.snapshot(&users, Some(&groups)).expect("snapshot");
    assert!(s.invalid.is_empty(), "{:?}", s.invalid);
    assert!(s.people[0].active);
    assert!(s.people[0].groups.contains("cn=drivers,ou=groups,dc=x"));
    assert!(!s.people[1].active);
    assert!(s.people[1].groups.contains("cn=posix,ou=groups,dc=x"));
}

#[test]
fn ranged_values_are_never_taken_as_complete() {
    let m = mapping(&[("group_base_dn", Value::from("ou=groups,dc=x"))]);
    let users = [entry("uid=a,dc=x", &[("entryUUID", &[b"1"])])];
    let big = [entry(
        "cn=all,ou=groups,dc=x",
        &[("member;range=0-1499", &[b"uid=a,dc=x"])],
    )];
    let e = m
        .snapshot(&users, Some(&big))
        .expect_err("incomplete group")
        .to_string();
    assert!(
        e.contains("cn=all,ou=groups,dc=x") && e.contains("ranges"),
        "{e}"
    );

    let m = mapping(&[]);
    let s = m
        .snapshot(
            &[entry(
                "uid=b,dc=x",
                &[
                    ("entryUUID", &[b"2"]),
                    ("memberOf;range=0-1499", &[b"cn=g,dc=x"]),
                ],
            )],
            None,
        )
        .expect("snapshot");
    assert_eq!(s.invalid.len(), 1);
    assert_eq!(s.invalid[0].id.as_deref(), Some("2"));
}

#[test]
fn duplicate_ids_are_rejected() {
    let m = mapping(&[]);
    let s = m
        .snapshot(
            &[
                entry("uid=a,dc=x", &[("entryUUID", &[b"same"])]),
                entry("uid=b,dc=x", &[("entryUUID", &[b"same"])]),
            ],
            None,
        )
        .expect("snapshot");
    assert!(s.people.is_empty());
    assert_eq!(s.invalid.len(), 2);
}

#[test]
fn requested_attributes_are_deduplicated() {
    let m = mapping(&[
        ("active_mode", Value::from("ad")),
        ("attributes", serde_json::json!({"a": "MAIL", "b": "title"})),
    ]);
    let attrs = m.requested_attributes();
    assert!(attrs.contains(&"userAccountControl".to_string()));
    assert!(attrs.contains(&"memberOf".to_string()));
    assert!(attrs.contains(&"title".to_string()));
    assert_eq!(
        attrs
            .iter()
            .filter(|a| a.eq_ignore_ascii_case("mail"))
            .count(),
        1
    );
}

#[test]
fn config_errors_name_the_key() {
    assert!(err(settings(&[("url", Value::from("ldap://h"))])).contains("source.base_dn"));
    assert!(err(settings(&[("base_dn", Value::from("dc=x"))])).contains("source.url"));
    assert!(err(with(&[("url", Value::from("http://h"))])).contains("source.url"));
    assert!(
        err(with(&[
            ("url", Value::from("ldaps://h")),
            ("starttls", Value::from(true))
        ]))
        .contains("source.starttls")
    );
    assert!(err(with(&[("bind_dn", Value::from("cn=r,dc=x"))])).contains("source.bind_password"));
    assert!(err(with(&[("bind_password", Value::from("pw"))])).contains("source.bind_password"));
    assert!(err(with(&[("page_size", Value::from(0))])).contains("source.page_size"));
    assert!(err(with(&[("page_size", Value::from("many"))])).contains("source.page_size"));
    assert!(err(with(&[("filter", Value::from("objectClass=person)"))])).contains("source.filter"));
    assert!(
        err(with(&[("active_mode", Value::from("attribute"))]))
            .contains("source.disabled_attribute")
    );
    assert!(
        err(with(&[
            ("active_mode", Value::from("ad")),
            ("disabled_values", serde_json::json!(["x"]))
        ]))
        .contains("source.disabled_values")
    );
    assert!(err(with(&[("group_filter", Value::from("(cn=*)"))])).contains("source.group_filter"));
    assert!(err(with(&[("id_format", Value::from("uuid"))])).contains("source.id_format"));
    assert!(err(with(&[("bind_pasword", Value::from("x"))])).contains("bind_pasword"));
    assert!(err(with(&[("tls_ca_file", Value::from("ca.pem"))])).contains("source.tls_ca_file"));
    assert!(
        err(with(&[
            ("url", Value::from("ldaps://h")),
            ("tls_ca_file", Value::from("ca.pem"))
        ]))
        .contains("source.tls_ca_file")
    );
}

#[test]
fn the_password_never_shows() {
    let s = build(with(&[
        ("bind_dn", Value::from("cn=r,dc=x")),
        ("bind_password", Value::from("hunter2-secret")),
    ]))
    .expect("valid");
    assert!(!format!("{:?}", s.config).contains("hunter2"));
    assert!(!s.describe().contains("hunter2"));
}

#[test]
fn refused_certificates_are_explained_with_the_host() {
    use rustls::CertificateError as C;
    let s = build(with(&[("url", Value::from("ldaps://dc1.corp.test"))])).expect("valid");
    let tls = |cert: C| ldap3::LdapError::Io {
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(cert),
        ),
    };
    let unknown = connect_error(&s.config, &tls(C::UnknownIssuer));
    assert!(
        unknown.contains("not trusted for host dc1.corp.test")
            && unknown.contains("system trust store"),
        "{unknown}"
    );
    let name = connect_error(
        &s.config,
        &tls(C::NotValidForNameContext {
            expected: rustls::pki_types::ServerName::try_from("dc1.corp.test")
                .expect("name")
                .to_owned(),
            presented: vec![
                "DnsName(\"dc2.corp.test\")".into(),
                "IpAddress(10.0.0.2)".into(),
            ],
        }),
    );
    assert!(
        name.contains(
            "not valid for host dc1.corp.test: it was issued for dc2.corp.test, 10.0.0.2"
        ),
        "{name}"
    );
    let expired = connect_error(&s.config, &tls(C::Expired));
    assert!(expired.contains("has expired"), "{expired}");
    // Anything that is not TLS keeps the client's own words.
    let plain = connect_error(
        &s.config,
        &ldap3::LdapError::Io {
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        },
    );
    assert!(plain.contains("refused"), "{plain}");
}

#[test]
fn generalized_time_becomes_iso_text() {
    for (raw, iso) in [
        ("20260301000000Z", "2026-03-01T00:00:00Z"),
        ("20260301083000.5Z", "2026-03-01T08:30:00.5Z"),
        ("202603010830+0100", "2026-03-01T08:30:00+01:00"),
        ("2026030108-05", "2026-03-01T08:00:00-05:00"),
        ("20260301", "2026-03-01"),
        ("2026-03-01", "2026-03-01"),
        // No zone: left as is, for the record's validation to refuse.
        ("20260301083000", "20260301083000"),
        ("soon", "soon"),
    ] {
        assert_eq!(generalized_time(raw), iso, "{raw}");
    }
}

#[test]
fn start_and_end_dates_come_from_their_attributes() {
    let m = mapping(&[
        ("start_date_attribute", Value::from("employeeStartDate")),
        ("end_date_attribute", Value::from("accountEndDate")),
    ]);
    let wanted = m.requested_attributes();
    assert!(
        wanted.contains(&"employeeStartDate".to_string())
            && wanted.contains(&"accountEndDate".to_string()),
        "{wanted:?}"
    );
    let users = [
        entry(
            "uid=a,dc=x",
            &[
                ("entryUUID", &[b"1"]),
                ("employeeStartDate", &[b"20260301000000Z"]),
                ("accountEndDate", &[b"2026-09-30"]),
            ],
        ),
        entry(
            "uid=b,dc=x",
            &[
                ("entryUUID", &[b"2"]),
                ("employeeStartDate", &[b"20260301083000"]),
            ],
        ),
    ];
    let s = m.snapshot(&users, None).expect("snapshot");
    assert_eq!(s.people.len(), 1);
    let a = &s.people[0];
    assert_eq!(
        a.start_date.map(|w| w.to_string()).as_deref(),
        Some("2026-03-01T00:00:00Z")
    );
    assert_eq!(
        a.end_date.map(|w| w.to_string()).as_deref(),
        Some("2026-09-30")
    );
    assert!(
        s.invalid[0].message.contains("`start_date`") && s.invalid[0].id.as_deref() == Some("2"),
        "{:?}",
        s.invalid
    );
    let e = err(with(&[("end_date_attribute", Value::from("end date"))]));
    assert!(e.contains("source.end_date_attribute"), "{e}");
}
