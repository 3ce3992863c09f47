//! Hot reload: a Kubernetes-style `..data` symlink swap changes what is served
//! without a restart; a broken config is rejected and the old one keeps serving.

mod common;

use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use common::wait::eventually;
use common::*;
use taxiway_server::reload::{self, ConfigDir};

/// Write `text` as a new timestamped directory and swap `..data` to it, as the kubelet does.
fn publish(dir: &Path, generation: u32, text: &str) {
    let versioned = dir.join(format!("..2026_11_23_00_00_{generation:02}"));
    std::fs::create_dir_all(&versioned).expect("mkdir");
    std::fs::write(versioned.join("taxiway.toml"), text).expect("write");
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(versioned.file_name().expect("name"), &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap");
    let link = dir.join("taxiway.toml");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("..data/taxiway.toml", &link).expect("link");
    }
}

/// How many configuration changes were rejected so far.
fn rejected(app: &TestApp) -> u64 {
    let metrics = app.state.metrics.render(None);
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("taxiway_config_reloads_total{result=\"error\"} "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn symlink_swap_reloads_and_broken_config_keeps_the_old_one() {
    let config_dir = tempfile::tempdir().expect("tmp");
    publish(config_dir.path(), 1, &config_text("type:indicator"));
    let app =
        TestApp::with_config(taxiway_server::config::load_dir(config_dir.path()).expect("valid"))
            .await;
    let source = ConfigDir::new(
        config_dir.path(),
        app.state.config.clone(),
        app.store.clone(),
    );
    let _watcher = reload::watch(Arc::new(source), app.state.metrics.clone()).expect("watch");
    app.post(INBOX, vec![indicator(1, 1, "198.51.100.1", 90), malware(1)])
        .await;
    let (_, _, before) = app.get(&objects_url(INDICATORS)).await;
    assert_eq!(
        ids(&before),
        vec!["indicator--00000001-0000-4000-8000-000000000000"]
    );

    // Change the query: the same collection now serves malware.
    publish(config_dir.path(), 2, &config_text("type:malware"));
    eventually("the changed query to be served", async || {
        let (_, _, v) = app.get(&objects_url(INDICATORS)).await;
        ids(&v) == vec!["malware--00000001-0000-4000-8000-000000000000"]
    })
    .await;

    // A broken query is rejected; the previous configuration keeps serving.
    publish(config_dir.path(), 3, &config_text("type:malware and ("));
    eventually("the broken query to be rejected", async || {
        rejected(&app) >= 1
    })
    .await;
    let (s, _, v) = app.get(&objects_url(INDICATORS)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        ids(&v),
        vec!["malware--00000001-0000-4000-8000-000000000000"]
    );
    let metrics = app.state.metrics.render(None);
    assert!(
        metrics.contains("taxiway_config_reloads_total{result=\"error\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("taxiway_config_reloads_total{result=\"ok\"} 1"),
        "{metrics}"
    );

    // Garbage TOML is rejected the same way.
    publish(config_dir.path(), 4, "this is = = not toml");
    eventually("the garbage TOML to be rejected", async || {
        rejected(&app) >= 2
    })
    .await;
    assert_eq!(app.get(&objects_url(INDICATORS)).await.0, StatusCode::OK);
}
