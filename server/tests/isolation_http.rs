//! The cross-collection reproduction of issue 20 over HTTP, as tenants would try it:
//! `cert` may read/write only `cert-inbox`, `partner` only `partner-inbox`, `siem` may
//! read both but write neither.

mod common;
mod fixtures;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use fixtures::*;
use serde_json::{json, Value};

const CERT: &str = "0b7f0a6e-1111-4111-8111-111111111111";
const PARTNER: &str = "0b7f0a6e-2222-4222-8222-222222222222";

fn config() -> String {
    format!(
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
access = {{ read = ["cert", "siem"], write = ["cert"] }}

[[collections]]
id = "{PARTNER}"
api_root = "feeds"
title = "partner-inbox"
writable = true
access = {{ read = ["partner", "siem"], write = ["partner"] }}
"#
    )
}

fn users() -> String {
    format!(
        "[[users]]\nname = \"cert\"\npassword_hash = \"{}\"\n\n\
         [[users]]\nname = \"partner\"\npassword_hash = \"{}\"\n\n\
         [[users]]\nname = \"siem\"\napi_key_hash = \"{}\"\n",
        quick_hash("cert-pw"),
        quick_hash("partner-pw"),
        quick_hash("siem-key")
    )
}

const OBJECT_ID: &str = "indicator--0b7f0a6e-aaaa-4aaa-8aaa-aaaaaaaaaaaa";

fn indicator(name: &str, ip: &str) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1", "id": OBJECT_ID,
        "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
        "name": name, "pattern": format!("[ipv4-addr:value = '{ip}']"),
        "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"
    })
}

async fn call(
    app: &common::TestApp,
    method: &str,
    path: &str,
    credentials: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut b = from_address(
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, TAXII),
        "192.0.2.1",
    );
    b = if credentials.starts_with("Basic ") {
        b.header(header::AUTHORIZATION, credentials)
    } else {
        b.header("x-api-key", credentials)
    };
    let request = match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, TAXII)
            .body(Body::from(v.to_string())),
        None => b.body(Body::empty()),
    }
    .expect("request");
    let (status, _, body) = app.send(request).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn objects(collection: &str) -> String {
    format!("/feeds/collections/{collection}/objects/")
}

#[tokio::test]
async fn one_tenant_cannot_read_overwrite_or_hide_anothers_object() {
    let app = service(&config(), &users()).await;
    let cert = basic("cert", "cert-pw");
    let partner = basic("partner", "partner-pw");

    let (status, posted) = call(
        &app,
        "POST",
        &objects(CERT),
        &cert,
        Some(json!({"objects": [indicator("INTERNAL SECRET", "198.51.100.1")]})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{posted}");

    // The reproduction: the same id and modified, posted where partner may write.
    let (status, stub) = call(
        &app,
        "POST",
        &objects(PARTNER),
        &partner,
        Some(json!({"objects": [indicator("stub", "203.0.113.9")]})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(stub["success_count"], 1);
    let (status, page) = call(&app, "GET", &objects(PARTNER), &partner, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["objects"][0]["name"], "stub");
    assert!(
        !page.to_string().contains("198.51.100.1") && !page.to_string().contains("SECRET"),
        "nothing of cert's object reaches partner: {page}"
    );
    let (_, page) = call(&app, "GET", &objects(CERT), &cert, None).await;
    assert_eq!(page["objects"][0]["name"], "INTERNAL SECRET");
    assert_eq!(page["objects"].as_array().map(Vec::len), Some(1));

    // Each sees only its own collection and its own status resources.
    let (status, _) = call(&app, "GET", &objects(CERT), &partner, None).await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "{status}"
    );
    let status_path = format!("/feeds/status/{}/", posted["id"].as_str().expect("id"));
    let (status, _) = call(&app, "GET", &status_path, &partner, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another caller's status");
    let (status, mine) = call(&app, "GET", &status_path, &cert, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine["success_count"], 1);

    // Partner can neither write nor delete in cert-inbox (a collection it cannot
    // read is not even shown to it).
    let (status, _) = call(
        &app,
        "POST",
        &objects(CERT),
        &partner,
        Some(json!({"objects": [indicator("stub", "203.0.113.9")]})),
    )
    .await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "{status}"
    );
    let delete = format!("{}{OBJECT_ID}/", objects(CERT));
    let (status, _) = call(&app, "DELETE", &delete, &partner, None).await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "{status}"
    );
    let (_, page) = call(&app, "GET", &objects(CERT), &cert, None).await;
    assert_eq!(page["objects"][0]["name"], "INTERNAL SECRET");
}

#[tokio::test]
async fn a_reader_without_a_write_grant_can_neither_post_nor_delete() {
    let app = service(&config(), &users()).await;
    for collection in [CERT, PARTNER] {
        let (status, _) = call(&app, "GET", &objects(collection), "siem-key", None).await;
        assert_eq!(status, StatusCode::OK, "siem reads {collection}");
        let (status, body) = call(
            &app,
            "POST",
            &objects(collection),
            "siem-key",
            Some(json!({"objects": [indicator("siem", "192.0.2.1")]})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let delete = format!("{}{OBJECT_ID}/", objects(collection));
        let (status, _) = call(&app, "DELETE", &delete, "siem-key", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
