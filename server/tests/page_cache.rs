//! The page cache: a page served from it is byte for byte the page the store gives at
//! that moment — after appends, new versions (flags), deletions and query membership
//! changes, made by this server or by another writer of the same store (a second
//! handle of the SQLite file, as `import` beside the server is; a second replica on
//! PostgreSQL), also while those writes run concurrently with the reads that fill the
//! cache. A poller resuming from `X-TAXII-Date-Added-Last` misses nothing. Coded
//! forms of a cached page decode to its bytes.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use common::backend::Place;
use common::{config_text, indicator, objects_url, TestApp, INBOX, INDICATORS, TAXII21};
use taxiway_server::auth::Credentials;
use taxiway_server::config::{self, ServiceConfig};
use taxiway_server::state::AppState;
use taxiway_server::store::sqlite::SqliteStore;
use taxiway_server::store::{Store, VersionMatch};
use taxiway_server::taxii;
use taxiway_server::taxii::envelope::parse_envelope;

/// Indicators with confidence ≥ 50 (a new version below leaves the view).
const QUERY: &str = "type:indicator and confidence:>=50";

fn config(cache: bool) -> ServiceConfig {
    let mut text = config_text(QUERY);
    if !cache {
        text = text.replace(
            "max_content_length = 65536",
            "max_content_length = 65536\npage_cache_bytes = 0",
        );
    }
    config::parse(&text).expect("config")
}

/// What one GET answered: status, the date headers, and the body.
#[derive(Debug, PartialEq)]
struct Answer {
    status: StatusCode,
    first: Option<String>,
    last: Option<String>,
    body: Vec<u8>,
}

async fn fetch(router: &Router, uri: &str, coding: Option<&str>) -> (Answer, Option<String>) {
    let mut request = Request::get(uri).header(header::ACCEPT, TAXII21);
    if let Some(coding) = coding {
        request = request.header(header::ACCEPT_ENCODING, coding);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (first, last) = (
        header("x-taxii-date-added-first"),
        header("x-taxii-date-added-last"),
    );
    let encoding = header("content-encoding");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (
        Answer {
            status,
            first,
            last,
            body,
        },
        encoding,
    )
}

async fn answer(router: &Router, uri: &str) -> Answer {
    fetch(router, uri, None).await.0
}

/// The URIs of every page of `collection` (limit 5), walked through `next` and through
/// `added_after` from each page's `X-TAXII-Date-Added-Last`.
async fn page_uris(router: &Router, collection: &str) -> Vec<String> {
    let base = format!("{}?limit=5", objects_url(collection));
    let mut uris = vec![base.clone()];
    let mut uri = base.clone();
    loop {
        let a = answer(router, &uri).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}");
        let page: Value = serde_json::from_slice(&a.body).expect("JSON");
        if let Some(last) = &a.last {
            uris.push(format!("{base}&added_after={last}"));
        }
        match page["next"].as_str() {
            Some(next) if page["more"] == json!(true) => {
                uri = format!("{base}&next={next}");
                uris.push(uri.clone());
            }
            _ => return uris,
        }
    }
}

/// Every id a poller gets walking `collection` with `added_after` from the start.
async fn polled_ids(router: &Router, collection: &str) -> BTreeSet<(String, String)> {
    let base = format!("{}?limit=5&match[version]=all", objects_url(collection));
    let mut seen = BTreeSet::new();
    let mut uri = base.clone();
    loop {
        let a = answer(router, &uri).await;
        let page: Value = serde_json::from_slice(&a.body).expect("JSON");
        for o in page["objects"].as_array().into_iter().flatten() {
            let key = (
                o["id"].as_str().unwrap_or_default().to_string(),
                o["modified"].as_str().unwrap_or_default().to_string(),
            );
            assert!(seen.insert(key.clone()), "{key:?} served twice");
        }
        match (&a.last, page["more"] == json!(true)) {
            (Some(last), true) => uri = format!("{base}&added_after={last}"),
            _ => return seen,
        }
    }
}

/// Every page answered by the cached server equals the uncached server's answer.
async fn same_pages(cached: &Router, uncached: &Router, uris: &[String], when: &str) {
    for uri in uris {
        let (hit, fresh) = (answer(cached, uri).await, answer(uncached, uri).await);
        assert_eq!(
            hit,
            fresh,
            "{when}: {uri}\ncached: {}\nstore:  {}",
            String::from_utf8_lossy(&hit.body),
            String::from_utf8_lossy(&fresh.body)
        );
    }
}

/// A second writer of the same store: another handle of the SQLite file (another
/// process, as `import` is), or another replica on PostgreSQL.
async fn other_writer(app: &TestApp, config: &ServiceConfig) -> Arc<dyn Store> {
    let store: Arc<dyn Store> = match &app.db {
        None => Arc::new(SqliteStore::open(app.dir.path(), 2).expect("open again")),
        Some(db) => db.open().await,
    };
    store
        .apply_config(&common::store_setup(config))
        .await
        .expect("apply");
    store
}

async fn post(store: &dyn Store, objects: Vec<Value>) {
    let body = json!({ "objects": objects }).to_string();
    let request = parse_envelope(body.as_bytes(), None).expect("envelope");
    let status = store
        .add_objects("feeds", INBOX, request)
        .await
        .expect("add");
    assert_eq!(status.failure_count, 0, "{status:?}");
}

fn ip(n: u32) -> String {
    format!("10.0.{}.{}", n / 250, n % 250)
}

async fn cached_pages_are_the_pages_of_the_store(place: Place) {
    let app = TestApp::on(place, config(true)).await;
    let cached = app.router.clone();
    let uncached = taxii::router(AppState::new(
        config(false),
        app.store.clone(),
        Credentials::none(),
    ));
    let other = other_writer(&app, &config(true)).await;
    for batch in 0..3 {
        let objects = (0..10)
            .map(|i| indicator(batch * 10 + i, 1, &ip(batch * 10 + i), 60))
            .collect();
        post(&*app.store, objects).await;
    }
    let mut uris = page_uris(&cached, INBOX).await;
    uris.extend(page_uris(&cached, INDICATORS).await);
    assert!(uris.len() > 20, "{uris:?}");
    assert!(!app.state.pages.is_empty(), "full pages are cached");
    same_pages(&cached, &uncached, &uris, "as posted").await;

    // Each change, by this server's store or by the other writer, then every page
    // again (the cached server answering from what it holds, where still valid).
    post(&*other, vec![indicator(2, 2, &ip(2), 60)]).await;
    same_pages(
        &cached,
        &uncached,
        &uris,
        "a new version by the other writer",
    )
    .await;
    post(&*app.store, vec![indicator(7, 2, &ip(7), 10)]).await;
    same_pages(&cached, &uncached, &uris, "a version leaving the query").await;
    let removed = other
        .delete_object(
            INBOX,
            &format!("indicator--{:08x}-0000-4000-8000-000000000000", 12),
            &VersionMatch::all(),
            &[],
        )
        .await
        .expect("delete");
    assert_eq!(removed, 1);
    same_pages(&cached, &uncached, &uris, "a deletion by the other writer").await;
    post(
        &*other,
        (30..36).map(|n| indicator(n, 1, &ip(n), 70)).collect(),
    )
    .await;
    same_pages(&cached, &uncached, &uris, "appends by the other writer").await;
    // An older version arriving late: the object's first version changes.
    post(&*other, vec![indicator(21, 3, &ip(21), 60)]).await;
    post(&*app.store, vec![indicator(21, 2, &ip(21), 60)]).await;
    same_pages(&cached, &uncached, &uris, "an older version arriving late").await;

    // Writers and readers at once: whatever the cache took in meanwhile, once the
    // writes stop every page is the store's, and a poller misses nothing.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (other, stop) = (other.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 100;
            while !stop.load(Ordering::Relaxed) {
                post(&*other, vec![indicator(n, 1, &ip(n), 80)]).await;
                post(
                    &*other,
                    vec![indicator(n % 30, 3 + n % 20, &ip(n), 40 + n % 30)],
                )
                .await;
                let _ = other
                    .delete_object(
                        INBOX,
                        &format!("indicator--{:08x}-0000-4000-8000-000000000000", n - 1),
                        &VersionMatch::all(),
                        &[],
                    )
                    .await;
                n += 1;
            }
        })
    };
    for _ in 0..15 {
        for uri in &uris {
            let _ = answer(&cached, uri).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer");
    same_pages(&cached, &uncached, &uris, "after concurrent writes").await;
    for collection in [INBOX, INDICATORS] {
        assert_eq!(
            polled_ids(&cached, collection).await,
            polled_ids(&uncached, collection).await,
            "a poller of {collection} sees what the store holds"
        );
    }
}

async fn coded_cached_pages_decode_to_the_page(place: Place) {
    let app = TestApp::on(place, config(true)).await;
    post(
        &*app.store,
        (0..40).map(|n| indicator(n, 1, &ip(n), 60)).collect(),
    )
    .await;
    let uri = format!("{}?limit=20", objects_url(INBOX));
    for round in ["miss", "hit"] {
        let (plain, coding) = fetch(&app.router, &uri, None).await;
        assert_eq!(coding, None);
        assert!(plain.body.len() > 1024, "large enough to be coded");
        let (gz, coding) = fetch(&app.router, &uri, Some("gzip")).await;
        assert_eq!(coding.as_deref(), Some("gzip"), "{round}");
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(gz.body.as_slice())
            .read_to_end(&mut decoded)
            .expect("one gzip member");
        assert_eq!(decoded, plain.body, "{round}: gzip");
        let (zs, coding) = fetch(&app.router, &uri, Some("zstd")).await;
        assert_eq!(coding.as_deref(), Some("zstd"), "{round}");
        assert_eq!(
            zstd::decode_all(zs.body.as_slice()).expect("one zstd frame"),
            plain.body,
            "{round}: zstd"
        );
        assert_eq!(
            (gz.first, gz.last),
            (plain.first.clone(), plain.last.clone())
        );
    }
    assert_eq!(app.state.pages.len(), 1, "one full page held");
}

on_every_backend!(
    cached_pages_are_the_pages_of_the_store,
    coded_cached_pages_decode_to_the_page
);
