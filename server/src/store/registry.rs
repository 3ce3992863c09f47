//! Which view serves or is being built for each collection.

use std::collections::HashMap;
use std::sync::Arc;

use crate::query::Query;
use crate::store::error::StoreError;

/// Lifecycle of a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewState {
    /// Serves reads and is maintained on ingest.
    Active,
    /// Being filled by a rebuild; maintained on ingest, not yet read.
    Building,
}

impl ViewState {
    /// The name stored in the `views` table.
    pub fn as_str(self) -> &'static str {
        match self {
            ViewState::Active => "active",
            ViewState::Building => "building",
        }
    }
}

/// A view the store maintains.
#[derive(Debug, Clone)]
pub struct View {
    /// Row id in `views`.
    pub view_id: i64,
    /// Collection id.
    pub collection: String,
    /// The query of a query view; `None` for a stored collection.
    pub query: Option<Arc<Query>>,
    /// Active or building.
    pub state: ViewState,
    /// The view a building view replaces.
    pub replaces: Option<i64>,
    /// Query views: the stored views the query draws from (a version is a candidate
    /// only while it is its object's latest in one of them).
    pub sources: Vec<i64>,
}

impl View {
    /// Whether this query view draws from the stored view `stored`.
    pub fn draws_from(&self, stored: i64) -> bool {
        self.sources.contains(&stored)
    }
}

/// The views maintained right now, and the names `source:` terms can use.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// Every maintained view.
    pub views: Vec<View>,
    /// Stored collection id → names (id, title, alias).
    pub source_names: HashMap<String, Vec<String>>,
}

impl Registry {
    /// The view that serves reads of a collection.
    pub fn active(&self, collection: &str) -> Option<&View> {
        self.views
            .iter()
            .find(|v| v.collection == collection && v.state == ViewState::Active)
    }

    /// The view of a writable collection; an error for unknown and query collections.
    pub fn stored_view(&self, collection: &str) -> Result<i64, StoreError> {
        let view = self
            .active(collection)
            .ok_or_else(|| StoreError::UnknownCollection(collection.to_string()))?;
        if view.query.is_some() {
            return Err(StoreError::ReadOnly(collection.to_string()));
        }
        Ok(view.view_id)
    }

    /// Whether `view_id` is a query view (one that keeps its own copy of its objects'
    /// JSON).
    pub fn is_query_view(&self, view_id: i64) -> bool {
        self.views
            .iter()
            .any(|v| v.view_id == view_id && v.query.is_some())
    }

    /// Query views (active and building) that ingest must evaluate.
    pub fn query_views(&self) -> impl Iterator<Item = (&View, &Arc<Query>)> {
        self.views
            .iter()
            .filter_map(|v| v.query.as_ref().map(|q| (v, q)))
    }

    /// The active views of stored collections.
    pub fn stored_views(&self) -> impl Iterator<Item = &View> {
        self.views
            .iter()
            .filter(|v| v.query.is_none() && v.state == ViewState::Active)
    }

    /// The stored view ids of these collection ids (unknown ids are skipped).
    pub fn stored_view_ids(&self, collections: &[String]) -> Vec<i64> {
        collections
            .iter()
            .filter_map(|c| {
                self.stored_views()
                    .find(|v| &v.collection == c)
                    .map(|v| v.view_id)
            })
            .collect()
    }

    /// A view by id.
    pub fn view(&self, view_id: i64) -> Option<&View> {
        self.views.iter().find(|v| v.view_id == view_id)
    }

    /// Names of the stored collections listed in a version's `sources` column.
    pub fn names_of<'a>(&'a self, sources: &'a str) -> Vec<&'a str> {
        let mut out = Vec::new();
        for id in sources.split('\n').filter(|s| !s.is_empty()) {
            match self.source_names.get(id) {
                Some(names) => out.extend(names.iter().map(String::as_str)),
                None => out.push(id),
            }
        }
        out
    }

    /// The registry once the building view `view` is switched live: it is active and
    /// replaces nothing any more, and the view it replaced is gone.
    pub fn switched(&self, view: &View) -> Registry {
        let mut next = self.clone();
        next.views.retain(|v| Some(v.view_id) != view.replaces);
        if let Some(v) = next.views.iter_mut().find(|v| v.view_id == view.view_id) {
            v.state = ViewState::Active;
            v.replaces = None;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query_view(view_id: i64, state: ViewState, replaces: Option<i64>) -> View {
        View {
            view_id,
            collection: "q".into(),
            query: Some(Arc::new(Query::parse("type:indicator").expect("query"))),
            state,
            replaces,
            sources: vec![1],
        }
    }

    #[test]
    fn a_switched_view_serves_in_place_of_the_one_it_replaces() {
        let registry = Registry {
            views: vec![
                query_view(2, ViewState::Active, None),
                query_view(3, ViewState::Building, Some(2)),
            ],
            source_names: HashMap::new(),
        };
        assert_eq!(registry.active("q").map(|v| v.view_id), Some(2));
        let building = registry.view(3).cloned().expect("building view");
        let next = registry.switched(&building);
        assert_eq!(next.views.len(), 1);
        let live = next.active("q").expect("live view");
        assert_eq!((live.view_id, live.replaces), (3, None));
    }
}
