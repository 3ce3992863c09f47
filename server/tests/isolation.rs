//! Collections are a trust boundary (issue 20): what one party posts to its collection
//! is never readable, replaceable or hideable through another writable collection, and
//! a query collection draws only from the collections it names. On every backend.

mod common;

use std::sync::Arc;

use common::backend::Place;
use common::*;
use serde_json::{json, Value};
use taxiway_server::config::{self, ServiceConfig};
use taxiway_server::store::validate_object;
use taxiway_server::store::{AddObjects, Listing, NewObject, Store, VersionMatch};

on_every_backend!(
    another_collection_cannot_read_replace_or_poison_an_object,
    a_newer_version_elsewhere_does_not_hide_an_object,
    scos_are_isolated_too,
    identical_bytes_are_shared_and_deletes_stay_in_their_collection,
    a_request_of_known_objects_is_stored_as_if_each_came_alone,
    a_query_collection_reads_only_its_sources_and_unions_them,
    a_rebuild_and_relative_time_maintenance_respect_sources,
    status_resources_belong_to_who_created_them,
);

const CERT: &str = "0b7f0a6e-1111-4111-8111-111111111111";
const PARTNER: &str = "0b7f0a6e-2222-4222-8222-222222222222";
const CERT_VIEW: &str = "0b7f0a6e-3333-4333-8333-333333333333";
const BOTH_VIEW: &str = "0b7f0a6e-4444-4444-8444-444444444444";

fn config_with(cert_view_query: &str) -> ServiceConfig {
    config::parse(&format!(
        r#"
[service]
title = "isolation"
[[api_roots]]
path = "feeds"
title = "Feeds"

[[collections]]
id = "{CERT}"
api_root = "feeds"
title = "cert-inbox"
writable = true
access = {{ read = ["cert"], write = ["cert"] }}

[[collections]]
id = "{PARTNER}"
api_root = "feeds"
title = "partner-inbox"
writable = true
access = {{ read = ["partner"], write = ["partner"] }}

[[collections]]
id = "{CERT_VIEW}"
api_root = "feeds"
title = "cert indicators"
query = '{cert_view_query}'
sources = ["cert-inbox"]
access = {{ read = ["cert"] }}

[[collections]]
id = "{BOTH_VIEW}"
api_root = "feeds"
title = "everything"
query = "type:indicator or type:ipv4-addr"
sources = ["cert-inbox", "partner-inbox"]
access = {{ read = ["cert"] }}
"#
    ))
    .expect("valid config")
}

fn isolation_config() -> ServiceConfig {
    config_with("type:indicator or type:ipv4-addr")
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

fn objects(values: Vec<Value>, owner: &str) -> AddObjects {
    AddObjects {
        objects: values
            .into_iter()
            .map(|v| NewObject {
                raw: v.to_string(),
                object: validate_object(v, None).expect("valid"),
            })
            .collect(),
        failures: Vec::new(),
        owner: owner.to_string(),
        ..Default::default()
    }
}

fn all_versions() -> Listing {
    Listing {
        with_raw: true,
        ..common::every_version(1000)
    }
}

fn latest_only() -> Listing {
    Listing {
        versions: VersionMatch::last(),
        ..all_versions()
    }
}

/// The objects of a collection as parsed JSON, in `date_added` order.
async fn read(store: &dyn Store, collection: &str, listing: &Listing) -> Vec<Value> {
    store
        .list(collection, listing)
        .await
        .expect("list")
        .entries
        .iter()
        .map(|e| serde_json::from_str(&e.raw).expect("stored JSON"))
        .collect()
}

fn secret(modified: &str) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": "indicator--0b7f0000-0000-4000-8000-000000000001",
        "created": "2026-01-01T00:00:00.000Z", "modified": modified,
        "name": "INTERNAL SECRET",
        "pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z"
    })
}

fn stub(modified: &str) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": "indicator--0b7f0000-0000-4000-8000-000000000001",
        "created": "2026-01-01T00:00:00.000Z", "modified": modified,
        "name": "stub",
        "pattern": "[ipv4-addr:value = '203.0.113.9']", "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z"
    })
}

fn names(objects: &[Value]) -> Vec<&str> {
    objects
        .iter()
        .map(|o| o["name"].as_str().or(o["value"].as_str()).unwrap_or(""))
        .collect()
}

async fn another_collection_cannot_read_replace_or_poison_an_object(place: Place) {
    let store = open(&place, &isolation_config()).await;
    let m = "2026-01-01T00:00:00.000Z";
    store
        .add_objects("feeds", CERT, objects(vec![secret(m)], "cert"))
        .await
        .expect("cert posts");
    let status = store
        .add_objects("feeds", PARTNER, objects(vec![stub(m)], "partner"))
        .await
        .expect("partner posts the same id and modified");
    assert_eq!(
        status.success_count, 1,
        "the stub is stored in partner-inbox"
    );

    let partner = read(&*store, PARTNER, &all_versions()).await;
    assert_eq!(
        names(&partner),
        vec!["stub"],
        "partner reads only its own bytes"
    );
    assert!(
        !partner[0].to_string().contains("198.51.100.1"),
        "nothing of cert's object crosses: {partner:?}"
    );
    let cert = read(&*store, CERT, &all_versions()).await;
    assert_eq!(
        names(&cert),
        vec!["INTERNAL SECRET"],
        "cert's object is not replaced"
    );
    assert_eq!(
        names(&read(&*store, CERT_VIEW, &all_versions()).await),
        vec!["INTERNAL SECRET"]
    );

    // Poisoning: partner posts first what cert posts later.
    let later = "2026-02-01T00:00:00.000Z";
    let mut early = stub(later);
    early["id"] = json!("indicator--0b7f0000-0000-4000-8000-000000000002");
    store
        .add_objects("feeds", PARTNER, objects(vec![early], "partner"))
        .await
        .expect("partner posts first");
    let mut real = secret(later);
    real["id"] = json!("indicator--0b7f0000-0000-4000-8000-000000000002");
    store
        .add_objects("feeds", CERT, objects(vec![real], "cert"))
        .await
        .expect("cert posts later");
    let cert = read(&*store, CERT, &all_versions()).await;
    assert_eq!(names(&cert), vec!["INTERNAL SECRET", "INTERNAL SECRET"]);
    let view = read(&*store, CERT_VIEW, &all_versions()).await;
    assert_eq!(names(&view), vec!["INTERNAL SECRET", "INTERNAL SECRET"]);

    // A repeated POST to the same collection is still a no-op, whatever its bytes.
    store
        .add_objects("feeds", CERT, objects(vec![stub(m)], "cert"))
        .await
        .expect("repeat");
    assert_eq!(
        names(&read(&*store, CERT, &all_versions()).await),
        vec!["INTERNAL SECRET", "INTERNAL SECRET"],
        "the first write of a version wins within a collection"
    );
}

async fn a_newer_version_elsewhere_does_not_hide_an_object(place: Place) {
    let store = open(&place, &isolation_config()).await;
    store
        .add_objects(
            "feeds",
            CERT,
            objects(vec![secret("2026-01-01T00:00:00.000Z")], "cert"),
        )
        .await
        .expect("cert posts");
    let mut revoked = stub("2026-06-01T00:00:00.000Z");
    revoked["revoked"] = json!(true);
    store
        .add_objects("feeds", PARTNER, objects(vec![revoked], "partner"))
        .await
        .expect("partner posts a newer, revoked version");

    let view = read(&*store, CERT_VIEW, &latest_only()).await;
    assert_eq!(
        names(&view),
        vec!["INTERNAL SECRET"],
        "a query collection over cert-inbox keeps cert's latest version"
    );
    let cert = read(&*store, CERT, &latest_only()).await;
    assert_eq!(
        names(&cert),
        vec!["INTERNAL SECRET"],
        "latest is per collection"
    );
    // The union of both inboxes holds each one's latest version.
    let both = read(&*store, BOTH_VIEW, &all_versions()).await;
    let mut both = names(&both);
    both.sort();
    assert_eq!(both, vec!["INTERNAL SECRET", "stub"]);

    // Deleting partner's version changes nothing for cert.
    let gone = store
        .delete_object(
            PARTNER,
            "indicator--0b7f0000-0000-4000-8000-000000000001",
            &VersionMatch::all(),
            &[],
        )
        .await
        .expect("delete");
    assert_eq!(gone, 1);
    assert_eq!(
        names(&read(&*store, CERT_VIEW, &all_versions()).await),
        vec!["INTERNAL SECRET"]
    );
    assert_eq!(
        names(&read(&*store, BOTH_VIEW, &all_versions()).await),
        vec!["INTERNAL SECRET"]
    );
}

fn address(value: &str) -> Value {
    json!({
        "type": "ipv4-addr", "spec_version": "2.1",
        "id": "ipv4-addr--0b7f0000-0000-5000-8000-000000000009",
        "value": value
    })
}

async fn scos_are_isolated_too(place: Place) {
    let store = open(&place, &isolation_config()).await;
    store
        .add_objects(
            "feeds",
            PARTNER,
            objects(vec![address("203.0.113.9")], "partner"),
        )
        .await
        .expect("partner posts the SCO id first");
    store
        .add_objects("feeds", CERT, objects(vec![address("10.1.2.3")], "cert"))
        .await
        .expect("cert posts the same SCO id");
    assert_eq!(
        names(&read(&*store, CERT, &all_versions()).await),
        vec!["10.1.2.3"]
    );
    assert_eq!(
        names(&read(&*store, PARTNER, &all_versions()).await),
        vec!["203.0.113.9"]
    );
    assert_eq!(
        names(&read(&*store, CERT_VIEW, &all_versions()).await),
        vec!["10.1.2.3"]
    );
    // An SCO has one version per collection: a second POST is a no-op.
    store
        .add_objects("feeds", CERT, objects(vec![address("192.0.2.1")], "cert"))
        .await
        .expect("repeat");
    assert_eq!(
        names(&read(&*store, CERT, &all_versions()).await),
        vec!["10.1.2.3"]
    );
}

async fn identical_bytes_are_shared_and_deletes_stay_in_their_collection(place: Place) {
    let store = open(&place, &isolation_config()).await;
    let shared = indicator(7, 1, "192.0.2.7", 80);
    store
        .add_objects("feeds", CERT, objects(vec![shared.clone()], "cert"))
        .await
        .expect("cert");
    store
        .add_objects("feeds", PARTNER, objects(vec![shared.clone()], "partner"))
        .await
        .expect("partner");
    let both = read(&*store, BOTH_VIEW, &all_versions()).await;
    assert_eq!(
        both.len(),
        1,
        "the same bytes in two sources are one object"
    );
    store
        .delete_object(
            CERT,
            shared["id"].as_str().expect("id"),
            &VersionMatch::all(),
            &[],
        )
        .await
        .expect("delete");
    assert!(read(&*store, CERT, &all_versions()).await.is_empty());
    assert!(read(&*store, CERT_VIEW, &all_versions()).await.is_empty());
    assert_eq!(
        read(&*store, PARTNER, &all_versions()).await,
        vec![shared.clone()]
    );
    assert_eq!(
        read(&*store, BOTH_VIEW, &all_versions()).await,
        vec![shared],
        "still in the union through partner-inbox"
    );
}

/// A request of objects that its own or another collection holds already — asked
/// about together (`IngestTx::probe_each`) — is stored as if each came alone: the very
/// same bytes share a row, other bytes of the same version stay apart, a version the
/// collection holds is a duplicate, and newer and late older versions take their place
/// in the posting collection only.
async fn a_request_of_known_objects_is_stored_as_if_each_came_alone(place: Place) {
    let store = open(&place, &isolation_config()).await;
    let a = indicator(1, 2, "192.0.2.1", 80);
    let b = indicator(2, 2, "192.0.2.2", 80);
    let c = indicator(3, 2, "192.0.2.3", 80);
    let d = indicator(4, 2, "192.0.2.4", 80);
    let first = vec![a.clone(), b.clone(), c.clone(), d.clone()];
    store
        .add_objects("feeds", CERT, objects(first, "cert"))
        .await
        .expect("cert");
    // Same id and version as `b`, other bytes; a newer `c`; a new object.
    let b_partner = indicator(2, 2, "198.51.100.2", 80);
    let c_newer = indicator(3, 3, "192.0.2.3", 80);
    let e = indicator(5, 2, "192.0.2.5", 80);
    let partner = vec![a.clone(), b_partner.clone(), c_newer.clone(), e.clone()];
    let status = store
        .add_objects("feeds", PARTNER, objects(partner, "partner"))
        .await
        .expect("partner");
    assert_eq!(status.success_count, 4);
    // A version cert holds, a late older one, a newer one.
    let c_older = indicator(3, 1, "192.0.2.3", 80);
    let d_newer = indicator(4, 3, "192.0.2.4", 80);
    let again = vec![a.clone(), c_older.clone(), d_newer.clone()];
    let status = store
        .add_objects("feeds", CERT, objects(again, "cert"))
        .await
        .expect("cert again");
    assert_eq!(status.success_count, 3);

    assert_eq!(
        read(&*store, CERT, &all_versions()).await,
        vec![a.clone(), b.clone(), c.clone(), d, c_older, d_newer.clone()],
        "cert: its own bytes, the held version once, the older and newer versions"
    );
    let cert_latest = vec![a.clone(), b, c, d_newer];
    assert_eq!(read(&*store, CERT, &latest_only()).await, cert_latest);
    assert_eq!(
        read(&*store, CERT_VIEW, &all_versions()).await,
        cert_latest,
        "the query view over cert holds cert's latest versions"
    );
    assert_eq!(
        read(&*store, PARTNER, &all_versions()).await,
        vec![a, b_partner, c_newer, e],
        "partner: its own bytes of b, its newer c"
    );
    let stats = store.stats().await.expect("stats");
    assert_eq!(
        stats.object_versions, 9,
        "the very same bytes of a are one row"
    );
}

async fn a_query_collection_reads_only_its_sources_and_unions_them(place: Place) {
    let store = open(&place, &isolation_config()).await;
    store
        .add_objects(
            "feeds",
            PARTNER,
            objects(vec![indicator(1, 1, "192.0.2.1", 80)], "partner"),
        )
        .await
        .expect("partner");
    store
        .add_objects(
            "feeds",
            CERT,
            objects(vec![indicator(2, 1, "192.0.2.2", 80)], "cert"),
        )
        .await
        .expect("cert");
    assert_eq!(
        ids(&json!({"objects": read(&*store, CERT_VIEW, &all_versions()).await})),
        vec!["indicator--00000002-0000-4000-8000-000000000000"]
    );
    assert_eq!(read(&*store, BOTH_VIEW, &all_versions()).await.len(), 2);
    // Two different objects under one id and version in the union: both are listed,
    // both are "last".
    let mut other = indicator(2, 1, "192.0.2.2", 80);
    other["name"] = json!("partner's own account of it");
    store
        .add_objects("feeds", PARTNER, objects(vec![other], "partner"))
        .await
        .expect("partner");
    let last = read(&*store, BOTH_VIEW, &latest_only()).await;
    assert_eq!(last.len(), 3, "{last:?}");
}

async fn a_rebuild_and_relative_time_maintenance_respect_sources(place: Place) {
    let store = open(&place, &config_with("type:indicator and confidence:>=90")).await;
    store
        .add_objects(
            "feeds",
            PARTNER,
            objects(vec![indicator(1, 1, "192.0.2.1", 80)], "partner"),
        )
        .await
        .expect("partner");
    store
        .add_objects(
            "feeds",
            CERT,
            objects(vec![indicator(2, 1, "192.0.2.2", 80)], "cert"),
        )
        .await
        .expect("cert");
    assert!(read(&*store, CERT_VIEW, &all_versions()).await.is_empty());
    // The query changes: the rebuild draws from cert-inbox only.
    store
        .apply_config(&common::store_setup(&config_with("type:indicator")))
        .await
        .expect("apply");
    wait_built(&*store).await;
    assert_eq!(
        ids(&json!({"objects": read(&*store, CERT_VIEW, &all_versions()).await})),
        vec!["indicator--00000002-0000-4000-8000-000000000000"]
    );
    // Relative-time re-evaluation too.
    store
        .apply_config(&common::store_setup(&config_with(
            "type:indicator and added:>now-1d",
        )))
        .await
        .expect("apply");
    wait_built(&*store).await;
    store.maintain().await.expect("maintain");
    assert_eq!(
        ids(&json!({"objects": read(&*store, CERT_VIEW, &all_versions()).await})),
        vec!["indicator--00000002-0000-4000-8000-000000000000"]
    );
}

async fn status_resources_belong_to_who_created_them(place: Place) {
    let store = open(&place, &isolation_config()).await;
    let status = store
        .add_objects("feeds", CERT, objects(vec![malware(1)], "cert"))
        .await
        .expect("cert");
    assert_eq!(
        store
            .status("feeds", &status.id, "cert")
            .await
            .expect("status"),
        Some(status.clone())
    );
    assert_eq!(
        store
            .status("feeds", &status.id, "partner")
            .await
            .expect("status"),
        None,
        "another caller does not find it"
    );
}
