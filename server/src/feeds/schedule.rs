//! Running the configured feeds: one task per feed, started, restarted and stopped as
//! the configuration serving changes (checked every second, so `[[feeds]]` is
//! hot-reloaded with the rest of `taxiway.toml`). Each task pulls under a lease in the
//! store, so with several replicas on one database each feed runs on one at a time;
//! it pulls at once, then every `interval_secs` (±10% jitter), sooner after a failed
//! pull ([`next_pull_in`]). Each pull is recorded in the store
//! ([`crate::feeds::status`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use taxiway_model::feed_status::FeedRun;
use tokio::task::JoinHandle;

use crate::config::Feed;
use crate::feeds::client::jitter;
use crate::feeds::pull::Lease;
use crate::feeds::run::pull_once;
use crate::feeds::sink::PullReport;
use crate::feeds::status::Recorder;
use crate::state::AppState;

/// How often the supervisor compares the running feeds with the configuration.
const CHECK: Duration = Duration::from_secs(1);

/// The wait before retrying a feed whose pull failed once; it doubles with each
/// failure in a row, up to the feed's interval.
pub const FIRST_RETRY: Duration = Duration::from_secs(30);

/// How long a feed waits before its next pull (before jitter): `interval` after a
/// success, and after `consecutive_failures` failed pulls in a row
/// `min(interval, 30 s × 2^(consecutive_failures − 1))`, so a feed whose upstream or
/// credentials are fixed recovers within minutes. Never more than `interval`, which
/// the feed's lease outlives.
pub fn next_pull_in(interval: Duration, consecutive_failures: u32) -> Duration {
    if consecutive_failures == 0 {
        return interval;
    }
    let doublings = (consecutive_failures - 1).min(16);
    FIRST_RETRY.saturating_mul(1 << doublings).min(interval)
}

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
        // Outlives the next pull's start (the wait is at most 1.1 × interval, also
        // after a failure): a replica that stops pulling loses it.
        ttl: interval * 2 + Duration::from_secs(feed.timeout_secs * 4 + 60),
    };
    // The record of this process's last pull, should the store's be unreadable.
    let mut last: Option<FeedRun> = None;
    loop {
        // Failed pulls in a row, when this process just pulled.
        let failures = match state
            .store
            .lease_feed(&feed.name, &lease.holder, lease.ttl)
            .await
        {
            Ok(true) => {
                let run = run_and_record(&state, &feed, &lease, last.as_ref()).await;
                let failures = run.consecutive_failures;
                last = Some(run);
                failures
            }
            Ok(false) => {
                tracing::debug!(target: "taxiway::feeds", feed = %feed.name, "another replica runs this feed");
                0
            }
            Err(e) => {
                state.metrics.feeds().failed(&feed.name, "store");
                tracing::warn!(target: "taxiway::feeds", feed = %feed.name, error = %e, "cannot take the feed's lease");
                0
            }
        };
        let wait = next_pull_in(interval, failures);
        tokio::time::sleep(wait.mul_f64(0.9 + 0.2 * jitter())).await;
    }
}

/// One pull, its record in the store, its metrics and its log line (never a
/// credential: errors carry neither URLs' query strings nor file contents). Returns
/// the feed's record after it.
async fn run_and_record(
    state: &AppState,
    feed: &Feed,
    lease: &Lease,
    last: Option<&FeedRun>,
) -> FeedRun {
    let config = state.config.load_full();
    let recorder = Recorder::start(&state.store, &state.metrics, feed, &lease.holder, last).await;
    let started = Instant::now();
    let mut report = PullReport::default();
    let result = pull_once(&state.store, &config, feed, Some(lease), &mut report).await;
    let seconds = started.elapsed().as_secs_f64();
    let run = recorder.finish(&report, result.as_ref().err()).await;
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
            consecutive_failures = run.consecutive_failures,
            "feed pull failed"
        ),
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_pulls_are_retried_sooner_doubling_up_to_the_interval() {
        let interval = Duration::from_secs(900);
        let waits: Vec<u64> = (0..8)
            .map(|n| next_pull_in(interval, n).as_secs())
            .collect();
        assert_eq!(waits, [900, 30, 60, 120, 240, 480, 900, 900]);
        assert_eq!(next_pull_in(interval, u32::MAX), interval);
        // A short interval is never exceeded: the lease outlives every wait.
        let short = Duration::from_secs(10);
        assert_eq!(next_pull_in(short, 1), short);
        assert_eq!(next_pull_in(Duration::from_secs(45), 1).as_secs(), 30);
        assert_eq!(next_pull_in(Duration::from_secs(45), 2).as_secs(), 45);
    }
}
