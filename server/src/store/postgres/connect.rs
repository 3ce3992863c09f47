//! Reaching PostgreSQL: where the connection settings come from (a mounted Secret or an
//! environment variable), TLS with rustls, and the connection pool.
//!
//! The URL and password never appear in errors or logs: every message names where the
//! setting came from, not what it holds.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::Socket;

use crate::config::{PostgresSettings, PostgresTls};
use crate::store::StoreError;

fn invalid(message: String) -> StoreError {
    StoreError::Database(message)
}

/// Read a trimmed text file of the Secret, if present.
fn secret_file(dir: &Path, name: &str) -> Result<Option<String>, StoreError> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(invalid(format!(
            "cannot read {}: {}",
            path.display(),
            e.kind()
        ))),
    }
}

fn parse_url(url: &str, source: &str) -> Result<tokio_postgres::Config, StoreError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(invalid(format!("{source} does not hold a postgres:// URL")));
    }
    // TLS is decided by `tls` / `ca_file`, not by libpq-style URL parameters (which the
    // driver only partly understands: `sslmode=verify-full` would not parse).
    let url = without_tls_params(url);
    // The parser's message may quote the URL: say only where it came from.
    url.parse::<tokio_postgres::Config>()
        .map_err(|_| invalid(format!("{source} does not hold a valid postgres:// URL")))
}

/// `url` without its `sslmode`, `sslrootcert`, `sslcert`, `sslkey`, `sslcrl` and
/// `sslnegotiation` query parameters.
fn without_tls_params(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| {
            let key = p.split('=').next().unwrap_or("");
            !matches!(
                key,
                "sslmode" | "sslrootcert" | "sslcert" | "sslkey" | "sslcrl" | "sslnegotiation"
            )
        })
        .collect();
    if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// The connection settings (without TLS) named by `settings`, read now.
pub fn pg_config(settings: &PostgresSettings) -> Result<tokio_postgres::Config, StoreError> {
    let mut config = match (&settings.secret_dir, &settings.url_env) {
        (Some(dir), None) => from_secret_dir(dir)?,
        (None, Some(var)) => {
            let url = std::env::var(var).map_err(|_| {
                invalid(format!(
                    "the environment variable {var} (store.postgres.url_env) is not set"
                ))
            })?;
            parse_url(url.trim(), &format!("the environment variable {var}"))?
        }
        _ => {
            return Err(invalid(
                "store.postgres: set exactly one of secret_dir and url_env".into(),
            ))
        }
    };
    if config.get_hosts().is_empty() {
        return Err(invalid("the database settings name no host".into()));
    }
    if config.get_user().is_none() {
        return Err(invalid("the database settings name no user".into()));
    }
    config.connect_timeout(Duration::from_secs(settings.connect_timeout_secs.max(1)));
    config.application_name("taxiway-server");
    detect_dead_peers(&mut config);
    config.ssl_mode(match settings.tls {
        PostgresTls::Disable => SslMode::Disable,
        PostgresTls::Require | PostgresTls::VerifyFull => SslMode::Require,
    });
    Ok(config)
}

/// A database that vanishes without closing the connection (host down, network
/// partition) is noticed within about half a minute instead of the kernel's hours, so
/// requests get a 503 and the pool reconnects.
pub fn detect_dead_peers(config: &mut tokio_postgres::Config) {
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(15));
    config.keepalives_interval(Duration::from_secs(5));
    config.keepalives_retries(3);
    config.tcp_user_timeout(Duration::from_secs(30));
}

fn from_secret_dir(dir: &Path) -> Result<tokio_postgres::Config, StoreError> {
    for name in ["uri", "url"] {
        if let Some(url) = secret_file(dir, name)? {
            return parse_url(&url, &dir.join(name).display().to_string());
        }
    }
    let mut config = tokio_postgres::Config::new();
    let host = secret_file(dir, "host")?.ok_or_else(|| {
        invalid(format!(
            "{} holds neither `uri`/`url` nor `host`",
            dir.display()
        ))
    })?;
    config.host(&host);
    if let Some(port) = secret_file(dir, "port")? {
        let port: u16 = port.parse().map_err(|_| {
            invalid(format!(
                "{} is not a port number",
                dir.join("port").display()
            ))
        })?;
        config.port(port);
    }
    if let Some(db) = secret_file(dir, "dbname")? {
        config.dbname(&db);
    }
    match secret_file(dir, "username")? {
        Some(user) => {
            config.user(&user);
        }
        None => {
            if let Some(user) = secret_file(dir, "user")? {
                config.user(&user);
            }
        }
    }
    if let Some(password) = secret_file(dir, "password")? {
        config.password(password);
    }
    Ok(config)
}

/// The CA bundle to verify the server with: `ca_file`, else `ca.crt` of the Secret.
fn ca_path(settings: &PostgresSettings) -> Option<PathBuf> {
    if let Some(file) = &settings.ca_file {
        return Some(file.clone());
    }
    let dir = settings.secret_dir.as_ref()?;
    let path = dir.join("ca.crt");
    path.exists().then_some(path)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(super) fn tls_config(settings: &PostgresSettings) -> Result<rustls::ClientConfig, StoreError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("cannot configure TLS: {e}")))?;
    let config = match settings.tls {
        PostgresTls::VerifyFull => {
            let mut roots = RootCertStore::empty();
            match ca_path(settings) {
                Some(path) => {
                    let pem = std::fs::read(&path).map_err(|e| {
                        invalid(format!("cannot read {}: {}", path.display(), e.kind()))
                    })?;
                    for cert in CertificateDer::pem_slice_iter(&pem) {
                        let cert = cert.map_err(|_| {
                            invalid(format!(
                                "{} is not a PEM certificate bundle",
                                path.display()
                            ))
                        })?;
                        roots.add(cert).map_err(|e| {
                            invalid(format!("bad CA certificate in {}: {e}", path.display()))
                        })?;
                    }
                    if roots.is_empty() {
                        return Err(invalid(format!("{} holds no certificate", path.display())));
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        PostgresTls::Require | PostgresTls::Disable => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// `tls = "require"`: encryption without authentication of the server (like libpq's
/// `sslmode=require`). Signatures are still checked so the handshake is sound.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Set on every new connection, so the database itself gives up on a replica that
/// vanished (host down, partition) instead of keeping its locks for the kernel's hours:
///
/// * `idle_in_transaction_session_timeout`: a transaction idle this long (its client
///   gone mid-transaction) is aborted and its locks — the clock row — released;
/// * `tcp_keepalives_*`: the server probes an idle client connection after 30 s and
///   drops it after three unanswered probes 10 s apart (PostgreSQL's own default is the
///   kernel's two hours);
/// * `statement_timeout`: no statement runs (or waits for a lock) longer than this; far
///   above any rebuild batch, switch or purge statement.
///
/// Plain `SET`s after connecting (not the startup `options` parameter), so they also
/// work behind PgBouncer in session mode.
pub const SESSION_SETTINGS: &str = "SET idle_in_transaction_session_timeout = '60s'; \
     SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; \
     SET tcp_keepalives_count = 3; SET statement_timeout = '300s'";

/// A pool over `config` with the TLS mode of `settings`. Connections are made on
/// demand, so a database that is down now does not stop the pool from being built.
/// When the settings come from a Secret or the environment, every new connection
/// reads them again (a rotated password is picked up on reconnect).
pub fn pool(
    config: tokio_postgres::Config,
    settings: &PostgresSettings,
) -> Result<Pool, StoreError> {
    let manager = match settings.tls {
        PostgresTls::Disable => manager(config, settings, tokio_postgres::NoTls),
        PostgresTls::Require | PostgresTls::VerifyFull => manager(
            config,
            settings,
            tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(settings)?),
        ),
    };
    let timeout = Duration::from_secs(settings.connect_timeout_secs.max(1));
    Pool::builder(manager)
        .max_size(settings.pool_size.max(1))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .post_create(deadpool_postgres::Hook::async_fn(|client, _| {
            Box::pin(async move {
                client
                    .batch_execute(SESSION_SETTINGS)
                    .await
                    .map_err(deadpool_postgres::HookError::Backend)
            })
        }))
        .build()
        .map_err(|e| invalid(format!("cannot build the connection pool: {e}")))
}

fn manager<T>(config: tokio_postgres::Config, settings: &PostgresSettings, tls: T) -> Manager
where
    T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    if settings.secret_dir.is_some() || settings.url_env.is_some() {
        let connect = RereadConnect {
            settings: settings.clone(),
            tls,
        };
        Manager::from_connect(config, connect, manager_config)
    } else {
        Manager::from_config(config, tls, manager_config)
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Connects with the settings as they are now in the Secret / environment, falling
/// back to those read at start when they cannot be read.
struct RereadConnect<T> {
    settings: PostgresSettings,
    tls: T,
}

impl<T> deadpool_postgres::Connect for RereadConnect<T>
where
    T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    fn connect(
        &self,
        at_start: &tokio_postgres::Config,
    ) -> BoxFuture<'_, Result<(tokio_postgres::Client, JoinHandle<()>), tokio_postgres::Error>>
    {
        let config = match pg_config(&self.settings) {
            Ok(config) => config,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the database settings again; using those read at start");
                at_start.clone()
            }
        };
        let tls = self.tls.clone();
        Box::pin(async move {
            let (client, connection) = config.connect(tls).await?;
            let task = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "database connection closed with an error");
                }
            });
            Ok((client, task))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> PostgresSettings {
        PostgresSettings {
            secret_dir: Some(dir.to_path_buf()),
            url_env: None,
            pool_size: 4,
            tls: PostgresTls::Disable,
            ca_file: None,
            connect_timeout_secs: 5,
        }
    }

    #[test]
    fn secret_files_build_the_settings_and_errors_never_quote_the_url() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("host"), "db.example\n").expect("write");
        std::fs::write(dir.join("port"), "6543").expect("write");
        std::fs::write(dir.join("dbname"), "taxii").expect("write");
        std::fs::write(dir.join("user"), "feeds").expect("write");
        std::fs::write(dir.join("password"), "s3cret").expect("write");
        let c = pg_config(&settings(&dir)).expect("config");
        assert_eq!(c.get_user(), Some("feeds"));
        assert_eq!(c.get_ports(), &[6543]);
        assert_eq!(c.get_password(), Some(&b"s3cret"[..]));

        std::fs::write(
            dir.join("url"),
            "postgresql://u:pw@db.example:5433/feeds?sslmode=verify-full&application_name=x",
        )
        .expect("write");
        let c = pg_config(&settings(&dir)).expect("sslmode=verify-full is left to `tls`");
        assert_eq!(c.get_dbname(), Some("feeds"));
        assert_eq!(c.get_ports(), &[5433]);

        std::fs::write(dir.join("uri"), "postgres://u:hunter2@h:notaport/db").expect("write");
        let e = pg_config(&settings(&dir)).expect_err("bad URL").to_string();
        assert!(!e.contains("hunter2"), "{e}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    /// Every pooled connection carries the server-side timeouts (when a test server is
    /// configured).
    #[tokio::test]
    async fn new_connections_get_the_server_side_timeouts() {
        let Ok(url) = std::env::var("TAXIWAY_TEST_POSTGRES_URL") else {
            return;
        };
        let mut config: tokio_postgres::Config = url.parse().expect("test URL");
        config.ssl_mode(SslMode::Disable);
        let settings = PostgresSettings {
            secret_dir: None,
            url_env: None,
            pool_size: 2,
            tls: PostgresTls::Disable,
            ca_file: None,
            connect_timeout_secs: 5,
        };
        let pool = pool(config, &settings).expect("pool");
        let client = pool.get().await.expect("connection");
        for (name, want) in [
            ("idle_in_transaction_session_timeout", "1min"),
            ("statement_timeout", "5min"),
            ("tcp_keepalives_idle", "30"),
            ("tcp_keepalives_interval", "10"),
            ("tcp_keepalives_count", "3"),
        ] {
            let got: String = client
                .query_one(&format!("SHOW {name}"), &[])
                .await
                .expect("SHOW")
                .get(0);
            assert_eq!(got, want, "{name}");
        }
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("taxiway-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }
}
