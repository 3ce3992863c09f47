//! Compression negotiated per request (issue 21): `Accept-Encoding` picks zstd or gzip
//! for every JSON answer of both TAXII versions large enough to gain from it; the
//! coded body decodes to the very bytes sent without coding; identity, unknown codings,
//! `*;q=0`, tiny bodies, HEAD, errors, TAXII 2.0 ranges and POST answers behave per
//! RFC 9110; `[server] compression = false` turns it off; metrics and the access log
//! count what went on the wire.

mod common;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use serde_json::{json, Value};

use common::{indicator, objects_url, TestApp, INBOX, TAXII21};
use taxiway_server::config;
use taxiway_server::taxii::encoding::{INLINE_MAX_BYTES, MIN_BYTES};
use taxiway_server::taxii::media;

const STIX20: &str = media::STIX_20;
const TAXII20: &str = media::TAXII_20;

/// The tests' configuration, serving TAXII 2.1 and 2.0, with `server` as `[server]`.
async fn app_with(server: &str) -> TestApp {
    let text = common::config_text("type:indicator").replacen(
        "[service]\n",
        "[service]\nversions = [\"2.1\", \"2.0\"]\n",
        1,
    );
    let text = format!("[server]\n{server}\n{text}");
    TestApp::with_config(config::parse(&text).expect("config")).await
}

async fn app() -> TestApp {
    app_with("").await
}

/// `n` indicators in the inbox, in posts of 20.
async fn seed(app: &TestApp, n: u32) {
    for first in (0..n).step_by(20) {
        let objects = (first..n.min(first + 20))
            .map(|i| indicator(i, 1, &format!("198.51.{}.{}", i / 250, i % 250), 80))
            .collect();
        let (status, body) = app.post(INBOX, objects).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
}

/// One answer: status, headers, the body as sent.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn coding(&self) -> Option<&str> {
        self.header(header::CONTENT_ENCODING)
    }

    /// The body decoded from its `Content-Encoding`.
    fn decoded(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self.coding() {
            None => out.clone_from(&self.body),
            Some("gzip") => {
                flate2::read::GzDecoder::new(&self.body[..])
                    .read_to_end(&mut out)
                    .expect("gzip decodes");
            }
            Some("zstd") => {
                zstd::stream::read::Decoder::new(&self.body[..])
                    .and_then(|mut d| d.read_to_end(&mut out))
                    .expect("zstd decodes");
            }
            Some(other) => panic!("unexpected coding {other}"),
        }
        out
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.decoded()).expect("JSON body")
    }

    /// `Vary` names `Accept-Encoding`.
    fn varies(&self) -> bool {
        self.headers.get_all(header::VARY).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("accept-encoding"))
        })
    }

    /// `Content-Length` is the length of the body as sent.
    fn assert_length(&self) {
        let length = self.header(header::CONTENT_LENGTH).expect("Content-Length");
        assert_eq!(length, self.body.len().to_string());
    }
}

/// `got` is `want`, byte for byte (without printing either when not).
fn same_bytes(got: &[u8], want: &[u8], what: &str) {
    let differs_at = got.iter().zip(want).position(|(a, b)| a != b);
    assert!(
        got == want,
        "{what:?}: {} bytes, expected {}; first difference at {differs_at:?}",
        got.len(),
        want.len()
    );
}

async fn send(
    app: &TestApp,
    method: Method,
    uri: &str,
    accept: &str,
    accept_encoding: Option<&str>,
    extra: &[(header::HeaderName, &str)],
    body: Body,
) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::ACCEPT, accept);
    if let Some(value) = accept_encoding {
        request = request.header(header::ACCEPT_ENCODING, value);
    }
    for (name, value) in extra {
        request = request.header(name.clone(), *value);
    }
    let (status, headers, body) = app.send(request.body(body).expect("request")).await;
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(app: &TestApp, uri: &str, accept_encoding: Option<&str>) -> Reply {
    send(
        app,
        Method::GET,
        uri,
        TAXII21,
        accept_encoding,
        &[],
        Body::empty(),
    )
    .await
}

fn page(limit: u32) -> String {
    format!("{}?limit={limit}", objects_url(INBOX))
}

#[tokio::test]
async fn gzip_and_zstd_pages_decode_to_the_bytes_sent_without_coding() {
    let app = app().await;
    seed(&app, 50).await;
    // A page compressed on a blocking thread, and one compressed inline.
    for limit in [50, 4] {
        let plain = get(&app, &page(limit), None).await;
        assert_eq!(plain.status, StatusCode::OK);
        assert_eq!(plain.coding(), None);
        assert!(plain.varies(), "a page that could be compressed varies");
        plain.assert_length();
        let len = plain.body.len() as u64;
        if limit == 50 {
            assert!(len > INLINE_MAX_BYTES, "{len}");
        } else {
            assert!((MIN_BYTES..=INLINE_MAX_BYTES).contains(&len), "{len}");
        }
        for (accept_encoding, coding) in [
            ("gzip", "gzip"),
            ("gzip, deflate", "gzip"),
            ("zstd", "zstd"),
            ("gzip, deflate, br, zstd", "zstd"),
            ("zstd;q=0.5, gzip", "gzip"),
            ("gzip;q=0.8, zstd;q=0.8", "zstd"),
            ("*", "zstd"),
        ] {
            let coded = get(&app, &page(limit), Some(accept_encoding)).await;
            assert_eq!(coded.status, StatusCode::OK, "{accept_encoding}");
            assert_eq!(coded.coding(), Some(coding), "{accept_encoding}");
            assert!(coded.varies(), "{accept_encoding}");
            coded.assert_length();
            assert!(
                coded.body.len() * 3 < plain.body.len(),
                "{accept_encoding}: {} of {}",
                coded.body.len(),
                plain.body.len()
            );
            same_bytes(&coded.decoded(), &plain.body, accept_encoding);
            for name in [
                header::CONTENT_TYPE,
                "x-taxii-date-added-first".parse().expect("name"),
                "x-taxii-date-added-last".parse().expect("name"),
            ] {
                assert_eq!(coded.header(name.clone()), plain.header(name.clone()));
            }
        }
    }
}

#[tokio::test]
async fn identity_unknown_codings_and_refused_codings_are_sent_as_they_are() {
    let app = app().await;
    seed(&app, 20).await;
    let plain = get(&app, &page(20), None).await;
    assert!(plain.body.len() as u64 > MIN_BYTES);
    for accept_encoding in [
        "identity",
        "",
        "br",
        "br, deflate",
        "gzip;q=0",
        "gzip;q=0, zstd;q=0",
        "gzip;q=0.5, identity",
        "*;q=0, identity",
        "gzip;q=7",
    ] {
        let reply = get(&app, &page(20), Some(accept_encoding)).await;
        assert_eq!(reply.status, StatusCode::OK, "{accept_encoding:?}");
        assert_eq!(reply.coding(), None, "{accept_encoding:?}");
        assert!(reply.varies(), "{accept_encoding:?}");
        reply.assert_length();
        same_bytes(&reply.body, &plain.body, accept_encoding);
    }
}

#[tokio::test]
async fn refusing_identity_and_every_coding_served_is_a_406() {
    let app = app().await;
    for accept_encoding in [
        "*;q=0",
        "identity;q=0",
        "identity;q=0, br",
        "*;q=0, gzip;q=0",
    ] {
        let reply = get(&app, "/taxii2/", Some(accept_encoding)).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_ACCEPTABLE,
            "{accept_encoding}"
        );
        assert_eq!(reply.header(header::CONTENT_TYPE), Some(TAXII21));
        assert_eq!(reply.coding(), None);
        let error = reply.json();
        assert_eq!(error["http_status"], "406");
        assert!(
            error["description"]
                .as_str()
                .is_some_and(|d| d.contains("Accept-Encoding")),
            "{error}"
        );
    }
    // In the version asked for.
    let reply = send(
        &app,
        Method::GET,
        "/taxii2/",
        TAXII20,
        Some("*;q=0"),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(reply.header(header::CONTENT_TYPE), Some(TAXII20));
    // Identity refused but gzip accepted: even a tiny body is coded.
    for accept_encoding in ["*;q=0, gzip", "identity;q=0, gzip, zstd;q=0.1"] {
        let reply = get(&app, "/taxii2/", Some(accept_encoding)).await;
        assert_eq!(reply.status, StatusCode::OK, "{accept_encoding}");
        assert_eq!(reply.coding(), Some("gzip"), "{accept_encoding}");
        reply.assert_length();
        assert_eq!(reply.json()["title"], "Taxiway test");
    }
}

#[tokio::test]
async fn tiny_bodies_and_small_errors_are_sent_uncoded_but_vary() {
    let app = app().await;
    for uri in [
        "/taxii2/",
        "/feeds/",
        "/empty/collections/",
        "/feeds/collections/nope/objects/",
        "/no/such/resource/",
    ] {
        let reply = get(&app, uri, Some("gzip, zstd")).await;
        assert!((reply.body.len() as u64) < MIN_BYTES, "{uri}");
        assert_eq!(reply.coding(), None, "{uri}");
        assert!(reply.varies(), "{uri}");
        reply.assert_length();
        assert!(reply.json().is_object(), "{uri}");
    }
}

#[tokio::test]
async fn errors_are_coded_like_any_other_answer() {
    let app = app().await;
    // An error is small: coded only when identity is refused.
    let reply = get(
        &app,
        "/feeds/collections/nope/objects/",
        Some("identity;q=0, zstd"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.coding(), Some("zstd"));
    reply.assert_length();
    assert_eq!(reply.json()["http_status"], "404");
    // A large answer about failures (a POST whose every object fails) is coded.
    let objects: Vec<Value> = (0..40)
        .map(
            |i| json!({"type": "indicator", "id": format!("not-an-id-{i}"), "spec_version": "2.1"}),
        )
        .collect();
    let body = json!({ "objects": objects }).to_string();
    let reply = send(
        &app,
        Method::POST,
        &objects_url(INBOX),
        TAXII21,
        Some("gzip"),
        &[(header::CONTENT_TYPE, TAXII21)],
        Body::from(body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.coding(), Some("gzip"));
    reply.assert_length();
    assert_eq!(reply.json()["failure_count"], 40);
}

#[tokio::test]
async fn head_answers_carry_the_headers_and_no_body() {
    let app = app().await;
    seed(&app, 20).await;
    for uri in [page(20), "/taxii2/".to_string()] {
        // Resources answer HEAD as any method they do not support: 405 with `Allow`.
        let head = send(
            &app,
            Method::HEAD,
            &uri,
            TAXII21,
            Some("gzip"),
            &[],
            Body::empty(),
        )
        .await;
        let put = send(
            &app,
            Method::PUT,
            &uri,
            TAXII21,
            Some("gzip"),
            &[],
            Body::empty(),
        )
        .await;
        assert_eq!(head.status, StatusCode::METHOD_NOT_ALLOWED, "{uri}");
        assert!(head.body.is_empty(), "{uri}");
        assert!(head.varies(), "{uri}");
        for name in [
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            header::CONTENT_LENGTH,
            header::ALLOW,
        ] {
            assert_eq!(
                head.header(name.clone()),
                put.header(name.clone()),
                "{uri} {name}"
            );
        }
        assert_eq!(
            head.header(header::CONTENT_LENGTH),
            Some(put.body.len().to_string().as_str())
        );
    }
}

#[tokio::test]
async fn taxii_2_0_pages_are_coded_and_keep_their_range() {
    let app = app().await;
    seed(&app, 30).await;
    let uri = objects_url(INBOX);
    let range = [(header::RANGE, "items 0-19")];
    let plain = send(&app, Method::GET, &uri, STIX20, None, &range, Body::empty()).await;
    assert_eq!(plain.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(plain.header(header::CONTENT_RANGE), Some("items 0-19/30"));
    for coding in ["gzip", "zstd"] {
        let coded = send(
            &app,
            Method::GET,
            &uri,
            STIX20,
            Some(coding),
            &range,
            Body::empty(),
        )
        .await;
        assert_eq!(coded.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(coded.coding(), Some(coding));
        assert!(coded.varies());
        coded.assert_length();
        assert_eq!(coded.header(header::CONTENT_RANGE), Some("items 0-19/30"));
        assert_eq!(coded.header(header::CONTENT_TYPE), Some(STIX20));
        // Each bundle gets a fresh id: the same length, the rest byte for byte.
        let (decoded, plain) = (coded.decoded(), &plain.body);
        assert_eq!(decoded.len(), plain.len(), "{coding}");
        assert_eq!(without_id(&decoded), without_id(plain), "{coding}");
    }
    // Manifests and collections of 2.0 too, when large enough.
    let manifest = format!("/feeds/collections/{INBOX}/manifest/");
    let plain = send(
        &app,
        Method::GET,
        &manifest,
        TAXII20,
        None,
        &range,
        Body::empty(),
    )
    .await;
    let coded = send(
        &app,
        Method::GET,
        &manifest,
        TAXII20,
        Some("gzip"),
        &range,
        Body::empty(),
    )
    .await;
    assert!(plain.body.len() as u64 > MIN_BYTES);
    assert_eq!(coded.coding(), Some("gzip"));
    same_bytes(&coded.decoded(), &plain.body, "2.0 manifest");
}

/// A 2.0 bundle's bytes with its `id` blanked.
fn without_id(bundle: &[u8]) -> String {
    let text = String::from_utf8(bundle.to_vec()).expect("UTF-8");
    let id: Value = serde_json::from_str::<Value>(&text).expect("JSON")["id"].clone();
    let id = id.as_str().expect("bundle id");
    assert!(id.starts_with("bundle--"), "{id}");
    text.replacen(id, "bundle--", 1)
}

/// `n` new indicators posted to the inbox.
async fn post(app: &TestApp, n: u32, accept_encoding: &str) -> Reply {
    let objects: Vec<Value> = (0..n)
        .map(|i| indicator(1000 + i + n * 100, 1, "203.0.113.7", 50))
        .collect();
    let body = json!({ "objects": objects }).to_string();
    send(
        app,
        Method::POST,
        &objects_url(INBOX),
        TAXII21,
        Some(accept_encoding),
        &[(header::CONTENT_TYPE, TAXII21)],
        Body::from(body),
    )
    .await
}

#[tokio::test]
async fn posted_status_is_coded_when_large() {
    let app = app().await;
    let large = post(&app, 30, "zstd, gzip").await;
    assert_eq!(large.status, StatusCode::ACCEPTED);
    assert_eq!(large.coding(), Some("zstd"));
    large.assert_length();
    let status = large.json();
    assert_eq!(status["success_count"], 30);
    // The status resource read back: coded, and the same JSON.
    let id = status["id"].as_str().expect("status id");
    let read = get(&app, &format!("/feeds/status/{id}/"), Some("gzip")).await;
    assert_eq!(read.coding(), Some("gzip"));
    assert_eq!(read.json(), status);
    let small = post(&app, 1, "gzip").await;
    assert_eq!(small.status, StatusCode::ACCEPTED);
    assert_eq!(small.coding(), None);
    assert!(small.varies());
}

#[tokio::test]
async fn turned_off_it_ignores_accept_encoding() {
    let app = app_with("compression = false").await;
    seed(&app, 20).await;
    for accept_encoding in ["gzip", "zstd", "*;q=0", "identity;q=0"] {
        let reply = get(&app, &page(20), Some(accept_encoding)).await;
        assert_eq!(reply.status, StatusCode::OK, "{accept_encoding}");
        assert_eq!(reply.coding(), None, "{accept_encoding}");
        assert!(!reply.varies(), "{accept_encoding}");
        reply.assert_length();
    }
}

#[tokio::test]
async fn metrics_count_codings_and_bytes_saved() {
    let app = app().await;
    seed(&app, 20).await;
    let plain = get(&app, &page(20), Some("identity")).await;
    let gzip = get(&app, &page(20), Some("gzip")).await;
    let zstd = get(&app, &page(20), Some("zstd")).await;
    let text = app.state.metrics.render(None);
    let value = |series: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} in\n{text}"))
    };
    let (p, g, z) = (
        plain.body.len() as u64,
        gzip.body.len() as u64,
        zstd.body.len() as u64,
    );
    assert_eq!(
        value("taxiway_response_encodings_total{encoding=\"gzip\"}"),
        1
    );
    assert_eq!(
        value("taxiway_response_encodings_total{encoding=\"zstd\"}"),
        1
    );
    assert_eq!(
        value("taxiway_response_body_bytes_total{encoding=\"gzip\"}"),
        g
    );
    assert_eq!(
        value("taxiway_response_body_bytes_total{encoding=\"zstd\"}"),
        z
    );
    assert_eq!(
        value("taxiway_compression_saved_bytes_total{encoding=\"gzip\"}"),
        p - g
    );
    assert_eq!(
        value("taxiway_compression_saved_bytes_total{encoding=\"zstd\"}"),
        p - z
    );
    // The page sent as identity, and the seeding posts' small answers.
    assert!(value("taxiway_response_encodings_total{encoding=\"identity\"}") >= 2);
}

/// A writer shared with the test: what the access log wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_access_log_counts_the_bytes_sent_on_the_wire() {
    let app = app().await;
    seed(&app, 20).await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    // The current-thread runtime of this test logs on this thread. tracing caches each
    // callsite's interest process-wide, and the other tests of this binary reach the
    // same callsites at the same time without a subscriber: a callsite they register
    // first may be cached as uninteresting, so the cache is rebuilt (with this test's
    // subscriber registered) and the pair of requests repeated until both lines are there.
    let guard = tracing::subscriber::set_default(subscriber);
    let mut attempt = 0;
    let (plain, gzip, text, bytes) = loop {
        attempt += 1;
        tracing::callsite::rebuild_interest_cache();
        captured.0.lock().expect("log lock").clear();
        let plain = get(&app, &page(20), None).await;
        let gzip = get(&app, &page(20), Some("gzip")).await;
        let text = String::from_utf8(captured.0.lock().expect("log lock").clone()).expect("UTF-8");
        let bytes: Vec<u64> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["target"] == "taxiway::access")
            .filter_map(|l| l["fields"]["bytes"].as_u64())
            .collect();
        if bytes.len() == 2 || attempt == 20 {
            break (plain, gzip, text, bytes);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    drop(guard);
    assert_eq!(
        bytes,
        [plain.body.len() as u64, gzip.body.len() as u64],
        "{text}"
    );
    assert!(gzip.body.len() < plain.body.len());
}
