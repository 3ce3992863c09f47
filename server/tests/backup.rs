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

/// `backup --output -`: the snapshot alone on standard output while the store serves,
/// restorable as `taxiway.db` of a fresh data directory, which serves the same objects.
#[tokio::test]
async fn backup_streams_to_stdout_and_restores_into_a_fresh_store() {
    let app = TestApp::new().await;
    let objects: Vec<_> = (0..30)
        .map(|n| indicator(n, 1, "198.51.100.2", 70))
        .collect();
    assert_eq!(app.post(INBOX, objects).await.0, StatusCode::ACCEPTED);
    let before = app.get(&objects_url(INBOX)).await.2;

    let done = Command::new(env!("CARGO_BIN_EXE_taxiway-server"))
        .args(["backup", "--output", "-", "--data-dir"])
        .arg(app.dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(stderr.contains("backed up"), "{stderr}");
    assert!(
        done.stdout.starts_with(b"SQLite format 3\0"),
        "standard output holds the database and nothing else"
    );
    let leftovers: Vec<_> = std::fs::read_dir(app.dir.path())
        .expect("read_dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".taxiway-backup"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary snapshot left: {leftovers:?}"
    );
    assert_eq!(app.get("/taxii2/").await.0, StatusCode::OK, "still serving");

    // Restore: the stream becomes taxiway.db of an empty data directory.
    let place = backend::Place {
        backend: backend::Backend::Sqlite,
        dir: tempfile::tempdir().expect("tempdir"),
        db: None,
    };
    std::fs::write(
        place
            .dir
            .path()
            .join(taxiway_server::store::sqlite::DB_FILE),
        &done.stdout,
    )
    .expect("write the restored store");
    let restored = TestApp::on(place, config("type:indicator")).await;
    let after = restored.get(&objects_url(INBOX)).await.2;
    assert_eq!(ids(&after).len(), 20, "a first page of the 30 objects");
    assert_eq!(after, before, "the same objects, bytes and order");
    let indicators = restored.get(&objects_url(INDICATORS)).await.2;
    assert_eq!(ids(&indicators).len(), 20, "query collections restored too");
}

/// `--output -` to a terminal is refused rather than printing a database on it; a
/// missing store is an error with nothing on standard output.
#[test]
fn backup_to_stdout_of_a_missing_store_fails_cleanly() {
    let nothing = tempfile::tempdir().expect("tempdir");
    let done = Command::new(env!("CARGO_BIN_EXE_taxiway-server"))
        .args(["backup", "--output", "-", "--data-dir"])
        .arg(nothing.path())
        .output()
        .expect("run");
    assert!(!done.status.success());
    assert!(done.stdout.is_empty());
    assert!(String::from_utf8_lossy(&done.stderr).contains("no store"));
    assert_eq!(
        std::fs::read_dir(nothing.path()).expect("read_dir").count(),
        0,
        "no temporary file left"
    );
}

/// Stop `app`'s store as a stopping server does, keeping its data directory.
async fn stop(app: TestApp) -> tempfile::TempDir {
    let TestApp {
        dir,
        db: _,
        state,
        store,
        router,
    } = app;
    drop(router);
    drop(state);
    store.close().await.expect("close");
    drop(store);
    dir
}

/// Run `restore --data-dir dir --input -` with `input` on standard input.
fn restore_stdin(dir: &std::path::Path, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_taxiway-server"))
        .args(["restore", "--input", "-", "--data-dir"])
        .arg(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    // A refusal may come before the whole input is read.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().expect("wait")
}

/// `restore --input -`: a streamed backup replaces a stopped store (its write-ahead
/// log discarded); a store in use, or input that is no Taxiway backup, is refused and
/// the store is left as it was.
#[tokio::test]
async fn restore_from_stdin_replaces_a_stopped_store_and_refuses_otherwise() {
    let app = TestApp::new().await;
    let objects: Vec<_> = (0..12)
        .map(|n| indicator(n, 1, "198.51.100.3", 90))
        .collect();
    assert_eq!(app.post(INBOX, objects).await.0, StatusCode::ACCEPTED);
    let before = app.get(&objects_url(INBOX)).await.2;
    let backup = Command::new(env!("CARGO_BIN_EXE_taxiway-server"))
        .args(["backup", "--output", "-", "--data-dir"])
        .arg(app.dir.path())
        .output()
        .expect("run");
    assert!(backup.status.success());

    // Another store, with other objects, open (a server running on it): refused.
    let other = TestApp::new().await;
    assert_eq!(
        other.post(INBOX, vec![malware(7)]).await.0,
        StatusCode::ACCEPTED
    );
    let refused = restore_stdin(other.dir.path(), &backup.stdout);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
    assert_eq!(ids(&other.get(&objects_url(INBOX)).await.2).len(), 1);

    // Stopped: the store is closed; garbage and a truncated backup are refused.
    let dir = stop(other).await;
    for bad in [
        &b"not a database"[..],
        &backup.stdout[..backup.stdout.len() / 2],
    ] {
        let refused = restore_stdin(dir.path(), bad);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{stderr}");
        assert!(stderr.contains("not a Taxiway backup"), "{stderr}");
    }
    let kept = backend::Place {
        backend: backend::Backend::Sqlite,
        dir,
        db: None,
    };
    let kept = TestApp::on(kept, config("type:indicator")).await;
    assert_eq!(
        ids(&kept.get(&objects_url(INBOX)).await.2).len(),
        1,
        "a refused restore leaves the store as it was"
    );
    let dir = stop(kept).await;

    let done = restore_stdin(dir.path(), &backup.stdout);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(stderr.contains("restored"), "{stderr}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".taxiway-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let place = backend::Place {
        backend: backend::Backend::Sqlite,
        dir,
        db: None,
    };
    let restored = TestApp::on(place, config("type:indicator")).await;
    assert_eq!(restored.get(&objects_url(INBOX)).await.2, before);

    // A raw copy of a stopped store (a WAL-mode file) restores from `--input FILE`.
    let dir = stop(restored).await;
    let raw = tempfile::tempdir().expect("tempdir");
    let copy = raw.path().join("copy.db");
    std::fs::copy(
        dir.path().join(taxiway_server::store::sqlite::DB_FILE),
        &copy,
    )
    .expect("copy");
    let fresh = tempfile::tempdir().expect("tempdir");
    let done = Command::new(env!("CARGO_BIN_EXE_taxiway-server"))
        .args(["restore", "--data-dir"])
        .arg(fresh.path())
        .arg("--input")
        .arg(&copy)
        .output()
        .expect("run");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let names: Vec<_> = std::fs::read_dir(fresh.path())
        .expect("read_dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["taxiway.db"], "nothing else left beside the store");
    let place = backend::Place {
        backend: backend::Backend::Sqlite,
        dir: fresh,
        db: None,
    };
    let again = TestApp::on(place, config("type:indicator")).await;
    assert_eq!(again.get(&objects_url(INBOX)).await.2, before);
}
