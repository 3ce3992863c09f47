//! Running the service: listeners, reload, maintenance, graceful shutdown.
//!
//! The TAXII listener is a hand-written accept loop over hyper-util's HTTP/1+HTTP/2
//! server, so TLS and plain connections take one path: accept, (handshake,) note the
//! peer and its client certificate, serve the router; on shutdown stop accepting and
//! let in-flight requests finish.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::admin::{self, Admin};
use crate::auth::{self, Credentials};
use crate::config;
use crate::reload;
use crate::state::AppState;
use crate::store::sqlite::SqliteStore;
use crate::store::{SharedStore, Store};
use crate::taxii::{self, Scheme};
use crate::tls::{self, CertificateNames, Tls};

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to send a request's headers (HTTP/1).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the service reads its files and listens.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The config directory (`taxiway.toml`).
    pub config_dir: PathBuf,
    /// The data directory (the embedded store).
    pub data_dir: PathBuf,
    /// The credentials directory (users), if any.
    pub credentials_dir: Option<PathBuf>,
    /// The TLS directory (`tls.crt`, `tls.key`, optional `ca.crt`), if any.
    pub tls_dir: Option<PathBuf>,
    /// TAXII listen address.
    pub listen: SocketAddr,
    /// Admin listen address (probes, metrics).
    pub admin_listen: SocketAddr,
    /// Read connections to the store.
    pub readers: u32,
}

/// Open the store and apply the configuration: what `serve` and `import` share.
pub async fn open(
    config_dir: &std::path::Path,
    data_dir: &std::path::Path,
    readers: u32,
) -> anyhow::Result<(config::ServiceConfig, SharedStore)> {
    let config =
        config::load_dir(config_dir).map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let store = SqliteStore::open(data_dir, readers).context("cannot open the store")?;
    store
        .apply_config(&config)
        .await
        .context("cannot apply the configuration to the store")?;
    Ok((config, Arc::new(store)))
}

/// Serve until SIGTERM or Ctrl-C; in-flight requests finish first.
pub async fn serve(opts: ServeOptions) -> anyhow::Result<()> {
    let (config, store) = open(&opts.config_dir, &opts.data_dir, opts.readers).await?;
    let refresh = Duration::from_secs(config.config.store.refresh_interval_secs);
    let credentials = match &opts.credentials_dir {
        Some(dir) => Credentials::load_dir(dir)
            .with_context(|| format!("invalid credentials in {}", dir.display()))?,
        None => Credentials::none(),
    };
    let state = AppState::new(config, store.clone(), credentials);
    if state.auth.users() == 0 {
        tracing::warn!(
            "NO USERS ARE CONFIGURED: every client may read and write every collection without credentials; \
             add users in the credentials directory (see docs/security.md)"
        );
    } else {
        tracing::info!(users = state.auth.users(), "users loaded");
    }
    let _config_watcher = reload::spawn(state.clone(), opts.config_dir.clone())
        .context("cannot watch the config directory")?;
    let _credentials_watcher = match &opts.credentials_dir {
        Some(dir) => Some(
            auth::spawn_reload(state.auth.clone(), dir.clone())
                .context("cannot watch the credentials directory")?,
        ),
        None => None,
    };
    let tls = match &opts.tls_dir {
        Some(dir) => Some(Arc::new(Tls::load(dir).with_context(|| {
            format!("cannot use the TLS files in {}", dir.display())
        })?)),
        None => None,
    };
    let _tls_watcher = match &tls {
        Some(tls) => Some(
            tls::spawn_reload(tls.clone(), state.metrics.clone())
                .context("cannot watch the TLS directory")?,
        ),
        None => None,
    };

    let maintenance_store = store.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(refresh);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = maintenance_store.maintain().await {
                tracing::error!(error = %e, "store maintenance failed");
            }
        }
    });

    let ready = Arc::new(AtomicBool::new(false));
    let admin_app = admin::router(Admin {
        app: state.clone(),
        ready: ready.clone(),
    });
    let admin_listener = TcpListener::bind(opts.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.admin_listen))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(admin_listener, admin_app).await {
            tracing::error!(error = %e, "admin listener failed");
        }
    });

    let listener = TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    match &tls {
        Some(tls) => tracing::info!(
            listen = %opts.listen,
            certificate = %tls.describe_certificate(),
            client_certificates = tls.asks_client_certificates(),
            "serving TAXII over HTTPS"
        ),
        None => tracing::warn!(
            listen = %opts.listen,
            "serving TAXII over plain HTTP: no TLS directory is configured"
        ),
    }
    ready.store(true, Ordering::Release);
    let draining = ready.clone();
    let shutdown = async move {
        shutdown_signal().await;
        // Not ready while draining, so the Service stops sending new requests here.
        draining.store(false, Ordering::Release);
    };
    run(listener, taxii::router(state), tls, shutdown).await;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Accept connections on `listener` and serve `app` on each (over TLS when `tls` is
/// given) until `shutdown` resolves; then stop accepting and wait for in-flight
/// requests, at most [`DRAIN_TIMEOUT`].
pub async fn run(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<Tls>>,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            remote,
            app.clone(),
            tls.clone(),
            builder.clone(),
            graceful.watcher(),
        ));
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("connections still open after {}s; closing them", DRAIN_TIMEOUT.as_secs());
        }
    }
}

/// One connection: the TLS handshake if any, then HTTP until the client or shutdown ends it.
async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    app: Router,
    tls: Option<Arc<Tls>>,
    builder: auto::Builder<TokioExecutor>,
    watcher: Watcher,
) {
    let Some(tls) = tls else {
        return serve_http(stream, remote, None, Scheme("http"), app, &builder, watcher).await;
    };
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, "TLS handshake timed out");
            return;
        }
    };
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|der| Arc::new(CertificateNames::from_der(der.as_ref())));
    serve_http(
        stream,
        remote,
        certificate,
        Scheme("https"),
        app,
        &builder,
        watcher,
    )
    .await;
}

/// Serve HTTP on a connection; every request carries the peer address
/// (`ConnectInfo`), the client certificate's names and the scheme as extensions.
async fn serve_http<S>(
    stream: S,
    remote: SocketAddr,
    certificate: Option<Arc<CertificateNames>>,
    scheme: Scheme,
    app: Router,
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        // HTTP/2 carries the host in `:authority`, not in a Host header; URLs the
        // server emits are built from Host, so give HTTP/2 requests one.
        if !request.headers().contains_key(header::HOST) {
            let authority = request.uri().authority().map(|a| a.as_str().to_string());
            if let Some(host) = authority.and_then(|a| HeaderValue::from_str(&a).ok()) {
                request.headers_mut().insert(header::HOST, host);
            }
        }
        let extensions = request.extensions_mut();
        extensions.insert(ConnectInfo(remote));
        extensions.insert(scheme);
        if let Some(names) = &certificate {
            extensions.insert(names.clone());
        }
        let app = app.clone();
        async move { app.oneshot(request.map(Body::new)).await }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
