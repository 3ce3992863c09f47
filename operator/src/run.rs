//! `taxiway-operator run`: the admin listener, leader election, then the controllers,
//! until SIGTERM or the Lease is lost.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use tokio::sync::watch;

use crate::admin::{self, Phase, Readiness};
use crate::controller::{self, Options};
use crate::lease::{Elector, LeaseConfig};
use crate::metrics::Metrics;

/// Everything `run` needs to know.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// A kubeconfig file; otherwise in-cluster config or `$KUBECONFIG`/`~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Admin listener address.
    pub admin_listen: SocketAddr,
    /// Leader election; `None` runs without (a single replica).
    pub lease: Option<LeaseConfig>,
    /// Controller options.
    pub controller: Options,
}

/// Run the operator until SIGTERM/Ctrl-C (`Ok`) or the loss of the Lease (`Err`).
pub async fn run(options: RunOptions) -> anyhow::Result<()> {
    let client = client(options.kubeconfig.as_deref()).await?;
    let metrics = Arc::new(Metrics::new());
    let readiness = Readiness::default();

    let listener = tokio::net::TcpListener::bind(options.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.admin_listen))?;
    tracing::info!(admin = %listener.local_addr()?, "admin listener up (/healthz, /readyz, /metrics)");
    let app = admin::router(readiness.clone(), metrics.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "admin listener failed");
        }
    });

    let mut elector = options
        .lease
        .clone()
        .map(|lease| Elector::new(client.clone(), lease));
    if let Some(elector) = elector.as_mut() {
        readiness.set(Phase::Standby);
        tokio::select! {
            () = elector.acquire() => {}
            () = shutdown_signal() => return Ok(()),
        }
        metrics.set_leader(true);
    }
    readiness.set(Phase::Syncing);

    let (stop, stopped) = watch::channel(false);
    let controllers = tokio::spawn(controller::run(
        client,
        options.controller.clone(),
        metrics.clone(),
        readiness,
        stopped,
    ));
    let outcome = match elector.as_mut() {
        Some(elector) => tokio::select! {
            () = elector.hold() => Err(anyhow::anyhow!("lost the leader Lease; exiting so that only one replica reconciles")),
            () = shutdown_signal() => Ok(()),
        },
        None => {
            shutdown_signal().await;
            Ok(())
        }
    };
    metrics.set_leader(false);
    let _ = stop.send(true);
    if outcome.is_ok() {
        tracing::info!("shutting down: finishing reconciles in flight");
        let _ = controllers.await;
        if let Some(elector) = elector.as_mut() {
            elector.release().await;
        }
    }
    outcome
}

async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
