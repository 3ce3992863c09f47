//! View lifecycle: matching views to the configuration, rebuilding query views in the
//! background, re-evaluating relative-time queries and purging retired views.

use std::sync::Arc;

use rusqlite::{params, Connection, Transaction};

use super::entries::{
    date_added_in, flush_sizes, insert_entry, remove_entry, SizeChanges, VersionRow, ViewKind,
};
use crate::query::Query;
use crate::stix::timestamp::now_us;
use crate::store::clock::Clock;
use crate::store::error::StoreError;
use crate::store::micros::Micros;
use crate::store::plan::{self, Building, LiveView, Planned, QueryPlan, StoredPlan};
use crate::store::rebuild::{matches, member_stamp, Candidate, BATCH};
use crate::store::registry::{Registry, View, ViewState};
use crate::store::setup::{CollectionSetup, StoreSetup};

fn live_rows(tx: &Transaction<'_>) -> Result<Vec<LiveView>, StoreError> {
    let mut stmt = tx.prepare(
        "SELECT view_id, collection, kind, query, state, sources FROM views WHERE state != 'retired' ORDER BY view_id",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(LiveView {
                view_id: r.get(0)?,
                collection: r.get(1)?,
                kind: r.get(2)?,
                query: r.get(3)?,
                state: r.get(4)?,
                // Kept in memory only (the registry, from the configuration).
                names: None,
                sources: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn create_view(
    tx: &Transaction<'_>,
    collection: &str,
    query: Option<(&str, &str)>,
    state: ViewState,
    replaces: Option<i64>,
) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO views (collection, kind, query, sources, state, replaces, created_us) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        collection,
        if query.is_some() { "query" } else { "stored" },
        query.map(|(text, _)| text),
        query.map(|(_, sources)| sources),
        state.as_str(),
        replaces,
        now_us()
    ])?;
    Ok(tx.last_insert_rowid())
}

fn retire(tx: &Transaction<'_>, view_id: i64) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE views SET state = 'retired' WHERE view_id = ?1")?
        .execute(params![view_id])?;
    Ok(())
}

/// Make the views match `setup` as [`plan`] decides; returns the new registry and the
/// building views that need a rebuild runner.
///
/// The registry lives in memory only (it is rebuilt here from the configuration at
/// every start), so a building view's `replaces` column is written when it is created
/// and never read back.
pub fn apply_config(
    tx: &Transaction<'_>,
    setup: &StoreSetup,
) -> Result<(Registry, Vec<i64>), StoreError> {
    let rows = live_rows(tx)?;
    let plan = plan::plan(&rows, setup);
    let mut applying = Applying {
        tx,
        rows: &rows,
        registry: Registry::default(),
        building: Vec::new(),
    };
    for step in &plan.collections {
        match step {
            Planned::Stored { setup, view } => applying.stored(setup, *view)?,
            Planned::Query {
                setup,
                query,
                sources,
                own_stored,
                view,
            } => applying.query(setup, query, sources, *own_stored, *view)?,
        }
    }
    for view_id in plan.retire {
        retire(tx, view_id)?;
    }
    Ok((applying.registry, applying.building))
}

/// The views of one configuration being applied.
struct Applying<'a, 't> {
    tx: &'a Transaction<'t>,
    /// The live views before.
    rows: &'a [LiveView],
    /// The views after, as far as decided.
    registry: Registry,
    /// Views that need a rebuild runner.
    building: Vec<i64>,
}

impl Applying<'_, '_> {
    /// A writable collection: its stored view, created if new.
    fn stored(&mut self, c: &CollectionSetup, plan: StoredPlan) -> Result<(), StoreError> {
        let id = c.id.as_str();
        let view_id = match plan {
            StoredPlan::Keep(view_id) | StoredPlan::Rename(view_id) => view_id,
            StoredPlan::Create => create_view(self.tx, id, None, ViewState::Active, None)?,
        };
        self.registry.views.push(View {
            view_id,
            collection: id.to_string(),
            query: None,
            state: ViewState::Active,
            replaces: None,
            sources: Vec::new(),
        });
        self.registry
            .source_names
            .insert(id.to_string(), c.names.clone());
        Ok(())
    }

    /// A query collection: its active view if current, else a view (re)built for the
    /// new query or sources while the old one keeps serving.
    fn query(
        &mut self,
        c: &CollectionSetup,
        query: &Arc<Query>,
        sources: &str,
        own_stored: Option<i64>,
        plan: QueryPlan,
    ) -> Result<(), StoreError> {
        let id = c.id.as_str();
        let mut source_views = self.registry.stored_view_ids(&c.sources);
        // A writable collection turned into a query collection keeps drawing from what
        // was posted to it (same collection, same readers).
        source_views.extend(own_stored);
        let (view_id, state, replaces) = match plan {
            QueryPlan::Current(view_id) => (view_id, ViewState::Active, None),
            QueryPlan::Rebuild { building, replaces } => {
                if let Some(old) = replaces {
                    self.keep_serving(old, &source_views);
                }
                let view_id = match building {
                    Building::Resume(view_id) => view_id,
                    Building::Create => create_view(
                        self.tx,
                        id,
                        Some((query.text(), sources)),
                        ViewState::Building,
                        replaces,
                    )?,
                };
                self.building.push(view_id);
                (view_id, ViewState::Building, replaces)
            }
        };
        self.registry.views.push(View {
            view_id,
            collection: id.to_string(),
            query: Some(query.clone()),
            state,
            replaces,
            sources: source_views,
        });
        Ok(())
    }

    /// The old view keeps serving (and being maintained with its old query and its old
    /// sources) until the rebuilt one replaces it. One made before sources were
    /// recorded draws from nothing more than the new one (`new_sources`).
    fn keep_serving(&mut self, old: i64, new_sources: &[i64]) {
        let Some(r) = self.rows.iter().find(|r| r.view_id == old) else {
            return;
        };
        let old_query = r.query.as_deref().and_then(|t| Query::parse(t).ok());
        let old_sources = match &r.sources {
            Some(text) => self
                .registry
                .stored_view_ids(&text.split('\n').map(str::to_string).collect::<Vec<_>>()),
            None => new_sources.to_vec(),
        };
        let collection = r.collection.clone();
        self.registry.views.push(View {
            view_id: old,
            collection,
            query: old_query.map(Arc::new),
            state: ViewState::Active,
            replaces: None,
            sources: old_sources,
        });
    }
}

/// Up to [`BATCH`] latest object versions after `after_vid` (query views hold latest versions only).
pub fn candidates(conn: &Connection, after_vid: i64) -> Result<Vec<Candidate>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT vid, stix_id, type, spec_version, version_us, added_us, sources, raw \
         FROM object_versions WHERE vid > ?1 AND is_latest = 1 ORDER BY vid LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![after_vid, BATCH as i64], |r| {
            Ok(Candidate {
                row: VersionRow {
                    vid: r.get(0)?,
                    stix_id: r.get(1)?,
                    kind: r.get(2)?,
                    spec_version: r.get(3)?,
                    version_us: r.get(4)?,
                },
                added_us: r.get(5)?,
                sources: r.get(6)?,
                raw: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Whether a version is its object's latest in one of the stored views a query view
/// draws from (checked under the writer: ingest may have superseded it since a batch
/// was read, and only a source's latest version belongs in the query view).
pub fn latest_in_sources(tx: &Connection, view: &View, vid: i64) -> Result<bool, StoreError> {
    use rusqlite::OptionalExtension;
    let mut stmt =
        tx.prepare_cached("SELECT is_last FROM entries WHERE view_id = ?1 AND vid = ?2")?;
    for source in &view.sources {
        let last: Option<bool> = stmt
            .query_row(params![source, vid], |r| r.get(0))
            .optional()?;
        if last == Some(true) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Where a rebuild stands.
pub fn progress(conn: &Connection, view_id: i64) -> Result<Option<i64>, StoreError> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached("SELECT progress_vid FROM views WHERE view_id = ?1 AND state = 'building'")?
        .query_row(params![view_id], |r| r.get(0))
        .optional()?)
}

/// Insert a batch of matching candidates into a building view and advance its progress.
pub fn fill(
    tx: &Transaction<'_>,
    clock: &Clock,
    view: &View,
    matching: &[&Candidate],
    last_vid: i64,
) -> Result<(), StoreError> {
    let mut sizes = SizeChanges::default();
    for c in matching {
        // Superseded since the batch was read (ingest has put the newer version in), or
        // the latest only in collections this view does not draw from.
        if !latest_in_sources(tx, view, c.row.vid)? {
            continue;
        }
        let kept = match view.replaces {
            Some(old) => date_added_in(tx, old, c.row.vid)?,
            None => None,
        };
        let (stamp, provisional) = member_stamp(clock, view.replaces, kept);
        let query_view = (view.view_id, ViewKind::Query);
        insert_entry(tx, &mut sizes, query_view, &c.row, stamp, provisional)?;
    }
    flush_sizes(tx, sizes)?;
    tx.prepare_cached("UPDATE views SET progress_vid = ?2 WHERE view_id = ?1")?
        .execute(params![view.view_id, last_vid])?;
    Ok(())
}

/// Put a fully built view live: rows new to the collection get fresh stamps (so
/// pollers resuming from their last `date_added` see them), then the view replaces
/// the old one.
pub fn switch(tx: &Transaction<'_>, clock: &Clock, view: &View) -> Result<(), StoreError> {
    let provisional: Vec<i64> = tx
        .prepare("SELECT date_added FROM entries WHERE view_id = ?1 AND provisional = 1 ORDER BY date_added")?
        .query_map(params![view.view_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut restamp = tx.prepare_cached(
        "UPDATE entries SET date_added = ?3, provisional = 0 WHERE view_id = ?1 AND date_added = ?2",
    )?;
    for old in provisional {
        restamp.execute(params![view.view_id, old, clock.stamp()])?;
    }
    if let Some(old) = view.replaces {
        retire(tx, old)?;
    }
    tx.prepare_cached("UPDATE views SET state = 'active', replaces = NULL WHERE view_id = ?1")?
        .execute(params![view.view_id])?;
    Ok(())
}

/// Apply a re-evaluation of a batch to a live view.
pub fn reevaluate(
    tx: &Transaction<'_>,
    clock: &Clock,
    view: &View,
    batch: &[Candidate],
    query: &Query,
    registry: &Registry,
    now: Micros,
) -> Result<usize, StoreError> {
    let view_id = view.view_id;
    let mut sizes = SizeChanges::default();
    let mut changed = 0;
    for c in batch {
        let member = date_added_in(tx, view_id, c.row.vid)?.is_some();
        let wanted = matches(registry, query, c, now);
        if wanted && !member && latest_in_sources(tx, view, c.row.vid)? {
            let query_view = (view_id, ViewKind::Query);
            insert_entry(tx, &mut sizes, query_view, &c.row, clock.stamp(), false)?;
            changed += 1;
        } else if !wanted && member {
            remove_entry(tx, &mut sizes, view_id, c.row.vid, &c.row.stix_id)?;
            changed += 1;
        }
    }
    flush_sizes(tx, sizes)?;
    Ok(changed)
}

/// Retired views, whose rows can go.
pub fn retired(conn: &Connection) -> Result<Vec<i64>, StoreError> {
    Ok(conn
        .prepare("SELECT view_id FROM views WHERE state = 'retired'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// Delete up to [`BATCH`]·5 rows of a retired view; drops the view when it is empty.
/// Returns whether the view is gone.
pub fn purge_some(tx: &Transaction<'_>, view_id: i64) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "DELETE FROM entries WHERE view_id = ?1 AND date_added IN \
             (SELECT date_added FROM entries WHERE view_id = ?1 LIMIT ?2)",
        )?
        .execute(params![view_id, (BATCH * 5) as i64])?;
    if n == 0 {
        tx.prepare_cached("DELETE FROM views WHERE view_id = ?1")?
            .execute(params![view_id])?;
        return Ok(true);
    }
    Ok(false)
}

/// Delete status resources older than the retention.
pub fn purge_statuses(tx: &Transaction<'_>, older_than: Micros) -> Result<usize, StoreError> {
    Ok(tx
        .prepare_cached("DELETE FROM status WHERE created_us < ?1")?
        .execute(params![older_than])?)
}
