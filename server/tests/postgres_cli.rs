//! The command line with `[store] backend = "postgres"`: `backup` refuses and points
//! to pg_dump; `migrate --from-sqlite` copies an embedded store into PostgreSQL and
//! never prints the database URL or password. (PostgreSQL tests are #[ignore]d: `--include-ignored` and `TAXIWAY_TEST_POSTGRES_URL` for
//! the parts that reach a database.)

mod common;

use std::process::Command;

use axum::http::StatusCode;
use common::backend::TestDb;
use common::*;
use taxiway_server::store::postgres::PostgresStore;
use taxiway_server::store::{Listing, Store, VersionMatch};

const URL_ENV: &str = "TAXIWAY_TEST_CLI_DATABASE_URL";

fn postgres_config_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_text("type:indicator").replacen(
        "[limits]",
        &format!(
            "[store]\nbackend = \"postgres\"\n\n[store.postgres]\nurl_env = \"{URL_ENV}\"\ntls = \"disable\"\n\n[limits]"
        ),
        1,
    );
    std::fs::write(dir.path().join("taxiway.toml"), text).expect("write config");
    dir
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_taxiway-server"));
    c.env_remove("TAXIWAY_CONFIG_DIR")
        .env_remove("TAXIWAY_DATA_DIR");
    c
}

#[test]
fn backup_refuses_a_postgres_store_and_points_to_pg_dump() {
    let config = postgres_config_dir();
    let data = tempfile::tempdir().expect("tempdir");
    let out = bin()
        .arg("backup")
        .arg("--data-dir")
        .arg(data.path())
        .arg("--config-dir")
        .arg(config.path())
        .arg("--output")
        .arg(data.path().join("b.db"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pg_dump"), "{stderr}");
    let check = bin()
        .arg("check-config")
        .arg("--config-dir")
        .arg(config.path())
        .output()
        .expect("run");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn migrate_copies_an_embedded_store_and_never_prints_the_password() {
    let db = TestDb::create().await;
    let app = TestApp::new().await;
    let objects: Vec<_> = (0..25)
        .map(|n| indicator(n, 1, "198.51.100.1", 80))
        .collect();
    assert_eq!(app.post(INBOX, objects).await.0, StatusCode::ACCEPTED);
    app.store.close().await.expect("checkpoint");

    // Trust authentication ignores the password: it is there to be looked for.
    let secret = "s3cr3t-pw-do-not-print";
    let url = db
        .url
        .replacen("://postgres@", &format!("://postgres:{secret}@"), 1);
    let config = postgres_config_dir();
    let run = || {
        bin()
            .env(URL_ENV, &url)
            .arg("migrate")
            .arg("--from-sqlite")
            .arg(app.dir.path())
            .arg("--config-dir")
            .arg(config.path())
            .output()
            .expect("run")
    };
    let first = run();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&first.stdout).to_string(),
        String::from_utf8_lossy(&first.stderr).to_string(),
    );
    assert!(first.status.success(), "{stderr}");
    assert!(stdout.contains("copied 25 object versions"), "{stdout}");
    assert!(!stdout.contains(secret) && !stderr.contains(secret));

    let again = run();
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("not empty"), "{stderr}");
    assert!(!stderr.contains(secret));

    let store = PostgresStore::connect_url(&db.url, 2).await.expect("open");
    store
        .apply_config(&common::store_setup(&config_from(config.path())))
        .await
        .expect("apply");
    wait_built(&store).await;
    let listing = Listing {
        ids: vec![],
        types: vec![],
        versions: VersionMatch::all(),
        spec_versions: vec![],
        after: None,
        limit: 100,
        with_raw: true,
        max_bytes: None,
    };
    let migrated = store.list(INBOX, &listing).await.expect("list");
    let original = app.store.list(INBOX, &listing).await.expect("list");
    assert_eq!(migrated, original);
    assert_eq!(migrated.entries.len(), 25);
    assert_eq!(
        store
            .list(INDICATORS, &listing)
            .await
            .expect("list")
            .entries
            .len(),
        25
    );

    // Unreachable database: a clear error, still without the password.
    let down = bin()
        .env(
            URL_ENV,
            format!("postgres://postgres:{secret}@127.0.0.1:1/none"),
        )
        .arg("migrate")
        .arg("--from-sqlite")
        .arg(app.dir.path())
        .arg("--config-dir")
        .arg(config.path())
        .output()
        .expect("run");
    assert!(!down.status.success());
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(!stderr.contains(secret), "{stderr}");
}

fn config_from(dir: &std::path::Path) -> taxiway_server::config::ServiceConfig {
    taxiway_server::config::load_dir(dir).expect("valid")
}

/// `import … -` on PostgreSQL: a bundle from standard input into a store a server is
/// serving (what `kubectl exec -i deploy/<name> -- … import … -` does on a
/// TaxiiService with `storage.type: postgres`); a bad bundle changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn import_reads_stdin_into_a_serving_postgres_store() {
    use std::io::Write;
    let db = TestDb::create().await;
    let config = postgres_config_dir();
    let store = PostgresStore::connect_url(&db.url, 2).await.expect("open");
    store
        .apply_config(&common::store_setup(&config_from(config.path())))
        .await
        .expect("apply");
    wait_built(&store).await;
    let run = |input: Vec<u8>| {
        let mut child = bin()
            .env(URL_ENV, &db.url)
            .arg("import")
            .arg("--config-dir")
            .arg(config.path())
            .args(["--collection", "inbox", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        let _ = stdin.write_all(&input);
        drop(stdin);
        child.wait_with_output().expect("wait")
    };
    let objects: Vec<_> = (0..30)
        .map(|n| indicator(n, 1, "203.0.113.20", 60))
        .collect();
    let bundle = serde_json::json!({
        "type": "bundle",
        "id": "bundle--6f0f3c2e-8a51-4b1e-9d3a-2c4b5e6f7a83",
        "objects": objects,
    });
    let done = run(bundle.to_string().into_bytes());
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(stderr.contains("imported 30 objects"), "{stderr}");

    let listing = Listing {
        ids: vec![],
        types: vec![],
        versions: VersionMatch::all(),
        spec_versions: vec![],
        after: None,
        limit: 100,
        with_raw: false,
        max_bytes: None,
    };
    assert_eq!(store.count(INBOX, &listing).await.expect("count"), 30);
    let bad = run(br#"{"type": "bundle", "objects": [{"type": "#.to_vec());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(stderr.contains("error: standard input:"), "{stderr}");
    assert_eq!(store.count(INBOX, &listing).await.expect("count"), 30);
}
