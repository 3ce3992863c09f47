//! Status of a TaxiiService: `Ready`, `Progressing` and `Degraded` following the
//! Kubernetes API conventions, endpoints and counts. Pure: computed from the validation
//! and the live Deployment.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::validate::Validated;
use crate::conditions::{self, Status, Wanted};
use crate::crd::{Endpoints, TaxiiService, TaxiiServiceStatus, TaxiiVersion, UserSelectorStatus};
use crate::names;

/// Condition types of a TaxiiService.
pub const READY: &str = "Ready";
/// The rollout is still moving.
pub const PROGRESSING: &str = "Progressing";
/// Something is wrong that the user should fix.
pub const DEGRADED: &str = "Degraded";

/// Longest status message; the rest is cut (events and `problems` have everything).
const MAX_MESSAGE: usize = 1024;

/// How far the Deployment has rolled out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Rollout {
    desired: i32,
    updated: i32,
    available: i32,
    current: bool,
}

fn rollout(deployment: Option<&Deployment>, desired: i32) -> Rollout {
    let Some(d) = deployment else {
        return Rollout {
            desired,
            ..Rollout::default()
        };
    };
    let status = d.status.clone().unwrap_or_default();
    Rollout {
        desired,
        updated: status.updated_replicas.unwrap_or(0),
        available: status.available_replicas.unwrap_or(0),
        current: status.observed_generation.is_some()
            && status.observed_generation >= d.metadata.generation,
    }
}

/// The status to write, given the previous one (whose transition times are kept).
pub fn service_status(
    service: &TaxiiService,
    validated: &Validated,
    deployment: Option<&Deployment>,
    apply_error: Option<&str>,
    now: &Time,
) -> TaxiiServiceStatus {
    let previous = service.status.clone().unwrap_or_default();
    let r = rollout(deployment, validated.replicas);
    let done = r.current && r.updated >= r.desired && r.available >= r.desired;

    // An invalid spec leaves the last valid configuration serving: that is Degraded,
    // not unready.
    let serving = if validated.config.is_none() {
        " (serving the last valid configuration; see Degraded)"
    } else {
        ""
    };
    let ready = if r.desired == 0 {
        Wanted::new(READY, Status::False, "ScaledToZero", "spec.replicas is 0")
    } else if done {
        Wanted::new(
            READY,
            Status::True,
            "Available",
            format!(
                "{} of {} replicas available{serving}",
                r.available, r.desired
            ),
        )
    } else {
        Wanted::new(
            READY,
            Status::False,
            "Unavailable",
            format!("{} of {} replicas available", r.available, r.desired),
        )
    };
    let progressing = if done || (r.desired == 0 && r.current) {
        Wanted::new(
            PROGRESSING,
            Status::False,
            "RolloutComplete",
            "the Deployment is rolled out",
        )
    } else {
        Wanted::new(
            PROGRESSING,
            Status::True,
            "RollingOut",
            format!(
                "{} of {} replicas updated, {} available",
                r.updated, r.desired, r.available
            ),
        )
    };
    let degraded = match (apply_error, validated.problems.first()) {
        (Some(error), _) => Wanted::new(DEGRADED, Status::True, "ApplyFailed", cut(error)),
        (None, Some(first)) => {
            let all: Vec<&str> = validated
                .problems
                .iter()
                .map(|p| p.message.as_str())
                .collect();
            Wanted::new(
                DEGRADED,
                Status::True,
                first.kind.reason(),
                cut(&all.join("; ")),
            )
        }
        (None, None) => Wanted::new(DEGRADED, Status::False, "AsExpected", "no problems found"),
    };

    let generation = service.metadata.generation;
    let base = validated.urls.base();
    let discovery =
        if service.spec.versions.contains(&TaxiiVersion::V21) || service.spec.versions.is_empty() {
            format!("{base}/taxii2/")
        } else {
            format!("{base}/taxii/")
        };
    TaxiiServiceStatus {
        observed_generation: generation,
        conditions: conditions::merge(
            &previous.conditions,
            vec![ready, progressing, degraded],
            generation,
            now,
        ),
        endpoints: Some(Endpoints {
            discovery,
            in_cluster: validated.urls.in_cluster.clone(),
            external: validated.urls.external.clone(),
        }),
        collections: i32::try_from(validated.accepted()).unwrap_or(i32::MAX),
        collections_from: validated.collections_from.clone(),
        feeds: validated.feeds.admissions.clone(),
        users: i32::try_from(
            validated
                .users
                .iter()
                .filter(|u| !u.disabled && !u.locked)
                .count(),
        )
        .unwrap_or(i32::MAX),
        user_selector: validated
            .user_selector
            .as_ref()
            .map(|report| UserSelectorStatus {
                users: count(report.users),
                refused: count(report.refused),
                ignored_secrets: count(report.ignored.len()),
            }),
        replicas: deployment.map(|d| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0)),
        selector: Some(names::selector(&service.name_any())),
        problems: validated
            .problems
            .iter()
            .map(|p| p.message.clone())
            .collect(),
        warnings: validated
            .warnings
            .iter()
            .map(|w| w.message.clone())
            .collect(),
    }
}

/// The status of a TaxiiService whose spec cannot be read at all.
pub fn unreadable_status(
    service_name: &str,
    previous: &TaxiiServiceStatus,
    generation: Option<i64>,
    error: &str,
    now: &Time,
) -> TaxiiServiceStatus {
    let message = cut(&format!(
        "the spec of {service_name} cannot be read: {error}"
    ));
    TaxiiServiceStatus {
        observed_generation: generation,
        conditions: conditions::merge(
            &previous.conditions,
            vec![
                Wanted::new(
                    READY,
                    Status::False,
                    "InvalidSpec",
                    "the spec cannot be read; see Degraded",
                ),
                Wanted::new(
                    PROGRESSING,
                    Status::False,
                    "InvalidSpec",
                    "nothing is rolled out",
                ),
                Wanted::new(DEGRADED, Status::True, "InvalidSpec", message.clone()),
            ],
            generation,
            now,
        ),
        problems: vec![message],
        warnings: vec![],
        ..previous.clone()
    }
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn cut(message: &str) -> String {
    if message.len() <= MAX_MESSAGE {
        return message.to_string();
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// A one-line summary for logs and events.
pub fn summary(service: &TaxiiService, status: &TaxiiServiceStatus) -> String {
    format!(
        "{}: {} collections, {} users, {}",
        service.name_any(),
        status.collections,
        status.users,
        status
            .conditions
            .iter()
            .map(|c| format!("{}={}", c.type_, c.status))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::DeploymentStatus;
    use serde_json::json;

    use super::*;
    use crate::conditions::is;
    use crate::reconcile::service::fixtures;
    use crate::reconcile::service::inputs::Settings;
    use crate::reconcile::service::validate::validate;

    fn at(second: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(second).expect("time"))
    }

    fn deployment(generation: i64, observed: i64, updated: i32, available: i32) -> Deployment {
        Deployment {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                generation: Some(generation),
                ..Default::default()
            },
            status: Some(DeploymentStatus {
                observed_generation: Some(observed),
                updated_replicas: Some(updated),
                available_replicas: Some(available),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn an_available_deployment_is_ready() {
        let inputs = fixtures::inputs(fixtures::two_collections());
        let v = validate(&inputs, &Settings::default());
        let s = service_status(
            &inputs.service,
            &v,
            Some(&deployment(2, 2, 1, 1)),
            None,
            &at(10),
        );
        assert!(is(&s.conditions, READY, Status::True));
        assert!(is(&s.conditions, PROGRESSING, Status::False));
        assert!(is(&s.conditions, DEGRADED, Status::False));
        assert_eq!(s.collections, 2);
        assert_eq!(s.users, 1, "bob is locked");
        assert_eq!(s.observed_generation, Some(3));
        let endpoints = s.endpoints.expect("endpoints");
        assert_eq!(endpoints.discovery, "https://taxii.example.com/taxii2/");
        assert_eq!(
            endpoints.in_cluster,
            "https://feeds.intel.svc.cluster.local"
        );
    }

    #[test]
    fn pending_pods_are_progressing_not_ready() {
        let inputs = fixtures::inputs(vec![]);
        let v = validate(&inputs, &Settings::default());
        let s = service_status(
            &inputs.service,
            &v,
            Some(&deployment(1, 1, 1, 0)),
            None,
            &at(10),
        );
        let ready = conditions::find(&s.conditions, READY).expect("ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "Unavailable")
        );
        assert_eq!(ready.message, "0 of 1 replicas available");
        assert!(is(&s.conditions, PROGRESSING, Status::True));
    }

    #[test]
    fn problems_make_it_degraded_with_every_message() {
        let mut inputs = fixtures::inputs(vec![]);
        inputs.secrets.remove("bob");
        let mut spec = fixtures::full_spec();
        spec["replicas"] = json!(2);
        inputs.service = fixtures::service(spec);
        inputs.secrets.remove("bob");
        let v = validate(&inputs, &Settings::default());
        let s = service_status(&inputs.service, &v, None, None, &at(10));
        let degraded = conditions::find(&s.conditions, DEGRADED).expect("degraded");
        assert_eq!(degraded.status, "True");
        assert_eq!(degraded.reason, "InvalidUserSecret");
        assert!(degraded.message.contains("Secret bob not found"));
        assert!(degraded.message.contains("got 2"));
        assert_eq!(s.problems.len(), 2);
    }

    #[test]
    fn an_invalid_spec_is_degraded_while_the_last_config_keeps_serving() {
        let mut inputs = fixtures::inputs(vec![]);
        let mut spec = fixtures::full_spec();
        spec["defaultApiRoot"] = json!("elsewhere");
        inputs.service = fixtures::service(spec);
        let v = validate(&inputs, &Settings::default());
        let s = service_status(
            &inputs.service,
            &v,
            Some(&deployment(2, 2, 1, 1)),
            None,
            &at(10),
        );
        assert!(is(&s.conditions, READY, Status::True));
        let degraded = conditions::find(&s.conditions, DEGRADED).expect("degraded");
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "InvalidSpec")
        );
    }

    #[test]
    fn warnings_are_listed_without_making_it_degraded() {
        let inputs = fixtures::inputs(vec![]);
        let v = validate(&inputs, &Settings::default());
        let s = service_status(
            &inputs.service,
            &v,
            Some(&deployment(2, 2, 1, 1)),
            None,
            &at(10),
        );
        assert!(is(&s.conditions, DEGRADED, Status::False));
        assert!(s.problems.is_empty());
        assert_eq!(s.warnings.len(), 1);
        assert!(
            s.warnings[0].contains("spec.trustedProxies"),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn a_rejected_image_is_degraded_with_its_own_reason() {
        let mut spec = fixtures::full_spec();
        spec["image"] = json!("docker.io/miner/xmrig:latest");
        let mut inputs = fixtures::inputs(vec![]);
        inputs.service = fixtures::service(spec);
        let settings = Settings {
            allowed_image_prefixes: vec!["ghcr.io/acme/".into()],
            ..Settings::default()
        };
        let v = validate(&inputs, &settings);
        let s = service_status(&inputs.service, &v, None, None, &at(10));
        let degraded = conditions::find(&s.conditions, DEGRADED).expect("degraded");
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "ImageNotAllowed")
        );
        assert!(degraded.message.contains("is not allowed"));
        assert!(is(&s.conditions, READY, Status::False));
    }

    #[test]
    fn an_apply_failure_is_degraded() {
        let inputs = fixtures::inputs(vec![]);
        let v = validate(&inputs, &Settings::default());
        let s = service_status(&inputs.service, &v, None, Some("forbidden"), &at(10));
        let degraded = conditions::find(&s.conditions, DEGRADED).expect("degraded");
        assert_eq!(
            (degraded.reason.as_str(), degraded.message.as_str()),
            ("ApplyFailed", "forbidden")
        );
    }

    #[test]
    fn recomputing_an_unchanged_status_gives_the_same_status() {
        let mut inputs = fixtures::inputs(fixtures::two_collections());
        let v = validate(&inputs, &Settings::default());
        let d = deployment(1, 1, 1, 0);
        let first = service_status(&inputs.service, &v, Some(&d), None, &at(10));
        inputs.service.status = Some(first.clone());
        let second = service_status(&inputs.service, &v, Some(&d), None, &at(99));
        assert_eq!(second, first);
    }
}
