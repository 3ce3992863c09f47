//! Status of a TaxiiCollection: its stable id, URL, `Accepted` and `QueryValid`. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::conditions::{self, Status, Wanted};
use crate::crd::{TaxiiCollection, TaxiiCollectionStatus};
use crate::reconcile::service::validate::{query_verdict, CollectionVerdict, QueryVerdict};

/// The collection is served by its TaxiiService.
pub const ACCEPTED: &str = "Accepted";
/// The query parses (or the collection is writable).
pub const QUERY_VALID: &str = "QueryValid";

/// The status for a collection the service reconciler decided on.
pub fn from_verdict(
    collection: &TaxiiCollection,
    verdict: &CollectionVerdict,
    now: &Time,
) -> TaxiiCollectionStatus {
    // Writing needs a grant: say so where a producer's 403 would otherwise puzzle.
    let writers = if collection.spec.writable && collection.spec.access.write.is_empty() {
        "; nobody may write to it until spec.access.write names users or groups"
    } else {
        ""
    };
    let accepted = match (&verdict.rejection, &verdict.previous_query) {
        (None, None) => Wanted::new(
            ACCEPTED,
            Status::True,
            "Accepted",
            format!(
                "served by TaxiiService {}{writers}",
                collection.spec.service
            ),
        ),
        (None, Some(query)) => Wanted::new(
            ACCEPTED,
            Status::True,
            "ServingPreviousQuery",
            format!(
                "served by TaxiiService {} with its last valid query {query:?} until \
                 spec.query is fixed",
                collection.spec.service
            ),
        ),
        (Some(r), _) => Wanted::new(ACCEPTED, Status::False, r.reason, r.message.clone()),
    };
    TaxiiCollectionStatus {
        sources: verdict.sources.clone(),
        warnings: verdict.warnings.clone(),
        query: verdict.native_query.clone(),
        ..status(
            collection,
            verdict.id.clone(),
            Some(verdict.api_root.clone()),
            verdict.url.clone(),
            accepted,
            &verdict.query,
            now,
        )
    }
}

/// The status for a collection no TaxiiService can serve (`reason`: e.g.
/// `ServiceNotFound`); its query is still judged.
pub fn not_served(
    collection: &TaxiiCollection,
    reason: &'static str,
    message: String,
    now: &Time,
) -> TaxiiCollectionStatus {
    let id = collection.spec.id.clone().or_else(|| collection.uid());
    let accepted = Wanted::new(ACCEPTED, Status::False, reason, message);
    let query = query_verdict(&collection.spec);
    status(
        collection,
        id,
        collection.spec.api_root.clone(),
        None,
        accepted,
        &query,
        now,
    )
}

/// The status for a collection whose spec cannot be read.
pub fn unreadable(
    previous: &TaxiiCollectionStatus,
    generation: Option<i64>,
    error: &str,
    now: &Time,
) -> TaxiiCollectionStatus {
    TaxiiCollectionStatus {
        observed_generation: generation,
        url: None,
        conditions: conditions::merge(
            &previous.conditions,
            vec![
                Wanted::new(
                    ACCEPTED,
                    Status::False,
                    "InvalidSpec",
                    format!("the spec cannot be read: {error}"),
                ),
                Wanted::new(
                    QUERY_VALID,
                    Status::Unknown,
                    "InvalidSpec",
                    "the spec cannot be read",
                ),
            ],
            generation,
            now,
        ),
        ..previous.clone()
    }
}

fn status(
    collection: &TaxiiCollection,
    id: Option<String>,
    api_root: Option<String>,
    url: Option<String>,
    accepted: Wanted,
    query: &QueryVerdict,
    now: &Time,
) -> TaxiiCollectionStatus {
    let query_valid = match query {
        QueryVerdict::Writable => Wanted::new(
            QUERY_VALID,
            Status::True,
            "Writable",
            "a writable collection has no query",
        ),
        QueryVerdict::Valid => Wanted::new(QUERY_VALID, Status::True, "Valid", "the query parses"),
        QueryVerdict::Invalid(message) => {
            Wanted::new(QUERY_VALID, Status::False, "InvalidQuery", message.clone())
        }
        QueryVerdict::Missing => Wanted::new(
            QUERY_VALID,
            Status::False,
            "NoQuery",
            "set spec.query, or spec.writable: true for a collection producers write to",
        ),
    };
    let previous = collection.status.clone().unwrap_or_default();
    let generation = collection.metadata.generation;
    TaxiiCollectionStatus {
        observed_generation: generation,
        id,
        api_root,
        url,
        conditions: conditions::merge(
            &previous.conditions,
            vec![accepted, query_valid],
            generation,
            now,
        ),
        query: None,
        sources: Vec::new(),
        warnings: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::conditions::{find, is};
    use crate::reconcile::service::fixtures;
    use crate::reconcile::service::inputs::Settings;
    use crate::reconcile::service::validate::validate;

    fn at(second: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(second).expect("time"))
    }

    #[test]
    fn an_accepted_collection_reports_its_id_and_url() {
        let collections = fixtures::two_collections();
        let v = validate(&fixtures::inputs(collections.clone()), &Settings::default());
        let inbox = &collections[0];
        let verdict = v
            .collections
            .iter()
            .find(|c| c.name == "inbox")
            .expect("verdict");
        let s = from_verdict(inbox, verdict, &at(1));
        assert_eq!(
            s.id.as_deref(),
            Some("e78eb331-c15a-463f-ba62-73b2a71a324a")
        );
        assert_eq!(s.api_root.as_deref(), Some("feeds"));
        assert!(s.url.as_deref().is_some_and(
            |u| u.ends_with("/feeds/collections/e78eb331-c15a-463f-ba62-73b2a71a324a/")
        ));
        assert!(is(&s.conditions, ACCEPTED, Status::True));
        assert_eq!(
            find(&s.conditions, QUERY_VALID).map(|c| c.reason.as_str()),
            Some("Writable")
        );
        assert_eq!(s.observed_generation, Some(1));
    }

    #[test]
    fn a_writable_collection_without_writers_says_nobody_may_write() {
        let mut collections = fixtures::two_collections();
        collections.push(fixtures::collection(
            "no-writers",
            "33333333-3333-4333-8333-333333333333",
            3,
            json!({"writable": true, "access": {"read": ["group:soc"]}}),
        ));
        let v = validate(&fixtures::inputs(collections.clone()), &Settings::default());
        let message = |name: &str| {
            let c = collections
                .iter()
                .find(|c| c.name_any() == name)
                .expect("c");
            let verdict = v.collections.iter().find(|c| c.name == name).expect("v");
            let s = from_verdict(c, verdict, &at(1));
            assert!(is(&s.conditions, ACCEPTED, Status::True), "{name}");
            find(&s.conditions, ACCEPTED)
                .expect("accepted")
                .message
                .clone()
        };
        assert!(
            message("no-writers").contains("nobody may write"),
            "{}",
            message("no-writers")
        );
        assert_eq!(message("inbox"), "served by TaxiiService feeds");
        assert_eq!(
            message("high-confidence-ipv4"),
            "served by TaxiiService feeds"
        );
    }

    #[test]
    fn a_collection_without_its_service_waits_and_says_so() {
        let c = fixtures::collection(
            "orphan",
            "77777777-7777-4777-8777-777777777777",
            1,
            json!({"query": "type:indicator"}),
        );
        let s = not_served(
            &c,
            "ServiceNotFound",
            "waiting for TaxiiService feeds".into(),
            &at(1),
        );
        let accepted = find(&s.conditions, ACCEPTED).expect("accepted");
        assert_eq!(
            (accepted.status.as_str(), accepted.reason.as_str()),
            ("False", "ServiceNotFound")
        );
        assert_eq!(
            s.id.as_deref(),
            Some("77777777-7777-4777-8777-777777777777")
        );
        assert!(s.url.is_none());
        assert!(is(&s.conditions, QUERY_VALID, Status::True));
    }
}
