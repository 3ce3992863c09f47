//! The record of a feed's runs ([`FeedRun`]), kept in the store beside its
//! checkpoint: saved as `syncing` when a pull starts and as `ok` or `failed` when it
//! ends (through [`crate::store::feed_run`], which the admin listener's `GET /feeds`
//! reads back, so every replica on one database reports the same).
//!
//! Recording never fails a pull: a record that cannot be saved is logged and counted
//! as a `store` error of the feed.

use taxiway_model::feed_status::{FeedRun, RunState};

use crate::config::Feed;
use crate::feeds::error::FeedError;
use crate::feeds::sink::PullReport;
use crate::metrics::Metrics;
use crate::stix::timestamp::{format_taxii, now_us};
use crate::store::{feed_run, SharedStore};

/// The time now as records carry it: RFC 3339, UTC (`Z`).
pub fn now() -> String {
    format_taxii(now_us())
}

/// The record of a pull of a feed starting at `now` in `holder`, after the feed's
/// record `previous`: when it last finished and succeeded, its failures in a row and
/// the objects stored so far carry over; this pull has fetched nothing yet.
pub fn started(previous: Option<&FeedRun>, now: String, holder: &str) -> FeedRun {
    FeedRun {
        state: RunState::Syncing,
        started_at: now,
        finished_at: previous.and_then(|p| p.finished_at.clone()),
        last_success_at: previous.and_then(|p| p.last_success_at.clone()),
        error_kind: None,
        error: None,
        consecutive_failures: previous.map_or(0, |p| p.consecutive_failures),
        fetched: 0,
        stored: 0,
        rejected: 0,
        stored_total: previous.map_or(0, |p| p.stored_total),
        holder: holder.to_string(),
    }
}

/// The record of the pull `run` finishing at `now` having done `report` (also what a
/// failed pull stored before it failed), with `error` if it failed.
pub fn finished(
    run: FeedRun,
    now: String,
    report: &PullReport,
    error: Option<&FeedError>,
) -> FeedRun {
    let ok = error.is_none();
    FeedRun {
        state: if ok { RunState::Ok } else { RunState::Failed },
        started_at: run.started_at,
        last_success_at: if ok {
            Some(now.clone())
        } else {
            run.last_success_at
        },
        finished_at: Some(now),
        error_kind: error.map(|e| e.kind().to_string()),
        error: error.map(message),
        consecutive_failures: if ok {
            0
        } else {
            run.consecutive_failures.saturating_add(1)
        },
        fetched: report.fetched,
        stored: report.stored,
        rejected: report.rejected,
        stored_total: run.stored_total.saturating_add(report.stored),
        holder: run.holder,
    }
}

/// What a record says of `error`: its message as logged (no credential, no URL), but
/// naming a credentials file by its setting only, not by its path.
pub fn message(error: &FeedError) -> String {
    match error {
        FeedError::Credentials { what, message, .. } => format!("cannot use {what}: {message}"),
        other => other.to_string(),
    }
}

/// Records one pull of a feed in the store, as it starts and as it ends.
pub struct Recorder<'a> {
    store: &'a SharedStore,
    metrics: &'a Metrics,
    feed: &'a Feed,
    run: FeedRun,
}

impl<'a> Recorder<'a> {
    /// Record that a pull of `feed` by `holder` starts now. What carries over comes
    /// from the stored record, else (store unreadable) from `last`, the record this
    /// process saw last.
    pub async fn start(
        store: &'a SharedStore,
        metrics: &'a Metrics,
        feed: &'a Feed,
        holder: &str,
        last: Option<&FeedRun>,
    ) -> Recorder<'a> {
        let previous = match feed_run::load(&**store, &feed.name).await {
            Ok(stored) => stored,
            Err(e) => {
                metrics.feeds().failed(&feed.name, "store");
                tracing::warn!(target: "taxiway::feeds", feed = %feed.name, error = %e, "cannot read the record of the feed's runs");
                last.cloned()
            }
        };
        let recorder = Recorder {
            store,
            metrics,
            feed,
            run: started(previous.as_ref(), now(), holder),
        };
        recorder.save().await;
        recorder
    }

    /// Record how the pull ended; returns the record (also when it could not be saved).
    pub async fn finish(mut self, report: &PullReport, error: Option<&FeedError>) -> FeedRun {
        self.run = finished(self.run, now(), report, error);
        self.save().await;
        self.run
    }

    async fn save(&self) {
        if let Err(e) = feed_run::save(&**self.store, &self.feed.name, &self.run).await {
            self.metrics.feeds().failed(&self.feed.name, "store");
            tracing::warn!(target: "taxiway::feeds", feed = %self.feed.name, error = %e, "cannot save the record of the feed's runs");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn report(fetched: u64, stored: u64, rejected: u64) -> PullReport {
        PullReport {
            fetched,
            stored,
            rejected,
        }
    }

    #[test]
    fn a_first_pull_starts_from_nothing() {
        let run = started(None, "2026-12-06T10:00:00.000000Z".into(), "pod-0:8443");
        assert_eq!(run.state, RunState::Syncing);
        assert_eq!(run.started_at, "2026-12-06T10:00:00.000000Z");
        assert_eq!((run.finished_at, run.last_success_at), (None, None));
        assert_eq!((run.consecutive_failures, run.stored_total), (0, 0));
        assert_eq!(run.holder, "pod-0:8443");
    }

    #[test]
    fn failures_count_up_and_a_success_resets_them() {
        let first = started(None, "t0".into(), "a");
        let failed = finished(
            first,
            "t1".into(),
            &report(4, 2, 1),
            Some(&FeedError::Unauthorized(401)),
        );
        assert_eq!(failed.state, RunState::Failed);
        assert_eq!(failed.error_kind.as_deref(), Some("auth"));
        assert_eq!(
            failed.error.as_deref(),
            Some("the upstream refused the credentials (HTTP 401)")
        );
        assert_eq!(failed.consecutive_failures, 1);
        assert_eq!((failed.fetched, failed.stored, failed.rejected), (4, 2, 1));
        assert_eq!(failed.stored_total, 2, "what a failed pull stored counts");
        assert_eq!(failed.last_success_at, None);

        let again = started(Some(&failed), "t2".into(), "b");
        assert_eq!(again.state, RunState::Syncing);
        assert_eq!(again.finished_at.as_deref(), Some("t1"));
        assert_eq!((again.error.as_deref(), again.fetched), (None, 0));
        assert_eq!((again.consecutive_failures, again.stored_total), (1, 2));
        let failed = finished(
            again,
            "t3".into(),
            &report(0, 0, 0),
            Some(&FeedError::Timeout),
        );
        assert_eq!(failed.consecutive_failures, 2);
        assert_eq!(failed.holder, "b");

        let ok = finished(
            started(Some(&failed), "t4".into(), "b"),
            "t5".into(),
            &report(3, 3, 0),
            None,
        );
        assert_eq!(ok.state, RunState::Ok);
        assert_eq!(
            (ok.error_kind.as_deref(), ok.error.as_deref()),
            (None, None)
        );
        assert_eq!(ok.consecutive_failures, 0);
        assert_eq!(ok.started_at, "t4");
        assert_eq!(ok.finished_at.as_deref(), Some("t5"));
        assert_eq!(ok.last_success_at.as_deref(), Some("t5"));
        assert_eq!(ok.stored_total, 5);

        let later = finished(
            started(Some(&ok), "t6".into(), "b"),
            "t7".into(),
            &report(0, 0, 0),
            Some(&FeedError::Status(500)),
        );
        assert_eq!(later.last_success_at.as_deref(), Some("t5"));
        assert_eq!(later.error_kind.as_deref(), Some("http"));
    }

    #[test]
    fn a_credentials_error_names_the_setting_not_the_file() {
        let error = FeedError::Credentials {
            what: "password_file",
            path: PathBuf::from("/var/run/secrets/partner/password"),
            message: "No such file or directory (os error 2)".into(),
        };
        let text = message(&error);
        assert_eq!(
            text,
            "cannot use password_file: No such file or directory (os error 2)"
        );
        assert!(!text.contains("/var/run"));
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let t = now();
        assert!(
            t.ends_with('Z') && t.len() == 27 && &t[10..11] == "T",
            "{t}"
        );
    }
}
