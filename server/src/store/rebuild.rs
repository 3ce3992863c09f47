//! Rebuilding and maintaining query views, once for both backends: a building view is
//! filled batch by batch from the latest object versions and switched live after its
//! last batch; live views using relative time are re-evaluated; retired views are
//! purged. Each backend gives its statements, locking and transactions ([`Rebuilder`],
//! [`Purger`]); the order of the steps and the decisions live here.
//!
//! A batch is read and evaluated before the backend's write lock is taken (parsing
//! [`BATCH`] objects is the slow part); under the lock the backend checks the view is
//! still building (a configuration change may have superseded it) and writes the batch.

use std::sync::Arc;

use crate::query::{ObjectFacts, Query};
use crate::stix::timestamp::now_us;
use crate::store::membership::VersionRow;
use crate::store::registry::{Registry, View, ViewState};
use crate::store::{Clock, Micros, StoreError};

/// Object versions evaluated per rebuild (or re-evaluation) transaction.
pub(crate) const BATCH: usize = 2_000;

/// An object version read for evaluation.
pub(crate) struct Candidate {
    /// Indexed facts.
    pub row: VersionRow,
    /// When the version entered the store.
    pub added_us: Micros,
    /// Stored collections it is in.
    pub sources: String,
    /// Raw JSON.
    pub raw: String,
}

/// Whether a candidate matches a query if it were in the stored collections `sources`
/// (its own, [`Candidate::sources`], unless a writer changed them since it was read).
pub(crate) fn matches_in(
    registry: &Registry,
    query: &Query,
    c: &Candidate,
    sources: &str,
    now: Micros,
) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&c.raw) else {
        return false;
    };
    let names = registry.names_of(sources);
    query.matches(
        &ObjectFacts {
            object: &value,
            sources: &names,
            added_us: c.added_us,
        },
        now,
    )
}

/// Whether a candidate matches a query.
pub(crate) fn matches(registry: &Registry, query: &Query, c: &Candidate, now: Micros) -> bool {
    matches_in(registry, query, c, &c.sources, now)
}

/// The view `view_id` if `registry` says it is building, with its query; `None` when it
/// is not (any more): superseded by a configuration change, or switched live.
pub(crate) fn building(registry: &Registry, view_id: i64) -> Option<(View, Arc<Query>)> {
    let view = registry
        .view(view_id)
        .filter(|v| v.state == ViewState::Building)?;
    let query = view.query.clone()?;
    Some((view.clone(), query))
}

/// The view `view_id` if `registry` says it is in `state` (checked again under the
/// write lock: a configuration change or a switch may have happened meanwhile).
pub(crate) fn view_in(registry: &Registry, view_id: i64, state: ViewState) -> Option<&View> {
    registry.view(view_id).filter(|v| v.state == state)
}

/// The building views, each of which needs a rebuild runner.
pub(crate) fn building_views(registry: &Registry) -> Vec<i64> {
    registry
        .views
        .iter()
        .filter(|v| v.state == ViewState::Building)
        .map(|v| v.view_id)
        .collect()
}

/// The live query views whose query uses relative time (re-evaluated at maintenance).
pub(crate) fn relative_time_views(registry: &Registry) -> Vec<(i64, Arc<Query>)> {
    registry
        .query_views()
        .filter(|(v, q)| v.state == ViewState::Active && q.uses_relative_time())
        .map(|(v, q)| (v.view_id, q.clone()))
        .collect()
}

/// The `date_added` a rebuilt view gives a member: the stamp it has in the view being
/// replaced (`kept`), so clients see no change for rows both views hold; otherwise a
/// fresh stamp, provisional while the view replaces another (restamped at the switch,
/// so pollers resuming from their last `date_added` see it).
pub(crate) fn member_stamp(
    clock: &Clock,
    replaces: Option<i64>,
    kept: Option<Micros>,
) -> (Micros, bool) {
    match (replaces, kept) {
        (Some(_), Some(kept)) => (kept, false),
        (Some(_), None) => (clock.stamp(), true),
        (None, _) => (clock.stamp(), false),
    }
}

/// One batch of a rebuild, read and evaluated before the write lock.
pub(crate) struct Batch<'a> {
    /// The building view as the registry said when the batch was read.
    pub view: &'a View,
    /// Its query.
    pub query: &'a Query,
    /// The registry the batch was evaluated with.
    pub registry: &'a Arc<Registry>,
    /// Up to [`BATCH`] latest versions after the view's progress.
    pub candidates: &'a [Candidate],
    /// Whether each candidate matched the query, evaluated with `registry` at `now`.
    pub early: &'a [bool],
    /// When the batch was evaluated.
    pub now: Micros,
}

impl Batch<'_> {
    /// The view's progress once this batch is written (`None`: an empty batch).
    pub fn last_vid(&self) -> Option<i64> {
        self.candidates.last().map(|c| c.row.vid)
    }

    /// Whether this is the last batch: the view is complete once it is written.
    pub fn completes(&self) -> bool {
        self.candidates.len() < BATCH
    }
}

/// What writing a rebuild batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filled {
    /// The view is not building any more (a configuration change superseded it):
    /// nothing written, the rebuild stops.
    Superseded,
    /// The batch is in; more follow.
    More,
    /// The last batch is in and the view is live.
    Switched,
}

/// A backend's statements and locking for rebuilding a view.
pub(crate) trait Rebuilder {
    /// The registry to evaluate the next batch with.
    async fn registry(&mut self) -> Result<Arc<Registry>, StoreError>;

    /// The last version a building view was filled up to; `None` if it is not building.
    async fn progress(&mut self, view_id: i64) -> Result<Option<i64>, StoreError>;

    /// Up to [`BATCH`] latest object versions after `after_vid`, in `vid` order.
    async fn candidates(&mut self, after_vid: i64) -> Result<Vec<Candidate>, StoreError>;

    /// Under the backend's write lock and in one transaction: unless the registry says
    /// the view is not building any more ([`Filled::Superseded`]), insert the matching
    /// candidates that are still their object's latest in one of the view's sources,
    /// advance its progress to [`Batch::last_vid`] and, if the batch
    /// [`completes`](Batch::completes) it, switch it live.
    async fn write(&mut self, batch: &Batch<'_>) -> Result<Filled, StoreError>;
}

/// Read, evaluate and write the next batch of the rebuild of `view_id`.
pub(crate) async fn rebuild_batch<R: Rebuilder>(
    backend: &mut R,
    view_id: i64,
) -> Result<Filled, StoreError> {
    let registry = backend.registry().await?;
    let Some((view, query)) = building(&registry, view_id) else {
        return Ok(Filled::Superseded);
    };
    let Some(after) = backend.progress(view_id).await? else {
        return Ok(Filled::Superseded);
    };
    let candidates = backend.candidates(after).await?;
    let now = now_us();
    let early: Vec<bool> = candidates
        .iter()
        .map(|c| matches(&registry, &query, c, now))
        .collect();
    backend
        .write(&Batch {
            view: &view,
            query: &query,
            registry: &registry,
            candidates: &candidates,
            early: &early,
            now,
        })
        .await
}

/// A backend's statements and locking for re-evaluating a live query view whose query
/// uses relative time.
pub(crate) trait Reevaluator {
    /// Up to [`BATCH`] latest object versions after `after_vid`, in `vid` order.
    async fn candidates(&mut self, after_vid: i64) -> Result<Vec<Candidate>, StoreError>;

    /// Under the backend's write lock and in one transaction: unless the registry says
    /// the view is not live any more (`false`), make its membership of `batch` what
    /// `query` says now (a version joins only while it is its object's latest in one of
    /// the view's sources).
    async fn reevaluate(
        &mut self,
        view_id: i64,
        query: &Query,
        batch: &[Candidate],
    ) -> Result<bool, StoreError>;
}

/// Re-evaluate the live view `view_id` for the versions after `after_vid`; returns
/// where to go on from, `None` once the view is done (or not live any more).
pub(crate) async fn reevaluate_batch<R: Reevaluator>(
    backend: &mut R,
    view_id: i64,
    query: &Query,
    after_vid: i64,
) -> Result<Option<i64>, StoreError> {
    let batch = backend.candidates(after_vid).await?;
    let Some(last) = batch.last().map(|c| c.row.vid) else {
        return Ok(None);
    };
    if !backend.reevaluate(view_id, query, &batch).await? {
        return Ok(None);
    }
    Ok((batch.len() == BATCH).then_some(last))
}

/// A backend's statements for purging retired views.
pub(crate) trait Purger {
    /// Retired views whose rows can go now.
    async fn retired(&mut self) -> Result<Vec<i64>, StoreError>;

    /// Delete some rows of a retired view in one write transaction, and the view once
    /// it is empty; whether it is gone.
    async fn purge_some(&mut self, view_id: i64) -> Result<bool, StoreError>;
}

/// Delete the rows of every retired view, a transaction at a time.
pub(crate) async fn purge_retired<P: Purger>(backend: &mut P) -> Result<(), StoreError> {
    for view_id in backend.retired().await? {
        while !backend.purge_some(view_id).await? {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebuilt_member_keeps_the_stamp_of_the_view_it_replaces() {
        let clock = Clock::starting_after(100);
        assert_eq!(member_stamp(&clock, Some(7), Some(42)), (42, false));
        let (stamp, provisional) = member_stamp(&clock, Some(7), None);
        assert!(stamp > 100 && provisional);
        let (later, provisional) = member_stamp(&clock, None, Some(42));
        assert!(later > stamp && !provisional);
    }

    fn view(view_id: i64, state: ViewState, query: Option<&str>) -> View {
        View {
            view_id,
            collection: format!("c{view_id}"),
            query: query.map(|q| Arc::new(Query::parse(q).expect("query"))),
            state,
            replaces: None,
            sources: Vec::new(),
        }
    }

    #[test]
    fn only_building_query_views_are_rebuilt() {
        let registry = Registry {
            views: vec![
                view(1, ViewState::Active, None),
                view(2, ViewState::Active, Some("type:indicator")),
                view(3, ViewState::Building, Some("type:malware")),
                view(4, ViewState::Active, Some("added:>now-30d")),
            ],
            source_names: Default::default(),
        };
        assert_eq!(building_views(&registry), vec![3]);
        assert!(building(&registry, 3).is_some());
        assert!(building(&registry, 2).is_none());
        assert!(building(&registry, 9).is_none());
        assert!(view_in(&registry, 3, ViewState::Building).is_some());
        assert!(view_in(&registry, 2, ViewState::Building).is_none());
        assert!(view_in(&registry, 2, ViewState::Active).is_some());
        let relative: Vec<i64> = relative_time_views(&registry)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(relative, vec![4]);
    }
}
