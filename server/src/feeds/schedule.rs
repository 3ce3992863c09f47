//! Running the configured feeds: one task per feed, started, restarted and stopped as
//! the configuration serving changes (checked every second, so `[[feeds]]` is
//! hot-reloaded with the rest of `taxiway.toml`). Each task pulls under a lease in the
//! store, so with several replicas on one database each feed runs on one at a time;
//! it pulls at once, then every `interval_secs` (±10% jitter).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::config::Feed;
use crate::feeds::client::jitter;
use crate::feeds::pull::Lease;
use crate::feeds::run::pull_once;
use crate::feeds::sink::PullReport;
use crate::state::AppState;

/// How often the supervisor compares the running feeds with the configuration.
const CHECK: Duration = Duration::from_secs(1);

/// The feed runner of one process.
pub struct Feeds {
    task: JoinHandle<()>,
}

impl Drop for Feeds {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Feeds {
    /// Start running the feeds `state`'s configuration names, now and as it changes.
    /// `holder` names this process in feed leases: stable across its restarts (so a
    /// restarted server resumes at once) and distinct between replicas.
    pub fn start(state: AppState, holder: String) -> Feeds {
        Feeds {
            task: tokio::spawn(supervise(state, holder)),
        }
    }
}

/// A stable name for this process in leases: the host name and the TAXII port.
pub fn holder_name(port: u16) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "taxiway".into());
    format!("{host}:{port}")
}

struct Running {
    feed: Feed,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn supervise(state: AppState, holder: String) {
    let holder = Arc::new(holder);
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut tick = tokio::time::interval(CHECK);
    loop {
        tick.tick().await;
        let config = state.config.load_full();
        let wanted = &config.config.feeds;
        running.retain(|name, r| {
            let keep = wanted.iter().any(|f| f == &r.feed);
            if !keep {
                tracing::info!(target: "taxiway::feeds", feed = %name, "feed stopped (removed or changed)");
            }
            keep
        });
        for feed in wanted {
            if running.contains_key(&feed.name) {
                continue;
            }
            tracing::info!(target: "taxiway::feeds", feed = %feed.name, format = feed.format.as_str(), interval_secs = feed.interval_secs, "feed started");
            let task = tokio::spawn(run_feed(state.clone(), feed.clone(), holder.clone()));
            running.insert(
                feed.name.clone(),
                Running {
                    feed: feed.clone(),
                    task,
                },
            );
        }
    }
}

/// Pull `feed` now and every interval while this process holds its lease.
async fn run_feed(state: AppState, feed: Feed, holder: Arc<String>) {
    let interval = Duration::from_secs(feed.interval_secs);
    let lease = Lease {
        holder: holder.to_string(),
        // Outlives the next pull's start: a replica that stops pulling loses it.
        ttl: interval * 2 + Duration::from_secs(feed.timeout_secs * 4 + 60),
    };
    loop {
        match state
            .store
            .lease_feed(&feed.name, &lease.holder, lease.ttl)
            .await
        {
            Ok(true) => run_and_record(&state, &feed, &lease).await,
            Ok(false) => {
                tracing::debug!(target: "taxiway::feeds", feed = %feed.name, "another replica runs this feed")
            }
            Err(e) => {
                state.metrics.feeds().failed(&feed.name, "store");
                tracing::warn!(target: "taxiway::feeds", feed = %feed.name, error = %e, "cannot take the feed's lease");
            }
        }
        tokio::time::sleep(interval.mul_f64(0.9 + 0.2 * jitter())).await;
    }
}

/// One pull, its metrics and its log line (never a credential: errors carry neither
/// URLs' query strings nor file contents).
async fn run_and_record(state: &AppState, feed: &Feed, lease: &Lease) {
    let config = state.config.load_full();
    let started = Instant::now();
    let mut report = PullReport::default();
    let result = pull_once(&state.store, &config, feed, Some(lease), &mut report).await;
    let seconds = started.elapsed().as_secs_f64();
    let counts = [report.fetched, report.stored, report.rejected];
    state.metrics.feeds().pulled(
        &feed.name,
        seconds,
        counts,
        result.as_ref().err().map(|e| e.kind()),
    );
    state.metrics.objects_added(report.stored, report.rejected);
    let duration_ms = (seconds * 1000.0) as u64;
    match result {
        Ok(()) => tracing::info!(
            target: "taxiway::feeds",
            feed = %feed.name,
            format = feed.format.as_str(),
            into = %feed.into,
            outcome = "ok",
            fetched = report.fetched,
            stored = report.stored,
            rejected = report.rejected,
            duration_ms,
            "feed pulled"
        ),
        Err(e) => tracing::warn!(
            target: "taxiway::feeds",
            feed = %feed.name,
            format = feed.format.as_str(),
            into = %feed.into,
            outcome = "error",
            kind = e.kind(),
            error = %e,
            fetched = report.fetched,
            stored = report.stored,
            rejected = report.rejected,
            duration_ms,
            "feed pull failed"
        ),
    }
}
