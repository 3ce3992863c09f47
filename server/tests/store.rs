//! The store, on every backend (SQLite always; PostgreSQL when
//! `--include-ignored` and `TAXIWAY_TEST_POSTGRES_URL`): persistence, query rebuilds, relative time,
//! concurrency. PostgreSQL-only behaviour (replicas, migrations) is in `pg_*` tests.

mod common;

use std::sync::Arc;

use common::backend::Place;
use common::wait::eventually;
use common::*;
use serde_json::Value;
use taxiway_server::config::ServiceConfig;
use taxiway_server::store::validate_object;
use taxiway_server::store::{AddObjects, Listing, NewObject, Store, VersionMatch};

on_every_backend!(
    objects_statuses_and_stamps_survive_a_restart,
    a_query_change_rebuilds_keeping_old_stamps_and_restamping_new_members,
    relative_time_queries_drop_objects_on_maintenance,
    concurrent_writers_get_strictly_increasing_date_added,
    removed_query_collections_stop_being_maintained_and_stored_data_is_kept,
    deletes_and_versions_keep_query_collections_in_step,
    a_stored_collection_turned_query_is_read_through_its_query,
    a_request_mixing_new_stored_and_repeated_objects_keeps_its_order,
);

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
        owner: String::new(),
        ..Default::default()
    }
}

fn everything(limit: usize) -> Listing {
    Listing {
        with_raw: true,
        ..common::every_version(limit)
    }
}

async fn open(place: &Place, config: &ServiceConfig) -> Arc<dyn Store> {
    let store = place.open().await;
    store
        .apply_config(&common::store_setup(config))
        .await
        .expect("apply");
    wait_built(&*store).await;
    store
}

async fn objects_statuses_and_stamps_survive_a_restart(place: Place) {
    let config = config("type:indicator");
    let status = {
        let store = open(&place, &config).await;
        store
            .add_objects(
                "feeds",
                INBOX,
                new_objects(vec![indicator(1, 1, "198.51.100.1", 80), malware(1)]),
            )
            .await
            .expect("add")
    };
    let store = open(&place, &config).await;
    let before = store.list(INBOX, &everything(100)).await.expect("list");
    assert_eq!(before.entries.len(), 2);
    assert_eq!(
        store.status("feeds", &status.id, "").await.expect("status"),
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

async fn a_query_change_rebuilds_keeping_old_stamps_and_restamping_new_members(place: Place) {
    let store = open(&place, &config("type:indicator and confidence:>=50")).await;
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
        .apply_config(&common::store_setup(&config("type:indicator")))
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

async fn relative_time_queries_drop_objects_on_maintenance(place: Place) {
    let store = open(&place, &config("type:indicator and added:>now-2s")).await;
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

async fn concurrent_writers_get_strictly_increasing_date_added(place: Place) {
    let store = open(&place, &config("type:indicator")).await;
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

async fn removed_query_collections_stop_being_maintained_and_stored_data_is_kept(place: Place) {
    let store = open(&place, &config("type:indicator")).await;
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
    store
        .apply_config(&common::store_setup(&smaller))
        .await
        .expect("apply");
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

async fn deletes_and_versions_keep_query_collections_in_step(place: Place) {
    let store = open(&place, &config("type:indicator and confidence:>=50")).await;
    let raw = indicator(7, 1, "198.51.100.7", 80).to_string();
    store
        .add_objects(
            "feeds",
            INBOX,
            new_objects(vec![
                indicator(7, 1, "198.51.100.7", 80),
                indicator(7, 2, "198.51.100.7", 90),
                indicator(8, 1, "198.51.100.8", 80),
            ]),
        )
        .await
        .expect("add");
    // A newer version that stops matching takes the object out of the query view.
    store
        .add_objects(
            "feeds",
            INBOX,
            new_objects(vec![indicator(8, 2, "198.51.100.8", 10)]),
        )
        .await
        .expect("add");
    let all = store.list(INBOX, &everything(100)).await.expect("list");
    assert_eq!(all.entries.len(), 4);
    assert_eq!(
        all.entries[0].raw, raw,
        "raw bytes are served exactly as stored"
    );
    let latest = Listing {
        versions: VersionMatch::last(),
        ..everything(100)
    };
    assert_eq!(store.count(INBOX, &latest).await.expect("count"), 2);
    let first = Listing {
        versions: VersionMatch {
            first: true,
            ..Default::default()
        },
        ids: vec![indicator(7, 1, "x", 0)["id"].as_str().unwrap_or("").into()],
        ..everything(100)
    };
    let page = store.list(INBOX, &first).await.expect("list");
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].raw, raw);
    let q = store
        .list(INDICATORS, &everything(100))
        .await
        .expect("list");
    assert_eq!(q.entries.len(), 1, "only indicator 7 (latest, matching)");
    assert!(q.entries[0].id.starts_with("indicator--00000007"));

    // Deleting the latest version of 7 promotes version 1 (confidence 80: matches).
    let id7 = q.entries[0].id.clone();
    let removed = store
        .delete_object(
            INBOX,
            &id7,
            &VersionMatch {
                last: true,
                ..Default::default()
            },
            &[],
        )
        .await
        .expect("delete");
    assert_eq!(removed, 1);
    let q = store
        .list(INDICATORS, &everything(100))
        .await
        .expect("list");
    assert_eq!(q.entries.len(), 1);
    assert_eq!(q.entries[0].raw, raw, "the older version replaced it");
    assert_eq!(
        store
            .count(INDICATORS, &everything(100))
            .await
            .expect("count"),
        1,
        "no entry is left behind for the deleted version"
    );
    // Paging: limit 1 walks the collection with `more`.
    let mut after = None;
    let mut seen = 0;
    loop {
        let page = store
            .list(
                INBOX,
                &Listing {
                    after,
                    ..everything(1)
                },
            )
            .await
            .expect("page");
        seen += page.entries.len();
        after = page.entries.last().map(|e| e.date_added);
        if !page.more {
            break;
        }
    }
    assert_eq!(seen, 3);
    assert!(store.reachable().await);
    let stats = store.stats().await.expect("stats");
    assert_eq!(stats.object_versions, 3);
}

async fn a_stored_collection_turned_query_is_read_through_its_query(place: Place) {
    let stored_text = config_text("type:indicator").replace(
        "title = \"Malware\"\nquery = \"type:malware\"",
        "title = \"Malware\"\nwritable = true",
    );
    let stored = taxiway_server::config::parse(&stored_text).expect("valid");
    let store = open(&place, &stored).await;
    store
        .add_objects(
            "feeds",
            MALWARE,
            new_objects(vec![malware(1), indicator(1, 1, "198.51.100.1", 80)]),
        )
        .await
        .expect("add");
    assert_eq!(
        store
            .list(MALWARE, &everything(10))
            .await
            .expect("list")
            .entries
            .len(),
        2
    );
    store
        .apply_config(&common::store_setup(&config("type:indicator")))
        .await
        .expect("apply");
    wait_built(&*store).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let page = store.list(MALWARE, &everything(10)).await.expect("list");
    assert_eq!(page.entries.len(), 1, "{page:?}");
    assert!(page.entries[0].id.starts_with("malware--"));
}

// ---------------------------------------------------------------------------------
// PostgreSQL only: several store handles on one database behave as replicas.

use common::backend::TestDb;
use taxiway_server::store::postgres::{copy_from_sqlite, PostgresStore};
use taxiway_server::store::sqlite::SqliteStore;
use taxiway_server::store::StoreError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn pg_concurrent_migrations_and_a_newer_schema_is_refused() {
    let db = TestDb::create().await;
    let (a, b) = tokio::join!(
        PostgresStore::connect_url(&db.url, 2),
        PostgresStore::connect_url(&db.url, 2)
    );
    a.expect("replica a migrates");
    b.expect("replica b migrates");
    assert_eq!(
        db.query_i64("SELECT max(version) FROM schema_version")
            .await,
        taxiway_server::store::postgres::schema_version()
    );
    db.execute("UPDATE schema_version SET version = version + 1")
        .await;
    let err = PostgresStore::connect_url(&db.url, 2)
        .await
        .err()
        .expect("a newer schema is refused")
        .to_string();
    assert!(err.contains("newer than this binary"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn pg_write_through_one_replica_read_through_another() {
    let db = TestDb::create().await;
    let config = config("type:indicator");
    let a = db.open().await;
    let b = db.open().await;
    a.apply_config(&common::store_setup(&config))
        .await
        .expect("apply");
    b.apply_config(&common::store_setup(&config))
        .await
        .expect("apply");
    wait_built(&*a).await;
    wait_built(&*b).await;
    let status = a
        .add_objects(
            "feeds",
            INBOX,
            new_objects(vec![indicator(1, 1, "198.51.100.1", 80), malware(1)]),
        )
        .await
        .expect("add");
    assert_eq!(
        b.status("feeds", &status.id, "").await.expect("status"),
        Some(status)
    );
    let via_a = a.list(INBOX, &everything(100)).await.expect("list");
    let via_b = b.list(INBOX, &everything(100)).await.expect("list");
    assert_eq!(via_a, via_b);
    assert_eq!(
        b.list(INDICATORS, &everything(100))
            .await
            .expect("list")
            .entries
            .len(),
        1
    );
    // Paging alternates replicas: the cursor is a date_added, valid everywhere.
    let page1 = a.list(INBOX, &everything(1)).await.expect("page");
    assert!(page1.more);
    let page2 = b
        .list(
            INBOX,
            &Listing {
                after: page1.entries.last().map(|e| e.date_added),
                ..everything(1)
            },
        )
        .await
        .expect("page");
    assert_eq!(page2.entries[0], via_a.entries[1]);
    assert!(!page2.more);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn pg_concurrent_writers_on_two_replicas_and_a_poller_miss_nothing() {
    let db = TestDb::create().await;
    let config = config("type:indicator");
    let replicas = [db.open().await, db.open().await];
    for r in &replicas {
        r.apply_config(&common::store_setup(&config))
            .await
            .expect("apply");
        wait_built(&**r).await;
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // An incremental poller on replica 1, resuming from the last date_added it saw.
    let poller = {
        let store = replicas[1].clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut after = None;
            let mut seen = Vec::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::Acquire);
                let page = store
                    .list(
                        INBOX,
                        &Listing {
                            after,
                            ..everything(50)
                        },
                    )
                    .await
                    .expect("poll");
                if let Some(last) = page.entries.last() {
                    after = Some(last.date_added);
                }
                seen.extend(page.entries.into_iter().map(|e| e.id));
                if finished && !page.more {
                    return seen;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
    };
    let mut tasks = Vec::new();
    for w in 0..6u32 {
        let store = replicas[(w % 2) as usize].clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..8u32 {
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
        t.await.expect("writer");
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let mut seen = poller.await.expect("poller");
    for r in &replicas {
        let page = r.list(INBOX, &everything(1000)).await.expect("list");
        assert_eq!(page.entries.len(), 240);
        assert!(page
            .entries
            .windows(2)
            .all(|w| w[0].date_added < w[1].date_added));
    }
    let total = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(total, 240, "the poller saw every object exactly once");
    assert_eq!(seen.len(), 240);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn pg_a_query_change_is_rebuilt_by_exactly_one_replica() {
    let db = TestDb::create().await;
    let a = db.open().await;
    // A pool of one connection is enough to rebuild (the lock's session does the work).
    let b = Arc::new(PostgresStore::connect_url(&db.url, 1).await.expect("open"));
    let before = config("type:indicator and confidence:>=50");
    a.apply_config(&common::store_setup(&before))
        .await
        .expect("apply");
    b.apply_config(&common::store_setup(&before))
        .await
        .expect("apply");
    wait_built(&*a).await;
    wait_built(&*b).await;
    let objects: Vec<Value> = (0..3000u32)
        .map(|n| indicator(n, 1, "198.51.100.9", if n % 2 == 0 { 80 } else { 20 }))
        .collect();
    for chunk in objects.chunks(500) {
        a.add_objects("feeds", INBOX, new_objects(chunk.to_vec()))
            .await
            .expect("add");
    }
    let rebuilt_before = a.rebuilds_finished() + b.rebuilds_finished();
    let after = config("type:indicator");
    let after = common::store_setup(&after);
    let (ra, rb) = tokio::join!(a.apply_config(&after), b.apply_config(&after));
    ra.expect("apply a");
    rb.expect("apply b");
    // While the new view builds, both replicas serve the old one.
    assert!(b.list(INDICATORS, &everything(1)).await.expect("list").more);
    wait_built(&*a).await;
    wait_built(&*b).await;
    // Give the loser's rebuild task time to notice there is nothing left to do.
    a.maintain().await.expect("maintain");
    b.maintain().await.expect("maintain");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        a.rebuilds_finished() + b.rebuilds_finished() - rebuilt_before,
        1,
        "exactly one replica rebuilt the view"
    );
    for r in [&a, &b] {
        let mut n = 0;
        let mut after = None;
        loop {
            let page = r
                .list(
                    INDICATORS,
                    &Listing {
                        after,
                        ..everything(1000)
                    },
                )
                .await
                .expect("list");
            n += page.entries.len();
            after = page.entries.last().map(|e| e.date_added);
            if !page.more {
                break;
            }
        }
        assert_eq!(n, 3000);
    }
}

/// Ids in a collection, in `date_added` order.
async fn ids_in(store: &dyn Store, collection: &str) -> Vec<String> {
    store
        .list(collection, &everything(1000))
        .await
        .expect("list")
        .entries
        .into_iter()
        .map(|e| e.id)
        .collect()
}

/// The rebuild reads a batch and evaluates it before taking the clock lock; another
/// replica posting an object of the batch into another collection meanwhile changes
/// its `source:` facts. The rebuild must decide on the facts as they are under the
/// lock (else the object would stay wrongly a member until its next version).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn pg_a_rebuild_decides_on_sources_as_they_are_under_the_clock_lock() {
    let db = TestDb::create().await;
    let a = db.open().await;
    a.apply_config(&common::store_setup(&config("type:indicator")))
        .await
        .expect("apply");
    wait_built(&*a).await;
    // Claim this interval's maintenance: the next `maintain` only starts rebuilds.
    a.maintain().await.expect("maintain");
    let x = indicator(1, 1, "198.51.100.1", 80);
    let y = indicator(2, 1, "198.51.100.2", 80);
    let x_id = x["id"].as_str().expect("id").to_string();
    let y_id = y["id"].as_str().expect("id").to_string();
    a.add_objects("feeds", INBOX, new_objects(vec![x, y]))
        .await
        .expect("add");
    // Keep the next view's rebuild waiting: hold the advisory locks of the next ids.
    let locker = db.client().await;
    let next = db.query_i64("SELECT max(view_id) FROM views").await;
    for id in next + 1..=next + 5 {
        let key = id as i32;
        locker
            .execute("SELECT pg_advisory_lock($1, $2)", &[&0x5458_5756i32, &key])
            .await
            .expect("advisory lock");
    }
    a.apply_config(&common::store_setup(&config(
        "type:indicator AND NOT source:quarantine",
    )))
    .await
    .expect("apply");
    // Another writer holds the clock while the rebuild reads and evaluates its batch…
    let mut writer = db.client().await;
    let tx = writer.transaction().await.expect("begin");
    tx.query_one("SELECT last FROM clock FOR UPDATE", &[])
        .await
        .expect("clock");
    locker
        .execute("SELECT pg_advisory_unlock_all()", &[])
        .await
        .expect("unlock");
    a.maintain().await.expect("maintain");
    db.wait_lock_waiter("FROM clock FOR UPDATE").await;
    // … and posts X into the quarantine collection, then commits.
    tx.execute(
        "UPDATE object_versions SET sources = sources || 'quarantine' || chr(10) \
         WHERE stix_id = $1",
        &[&x_id],
    )
    .await
    .expect("post into quarantine");
    tx.commit().await.expect("commit");
    wait_built(&*a).await;
    assert_eq!(ids_in(&*a, INDICATORS).await, vec![y_id]);
}

/// Relative-time maintenance reads a batch and evaluates it before taking the clock
/// lock. An object another replica posted into another collection meanwhile (its
/// ingest took it out of the query collection) must not be put back with a new stamp
/// on the stale facts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn pg_relative_time_maintenance_decides_on_sources_as_they_are_under_the_clock_lock() {
    let db = TestDb::create().await;
    let a = db.open().await;
    a.apply_config(&common::store_setup(&config(
        "type:indicator AND added:>now-30d AND NOT source:quarantine",
    )))
    .await
    .expect("apply");
    wait_built(&*a).await;
    let x = indicator(1, 1, "198.51.100.1", 80);
    let y = indicator(2, 1, "198.51.100.2", 80);
    let x_id = x["id"].as_str().expect("id").to_string();
    let y_id = y["id"].as_str().expect("id").to_string();
    a.add_objects("feeds", INBOX, new_objects(vec![x, y]))
        .await
        .expect("add");
    assert_eq!(ids_in(&*a, INDICATORS).await.len(), 2);
    let mut other = db.client().await;
    let tx = other.transaction().await.expect("begin");
    tx.query_one("SELECT last FROM clock FOR UPDATE", &[])
        .await
        .expect("clock");
    let maintenance = {
        let a = a.clone();
        tokio::spawn(async move { a.maintain().await })
    };
    db.wait_lock_waiter("FROM clock FOR UPDATE").await;
    // The other replica posts X into quarantine: X leaves the query collection.
    tx.execute(
        "UPDATE object_versions SET sources = sources || 'quarantine' || chr(10) \
         WHERE stix_id = $1",
        &[&x_id],
    )
    .await
    .expect("post into quarantine");
    tx.execute(
        "DELETE FROM entries WHERE stix_id = $1 AND view_id = \
         (SELECT view_id FROM views WHERE collection = $2 AND state = 'active')",
        &[&x_id, &INDICATORS],
    )
    .await
    .expect("leave the query collection");
    tx.commit().await.expect("commit");
    maintenance.await.expect("join").expect("maintain");
    assert_eq!(ids_in(&*a, INDICATORS).await, vec![y_id]);
}

/// Writers queue for the clock row; they must not park every pooled connection on it:
/// with another replica holding the clock for longer than the pool's wait timeout, a
/// burst of POSTs leaves reads and the readiness probe working, and every POST then
/// commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn pg_a_burst_of_writes_waiting_for_the_clock_leaves_reads_and_readiness_working() {
    let db = TestDb::create().await;
    let a = db.open().await; // a pool of 4 connections, one write permit
    a.apply_config(&common::store_setup(&config("type:indicator")))
        .await
        .expect("apply");
    wait_built(&*a).await;
    a.add_objects("feeds", INBOX, new_objects(vec![malware(1)]))
        .await
        .expect("add");
    let mut other = db.client().await;
    let tx = other.transaction().await.expect("begin");
    tx.query_one("SELECT last FROM clock FOR UPDATE", &[])
        .await
        .expect("clock");
    let writers: Vec<_> = (0..16u32)
        .map(|n| {
            let a = a.clone();
            tokio::spawn(async move {
                a.add_objects(
                    "feeds",
                    INBOX,
                    new_objects(vec![indicator(n, 1, "198.51.100.7", 80)]),
                )
                .await
            })
        })
        .collect();
    db.wait_lock_waiter("FROM clock FOR UPDATE").await;
    // Longer than the pool's wait timeout (5 s): reads keep being served meanwhile.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(6);
    while std::time::Instant::now() < until {
        let started = std::time::Instant::now();
        let page = a
            .list(INBOX, &everything(10))
            .await
            .expect("read while writers wait");
        assert_eq!(page.entries.len(), 1);
        assert!(a.reachable().await, "ready while writers wait");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    tx.commit().await.expect("release the clock");
    for w in writers {
        w.await.expect("join").expect("every POST commits");
    }
    assert_eq!(ids_in(&*a, INBOX).await.len(), 17);
}

/// `/metrics` counts a small table exactly and reads a large one's estimate (no
/// `count(*)` of millions of rows at every scrape on every replica).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn pg_stats_count_small_tables_and_estimate_large_ones() {
    let db = TestDb::create().await;
    let a = db.open().await;
    a.apply_config(&common::store_setup(&config("type:indicator")))
        .await
        .expect("apply");
    wait_built(&*a).await;
    a.add_objects("feeds", INBOX, new_objects(vec![malware(1), malware(2)]))
        .await
        .expect("add");
    assert_eq!(a.stats().await.expect("stats").object_versions, 2);
    // As if autovacuum had analysed a table of 250,000 versions.
    db.execute("UPDATE pg_class SET reltuples = 250000 WHERE oid = 'object_versions'::regclass")
        .await;
    assert_eq!(a.stats().await.expect("stats").object_versions, 250_000);
}

/// A view put live by a rebuild is known to the planner at once: the rebuilding
/// replica analyses `entries` (without statistics PostgreSQL plans lookups in a new
/// view as for one row and scans all of it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn pg_a_rebuilt_view_is_analysed() {
    let db = TestDb::create().await;
    let a = db.open().await;
    let reltuples = "SELECT reltuples::bigint FROM pg_class WHERE oid = 'entries'::regclass";
    assert_eq!(
        db.query_i64(reltuples).await,
        -1,
        "a new table: never analysed"
    );
    a.apply_config(&common::store_setup(&config(
        "type:indicator and confidence:>=50",
    )))
    .await
    .expect("apply");
    wait_built(&*a).await;
    let objects = (0..4u32)
        .map(|n| indicator(n, 1, "192.0.2.1", 25 * n))
        .collect();
    a.add_objects("feeds", INBOX, new_objects(objects))
        .await
        .expect("add");
    a.apply_config(&common::store_setup(&config("type:indicator")))
        .await
        .expect("apply");
    wait_built(&*a).await;
    assert!(
        db.query_i64(reltuples).await >= 4,
        "entries analysed after the rebuild"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn pg_connects_with_a_secret_directory_of_files() {
    let db = TestDb::create().await;
    let parsed: tokio_postgres::Config = db.url.parse().expect("test URL");
    let host = match parsed.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        other => panic!("test URL host {other:?}"),
    };
    let dir = tempfile::tempdir().expect("tmp");
    let write = |name: &str, value: &str| {
        std::fs::write(dir.path().join(name), format!("{value}\n")).expect("write")
    };
    write("host", &host);
    write(
        "port",
        &parsed
            .get_ports()
            .first()
            .copied()
            .unwrap_or(5432)
            .to_string(),
    );
    write("dbname", &db.name);
    write("username", parsed.get_user().unwrap_or("postgres"));
    write("password", "ignored-by-trust");
    let settings = taxiway_server::config::PostgresSettings {
        secret_dir: Some(dir.path().to_path_buf()),
        url_env: None,
        pool_size: 2,
        tls: taxiway_server::config::PostgresTls::Disable,
        ca_file: None,
        connect_timeout_secs: 5,
    };
    let store = PostgresStore::connect(&settings).await.expect("connect");
    store
        .apply_config(&common::store_setup(&config("type:indicator")))
        .await
        .expect("apply");
    store
        .add_objects("feeds", INBOX, new_objects(vec![malware(1)]))
        .await
        .expect("add");
    // Settings are read again for each new connection: a broken file later falls back
    // to those read at start.
    std::fs::write(dir.path().join("port"), "not a port").expect("write");
    db.execute(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{}' AND pid != pg_backend_pid()",
        db.name
    ))
    .await;
    eventually("reconnected", async || {
        let Ok(page) = store.list(INBOX, &everything(10)).await else {
            return false;
        };
        assert_eq!(page.entries.len(), 1);
        true
    })
    .await;
    // With TLS required: works when the server has TLS, an error (no silent plain TCP)
    // when it has not.
    let tls = taxiway_server::config::PostgresSettings {
        tls: taxiway_server::config::PostgresTls::Require,
        ..settings.clone()
    };
    std::fs::write(
        dir.path().join("port"),
        parsed
            .get_ports()
            .first()
            .copied()
            .unwrap_or(5432)
            .to_string(),
    )
    .expect("write");
    let with_tls = PostgresStore::connect(&tls).await;
    let server_has_tls = db
        .query_i64("SELECT (current_setting('ssl') = 'on')::int::bigint")
        .await
        == 1;
    if server_has_tls {
        with_tls.expect("the test cluster serves TLS");
    } else {
        assert!(with_tls.is_err(), "no silent fallback to plain TCP");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn pg_tls_require_and_verify_full_with_the_secret_ca() {
    let db = TestDb::create().await;
    let Ok(ca) = std::env::var("TAXIWAY_TEST_POSTGRES_CA") else {
        panic!("TAXIWAY_TEST_POSTGRES_CA is not set: tests/pg/provision.sh serves TLS with a test CA when openssl is installed");
    };
    let dir = tempfile::tempdir().expect("tmp");
    // The test certificate names 127.0.0.1 and localhost.
    std::fs::write(dir.path().join("uri"), &db.url).expect("write");
    std::fs::copy(&ca, dir.path().join("ca.crt")).expect("copy CA");
    let settings =
        |tls, ca_file: Option<std::path::PathBuf>| taxiway_server::config::PostgresSettings {
            secret_dir: Some(dir.path().to_path_buf()),
            url_env: None,
            pool_size: 2,
            tls,
            ca_file,
            connect_timeout_secs: 5,
        };
    use taxiway_server::config::PostgresTls;
    // verify-full with ca.crt from the secret directory.
    let store = PostgresStore::connect(&settings(PostgresTls::VerifyFull, None))
        .await
        .expect("verify-full against the secret's CA");
    store
        .apply_config(&common::store_setup(&config("type:indicator")))
        .await
        .expect("apply");
    store
        .add_objects("feeds", INBOX, new_objects(vec![malware(1)]))
        .await
        .expect("add");
    let encrypted = db
        .query_i64(&format!(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.datname = '{}' AND s.ssl AND a.application_name = 'taxiway-server'",
            db.name
        ))
        .await;
    assert!(encrypted > 0, "the store's connections use TLS");
    // require: encrypted, the certificate is not checked.
    let wrong_ca = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::remove_file(dir.path().join("ca.crt")).expect("rm");
    let required = PostgresStore::connect(&settings(PostgresTls::Require, None))
        .await
        .expect("require");
    assert_eq!(
        required
            .list(INBOX, &everything(10))
            .await
            .expect("list")
            .entries
            .len(),
        1
    );
    // verify-full with an explicit ca_file.
    PostgresStore::connect(&settings(PostgresTls::VerifyFull, Some(ca.clone().into())))
        .await
        .expect("verify-full with ca_file");
    // verify-full against the public roots: the test CA is unknown.
    assert!(
        PostgresStore::connect(&settings(PostgresTls::VerifyFull, None))
            .await
            .is_err()
    );
    // A CA file that holds no certificate is a configuration error.
    assert!(PostgresStore::connect(&settings(
        PostgresTls::VerifyFull,
        Some(wrong_ca.path().to_path_buf())
    ))
    .await
    .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn pg_unreachable_database_is_unavailable_and_recovers_without_restart() {
    match PostgresStore::connect_url("postgres://postgres@127.0.0.1:1/none", 1).await {
        Err(StoreError::Unavailable(_)) => {}
        Err(e) => panic!("expected Unavailable, got {e}"),
        Ok(_) => panic!("nothing listens on port 1"),
    }
    let db = TestDb::create().await;
    let store = db.open().await;
    let config = config("type:indicator");
    store
        .apply_config(&common::store_setup(&config))
        .await
        .expect("apply");
    store
        .add_objects("feeds", INBOX, new_objects(vec![malware(1)]))
        .await
        .expect("add");
    // Kill every connection of the store (as a database restart would).
    db.execute(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{}' AND pid != pg_backend_pid()",
        db.name
    ))
    .await;
    eventually("the pool reconnects", async || {
        match store.list(INBOX, &everything(10)).await {
            Ok(page) => {
                assert_eq!(page.entries.len(), 1);
                true
            }
            Err(StoreError::Unavailable(_)) => false,
            Err(e) => panic!("expected Unavailable while reconnecting, got {e}"),
        }
    })
    .await;
    assert!(store.reachable().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn pg_migrate_from_sqlite_keeps_bytes_stamps_and_statuses() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().expect("tmp");
    let config = config("type:indicator");
    let statuses = {
        let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path(), 2).expect("open"));
        sqlite
            .apply_config(&common::store_setup(&config))
            .await
            .expect("apply");
        wait_built(&*sqlite).await;
        let mut statuses = Vec::new();
        for b in 0..7u32 {
            let objs = (0..30u32)
                .flat_map(|i| {
                    vec![
                        indicator(b * 100 + i, 1, "198.51.100.3", 70),
                        indicator(b * 100 + i, 2, "198.51.100.3", 75),
                        malware(b * 100 + i),
                    ]
                })
                .collect();
            statuses.push(
                sqlite
                    .add_objects("feeds", INBOX, new_objects(objs))
                    .await
                    .expect("add"),
            );
        }
        sqlite.close().await.expect("close");
        statuses
    };
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path(), 2).expect("open"));
    sqlite
        .apply_config(&common::store_setup(&config))
        .await
        .expect("apply");
    wait_built(&*sqlite).await;

    let target = db.open().await;
    let report = copy_from_sqlite(dir.path(), &target).await.expect("copy");
    assert_eq!(report.object_versions, 7 * 30 * 3);
    assert!(
        copy_from_sqlite(dir.path(), &target).await.is_err(),
        "target not empty"
    );
    target
        .apply_config(&common::store_setup(&config))
        .await
        .expect("apply");
    wait_built(&*target).await;
    for collection in [INBOX, INDICATORS, MALWARE] {
        for listing in [
            everything(37),
            Listing {
                versions: VersionMatch::last(),
                ..everything(50)
            },
        ] {
            let mut after = None;
            loop {
                let l = Listing {
                    after,
                    ..listing.clone()
                };
                let from = sqlite.list(collection, &l).await.expect("sqlite page");
                let to = target.list(collection, &l).await.expect("pg page");
                assert_eq!(from, to, "{collection} after {after:?}");
                after = from.entries.last().map(|e| e.date_added);
                if !from.more {
                    break;
                }
            }
        }
    }
    for s in statuses {
        assert_eq!(
            target.status("feeds", &s.id, "").await.expect("status"),
            Some(s)
        );
    }
    // New writes stamp after everything copied.
    target
        .add_objects("feeds", INBOX, new_objects(vec![malware(99_999)]))
        .await
        .expect("add");
    let all = target.list(INBOX, &everything(1000)).await.expect("list");
    assert_eq!(
        all.entries.last().map(|e| e.date_added > report.last_stamp),
        Some(true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn pg_migrate_from_sqlite_carries_feeds_checkpoints_and_runs_not_leases() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().expect("tmp");
    let run = r#"{"state":"ok","startedAt":"2026-12-06T10:00:00Z","storedTotal":3}"#;
    {
        let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path(), 2).expect("open"));
        let hour = std::time::Duration::from_secs(3600);
        assert!(sqlite
            .lease_feed("partner", "old-server:8443", hour)
            .await
            .expect("lease"));
        sqlite
            .save_feed_checkpoint("partner", r#"{"kind":"taxii"}"#)
            .await
            .expect("checkpoint");
        sqlite.save_feed_run("partner", run).await.expect("run");
        sqlite
            .save_feed_checkpoint("list", r#"{"kind":"list"}"#)
            .await
            .expect("checkpoint");
        sqlite.close().await.expect("close");
    }
    let target = db.open().await;
    let report = copy_from_sqlite(dir.path(), &target).await.expect("copy");
    assert_eq!(report.feeds, 2);
    assert_eq!(
        target
            .feed_checkpoint("partner")
            .await
            .expect("read")
            .as_deref(),
        Some(r#"{"kind":"taxii"}"#)
    );
    assert_eq!(
        target.feed_run("partner").await.expect("read").as_deref(),
        Some(run)
    );
    assert_eq!(
        target
            .feed_checkpoint("list")
            .await
            .expect("read")
            .as_deref(),
        Some(r#"{"kind":"list"}"#)
    );
    assert_eq!(target.feed_run("list").await.expect("read"), None);
    // The old server's lease stays behind: a replica takes the feed at once.
    assert!(target
        .lease_feed(
            "partner",
            "taxiway-0:8443",
            std::time::Duration::from_secs(60)
        )
        .await
        .expect("lease"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn pg_gives_the_same_answers_as_sqlite_for_the_same_history() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().expect("tmp");
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path(), 2).expect("open"));
    let pg: Arc<dyn Store> = db.open().await;
    let first = config("type:indicator and confidence:>=50");
    for s in [&sqlite, &pg] {
        s.apply_config(&common::store_setup(&first))
            .await
            .expect("apply");
        wait_built(&**s).await;
    }
    // New objects, newer and late older versions, duplicates, versions that stop
    // matching, deletes, and a query change.
    let steps: Vec<Vec<Value>> = vec![
        (0..20u32)
            .map(|n| indicator(n, 5, "198.51.100.1", 40 + n * 3))
            .chain((0..5).map(malware))
            .collect(),
        (0..10u32)
            .map(|n| indicator(n, 7, "198.51.100.2", 90 - n * 6))
            .collect(),
        (5..15u32)
            .map(|n| indicator(n, 2, "198.51.100.3", 99))
            .chain((0..3).map(malware))
            .collect(),
        vec![indicator(3, 7, "198.51.100.2", 90 - 18)],
    ];
    for (i, objects) in steps.iter().enumerate() {
        for s in [&sqlite, &pg] {
            s.add_objects("feeds", INBOX, new_objects(objects.clone()))
                .await
                .expect("add");
        }
        if i == 2 {
            for s in [&sqlite, &pg] {
                let id = indicator(4, 1, "x", 0)["id"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                s.delete_object(
                    INBOX,
                    &id,
                    &VersionMatch {
                        last: true,
                        ..Default::default()
                    },
                    &[],
                )
                .await
                .expect("delete");
            }
        }
    }
    let compare = |label: &'static str| {
        let (sqlite, pg) = (sqlite.clone(), pg.clone());
        async move {
            for collection in [INBOX, INDICATORS, MALWARE] {
                for versions in [
                    VersionMatch::all(),
                    VersionMatch::last(),
                    VersionMatch {
                        first: true,
                        ..Default::default()
                    },
                ] {
                    let l = Listing {
                        versions: versions.clone(),
                        ..everything(1000)
                    };
                    let shape = |p: taxiway_server::store::Page| {
                        p.entries
                            .into_iter()
                            .map(|e| (e.id, e.version, e.spec_version, e.raw))
                            .collect::<Vec<_>>()
                    };
                    let a = shape(sqlite.list(collection, &l).await.expect("sqlite"));
                    let b = shape(pg.list(collection, &l).await.expect("pg"));
                    assert_eq!(a, b, "{label}: {collection} {versions:?}");
                    assert_eq!(
                        sqlite.count(collection, &l).await.expect("count"),
                        pg.count(collection, &l).await.expect("count"),
                        "{label}: count {collection} {versions:?}"
                    );
                }
            }
        }
    };
    compare("after ingest").await;
    let second = config("type:indicator and confidence:>=70");
    for s in [&sqlite, &pg] {
        s.apply_config(&common::store_setup(&second))
            .await
            .expect("apply");
        wait_built(&**s).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    compare("after a query change").await;
}

/// Brand-new objects of a request are written together (`ingest::FreshBatch`); the
/// others one by one. Mixed in one request — new ones around a new version of a
/// stored object and an object posted twice — the collection lists them in the
/// request's order with increasing stamps, flags and the query view as if each had
/// been posted alone.
async fn a_request_mixing_new_stored_and_repeated_objects_keeps_its_order(place: Place) {
    let store = open(&place, &config("type:indicator and confidence:>=50")).await;
    let post = |objects: Vec<Value>| store.add_objects("feeds", INBOX, new_objects(objects));
    post(vec![indicator(1, 1, "198.51.100.1", 80)])
        .await
        .expect("add");
    let request = vec![
        indicator(2, 1, "198.51.100.2", 80), // new, matches
        indicator(3, 1, "198.51.100.3", 10), // new, does not match
        indicator(1, 2, "198.51.100.1", 90), // a new version of a stored object
        indicator(4, 1, "198.51.100.4", 70), // new, matches
        indicator(5, 1, "198.51.100.5", 60), // posted twice: the second is newer
        indicator(5, 2, "198.51.100.5", 20),
        indicator(6, 1, "198.51.100.6", 99), // new, matches
    ];
    let expected: Vec<String> = request.iter().map(|v| v.to_string()).collect();
    let status = post(request).await.expect("add");
    assert_eq!(status.success_count, 7);

    let all = store.list(INBOX, &everything(100)).await.expect("list");
    let listed: Vec<&str> = all.entries[1..].iter().map(|e| e.raw.as_str()).collect();
    assert_eq!(listed, expected, "the request's order");
    assert!(
        all.entries
            .windows(2)
            .all(|w| w[0].date_added < w[1].date_added),
        "increasing stamps"
    );
    let latest = Listing {
        versions: VersionMatch::last(),
        ..everything(100)
    };
    let last: Vec<String> = store
        .list(INBOX, &latest)
        .await
        .expect("list")
        .entries
        .into_iter()
        .map(|e| e.raw)
        .collect();
    let want: Vec<String> = [&expected[0], &expected[1], &expected[2], &expected[3]]
        .into_iter()
        .chain([&expected[5], &expected[6]])
        .cloned()
        .collect();
    assert_eq!(last, want, "one latest version per object");

    let query = store
        .list(INDICATORS, &everything(100))
        .await
        .expect("list");
    let ids: Vec<&str> = query.entries.iter().map(|e| &e.id[..19]).collect();
    assert_eq!(
        ids,
        [
            "indicator--00000002",
            "indicator--00000001",
            "indicator--00000004",
            "indicator--00000006",
        ],
        "the matching latest versions, in the order they arrived"
    );
    assert_eq!(
        store
            .count(INDICATORS, &everything(100))
            .await
            .expect("count"),
        4
    );
    let stats = store.stats().await.expect("stats");
    assert_eq!(stats.object_versions, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn pg_an_objects_entries_are_found_by_version() {
    // Entries have no index by object id (schema step 7): every statement asking for
    // one object's entries must reach them through its version rows and
    // `entries_by_version`, and find those version rows through `object_versions_by_id`
    // (a hash index since step 8). Seq scans are switched off so that a plan with no usable
    // index shows as one (a table this small would be scanned anyway), and the generic
    // plan is the one checked: what a prepared statement runs after five executions.
    let db = TestDb::create().await;
    let store = db.open().await;
    store
        .apply_config(&common::store_setup(&config("type:indicator")))
        .await
        .expect("apply");
    wait_built(&*store).await;
    for batch in 0..4u32 {
        let objects = (0..500u32)
            .map(|n| indicator(batch * 500 + n, 1, "192.0.2.1", 80))
            .collect();
        store
            .add_objects("feeds", INBOX, new_objects(objects))
            .await
            .expect("add");
    }
    let client = db.client().await;
    client
        .batch_execute(
            "ANALYZE; SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan",
        )
        .await
        .expect("settings");
    for (n, statement) in taxiway_server::store::postgres::object_statements()
        .into_iter()
        .enumerate()
    {
        client
            .batch_execute(&format!("PREPARE s{n} AS {}", statement.sql))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", statement.name));
        let plan = json_plan(
            &client,
            &format!("EXPLAIN (FORMAT JSON) EXECUTE s{n}({})", statement.args),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", statement.name));
        let (mut entries, mut versions) = (Vec::new(), Vec::new());
        relation_scans(&plan, "entries", &mut entries);
        relation_scans(&plan, "object_versions", &mut versions);
        // Version rows looked up by id (not by `vid`, the primary key): the id in the
        // scan's index condition, the one it rechecks, or its filter.
        versions.retain(|scan| {
            ["Index Cond", "Recheck Cond", "Filter"]
                .iter()
                .any(|k| scan[*k].as_str().is_some_and(|c| c.contains("stix_id")))
        });
        assert!(
            !entries.is_empty() || !versions.is_empty(),
            "{}: no scan of entries or version rows by id\n{plan:#}",
            statement.name
        );
        for scan in entries {
            let (index, cond) = scan_index(scan);
            assert!(
                index == Some("entries_by_version") && cond.is_some_and(|c| c.contains("vid")),
                "{} must reach the object's entries by version, not scan {index:?} on {cond:?}:\n{plan:#}",
                statement.name
            );
        }
        for scan in versions {
            let (index, cond) = scan_index(scan);
            assert!(
                index == Some("object_versions_by_id"),
                "{} must find the object's version rows by id, not scan {index:?} on {cond:?}:\n{plan:#}",
                statement.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn pg_a_stored_page_reads_versions_only_and_a_query_page_its_copies() {
    // A stored view has no copies of its objects' JSON in `view_objects` (only query
    // views do): its page must not probe there for each object before reading the
    // version row. Checked on what the statement actually ran (`EXPLAIN ANALYZE`).
    let db = TestDb::create().await;
    let store = db.open().await;
    store
        .apply_config(&common::store_setup(&config("type:indicator")))
        .await
        .expect("apply");
    wait_built(&*store).await;
    let objects = (0..50u32)
        .map(|n| indicator(n, 1, "192.0.2.1", 80))
        .collect();
    store
        .add_objects("feeds", INBOX, new_objects(objects))
        .await
        .expect("add");
    let client = db.client().await;
    let sql = taxiway_server::store::postgres::objects_page_statement();
    client
        .batch_execute(&format!("PREPARE page AS {sql}"))
        .await
        .expect("prepare");
    let loops = |plan: &Value, relation: &str| {
        let mut scans = Vec::new();
        relation_scans(plan, relation, &mut scans);
        scans
            .iter()
            .map(|s| s["Actual Loops"].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    for (collection, copies) in [(INBOX, false), (INDICATORS, true)] {
        let plan = json_plan(
            &client,
            &format!(
                "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE page('{collection}', {}, 1001)",
                i64::MIN
            ),
        )
        .await
        .expect("explain");
        let (in_copies, in_versions) = (
            loops(&plan, "view_objects"),
            loops(&plan, "object_versions"),
        );
        if copies {
            assert!(
                in_copies >= 50 && in_versions == 0,
                "a query page reads its own copies: {in_copies} probes of view_objects, \
                 {in_versions} of object_versions\n{plan:#}"
            );
        } else {
            assert!(
                in_copies == 0 && in_versions >= 50,
                "a stored page reads the version rows only: {in_copies} probes of \
                 view_objects, {in_versions} of object_versions\n{plan:#}"
            );
        }
    }
}

/// The plan an `EXPLAIN (… FORMAT JSON)` statement returns. Over the text protocol the
/// plan is `json`, read here as its text.
async fn json_plan(
    client: &tokio_postgres::Client,
    explain: &str,
) -> Result<Value, tokio_postgres::Error> {
    let plan = client
        .simple_query(explain)
        .await?
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .expect("a plan");
    Ok(serde_json::from_str(&plan).expect("a JSON plan"))
}

/// The index a scan node reads and its condition: a bitmap heap scan's is the index
/// its bitmap comes from, with the condition it rechecks; a sequential scan has none
/// (its filter is returned).
fn scan_index(scan: &Value) -> (Option<&str>, Option<&str>) {
    match scan["Node Type"].as_str() {
        Some("Bitmap Heap Scan") => (
            scan["Plans"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["Node Type"] == "Bitmap Index Scan")
                .and_then(|p| p["Index Name"].as_str()),
            scan["Recheck Cond"].as_str(),
        ),
        Some("Seq Scan") => (None, scan["Filter"].as_str()),
        _ => (scan["Index Name"].as_str(), scan["Index Cond"].as_str()),
    }
}

/// The scans of `relation` in an `EXPLAIN (FORMAT JSON)` plan (not its inserts,
/// updates and deletes themselves).
fn relation_scans<'p>(plan: &'p Value, relation: &str, out: &mut Vec<&'p Value>) {
    match plan {
        Value::Array(items) => items.iter().for_each(|i| relation_scans(i, relation, out)),
        Value::Object(node) => {
            if node.get("Relation Name").and_then(Value::as_str) == Some(relation)
                && node.get("Node Type").and_then(Value::as_str) != Some("ModifyTable")
            {
                out.push(plan);
            }
            node.values().for_each(|v| relation_scans(v, relation, out));
        }
        _ => {}
    }
}
