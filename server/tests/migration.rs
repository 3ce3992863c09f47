//! A store written by the release before collections were isolated (schema 1) upgrades
//! in place: SQLite from `data/store-v1.db`, PostgreSQL from `data/store-v1.sql` (a
//! `pg_dump --inserts` of the same store migrated by that release). Both were made by
//! that release's binary: `cert-inbox` got X and Y (modified 2026-01-01),
//! `partner-inbox` got the same X and a newer Y (2026-02-01), and the query collection
//! `everything` (`type:indicator`, drawing from every writable collection then) held X
//! and the newer Y.

mod common;

use std::sync::Arc;

use common::backend::TestDb;
use common::wait_built;
use serde_json::{json, Value};
use taxiway_server::config::{self, ServiceConfig};
use taxiway_server::store::sqlite::SqliteStore;
use taxiway_server::store::{validate_object, AddObjects, Listing, NewObject, Store};

const CERT: &str = "0b7f0a6e-1111-4111-8111-111111111111";
const PARTNER: &str = "0b7f0a6e-2222-4222-8222-222222222222";
const EVERYTHING: &str = "0b7f0a6e-4444-4444-8444-444444444444";
const CERT_ONLY: &str = "0b7f0a6e-5555-4555-8555-555555555555";
const STATUSES: [&str; 2] = [
    "092d2b91-8829-4ea5-83ea-1c7817a1fae7",
    "62310165-eeb1-4652-899d-8da1ad7a7f21",
];

fn upgraded_config() -> ServiceConfig {
    config::parse(&format!(
        r#"
[service]
title = "v1 store"
default_api_root = "feeds"
[[api_roots]]
path = "feeds"
title = "Feeds"

[[collections]]
id = "{CERT}"
api_root = "feeds"
title = "cert-inbox"
writable = true

[[collections]]
id = "{PARTNER}"
api_root = "feeds"
title = "partner-inbox"
writable = true

[[collections]]
id = "{EVERYTHING}"
api_root = "feeds"
title = "everything"
query = "type:indicator"
sources = ["cert-inbox", "partner-inbox"]

[[collections]]
id = "{CERT_ONLY}"
api_root = "feeds"
title = "cert only"
query = "type:indicator"
sources = ["cert-inbox"]
"#
    ))
    .expect("valid")
}

fn all() -> Listing {
    Listing {
        with_raw: true,
        ..common::every_version(100)
    }
}

/// `(name, date_added)` of a collection's objects, in `date_added` order.
async fn named(store: &dyn Store, collection: &str) -> Vec<(String, i64)> {
    store
        .list(collection, &all())
        .await
        .expect("list")
        .entries
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_str(&e.raw).expect("json");
            (v["name"].as_str().unwrap_or("").to_string(), e.date_added)
        })
        .collect()
}

fn names(v: &[(String, i64)]) -> Vec<&str> {
    v.iter().map(|(n, _)| n.as_str()).collect()
}

async fn the_upgraded_store_is_isolated(store: Arc<dyn Store>) {
    // Before the new configuration: the old query view still serves as it was.
    store
        .apply_config(&common::store_setup(&upgraded_config()))
        .await
        .expect("apply");
    wait_built(&*store).await;

    assert_eq!(names(&named(&*store, CERT).await), vec!["X", "Y cert"]);
    assert_eq!(
        names(&named(&*store, PARTNER).await),
        vec!["X", "Y partner"]
    );
    // `is_latest` was recomputed per collection: cert's Y is its latest there.
    assert_eq!(names(&named(&*store, CERT_ONLY).await), vec!["X", "Y cert"]);
    // The old view (no recorded sources) was rebuilt over its named sources: the
    // members it had keep their date_added, cert's Y is new and comes after them.
    let everything = named(&*store, EVERYTHING).await;
    let mut sorted = names(&everything);
    sorted.sort();
    assert_eq!(sorted, vec!["X", "Y cert", "Y partner"], "{everything:?}");
    let stamp = |n: &str| {
        everything
            .iter()
            .find(|(name, _)| name == n)
            .map(|(_, d)| *d)
            .expect("member")
    };
    assert!(stamp("Y cert") > stamp("X") && stamp("Y cert") > stamp("Y partner"));

    // Status resources from before belong to nobody in particular: readable on an
    // open server (caller key ""), by no signed-in user.
    for id in STATUSES {
        assert!(store
            .status("feeds", id, "")
            .await
            .expect("status")
            .is_some());
        assert!(store
            .status("feeds", id, "cert")
            .await
            .expect("status")
            .is_none());
    }

    // New writes are isolated: partner's newer X does not reach cert's collections.
    let x2 = json!({
        "type": "indicator", "spec_version": "2.1",
        "id": "indicator--0b7f0000-0000-4000-8000-00000000000a",
        "created": "2026-01-01T00:00:00.000Z", "modified": "2026-03-01T00:00:00.000Z",
        "name": "X partner", "revoked": true,
        "pattern": "[ipv4-addr:value = '203.0.113.1']", "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z"
    });
    store
        .add_objects(
            "feeds",
            PARTNER,
            AddObjects {
                objects: vec![NewObject {
                    raw: x2.to_string(),
                    object: validate_object(x2, None).expect("valid"),
                }],
                failures: vec![],
                owner: "partner".into(),
                ..Default::default()
            },
        )
        .await
        .expect("add");
    assert_eq!(names(&named(&*store, CERT).await), vec!["X", "Y cert"]);
    assert_eq!(names(&named(&*store, CERT_ONLY).await), vec!["X", "Y cert"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_1_sqlite_store_upgrades_in_place() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/store-v1.db"),
        dir.path().join("taxiway.db"),
    )
    .expect("copy the fixture");
    let store = Arc::new(SqliteStore::open(dir.path(), 2).expect("open and migrate"));
    the_upgraded_store_is_isolated(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn a_schema_1_postgres_store_upgrades_in_place() {
    let db = TestDb::create().await;
    db.execute(include_str!("data/store-v1.sql")).await;
    let store = db.open().await;
    the_upgraded_store_is_isolated(store).await;
}
