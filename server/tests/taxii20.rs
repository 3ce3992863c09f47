//! The TAXII 2.0 API over HTTP: every endpoint, header and status, served alone and
//! beside TAXII 2.1 from the same API roots and data; on every store backend
//! (PostgreSQL with `--include-ignored` and `TAXIWAY_TEST_POSTGRES_URL`).

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;

use taxiway_server::auth::Credentials;
use taxiway_server::config;
use taxiway_server::state::AppState;
use taxiway_server::store::{Store, VersionMatch};
use taxiway_server::taxii::envelope::parse_envelope;
use taxiway_server::taxii::{self, media};

use common::backend::Place;

on_every_backend!(
    discovery_at_taxii_in_2_0_beside_2_1,
    which_versions_are_served_decides_the_answers,
    api_roots_are_shared_and_answer_in_the_accepted_version,
    collections_in_the_2_0_shape,
    objects_page_by_range_in_both_spellings,
    totals_and_offsets_follow_appends_new_versions_and_removals,
    out_of_range_malformed_and_empty_pages,
    without_range_everything_that_fits_is_a_200,
    date_added_headers_and_added_after_polling,
    filters_and_their_errors,
    stored_2_1_objects_are_served_as_valid_2_0,
    object_by_id,
    manifest_pages_like_objects,
    posted_2_0_bundles_are_stored_as_2_1,
    add_objects_refusals,
    pages_stop_at_the_byte_budget,
    posted_objects_too_large_or_with_repeated_keys_fail_alone,
    unknown_match_fields_are_ignored_on_objects_and_manifest,
);

const TAXII20: &str = media::TAXII_20;
const STIX20: &str = media::STIX_20;
const TAXII21: &str = media::TAXII_21;

const INBOX: &str = "e78eb331-c15a-463f-ba62-73b2a71a324a";
const MIXED: &str = "5b1f6a43-54c9-4b5e-9a39-2c1a0f4d8e77";
const QUERY: &str = "1032cbac-1483-48ad-b107-b3b6a12c65ad";

const IDENTITY: &str = "identity--11111111-1111-4111-8111-111111111111";
const TLP2_GREEN: &str = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb";
const TLP1_GREEN: &str = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da";
const IND_A: &str = "indicator--aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const MALWARE: &str = "malware--bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
const SCO: &str = "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd";
const LOCATION: &str = "location--cccccccc-cccc-4ccc-8ccc-cccccccccccc";
const REL_OK: &str = "relationship--dddddddd-dddd-4ddd-8ddd-dddddddddddd";
const REL_TO_SCO: &str = "relationship--eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee";
const SIGMA: &str = "indicator--ffffffff-ffff-4fff-8fff-ffffffffffff";
const IND_V5: &str = "indicator--a4d70b75-6f4a-5d19-9137-da863edd33d7";
const IND_V5_AS_V4: &str = "indicator--a4d70b75-6f4a-4d19-9137-da863edd33d7";

fn config_text(versions: &str) -> String {
    format!(
        r#"
[service]
title = "Taxiway test"
description = "TAXII 2.0 tests"
contact = "soc@example.com"
versions = {versions}
default_api_root = "feeds"

[limits]
max_page_size = 10
default_page_size = 10
max_content_length = 20000

[[api_roots]]
path = "feeds"
title = "Threat feeds"

[[collections]]
id = "{INBOX}"
api_root = "feeds"
title = "inbox"
alias = "inbox"
description = "Paging"
writable = true

[[collections]]
id = "{MIXED}"
api_root = "feeds"
title = "mixed"
writable = true

[[collections]]
id = "{QUERY}"
api_root = "feeds"
title = "indicators"
query = "type:indicator"
"#
    )
}

struct Server {
    app: Router,
    store: Arc<dyn Store>,
    _place: Place,
}

async fn server(place: Place, versions: &str) -> Server {
    server_limited(place, versions, "").await
}

/// A server whose `[limits]` also hold `limits`.
async fn server_limited(place: Place, versions: &str, limits: &str) -> Server {
    let text = config_text(versions).replace(
        "max_content_length = 20000",
        &format!("max_content_length = 20000\n{limits}"),
    );
    let config = config::parse(&text).expect("config");
    let store = place.open().await;
    store
        .apply_config(&common::store_setup(&config))
        .await
        .expect("apply config");
    common::wait_built(&*store).await;
    let state = AppState::new(config, store.clone(), Credentials::none());
    Server {
        app: taxii::router(state),
        store,
        _place: place,
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    fn objects(&self) -> Vec<Value> {
        self.json()["objects"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn ids(&self) -> Vec<String> {
        self.objects()
            .iter()
            .map(|o| o["id"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

impl Server {
    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, accept: Option<&str>, range: Option<&str>) -> Reply {
        // Brackets as clients send them: percent-encoded.
        let path = path.replace('[', "%5B").replace(']', "%5D");
        let mut r = Request::builder()
            .uri(path)
            .header(header::HOST, "taxii.test");
        if let Some(a) = accept {
            r = r.header(header::ACCEPT, a);
        }
        if let Some(range) = range {
            r = r.header(header::RANGE, range);
        }
        self.send(r.body(Body::empty()).expect("request")).await
    }

    async fn get20(&self, path: &str, range: Option<&str>) -> Reply {
        self.get(path, Some(STIX20), range).await
    }

    async fn post(&self, path: &str, accept: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let r = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::ACCEPT, accept)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .expect("request");
        self.send(r).await
    }

    /// When the latest version of `id` entered `inbox` (from the 2.1 manifest).
    async fn date_added(&self, id: &str) -> String {
        let r = self
            .get(
                &format!("/feeds/collections/{INBOX}/manifest/?match[id]={id}"),
                Some(TAXII21),
                None,
            )
            .await;
        r.json()["objects"][0]["date_added"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Store STIX 2.1 objects, in order, as a 2.1 producer would.
    async fn add21(&self, collection: &str, objects: Vec<Value>) {
        let body = json!({ "objects": objects }).to_string();
        let request = parse_envelope(body.as_bytes(), None).expect("envelope");
        let status = self
            .store
            .add_objects("feeds", collection, request)
            .await
            .expect("stored");
        assert_eq!(status.failure_count, 0, "{status:?}");
    }
}

fn objects_url(collection: &str) -> String {
    format!("/feeds/collections/{collection}/objects/")
}

fn indicator(n: u32) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--{n:08x}-0000-4000-8000-{n:012x}"),
        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
        "name": format!("C2 {n}"), "indicator_types": ["malicious-activity"],
        "pattern": format!("[ipv4-addr:value = '198.51.100.{n}']"), "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z"
    })
}

fn sdo(kind: &str, id: &str, extra: Value) -> Value {
    let mut o = json!({
        "type": kind, "spec_version": "2.1", "id": id,
        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
    });
    if let (Some(map), Value::Object(extra)) = (o.as_object_mut(), extra) {
        map.extend(extra);
    }
    o
}

/// Twelve plain indicators in `inbox`, in order.
async fn with_indicators(place: Place, versions: &str) -> Server {
    let s = server(place, versions).await;
    s.add21(INBOX, (0..12).map(indicator).collect()).await;
    s
}

/// A mix in `mixed`: eight items of types STIX 2.0 has (two of which it cannot
/// express), an observable and a location (types it lacks), and an older version.
async fn with_mix(place: Place) -> Server {
    let s = server(place, r#"["2.1", "2.0"]"#).await;
    let ind = |modified: &str| {
        sdo(
            "indicator",
            IND_A,
            json!({"modified": modified, "name": "C2", "indicator_types": ["malicious-activity"],
                   "labels": ["apt"], "confidence": 80, "created_by_ref": IDENTITY,
                   "object_marking_refs": [TLP2_GREEN],
                   "pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix",
                   "valid_from": "2024-01-01T00:00:00Z"}),
        )
    };
    s.add21(
        MIXED,
        vec![
            sdo(
                "identity",
                IDENTITY,
                json!({"name": "CERT", "identity_class": "organization"}),
            ),
            json!({"type": "marking-definition", "spec_version": "2.1", "id": TLP2_GREEN,
                   "created": "2022-10-01T00:00:00.000Z", "name": "TLP:GREEN",
                   "extensions": {"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":
                       {"extension_type": "property-extension", "tlp_2_0": "green"}}}),
            ind("2024-01-01T00:00:00.000Z"),
            ind("2024-02-01T00:00:00.123456Z"),
            sdo(
                "malware",
                MALWARE,
                json!({"name": "FERNLOADER", "malware_types": ["dropper"], "is_family": true}),
            ),
            json!({"type": "ipv4-addr", "spec_version": "2.1", "id": SCO, "value": "198.51.100.1"}),
            sdo(
                "location",
                LOCATION,
                json!({"country": "BE"}),
            ),
            sdo(
                "relationship",
                REL_OK,
                json!({"relationship_type": "indicates", "source_ref": IND_A, "target_ref": MALWARE}),
            ),
            sdo(
                "relationship",
                REL_TO_SCO,
                json!({"relationship_type": "based-on", "source_ref": IND_A, "target_ref": SCO}),
            ),
            sdo(
                "indicator",
                SIGMA,
                json!({"pattern": "title: x", "pattern_type": "sigma",
                       "valid_from": "2024-01-01T00:00:00Z"}),
            ),
            sdo(
                "indicator",
                IND_V5,
                json!({"pattern": "[domain-name:value = 'evil.example']", "pattern_type": "stix",
                       "valid_from": "2024-01-01T00:00:00Z", "created_by_ref": IDENTITY}),
            ),
        ],
    )
    .await;
    s
}

fn bundle20(objects: Vec<Value>) -> Vec<u8> {
    json!({"type": "bundle", "id": "bundle--2a6fc3a4-4c1d-4f3e-9d1c-6f6a2b0c1d2e",
           "spec_version": "2.0", "objects": objects})
    .to_string()
    .into_bytes()
}

fn indicator20(id: &str) -> Value {
    json!({"type": "indicator", "id": id,
           "created": "2024-03-01T00:00:00.000Z", "modified": "2024-03-01T00:00:00.000Z",
           "labels": ["malicious-activity"], "name": "posted in 2.0",
           "pattern": "[url:value = 'http://evil.example/']", "valid_from": "2024-03-01T00:00:00Z"})
}

fn assert_bundle(r: &Reply) {
    let b = r.json();
    assert_eq!(b["type"], "bundle");
    assert_eq!(b["spec_version"], "2.0");
    let id = b["id"].as_str().expect("bundle id");
    assert!(
        config::is_uuid_v4(id.trim_start_matches("bundle--")),
        "bundle id {id} is not a UUIDv4"
    );
    assert_ne!(
        b["objects"],
        json!([]),
        "STIX 2.0 forbids an empty objects list"
    );
    for o in r.objects() {
        assert!(
            o.get("spec_version").is_none(),
            "2.0 objects carry no spec_version: {o}"
        );
    }
}

// --- discovery and version selection ---------------------------------------------------

async fn discovery_at_taxii_in_2_0_beside_2_1(place: Place) {
    let s = server(place, r#"["2.1", "2.0"]"#).await;
    for accept in [
        Some(TAXII20),
        Some("application/vnd.oasis.taxii+json"),
        Some("*/*"),
        None,
    ] {
        for path in ["/taxii/", "/taxii"] {
            let r = s.get(path, accept, None).await;
            assert_eq!(r.status, StatusCode::OK, "{path} Accept {accept:?}");
            assert_eq!(r.content_type(), TAXII20, "{path} Accept {accept:?}");
            let d = r.json();
            assert_eq!(d["title"], "Taxiway test");
            assert_eq!(d["api_roots"], json!(["http://taxii.test/feeds/"]));
            assert_eq!(d["default"], "http://taxii.test/feeds/");
        }
    }
    let r = s.get("/taxii/", Some(TAXII21), None).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_ACCEPTABLE,
        "2.1 asked of the 2.0 discovery"
    );
    let r = s.get("/taxii2/", Some(TAXII20), None).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_ACCEPTABLE,
        "2.0 asked of the 2.1 discovery"
    );
    let r = s.get("/taxii2/", Some(TAXII21), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), TAXII21);
    let post = Request::builder()
        .method(Method::POST)
        .uri("/taxii/")
        .header(header::ACCEPT, TAXII20)
        .body(Body::empty())
        .expect("request");
    let r = s.send(post).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.content_type(), TAXII20);
}

async fn which_versions_are_served_decides_the_answers(place: Place) {
    let backend = place.backend;
    let only20 = server(place, r#"["2.0"]"#).await;
    let r = only20.get("/taxii/", None, None).await;
    assert_eq!((r.status, r.content_type()), (StatusCode::OK, TAXII20));
    let r = only20.get("/feeds/", Some("*/*"), None).await;
    assert_eq!(
        r.json()["versions"],
        json!(["taxii-2.0"]),
        "*/* means 2.0 when only 2.0 is served"
    );
    let r = only20.get("/feeds/", Some(TAXII21), None).await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    let r = only20.get("/taxii2/", Some(TAXII21), None).await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);

    let other = Place::new(backend).await;
    let only21 = server(other, r#"["2.1"]"#).await;
    let r = only21.get("/taxii/", None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = only21.get("/feeds/", Some(TAXII20), None).await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    let r = only21
        .get(
            "/feeds/",
            Some("application/vnd.oasis.taxii+json; version=3.0"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
}

async fn api_roots_are_shared_and_answer_in_the_accepted_version(place: Place) {
    let s = server(place, r#"["2.1", "2.0"]"#).await;
    for path in ["/feeds/", "/feeds"] {
        let r = s.get(path, Some(TAXII20), None).await;
        assert_eq!((r.status, r.content_type()), (StatusCode::OK, TAXII20));
        let root = r.json();
        assert_eq!(root["title"], "Threat feeds");
        assert_eq!(root["versions"], json!(["taxii-2.0"]));
        assert_eq!(root["max_content_length"], 20000);
    }
    let r = s.get("/feeds/", Some(TAXII21), None).await;
    assert_eq!(r.content_type(), TAXII21);
    assert_eq!(r.json()["versions"], json!([TAXII21]));
    let r = s.get("/nowhere/", Some(TAXII20), None).await;
    assert_eq!(
        (r.status, r.content_type()),
        (StatusCode::NOT_FOUND, TAXII20)
    );
    assert!(
        r.json()["title"].is_string(),
        "errors are TAXII error objects"
    );
}

// --- collections -----------------------------------------------------------------------

async fn collections_in_the_2_0_shape(place: Place) {
    let s = server(place, r#"["2.1", "2.0"]"#).await;
    let r = s.get("/feeds/collections/", Some(TAXII20), None).await;
    assert_eq!((r.status, r.content_type()), (StatusCode::OK, TAXII20));
    let list = r.json();
    let collections = list["collections"].as_array().expect("collections");
    assert_eq!(collections.len(), 3);
    let inbox = &collections[0];
    assert_eq!(inbox["id"], INBOX);
    assert_eq!(inbox["title"], "inbox");
    assert_eq!(inbox["description"], "Paging");
    assert_eq!(inbox["can_read"], true);
    assert_eq!(inbox["can_write"], true);
    assert_eq!(inbox["media_types"], json!([STIX20]));
    assert!(inbox.get("alias").is_none(), "alias is TAXII 2.1");
    assert_eq!(
        collections[2]["can_write"], false,
        "query collections are read-only"
    );

    let r = s
        .get(&format!("/feeds/collections/{QUERY}"), Some(TAXII20), None)
        .await;
    assert_eq!((r.status, r.content_type()), (StatusCode::OK, TAXII20));
    assert_eq!(r.json()["title"], "indicators");
    let r = s
        .get(
            "/feeds/collections/0d6b1f3e-7e4b-4d0a-9b55-3f1a5a3c2b10/",
            Some(TAXII20),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.content_type()),
        (StatusCode::NOT_FOUND, TAXII20)
    );
}

// --- objects and Range paging ----------------------------------------------------------

async fn objects_page_by_range_in_both_spellings(place: Place) {
    let s = with_indicators(place, r#"["2.1", "2.0"]"#).await;
    let url = objects_url(INBOX);
    let all: Vec<String> = (0..12)
        .map(|n| indicator(n)["id"].as_str().unwrap_or("").to_string())
        .collect();

    let r = s.get20(&url, Some("items 0-3")).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.content_type(), STIX20);
    assert_eq!(r.header("content-range"), Some("items 0-3/12"));
    assert_eq!(r.header("accept-ranges"), Some("items"));
    assert_bundle(&r);
    assert_eq!(r.ids(), all[0..4]);

    let r = s.get20(&url, Some("items=4-7")).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.header("content-range"), Some("items 4-7/12"));
    assert_eq!(r.ids(), all[4..8]);

    let r = s.get20(&url, Some("items 10-19")).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "the last page");
    assert_eq!(r.header("content-range"), Some("items 10-11/12"));
    assert_eq!(r.ids(), all[10..12]);

    let r = s.get20(&url, Some("items 0-99")).await;
    assert_eq!(
        r.header("content-range"),
        Some("items 0-9/12"),
        "capped at the maximum page size"
    );
    assert_eq!(r.ids(), all[0..10]);

    let r = s.get20(&url, Some("items 5-")).await;
    assert_eq!(r.header("content-range"), Some("items 5-11/12"));

    let r = s.get20(&url, Some("bytes=0-1")).await;
    assert_eq!(
        r.header("content-range"),
        Some("items 0-9/12"),
        "other range units are ignored"
    );

    // taxii2-client style: walk the pages until the total.
    let mut seen = Vec::new();
    let mut start = 0;
    loop {
        let r = s
            .get20(&url, Some(&format!("items={}-{}", start, start + 4)))
            .await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        seen.extend(r.ids());
        start += 5;
        if start >= 12 {
            break;
        }
    }
    assert_eq!(seen, all);
}

/// Every ranged page, walked in steps of `step` to the end, and the total each said.
async fn walk20(s: &Server, url: &str, step: u64) -> (Vec<String>, Vec<String>) {
    let (mut ids, mut totals, mut start) = (Vec::new(), Vec::new(), 0u64);
    loop {
        let r = s
            .get20(url, Some(&format!("items {}-{}", start, start + step - 1)))
            .await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{start}");
        let range = r.header("content-range").unwrap_or_default().to_string();
        let total: u64 = range
            .rsplit('/')
            .next()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        totals.push(range);
        ids.extend(r.ids());
        start += step;
        if start >= total {
            return (ids, totals);
        }
    }
}

/// Totals and offsets are remembered between requests (page_cache::positions): what
/// every page says stays what a fresh count and walk give, across appends (the total
/// grows by what was added), new versions of listed objects and removals (which
/// retire what was remembered).
async fn totals_and_offsets_follow_appends_new_versions_and_removals(place: Place) {
    let s = with_indicators(place, r#"["2.0"]"#).await;
    let url = objects_url(INBOX);
    let id = |n: u32| indicator(n)["id"].as_str().unwrap_or("").to_string();
    let (ids, totals) = walk20(&s, &url, 5).await;
    assert_eq!(ids, (0..12).map(id).collect::<Vec<_>>());
    assert_eq!(totals, ["items 0-4/12", "items 5-9/12", "items 10-11/12"]);
    // The same walk again: the same answers (now from what was remembered).
    assert_eq!(walk20(&s, &url, 5).await, (ids.clone(), totals));

    // Appends: the total grows by them, pages go on where they were.
    s.add21(INBOX, (12..15).map(indicator).collect()).await;
    let r = s.get20(&url, Some("items 10-14")).await;
    assert_eq!(r.header("content-range"), Some("items 10-14/15"));
    assert_eq!(r.ids(), (10..15).map(id).collect::<Vec<_>>());
    let r = s
        .get20(&format!("{url}?match[type]=indicator"), Some("items 0-0"))
        .await;
    assert_eq!(
        r.header("content-range"),
        Some("items 0-0/15"),
        "another selection"
    );

    // A new version of object 1: it moves to the end, the total stays.
    let mut newer = indicator(1);
    newer["modified"] = json!("2024-06-01T00:00:00.000Z");
    s.add21(INBOX, vec![newer]).await;
    let mut expected: Vec<String> = (0..15).filter(|n| *n != 1).map(id).collect();
    expected.push(id(1));
    let (ids, totals) = walk20(&s, &url, 4).await;
    assert_eq!(ids, expected);
    assert!(totals.iter().all(|t| t.ends_with("/15")), "{totals:?}");

    // A removal: one fewer, and the offsets after it shift.
    let removed = s
        .store
        .delete_object(INBOX, &id(3), &VersionMatch::all(), &[])
        .await
        .expect("delete");
    assert_eq!(removed, 1);
    expected.retain(|i| *i != id(3));
    let r = s.get20(&url, Some("items 4-7")).await;
    assert_eq!(r.header("content-range"), Some("items 4-7/14"));
    assert_eq!(r.ids(), expected[4..8]);
    let (ids, totals) = walk20(&s, &url, 4).await;
    assert_eq!(ids, expected);
    assert!(totals.iter().all(|t| t.ends_with("/14")), "{totals:?}");
}

async fn out_of_range_malformed_and_empty_pages(place: Place) {
    let s = with_indicators(place, r#"["2.0"]"#).await;
    let url = objects_url(INBOX);
    for range in ["items 12-15", "items=100-"] {
        let r = s.get20(&url, Some(range)).await;
        assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(r.header("content-range"), Some("items */12"), "{range}");
        assert_eq!(r.content_type(), TAXII20);
        assert!(r.json()["title"].is_string());
    }
    let r = s.get20(&url, Some("items 0-18446744073709551615")).await;
    assert_eq!(r.header("content-range"), Some("items 0-9/12"));
    for range in [
        "items 3-1",
        "items=a-b",
        "items 0-1,4-5",
        "items",
        "items 0-18446744073709551616",
    ] {
        let r = s.get20(&url, Some(range)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{range}");
    }
    // A valid type the collection holds none of: an empty page, still numbered.
    for range in ["items 0-4", "items=3-9"] {
        let r = s
            .get20(&format!("{url}?match[type]=malware"), Some(range))
            .await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{range}");
        let first = range
            .trim_start_matches("items")
            .trim_start_matches([' ', '=']);
        let first = first.split('-').next().unwrap_or("");
        assert_eq!(
            r.header("content-range"),
            Some(format!("items {first}-{first}/0").as_str())
        );
        assert_bundle(&r);
        assert!(r.json().get("objects").is_none());
    }
    let r = s
        .get20(
            &format!("{url}?match[type]=malware"),
            Some("items 18446744073709551615-"),
        )
        .await;
    assert_eq!(
        r.header("content-range"),
        Some("items 18446744073709551615-18446744073709551615/0")
    );
    // A type 2.0 does not have is no error either.
    let r = s
        .get20(&format!("{url}?match[type]=ipv4-addr"), Some("items 0-4"))
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.header("content-range"), Some("items 0-0/0"));
}

async fn without_range_everything_that_fits_is_a_200(place: Place) {
    let s = with_indicators(place, r#"["2.1", "2.0"]"#).await;
    let url = objects_url(INBOX);
    let r = s.get20(&url, None).await;
    assert_eq!(
        r.status,
        StatusCode::PARTIAL_CONTENT,
        "12 items > page size 10"
    );
    assert_eq!(r.header("content-range"), Some("items 0-9/12"));

    let two = format!(
        "{url}?match[id]={},{}",
        indicator(1)["id"].as_str().unwrap_or(""),
        indicator(7)["id"].as_str().unwrap_or("")
    );
    let r = s.get20(&two, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-range"), None);
    assert_eq!(r.ids().len(), 2);

    let r = s.get20(&format!("{url}?match[type]=tool"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json().get("objects").is_none());
}

async fn date_added_headers_and_added_after_polling(place: Place) {
    let s = with_indicators(place, r#"["2.1", "2.0"]"#).await;
    let url = objects_url(INBOX);
    let first = s.get20(&url, Some("items 0-3")).await;
    let f = first.header("x-taxii-date-added-first").expect("first");
    let last = first
        .header("x-taxii-date-added-last")
        .expect("last")
        .to_string();
    assert!(f < last.as_str());

    let rest = s
        .get20(&format!("{url}?added_after={last}"), Some("items 0-9"))
        .await;
    assert_eq!(rest.header("content-range"), Some("items 0-7/8"));
    let all: Vec<String> = (4..12)
        .map(|n| indicator(n)["id"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(rest.ids(), all);
    assert!(rest.header("x-taxii-date-added-first").expect("first") > last.as_str());

    let end = s.get20(&url, Some("items 11-11")).await;
    let end_last = end.header("x-taxii-date-added-last").expect("last");
    let empty = s
        .get20(&format!("{url}?added_after={end_last}"), Some("items 0-9"))
        .await;
    assert_eq!(empty.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(empty.header("content-range"), Some("items 0-0/0"));
    assert_eq!(
        empty.header("x-taxii-date-added-last"),
        Some(end_last),
        "an empty page keeps the poller's place"
    );
}

async fn filters_and_their_errors(place: Place) {
    let s = with_mix(place).await;
    let url = objects_url(MIXED);
    let r = s
        .get20(&format!("{url}?match[type]=malware,relationship"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.ids(), vec![MALWARE, REL_OK]);

    let r = s
        .get20(&format!("{url}?match[id]={IND_A}&match[version]=all"), None)
        .await;
    let versions: Vec<Value> = r.objects().iter().map(|o| o["modified"].clone()).collect();
    assert_eq!(
        versions,
        vec![
            json!("2024-01-01T00:00:00.000Z"),
            json!("2024-02-01T00:00:00.123Z")
        ]
    );
    let r = s
        .get20(
            &format!("{url}?match[id]={IND_A}&match[version]=first"),
            None,
        )
        .await;
    assert_eq!(r.objects()[0]["modified"], "2024-01-01T00:00:00.000Z");

    for q in [
        "next=abc",
        "match[spec_version]=2.0",
        "added_after=yesterday",
        "match[version]=newest",
        "match[type]=Indicator",
    ] {
        let r = s.get20(&format!("{url}?{q}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(r.content_type(), TAXII20, "{q}");
    }
}

async fn stored_2_1_objects_are_served_as_valid_2_0(place: Place) {
    let s = with_mix(place).await;
    let r = s.get20(&objects_url(MIXED), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_bundle(&r);
    // Observables and locations are not 2.0 types: neither served nor counted. The
    // relationship to an observable and the Sigma indicator are counted but left out.
    assert_eq!(
        r.ids(),
        vec![IDENTITY, TLP2_GREEN, IND_A, MALWARE, REL_OK, IND_V5_AS_V4]
    );
    let r = s.get20(&objects_url(MIXED), Some("items 0-99")).await;
    assert_eq!(r.header("content-range"), Some("items 0-7/8"));
    let r = s.get20(&objects_url(MIXED), Some("items 5-9")).await;
    assert_eq!(r.header("content-range"), Some("items 5-7/8"));
    assert_eq!(
        r.ids(),
        vec![IND_V5_AS_V4],
        "items 5 and 6 have no 2.0 form"
    );

    let r = s.get20(&objects_url(MIXED), None).await;
    let by_id = |id: &str| {
        r.objects()
            .into_iter()
            .find(|o| o["id"] == id)
            .unwrap_or_else(|| panic!("{id} not served"))
    };
    let ind = by_id(IND_A);
    assert_eq!(ind["labels"], json!(["malicious-activity", "apt"]));
    assert_eq!(ind["modified"], "2024-02-01T00:00:00.123Z");
    assert_eq!(ind["object_marking_refs"], json!([TLP1_GREEN]));
    for gone in ["indicator_types", "pattern_type", "confidence"] {
        assert!(ind.get(gone).is_none(), "{gone}");
    }
    assert_eq!(by_id(MALWARE)["labels"], json!(["dropper"]));
    assert!(by_id(MALWARE).get("is_family").is_none());
    assert_eq!(by_id(TLP2_GREEN)["definition_type"], "statement");
    assert_eq!(by_id(IND_V5_AS_V4)["labels"], json!(["unknown"]));

    // The same data on 2.1 is untouched.
    let r21 = s.get(&objects_url(MIXED), Some(TAXII21), None).await;
    assert_eq!(r21.content_type(), TAXII21);
    assert_eq!(r21.objects().len(), 10);
    assert_eq!(r21.objects()[2]["confidence"], 80);
}

async fn object_by_id(place: Place) {
    let s = with_mix(place).await;
    let url = objects_url(MIXED);
    let r = s.get20(&format!("{url}{IND_A}/"), None).await;
    assert_eq!((r.status, r.content_type()), (StatusCode::OK, STIX20));
    assert_bundle(&r);
    assert_eq!(r.objects().len(), 1);
    assert_eq!(r.objects()[0]["modified"], "2024-02-01T00:00:00.123Z");

    let r = s
        .get20(&format!("{url}{IND_A}?match[version]=all"), None)
        .await;
    assert_eq!(r.objects().len(), 2);

    // A v5 id is served as v4 and found under both.
    for id in [IND_V5_AS_V4, IND_V5] {
        let r = s.get20(&format!("{url}{id}/"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{id}");
        assert_eq!(r.ids(), vec![IND_V5_AS_V4]);
    }
    let r = s
        .get20(&format!("{url}?match[id]={IND_V5_AS_V4}"), None)
        .await;
    assert_eq!(r.ids(), vec![IND_V5_AS_V4]);

    for missing in [
        LOCATION,
        SIGMA,
        "indicator--0b3f7a2c-9d3e-4a53-8f4e-2c8d7a1b5e90",
        "not-an-id",
    ] {
        let r = s.get20(&format!("{url}{missing}/"), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(r.content_type(), TAXII20);
    }
    let r = s.get20(&format!("{url}{IND_A}/versions/"), None).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "no versions endpoint in 2.0"
    );
    let delete = Request::builder()
        .method(Method::DELETE)
        .uri(format!("{url}{IND_A}/"))
        .header(header::ACCEPT, TAXII20)
        .body(Body::empty())
        .expect("request");
    let r = s.send(delete).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "no delete in 2.0");
    assert_eq!(r.header("allow"), Some("GET"));
}

async fn manifest_pages_like_objects(place: Place) {
    let s = with_mix(place).await;
    let url = format!("/feeds/collections/{MIXED}/manifest/");
    let r = s.get(&url, Some(TAXII20), Some("items 0-2")).await;
    assert_eq!(
        (r.status, r.content_type()),
        (StatusCode::PARTIAL_CONTENT, TAXII20)
    );
    assert_eq!(r.header("content-range"), Some("items 0-2/8"));
    assert!(r.header("x-taxii-date-added-first").is_some());
    let m = r.json();
    let entries = m["objects"].as_array().expect("entries");
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2]["id"], IND_A);
    assert_eq!(entries[2]["versions"], json!(["2024-02-01T00:00:00.123Z"]));
    assert_eq!(entries[2]["media_types"], json!([STIX20]));
    assert!(entries[2]["date_added"]
        .as_str()
        .is_some_and(|d| d.ends_with('Z')));

    let r = s.get(&url, Some(TAXII20), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let ids: Vec<Value> = r.json()["objects"]
        .as_array()
        .map(|a| a.iter().map(|e| e["id"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(ids.len(), 6);

    let r = s.get(&url, Some(TAXII20), Some("items 8-9")).await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    let r = s
        .get(
            &format!("{url}?match[type]=tool"),
            Some(TAXII20),
            Some("items 0-9"),
        )
        .await;
    assert_eq!(r.json(), json!({}), "an empty manifest has no objects list");
}

// --- add objects and status ------------------------------------------------------------

async fn posted_2_0_bundles_are_stored_as_2_1(place: Place) {
    let s = server(place, r#"["2.1", "2.0"]"#).await;
    let id = "indicator--3c5e2a71-7f0b-4d8e-9a6f-1b2c3d4e5f60";
    let bad = json!({"type": "indicator", "id": "indicator--nope"});
    let r = s
        .post(
            &objects_url(INBOX),
            TAXII20,
            STIX20,
            bundle20(vec![indicator20(id), bad]),
        )
        .await;
    assert_eq!(
        (r.status, r.content_type()),
        (StatusCode::ACCEPTED, TAXII20)
    );
    let status = r.json();
    assert_eq!(status["status"], "complete");
    assert_eq!(
        (
            &status["total_count"],
            &status["success_count"],
            &status["failure_count"],
            &status["pending_count"]
        ),
        (&json!(2), &json!(1), &json!(1), &json!(0))
    );
    assert_eq!(status["successes"], json!([id]), "2.0 successes are ids");
    assert!(status["failures"][0]["message"].is_string());

    // 2.1 clients read valid 2.1.
    let r = s
        .get(&format!("{}{id}/", objects_url(INBOX)), Some(TAXII21), None)
        .await;
    let stored = &r.objects()[0];
    assert_eq!(stored["spec_version"], "2.1");
    assert_eq!(stored["indicator_types"], json!(["malicious-activity"]));
    assert_eq!(stored["pattern_type"], "stix");
    assert_eq!(stored["valid_from"], "2024-03-01T00:00:00Z");
    assert!(stored.get("labels").is_none());

    // 2.0 clients get back what they posted.
    let r = s.get20(&format!("{}{id}/", objects_url(INBOX)), None).await;
    assert_eq!(r.objects()[0], indicator20(id));

    // The status reads in either version's shape.
    let status_url = format!("/feeds/status/{}/", status["id"].as_str().unwrap_or(""));
    let r = s.get(&status_url, Some(TAXII20), None).await;
    assert_eq!((r.status, r.content_type()), (StatusCode::OK, TAXII20));
    assert_eq!(r.json()["successes"], json!([id]));
    let r = s.get(&status_url, Some(TAXII21), None).await;
    assert_eq!(r.json()["successes"][0]["id"], id);
    let r = s
        .get(
            "/feeds/status/0d6b1f3e-7e4b-4d0a-9b55-3f1a5a3c2b10/",
            Some(TAXII20),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.content_type()),
        (StatusCode::NOT_FOUND, TAXII20)
    );
}

async fn add_objects_refusals(place: Place) {
    let s = server(place, r#"["2.1", "2.0"]"#).await;
    let body = || {
        bundle20(vec![indicator20(
            "indicator--3c5e2a71-7f0b-4d8e-9a6f-1b2c3d4e5f60",
        )])
    };
    let r = s.post(&objects_url(INBOX), TAXII20, TAXII21, body()).await;
    assert_eq!(
        (r.status, r.content_type()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, TAXII20)
    );
    let r = s
        .post(&objects_url(INBOX), TAXII20, "application/json", body())
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = s.post(&objects_url(QUERY), TAXII20, STIX20, body()).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "query collections are read-only"
    );
    let r = s
        .post(&objects_url(INBOX), TAXII20, STIX20, b"[1, 2]".to_vec())
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let big = bundle20(
        (0..200)
            .map(|n| indicator20(&format!("indicator--{n:08x}-0000-4000-8000-000000000000")))
            .collect(),
    );
    assert!(big.len() > 20000);
    let r = s.post(&objects_url(INBOX), TAXII20, STIX20, big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let put = Request::builder()
        .method(Method::PUT)
        .uri(objects_url(INBOX))
        .header(header::ACCEPT, TAXII20)
        .body(Body::empty())
        .expect("request");
    let r = s.send(put).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("GET, POST"));
}

// --- bounded memory -------------------------------------------------------------------

/// A 4 KiB page budget and objects of up to 8 KiB.
const BUDGET: &str = "max_page_bytes = 4096\nmax_object_bytes = 8192";

async fn pages_stop_at_the_byte_budget(place: Place) {
    let s = server_limited(place, r#"["2.1", "2.0"]"#, BUDGET).await;
    // About 1.8 KB each as 2.0, except the third: more than the whole budget.
    let objects: Vec<Value> = [1500, 1500, 6000, 1500, 1500, 1500]
        .iter()
        .enumerate()
        .map(|(n, pad)| {
            let mut o = indicator(n as u32 + 1);
            o["description"] = json!("x".repeat(*pad));
            o
        })
        .collect();
    s.add21(INBOX, objects.clone()).await;
    let id = |n: usize| objects[n]["id"].as_str().unwrap_or_default().to_string();
    let url = objects_url(INBOX);

    // Without a Range the page is cut short, and says where it ends.
    let r = s.get20(&url, None).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.header("content-range"), Some("items 0-1/6"));
    assert_eq!(r.ids(), vec![id(0), id(1)]);
    assert_bundle(&r);

    // A client resumes after the last item it got, as taxii2-client does.
    let mut start = 0;
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    while start < 6 {
        let r = s.get20(&url, Some(&format!("items {start}-9"))).await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        let range = r.header("content-range").unwrap_or_default().to_string();
        let (first, rest) = range
            .trim_start_matches("items ")
            .split_once('-')
            .expect("a numeric range");
        let (last, total) = rest.split_once('/').expect("a total");
        assert_eq!((first, total), (start.to_string().as_str(), "6"), "{range}");
        let last: usize = last.parse().expect("last");
        assert_eq!(r.ids().len(), last + 1 - start);
        assert!(r.ids().len() == 1 || r.body.len() <= 4096 + 200);
        // The date headers are the page's.
        let first_date = s.date_added(&id(start)).await;
        let last_date = s.date_added(&id(last)).await;
        assert_eq!(
            r.header("x-taxii-date-added-first"),
            Some(first_date.as_str())
        );
        assert_eq!(
            r.header("x-taxii-date-added-last"),
            Some(last_date.as_str())
        );
        sizes.push(r.ids().len());
        got.extend(r.ids());
        start = last + 1;
    }
    assert_eq!(sizes, vec![2, 1, 2, 1]);
    assert_eq!(got, (0..6).map(id).collect::<Vec<_>>());

    // The manifest pages the same items.
    let m = s
        .get(
            &format!("/feeds/collections/{INBOX}/manifest/"),
            Some(TAXII20),
            Some("items 2-9"),
        )
        .await;
    assert_eq!(m.header("content-range"), Some("items 2-2/6"));
}

async fn posted_objects_too_large_or_with_repeated_keys_fail_alone(place: Place) {
    let s = server_limited(place, r#"["2.1", "2.0"]"#, BUDGET).await;
    let good = indicator20("indicator--3c5e2a71-7f0b-4d8e-9a6f-1b2c3d4e5f60");
    let mut large = indicator20("indicator--3c5e2a71-7f0b-4d8e-9a6f-1b2c3d4e5f61");
    large["description"] = json!("x".repeat(9000));
    let twice = indicator20("indicator--3c5e2a71-7f0b-4d8e-9a6f-1b2c3d4e5f62")
        .to_string()
        .replacen('{', r#"{"labels":["benign"],"#, 1);
    let body = format!(
        r#"{{"type":"bundle","id":"bundle--2a6fc3a4-4c1d-4f3e-9d1c-6f6a2b0c1d2e","spec_version":"2.0","objects":[{good},{large},{twice}]}}"#
    );
    let r = s
        .post(&objects_url(INBOX), TAXII20, STIX20, body.into_bytes())
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let status = r.json();
    assert_eq!(
        (&status["success_count"], &status["failure_count"]),
        (&json!(1), &json!(2)),
        "{status}"
    );
    let messages: Vec<String> = status["failures"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| f["message"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("more than the 8192 bytes")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with(r#"duplicate key "labels""#)),
        "{messages:?}"
    );
    let r = s.get20(&objects_url(INBOX), None).await;
    assert_eq!(r.ids(), vec![good["id"].as_str().unwrap_or_default()]);
}

async fn unknown_match_fields_are_ignored_on_objects_and_manifest(place: Place) {
    let s = with_mix(place).await;
    for url in [
        objects_url(MIXED),
        format!("/feeds/collections/{MIXED}/manifest/"),
    ] {
        let unfiltered = s.get20(&url, None).await;
        assert_eq!(unfiltered.status, StatusCode::OK);
        for q in [
            "match[x_vendor_field]=anything",
            "match[added_after]=2099-01-01T00:00:00Z",
        ] {
            let r = s.get20(&format!("{url}?{q}"), None).await;
            assert_eq!(r.status, StatusCode::OK, "{url}?{q}");
            assert_eq!(
                r.json()["objects"],
                unfiltered.json()["objects"],
                "{url}?{q} is unfiltered (bundle ids differ)"
            );
        }
        let r = s
            .get20(
                &format!("{url}?match[type]=malware&match[x_vendor_field]=1"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["objects"].as_array().map(Vec::len), Some(1));
        let r = s
            .get20(
                &format!("{url}?match[type]=NotAType&match[x_vendor_field]=1"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.content_type(), TAXII20);
    }
}
