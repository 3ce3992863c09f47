//! TLS from the `tls/` directory: `tls.crt` (PEM chain), `tls.key` (PEM key) and an
//! optional `ca.crt` (PEM CAs whose client certificates are accepted).
//!
//! TLS 1.3 and 1.2 only, the `ring` provider's AEAD suites, no 0-RTT. The certificate
//! is served by a resolver that is swapped in place, so a rotated certificate (e.g.
//! cert-manager renewing the Secret) is used from the next handshake on, without a
//! restart and without touching open connections. A change of `ca.crt` builds a new
//! server configuration for new connections. A broken change is refused, logged and
//! counted; the previous certificate keeps serving. [`Tls`] is reloaded by
//! [`crate::reload`].

mod names;
mod reload;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use tokio_rustls::TlsAcceptor;

use crate::metrics::Metrics;

pub use names::CertificateNames;

/// The server certificate chain.
pub const CERT_FILE: &str = "tls.crt";
/// The server private key.
pub const KEY_FILE: &str = "tls.key";
/// CAs for client certificates (optional).
pub const CA_FILE: &str = "ca.crt";

/// The TLS versions offered: 1.3 and 1.2, never anything older.
pub const PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file holds no usable certificate or key, or the key does not match.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (never key material).
        message: String,
    },
}

/// The server certificate, swapped whole on rotation.
#[derive(Debug)]
struct CertResolver(ArcSwap<CertifiedKey>);

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// The TLS side of the TAXII listener.
pub struct Tls {
    dir: PathBuf,
    provider: Arc<CryptoProvider>,
    resolver: Arc<CertResolver>,
    config: ArcSwap<ServerConfig>,
    /// The `ca.crt` bytes the current configuration was built from.
    client_ca: Mutex<Option<Vec<u8>>>,
    /// Where the served certificate's expiry is exported, once given.
    metrics: Option<Arc<Metrics>>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("dir", &self.dir).finish()
    }
}

/// What a reload changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reloaded {
    /// The server certificate or key.
    pub certificate: bool,
    /// The client CAs.
    pub client_ca: bool,
}

impl Tls {
    /// Load `dir`; fails if `tls.crt`/`tls.key` are missing, unreadable or mismatched.
    pub fn load(dir: &Path) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = read_certified_key(dir, &provider)?;
        let resolver = Arc::new(CertResolver(ArcSwap::from_pointee(key)));
        let client_ca = read_client_ca(dir)?;
        let config = build_config(dir, &provider, &resolver, client_ca.as_deref())?;
        Ok(Tls {
            dir: dir.to_path_buf(),
            provider,
            resolver,
            config: ArcSwap::from_pointee(config),
            client_ca: Mutex::new(client_ca),
            metrics: None,
        })
    }

    /// Export the served certificate's expiry to `metrics`, now and on every reload
    /// that changes the certificate.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Tls {
        self.metrics = Some(metrics);
        self.export_expiry();
        self
    }

    /// When the certificate being served expires (its notAfter), in Unix seconds.
    pub fn certificate_expiry(&self) -> Option<i64> {
        let key = self.resolver.0.load();
        key.cert.first().and_then(|c| names::not_after(c.as_ref()))
    }

    fn export_expiry(&self) {
        if let (Some(metrics), Some(not_after)) = (&self.metrics, self.certificate_expiry()) {
            metrics.tls_certificate_expiry(not_after);
        }
    }

    /// Re-read the directory and apply what changed; on error nothing changes.
    pub fn reload(&self) -> Result<Reloaded, TlsError> {
        let key = read_certified_key(&self.dir, &self.provider)?;
        let ca = read_client_ca(&self.dir)?;
        let mut current_ca = self.client_ca.lock().unwrap_or_else(|e| e.into_inner());
        let mut changed = Reloaded::default();
        if *current_ca != ca {
            let config = build_config(&self.dir, &self.provider, &self.resolver, ca.as_deref())?;
            self.config.store(Arc::new(config));
            *current_ca = ca;
            changed.client_ca = true;
        }
        if self.resolver.0.load().cert != key.cert {
            self.resolver.0.store(Arc::new(key));
            changed.certificate = true;
            self.export_expiry();
        }
        Ok(changed)
    }

    /// An acceptor with the configuration in force now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.load_full())
    }

    /// Whether clients are asked for a certificate (`ca.crt` is present).
    pub fn asks_client_certificates(&self) -> bool {
        self.client_ca
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Subject and expiry of the certificate being served, for logs.
    pub fn describe_certificate(&self) -> String {
        let key = self.resolver.0.load();
        key.cert
            .first()
            .map(|c| names::describe(c.as_ref()))
            .unwrap_or_default()
    }
}

fn read(path: PathBuf) -> Result<Vec<u8>, TlsError> {
    std::fs::read(&path).map_err(|source| TlsError::Read { path, source })
}

fn invalid(path: PathBuf, message: impl Into<String>) -> TlsError {
    TlsError::Invalid {
        path,
        message: message.into(),
    }
}

fn certificates(path: PathBuf, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path.clone(), format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

fn read_certified_key(dir: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let cert_path = dir.join(CERT_FILE);
    let chain = certificates(cert_path.clone(), &read(cert_path.clone())?)?;
    let key_path = dir.join(KEY_FILE);
    let key = PrivateKeyDer::from_pem_slice(&read(key_path.clone())?)
        .map_err(|_| invalid(key_path.clone(), "holds no PEM private key"))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        invalid(
            key_path,
            format!("cannot be used with {}: {e}", cert_path.display()),
        )
    })
}

fn read_client_ca(dir: &Path) -> Result<Option<Vec<u8>>, TlsError> {
    let path = dir.join(CA_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Read { path, source }),
    }
}

fn build_config(
    dir: &Path,
    provider: &Arc<CryptoProvider>,
    resolver: &Arc<CertResolver>,
    client_ca: Option<&[u8]>,
) -> Result<ServerConfig, TlsError> {
    let ca_path = dir.join(CA_FILE);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(|e| invalid(dir.to_path_buf(), e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca_path.clone(), pem)? {
                roots
                    .add(cert)
                    .map_err(|e| invalid(ca_path.clone(), format!("unusable CA: {e}")))?;
            }
            // Clients without a certificate may still use a password or API key.
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| invalid(ca_path.clone(), e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.max_early_data_size = 0;
    Ok(config)
}
