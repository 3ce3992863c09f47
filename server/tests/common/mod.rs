//! Shared fixtures of the HTTP tests: a temp store, a config, requests.
#![allow(dead_code)]

pub mod backend;
pub mod wait;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use taxiway_server::auth::{Auth, Credentials};
use taxiway_server::clock::SharedClock;
use taxiway_server::config::{self, ServiceConfig};
use taxiway_server::state::AppState;
use taxiway_server::store::sqlite::SqliteStore;
use taxiway_server::store::{Listing, Store, StoreSetup, VersionMatch};
use taxiway_server::taxii;

/// The store's part of a configuration.
pub fn store_setup(config: &ServiceConfig) -> StoreSetup {
    StoreSetup::new(&config.collections, &config.config.store)
}

pub const INBOX: &str = "2f1c9a4e-8b6d-4e3f-9a7b-1c2d3e4f5a6b";
pub const INDICATORS: &str = "3a7e1c52-5f0b-4c47-8d0e-6d2b9f4a1e7c";
pub const MALWARE: &str = "4b8f2d63-6a1c-4d58-9e1f-7e3c0a5b2f8d";
pub const TAXII21: &str = "application/taxii+json;version=2.1";

pub fn config_text(indicator_query: &str) -> String {
    format!(
        r#"
[service]
title = "Taxiway test"
description = "HTTP tests"
default_api_root = "feeds"

[limits]
max_page_size = 50
default_page_size = 20
max_content_length = 65536

[[api_roots]]
path = "feeds"
title = "Feeds"

[[api_roots]]
path = "empty"
title = "Nothing here"

[[collections]]
id = "{INBOX}"
api_root = "feeds"
title = "inbox"
alias = "inbox-alias"
writable = true

[[collections]]
id = "{INDICATORS}"
api_root = "feeds"
title = "Indicators"
query = '{indicator_query}'

[[collections]]
id = "{MALWARE}"
api_root = "feeds"
title = "Malware"
query = "type:malware"
"#
    )
}

pub fn config(indicator_query: &str) -> ServiceConfig {
    config::parse(&config_text(indicator_query)).expect("test config is valid")
}

/// A running app over a fresh store.
pub struct TestApp {
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database of a PostgreSQL-backed app (dropped with it).
    pub db: Option<backend::TestDb>,
    pub state: AppState,
    pub store: Arc<dyn Store>,
    pub router: Router,
}

impl TestApp {
    pub async fn new() -> TestApp {
        Self::with_config(config("type:indicator")).await
    }

    pub async fn with_config(config: ServiceConfig) -> TestApp {
        Self::with_users(config, Credentials::none()).await
    }

    /// An app whose users are `credentials` (none: open to everyone).
    pub async fn with_users(config: ServiceConfig, credentials: Credentials) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path(), 4).expect("store"));
        Self::assemble(dir, None, store, config, credentials).await
    }

    /// [`TestApp::with_users`] with the authenticator's lockouts measured by `clock`.
    pub async fn with_users_and_clock(
        config: ServiceConfig,
        credentials: Credentials,
        clock: SharedClock,
    ) -> TestApp {
        let mut app = Self::with_users(config, Credentials::none()).await;
        let metrics = app.state.metrics.clone();
        app.state.auth = Arc::new(Auth::with_clock(credentials, metrics, clock));
        app.router = taxii::router(app.state.clone());
        app
    }

    /// An app over the store of `place` (either backend), open to everyone.
    pub async fn on(place: backend::Place, config: ServiceConfig) -> TestApp {
        let store = place.open().await;
        Self::assemble(place.dir, place.db, store, config, Credentials::none()).await
    }

    async fn assemble(
        dir: tempfile::TempDir,
        db: Option<backend::TestDb>,
        store: Arc<dyn Store>,
        config: ServiceConfig,
        credentials: Credentials,
    ) -> TestApp {
        store
            .apply_config(&store_setup(&config))
            .await
            .expect("apply");
        wait_built(&*store).await;
        let state = AppState::new(config, store.clone(), credentials);
        let router = taxii::router(state.clone());
        TestApp {
            dir,
            db,
            state,
            store,
            router,
        }
    }

    pub async fn send(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response: Response<Body> = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        (status, headers, body)
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
        let (s, h, b) = self.send(get(uri)).await;
        let v = if b.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&b).expect("JSON body")
        };
        (s, h, v)
    }

    pub async fn post(&self, collection: &str, objects: Vec<Value>) -> (StatusCode, Value) {
        let body = json!({ "objects": objects }).to_string();
        let (s, _, b) = self
            .send(
                Request::post(format!("/feeds/collections/{collection}/objects/"))
                    .header(header::CONTENT_TYPE, TAXII21)
                    .header(header::ACCEPT, TAXII21)
                    .body(Body::from(body))
                    .expect("request"),
            )
            .await;
        (s, serde_json::from_slice(&b).expect("JSON body"))
    }
}

pub async fn wait_built(store: &dyn Store) {
    wait::eventually("the query collections to be built", async || {
        store.ready().await
    })
    .await;
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::ACCEPT, TAXII21)
        .body(Body::empty())
        .expect("request")
}

/// A deterministic indicator: `n` picks the id, `version` the modified day.
pub fn indicator(n: u32, version: u32, ip: &str, confidence: u32) -> Value {
    json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": format!("indicator--{n:08x}-0000-4000-8000-000000000000"),
        "created": "2024-01-01T00:00:00.000Z",
        "modified": format!("2024-01-{:02}T00:00:00.000Z", version),
        "name": format!("bad ip {ip}"),
        "indicator_types": ["malicious-activity"],
        "pattern": format!("[ipv4-addr:value = '{ip}']"),
        "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z",
        "confidence": confidence
    })
}

pub fn malware(n: u32) -> Value {
    json!({
        "type": "malware",
        "spec_version": "2.1",
        "id": format!("malware--{n:08x}-0000-4000-8000-000000000000"),
        "created": "2024-01-01T00:00:00.000Z",
        "modified": "2024-01-01T00:00:00.000Z",
        "name": format!("family {n}"),
        "is_family": true
    })
}

pub fn objects_url(collection: &str) -> String {
    format!("/feeds/collections/{collection}/objects/")
}

pub fn ids(envelope: &Value) -> Vec<String> {
    envelope["objects"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| o["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Every version of every object, `limit` per page, without their JSON: for counting
/// what a collection holds (`Store::count`) or listing it.
pub fn every_version(limit: usize) -> Listing {
    Listing {
        ids: vec![],
        types: vec![],
        versions: VersionMatch::all(),
        spec_versions: vec![],
        after: None,
        limit,
        with_raw: false,
        max_bytes: None,
    }
}
