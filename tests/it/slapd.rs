//! A real OpenLDAP server for the LDAP source tests: each `Slapd` is its own `slapd`
//! process on a free loopback port, with a fresh mdb database in a temporary directory,
//! seeded from LDIF with `slapadd`, and killed when dropped. It never touches a system
//! slapd (port 389, /etc/ldap/slapd.d): only the schema files are read from /etc/ldap.
//!
//! The directory: suffix `dc=example,dc=com`, root `cn=admin,dc=example,dc=com` /
//! `ROOT_PW`; the schemas core, cosine, inetorgperson, nis, plus a small AD-like schema
//! (auxiliary class `adUser`: `objectGUID` binary, `sAMAccountName`, `userAccountControl`,
//! `memberOf`, and `eldMode`). Two service accounts: `READER_DN` may read only 100
//! entries in one unpaged search but any number with paged results; `CAPPED_DN` may read
//! 100 entries in total even when paging (so a paged read fails part-way).
//!
//! TLS: `Slapd::start_tls` also serves `ldaps://` on a second port and StartTLS on the
//! `ldap://` one, with a server certificate that a `TestCa` (a private CA made in process
//! with rcgen) signed. slapd runs as the test's own user, which owns the key file (mode
//! 0600), so no `slapd` system user needs to read it.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const SUFFIX: &str = "dc=example,dc=com";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=com";
pub const ROOT_PW: &str = "slapd-root-secret";
pub const READER_DN: &str = "cn=reader,dc=example,dc=com";
pub const CAPPED_DN: &str = "cn=capped,dc=example,dc=com";
/// Both service accounts' password; tests check it never shows in output.
pub const SERVICE_PW: &str = "ldap-reader-pw-Zq81";

const AD_SCHEMA: &str = "\
attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'objectGUID'
  EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.2 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.3 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.4 NAME 'memberOf'
  EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 )
attributetype ( 1.3.6.1.4.1.99999.1.5 NAME 'eldMode'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'adUser' SUP top AUXILIARY
  MAY ( objectGUID $ sAMAccountName $ userAccountControl $ memberOf $ eldMode ) )
";

const INSTALL: &str = "install it with: apt-get update && DEBIAN_FRONTEND=noninteractive \
                       apt-get install -y --no-install-recommends slapd ldap-utils";

/// Finds an OpenLDAP program (`slapd`, `slapadd` in /usr/sbin; `ldapmodify` in /usr/bin).
pub fn program(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the LDAP source tests need OpenLDAP's `{name}`, which is not installed; {INSTALL}"
            )
        })
}

/// A private certificate authority made for one test.
pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// Its certificate, what a client is given as `tls_ca_file`.
    pub cert_pem: String,
}

/// A server certificate and its private key, both PEM.
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Self {
            issuer: rcgen::Issuer::new(params, key),
            cert_pem: cert.pem(),
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses, as subject
    /// alternative names), signed by this CA.
    pub fn server_cert(&self, names: &[&str]) -> ServerCert {
        let names: Vec<String> = names.iter().map(|n| (*n).to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names.clone()).expect("server params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0].as_str());
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("server certificate");
        ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

pub struct Slapd {
    pub dir: TempDir,
    pub port: u16,
    /// The `ldaps://` port, when started with `start_tls`.
    pub tls_port: Option<u16>,
    child: Child,
}

impl Slapd {
    /// Starts a server whose database holds the base entries plus `seed` (LDIF).
    pub fn start(seed: &str) -> Self {
        Self::launch(seed, None)
    }

    /// `start`, serving TLS with `cert` (issued by the CA whose certificate is `ca_pem`):
    /// `ldaps://` on `tls_port`, and StartTLS on `port`.
    pub fn start_tls(seed: &str, cert: &ServerCert, ca_pem: &str) -> Self {
        Self::launch(seed, Some((cert, ca_pem)))
    }

    fn launch(seed: &str, tls: Option<(&ServerCert, &str)>) -> Self {
        for schema in ["core", "cosine", "inetorgperson", "nis"] {
            let p = format!("/etc/ldap/schema/{schema}.schema");
            assert!(Path::new(&p).is_file(), "{p} is missing; {INSTALL}");
        }
        let slapd = program("slapd");
        let slapadd = program("slapadd");
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir(d.join("db")).expect("db dir");
        std::fs::write(d.join("ad.schema"), AD_SCHEMA).expect("schema");
        // Global directives, before the database section.
        let tls_conf = match tls {
            None => String::new(),
            Some((cert, ca_pem)) => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::write(d.join("ca.pem"), ca_pem).expect("ca");
                std::fs::write(d.join("server.pem"), &cert.cert_pem).expect("cert");
                let key = d.join("server.key");
                std::fs::write(&key, &cert.key_pem).expect("key");
                std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
                    .expect("key mode");
                format!(
                    "TLSCACertificateFile {dir}/ca.pem\n\
                     TLSCertificateFile {dir}/server.pem\n\
                     TLSCertificateKeyFile {dir}/server.key\n\
                     TLSVerifyClient never\n",
                    dir = d.display()
                )
            }
        };
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             include {dir}/ad.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             pidfile {dir}/slapd.pid\n\
             argsfile {dir}/slapd.args\n\
             {tls_conf}\
             database mdb\n\
             maxsize 67108864\n\
             suffix \"{SUFFIX}\"\n\
             rootdn \"{ROOT_DN}\"\n\
             rootpw {ROOT_PW}\n\
             directory {dir}/db\n\
             limits dn.exact=\"{READER_DN}\" size.soft=100 size.hard=100 size.prtotal=unlimited\n\
             limits dn.exact=\"{CAPPED_DN}\" size.soft=100 size.hard=100 size.prtotal=100\n",
            dir = d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).expect("conf");
        let base = format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
             dn: {READER_DN}\nobjectClass: person\ncn: reader\nsn: reader\nuserPassword: {SERVICE_PW}\n\n\
             dn: {CAPPED_DN}\nobjectClass: person\ncn: capped\nsn: capped\nuserPassword: {SERVICE_PW}\n\n\
             dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n{seed}\n"
        );
        std::fs::write(d.join("seed.ldif"), base).expect("seed");
        let out = Command::new(&slapadd)
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("seed.ldif"))
            .output()
            .expect("slapadd runs");
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A free port can be taken between probing and binding: try a few.
        for _ in 0..5 {
            let port = free_port();
            let tls_port = tls.is_some().then(free_port).filter(|p| *p != port);
            if tls.is_some() && tls_port.is_none() {
                continue;
            }
            let mut listen = format!("ldap://127.0.0.1:{port}/");
            if let Some(p) = tls_port {
                listen.push_str(&format!(" ldaps://127.0.0.1:{p}/"));
            }
            let log = std::fs::File::create(d.join("slapd.log")).expect("log");
            let mut child = Command::new(&slapd)
                .arg("-d")
                .arg("0")
                .arg("-h")
                .arg(listen)
                .arg("-f")
                .arg(d.join("slapd.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("slapd starts");
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                let up = |p: u16| TcpStream::connect(("127.0.0.1", p)).is_ok();
                if up(port) && tls_port.is_none_or(up) {
                    return Self {
                        dir,
                        port,
                        tls_port,
                        child,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!(
            "slapd did not start; its log:\n{}",
            std::fs::read_to_string(d.join("slapd.log")).unwrap_or_default()
        );
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// The `ldaps://` URL (servers started with `start_tls` only).
    pub fn ldaps_url(&self) -> String {
        let port = self.tls_port.expect("started with start_tls");
        format!("ldaps://127.0.0.1:{port}")
    }

    /// Applies an LDIF change set as the root DN (`changetype:` records).
    pub fn modify(&self, ldif: &str) {
        let path = self.dir.path().join("change.ldif");
        std::fs::write(&path, ldif).expect("write ldif");
        let out = Command::new(program("ldapmodify"))
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PW, "-f"])
            .arg(&path)
            .output()
            .expect("ldapmodify runs");
        assert!(
            out.status.success(),
            "ldapmodify failed: {}\n{ldif}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel, nothing
    /// answers. `resume` undoes it.
    pub fn pause(&self) {
        signal(self.child.id(), "STOP");
    }

    pub fn resume(&self) {
        signal(self.child.id(), "CONT");
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Through the shell's own `kill`, which every system has.
fn signal(pid: u32, sig: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -{sig} {pid}"))
        .status()
        .expect("sh runs")
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}

impl Drop for Slapd {
    /// SIGKILL ends a paused (SIGSTOPped) slapd too.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An inetOrgPerson + adUser entry. `guid` is 16 bytes; `uac` is userAccountControl.
pub struct AdPerson<'a> {
    pub uid: &'a str,
    pub first: &'a str,
    pub last: &'a str,
    pub mail: &'a str,
    pub guid: [u8; 16],
    pub uac: u32,
    pub groups: &'a [&'a str],
    pub eld_mode: Option<&'a str>,
}

impl AdPerson<'_> {
    pub fn dn(&self) -> String {
        format!("uid={},ou=people,{SUFFIX}", self.uid)
    }

    /// The entry as LDIF (for slapadd, or `ldapmodify` with `changetype: add`).
    pub fn ldif(&self, changetype_add: bool) -> String {
        let mut s = format!("dn: {}\n", self.dn());
        if changetype_add {
            s.push_str("changetype: add\n");
        }
        s.push_str(&format!(
            "objectClass: inetOrgPerson\nobjectClass: adUser\nuid: {uid}\ncn: {first} {last}\n\
             givenName: {first}\nsn: {last}\nmail: {mail}\nsAMAccountName: {uid}\n\
             userAccountControl: {uac}\nobjectGUID:: {guid}\n",
            uid = self.uid,
            first = self.first,
            last = self.last,
            mail = self.mail,
            uac = self.uac,
            guid = base64(&self.guid),
        ));
        for g in self.groups {
            s.push_str(&format!("memberOf: cn={g},ou=groups,{SUFFIX}\n"));
        }
        if let Some(m) = self.eld_mode {
            s.push_str(&format!("eldMode: {m}\n"));
        }
        s.push('\n');
        s
    }
}

/// The GUID text AD shows for these bytes (first three groups little-endian).
pub fn guid_text(b: &[u8; 16]) -> String {
    let h = |r: &[u8]| r.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{}-{}-{}-{}-{}",
        h(&[b[3], b[2], b[1], b[0]]),
        h(&[b[5], b[4]]),
        h(&[b[7], b[6]]),
        h(&b[8..10]),
        h(&b[10..])
    )
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_matches_the_rfc_vectors() {
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}
