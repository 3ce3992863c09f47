//! Shared state of the running service.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::access::Policy;
use crate::auth::{Auth, Credentials};
use crate::config::ServiceConfig;
use crate::metrics::Metrics;
use crate::page_cache::positions::ItemPositions;
use crate::page_cache::PageCache;
use crate::store::SharedStore;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The configuration serving now; swapped whole on reload.
    pub config: Arc<ArcSwap<ServiceConfig>>,
    /// The store.
    pub store: SharedStore,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Users, verified credentials and lockouts.
    pub auth: Arc<Auth>,
    /// Bodies of full objects pages, for every caller.
    pub pages: Arc<PageCache>,
    /// What TAXII 2.0 listings learned of item totals and offsets.
    pub item_positions: Arc<ItemPositions>,
}

impl AppState {
    /// A state serving `config` from `store` to these users (none: open to everyone).
    pub fn new(config: ServiceConfig, store: SharedStore, credentials: Credentials) -> AppState {
        let metrics = Arc::new(Metrics::new());
        let pages = Arc::new(PageCache::new(
            config.config.limits.page_cache_bytes,
            metrics.page_cache().clone(),
        ));
        AppState {
            pages,
            item_positions: Arc::new(ItemPositions::default()),
            config: Arc::new(ArcSwap::from_pointee(config)),
            store,
            auth: Arc::new(Auth::new(credentials, metrics.clone())),
            metrics,
        }
    }

    /// How access is decided right now: open while no users are configured.
    pub fn policy(&self) -> Policy {
        self.auth.policy()
    }
}
