//! Hot reload of the configuration directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{self, ConfigError, ServiceConfig};
use crate::reload::source::{Counter, Reloadable};
use crate::store::{SharedStore, StoreError, StoreSetup};

/// The target of this reload's log lines (where they were logged before `reload` was
/// split into files), so that log filters and readers see the same lines.
const LOG: &str = "taxiway_server::reload";

/// The configuration directory, reloaded into the configuration serving and the
/// store: each valid new configuration is swapped in; an invalid one is logged with
/// its reason and counted, and the previous configuration keeps serving.
pub struct ConfigDir {
    dir: PathBuf,
    serving: Arc<ArcSwap<ServiceConfig>>,
    store: SharedStore,
}

impl ConfigDir {
    /// Reload `dir` into `serving` (`AppState::config`) and `store`.
    pub fn new(dir: &Path, serving: Arc<ArcSwap<ServiceConfig>>, store: SharedStore) -> ConfigDir {
        ConfigDir {
            dir: dir.to_path_buf(),
            serving,
            store,
        }
    }

    /// Warn about applied settings that only take effect at the next start.
    fn warn_restart_needed(&self, next: &ServiceConfig) {
        let current = self.serving.load();
        let (old_store, new_store) = (&current.config.store, &next.config.store);
        if old_store.backend != new_store.backend || old_store.postgres != new_store.postgres {
            tracing::warn!(
                target: LOG,
                "[store] backend or [store.postgres] settings changed; they take effect when the server restarts"
            );
        }
        if next.config.server != current.config.server {
            tracing::warn!(
                target: LOG,
                "[server] settings changed; they take effect when the server restarts"
            );
        }
    }
}

/// Why a configuration change was refused.
#[derive(Debug)]
pub enum Refused {
    /// The new configuration is invalid.
    Invalid(ConfigError),
    /// The store could not apply the (valid) new configuration.
    NotApplied(StoreError),
}

impl Reloadable for ConfigDir {
    /// How many collections the new configuration has.
    type Change = usize;
    type Error = Refused;

    const COUNTER: Counter = Counter::Config;

    fn dir(&self) -> &Path {
        &self.dir
    }

    async fn reload(&self) -> Result<Option<usize>, Refused> {
        let next = config::load_dir(&self.dir).map_err(Refused::Invalid)?;
        if next.same_files(&self.serving.load()) {
            return Ok(None);
        }
        self.store
            .apply_config(&StoreSetup::new(&next.collections, &next.config.store))
            .await
            .map_err(Refused::NotApplied)?;
        self.warn_restart_needed(&next);
        for warning in next.warnings() {
            tracing::warn!(target: LOG, at = %warning.at, "{}", warning.message);
        }
        let collections = next.collections.len();
        self.serving.store(Arc::new(next));
        Ok(Some(collections))
    }

    fn applied(&self, collections: usize) {
        tracing::info!(target: LOG, collections, "configuration reloaded");
    }

    fn rejected(&self, refused: Refused) {
        match refused {
            Refused::Invalid(e) => tracing::error!(
                target: LOG,
                error = %e,
                "configuration change rejected; the previous configuration keeps serving"
            ),
            Refused::NotApplied(e) => tracing::error!(
                target: LOG,
                error = %e,
                "configuration valid but the store could not apply it; keeping the previous one"
            ),
        }
    }
}
