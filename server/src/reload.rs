//! Hot reload of the configuration directory.

use std::path::PathBuf;

use tokio::sync::mpsc;

use crate::config::{self, watch::DirWatcher};
use crate::state::AppState;
use crate::store::StoreSetup;

/// Watch `config_dir` and swap in each valid new configuration; an invalid one is
/// logged with its reason and counted, and the previous configuration keeps serving.
pub fn spawn(state: AppState, config_dir: PathBuf) -> notify::Result<DirWatcher> {
    let (tx, mut rx) = mpsc::channel(4);
    let watcher = DirWatcher::start(std::slice::from_ref(&config_dir), tx)?;
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            reload_once(&state, &config_dir).await;
        }
    });
    Ok(watcher)
}

/// Re-read the configuration once; returns whether a new one went live.
pub async fn reload_once(state: &AppState, config_dir: &std::path::Path) -> bool {
    match config::load_dir(config_dir) {
        Ok(next) => {
            if next.config == state.config.load().config {
                return false;
            }
            if let Err(e) = state
                .store
                .apply_config(&StoreSetup::new(&next.collections, &next.config.store))
                .await
            {
                tracing::error!(error = %e, "configuration valid but the store could not apply it; keeping the previous one");
                state.metrics.reload(false);
                return false;
            }
            let (old_store, new_store) = (&state.config.load().config.store, &next.config.store);
            if old_store.backend != new_store.backend || old_store.postgres != new_store.postgres {
                tracing::warn!(
                    "[store] backend or [store.postgres] settings changed; they take effect when the server restarts"
                );
            }
            if next.config.server != state.config.load().config.server {
                tracing::warn!(
                    "[server] settings changed; they take effect when the server restarts"
                );
            }
            for warning in next.warnings() {
                tracing::warn!(at = %warning.at, "{}", warning.message);
            }
            let collections = next.collections.len();
            state.config.store(std::sync::Arc::new(next));
            state.metrics.reload(true);
            tracing::info!(collections, "configuration reloaded");
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "configuration change rejected; the previous configuration keeps serving");
            state.metrics.reload(false);
            false
        }
    }
}
