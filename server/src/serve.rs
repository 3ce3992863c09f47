//! Running the service: listeners, reload, maintenance, graceful shutdown.
//!
//! The TAXII listener itself (accept loop, connection limits, drain) is in
//! [`crate::listener`]; per-request limits in [`crate::limits`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

use crate::admin::{self, Admin};
use crate::auth::{self, CredentialsDir};
use crate::config::{self, ServerSettings, StoreBackend};
use crate::feeds::{self, Feeds};
use crate::limits;
use crate::listener;
use crate::metrics::Metrics;
use crate::reload::{self, ConfigDir, DirWatcher};
use crate::state::AppState;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{SharedStore, StoreSetup};
use crate::taxii;
use crate::tls::Tls;

/// Where the service reads its files and listens.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The config directory (`taxiway.toml`).
    pub config_dir: PathBuf,
    /// The data directory (the embedded store); empty when the store is PostgreSQL.
    pub data_dir: PathBuf,
    /// The credentials directory (users), if any.
    pub credentials_dir: Option<PathBuf>,
    /// Serve without users on purpose: with a credentials directory that holds none,
    /// or without one on a non-loopback address (otherwise refused; see
    /// [`auth::startup`]).
    pub allow_anonymous_open: bool,
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
    for warning in config.warnings() {
        tracing::warn!(at = %warning.at, "{}", warning.message);
    }
    let store = open_store(&config, data_dir, readers).await?;
    store
        .apply_config(&StoreSetup::new(&config.collections, &config.config.store))
        .await
        .context("cannot apply the configuration to the store")?;
    Ok((config, store))
}

/// Open the backend `config` names (`[store] backend`), migrating its schema.
pub async fn open_store(
    config: &config::ServiceConfig,
    data_dir: &std::path::Path,
    readers: u32,
) -> anyhow::Result<SharedStore> {
    let settings = &config.config.store;
    match (settings.backend, &settings.postgres) {
        (StoreBackend::Postgres, Some(pg)) => {
            let store = connect_postgres(pg).await?;
            tracing::info!(
                pool_size = pg.pool_size,
                tls = ?pg.tls,
                schema_version = crate::store::postgres::schema_version(),
                "store: PostgreSQL"
            );
            Ok(Arc::new(store))
        }
        (StoreBackend::Postgres, None) => {
            anyhow::bail!("store.backend = \"postgres\" needs a [store.postgres] section")
        }
        (StoreBackend::Sqlite, _) if data_dir.as_os_str().is_empty() => {
            anyhow::bail!(
                "the embedded store needs a data directory (--data-dir or TAXIWAY_DATA_DIR)"
            )
        }
        (StoreBackend::Sqlite, _) => Ok(Arc::new(
            SqliteStore::open(data_dir, readers).context("cannot open the store")?,
        )),
    }
}

/// Open the PostgreSQL store, waiting up to a minute for an unreachable database
/// (replicas often start together with, or just before, their database).
async fn connect_postgres(settings: &config::PostgresSettings) -> anyhow::Result<PostgresStore> {
    const ATTEMPTS: u32 = 30;
    let mut attempt = 1;
    loop {
        match PostgresStore::connect(settings).await {
            Ok(store) => return Ok(store),
            Err(crate::store::StoreError::Unavailable(e)) if attempt < ATTEMPTS => {
                tracing::warn!(attempt, error = %e, "the database is unreachable; retrying in 2s");
                tokio::time::sleep(Duration::from_secs(2)).await;
                attempt += 1;
            }
            Err(e) => return Err(e).context("cannot open the PostgreSQL store"),
        }
    }
}

/// Serve until SIGTERM or Ctrl-C; in-flight requests finish first.
pub async fn serve(opts: ServeOptions) -> anyhow::Result<()> {
    // Before anything else: no users where users are expected is refused.
    let credentials = auth::startup_credentials(
        opts.credentials_dir.as_deref(),
        opts.listen,
        opts.allow_anonymous_open,
    )?;
    let (config, store) = open(&opts.config_dir, &opts.data_dir, opts.readers).await?;
    let refresh = Duration::from_secs(config.config.store.refresh_interval_secs);
    // Connection and request limits are read once: a change needs a restart.
    let server_settings = config.config.server.clone();
    warn_if_few_descriptors(&server_settings);
    let state = AppState::new(config, store.clone(), credentials);
    log_users(&state);
    let (tls, _watchers) = start_reloading(&opts, &state)?;
    spawn_maintenance(store.clone(), refresh);
    let _feeds = Feeds::start(state.clone(), feeds::holder_name(opts.listen.port()));

    let ready = Arc::new(AtomicBool::new(false));
    spawn_admin(&opts, &state, ready.clone()).await?;
    let listener = TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    log_serving(&opts, tls.as_deref());
    ready.store(true, Ordering::Release);
    let closing = Arc::new(AtomicBool::new(false));
    let shutdown = drain_on_signal(ready, closing.clone(), &server_settings);
    let app = taxii_app(&state, &server_settings, closing);
    // Connections from trusted proxies carry many clients: not capped per address.
    let config = state.config.clone();
    let exempt: listener::Exempt = Arc::new(move |ip| config.load().is_trusted_proxy(ip));
    listener::run_exempting(
        listener,
        app,
        tls,
        &server_settings,
        state.metrics.clone(),
        exempt,
        shutdown,
    )
    .await;
    close_store(&store).await;
    Ok(())
}

/// Warn when the open-file limit is below what `server.max_connections` can use.
fn warn_if_few_descriptors(server_settings: &ServerSettings) {
    let needed = listener::descriptors_needed(server_settings);
    if let Some(limit) = listener::open_files_limit().filter(|l| *l < needed) {
        tracing::warn!(
            limit,
            needed,
            max_connections = server_settings.max_connections,
            "the open-file limit is below what server.max_connections can use; raise it (ulimit -n) or lower max_connections"
        );
    }
}

/// Say how many users were loaded, loudly when there are none.
fn log_users(state: &AppState) {
    if state.auth.users() == 0 {
        tracing::warn!(
            "NO USERS ARE CONFIGURED: every client may read and write every collection without credentials; \
             add users in the credentials directory (see docs/security.md)"
        );
    } else {
        tracing::info!(users = state.auth.users(), "users loaded");
    }
}

/// The watchers of the reloaded directories: reloading stops when they are dropped.
struct Watchers {
    _config: DirWatcher,
    _credentials: Option<DirWatcher>,
    _tls: Option<DirWatcher>,
}

/// Start hot reload of the config directory, the credentials directory and the TLS
/// files (loaded here), in that order.
fn start_reloading(
    opts: &ServeOptions,
    state: &AppState,
) -> anyhow::Result<(Option<Arc<Tls>>, Watchers)> {
    let config = ConfigDir::new(&opts.config_dir, state.config.clone(), state.store.clone());
    let config = reload::watch(Arc::new(config), state.metrics.clone())
        .context("cannot watch the config directory")?;
    let credentials = match &opts.credentials_dir {
        Some(dir) => Some(
            reload::watch(
                Arc::new(CredentialsDir::new(state.auth.clone(), dir)),
                state.metrics.clone(),
            )
            .context("cannot watch the credentials directory")?,
        ),
        None => None,
    };
    let tls = match &opts.tls_dir {
        Some(dir) => Some(Arc::new(
            Tls::load(dir)
                .with_context(|| format!("cannot use the TLS files in {}", dir.display()))?
                .with_metrics(state.metrics.clone()),
        )),
        None => None,
    };
    let tls_watcher = match &tls {
        Some(tls) => Some(
            reload::watch(tls.clone(), state.metrics.clone())
                .context("cannot watch the TLS directory")?,
        ),
        None => None,
    };
    let watchers = Watchers {
        _config: config,
        _credentials: credentials,
        _tls: tls_watcher,
    };
    Ok((tls, watchers))
}

/// Run the store's maintenance every `refresh` (the first run one interval from now).
fn spawn_maintenance(store: SharedStore, refresh: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(refresh);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = store.maintain().await {
                tracing::error!(error = %e, "store maintenance failed");
            }
        }
    });
}

/// Listen on the admin address (probes, metrics) and serve it in the background.
async fn spawn_admin(
    opts: &ServeOptions,
    state: &AppState,
    ready: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let admin_app = admin::router(Admin {
        app: state.clone(),
        ready,
    });
    let admin_listener = TcpListener::bind(opts.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.admin_listen))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(admin_listener, admin_app).await {
            tracing::error!(error = %e, "admin listener failed");
        }
    });
    Ok(())
}

/// Say how TAXII is served: over HTTPS with which certificate, or over plain HTTP.
fn log_serving(opts: &ServeOptions, tls: Option<&Tls>) {
    match tls {
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
}

/// Resolves once a shutdown signal has come and the shutdown delay has passed: on
/// the signal, the server stops being ready (so the Service stops sending new
/// requests here) and starts `closing` keep-alive connections.
fn drain_on_signal(
    ready: Arc<AtomicBool>,
    closing: Arc<AtomicBool>,
    server_settings: &ServerSettings,
) -> impl Future<Output = ()> {
    let delay = Duration::from_secs(server_settings.shutdown_delay_secs);
    async move {
        shutdown_signal().await;
        // Not ready while draining, so the Service stops sending new requests here.
        ready.store(false, Ordering::Release);
        closing.store(true, Ordering::Release);
        if !delay.is_zero() {
            tracing::info!(
                delay_secs = delay.as_secs(),
                "not ready; still serving until load balancers have taken this server out"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

/// The TAXII application: routes, per-request limits, and `Connection: close` once
/// `closing`.
fn taxii_app(
    state: &AppState,
    server_settings: &ServerSettings,
    closing: Arc<AtomicBool>,
) -> Router {
    limits::apply(taxii::router(state.clone()), server_settings, state.clone()).layer(
        axum::middleware::from_fn(move |request, next| {
            close_when_draining(closing.clone(), request, next)
        }),
    )
}

/// Close the store after the listener has drained.
async fn close_store(store: &SharedStore) {
    match store.close().await {
        Ok(()) => tracing::info!("store closed; shut down cleanly"),
        Err(e) => tracing::error!(error = %e, "cannot close the store cleanly"),
    }
}

/// Accept connections on `listener` and serve `app` on each (over TLS when `tls` is
/// given) with the default `[server]` limits until `shutdown` resolves; then stop
/// accepting and wait for in-flight requests. See [`listener::run`].
pub async fn run(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<Tls>>,
    shutdown: impl Future<Output = ()>,
) {
    listener::run(
        listener,
        app,
        tls,
        &ServerSettings::default(),
        Arc::new(Metrics::new()),
        shutdown,
    )
    .await;
}

/// Once shutdown has begun, answer HTTP/1.1 requests with `Connection: close`, so
/// keep-alive clients open their next connection elsewhere (through the Service, to a
/// pod that is staying) instead of racing the listener's close on an idle connection.
async fn close_when_draining(
    closing: Arc<AtomicBool>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let http1 = request.version() < http::Version::HTTP_2;
    let mut response = next.run(request).await;
    if http1 && closing.load(Ordering::Acquire) {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    response
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
