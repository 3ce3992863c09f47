//! Shared state of the running service.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::http::{header, HeaderValue, StatusCode};

use crate::access::Policy;
use crate::config::ServiceConfig;
use crate::metrics::Metrics;
use crate::store::SharedStore;
use crate::taxii::error::TaxiiError;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The configuration serving now; swapped whole on reload.
    pub config: Arc<ArcSwap<ServiceConfig>>,
    /// The store.
    pub store: SharedStore,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// How access is decided.
    pub policy: Policy,
}

impl AppState {
    /// A state serving `config` from `store`.
    pub fn new(config: ServiceConfig, store: SharedStore, policy: Policy) -> AppState {
        AppState {
            config: Arc::new(ArcSwap::from_pointee(config)),
            store,
            metrics: Arc::new(Metrics::new()),
            policy,
        }
    }

    /// How access is decided right now.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// 401 asking for credentials.
    pub fn unauthorized(&self) -> TaxiiError {
        TaxiiError::new(StatusCode::UNAUTHORIZED, "Unauthorized")
            .describe("authenticate with HTTP Basic or an API key")
            .with_header(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"taxiway\", charset=\"UTF-8\""),
            )
    }
}
