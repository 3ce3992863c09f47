//! The PodDisruptionBudget of a service running several replicas on PostgreSQL: node
//! drains and other voluntary evictions take down one server pod at a time.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::crd::{StorageType, TaxiiService};
use crate::names;

/// A budget allowing one unavailable pod, when there are at least two to share the
/// load; none otherwise (a budget over one pod would block every node drain).
pub fn disruption_budget(
    meta: ObjectMeta,
    service: &TaxiiService,
    name: &str,
    replicas: i32,
) -> Option<PodDisruptionBudget> {
    if service.spec.storage.type_ != StorageType::Postgres || replicas < 2 {
        return None;
    }
    Some(PodDisruptionBudget {
        metadata: meta,
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(names::selector_labels(name)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    })
}
