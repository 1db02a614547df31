//! TLS trust for every client: the system's root certificates, through the same
//! verifier reqwest would build (`rustls-platform-verifier`), loaded once per process and
//! only when the first certificate has to be checked.
//!
//! Why not reqwest's own: it loads and parses the whole system CA store (some 150 files)
//! each time a client is built, one client per vendor and source, even for a pass that
//! makes no call at all — a twentieth of a one-shot no-op pass over 20k people. The
//! verification itself is the platform verifier's, unchanged; only when it is made
//! differs.

use std::fmt;
use std::sync::{Arc, LazyLock, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::Verifier;

/// The crypto provider reqwest would pick: the process default if one was installed,
/// else aws-lc-rs (the only one roster builds).
fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// The process's verifier: every client shares it, so the roots load at most once.
static SYSTEM: LazyLock<Arc<SystemRoots>> = LazyLock::new(|| Arc::new(SystemRoots::new()));

/// A client TLS configuration as reqwest makes it by default (TLS 1.2 and 1.3, HTTP/1.1
/// by ALPN, no client certificate), with the shared lazy verifier.
///
/// # Errors
/// A crypto provider that supports neither TLS 1.2 nor 1.3.
pub fn client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    config_with(Arc::clone(&SYSTEM))
}

fn config_with(verifier: Arc<SystemRoots>) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&verifier.provider))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The platform verifier, made on first use. A failure to load the roots (none on the
/// machine) is kept and fails every handshake naming it, as reqwest's build would have
/// failed naming it.
pub struct SystemRoots {
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<Verifier, rustls::Error>>,
}

impl fmt::Debug for SystemRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemRoots")
            .field("loaded", &self.verifier.get().is_some())
            .finish()
    }
}

impl SystemRoots {
    fn new() -> Self {
        Self {
            provider: provider(),
            verifier: OnceLock::new(),
        }
    }

    fn verifier(&self) -> Result<&Verifier, rustls::Error> {
        self.verifier
            .get_or_init(|| {
                Verifier::new(Arc::clone(&self.provider)).map_err(|e| {
                    rustls::Error::General(format!(
                        "cannot load the system's TLS root certificates: {e}"
                    ))
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for SystemRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls13_signature(message, cert, dss)
    }

    /// Asked for every hello, before any certificate: what the provider can verify (the
    /// platform verifier answers the same), without loading the roots.
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    use tokio::io::AsyncWriteExt;

    /// A self-signed certificate for `localhost` (P-256, valid until 2126) and its key:
    /// no system trusts it.
    const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBlDCCATugAwIBAgIUYIUolJJw105RMtlgFB4iqqiSfsMwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyOTE1MDYzN1oYDzIxMjYxMTA1
MTUwNjM3WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARete0PG7FZ72dPAyJt01Rk4xx501TUc2LID9wH+m3zgymLEZ4oCVMl
9fM3+MjG272/hvSyOzCqRD8lWyg5A0Poo2kwZzAdBgNVHQ4EFgQUYycyRIwKjKw5
07r+saRmp+Cu1B4wHwYDVR0jBBgwFoAUYycyRIwKjKw507r+saRmp+Cu1B4wDwYD
VR0TAQH/BAUwAwEB/zAUBgNVHREEDTALgglsb2NhbGhvc3QwCgYIKoZIzj0EAwID
RwAwRAIgDtIxElvDevlLrYU60IklnKRK8cIiTDKec4ytLQ+/qfsCIEpShPMwr/Li
MFqbfe1pZChInYBYX8oKMmLmvWJ3UydA
-----END CERTIFICATE-----
";

    fn cert() -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(CERT.as_bytes()).expect("test certificate")
    }

    #[test]
    fn building_clients_loads_no_roots_and_the_first_check_loads_them_once() {
        let roots = Arc::new(SystemRoots::new());
        for _ in 0..3 {
            reqwest::Client::builder()
                .tls_backend_preconfigured(config_with(Arc::clone(&roots)).expect("config"))
                .build()
                .expect("client");
        }
        assert!(roots.verifier.get().is_none(), "no root loaded yet");
        assert!(!roots.supported_verify_schemes().is_empty());
        assert!(roots.verifier.get().is_none(), "a hello loads no root");
        let name = ServerName::try_from("localhost").expect("name");
        let verdict = roots.verify_server_cert(&cert(), &[], &name, &[], UnixTime::now());
        // Untrusted (or, on a machine without roots, no roots to trust it with).
        let e = verdict.expect_err("a self-signed certificate is refused");
        assert!(
            matches!(e, rustls::Error::InvalidCertificate(_))
                || e.to_string().contains("root certificates"),
            "{e}"
        );
        let first: *const _ = roots.verifier.get().expect("loaded");
        let _ = roots.verify_server_cert(&cert(), &[], &name, &[], UnixTime::now());
        assert!(std::ptr::eq(first, roots.verifier.get().expect("kept")));
    }

    /// Through a real handshake: a server with a certificate nobody trusts is refused by
    /// the clients every vendor and source use, and nothing is sent to it.
    #[tokio::test]
    async fn a_client_refuses_a_server_whose_certificate_is_not_trusted() {
        const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgzxil3zxqLlM/7hb8
0AOWv0nk8XWmAhqsGP4eYHMzepihRANCAARete0PG7FZ72dPAyJt01Rk4xx501TU
c2LID9wH+m3zgymLEZ4oCVMl9fM3+MjG272/hvSyOzCqRD8lWyg5A0Po
-----END PRIVATE KEY-----
";
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert()],
                PrivateKeyDer::from_pem_slice(KEY.as_bytes()).expect("key"),
            )
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let served = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            // The handshake fails on the client's side; had it not, the reply proves it.
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await;
                return true;
            }
            false
        });
        let client =
            super::super::client::build(std::time::Duration::from_secs(5)).expect("client");
        let e = client
            .get(format!("https://localhost:{port}/"))
            .send()
            .await
            .expect_err("refused");
        let text = format!("{:?}", e);
        assert!(
            text.contains("InvalidCertificate") || text.contains("root certificates"),
            "{text}"
        );
        assert!(!served.await.expect("server task"), "no request was served");
    }
}
