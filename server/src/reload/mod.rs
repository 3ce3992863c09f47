//! Hot reload: one component for everything the server re-reads while it runs — the
//! collection configuration ([`config`]), the users (`auth::CredentialsDir`) and the
//! TLS files (`tls::Tls`).
//!
//! A source of reloadable state implements [`Reloadable`]: it names its directory,
//! re-reads and applies it, and says what to log. [`watch`] watches the directory
//! ([`DirWatcher`]: a burst of changes settles into one reload, and the directory is
//! re-read every 30 s even without events) and reloads the source after each change;
//! [`once`] runs one reload. Either way a reload is handled the same:
//!
//! - nothing changed: nothing is counted or logged;
//! - a change went live: counted as `ok` in the source's `taxiway_*_reloads_total`
//!   counter, then logged by the source;
//! - a change was refused: counted as `error`, then logged by the source; what was
//!   loaded before keeps serving. There is no retry beyond the next change or the
//!   periodic re-read.

pub mod config;
mod watch;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;

pub use self::config::ConfigDir;
pub use self::watch::DirWatcher;
use crate::metrics::Metrics;

/// Which `taxiway_*_reloads_total` counter a source's reloads are counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// `taxiway_config_reloads_total`.
    Config,
    /// `taxiway_credentials_reloads_total`.
    Credentials,
    /// `taxiway_tls_reloads_total`.
    Tls,
}

impl Counter {
    fn count(self, metrics: &Metrics, ok: bool) {
        match self {
            Counter::Config => metrics.reload(ok),
            Counter::Credentials => metrics.credentials_reload(ok),
            Counter::Tls => metrics.tls_reload(ok),
        }
    }
}

/// State the server re-reads from a directory while it runs.
pub trait Reloadable: Send + Sync + 'static {
    /// What an applied change was, for its log line.
    type Change: Send;
    /// Why a change was refused.
    type Error: Send;

    /// The counter this source's reloads are counted in.
    const COUNTER: Counter;

    /// The directory watched.
    fn dir(&self) -> &Path;

    /// Re-read the directory and apply it: `Ok(None)` when nothing changed, `Err`
    /// when the change is refused (and nothing changed).
    fn reload(&self) -> impl Future<Output = Result<Option<Self::Change>, Self::Error>> + Send;

    /// Log a change that went live.
    fn applied(&self, change: Self::Change);

    /// Log a refused change.
    fn rejected(&self, error: Self::Error);
}

/// Reload `source` once: count and log the outcome; returns whether a change went live.
pub async fn once<R: Reloadable>(source: &R, metrics: &Metrics) -> bool {
    match source.reload().await {
        Ok(None) => false,
        Ok(Some(change)) => {
            R::COUNTER.count(metrics, true);
            source.applied(change);
            true
        }
        Err(error) => {
            R::COUNTER.count(metrics, false);
            source.rejected(error);
            false
        }
    }
}

/// Watch the directory of `source` and reload it after each settled burst of changes
/// (see [`once`]); reloading stops when the returned watcher is dropped.
pub fn watch<R: Reloadable>(source: Arc<R>, metrics: Arc<Metrics>) -> notify::Result<DirWatcher> {
    let (tx, mut rx) = mpsc::channel(4);
    let watcher = DirWatcher::start(&[source.dir().to_path_buf()], tx)?;
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            once(&*source, &metrics).await;
        }
    });
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Mutex;

    use super::*;

    /// A source whose next reload outcome is set by the test.
    struct Scripted {
        dir: PathBuf,
        next: Mutex<Option<Result<Option<&'static str>, &'static str>>>,
        logged: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn new(next: Result<Option<&'static str>, &'static str>) -> Scripted {
            Scripted {
                dir: PathBuf::from("/nonexistent"),
                next: Mutex::new(Some(next)),
                logged: Mutex::new(Vec::new()),
            }
        }

        fn logged(&self) -> Vec<String> {
            self.logged.lock().expect("lock").clone()
        }
    }

    impl Reloadable for Scripted {
        type Change = &'static str;
        type Error = &'static str;
        const COUNTER: Counter = Counter::Credentials;

        fn dir(&self) -> &Path {
            &self.dir
        }

        async fn reload(&self) -> Result<Option<&'static str>, &'static str> {
            self.next.lock().expect("lock").take().unwrap_or(Ok(None))
        }

        fn applied(&self, change: &'static str) {
            self.logged
                .lock()
                .expect("lock")
                .push(format!("applied {change}"));
        }

        fn rejected(&self, error: &'static str) {
            self.logged
                .lock()
                .expect("lock")
                .push(format!("rejected {error}"));
        }
    }

    fn counted(metrics: &Metrics, result: &str) -> bool {
        metrics.render(None).contains(&format!(
            "taxiway_credentials_reloads_total{{result=\"{result}\"}} 1"
        ))
    }

    #[tokio::test]
    async fn an_applied_change_is_counted_and_logged() {
        let (source, metrics) = (Scripted::new(Ok(Some("users"))), Metrics::new());
        assert!(once(&source, &metrics).await);
        assert!(counted(&metrics, "ok"));
        assert_eq!(source.logged(), vec!["applied users"]);
    }

    #[tokio::test]
    async fn a_refused_change_is_counted_and_logged() {
        let (source, metrics) = (Scripted::new(Err("broken")), Metrics::new());
        assert!(!once(&source, &metrics).await);
        assert!(counted(&metrics, "error"));
        assert_eq!(source.logged(), vec!["rejected broken"]);
    }

    #[tokio::test]
    async fn no_change_is_neither_counted_nor_logged() {
        let (source, metrics) = (Scripted::new(Ok(None)), Metrics::new());
        assert!(!once(&source, &metrics).await);
        assert!(!counted(&metrics, "ok") && !counted(&metrics, "error"));
        assert!(source.logged().is_empty());
    }
}
