//! Hostile input at the HTTP layer: every case gets the right TAXII error and the
//! service keeps serving.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::*;

async fn post_raw(app: &TestApp, body: Vec<u8>, content_type: &str) -> StatusCode {
    let req = Request::post(objects_url(INBOX))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .expect("req");
    app.send(req).await.0
}

#[tokio::test]
async fn deeply_nested_json_is_refused_without_crashing() {
    let app = TestApp::new().await;
    let depth = 20_000;
    let nested = format!(
        "{{\"objects\":[{}{}]}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    // The envelope is readable; the object is not (recursion limit): a failure in the status.
    let req = Request::post(objects_url(INBOX))
        .header(header::CONTENT_TYPE, TAXII21)
        .body(Body::from(nested))
        .expect("req");
    let (s, _, body) = app.send(req).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let status: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(status["failure_count"], 1);
    assert_eq!(status["success_count"], 0);
    // Nested inside one object (within the size limit): the object fails, not the server.
    let inner = format!(
        "{{\"objects\":[{{\"type\":\"indicator\",\"x\":{}1{}}}]}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    let s = post_raw(&app, inner.into_bytes(), TAXII21).await;
    assert!(
        s == StatusCode::BAD_REQUEST || s == StatusCode::ACCEPTED,
        "{s}"
    );
    assert_eq!(app.get("/taxii2/").await.0, StatusCode::OK, "still serving");
}

#[tokio::test]
async fn invalid_utf8_and_wrong_content_types() {
    let app = TestApp::new().await;
    assert_eq!(
        post_raw(&app, b"{\"objects\":[\"\xc3\x28\"]}".to_vec(), TAXII21).await,
        StatusCode::BAD_REQUEST
    );
    for ct in [
        "text/plain",
        "application/xml",
        "application/json",
        "multipart/form-data",
        "",
    ] {
        assert_eq!(
            post_raw(&app, b"{}".to_vec(), ct).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{ct:?}"
        );
    }
    let req = Request::post(objects_url(INBOX))
        .body(Body::from("{}"))
        .expect("req");
    assert_eq!(
        app.send(req).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "no Content-Type"
    );
}

#[tokio::test]
async fn traversal_and_garbage_in_paths_are_404() {
    let app = TestApp::new().await;
    for path in [
        "/feeds/collections/../../etc/passwd",
        "/feeds/collections/%2e%2e/objects/",
        &format!("/feeds/collections/{INBOX}/objects/..%2F..%2Fetc%2Fpasswd/"),
        &format!(
            "/feeds/collections/{INBOX}/objects/indicator--{}/",
            "a".repeat(5000)
        ),
        "/feeds/status/../../x/",
    ] {
        let (s, h, _) = app.send(get(path)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(h[header::CONTENT_TYPE], TAXII21);
    }
}

#[tokio::test]
async fn hostile_query_strings_are_400() {
    let app = TestApp::new().await;
    let url = objects_url(INBOX);
    let long = "x".repeat(30_000);
    for q in [
        format!("match[type]={long}"),
        format!("next={long}"),
        "added_after=2024-01-01T00:00:00.0000000000Z".to_string(),
        "added_after=%00".to_string(),
        "limit=99999999999999999999999".to_string(),
        "match[version]=".to_string() + &"2024-01-01T00:00:00Z,".repeat(10) + "bogus",
    ] {
        let (s, _, _) = app.send(get(&format!("{url}?{q}"))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{}", &q[..q.len().min(60)]);
    }
}

#[tokio::test]
async fn repeated_keys_by_the_thousand_fail_one_object_quickly() {
    let app = TestApp::new().await;
    let good = indicator(1, 1, "198.51.100.1", 80).to_string();
    // Thousands of one key, then a key as long as the body allows, repeated.
    let many = format!("{{{}\"type\":\"indicator\"}}", "\"a\":1,".repeat(5_000));
    let long_key = "k".repeat(12_000);
    let long = format!("{{\"{long_key}\":1,\"{long_key}\":2}}");
    let body = format!("{{\"objects\":[{many},{long},{good}]}}");
    assert!(body.len() < 65536);
    let req = Request::post(objects_url(INBOX))
        .header(header::CONTENT_TYPE, TAXII21)
        .body(Body::from(body))
        .expect("req");
    let started = std::time::Instant::now();
    let (s, _, body) = app.send(req).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(s, StatusCode::ACCEPTED);
    let status: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        (&status["success_count"], &status["failure_count"]),
        (&serde_json::json!(1), &serde_json::json!(2)),
        "{status}"
    );
    let messages: Vec<&str> = status["failures"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["message"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with(r#"duplicate key "a""#)),
        "{messages:?}"
    );
    let echoed = messages
        .iter()
        .find(|m| m.starts_with(r#"duplicate key "kkk"#))
        .expect("the long key's failure");
    assert!(echoed.len() < 300, "a key is echoed truncated: {echoed}");

    // The envelope's own `objects` repeated is refused whole: which list was meant?
    let twice = format!("{{\"objects\":[],\"objects\":[{good}]}}");
    assert_eq!(
        post_raw(&app, twice.into_bytes(), TAXII21).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.get("/taxii2/").await.0, StatusCode::OK, "still serving");
}
