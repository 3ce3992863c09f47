//! Running the service: listeners, reload, maintenance, graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Extension;

use crate::access::Policy;
use crate::admin::{self, Admin};
use crate::config;
use crate::reload;
use crate::state::AppState;
use crate::store::sqlite::SqliteStore;
use crate::store::{SharedStore, Store};
use crate::taxii::{self, Scheme};

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
    let state = AppState::new(config, store.clone(), Policy::Open);
    let _watcher = reload::spawn(state.clone(), opts.config_dir.clone())
        .context("cannot watch the config directory")?;

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
    let admin_listener = tokio::net::TcpListener::bind(opts.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.admin_listen))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(admin_listener, admin_app).await {
            tracing::error!(error = %e, "admin listener failed");
        }
    });

    let app = taxii::router(state.clone()).layer(Extension(Scheme("http")));
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    tracing::warn!(listen = %opts.listen, "serving TAXII over plain HTTP: no TLS is configured");
    ready.store(true, Ordering::Release);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("TAXII listener failed")?;
    ready.store(false, Ordering::Release);
    tracing::info!("shut down cleanly");
    Ok(())
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
