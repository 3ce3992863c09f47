//! Directory watching for hot reload.
//!
//! Kubernetes updates a mounted ConfigMap or Secret by writing a new timestamped
//! directory and atomically swapping the `..data` symlink, so the *directory* is
//! watched, not the files. Events are coalesced: a burst of changes yields one reload.

use std::path::PathBuf;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long to wait for a burst of file events to settle before reloading.
const SETTLE: Duration = Duration::from_millis(150);

/// How often directories are re-read even without events (a safety net for
/// filesystems where inotify misses changes, e.g. some network volumes).
const POLL: Duration = Duration::from_secs(30);

/// Watches directories and sends a signal after each settled burst of changes.
pub struct DirWatcher {
    _watcher: RecommendedWatcher,
}

impl DirWatcher {
    /// Start watching `dirs` (missing ones are skipped); `changed` receives `()` per burst.
    pub fn start(dirs: &[PathBuf], changed: mpsc::Sender<()>) -> notify::Result<DirWatcher> {
        let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok() {
                    let _ = raw_tx.send(());
                }
            })?;
        for dir in dirs {
            if dir.is_dir() {
                watcher.watch(dir, RecursiveMode::NonRecursive)?;
            }
        }
        tokio::spawn(async move {
            loop {
                let woke = tokio::time::timeout(POLL, raw_rx.recv()).await;
                if let Ok(None) = woke {
                    return; // watcher dropped
                }
                // Let the burst settle, then drain it.
                tokio::time::sleep(SETTLE).await;
                while raw_rx.try_recv().is_ok() {}
                if changed.send(()).await.is_err() {
                    return;
                }
            }
        });
        Ok(DirWatcher { _watcher: watcher })
    }
}
