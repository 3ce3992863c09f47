//! A TaxiiFeed's status, from what its service decided and what the server reports
//! of its pulls. Pure: tested on fixtures.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use taxiway_model::feed_status::{FeedRun, RunState};

use crate::conditions::{self, Status, Wanted};
use crate::crd::{FeedAdmission, TaxiiFeed, TaxiiFeedStatus};

/// Rendered into its service's configuration.
pub const ACCEPTED: &str = "Accepted";
/// The last pull succeeded.
pub const READY: &str = "Ready";
/// A pull runs now.
pub const SYNCING: &str = "Syncing";
/// The last pull failed.
pub const DEGRADED: &str = "Degraded";

/// What the TaxiiService named in `spec.service` says of the feed.
#[derive(Clone, Debug, PartialEq)]
pub enum Service<'a> {
    /// There is no such TaxiiService.
    Missing,
    /// It exists but its spec cannot be read.
    Unreadable,
    /// It has not decided on this generation of the feed yet.
    Pending,
    /// Its decision.
    Decided(&'a FeedAdmission),
}

/// What the server says of the feed's pulls.
#[derive(Clone, Debug, PartialEq)]
pub enum Pulls {
    /// Not asked (the feed is not run).
    NotAsked,
    /// No server pod answered (why).
    Unreachable(String),
    /// The server answered but does not run the feed yet: its mounted configuration
    /// has not caught up (the kubelet refreshes it within about a minute).
    NotLoaded,
    /// The server runs the feed: its record, `None` before the first pull.
    Run(Option<FeedRun>),
}

/// The status to write.
pub fn feed_status(
    feed: &TaxiiFeed,
    service: Service<'_>,
    pulls: &Pulls,
    now: &Time,
) -> TaxiiFeedStatus {
    let previous = feed.status.clone().unwrap_or_default();
    let generation = feed.metadata.generation;
    let service_name = &feed.spec.service;
    let accepted = match service {
        Service::Missing => Wanted::new(
            ACCEPTED,
            Status::False,
            "ServiceNotFound",
            format!("waiting for TaxiiService {service_name}"),
        ),
        Service::Unreadable => Wanted::new(
            ACCEPTED,
            Status::False,
            "ServiceInvalid",
            format!("TaxiiService {service_name} cannot be read; see its status"),
        ),
        Service::Pending => Wanted::new(
            ACCEPTED,
            Status::Unknown,
            "Pending",
            format!("waiting for TaxiiService {service_name} to render it"),
        ),
        Service::Decided(admission) if admission.accepted => Wanted::new(
            ACCEPTED,
            Status::True,
            admission.reason.clone(),
            format!("run by TaxiiService {service_name}"),
        ),
        Service::Decided(admission) => Wanted::new(
            ACCEPTED,
            Status::False,
            admission.reason.clone(),
            admission.message.clone(),
        ),
    };
    let run = match pulls {
        Pulls::Run(run) => run.as_ref(),
        _ => None,
    };
    let [ready, syncing, degraded] = if accepted.status != Status::True {
        let why = format!("not run: {}", accepted.message);
        [
            Wanted::new(READY, Status::False, accepted.reason.clone(), why.clone()),
            Wanted::new(SYNCING, Status::False, accepted.reason.clone(), why.clone()),
            Wanted::new(DEGRADED, Status::False, accepted.reason.clone(), why),
        ]
    } else {
        pull_conditions(pulls)
    };
    // What the server no longer reports (unreachable for a moment) is kept.
    let (last_sync_time, last_success_time, objects_stored, consecutive_failures) = match run {
        Some(run) => (
            run.finished_at.clone(),
            run.last_success_at.clone(),
            Some(i64::try_from(run.stored_total).unwrap_or(i64::MAX)),
            Some(i64::from(run.consecutive_failures)),
        ),
        None if matches!(pulls, Pulls::Unreachable(_)) => (
            previous.last_sync_time.clone(),
            previous.last_success_time.clone(),
            previous.objects_stored,
            previous.consecutive_failures,
        ),
        None => (None, None, None, None),
    };
    TaxiiFeedStatus {
        observed_generation: generation,
        conditions: conditions::merge(
            &previous.conditions,
            vec![accepted, ready, syncing, degraded],
            generation,
            now,
        ),
        last_sync_time,
        last_success_time,
        objects_stored,
        consecutive_failures,
    }
}

/// `Ready`, `Syncing` and `Degraded` of a feed its service runs.
fn pull_conditions(pulls: &Pulls) -> [Wanted; 3] {
    let all = |status: Status, reason: &str, message: String| {
        [
            Wanted::new(READY, status, reason, message.clone()),
            Wanted::new(SYNCING, status, reason, message.clone()),
            Wanted::new(DEGRADED, status, reason, message),
        ]
    };
    let run = match pulls {
        Pulls::NotAsked => {
            return all(
                Status::Unknown,
                "Pending",
                "the server has not been asked yet".into(),
            )
        }
        Pulls::Unreachable(why) => {
            return all(
                Status::Unknown,
                "ServerUnreachable",
                format!("cannot ask the server how the feed runs: {why}"),
            )
        }
        Pulls::NotLoaded => {
            return all(
                Status::False,
                "Pending",
                "the server has not loaded the feed yet (its configuration reaches the pods \
                 within about a minute)"
                    .into(),
            )
        }
        Pulls::Run(None) => {
            return all(
                Status::False,
                "Pending",
                "waiting for the first pull".into(),
            )
        }
        Pulls::Run(Some(run)) => run,
    };
    let syncing = if run.state == RunState::Syncing {
        Wanted::new(
            SYNCING,
            Status::True,
            "Pulling",
            format!("a pull started at {}", run.started_at),
        )
    } else {
        Wanted::new(SYNCING, Status::False, "Idle", "no pull runs now")
    };
    let failed = run.state == RunState::Failed
        || (run.state == RunState::Syncing && run.consecutive_failures > 0);
    let (ready, degraded) = if failed {
        let reason = failure_reason(run.error_kind.as_deref());
        let message = format!(
            "{} ({} failed pulls in a row)",
            run.error.as_deref().unwrap_or("the last pull failed"),
            run.consecutive_failures
        );
        (
            Wanted::new(READY, Status::False, reason, message.clone()),
            Wanted::new(DEGRADED, Status::True, reason, message),
        )
    } else if run.last_success_at.is_some() {
        let message = format!(
            "the last pull fetched {} and stored {} objects ({} rejected)",
            run.fetched, run.stored, run.rejected
        );
        (
            Wanted::new(READY, Status::True, "Synced", message.clone()),
            Wanted::new(DEGRADED, Status::False, "Synced", message),
        )
    } else {
        (
            Wanted::new(READY, Status::False, "Pending", "the first pull runs"),
            Wanted::new(DEGRADED, Status::False, "Pending", "the first pull runs"),
        )
    };
    [ready, syncing, degraded]
}

/// The CamelCase reason of a failed pull, from the server's error kind.
fn failure_reason(kind: Option<&str>) -> &'static str {
    match kind {
        Some("auth") => "Unauthorized",
        Some("connect") => "Unreachable",
        Some("timeout") => "Timeout",
        Some("http") => "UpstreamError",
        Some("too_large") => "ResponseTooLarge",
        Some("protocol") => "ProtocolError",
        Some("config") => "InvalidSettings",
        Some("store") => "StoreError",
        _ => "PullFailed",
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::crd::TaxiiFeedSpec;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).expect("time"))
    }

    fn feed() -> TaxiiFeed {
        let spec: TaxiiFeedSpec = serde_json::from_value(serde_json::json!({
            "service": "hub", "into": "inbox", "url": "https://p/taxii2/", "collection": "c"
        }))
        .expect("spec");
        TaxiiFeed {
            metadata: ObjectMeta {
                name: Some("partner".into()),
                generation: Some(2),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }

    fn admission(accepted: bool) -> FeedAdmission {
        FeedAdmission {
            name: "partner".into(),
            observed_generation: Some(2),
            accepted,
            reason: if accepted {
                "Rendered"
            } else {
                "SecretNotFound"
            }
            .into(),
            message: if accepted {
                String::new()
            } else {
                "spec.credentials.secretName: Secret partner does not exist".into()
            },
        }
    }

    fn run(state: RunState, failures: u32, success: bool) -> FeedRun {
        FeedRun {
            state,
            started_at: "2026-12-06T10:00:00Z".into(),
            finished_at: Some("2026-12-06T10:00:02Z".into()),
            last_success_at: success.then(|| "2026-12-06T09:45:02Z".into()),
            error_kind: (failures > 0).then(|| "auth".into()),
            error: (failures > 0).then(|| "the upstream refused the credentials (HTTP 401)".into()),
            consecutive_failures: failures,
            fetched: 5,
            stored: 5,
            rejected: 0,
            stored_total: 40,
            holder: "hub-0:9443".into(),
        }
    }

    fn condition(status: &TaxiiFeedStatus, type_: &str) -> (String, String) {
        let c = conditions::find(&status.conditions, type_).expect(type_);
        (c.status.clone(), c.reason.clone())
    }

    #[test]
    fn a_successful_pull_is_ready_with_its_times_and_counts() {
        let accepted = admission(true);
        let status = feed_status(
            &feed(),
            Service::Decided(&accepted),
            &Pulls::Run(Some(run(RunState::Ok, 0, true))),
            &at(100),
        );
        assert_eq!(
            condition(&status, ACCEPTED),
            ("True".into(), "Rendered".into())
        );
        assert_eq!(condition(&status, READY), ("True".into(), "Synced".into()));
        assert_eq!(condition(&status, SYNCING), ("False".into(), "Idle".into()));
        assert_eq!(
            condition(&status, DEGRADED),
            ("False".into(), "Synced".into())
        );
        assert_eq!(status.objects_stored, Some(40));
        assert_eq!(
            status.last_success_time.as_deref(),
            Some("2026-12-06T09:45:02Z")
        );
        assert_eq!(
            status.last_sync_time.as_deref(),
            Some("2026-12-06T10:00:02Z")
        );
        assert_eq!(status.observed_generation, Some(2));
    }

    #[test]
    fn a_refused_credential_is_degraded_with_the_upstreams_error() {
        let accepted = admission(true);
        let status = feed_status(
            &feed(),
            Service::Decided(&accepted),
            &Pulls::Run(Some(run(RunState::Failed, 3, true))),
            &at(100),
        );
        assert_eq!(
            condition(&status, READY),
            ("False".into(), "Unauthorized".into())
        );
        assert_eq!(
            condition(&status, DEGRADED),
            ("True".into(), "Unauthorized".into())
        );
        let degraded = conditions::find(&status.conditions, DEGRADED).expect("degraded");
        assert!(degraded.message.contains("HTTP 401"), "{degraded:?}");
        assert_eq!(status.consecutive_failures, Some(3));
        // Still failing while the next pull runs.
        let status = feed_status(
            &feed(),
            Service::Decided(&accepted),
            &Pulls::Run(Some(run(RunState::Syncing, 3, true))),
            &at(100),
        );
        assert_eq!(
            condition(&status, SYNCING),
            ("True".into(), "Pulling".into())
        );
        assert_eq!(
            condition(&status, DEGRADED),
            ("True".into(), "Unauthorized".into())
        );
    }

    #[test]
    fn a_feed_not_run_says_why_on_every_condition() {
        let refused = admission(false);
        let status = feed_status(
            &feed(),
            Service::Decided(&refused),
            &Pulls::NotAsked,
            &at(1),
        );
        for type_ in [ACCEPTED, READY, SYNCING, DEGRADED] {
            assert_eq!(
                condition(&status, type_),
                ("False".into(), "SecretNotFound".into())
            );
        }
        let status = feed_status(&feed(), Service::Missing, &Pulls::NotAsked, &at(1));
        assert_eq!(
            condition(&status, ACCEPTED),
            ("False".into(), "ServiceNotFound".into())
        );
        let status = feed_status(&feed(), Service::Pending, &Pulls::NotAsked, &at(1));
        assert_eq!(
            condition(&status, ACCEPTED),
            ("Unknown".into(), "Pending".into())
        );
    }

    #[test]
    fn an_unreachable_server_keeps_the_last_known_figures() {
        let accepted = admission(true);
        let mut known = feed();
        known.status = Some(feed_status(
            &known,
            Service::Decided(&accepted),
            &Pulls::Run(Some(run(RunState::Ok, 0, true))),
            &at(100),
        ));
        let status = feed_status(
            &known,
            Service::Decided(&accepted),
            &Pulls::Unreachable("connection refused".into()),
            &at(200),
        );
        assert_eq!(
            condition(&status, READY),
            ("Unknown".into(), "ServerUnreachable".into())
        );
        assert_eq!(status.objects_stored, Some(40));
        let status = feed_status(
            &known,
            Service::Decided(&accepted),
            &Pulls::NotLoaded,
            &at(200),
        );
        assert_eq!(
            condition(&status, READY),
            ("False".into(), "Pending".into())
        );
    }

    #[test]
    fn an_unchanged_report_gives_an_identical_status() {
        let accepted = admission(true);
        let pulls = Pulls::Run(Some(run(RunState::Ok, 0, true)));
        let mut known = feed();
        known.status = Some(feed_status(
            &known,
            Service::Decided(&accepted),
            &pulls,
            &at(100),
        ));
        let again = feed_status(&known, Service::Decided(&accepted), &pulls, &at(500));
        assert_eq!(Some(again), known.status);
    }
}
