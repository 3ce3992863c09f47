//! `taxiway-server import FILE`: a bundle read as a stream from a file, in batches,
//! every object then served; an import leaves no TAXII status resource behind (POSTs
//! still do); a document cut short keeps the batches stored before the cut and says
//! how many.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use axum::http::StatusCode;
use common::*;
use serde_json::json;
use taxiway_server::store::sqlite::DB_FILE;

/// Run `import --collection inbox FILE` over `app`'s data directory.
fn import_file(app: &TestApp, file: &Path) -> Output {
    let config_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        config_dir.path().join("taxiway.toml"),
        config_text("type:indicator"),
    )
    .expect("write config");
    Command::new(env!("CARGO_BIN_EXE_taxiway-server"))
        .arg("import")
        .arg("--config-dir")
        .arg(config_dir.path())
        .arg("--data-dir")
        .arg(app.dir.path())
        .args(["--collection", "inbox"])
        .arg(file)
        .output()
        .expect("run import")
}

/// A bundle of `count` small indicators, as written to a file.
fn bundle(count: u32) -> String {
    let objects: Vec<_> = (0..count)
        .map(|n| indicator(n, 1, "203.0.113.30", 60))
        .collect();
    json!({
        "type": "bundle",
        "id": "bundle--6f0f3c2e-8a51-4b1e-9d3a-2c4b5e6f7a90",
        "objects": objects,
    })
    .to_string()
}

/// The ids a collection serves, page after page.
async fn served_ids(app: &TestApp, collection: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut uri = format!("{}?limit=50", objects_url(collection));
    loop {
        let (status, _, page) = app.get(&uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {page}");
        seen.extend(ids(&page));
        match page["next"].as_str() {
            Some(next) if page["more"] == true => {
                uri = format!("{}?limit=50&next={next}", objects_url(collection));
            }
            _ => return seen,
        }
    }
}

/// Rows in the embedded store's table of status resources.
fn status_rows(app: &TestApp) -> i64 {
    let db = rusqlite::Connection::open(app.dir.path().join(DB_FILE)).expect("open the store");
    db.query_row("SELECT COUNT(*) FROM status", [], |row| row.get(0))
        .expect("count status rows")
}

#[tokio::test]
async fn a_bundle_file_of_20000_objects_is_streamed_in_and_served() {
    const COUNT: u32 = 20_000;
    let app = TestApp::new().await;
    let input = tempfile::tempdir().expect("tempdir");
    let file = input.path().join("bundle.json");
    std::fs::write(&file, bundle(COUNT)).expect("write bundle");

    let done = import_file(&app, &file);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(
        stderr.contains(r#"imported 20000 objects into "inbox" (0 rejected)"#),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\r'),
        "no progress line when stderr is not a terminal: {stderr}"
    );

    assert_eq!(
        app.store
            .count(INBOX, &common::every_version(1))
            .await
            .expect("count"),
        u64::from(COUNT)
    );
    let expected: BTreeSet<String> = (0..COUNT)
        .map(|n| format!("indicator--{n:08x}-0000-4000-8000-000000000000"))
        .collect();
    assert_eq!(
        served_ids(&app, INBOX).await,
        expected,
        "the inbox serves all"
    );
    assert_eq!(
        served_ids(&app, INDICATORS).await,
        expected,
        "so does the query collection"
    );

    assert_eq!(status_rows(&app), 0, "an import records no status resource");
    assert_eq!(
        app.post(INBOX, vec![malware(1)]).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(status_rows(&app), 1, "a POST still does");
}

#[tokio::test]
async fn a_document_cut_short_keeps_the_batches_stored_before_the_cut() {
    let app = TestApp::new().await;
    let whole = bundle(2_500);
    let input = tempfile::tempdir().expect("tempdir");
    let file = input.path().join("cut.json");
    std::fs::write(&file, &whole[..whole.len() - 100]).expect("write bundle");

    let done = import_file(&app, &file);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(!done.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("error: {}: not a STIX bundle", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("line 1 column"), "{stderr}");
    assert!(
        stderr.contains("2000 objects were stored before the error"),
        "{stderr}"
    );
    assert_eq!(
        app.store
            .count(INBOX, &common::every_version(1))
            .await
            .expect("count"),
        2_000,
        "two batches of 1,000 were committed; the rest waited for the end"
    );
    assert_eq!(status_rows(&app), 0);
}

#[tokio::test]
async fn an_envelope_with_rejected_objects_and_other_keys() {
    let app = TestApp::new().await;
    let envelope = json!({
        "more": false,
        "objects": [
            indicator(1, 1, "203.0.113.31", 60),
            {"type": "indicator", "id": "indicator--not-a-uuid"},
            indicator(2, 1, "203.0.113.31", 60),
        ],
        "next": "ignored",
    });
    let input = tempfile::tempdir().expect("tempdir");
    let file = input.path().join("envelope.json");
    std::fs::write(&file, envelope.to_string()).expect("write envelope");

    let done = import_file(&app, &file);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(stderr.contains("(1 rejected)"), "{stderr}");
    assert!(stderr.contains("rejected"), "{stderr}");
    assert_eq!(served_ids(&app, INBOX).await.len(), 2);
}
