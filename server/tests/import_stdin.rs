//! `taxiway-server import … -`: a bundle from standard input (what
//! `kubectl exec -i … import … - < bundle.json` sends), into a store that is open and
//! serving; a bad bundle is refused with a clear error and changes nothing.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use axum::http::StatusCode;
use common::*;
use serde_json::json;

/// Run `import --collection inbox -` over `app`'s data directory with `input` on stdin.
fn import_stdin(app: &TestApp, input: &[u8]) -> Output {
    let config_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        config_dir.path().join("taxiway.toml"),
        config_text("type:indicator"),
    )
    .expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_taxiway-server"))
        .arg("import")
        .arg("--config-dir")
        .arg(config_dir.path())
        .arg("--data-dir")
        .arg(app.dir.path())
        .args(["--collection", "inbox", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    child.wait_with_output().expect("wait")
}

/// How many objects the inbox serves (first page of up to 50).
async fn inbox_ids(app: &TestApp) -> Vec<String> {
    ids(&app.get(&format!("{}?limit=50", objects_url(INBOX))).await.2)
}

#[tokio::test]
async fn import_reads_a_bundle_from_stdin_into_a_serving_store() {
    let app = TestApp::new().await;
    assert_eq!(
        app.post(INBOX, vec![malware(1)]).await.0,
        StatusCode::ACCEPTED
    );
    let objects: Vec<_> = (0..40)
        .map(|n| indicator(n, 1, "203.0.113.9", 60))
        .collect();
    let bundle = json!({
        "type": "bundle",
        "id": "bundle--6f0f3c2e-8a51-4b1e-9d3a-2c4b5e6f7a80",
        "objects": objects,
    });
    let done = import_stdin(&app, bundle.to_string().as_bytes());
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(stderr.contains("imported 40 objects"), "{stderr}");
    assert!(stderr.contains("standard input"), "{stderr}");

    // The serving store sees them, in the stored and in the query collection.
    assert_eq!(inbox_ids(&app).await.len(), 41);
    let indicators = app
        .get(&format!("{}?limit=50", objects_url(INDICATORS)))
        .await
        .2;
    assert_eq!(ids(&indicators).len(), 40);
    assert_eq!(
        app.post(INBOX, vec![malware(2)]).await.0,
        StatusCode::ACCEPTED,
        "the server still writes after the import"
    );
    assert_eq!(inbox_ids(&app).await.len(), 42);
}

#[tokio::test]
async fn a_bad_bundle_on_stdin_is_an_error_and_changes_nothing() {
    let app = TestApp::new().await;
    let objects: Vec<_> = (0..5).map(|n| indicator(n, 1, "203.0.113.7", 50)).collect();
    assert_eq!(app.post(INBOX, objects).await.0, StatusCode::ACCEPTED);
    let before = inbox_ids(&app).await;
    assert_eq!(before.len(), 5);

    // Cut short half-way through an object.
    let truncated = br#"{"type": "bundle", "id": "bundle--6f0f3c2e-8a51-4b1e-9d3a-2c4b5e6f7a81", "objects": [{"type": "indicator", "#;
    for input in [&truncated[..], b"", b"not json at all"] {
        let done = import_stdin(&app, input);
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert!(!done.status.success(), "{stderr}");
        assert!(stderr.contains("error: standard input:"), "{stderr}");
        assert!(done.stdout.is_empty());
        assert_eq!(inbox_ids(&app).await, before, "nothing lost, nothing added");
    }
}

/// An import beside a server that keeps accepting POSTs: the two processes take turns
/// on the store's write lock (waiting, not failing), so every POST gets its 202 and the
/// import completes.
#[tokio::test]
async fn import_and_server_writes_take_turns() {
    let app = TestApp::new().await;
    let objects: Vec<_> = (0..12_000)
        .map(|n| indicator(n + 100_000, 1, "203.0.113.10", 60))
        .collect();
    let bundle = json!({
        "type": "bundle",
        "id": "bundle--6f0f3c2e-8a51-4b1e-9d3a-2c4b5e6f7a82",
        "objects": objects,
    })
    .to_string();
    let config_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        config_dir.path().join("taxiway.toml"),
        config_text("type:indicator"),
    )
    .expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_taxiway-server"))
        .arg("import")
        .arg("--config-dir")
        .arg(config_dir.path())
        .arg("--data-dir")
        .arg(app.dir.path())
        .args(["--collection", "inbox", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || stdin.write_all(bundle.as_bytes()));
    let mut posted = 0;
    loop {
        let (status, body) = app
            .post(INBOX, vec![indicator(posted, 1, "198.51.100.9", 50)])
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        posted += 1;
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
    }
    feeder.join().expect("feeder").expect("write stdin");
    let done = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(stderr.contains("imported 12000 objects"), "{stderr}");
    let stored = app
        .store
        .count(INBOX, &common::every_version(1))
        .await
        .expect("count");
    assert_eq!(stored, 12_000 + u64::from(posted));
}
