//! Feeds (`[[feeds]]`): Taxiway pulling from another Taxiway over TAXII 2.1 and 2.0,
//! over plain HTTP and over HTTPS with a private CA; IOC lists, CSV and bundles
//! served by a local HTTP server; wrong credentials; restarts resuming from the
//! checkpoint; the runner following configuration reloads; leases on PostgreSQL; the
//! record of each feed's runs on the admin listener's `GET /feeds`.

mod common;
mod fixtures;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use common::backend::{Backend, Place};
use common::wait::eventually;
use common::{indicator, malware, objects_url, TestApp, INBOX};
use http_body_util::BodyExt;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::{json, Value};
use taxiway_model::feed_status::{FeedRun, FeedsReport, RunState, FEEDS_PATH};
use taxiway_server::admin::{self, Admin};
use taxiway_server::config::{self, ServiceConfig};
use taxiway_server::feeds::{pull_once, FeedError, Feeds, PullReport};
use taxiway_server::serve;
use taxiway_server::state::AppState;
use taxiway_server::store::sqlite::SqliteStore;
use taxiway_server::store::SharedStore;
use taxiway_server::taxii::envelope::parse_envelope;
use taxiway_server::tls::Tls;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower::ServiceExt;

/// The upstream's collections: the common test config, serving TAXII 2.1 and 2.0.
fn upstream_config() -> ServiceConfig {
    let text = common::config_text("type:indicator").replace(
        "default_api_root = \"feeds\"",
        "default_api_root = \"feeds\"\nversions = [\"2.1\", \"2.0\"]",
    );
    config::parse(&text).expect("upstream config")
}

/// The downstream: the common test config plus `feeds` (TOML of `[[feeds]]`), its
/// inbox granting write to each of those feeds (`feed:<name>`).
fn downstream_config(feeds: &str) -> ServiceConfig {
    config::parse(&downstream_text(feeds)).expect("downstream config")
}

/// [`downstream_config`]'s text.
fn downstream_text(feeds: &str) -> String {
    let grants: Vec<String> = feeds
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .map(|name| format!("\"feed:{name}\""))
        .collect();
    let base = common::config_text("type:indicator").replace(
        "alias = \"inbox-alias\"\nwritable = true\n",
        &format!(
            "alias = \"inbox-alias\"\nwritable = true\naccess = {{ write = [{}] }}\n",
            grants.join(", ")
        ),
    );
    format!("{base}\n{feeds}")
}

/// Store `objects` in `collection` of `store` directly (as the upstream's producers would).
async fn seed(store: &SharedStore, collection: &str, objects: Vec<Value>) {
    let body = json!({ "objects": objects }).to_string();
    let request = parse_envelope(body.as_bytes(), None).expect("envelope");
    let status = store
        .add_objects("feeds", collection, request)
        .await
        .expect("seed");
    assert_eq!(status.failure_count, 0);
}

/// Two indicators and a malware: what most pulls below start from.
fn three_objects() -> Vec<Value> {
    vec![
        indicator(1, 1, "10.0.0.1", 50),
        indicator(2, 1, "10.0.0.2", 50),
        malware(3),
    ]
}

/// Serve `router` on a local port (over TLS with `tls`) until the sender is dropped.
async fn serve_on(router: Router, tls: Option<Arc<Tls>>) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve::run(listener, router, tls, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// A Taxiway upstream over plain HTTP.
async fn upstream() -> (TestApp, SocketAddr, oneshot::Sender<()>) {
    let app = TestApp::with_config(upstream_config()).await;
    let (addr, stop) = serve_on(app.router.clone(), None).await;
    (app, addr, stop)
}

fn taxii_feed(name: &str, url: &str, extra: &str) -> String {
    format!(
        "[[feeds]]\nname = \"{name}\"\ninto = \"inbox\"\nurl = \"{url}\"\ncollection = \"inbox\"\n\
         interval_secs = 10\npage_size = 2\n{extra}\n"
    )
}

async fn pull(store: &SharedStore, config: &ServiceConfig) -> Result<PullReport, FeedError> {
    let mut report = PullReport::default();
    pull_once(store, config, &config.config.feeds[0], None, &mut report)
        .await
        .map(|()| report)
}

/// Every object of the downstream inbox (all versions), by listing page after page.
async fn inbox(app: &TestApp) -> Vec<Value> {
    let (status, _, envelope) = app
        .get(&format!(
            "{}?match[version]=all&limit=50",
            objects_url(INBOX)
        ))
        .await;
    assert_eq!(status, 200, "{envelope}");
    envelope["objects"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn taxii21_pulls_a_collection_then_only_what_was_added_after() {
    let (up, addr, _stop) = upstream().await;
    seed(&up.store, INBOX, three_objects()).await;
    let config = downstream_config(&taxii_feed(
        "partner",
        &format!("http://{addr}/taxii2/"),
        "",
    ));
    let down = TestApp::with_config(config.clone()).await;

    let first = pull(&down.store, &config).await.expect("first pull");
    assert_eq!((first.fetched, first.stored, first.rejected), (3, 3, 0));
    assert_eq!(inbox(&down).await.len(), 3);
    // Query collections are updated as by a POST.
    let (_, _, indicators) = down.get(&objects_url(common::INDICATORS)).await;
    assert_eq!(common::ids(&indicators).len(), 2);

    let again = pull(&down.store, &config).await.expect("repeat");
    assert_eq!(again.fetched, 0, "nothing added upstream: nothing fetched");

    seed(
        &up.store,
        INBOX,
        vec![indicator(1, 2, "10.0.0.1", 90), malware(4)],
    )
    .await;
    let next = pull(&down.store, &config).await.expect("next pull");
    assert_eq!(
        (next.fetched, next.stored),
        (2, 2),
        "only what was added after"
    );
    assert_eq!(inbox(&down).await.len(), 5);
}

#[tokio::test]
async fn match_types_keep_only_those_types() {
    let (up, addr, _stop) = upstream().await;
    seed(
        &up.store,
        INBOX,
        vec![indicator(1, 1, "10.0.0.1", 50), malware(3)],
    )
    .await;
    let config = downstream_config(&taxii_feed(
        "partner",
        &format!("http://{addr}/feeds/"),
        "match_types = [\"malware\"]",
    ));
    let down = TestApp::with_config(config.clone()).await;
    let report = pull(&down.store, &config).await.expect("pull");
    assert_eq!((report.fetched, report.stored), (2, 1));
    let types: Vec<Value> = inbox(&down)
        .await
        .iter()
        .map(|o| o["type"].clone())
        .collect();
    assert_eq!(types, [json!("malware")]);
}

#[tokio::test]
async fn taxii20_pulls_with_ranges() {
    let (up, addr, _stop) = upstream().await;
    seed(
        &up.store,
        INBOX,
        (1..=5)
            .map(|n| indicator(n, 1, &format!("10.0.1.{n}"), 50))
            .collect(),
    )
    .await;
    let config = downstream_config(&taxii_feed(
        "old-partner",
        &format!("http://{addr}/taxii/"),
        "",
    ));
    let down = TestApp::with_config(config.clone()).await;
    let report = pull(&down.store, &config).await.expect("2.0 pull");
    assert_eq!(
        (report.fetched, report.stored),
        (5, 5),
        "three pages of two"
    );
    let stored = inbox(&down).await;
    assert_eq!(stored.len(), 5);
    assert!(stored.iter().all(|o| o["spec_version"] == "2.1"));

    seed(&up.store, INBOX, vec![indicator(9, 1, "10.0.1.9", 50)]).await;
    let next = pull(&down.store, &config).await.expect("next");
    assert_eq!(next.fetched, 1, "resumed from the 2.0 date_added");
}

type Issuer = CertifiedIssuer<'static, KeyPair>;

fn ca() -> Issuer {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "feeds test CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

fn server_tls(dir: &Path, issuer: &Issuer) -> Arc<Tls> {
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, issuer).expect("sign");
    std::fs::write(dir.join("tls.crt"), cert.pem()).expect("crt");
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).expect("key");
    Arc::new(Tls::load(dir).expect("TLS"))
}

#[tokio::test]
async fn https_with_a_private_ca() {
    let issuer = ca();
    let dir = tempfile::tempdir().expect("tempdir");
    let up = TestApp::with_config(upstream_config()).await;
    seed(&up.store, INBOX, vec![indicator(1, 1, "10.0.0.1", 50)]).await;
    let (addr, _stop) = serve_on(up.router.clone(), Some(server_tls(dir.path(), &issuer))).await;
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, issuer.pem()).expect("ca");
    let url = format!("https://localhost:{}/taxii2/", addr.port());

    let untrusted = downstream_config(&taxii_feed("tls", &url, ""));
    let down = TestApp::with_config(untrusted.clone()).await;
    let err = pull(&down.store, &untrusted).await.expect_err("unknown CA");
    assert_eq!(err.kind(), "connect", "{err}");
    assert!(inbox(&down).await.is_empty());

    let trusted = downstream_config(&taxii_feed(
        "tls",
        &url,
        &format!("ca_file = {:?}", ca_file.display().to_string()),
    ));
    let report = pull(&down.store, &trusted).await.expect("trusted");
    assert_eq!(report.stored, 1);
}

#[tokio::test]
async fn a_restart_resumes_from_the_checkpoint() {
    let (up, addr, _stop) = upstream().await;
    seed(
        &up.store,
        INBOX,
        vec![indicator(1, 1, "10.0.0.1", 50), malware(2)],
    )
    .await;
    let config = downstream_config(&taxii_feed(
        "partner",
        &format!("http://{addr}/taxii2/"),
        "",
    ));
    let data = tempfile::tempdir().expect("tempdir");
    {
        let store: SharedStore = Arc::new(SqliteStore::open(data.path(), 2).expect("store"));
        store
            .apply_config(&common::store_setup(&config))
            .await
            .expect("apply");
        assert_eq!(pull(&store, &config).await.expect("pull").stored, 2);
        store.close().await.expect("close");
    }
    seed(&up.store, INBOX, vec![malware(3)]).await;
    let store: SharedStore = Arc::new(SqliteStore::open(data.path(), 2).expect("reopen"));
    store
        .apply_config(&common::store_setup(&config))
        .await
        .expect("apply");
    let report = pull(&store, &config).await.expect("after restart");
    assert_eq!(report.fetched, 1, "only what came after the checkpoint");
}

/// A local HTTP server serving `body` at `/list` (changeable while it runs).
async fn list_server(body: &str) -> (Arc<Mutex<String>>, SocketAddr, oneshot::Sender<()>) {
    let body = Arc::new(Mutex::new(body.to_string()));
    let served = body.clone();
    let router = Router::new().route(
        "/list",
        get(move || {
            let served = served.clone();
            async move { served.lock().expect("lock").clone() }
        }),
    );
    let (addr, stop) = serve_on(router, None).await;
    (body, addr, stop)
}

fn list_feed(addr: SocketAddr, format: &str, extra: &str) -> String {
    format!(
        "[[feeds]]\nname = \"blocklist\"\ninto = \"inbox-alias\"\nurl = \"http://{addr}/list\"\n\
         format = \"{format}\"\ninterval_secs = 60\n{extra}\n"
    )
}

#[tokio::test]
async fn lines_become_indicators_once_and_removals_expire() {
    let (body, addr, _stop) =
        list_server("# bad things\n198.51.100.7\nevil.example\n2001:db8::1\nnot an ioc!\n").await;
    let config = downstream_config(&list_feed(
        addr,
        "lines",
        "labels = [\"blocklist\"]\nconfidence = 70\ntlp = \"amber\"",
    ));
    let down = TestApp::with_config(config.clone()).await;
    let first = pull(&down.store, &config).await.expect("pull");
    assert_eq!((first.fetched, first.stored, first.rejected), (4, 3, 1));
    let stored = inbox(&down).await;
    assert_eq!(stored.len(), 3);
    let ip = stored
        .iter()
        .find(|o| o["pattern"] == "[ipv4-addr:value = '198.51.100.7']")
        .expect("ip indicator")
        .clone();
    assert_eq!(ip["confidence"], 70);
    assert_eq!(ip["labels"], json!(["blocklist"]));
    assert_eq!(
        ip["object_marking_refs"],
        json!(["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"])
    );
    assert_eq!(
        ip["id"],
        taxiway_server::feeds::indicators::indicator_id(
            "blocklist",
            "[ipv4-addr:value = '198.51.100.7']"
        )
    );

    let again = pull(&down.store, &config).await.expect("repeat");
    assert_eq!(again.stored, 0, "a repeated pull stores nothing");
    assert_eq!(inbox(&down).await.len(), 3);

    *body.lock().expect("lock") = "evil.example\n2001:db8::1\n".into();
    let removed = pull(&down.store, &config).await.expect("removal");
    assert_eq!(removed.stored, 1);
    let versions = inbox(&down).await;
    assert_eq!(versions.len(), 4, "a new version, nothing else");
    let expired = versions
        .iter()
        .find(|o| o["id"] == ip["id"] && o["modified"] != ip["modified"])
        .expect("expired version");
    assert_eq!(expired["valid_until"], expired["modified"]);
    assert_eq!(expired["created"], ip["created"]);
    assert!(expired.get("revoked").is_none());
}

#[tokio::test]
async fn csv_takes_its_column() {
    let (_body, addr, _stop) = list_server(
        "id,url,status\n1,http://a.example/x,online\n2,\"http://b.example/y,z\",online\n",
    )
    .await;
    let config = downstream_config(&list_feed(addr, "csv", "csv_column = 2"));
    let down = TestApp::with_config(config.clone()).await;
    let report = pull(&down.store, &config).await.expect("pull");
    assert_eq!((report.stored, report.rejected), (2, 0));
    let mut patterns: Vec<String> = inbox(&down)
        .await
        .iter()
        .map(|o| o["pattern"].as_str().unwrap_or_default().to_string())
        .collect();
    patterns.sort();
    assert_eq!(
        patterns,
        [
            "[url:value = 'http://a.example/x']",
            "[url:value = 'http://b.example/y,z']"
        ]
    );
}

#[tokio::test]
async fn bundles_are_stored_when_they_change() {
    let bundle = |objects: Vec<Value>| {
        json!({"type": "bundle", "id": "bundle--6f1e2c35-9a7d-4b0e-8c21-5d3f7a90b4e6", "objects": objects})
            .to_string()
    };
    let (body, addr, _stop) =
        list_server(&bundle(vec![malware(1), indicator(2, 1, "10.0.0.2", 5)])).await;
    let config = downstream_config(&list_feed(addr, "stix-bundle", ""));
    let down = TestApp::with_config(config.clone()).await;
    assert_eq!(pull(&down.store, &config).await.expect("pull").stored, 2);
    assert_eq!(pull(&down.store, &config).await.expect("repeat").fetched, 0);
    *body.lock().expect("lock") = bundle(vec![malware(1), malware(5)]);
    let changed = pull(&down.store, &config).await.expect("changed");
    assert_eq!(changed.fetched, 2);
    assert_eq!(inbox(&down).await.len(), 3, "malware 1 is held already");
}

#[tokio::test]
async fn wrong_credentials_count_an_error_store_nothing_and_recover() {
    let users = fixtures::users_toml();
    let up = fixtures::service(&fixtures::config_toml(""), &users).await;
    seed(
        &up.store,
        fixtures::INBOX,
        vec![indicator(1, 1, "10.0.0.1", 50)],
    )
    .await;
    let (addr, _stop) = serve_on(up.router.clone(), None).await;
    let secrets = tempfile::tempdir().expect("tempdir");
    let password = secrets.path().join("password");
    std::fs::write(&password, "wrong-pw\n").expect("write");
    let feed = |interval: u32| {
        format!(
            "[[feeds]]\nname = \"partner\"\ninto = \"inbox\"\nurl = \"http://{addr}/taxii2/\"\n\
             collection = \"everyone\"\ninterval_secs = {interval}\nusername = \"alice\"\n\
             password_file = {:?}\n",
            password.display().to_string()
        )
    };
    let down = TestApp::with_config(downstream_config(&feed(60))).await;
    let _feeds = Feeds::start(down.state.clone(), "test-replica".into());
    eventually("the auth error to be counted", async || {
        down.state
            .metrics
            .render(None)
            .contains("taxiway_feed_errors_total{feed=\"partner\",kind=\"auth\"} 1")
    })
    .await;
    assert!(inbox(&down).await.is_empty(), "nothing stored");
    let text = down.state.metrics.render(None);
    assert!(!text.contains("wrong-pw"));
    assert!(!text.contains("taxiway_feed_last_success_timestamp_seconds{feed=\"partner\"}"));

    // Fixed: the password file is corrected and the configuration reloaded.
    std::fs::write(&password, "alice-pw\n").expect("write");
    down.state
        .config
        .store(Arc::new(downstream_config(&feed(61))));
    eventually("the feed to recover", async || {
        inbox(&down).await.len() == 1
    })
    .await;
    eventually("the success to be recorded", async || {
        down.state
            .metrics
            .render(None)
            .contains("taxiway_feed_last_success_timestamp_seconds{feed=\"partner\"}")
    })
    .await;
}

#[tokio::test]
async fn removed_feeds_stop_and_added_feeds_start() {
    let (_body, addr, _stop) = list_server("198.51.100.7\n").await;
    let down = TestApp::with_config(downstream_config("")).await;
    let _feeds = Feeds::start(down.state.clone(), "test-replica".into());
    down.state
        .config
        .store(Arc::new(downstream_config(&list_feed(addr, "lines", ""))));
    eventually("the added feed to pull", async || {
        inbox(&down).await.len() == 1
    })
    .await;
}

async fn lease_is_exclusive(backend: Backend) {
    let place = Place::new(backend).await;
    let a = place.open().await;
    let b = place.open().await;
    let ttl = std::time::Duration::from_secs(60);
    assert!(a
        .lease_feed("partner", "replica-a", ttl)
        .await
        .expect("lease"));
    assert!(!b
        .lease_feed("partner", "replica-b", ttl)
        .await
        .expect("lease"));
    assert!(a
        .lease_feed("partner", "replica-a", ttl)
        .await
        .expect("renew"));
    assert!(b
        .lease_feed("other", "replica-b", ttl)
        .await
        .expect("other feed"));
    a.release_feed("partner", "replica-a")
        .await
        .expect("release");
    assert!(b
        .lease_feed("partner", "replica-b", ttl)
        .await
        .expect("taken over"));
    let expired = std::time::Duration::ZERO;
    assert!(b
        .lease_feed("short", "replica-b", expired)
        .await
        .expect("lease"));
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(a
        .lease_feed("short", "replica-a", ttl)
        .await
        .expect("expired lease taken"));

    assert_eq!(a.feed_checkpoint("partner").await.expect("read"), None);
    a.save_feed_checkpoint("partner", "{\"x\":1}")
        .await
        .expect("save");
    assert_eq!(
        b.feed_checkpoint("partner").await.expect("read").as_deref(),
        Some("{\"x\":1}")
    );

    // The record of a feed's runs is saved beside, leaving checkpoint and lease alone.
    assert_eq!(a.feed_run("partner").await.expect("read"), None);
    a.save_feed_run("partner", "{\"state\":\"syncing\"}")
        .await
        .expect("save run");
    a.save_feed_run("partner", "{\"state\":\"ok\"}")
        .await
        .expect("replace run");
    assert_eq!(
        b.feed_run("partner").await.expect("read").as_deref(),
        Some("{\"state\":\"ok\"}")
    );
    assert_eq!(
        a.feed_checkpoint("partner").await.expect("read").as_deref(),
        Some("{\"x\":1}"),
        "the checkpoint is kept"
    );
    assert!(
        !a.lease_feed("partner", "replica-a", ttl)
            .await
            .expect("lease"),
        "replica-b's lease is kept"
    );
    assert!(b
        .lease_feed("partner", "replica-b", ttl)
        .await
        .expect("renew"));
    a.save_feed_checkpoint("partner", "{\"x\":2}")
        .await
        .expect("save");
    assert_eq!(
        b.feed_run("partner").await.expect("read").as_deref(),
        Some("{\"state\":\"ok\"}"),
        "a checkpoint leaves the run alone"
    );
    // A run saved for a feed nobody leased yet leaves it free, with no checkpoint.
    b.save_feed_run("fresh", "{}").await.expect("save run");
    assert_eq!(a.feed_checkpoint("fresh").await.expect("read"), None);
    assert!(a
        .lease_feed("fresh", "replica-a", ttl)
        .await
        .expect("a free lease"));
}

#[tokio::test]
async fn sqlite_leases_and_checkpoints() {
    lease_is_exclusive(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn postgres_each_feed_runs_on_one_replica() {
    lease_is_exclusive(Backend::Postgres).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn postgres_pull_resumes_from_the_checkpoint() {
    let (up, addr, _stop) = upstream().await;
    seed(&up.store, INBOX, vec![indicator(1, 1, "10.0.0.1", 50)]).await;
    let config = downstream_config(&taxii_feed(
        "partner",
        &format!("http://{addr}/taxii2/"),
        "",
    ));
    let place = Place::new(Backend::Postgres).await;
    let down = TestApp::on(place, config.clone()).await;
    assert_eq!(pull(&down.store, &config).await.expect("pull").stored, 1);
    seed(&up.store, INBOX, vec![malware(2)]).await;
    let other_replica = down.db.as_ref().expect("db").open().await;
    let other: SharedStore = other_replica;
    other
        .apply_config(&common::store_setup(&config))
        .await
        .expect("apply");
    assert_eq!(
        pull(&other, &config).await.expect("other replica").fetched,
        1
    );
}

#[tokio::test]
async fn an_upstream_failing_midway_resumes_with_nothing_lost_or_twice() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let up = TestApp::with_config(upstream_config()).await;
    seed(
        &up.store,
        INBOX,
        (1..=5)
            .map(|n| indicator(n, 1, &format!("10.0.2.{n}"), 50))
            .collect(),
    )
    .await;
    // After the first page the upstream stops answering (404: not retried).
    let failing = Arc::new(AtomicBool::new(true));
    let gate = failing.clone();
    let router = up.router.clone().layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let gate = gate.clone();
            async move {
                let later_page = request.uri().query().is_some_and(|q| q.contains("next="));
                if gate.load(Ordering::SeqCst) && later_page {
                    return axum::http::StatusCode::NOT_FOUND.into_response();
                }
                next.run(request).await
            }
        },
    ));
    let (addr, _stop) = serve_on(router, None).await;
    let config = downstream_config(&taxii_feed(
        "partner",
        &format!("http://{addr}/taxii2/"),
        "",
    ));
    let down = TestApp::with_config(config.clone()).await;
    let mut report = PullReport::default();
    let err = pull_once(
        &down.store,
        &config,
        &config.config.feeds[0],
        None,
        &mut report,
    )
    .await
    .expect_err("stopped midway");
    assert_eq!(err.kind(), "http");
    assert_eq!(report.stored, 2, "the first page was stored");

    failing.store(false, Ordering::SeqCst);
    let resumed = pull(&down.store, &config).await.expect("resumed");
    // From the last checkpoint that splits no instant: the first page's last instant
    // is confirmed only by a next page starting later, which never came, so the page
    // in doubt may be fetched again (never skipped).
    assert!(
        (3..=5).contains(&resumed.fetched),
        "fetched {} on resuming",
        resumed.fetched
    );
    let mut ids: Vec<String> = inbox(&down)
        .await
        .iter()
        .map(|o| o["id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    assert_eq!(inbox(&down).await.len(), 5, "nothing twice");
}

#[tokio::test]
async fn retry_after_is_honoured_and_bodies_are_bounded() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let router = Router::new().route(
        "/list",
        get(move || {
            let counted = counted.clone();
            async move {
                if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                    (
                        axum::http::StatusCode::TOO_MANY_REQUESTS,
                        [(axum::http::header::RETRY_AFTER, "1")],
                        String::new(),
                    )
                } else {
                    (
                        axum::http::StatusCode::OK,
                        [(axum::http::header::CACHE_CONTROL, "no-store")],
                        "198.51.100.9\n".repeat(200),
                    )
                }
            }
        }),
    );
    let (addr, _stop) = serve_on(router, None).await;
    let config = downstream_config(&list_feed(addr, "lines", ""));
    let down = TestApp::with_config(config.clone()).await;
    let started = std::time::Instant::now();
    let report = pull(&down.store, &config).await.expect("after Retry-After");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    assert_eq!((report.stored, calls.load(Ordering::SeqCst)), (1, 2));

    let small = downstream_config(&list_feed(addr, "lines", "max_response_bytes = 1024"));
    let err = pull(&down.store, &small).await.expect_err("too large");
    assert_eq!(err.kind(), "too_large");
}

/// `GET /feeds` on `app`'s admin listener: the status, the content type and the body.
async fn admin_feeds(state: &AppState) -> (u16, String, String) {
    let admin = admin::router(Admin {
        app: state.clone(),
        ready: Arc::new(AtomicBool::new(true)),
    });
    let request = axum::http::Request::get(FEEDS_PATH)
        .body(axum::body::Body::empty())
        .expect("request");
    let response = admin.oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).expect("UTF-8"),
    )
}

/// The report of `GET /feeds`.
async fn feeds_report(app: &TestApp) -> FeedsReport {
    let (status, content_type, body) = admin_feeds(&app.state).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/json");
    serde_json::from_str(&body).expect("a FeedsReport")
}

/// The record of the first feed's runs, once it is in `state`.
async fn run_in_state(app: &TestApp, state: RunState) -> FeedRun {
    let mut found = None;
    eventually(&format!("the feed's run to be {state:?}"), async || {
        found = feeds_report(app).await.feeds[0]
            .run
            .clone()
            .filter(|r| r.state == state);
        found.is_some()
    })
    .await;
    found.expect("a run")
}

#[tokio::test]
async fn the_admin_listener_reports_each_feed_s_last_run() {
    let (up, addr, _stop) = upstream().await;
    seed(&up.store, INBOX, three_objects()).await;
    let config = downstream_config(&format!(
        "[[feeds]]\nname = \"partner\"\ninto = \"inbox\"\nurl = \"http://{addr}/taxii2/\"\n\
         collection = \"inbox\"\ninterval_secs = 600\n"
    ));
    let down = TestApp::with_config(config).await;

    let before = feeds_report(&down).await;
    assert_eq!(before.feeds.len(), 1);
    let feed = &before.feeds[0];
    assert_eq!(
        (
            feed.name.as_str(),
            feed.into.as_str(),
            feed.format.as_str(),
            feed.interval_secs
        ),
        ("partner", "inbox", "taxii", 600)
    );
    assert_eq!(feed.run, None, "no pull has started yet");

    let _feeds = Feeds::start(down.state.clone(), "test-replica".into());
    let run = run_in_state(&down, RunState::Ok).await;
    assert_eq!((run.fetched, run.stored, run.rejected), (3, 3, 0));
    assert_eq!((run.stored_total, run.consecutive_failures), (3, 0));
    assert_eq!((run.error_kind, run.error), (None, None));
    assert_eq!(run.holder, "test-replica");
    let finished = run.finished_at.expect("finishedAt");
    assert_eq!(run.last_success_at.as_deref(), Some(finished.as_str()));
    assert!(finished.ends_with('Z') && run.started_at <= finished);
    let (_, _, body) = admin_feeds(&down.state).await;
    assert!(body.contains("\"state\":\"ok\""), "{body}");
    assert!(body.contains("\"lastSuccessAt\""), "{body}");
    assert!(body.contains("\"intervalSecs\":600"), "{body}");
}

#[tokio::test]
async fn a_refused_pull_reports_failed_and_a_fixed_one_ok_again() {
    use std::sync::atomic::Ordering;
    let refusing = Arc::new(AtomicBool::new(true));
    let gate = refusing.clone();
    let router = Router::new().route(
        "/list",
        get(move || {
            let gate = gate.clone();
            async move {
                if gate.load(Ordering::SeqCst) {
                    axum::http::StatusCode::UNAUTHORIZED.into_response()
                } else {
                    "198.51.100.7\n".into_response()
                }
            }
        }),
    );
    let (addr, _stop) = serve_on(router, None).await;
    let secrets = tempfile::tempdir().expect("tempdir");
    let password = secrets.path().join("password");
    std::fs::write(&password, "s3cret-pw\n").expect("write");
    let feed = |interval: u32| {
        format!(
            "[[feeds]]\nname = \"blocklist\"\ninto = \"inbox-alias\"\nurl = \"http://{addr}/list\"\n\
             format = \"lines\"\ninterval_secs = {interval}\nusername = \"alice\"\n\
             password_file = {:?}\n",
            password.display().to_string()
        )
    };
    let down = TestApp::with_config(downstream_config(&feed(600))).await;
    let _feeds = Feeds::start(down.state.clone(), "test-replica".into());

    let failed = run_in_state(&down, RunState::Failed).await;
    assert_eq!(failed.error_kind.as_deref(), Some("auth"));
    assert!(failed.consecutive_failures >= 1);
    assert!(
        failed.error.as_deref().is_some_and(|e| e.contains("401")),
        "{failed:?}"
    );
    assert_eq!((failed.stored, failed.stored_total), (0, 0));
    assert_eq!(failed.last_success_at, None);
    assert!(inbox(&down).await.is_empty(), "nothing stored");
    let (_, _, body) = admin_feeds(&down.state).await;
    assert!(body.contains("\"errorKind\":\"auth\""), "{body}");
    assert!(!body.contains("s3cret-pw"), "{body}");
    assert!(
        !body.contains(&*secrets.path().display().to_string()),
        "{body}"
    );

    // Fixed upstream; the reload restarts the feed, which pulls at once.
    refusing.store(false, Ordering::SeqCst);
    down.state
        .config
        .store(Arc::new(downstream_config(&feed(601))));
    let ok = run_in_state(&down, RunState::Ok).await;
    assert_eq!((ok.stored, ok.stored_total), (1, 1));
    assert_eq!(ok.consecutive_failures, 0);
    assert_eq!((ok.error_kind, ok.error), (None, None));
    assert!(ok.last_success_at.is_some());
    assert_eq!(inbox(&down).await.len(), 1);
    assert_eq!(feeds_report(&down).await.feeds[0].interval_secs, 601);
}

#[test]
fn failed_pulls_are_retried_sooner_but_never_later_than_the_interval() {
    use std::time::Duration;
    use taxiway_server::feeds::next_pull_in;
    let interval = Duration::from_secs(900);
    assert_eq!(next_pull_in(interval, 0), interval);
    assert_eq!(next_pull_in(interval, 1), Duration::from_secs(30));
    assert_eq!(next_pull_in(interval, 3), Duration::from_secs(120));
    assert_eq!(next_pull_in(interval, 30), interval);
}

/// Two replicas on one PostgreSQL database, each running the feed runner: the feed is
/// pulled by one of them only (one pull's page requests reach the upstream, not two),
/// and both replicas' `GET /feeds` report that one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: TAXIWAY_TEST_POSTGRES_URL, run with --include-ignored"]
async fn postgres_two_replicas_pull_each_feed_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use taxiway_server::auth::Credentials;

    let up = TestApp::with_config(upstream_config()).await;
    seed(&up.store, INBOX, three_objects()).await;
    let pages = Arc::new(AtomicUsize::new(0));
    let counted = up
        .router
        .clone()
        .layer(axum::middleware::from_fn_with_state(
            pages.clone(),
            |axum::extract::State(pages): axum::extract::State<Arc<AtomicUsize>>,
             request: axum::extract::Request,
             next: axum::middleware::Next| async move {
                if request.uri().path().ends_with("/objects/") {
                    pages.fetch_add(1, Ordering::SeqCst);
                }
                next.run(request).await
            },
        ));
    let (addr, _stop) = serve_on(counted, None).await;
    // page_size 2: one pull of 3 objects asks for 2 pages.
    let config = downstream_config(&taxii_feed(
        "partner",
        &format!("http://{addr}/taxii2/"),
        "",
    ));
    let a = TestApp::on(Place::new(Backend::Postgres).await, config.clone()).await;
    let b_store = a.db.as_ref().expect("db").open().await;
    let b_store: SharedStore = b_store;
    b_store
        .apply_config(&common::store_setup(&config))
        .await
        .expect("apply");
    let b = AppState::new(config.clone(), b_store, Credentials::none());
    let _runner_a = Feeds::start(a.state.clone(), "replica-a".into());
    let _runner_b = Feeds::start(b.clone(), "replica-b".into());
    let run = run_in_state(&a, RunState::Ok).await;
    // Both runners tried at once; give a second pull time to show up if there were one.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        pages.load(Ordering::SeqCst),
        2,
        "one pull of two pages, not two"
    );
    assert_eq!(inbox(&a).await.len(), 3);
    assert!(
        ["replica-a", "replica-b"].contains(&run.holder.as_str()),
        "{run:?}"
    );
    // Either replica reports the run (it is read from the store).
    let (status, _, body) = admin_feeds(&b).await;
    assert_eq!(status, 200);
    let report: FeedsReport = serde_json::from_str(&body).expect("report");
    assert_eq!(
        report.feeds[0].run.as_ref().map(|r| r.holder.clone()),
        Some(run.holder)
    );
}
