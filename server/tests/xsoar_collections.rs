//! A Cortex XSOAR TAXII2 Server migrated as it is: `collections.json` beside
//! `taxiway.toml` (examples/xsoar) serves each XSOAR query as a collection with the
//! expected title, description, id and contents; a query Taxiway cannot honour is
//! refused while the previous configuration keeps serving; edits hot-reload.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};

use common::wait::eventually;
use common::{TestApp, TAXII21};
use taxiway_model::stix::timestamp::{format_taxii, now_us};
use taxiway_server::config::{self, xsoar::collection_id};
use taxiway_server::reload::{self, ConfigDir};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/xsoar");
const ROOT: &str = "threatintel";
const OTX: &str = "d316c338-486a-4860-9e5e-f0cfbdc3cd62";
const PARTNER: &str = "fe30e257-4dc3-4bb0-a9b2-e8c899bb9f46";
const DAY_US: i64 = 86_400_000_000;

/// The example config directory, copied so the test can edit it.
fn config_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for file in ["taxiway.toml", "collections.json"] {
        std::fs::copy(Path::new(EXAMPLE).join(file), dir.path().join(file)).expect("copy");
    }
    dir
}

/// Replace `collections.json` at once, as an editor saving it does.
fn save(dir: &Path, json: &str) {
    let tmp = dir.join(".collections.json.swp");
    std::fs::write(&tmp, json).expect("write");
    std::fs::rename(&tmp, dir.join("collections.json")).expect("rename");
}

fn reloads(app: &TestApp, result: &str) -> u64 {
    let prefix = format!("taxiway_config_reloads_total{{result=\"{result}\"}} ");
    app.state
        .metrics
        .render(None)
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()).map(str::to_owned))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// The corpus: a letter names each object; `recent` ones were modified yesterday.
struct Corpus {
    objects: Vec<(&'static str, &'static str, Value)>,
}

fn indicator(
    letter: char,
    pattern: &str,
    confidence: Option<u32>,
    labels: &[&str],
    created: &str,
    recent: bool,
) -> Value {
    let modified = if recent {
        format_taxii(now_us() - DAY_US)
    } else {
        created.to_owned()
    };
    let mut object = json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": format!("indicator--{:08x}-0000-4000-8000-000000000000", letter as u32),
        "created": created,
        "modified": modified,
        "name": format!("indicator {letter}"),
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": created,
    });
    if let Some(c) = confidence {
        object["confidence"] = json!(c);
    }
    if !labels.is_empty() {
        object["labels"] = json!(labels);
    }
    object
}

fn corpus() -> Corpus {
    let future = format_taxii(now_us() + 30 * DAY_US);
    let with = |mut o: Value, key: &str, value: Value| {
        o[key] = value;
        o
    };
    let objects = vec![
        ("A", OTX, indicator('A', "[ipv4-addr:value = '203.0.113.10']", Some(90), &["c2"], "2024-03-01T00:00:00.000Z", true)),
        ("B", PARTNER, indicator('B', "[ipv4-addr:value = '198.51.100.7']", Some(40), &["scanner"], "2024-05-01T00:00:00.000Z", false)),
        ("C", OTX, indicator('C', "[ipv4-addr:value = '198.51.100.0/24']", Some(75), &["botnet"], "2024-06-01T00:00:00.000Z", true)),
        ("D", PARTNER, indicator('D', "[ipv4-addr:value = '10.0.0.0/8']", Some(75), &["internal"], "2023-01-01T00:00:00.000Z", false)),
        ("E", OTX, indicator('E', "[domain-name:value = 'evil.example']", Some(60), &["phishing"], "2024-02-02T00:00:00.000Z", false)),
        ("F", PARTNER, indicator('F', "[domain-name:value = '*.evil.example']", Some(80), &[], "2025-02-01T00:00:00.000Z", false)),
        ("G", OTX, with(
            indicator('G', "[url:value = 'http://login.evil.example/verify']", Some(85), &["phishing"], "2024-07-07T00:00:00.000Z", true),
            "valid_until", json!(future),
        )),
        ("H", PARTNER, with(
            indicator('H', "[url:value = 'http://old.example/x']", Some(85), &["phishing"], "2023-06-01T00:00:00.000Z", false),
            "valid_until", json!("2024-01-31T00:00:00.000Z"),
        )),
        ("I", PARTNER, indicator('I', "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']", Some(95), &["emotet"], "2024-08-01T00:00:00.000Z", false)),
        ("J", OTX, with(
            indicator('J', "[file:hashes.MD5 = '6cf9fd0a8a7e9e0d1e1f2a3b4c5d6e7f']", Some(70), &[], "2024-09-01T00:00:00.000Z", false),
            "revoked", json!(true),
        )),
        ("K", PARTNER, indicator('K', "[email-addr:value = 'ceo@evil.example']", Some(70), &["phishing"], "2024-10-01T00:00:00.000Z", false)),
        ("L", PARTNER, indicator('L', "[email-addr:value = 'newsletter@good.example']", Some(10), &[], "2024-04-01T00:00:00.000Z", false)),
        ("M", OTX, json!({
            "type": "malware",
            "spec_version": "2.1",
            "id": "malware--0000004d-0000-4000-8000-000000000000",
            "created": "2024-01-15T00:00:00.000Z",
            "modified": "2024-01-15T00:00:00.000Z",
            "name": "Emotet",
            "is_family": true
        })),
        ("N", PARTNER, indicator('N', "[ipv4-addr:value = '192.0.2.55']", None, &[], "2023-03-03T00:00:00.000Z", false)),
    ];
    Corpus { objects }
}

impl Corpus {
    fn letter_of(&self, id: &str) -> &'static str {
        self.objects
            .iter()
            .find(|(_, _, o)| o["id"] == id)
            .map_or("?", |(letter, _, _)| letter)
    }
}

async fn post(app: &TestApp, collection: &str, objects: Vec<Value>) {
    let (status, _, body) = app
        .send(
            Request::post(format!("/{ROOT}/collections/{collection}/objects/"))
                .header(header::CONTENT_TYPE, TAXII21)
                .header(header::ACCEPT, TAXII21)
                .body(Body::from(json!({ "objects": objects }).to_string()))
                .expect("request"),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let status: Value = serde_json::from_slice(&body).expect("status");
    assert_eq!(status["failure_count"], 0, "{status}");
}

/// The letters of the objects a collection serves; `None` while it is not served.
async fn contents(app: &TestApp, corpus: &Corpus, id: &str) -> Option<BTreeSet<&'static str>> {
    let (status, _, envelope) = app.get(&format!("/{ROOT}/collections/{id}/objects/")).await;
    if status != StatusCode::OK {
        return None;
    }
    let letters = envelope["objects"]
        .as_array()
        .map(|objects| {
            objects
                .iter()
                .map(|o| corpus.letter_of(o["id"].as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    Some(letters)
}

/// Title → (id, description) of the API root's collections, in the order listed.
async fn listing(app: &TestApp) -> Vec<(String, String, Option<String>)> {
    let (status, _, body) = app.get(&format!("/{ROOT}/collections/")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["collections"]
        .as_array()
        .expect("collections")
        .iter()
        .map(|c| {
            (
                c["title"].as_str().unwrap_or_default().to_owned(),
                c["id"].as_str().unwrap_or_default().to_owned(),
                c["description"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn letters(s: &str) -> Option<BTreeSet<&str>> {
    Some(s.split_whitespace().collect())
}

/// What each collection of examples/xsoar/collections.json serves from the corpus.
const EXPECTED: &[(&str, Option<&str>, &str)] = &[
    ("Malicious IPs", None, "A"),
    (
        "Suspicious network",
        Some("IPs, ranges and domains scored Suspicious or Malicious"),
        "A B C D E",
    ),
    ("CIDR blocklist", None, "C"),
    (
        "Domain globs",
        Some("Wildcard domains for the web proxy"),
        "F",
    ),
    (
        "Phishing URLs",
        Some("URLs tagged \"phishing\" by the mail gateway"),
        "G H",
    ),
    ("Active file hashes", None, "I"),
    ("Phishing senders", None, "K"),
    (
        "Adversaries",
        Some("Malware families and threat actors"),
        "M",
    ),
    ("OTX last week", None, "A C G"),
    (
        "Expired",
        Some("Revoked or past their expiration, for clean-up jobs"),
        "H J",
    ),
    ("Emotet", None, "I M"),
    (
        "Bad in 2024",
        Some("First seen in 2024, reputation Bad"),
        "A C G I J K",
    ),
    ("Unscored", None, "N"),
];

#[tokio::test]
async fn xsoar_collections_are_served_as_written_and_hot_reload() {
    let dir = config_dir();
    let loaded = config::load_dir(dir.path()).expect("the example is valid");
    let app = TestApp::with_config(loaded).await;
    let source = ConfigDir::new(dir.path(), app.state.config.clone(), app.store.clone());
    let _watcher = reload::watch(Arc::new(source), app.state.metrics.clone()).expect("watch");

    let corpus = corpus();
    for inbox in [OTX, PARTNER] {
        let objects = corpus
            .objects
            .iter()
            .filter(|(_, to, _)| *to == inbox)
            .map(|(_, _, o)| o.clone())
            .collect();
        post(&app, inbox, objects).await;
    }

    // Titles, descriptions and ids, in file order after taxiway.toml's collections.
    let listed = listing(&app).await;
    let titles: Vec<&str> = listed.iter().map(|(t, _, _)| t.as_str()).collect();
    let mut expected_titles = vec!["AlienVault OTX", "partner-inbox"];
    expected_titles.extend(EXPECTED.iter().map(|(t, _, _)| *t));
    assert_eq!(titles, expected_titles);
    for (title, description, _) in EXPECTED {
        let (_, id, listed_description) =
            listed.iter().find(|(t, _, _)| t == title).expect("listed");
        assert_eq!(id, &collection_id(ROOT, title), "{title}");
        assert_eq!(listed_description.as_deref(), *description, "{title}");
    }
    // The ids are the documented, stable ones.
    assert_eq!(
        collection_id(ROOT, "Malicious IPs"),
        "736a5dd9-529d-4821-8c18-111e29eeffd0"
    );

    for (title, _, members) in EXPECTED {
        let id = collection_id(ROOT, title);
        let want = letters(members);
        eventually(&format!("{title} to serve {members}"), async || {
            contents(&app, &corpus, &id).await == want
        })
        .await;
    }

    // A field Taxiway cannot honour: refused, logged and counted; the previous
    // configuration keeps serving.
    let original = std::fs::read_to_string(dir.path().join("collections.json")).expect("read");
    let broken = original.replacen(
        "\"Malicious IPs\": \"type:IP verdict:Malicious\"",
        "\"Malicious IPs\": \"type:IP verdict:Malicious investigationIDs:1234\"",
        1,
    );
    assert_ne!(broken, original);
    let problems = config::parse_files(
        &std::fs::read_to_string(dir.path().join("taxiway.toml")).expect("read"),
        Some(&broken),
    )
    .expect_err("refused")
    .to_string();
    assert_eq!(
        problems,
        "collections.json \"Malicious IPs\".query: XSOAR query at column 27: field \
         'investigationIDs' cannot be translated: it refers to XSOAR incidents, which Taxiway \
         does not have"
    );
    save(dir.path(), &broken);
    eventually("the broken collections.json to be refused", async || {
        reloads(&app, "error") >= 1
    })
    .await;
    assert_eq!(listing(&app).await, listed);
    assert_eq!(
        contents(&app, &corpus, &collection_id(ROOT, "Malicious IPs")).await,
        letters("A")
    );

    // A valid edit goes live: a changed query, a new collection; the others keep their ids.
    let edited = original
        .replacen("type:IP verdict:Malicious", "type:IP verdict:Suspicious", 1)
        .replacen(
            "{\n",
            "{\n  \"All URLs\": {\"query\": \"type:url\", \"description\": \"Every URL\"},\n",
            1,
        );
    save(dir.path(), &edited);
    let all_urls = collection_id(ROOT, "All URLs");
    eventually("the edited collections.json to be served", async || {
        contents(&app, &corpus, &all_urls).await == letters("G H")
    })
    .await;
    assert_eq!(reloads(&app, "ok"), 1);
    assert_eq!(
        contents(&app, &corpus, &collection_id(ROOT, "Malicious IPs")).await,
        letters("B")
    );
    let relisted = listing(&app).await;
    assert_eq!(relisted[2].0, "All URLs");
    assert_eq!(relisted[2].2.as_deref(), Some("Every URL"));
    assert_eq!(&relisted[3..], &listed[2..]);
}

#[test]
fn check_config_shows_each_translation() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_taxiway-server"))
        .args(["check-config", "--config-dir", EXAMPLE])
        .output()
        .expect("run check-config");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("valid (1 API roots, 15 collections)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "  \"Malicious IPs\" draws from \"AlienVault OTX\", \"partner-inbox\" (default: those \
             its readers may read)\n    \
             XSOAR query (collections.json \"Malicious IPs\"): type:IP verdict:Malicious\n    \
             translated: ioc_type:ipv4-addr and not ioc_value:*/* and confidence:>=70\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("    translated: ioc_value:*emotet* or name:*emotet* or labels:emotet\n"),
        "{stdout}"
    );
}
