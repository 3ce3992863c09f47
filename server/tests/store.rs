//! The embedded store: persistence, query rebuilds, relative time, concurrency.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::Value;
use taxiway_server::config::ServiceConfig;
use taxiway_server::store::sqlite::SqliteStore;
use taxiway_server::store::validate_object;
use taxiway_server::store::{AddObjects, Listing, NewObject, Store, VersionMatch};

fn new_objects(values: Vec<Value>) -> AddObjects {
    AddObjects {
        objects: values
            .into_iter()
            .map(|v| NewObject {
                raw: v.to_string(),
                object: validate_object(v, None).expect("valid"),
            })
            .collect(),
        failures: Vec::new(),
    }
}

fn everything(limit: usize) -> Listing {
    Listing {
        ids: vec![],
        types: vec![],
        versions: VersionMatch::all(),
        spec_versions: vec![],
        after: None,
        limit,
        with_raw: true,
    }
}

async fn open(dir: &std::path::Path, config: &ServiceConfig) -> Arc<SqliteStore> {
    let store = Arc::new(SqliteStore::open(dir, 2).expect("open"));
    store.apply_config(config).await.expect("apply");
    wait_built(&*store).await;
    store
}

#[tokio::test]
async fn objects_statuses_and_stamps_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = config("type:indicator");
    let status = {
        let store = open(dir.path(), &config).await;
        store
            .add_objects(
                "feeds",
                INBOX,
                new_objects(vec![indicator(1, 1, "198.51.100.1", 80), malware(1)]),
            )
            .await
            .expect("add")
    };
    let store = open(dir.path(), &config).await;
    let before = store.list(INBOX, &everything(100)).await.expect("list");
    assert_eq!(before.entries.len(), 2);
    assert_eq!(
        store.status("feeds", &status.id).await.expect("status"),
        Some(status)
    );
    store
        .add_objects("feeds", INBOX, new_objects(vec![malware(2)]))
        .await
        .expect("add");
    let after = store.list(INBOX, &everything(100)).await.expect("list");
    assert!(
        after.entries[2].date_added > before.entries[1].date_added,
        "stamps continue after a restart"
    );
    let indicators = store
        .list(INDICATORS, &everything(100))
        .await
        .expect("list");
    assert_eq!(indicators.entries.len(), 1);
}

#[tokio::test]
async fn a_query_change_rebuilds_keeping_old_stamps_and_restamping_new_members() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path(), &config("type:indicator and confidence:>=50")).await;
    store
        .add_objects(
            "feeds",
            INBOX,
            new_objects(vec![
                indicator(1, 1, "198.51.100.1", 80),
                indicator(2, 1, "198.51.100.2", 20),
            ]),
        )
        .await
        .expect("add");
    let old = store
        .list(INDICATORS, &everything(100))
        .await
        .expect("list");
    assert_eq!(old.entries.len(), 1);
    let poll_position = old.entries[0].date_added;

    store
        .apply_config(&config("type:indicator"))
        .await
        .expect("apply");
    wait_built(&*store).await;
    let new = store
        .list(INDICATORS, &everything(100))
        .await
        .expect("list");
    assert_eq!(new.entries.len(), 2);
    let kept = new
        .entries
        .iter()
        .find(|e| e.id.starts_with("indicator--00000001"))
        .expect("kept");
    assert_eq!(
        kept.date_added, poll_position,
        "members of both views keep their date_added"
    );
    let fresh = new
        .entries
        .iter()
        .find(|e| e.id.starts_with("indicator--00000002"))
        .expect("new");
    assert!(
        fresh.date_added > poll_position,
        "newly matching objects appear after the poller's position"
    );

    // A poller resuming from its position sees exactly the new member.
    let mut resume = everything(100);
    resume.after = Some(poll_position);
    let page = store.list(INDICATORS, &resume).await.expect("list");
    assert_eq!(page.entries.len(), 1);
    assert!(page.entries[0].id.starts_with("indicator--00000002"));
}

#[tokio::test]
async fn relative_time_queries_drop_objects_on_maintenance() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path(), &config("type:indicator and added:>now-2s")).await;
    store
        .add_objects(
            "feeds",
            INBOX,
            new_objects(vec![indicator(1, 1, "198.51.100.1", 80)]),
        )
        .await
        .expect("add");
    assert_eq!(
        store
            .list(INDICATORS, &everything(10))
            .await
            .expect("list")
            .entries
            .len(),
        1
    );
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    store.maintain().await.expect("maintain");
    assert_eq!(
        store
            .list(INDICATORS, &everything(10))
            .await
            .expect("list")
            .entries
            .len(),
        0
    );
    assert_eq!(
        store
            .list(INBOX, &everything(10))
            .await
            .expect("list")
            .entries
            .len(),
        1,
        "the stored object stays"
    );
}

#[tokio::test]
async fn concurrent_writers_get_strictly_increasing_date_added() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path(), &config("type:indicator")).await;
    let mut tasks = Vec::new();
    for w in 0..8u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..10u32 {
                let objs = (0..5u32)
                    .map(|i| indicator(w * 1000 + b * 10 + i, 1, "198.51.100.7", 60))
                    .collect();
                store
                    .add_objects("feeds", INBOX, new_objects(objs))
                    .await
                    .expect("add");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let page = store.list(INBOX, &everything(1000)).await.expect("list");
    assert_eq!(page.entries.len(), 400);
    assert!(page
        .entries
        .windows(2)
        .all(|w| w[0].date_added < w[1].date_added));
    let q = store
        .list(INDICATORS, &everything(1000))
        .await
        .expect("list");
    assert_eq!(q.entries.len(), 400);
}

#[tokio::test]
async fn removed_query_collections_stop_being_maintained_and_stored_data_is_kept() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path(), &config("type:indicator")).await;
    store
        .add_objects(
            "feeds",
            INBOX,
            new_objects(vec![indicator(1, 1, "198.51.100.1", 80)]),
        )
        .await
        .expect("add");
    let mut smaller = config("type:indicator");
    smaller.collections.retain(|c| c.id() != INDICATORS);
    smaller.config.collections.retain(|c| c.id != INDICATORS);
    store.apply_config(&smaller).await.expect("apply");
    store.maintain().await.expect("maintain");
    assert_eq!(
        store
            .list(INDICATORS, &everything(10))
            .await
            .expect("list")
            .entries
            .len(),
        0
    );
    assert_eq!(
        store
            .list(INBOX, &everything(10))
            .await
            .expect("list")
            .entries
            .len(),
        1
    );
    let stats = store.stats().await.expect("stats");
    assert_eq!(stats.object_versions, 1);
}
