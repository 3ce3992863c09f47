//! In-process HTTP tests of every TAXII 2.1 endpoint, filter and error status, on
//! every store backend (PostgreSQL with `--include-ignored` and `TAXIWAY_TEST_POSTGRES_URL`).

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::backend::Place;
use common::*;
use serde_json::{json, Value};

on_every_backend!(
    discovery_lists_absolute_api_roots_and_a_default,
    accept_variants_real_consumers_send,
    api_root_and_collections,
    add_objects_reports_per_object_failures_and_duplicates_are_fine,
    add_objects_errors,
    objects_are_served_raw_in_date_added_order_with_headers,
    paging_with_next_is_stateless_and_bound_to_filters,
    malformed_filters_are_400_never_500,
    version_type_id_and_spec_version_filters,
    object_versions_manifest_and_delete,
    query_collections_follow_ingest_with_their_own_date_added,
    query_collections_hold_the_latest_version_only_while_it_matches,
    pages_stop_at_the_byte_budget_and_resume_after_the_last_object,
    object_versions_page_by_the_byte_budget_too,
    objects_too_large_or_with_repeated_keys_fail_alone,
    unknown_match_fields_are_ignored_on_objects_and_manifest,
    versions_are_listed_as_each_object_writes_them,
);

fn assert_taxii_error(
    status: StatusCode,
    headers: &axum::http::HeaderMap,
    body: &Value,
    expected: StatusCode,
) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], TAXII21);
    assert!(body["title"].is_string(), "error body has a title: {body}");
    assert_eq!(body["http_status"], expected.as_u16().to_string());
}

async fn discovery_lists_absolute_api_roots_and_a_default(place: Place) {
    let app = TestApp::on(place, config("type:indicator")).await;
    for path in ["/taxii2/", "/taxii2"] {
        let req = Request::get(path)
            .header(header::HOST, "taxii.example:8443")
            .body(Body::empty())
            .expect("req");
        let (s, h, b) = app.send(req).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h[header::CONTENT_TYPE], TAXII21);
        let v: Value = serde_json::from_slice(&b).expect("json");
        assert_eq!(v["title"], "Taxiway test");
        assert_eq!(v["default"], "http://taxii.example:8443/feeds/");
        assert_eq!(
            v["api_roots"],
            json!([
                "http://taxii.example:8443/feeds/",
                "http://taxii.example:8443/empty/"
            ])
        );
    }
}

async fn accept_variants_real_consumers_send(place: Place) {
    let app = TestApp::on(place, config("type:indicator")).await;
    for accept in [
        None,
        Some("application/taxii+json"),
        Some("*/*"),
        Some("application/json"),
        Some("application/json, text/plain, */*"),
        Some(TAXII21),
    ] {
        let mut req = Request::get("/taxii2/");
        if let Some(a) = accept {
            req = req.header(header::ACCEPT, a);
        }
        let (s, h, _) = app.send(req.body(Body::empty()).expect("req")).await;
        assert_eq!(s, StatusCode::OK, "{accept:?}");
        assert_eq!(h[header::CONTENT_TYPE], TAXII21);
    }
    for accept in [
        "application/taxii+json;version=3.0",
        "text/html",
        "application/vnd.oasis.taxii+json; version=2.0",
    ] {
        let (s, h, b) = app
            .send(
                Request::get("/taxii2/")
                    .header(header::ACCEPT, accept)
                    .body(Body::empty())
                    .expect("req"),
            )
            .await;
        let v: Value = serde_json::from_slice(&b).expect("json");
        assert_taxii_error(s, &h, &v, StatusCode::NOT_ACCEPTABLE);
    }
}

async fn api_root_and_collections(place: Place) {
    let app = TestApp::on(place, config("type:indicator")).await;
    let (s, _, root) = app.get("/feeds").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(root["versions"], json!([TAXII21]));
    assert_eq!(root["max_content_length"], 65536);

    let (s, _, list) = app.get("/feeds/collections/").await;
    assert_eq!(s, StatusCode::OK);
    let cols = list["collections"].as_array().expect("collections");
    assert_eq!(cols.len(), 3);
    assert_eq!(cols[0]["id"], INBOX);
    assert_eq!(cols[0]["can_write"], true);
    assert_eq!(cols[0]["alias"], "inbox-alias");
    assert_eq!(cols[1]["can_write"], false);
    assert_eq!(cols[1]["can_read"], true);

    let (s, _, c) = app.get(&format!("/feeds/collections/{INDICATORS}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c["title"], "Indicators");
    assert_eq!(
        c["media_types"],
        json!(["application/stix+json;version=2.1"])
    );

    // An API root without collections: no empty list.
    let (s, _, empty) = app.get("/empty/collections/").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(empty, json!({}));

    for path in [
        "/nope/",
        "/nope/collections/",
        &format!("/empty/collections/{INBOX}/"),
        "/feeds/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/objects/",
        "/feeds/whatever/",
        "/",
    ] {
        let (s, h, v) = app.get(path).await;
        assert_taxii_error(s, &h, &v, StatusCode::NOT_FOUND);
    }
}

async fn add_objects_reports_per_object_failures_and_duplicates_are_fine(place: Place) {
    let app = TestApp::on(place, config("type:indicator")).await;
    let bad = json!({"type": "indicator", "spec_version": "2.1", "id": "indicator--not-a-uuid"});
    let (s, status) = app
        .post(
            INBOX,
            vec![indicator(1, 1, "198.51.100.1", 90), bad, malware(1)],
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(status["status"], "complete");
    assert_eq!(status["total_count"], 3);
    assert_eq!(status["success_count"], 2);
    assert_eq!(status["failure_count"], 1);
    assert_eq!(status["pending_count"], 0);
    assert!(status["failures"][0]["message"]
        .as_str()
        .expect("message")
        .contains("invalid id"));

    let (s, again) = app
        .post(INBOX, vec![indicator(1, 1, "198.51.100.1", 90)])
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(again["success_count"], 1);
    let (_, _, page) = app.get(&objects_url(INBOX)).await;
    assert_eq!(ids(&page).len(), 2, "the duplicate was not stored twice");

    // The status resource is kept and readable.
    let id = status["id"].as_str().expect("id");
    let (s, _, kept) = app.get(&format!("/feeds/status/{id}/")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(kept, status);
    let (s, h, v) = app
        .get("/feeds/status/91a7b528-80eb-42ed-a74d-c6fbd5a26116/")
        .await;
    assert_taxii_error(s, &h, &v, StatusCode::NOT_FOUND);
    let (s, h, v) = app.get(&format!("/empty/status/{id}/")).await;
    assert_taxii_error(s, &h, &v, StatusCode::NOT_FOUND);
}

async fn add_objects_errors(place: Place) {
    let app = TestApp::on(place, config("type:indicator")).await;
    let post = |ct: &str, body: Body| {
        Request::post(objects_url(INBOX))
            .header(header::CONTENT_TYPE, ct)
            .body(body)
            .expect("req")
    };
    let cases = [
        (
            post("application/json", Body::from("{}")),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            post("application/taxii+json;version=2.2", Body::from("{}")),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            post(TAXII21, Body::from("not json")),
            StatusCode::BAD_REQUEST,
        ),
        (
            post(TAXII21, Body::from("[1,2,3]")),
            StatusCode::BAD_REQUEST,
        ),
        (
            post(TAXII21, Body::from(vec![0xff, 0xfe])),
            StatusCode::BAD_REQUEST,
        ),
        (
            post(
                TAXII21,
                Body::from(format!("{{\"objects\":[\"{}\"]}}", "x".repeat(70_000))),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (req, expected) in cases {
        let (s, h, b) = app.send(req).await;
        let v: Value = serde_json::from_slice(&b).expect("json");
        assert_taxii_error(s, &h, &v, expected);
    }
    // A body announced larger than the limit is refused from its Content-Length.
    let req = Request::post(objects_url(INBOX))
        .header(header::CONTENT_TYPE, TAXII21)
        .header(header::CONTENT_LENGTH, "1000000")
        .body(Body::from("{}"))
        .expect("req");
    assert_eq!(app.send(req).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // Just under the limit is fine.
    let padding = "x".repeat(60_000);
    let body = json!({"objects": [], "padding": padding}).to_string();
    assert_eq!(
        app.send(post(TAXII21, Body::from(body))).await.0,
        StatusCode::ACCEPTED
    );
    // Query collections are read-only.
    let (s, v) = app
        .post(INDICATORS, vec![indicator(1, 1, "198.51.100.1", 90)])
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // Unsupported method.
    let (s, h, b) = app
        .send(
            Request::put(objects_url(INBOX))
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    let v: Value = serde_json::from_slice(&b).expect("json");
    assert_taxii_error(s, &h, &v, StatusCode::METHOD_NOT_ALLOWED);
}

async fn objects_are_served_raw_in_date_added_order_with_headers(place: Place) {
    let app = TestApp::on(place, config("type:indicator")).await;
    let raw = r#"{"type":"malware","spec_version":"2.1","id":"malware--00000009-0000-4000-8000-000000000000","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","name":"  spaced  ","is_family":true,"x_order":[3,1,2]}"#;
    let body = format!(r#"{{"objects":[{raw}]}}"#);
    let req = Request::post(objects_url(INBOX))
        .header(header::CONTENT_TYPE, TAXII21)
        .body(Body::from(body))
        .expect("req");
    assert_eq!(app.send(req).await.0, StatusCode::ACCEPTED);
    app.post(
        INBOX,
        vec![
            indicator(1, 1, "198.51.100.1", 90),
            indicator(2, 1, "198.51.100.2", 10),
        ],
    )
    .await;

    let (s, h, body) = app.send(get(&objects_url(INBOX))).await;
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8(body).expect("utf8");
    assert!(text.contains(raw), "object bytes served exactly as stored");
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["more"], false);
    assert!(v.get("next").is_none());
    assert_eq!(ids(&v)[0], "malware--00000009-0000-4000-8000-000000000000");
    let first = h["x-taxii-date-added-first"].to_str().expect("first");
    let last = h["x-taxii-date-added-last"].to_str().expect("last");
    assert!(first < last);
    assert_eq!(last.len(), "2024-01-01T00:00:00.000000Z".len());

    // A Content-Type header on a GET is ignored.
    let req = Request::get(objects_url(INBOX))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::empty())
        .expect("req");
    assert_eq!(app.send(req).await.0, StatusCode::OK);

    // Polling from the Last header returns nothing new, and an empty page has no list.
    let (s, h, v) = app
        .get(&format!("{}?added_after={last}", objects_url(INBOX)))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"more": false}));
    assert_eq!(
        h["x-taxii-date-added-last"].to_str().expect("last"),
        last,
        "an empty page keeps the poller's place"
    );
    // Millisecond-truncated Last (OpenCTI) still excludes nothing new but includes later commits.
    app.post(INBOX, vec![malware(10)]).await;
    let (_, _, v) = app
        .get(&format!("{}?added_after={last}", objects_url(INBOX)))
        .await;
    assert_eq!(
        ids(&v),
        vec!["malware--0000000a-0000-4000-8000-000000000000"]
    );
}

async fn paging_with_next_is_stateless_and_bound_to_filters(place: Place) {
    let app = TestApp::on(place, config("type:indicator")).await;
    let objects: Vec<Value> = (0..45)
        .map(|n| indicator(n, 1, &format!("203.0.113.{n}"), 50))
        .collect();
    app.post(INBOX, objects).await;
    let url = objects_url(INBOX);

    let mut seen = Vec::new();
    let (_, _, mut page) = app
        .get(&format!("{url}?limit=10&match[type]=indicator"))
        .await;
    loop {
        let got = ids(&page);
        assert!(!got.is_empty(), "more:true pages are never empty");
        seen.extend(got);
        if page["more"] == false {
            assert!(page.get("next").is_none(), "the last page has no next");
            break;
        }
        let next = page["next"].as_str().expect("next with more").to_string();
        // next alone; with the same filters repeated; with a different limit — all fine.
        let variants = [
            format!("{url}?next={next}"),
            format!("{url}?next={next}&match[type]=indicator&limit=10"),
            format!("{url}?limit=10&next={next}"),
        ];
        let (s0, _, p0) = app.get(&variants[0]).await;
        let (s1, _, p1) = app.get(&variants[1]).await;
        assert_eq!((s0, s1), (StatusCode::OK, StatusCode::OK));
        assert_eq!(ids(&p1), ids(&p0)[..ids(&p1).len()].to_vec());
        let (_, _, p2) = app.get(&variants[2]).await;
        page = p2;
    }
    assert_eq!(seen.len(), 45);
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 45, "no duplicates across pages");

    let (_, _, first) = app
        .get(&format!("{url}?limit=10&match[type]=indicator"))
        .await;
    let next = first["next"].as_str().expect("next");
    let (s, h, v) = app
        .get(&format!("{url}?next={next}&match[type]=malware"))
        .await;
    assert_taxii_error(s, &h, &v, StatusCode::BAD_REQUEST);
    let (s, h, v) = app
        .get(&format!(
            "/feeds/collections/{INDICATORS}/objects/?next={next}"
        ))
        .await;
    assert_taxii_error(s, &h, &v, StatusCode::BAD_REQUEST);
    let (s, h, v) = app.get(&format!("{url}?next=garbage")).await;
    assert_taxii_error(s, &h, &v, StatusCode::BAD_REQUEST);

    // limit above the server maximum is lowered silently; the default applies without one.
    app.post(INBOX, (100..110).map(malware).collect()).await;
    let (_, _, big) = app.get(&format!("{url}?limit=100000")).await;
    assert_eq!(ids(&big).len(), 50, "capped at max_page_size");
    assert_eq!(big["more"], true);
    let (_, _, default) = app.get(&url).await;
    assert_eq!(ids(&default).len(), 20);
    assert_eq!(default["more"], true);
}

async fn malformed_filters_are_400_never_500(place: Place) {
    let app = TestApp::on(place, config("type:indicator")).await;
    let url = objects_url(INBOX);
    for q in [
        "limit=0",
        "limit=-5",
        "limit=ten",
        "added_after=yesterday",
        "added_after=2024-02-30T00:00:00Z",
        "match[version]=newest",
        "match[id]=../../../etc/passwd",
        "match[type]=NotAType",
        "match[spec_version]=x",
        "match[foo]=bar&match[type]=NotAType",
    ] {
        let (s, h, v) = app.get(&format!("{url}?{q}")).await;
        assert_taxii_error(s, &h, &v, StatusCode::BAD_REQUEST);
    }
}

async fn version_type_id_and_spec_version_filters(place: Place) {
    let app = TestApp::on(place, config("type:indicator")).await;
    app.post(INBOX, vec![indicator(1, 1, "198.51.100.1", 90), malware(1)])
        .await;
    app.post(
        INBOX,
        vec![
            indicator(1, 3, "198.51.100.1", 95),
            indicator(1, 2, "198.51.100.1", 92),
        ],
    )
    .await;
    let url = objects_url(INBOX);
    let id = "indicator--00000001-0000-4000-8000-000000000000";
    let modified = |v: &Value| -> Vec<String> {
        v["objects"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|o| o["id"] == id)
                    .map(|o| o["modified"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (_, _, last) = app.get(&url).await;
    assert_eq!(
        modified(&last),
        vec!["2024-01-03T00:00:00.000Z"],
        "default is the last version"
    );
    let (_, _, all) = app.get(&format!("{url}?match[version]=all")).await;
    assert_eq!(modified(&all).len(), 3);
    let (_, _, first) = app.get(&format!("{url}?match[version]=first")).await;
    assert_eq!(modified(&first), vec!["2024-01-01T00:00:00.000Z"]);
    let (_, _, both) = app.get(&format!("{url}?match[version]=first,last")).await;
    assert_eq!(modified(&both).len(), 2);
    let (_, _, at) = app
        .get(&format!("{url}?match[version]=2024-01-02T00:00:00Z"))
        .await;
    assert_eq!(modified(&at), vec!["2024-01-02T00:00:00.000Z"]);
    let (_, _, t) = app.get(&format!("{url}?match[type]=malware")).await;
    assert_eq!(
        ids(&t),
        vec!["malware--00000001-0000-4000-8000-000000000000"]
    );
    let (_, _, t) = app
        .get(&format!("{url}?match[type]=malware,indicator"))
        .await;
    assert_eq!(ids(&t).len(), 2);
    let (_, _, none) = app.get(&format!("{url}?match[type]=tool")).await;
    assert_eq!(
        none,
        json!({"more": false}),
        "a type the server holds none of is not an error"
    );
    let (_, _, i) = app
        .get(&format!("{url}?match[id]={id}&match[version]=all"))
        .await;
    assert_eq!(ids(&i).len(), 3);
    let (_, _, sv) = app.get(&format!("{url}?match[spec_version]=2.0")).await;
    assert_eq!(sv, json!({"more": false}));
    let (_, _, sv) = app.get(&format!("{url}?match[spec_version]=2.1")).await;
    assert_eq!(ids(&sv).len(), 2);
}

async fn object_versions_manifest_and_delete(place: Place) {
    let app = TestApp::on(place, config("type:indicator")).await;
    app.post(
        INBOX,
        vec![
            indicator(1, 1, "198.51.100.1", 90),
            indicator(1, 2, "198.51.100.1", 90),
            malware(1),
        ],
    )
    .await;
    let id = "indicator--00000001-0000-4000-8000-000000000000";
    let obj = format!("/feeds/collections/{INBOX}/objects/{id}");

    let (s, h, v) = app.get(&obj).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h.contains_key("x-taxii-date-added-first"));
    assert_eq!(v["objects"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["objects"][0]["modified"], "2024-01-02T00:00:00.000Z");
    let (_, _, v) = app.get(&format!("{obj}/?match[version]=all")).await;
    assert_eq!(v["objects"].as_array().map(Vec::len), Some(2));
    let (s, h, v) = app.get(&format!("{obj}/?match[type]=indicator")).await;
    assert_taxii_error(s, &h, &v, StatusCode::BAD_REQUEST);

    let (s, h, versions) = app.get(&format!("{obj}/versions/")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h.contains_key("x-taxii-date-added-last"));
    assert_eq!(
        versions["versions"],
        json!(["2024-01-01T00:00:00.000Z", "2024-01-02T00:00:00.000Z"]),
        "each version as the object writes its modified"
    );
    let (_, _, paged) = app.get(&format!("{obj}/versions?limit=1")).await;
    assert_eq!(paged["more"], true);
    let next = paged["next"].as_str().expect("next");
    let (_, _, rest) = app.get(&format!("{obj}/versions?next={next}")).await;
    assert_eq!(rest["versions"], json!(["2024-01-02T00:00:00.000Z"]));

    let (s, h, manifest) = app
        .get(&format!("/feeds/collections/{INBOX}/manifest/"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(h.contains_key("x-taxii-date-added-first"));
    let records = manifest["objects"].as_array().expect("records");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["id"], id);
    assert_eq!(records[0]["version"], "2024-01-02T00:00:00.000000Z");
    assert_eq!(
        records[0]["media_type"],
        "application/stix+json;version=2.1"
    );
    assert!(records[0]["date_added"]
        .as_str()
        .expect("date")
        .ends_with('Z'));

    let missing = format!(
        "/feeds/collections/{INBOX}/objects/indicator--99999999-0000-4000-8000-000000000000/"
    );
    for path in [
        missing.clone(),
        format!("{missing}versions/"),
        format!("/feeds/collections/{INBOX}/objects/not-an-id/"),
    ] {
        let (s, h, v) = app.get(&path).await;
        assert_taxii_error(s, &h, &v, StatusCode::NOT_FOUND);
    }

    // The query collection holds the indicator until it is deleted from its source.
    let in_query = format!("/feeds/collections/{INDICATORS}/objects/{id}/");
    assert_eq!(app.get(&in_query).await.0, StatusCode::OK);
    let (s, _, _) = app
        .send(
            Request::delete(format!("{obj}/?match[version]=2024-01-01T00:00:00Z"))
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, _, versions) = app.get(&format!("{obj}/versions/")).await;
    assert_eq!(versions["versions"], json!(["2024-01-02T00:00:00.000Z"]));
    let (s, _, _) = app
        .send(
            Request::delete(format!("{obj}/"))
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = app.get(&obj).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&in_query).await.0, StatusCode::NOT_FOUND);
    let (s, _, _) = app
        .send(
            Request::delete(format!("{obj}/"))
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Deleting from a query collection is refused.
    let (s, _, _) = app.send(Request::delete(format!("/feeds/collections/{MALWARE}/objects/malware--00000001-0000-4000-8000-000000000000/")).body(Body::empty()).expect("req")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

async fn query_collections_follow_ingest_with_their_own_date_added(place: Place) {
    let app = TestApp::on(place, config("type:indicator")).await;
    app.post(
        INBOX,
        vec![indicator(1, 1, "198.51.100.1", 90), malware(1), malware(2)],
    )
    .await;
    let (_, _, ind) = app.get(&objects_url(INDICATORS)).await;
    assert_eq!(
        ids(&ind),
        vec!["indicator--00000001-0000-4000-8000-000000000000"]
    );
    let (_, _, mal) = app.get(&objects_url(MALWARE)).await;
    assert_eq!(ids(&mal).len(), 2);
    let (_, h, _) = app.get(&objects_url(INDICATORS)).await;
    let last = h["x-taxii-date-added-last"]
        .to_str()
        .expect("last")
        .to_string();
    app.post(INBOX, vec![indicator(2, 1, "198.51.100.2", 90)])
        .await;
    let (_, _, newer) = app
        .get(&format!("{}?added_after={last}", objects_url(INDICATORS)))
        .await;
    assert_eq!(
        ids(&newer),
        vec!["indicator--00000002-0000-4000-8000-000000000000"]
    );
}

async fn query_collections_hold_the_latest_version_only_while_it_matches(place: Place) {
    let app = TestApp::on(place, config("type:indicator and confidence:>=50")).await;
    let id = "indicator--00000001-0000-4000-8000-000000000000";
    app.post(INBOX, vec![indicator(1, 1, "198.51.100.1", 90)])
        .await;
    let (_, h, v) = app.get(&objects_url(INDICATORS)).await;
    assert_eq!(ids(&v), vec![id]);
    let before = h["x-taxii-date-added-last"]
        .to_str()
        .expect("last")
        .to_string();

    // A newer matching version replaces the old one with a fresh date_added.
    app.post(INBOX, vec![indicator(1, 2, "198.51.100.1", 80)])
        .await;
    let (_, _, v) = app
        .get(&format!(
            "{}?added_after={before}&match[version]=all",
            objects_url(INDICATORS)
        ))
        .await;
    assert_eq!(v["objects"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["objects"][0]["confidence"], 80);

    // A late-arriving older version changes nothing.
    app.post(INBOX, vec![indicator(1, 1, "198.51.100.1", 10)])
        .await;
    let (_, _, v) = app.get(&objects_url(INDICATORS)).await;
    assert_eq!(v["objects"][0]["confidence"], 80);

    // A newer version that no longer matches takes the object out of the view.
    app.post(INBOX, vec![indicator(1, 3, "198.51.100.1", 20)])
        .await;
    let (_, _, v) = app
        .get(&format!("{}?match[version]=all", objects_url(INDICATORS)))
        .await;
    assert_eq!(v, json!({"more": false}));

    // Deleting that version brings the previous (matching) one back.
    let obj = format!("/feeds/collections/{INBOX}/objects/{id}/?match[version]=last");
    assert_eq!(
        app.send(Request::delete(obj).body(Body::empty()).expect("req"))
            .await
            .0,
        StatusCode::OK
    );
    let (_, _, v) = app.get(&objects_url(INDICATORS)).await;
    assert_eq!(v["objects"][0]["confidence"], 80);
}

// --- bounded memory: the page byte budget, the object size limit, repeated keys ---------

/// The test config with a 4 KiB page budget and objects of up to 8 KiB (larger than a
/// page, so that a page holding one object over the budget can be seen).
fn budget_config() -> taxiway_server::config::ServiceConfig {
    taxiway_server::config::parse(&config_text("type:indicator").replace(
        "max_content_length = 65536",
        "max_content_length = 65536\nmax_page_bytes = 4096\nmax_object_bytes = 8192",
    ))
    .expect("config")
}

/// An indicator whose description is `pad` bytes long.
fn padded(n: u32, version: u32, pad: usize) -> Value {
    let mut o = indicator(n, version, "198.51.100.7", 50);
    o["description"] = json!("x".repeat(pad));
    o
}

fn id_of(o: &Value) -> String {
    o["id"].as_str().unwrap_or_default().to_string()
}

/// Every page from `first`, following `next` (with `first`'s parameters); each page's objects' ids, with its date
/// headers checked against the manifest's `date_added`s (`added`: id and version).
async fn every_page(app: &TestApp, first: &str, added: &Added) -> Vec<Vec<String>> {
    let (base, query) = first.split_once('?').unwrap_or((first, ""));
    let mut url = first.to_string();
    let mut pages = Vec::new();
    for _ in 0..50 {
        let (s, h, page) = app.get(&url).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let objects = page["objects"].as_array().cloned().unwrap_or_default();
        assert!(!objects.is_empty(), "a page holds at least one object");
        let bytes: usize = objects.iter().map(|o| o.to_string().len()).sum();
        assert!(
            objects.len() == 1 || bytes <= 4096,
            "{} objects, {bytes} bytes",
            objects.len()
        );
        let date_of = |o: &Value| {
            let key = (id_of(o), micros(&o["modified"]));
            added.get(&key).cloned().unwrap_or_default()
        };
        let header = |name: &str| h[name].to_str().unwrap_or_default().to_string();
        assert_eq!(header("x-taxii-date-added-first"), date_of(&objects[0]));
        assert_eq!(
            header("x-taxii-date-added-last"),
            date_of(&objects[objects.len() - 1])
        );
        pages.push(objects.iter().map(id_of).collect());
        if page["more"] == true {
            let next = page["next"].as_str().expect("a next with more");
            // The original parameters repeated: the same filters, the same limit.
            url = format!("{base}?next={next}&{query}");
        } else {
            assert!(page.get("next").is_none());
            return pages;
        }
    }
    panic!("paging did not end");
}

/// `date_added` of object versions, by id and version (microseconds).
type Added = std::collections::HashMap<(String, i64), String>;

fn micros(timestamp: &Value) -> i64 {
    taxiway_server::stix::timestamp::parse_timestamp(timestamp.as_str().unwrap_or_default())
        .unwrap_or_default()
}

/// `date_added` of every object version of `inbox`.
async fn added_dates(app: &TestApp) -> Added {
    let (_, _, manifest) = app
        .get(&format!(
            "/feeds/collections/{INBOX}/manifest/?match[version]=all&limit=50"
        ))
        .await;
    manifest["objects"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let text = |f: &str| r[f].as_str().unwrap_or_default().to_string();
            ((text("id"), micros(&r["version"])), text("date_added"))
        })
        .collect()
}

async fn pages_stop_at_the_byte_budget_and_resume_after_the_last_object(place: Place) {
    let app = TestApp::on(place, budget_config()).await;
    // About 1.9 KB each, except the third: 6.4 KB, more than the whole budget.
    let objects: Vec<Value> = [1500, 1500, 6000, 1500, 1500, 1500]
        .iter()
        .enumerate()
        .map(|(n, pad)| padded(n as u32 + 1, 1, *pad))
        .collect();
    let (s, status) = app.post(INBOX, objects.clone()).await;
    assert_eq!(
        (s, &status["success_count"]),
        (StatusCode::ACCEPTED, &json!(6))
    );
    let added = added_dates(&app).await;
    let id = |n: usize| id_of(&objects[n]);

    let pages = every_page(&app, &format!("{}?limit=50", objects_url(INBOX)), &added).await;
    assert_eq!(
        pages,
        vec![
            vec![id(0), id(1)],
            vec![id(2)],
            vec![id(3), id(4)],
            vec![id(5)]
        ],
        "stopped before the object that would overflow; one object alone may"
    );

    // `limit` still applies within the budget, and filters stay with the cursor.
    let pages = every_page(&app, &format!("{}?limit=1", objects_url(INBOX)), &added).await;
    assert_eq!(pages.len(), 6);
    let first = format!("{}?match[type]=indicator&limit=50", objects_url(INBOX));
    let pages = every_page(&app, &first, &added).await;
    assert_eq!(pages.concat(), (0..6).map(id).collect::<Vec<_>>());

    // The budget left after the last object is no reason to say `more`.
    let (_, _, last) = app
        .get(&format!(
            "{}?added_after={}",
            objects_url(INBOX),
            added[&(id(3), micros(&objects[3]["modified"]))]
        ))
        .await;
    assert_eq!(ids(&last), vec![id(4), id(5)]);
    assert_eq!(last["more"], false);
}

async fn object_versions_page_by_the_byte_budget_too(place: Place) {
    let app = TestApp::on(place, budget_config()).await;
    let versions: Vec<Value> = (1..=5).map(|v| padded(9, v, 1500)).collect();
    let (s, _) = app.post(INBOX, versions.clone()).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let added = added_dates(&app).await;
    let url = format!(
        "{}{}/?match[version]=all",
        objects_url(INBOX),
        id_of(&versions[0])
    );
    let pages = every_page(&app, &url, &added).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
    // The manifest and versions list only metadata: one page.
    let (_, _, listed) = app
        .get(&format!(
            "{}{}/versions/",
            objects_url(INBOX),
            id_of(&versions[0])
        ))
        .await;
    assert_eq!(listed["versions"].as_array().map(Vec::len), Some(5));
}

async fn objects_too_large_or_with_repeated_keys_fail_alone(place: Place) {
    let app = TestApp::on(place, budget_config()).await;
    let post = |body: String| {
        Request::post(objects_url(INBOX))
            .header(header::CONTENT_TYPE, TAXII21)
            .header(header::ACCEPT, TAXII21)
            .body(Body::from(body))
            .expect("request")
    };
    let good = indicator(1, 1, "198.51.100.1", 50);
    let large = padded(2, 1, 9000);
    let other_id = "indicator--00000063-0000-4000-8000-000000000000";
    let two_ids = indicator(3, 1, "198.51.100.3", 50).to_string().replacen(
        '{',
        &format!(r#"{{"id":"{other_id}","#),
        1,
    );
    let red = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1";
    let white = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9";
    let mut marked = indicator(4, 1, "198.51.100.4", 50);
    marked["object_marking_refs"] = json!([red]);
    let two_markings =
        marked
            .to_string()
            .replacen('{', &format!(r#"{{"object_marking_refs":["{white}"],"#), 1);
    let mut referenced = indicator(5, 1, "198.51.100.5", 50);
    referenced["external_references"] = json!([{"source_name": "a", "url": "https://a.example/"}]);
    let deep = referenced.to_string().replacen(
        r#""source_name":"a""#,
        r#""source_name":"a","source_name":"b""#,
        1,
    );
    let body = format!(r#"{{"objects":[{good},{large},{two_ids},{two_markings},{deep}]}}"#);
    let (s, _, b) = app.send(post(body)).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let status: Value = serde_json::from_slice(&b).expect("status");
    assert_eq!(
        (
            &status["total_count"],
            &status["success_count"],
            &status["failure_count"]
        ),
        (&json!(5), &json!(1), &json!(4)),
        "{status}"
    );
    let failures = status["failures"].as_array().cloned().unwrap_or_default();
    let failure = |needle: &str| {
        failures
            .iter()
            .find(|f| f["message"].as_str().unwrap_or_default().contains(needle))
            .cloned()
            .unwrap_or_else(|| panic!("no failure saying {needle}: {status}"))
    };
    let too_large = failure("more than the 8192 bytes");
    assert_eq!(too_large["id"], id_of(&large), "the id is still reported");
    let ambiguous = failure(r#"duplicate key "id""#);
    assert!(
        ambiguous["id"].as_str().unwrap_or_default().is_empty(),
        "which of two ids is meant cannot be told: {ambiguous}"
    );
    assert_eq!(
        failure(r#"duplicate key "object_marking_refs""#)["id"],
        id_of(&marked)
    );
    assert_eq!(
        failure(r#"duplicate key "source_name""#)["id"],
        id_of(&referenced)
    );

    let (_, _, page) = app.get(&objects_url(INBOX)).await;
    assert_eq!(
        ids(&page),
        vec![id_of(&good)],
        "only the good object was stored"
    );
    let (_, _, page) = app
        .get(&format!("{}?match[id]={other_id}", objects_url(INBOX)))
        .await;
    assert_eq!(page["more"], false);
    assert!(ids(&page).is_empty());

    // A repeated `objects` is the envelope's own ambiguity: the whole request is refused.
    let (s, _, _) = app
        .send(post(format!(r#"{{"objects":[],"objects":[{good}]}}"#)))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

async fn unknown_match_fields_are_ignored_on_objects_and_manifest(place: Place) {
    let app = TestApp::on(place, config("type:indicator")).await;
    app.post(
        INBOX,
        vec![
            indicator(1, 1, "198.51.100.1", 90),
            indicator(2, 1, "198.51.100.2", 10),
            malware(1),
        ],
    )
    .await;
    let objects = objects_url(INBOX);
    let manifest = format!("/feeds/collections/{INBOX}/manifest/");
    for url in [&objects, &manifest] {
        let (s, _, unfiltered) = app.get(url).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(ids(&unfiltered).len(), 3);
        for q in [
            "match[x_vendor_field]=anything",
            "match%5Bx_vendor_field%5D=a,b",
            "match[added_after]=2099-01-01T00:00:00Z",
            "match[added_after]=not-a-date",
        ] {
            let (s, _, v) = app.get(&format!("{url}?{q}")).await;
            assert_eq!(s, StatusCode::OK, "{url}?{q}: {v}");
            assert_eq!(ids(&v), ids(&unfiltered), "{url}?{q} is unfiltered");
        }
        // Supported filters still apply beside an ignored one...
        let (s, _, v) = app
            .get(&format!(
                "{url}?match[type]=malware&match[x_vendor_field]=1"
            ))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            ids(&v),
            vec!["malware--00000001-0000-4000-8000-000000000000"]
        );
        // ...and a malformed value of a supported one is still a 400.
        for q in [
            "match[type]=NotAType",
            "match[type]=NotAType&match[x_vendor_field]=1",
        ] {
            let (s, h, v) = app.get(&format!("{url}?{q}")).await;
            assert_taxii_error(s, &h, &v, StatusCode::BAD_REQUEST);
        }
        // A next cursor continues when the ignored field is repeated (or not).
        let (_, _, first) = app
            .get(&format!(
                "{url}?limit=1&match[type]=indicator&match[x_vendor_field]=1"
            ))
            .await;
        let next = first["next"].as_str().expect("next").to_string();
        for q in [
            format!("next={next}&match[type]=indicator&match[x_vendor_field]=1"),
            format!("next={next}&match[x_vendor_field]=1"),
            format!("next={next}&match[x_vendor_field]=2&match[type]=indicator"),
            format!("next={next}"),
        ] {
            let (s, _, v) = app.get(&format!("{url}?{q}")).await;
            assert_eq!(s, StatusCode::OK, "{q}: {v}");
            assert_eq!(ids(&v).len(), 1, "{q}");
            assert_ne!(ids(&v), ids(&first), "{q}");
        }
    }
    // Other endpoints keep refusing a filter they do not take.
    let object = format!("{objects}indicator--00000001-0000-4000-8000-000000000000/");
    let (s, h, v) = app.get(&format!("{object}?match[x_vendor_field]=1")).await;
    assert_taxii_error(s, &h, &v, StatusCode::BAD_REQUEST);

    let metrics = app.state.metrics.render(None);
    assert!(
        metrics.contains("taxiway_ignored_match_fields_total{field=\"other\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("taxiway_ignored_match_fields_total{field=\"added_after\"}"),
        "{metrics}"
    );
}

async fn versions_are_listed_as_each_object_writes_them(place: Place) {
    let app = TestApp::on(place, budget_config()).await;
    let id = "indicator--00000001-0000-4000-8000-000000000000";
    // 0, 1, 3, 6 and 9 fractional digits; a large object between them, so that the
    // versions are read over several byte-budget reads.
    let written = [
        "2026-01-01T00:00:00Z",
        "2026-01-02T00:00:00.5Z",
        "2026-01-03T00:00:00.000Z",
        "2026-01-04T00:00:00.123456Z",
        "2026-01-05T00:00:00.123456789Z",
    ];
    for (n, modified) in written.iter().enumerate() {
        let mut o = indicator(1, 1, "198.51.100.1", 50);
        o["modified"] = json!(modified);
        if n == 2 {
            o["description"] = json!("x".repeat(3000));
        }
        let (s, status) = app.post(INBOX, vec![o]).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        assert_eq!(status["success_count"], 1, "{modified}: {status}");
    }
    // A marking definition has no modified: its created is its version.
    let marking = json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--00000002-0000-4000-8000-000000000000",
        "created": "2026-02-01T00:00:00.12Z",
        "name": "internal",
        "definition_type": "statement",
        "definition": {"statement": "internal"}
    });
    let (s, status) = app.post(INBOX, vec![marking]).await;
    assert_eq!(
        (s, &status["success_count"]),
        (StatusCode::ACCEPTED, &json!(1))
    );

    let obj = format!("{}{id}/", objects_url(INBOX));
    let (s, _, v) = app.get(&format!("{obj}versions/")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["versions"], json!(written));
    // Paged, the same strings.
    let mut paged = Vec::new();
    let (_, _, mut page) = app.get(&format!("{obj}versions/?limit=2")).await;
    loop {
        paged.extend(page["versions"].as_array().cloned().unwrap_or_default());
        let Some(next) = page["next"].as_str() else {
            break;
        };
        page = app.get(&format!("{obj}versions/?next={next}")).await.2;
    }
    assert_eq!(json!(paged), json!(written));

    for modified in written {
        let (s, _, v) = app.get(&format!("{obj}?match[version]={modified}")).await;
        assert_eq!(s, StatusCode::OK, "{modified}");
        let got: Vec<Value> = v["objects"]
            .as_array()
            .map(|a| a.iter().map(|o| o["modified"].clone()).collect())
            .unwrap_or_default();
        assert_eq!(got, vec![json!(modified)], "match[version]={modified}");
    }
    let marking = format!(
        "{}marking-definition--00000002-0000-4000-8000-000000000000/",
        objects_url(INBOX)
    );
    let (_, _, v) = app.get(&format!("{marking}versions/")).await;
    assert_eq!(v["versions"], json!(["2026-02-01T00:00:00.12Z"]));
    let (_, _, v) = app
        .get(&format!("{marking}?match[version]=2026-02-01T00:00:00.12Z"))
        .await;
    assert_eq!(v["objects"].as_array().map(Vec::len), Some(1));
}
