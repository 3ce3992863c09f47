//! `taxiway-server backup`: a consistent copy of a store in use, never over an
//! existing file. (Backup under concurrent ingest and restore into a running server:
//! tests/reliability/shutdown_test.py.)

mod common;

use std::process::Command;

use axum::http::StatusCode;
use common::*;

#[tokio::test]
async fn backup_copies_the_store_in_use_and_never_overwrites() {
    let app = TestApp::new().await;
    let objects: Vec<_> = (0..25)
        .map(|n| indicator(n, 1, "198.51.100.1", 80))
        .collect();
    assert_eq!(app.post(INBOX, objects).await.0, StatusCode::ACCEPTED);

    let out_dir = tempfile::tempdir().expect("tempdir");
    let target = out_dir.path().join("backup.db");
    let bin = env!("CARGO_BIN_EXE_taxiway-server");
    let run = |target: &std::path::Path| {
        Command::new(bin)
            .arg("backup")
            .arg("--data-dir")
            .arg(app.dir.path())
            .arg("--output")
            .arg(target)
            .output()
            .expect("run")
    };
    let done = run(&target);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(String::from_utf8_lossy(&done.stdout).contains("backed up"));

    // The copy is a complete database, with the store still open and serving.
    let copy = rusqlite::Connection::open(&target).expect("open the copy");
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    let versions: i64 = copy
        .query_row("SELECT count(*) FROM object_versions", [], |r| r.get(0))
        .expect("count");
    assert_eq!(versions, 25);
    assert_eq!(app.get("/taxii2/").await.0, StatusCode::OK, "still serving");

    let again = run(&target);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));

    let nothing = tempfile::tempdir().expect("tempdir");
    let missing = Command::new(bin)
        .args(["backup", "--data-dir"])
        .arg(nothing.path())
        .arg("--output")
        .arg(out_dir.path().join("other.db"))
        .output()
        .expect("run");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no store"));
}
