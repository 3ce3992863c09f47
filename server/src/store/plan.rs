//! Which views a configuration wants, once for both backends: given the live views the
//! `views` table records and the collections the store is told about, which views to
//! keep, create, rebuild and retire. Pure: each backend's `apply_config` runs the plan
//! with its own statements inside its own write transaction.
//!
//! The rules:
//! * every writable collection has one active stored view, created when new; stored
//!   data is never dropped (a collection turned into a query collection keeps its
//!   stored view, and its query view draws from it);
//! * a query collection's active view is kept when both its query and its sources are
//!   current; otherwise a building view for them (the one already under way, else a
//!   new one) replaces it when built, and the old one keeps serving meanwhile;
//! * query views nobody configures any more are retired.

use std::sync::Arc;

use crate::query::Query;
use crate::store::setup::{CollectionSetup, StoreSetup};

/// A live (not retired) view as the `views` table records it.
#[derive(Debug, Clone)]
pub(crate) struct LiveView {
    /// Row id in `views`.
    pub view_id: i64,
    /// Collection id.
    pub collection: String,
    /// `stored` or `query`.
    pub kind: String,
    /// A query view's query text.
    pub query: Option<String>,
    /// `active` or `building`.
    pub state: String,
    /// A stored view's `source:` names, `\n`-separated, where the backend records them
    /// (`None`: the backend keeps them in memory only).
    pub names: Option<String>,
    /// Query views: the collection ids they draw from, `\n`-separated (NULL: made
    /// before collections were isolated).
    pub sources: Option<String>,
}

/// How a query view records its sources: collection ids, `\n`-separated.
pub(crate) fn sources_text(collections: &[String]) -> String {
    collections.join("\n")
}

/// What to do with the views of the configuration, in the order to do it.
#[derive(Debug)]
pub(crate) struct ViewPlan<'s> {
    /// One step per configured collection, writable collections first (query views
    /// name their stored views as sources).
    pub collections: Vec<Planned<'s>>,
    /// Query views to retire, after the steps above.
    pub retire: Vec<i64>,
}

/// The plan for one configured collection.
#[derive(Debug)]
pub(crate) enum Planned<'s> {
    /// A writable collection.
    Stored {
        /// Its configuration.
        setup: &'s CollectionSetup,
        /// Its stored view.
        view: StoredPlan,
    },
    /// A query collection.
    Query {
        /// Its configuration.
        setup: &'s CollectionSetup,
        /// Its query.
        query: &'s Arc<Query>,
        /// Its sources as recorded on a view ([`sources_text`]).
        sources: String,
        /// The collection's own stored view, if it was writable before: its query
        /// view keeps drawing from what was posted to it.
        own_stored: Option<i64>,
        /// Its query view.
        view: QueryPlan,
    },
}

/// A writable collection's stored view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoredPlan {
    /// The view exists and is current.
    Keep(i64),
    /// The view exists but records other `source:` names: record the configured ones.
    Rename(i64),
    /// No view yet: create an active one.
    Create,
}

/// A query collection's query view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryPlan {
    /// The active view's query and sources are current.
    Current(i64),
    /// A view is (re)built for the configured query and sources.
    Rebuild {
        /// The view being built.
        building: Building,
        /// The active view it replaces when built, which keeps serving meanwhile.
        replaces: Option<i64>,
    },
}

/// The view a rebuild fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Building {
    /// One already under way for the same query and sources.
    Resume(i64),
    /// A new building view.
    Create,
}

/// Decide which views make `live` match `setup`.
pub(crate) fn plan<'s>(live: &[LiveView], setup: &'s StoreSetup) -> ViewPlan<'s> {
    let mut keep = Vec::new();
    let collections: Vec<Planned<'s>> = setup
        .stored_first()
        .map(|c| match &c.query {
            None => Planned::Stored {
                setup: c,
                view: plan_stored(live, c),
            },
            Some(query) => {
                let sources = sources_text(&c.sources);
                let view = plan_query(live, &c.id, query.text(), &sources);
                match view {
                    QueryPlan::Current(view_id) => keep.push(view_id),
                    QueryPlan::Rebuild { building, replaces } => {
                        keep.extend(replaces);
                        if let Building::Resume(view_id) = building {
                            keep.push(view_id);
                        }
                    }
                }
                Planned::Query {
                    setup: c,
                    query,
                    sources,
                    own_stored: find(live, &c.id, "stored", "active").map(|r| r.view_id),
                    view,
                }
            }
        })
        .collect();
    let retire = live
        .iter()
        .filter(|r| r.kind == "query" && !keep.contains(&r.view_id))
        .map(|r| r.view_id)
        .collect();
    ViewPlan {
        collections,
        retire,
    }
}

/// The live view of `collection` of this kind in this state, if any.
pub(crate) fn find<'r>(
    live: &'r [LiveView],
    collection: &str,
    kind: &str,
    state: &str,
) -> Option<&'r LiveView> {
    live.iter()
        .find(|r| r.collection == collection && r.kind == kind && r.state == state)
}

fn plan_stored(live: &[LiveView], c: &CollectionSetup) -> StoredPlan {
    match find(live, &c.id, "stored", "active") {
        None => StoredPlan::Create,
        Some(r) => match &r.names {
            Some(names) if *names != c.names.join("\n") => StoredPlan::Rename(r.view_id),
            _ => StoredPlan::Keep(r.view_id),
        },
    }
}

fn plan_query(live: &[LiveView], id: &str, text: &str, sources: &str) -> QueryPlan {
    // A view is current when both its query and its sources are.
    let same =
        |r: &&LiveView| r.query.as_deref() == Some(text) && r.sources.as_deref() == Some(sources);
    let active = find(live, id, "query", "active");
    if let Some(r) = active.filter(same) {
        return QueryPlan::Current(r.view_id);
    }
    let building = match find(live, id, "query", "building").filter(same) {
        Some(r) => Building::Resume(r.view_id),
        None => Building::Create,
    };
    QueryPlan::Rebuild {
        building,
        replaces: active.map(|r| r.view_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(view_id: i64, collection: &str, names: Option<&str>) -> LiveView {
        LiveView {
            view_id,
            collection: collection.into(),
            kind: "stored".into(),
            query: None,
            state: "active".into(),
            names: names.map(str::to_string),
            sources: None,
        }
    }

    fn query_view(
        view_id: i64,
        collection: &str,
        text: &str,
        state: &str,
        sources: Option<&str>,
    ) -> LiveView {
        LiveView {
            view_id,
            collection: collection.into(),
            kind: "query".into(),
            query: Some(text.into()),
            state: state.into(),
            names: None,
            sources: sources.map(str::to_string),
        }
    }

    fn writable(id: &str) -> CollectionSetup {
        CollectionSetup {
            id: id.into(),
            names: vec![id.into(), format!("{id} title")],
            query: None,
            sources: Vec::new(),
        }
    }

    fn querying(id: &str, text: &str, sources: &[&str]) -> CollectionSetup {
        CollectionSetup {
            id: id.into(),
            names: vec![id.into()],
            query: Some(Arc::new(Query::parse(text).expect("query"))),
            sources: sources.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn setup(collections: Vec<CollectionSetup>) -> StoreSetup {
        StoreSetup {
            collections,
            status_retention_hours: 48,
            refresh_interval_secs: 60,
        }
    }

    fn query_plan(plan: &ViewPlan<'_>, id: &str) -> (QueryPlan, Option<i64>) {
        plan.collections
            .iter()
            .find_map(|p| match p {
                Planned::Query {
                    setup,
                    view,
                    own_stored,
                    ..
                } if setup.id == id => Some((*view, *own_stored)),
                _ => None,
            })
            .expect("planned query collection")
    }

    fn stored_plan(plan: &ViewPlan<'_>, id: &str) -> StoredPlan {
        plan.collections
            .iter()
            .find_map(|p| match p {
                Planned::Stored { setup, view } if setup.id == id => Some(*view),
                _ => None,
            })
            .expect("planned stored collection")
    }

    #[test]
    fn a_new_configuration_creates_every_view() {
        let s = setup(vec![querying("q", "type:indicator", &["w"]), writable("w")]);
        let plan = plan(&[], &s);
        // Writable collections come first: query views name them as sources.
        assert!(matches!(plan.collections[0], Planned::Stored { .. }));
        assert_eq!(stored_plan(&plan, "w"), StoredPlan::Create);
        assert_eq!(
            query_plan(&plan, "q"),
            (
                QueryPlan::Rebuild {
                    building: Building::Create,
                    replaces: None
                },
                None
            )
        );
        assert!(plan.retire.is_empty());
    }

    #[test]
    fn current_views_are_kept() {
        let s = setup(vec![writable("w"), querying("q", "type:indicator", &["w"])]);
        let live = [
            stored(1, "w", None),
            query_view(2, "q", "type:indicator", "active", Some("w")),
        ];
        let plan = plan(&live, &s);
        assert_eq!(stored_plan(&plan, "w"), StoredPlan::Keep(1));
        assert_eq!(query_plan(&plan, "q").0, QueryPlan::Current(2));
        assert!(plan.retire.is_empty());
    }

    #[test]
    fn recorded_names_are_renamed_only_when_they_differ() {
        let s = setup(vec![writable("w"), writable("v")]);
        let live = [
            stored(1, "w", Some("w\nw title")),
            stored(2, "v", Some("v")),
        ];
        let plan = plan(&live, &s);
        assert_eq!(stored_plan(&plan, "w"), StoredPlan::Keep(1));
        assert_eq!(stored_plan(&plan, "v"), StoredPlan::Rename(2));
    }

    #[test]
    fn a_changed_query_is_rebuilt_while_the_old_view_serves() {
        let s = setup(vec![writable("w"), querying("q", "type:malware", &["w"])]);
        let live = [
            stored(1, "w", None),
            query_view(2, "q", "type:indicator", "active", Some("w")),
        ];
        let plan = plan(&live, &s);
        assert_eq!(
            query_plan(&plan, "q").0,
            QueryPlan::Rebuild {
                building: Building::Create,
                replaces: Some(2)
            }
        );
        assert!(plan.retire.is_empty());
    }

    #[test]
    fn changed_sources_are_rebuilt_too() {
        let s = setup(vec![
            writable("w"),
            writable("v"),
            querying("q", "type:indicator", &["w", "v"]),
        ]);
        let live = [
            stored(1, "w", None),
            query_view(2, "q", "type:indicator", "active", Some("w")),
        ];
        let plan = plan(&live, &s);
        assert_eq!(
            query_plan(&plan, "q").0,
            QueryPlan::Rebuild {
                building: Building::Create,
                replaces: Some(2)
            }
        );
    }

    #[test]
    fn a_view_made_before_sources_were_recorded_is_rebuilt() {
        let s = setup(vec![writable("w"), querying("q", "type:indicator", &["w"])]);
        let live = [
            stored(1, "w", None),
            query_view(2, "q", "type:indicator", "active", None),
        ];
        let plan = plan(&live, &s);
        assert_eq!(
            query_plan(&plan, "q").0,
            QueryPlan::Rebuild {
                building: Building::Create,
                replaces: Some(2)
            }
        );
    }

    #[test]
    fn a_rebuild_under_way_is_resumed() {
        let s = setup(vec![writable("w"), querying("q", "type:malware", &["w"])]);
        let live = [
            stored(1, "w", None),
            query_view(2, "q", "type:indicator", "active", Some("w")),
            query_view(3, "q", "type:malware", "building", Some("w")),
        ];
        let plan = plan(&live, &s);
        assert_eq!(
            query_plan(&plan, "q").0,
            QueryPlan::Rebuild {
                building: Building::Resume(3),
                replaces: Some(2)
            }
        );
        assert!(plan.retire.is_empty());
    }

    #[test]
    fn a_rebuild_for_an_outdated_query_is_retired() {
        let s = setup(vec![writable("w"), querying("q", "type:tool", &["w"])]);
        let live = [
            stored(1, "w", None),
            query_view(2, "q", "type:indicator", "active", Some("w")),
            query_view(3, "q", "type:malware", "building", Some("w")),
        ];
        let plan = plan(&live, &s);
        assert_eq!(
            query_plan(&plan, "q").0,
            QueryPlan::Rebuild {
                building: Building::Create,
                replaces: Some(2)
            }
        );
        assert_eq!(plan.retire, vec![3]);
    }

    #[test]
    fn going_back_to_the_served_query_retires_the_rebuild() {
        let s = setup(vec![writable("w"), querying("q", "type:indicator", &["w"])]);
        let live = [
            stored(1, "w", None),
            query_view(2, "q", "type:indicator", "active", Some("w")),
            query_view(3, "q", "type:malware", "building", Some("w")),
        ];
        let plan = plan(&live, &s);
        assert_eq!(query_plan(&plan, "q").0, QueryPlan::Current(2));
        assert_eq!(plan.retire, vec![3]);
    }

    #[test]
    fn unconfigured_query_views_are_retired_and_stored_data_kept() {
        let s = setup(vec![writable("w")]);
        let live = [
            stored(1, "w", None),
            stored(2, "gone", None),
            query_view(3, "q", "type:indicator", "active", Some("w")),
            query_view(4, "q", "type:malware", "building", Some("w")),
        ];
        let plan = plan(&live, &s);
        assert_eq!(plan.collections.len(), 1);
        assert_eq!(plan.retire, vec![3, 4]);
    }

    #[test]
    fn a_writable_collection_turned_query_draws_from_its_stored_view() {
        let s = setup(vec![writable("w"), querying("c", "type:indicator", &["w"])]);
        let live = [stored(1, "w", None), stored(2, "c", None)];
        let plan = plan(&live, &s);
        assert_eq!(
            query_plan(&plan, "c"),
            (
                QueryPlan::Rebuild {
                    building: Building::Create,
                    replaces: None
                },
                Some(2)
            )
        );
        assert!(plan.retire.is_empty());
    }
}
