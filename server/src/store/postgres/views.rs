//! View lifecycle in the database: the registry every replica reads, matching views
//! to the configuration, rebuild batches, relative-time re-evaluation, purging.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use deadpool_postgres::GenericClient;

use super::entries::{
    exec, flush_sizes, insert_entry, insert_first_entry, remove_entry, row, rows, SizeChanges,
    VersionRow,
};
use super::tx::Tx;
use crate::query::Query;
use crate::stix::timestamp::now_us;
use crate::store::clock::Clock;
use crate::store::error::StoreError;
use crate::store::micros::Micros;
use crate::store::plan::{self, Building, LiveView, Planned, QueryPlan, StoredPlan};
use crate::store::rebuild::{matches_in, member_stamp, Candidate, BATCH};
use crate::store::registry::{Registry, View, ViewState};
use crate::store::setup::{CollectionSetup, StoreSetup};

/// Parsed queries by text, so a registry reload does not re-parse unchanged queries.
pub type QueryCache = HashMap<String, Arc<Query>>;

/// The registry as the database says it is: every active and building view.
pub async fn load_registry<C: GenericClient>(
    client: &C,
    cache: &mut QueryCache,
) -> Result<Registry, StoreError> {
    let rows = client
        .query(
            "SELECT view_id, collection, kind, query, state, replaces, names, sources FROM views \
             WHERE state != 'retired' ORDER BY view_id",
            &[],
        )
        .await?;
    let mut registry = Registry::default();
    let mut used = HashMap::new();
    // Query views' recorded sources (collection ids), resolved once every stored view
    // is known.
    let mut recorded: HashMap<i64, Option<String>> = HashMap::new();
    for r in rows {
        let view_id: i64 = r.get(0);
        let collection: String = r.get(1);
        let kind: String = r.get(2);
        let text: Option<String> = r.get(3);
        let state: String = r.get(4);
        let replaces: Option<i64> = r.get(5);
        let names: String = r.get(6);
        let sources: Option<String> = r.get(7);
        let query = match (kind.as_str(), text) {
            ("query", Some(text)) => {
                let parsed = parsed_query(cache, view_id, &collection, &text)?;
                used.insert(text, parsed.clone());
                recorded.insert(view_id, sources);
                Some(parsed)
            }
            ("query", None) => {
                return Err(StoreError::Database(format!(
                    "query view {view_id} has no query"
                )))
            }
            _ => {
                let names = recorded_names(&collection, &names);
                registry.source_names.insert(collection.clone(), names);
                None
            }
        };
        let state = if state == "building" {
            ViewState::Building
        } else {
            ViewState::Active
        };
        registry.views.push(View {
            view_id,
            collection,
            query,
            state,
            replaces,
            sources: Vec::new(),
        });
    }
    *cache = used;
    resolve_sources(&mut registry, &recorded);
    // A collection changed from stored to query keeps its stored view (data is never
    // dropped) but is read through its query view: query views come first.
    registry.views.sort_by_key(|v| v.query.is_none());
    Ok(registry)
}

/// A query view's compiled query, from `cache` when its text is unchanged.
fn parsed_query(
    cache: &QueryCache,
    view_id: i64,
    collection: &str,
    text: &str,
) -> Result<Arc<Query>, StoreError> {
    if let Some(q) = cache.get(text) {
        return Ok(q.clone());
    }
    Ok(Arc::new(Query::parse(text).map_err(|e| {
        StoreError::Database(format!(
            "view {view_id} of collection {collection} has a query this binary \
             cannot parse: {e}"
        ))
    })?))
}

/// The names `source:` terms use for a stored collection, as its view records them
/// (`\n`-separated); its id when none are recorded.
fn recorded_names(collection: &str, names: &str) -> Vec<String> {
    let names: Vec<String> = names
        .split('\n')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        vec![collection.to_string()]
    } else {
        names
    }
}

/// Give every query view of `registry` the stored views it draws from: those of the
/// collections it recorded. A view made before sources were recorded (NULL) draws, while
/// it keeps serving during its rebuild, from the new sources (those of the view
/// replacing it); with no replacement under way it draws from nothing (the next
/// `apply_config` rebuilds it).
fn resolve_sources(registry: &mut Registry, recorded: &HashMap<i64, Option<String>>) {
    let of = |text: &str| {
        let ids: Vec<String> = text
            .split('\n')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        registry.stored_view_ids(&ids)
    };
    let own: HashMap<i64, Vec<i64>> = recorded
        .iter()
        .filter_map(|(view_id, text)| text.as_deref().map(|t| (*view_id, of(t))))
        .collect();
    let resolved: Vec<(i64, Vec<i64>)> = registry
        .views
        .iter()
        .filter(|v| v.query.is_some())
        .map(|v| {
            let mut sources = own.get(&v.view_id).cloned().unwrap_or_else(|| {
                registry
                    .views
                    .iter()
                    .find(|n| n.replaces == Some(v.view_id))
                    .and_then(|n| own.get(&n.view_id).cloned())
                    .unwrap_or_default()
            });
            // A writable collection turned into a query collection keeps drawing from
            // what was posted to it (same collection, same readers).
            if let Some(stored) = registry
                .stored_views()
                .find(|s| s.collection == v.collection)
            {
                if !sources.contains(&stored.view_id) {
                    sources.push(stored.view_id);
                }
            }
            (v.view_id, sources)
        })
        .collect();
    for (view_id, sources) in resolved {
        if let Some(v) = registry.views.iter_mut().find(|v| v.view_id == view_id) {
            v.sources = sources;
        }
    }
}

/// Mark the registry changed (every replica reloads it).
pub async fn bump_registry(tx: &Tx<'_>) -> Result<(), StoreError> {
    exec(tx, "UPDATE clock SET registry_gen = registry_gen + 1", &[]).await?;
    Ok(())
}

/// Create a view; `query`: a query view's text and recorded sources.
async fn create_view(
    tx: &Tx<'_>,
    collection: &str,
    query: Option<(&str, &str)>,
    state: ViewState,
    replaces: Option<i64>,
    names: &str,
) -> Result<i64, StoreError> {
    let kind = if query.is_some() { "query" } else { "stored" };
    row(
        tx,
        "INSERT INTO views (collection, kind, query, sources, state, replaces, names, created_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING view_id",
        &[
            &collection,
            &kind,
            &query.map(|(text, _)| text),
            &query.map(|(_, sources)| sources),
            &state.as_str(),
            &replaces,
            &names,
            &now_us(),
        ],
    )
    .await?
    .map(|r| r.get(0))
    .ok_or_else(|| StoreError::Database("INSERT returned no row".into()))
}

async fn retire(tx: &Tx<'_>, view_id: i64) -> Result<(), StoreError> {
    exec(
        tx,
        "UPDATE views SET state = 'retired', retired_us = $2 WHERE view_id = $1",
        &[&view_id, &now_us()],
    )
    .await?;
    Ok(())
}

/// Make the views match `setup` as [`plan`] decides; returns whether anything changed.
pub async fn apply_config(tx: &Tx<'_>, setup: &StoreSetup) -> Result<bool, StoreError> {
    let rows = live_rows(tx).await?;
    let plan = plan::plan(&rows, setup);
    let mut changed = false;
    for step in &plan.collections {
        changed |= match step {
            Planned::Stored { setup, view } => apply_stored(tx, setup, *view).await?,
            Planned::Query {
                setup,
                query,
                sources,
                view,
                ..
            } => apply_query(tx, &setup.id, query.text(), sources, *view).await?,
        };
    }
    for view_id in &plan.retire {
        retire(tx, *view_id).await?;
        changed = true;
    }
    if changed {
        bump_registry(tx).await?;
    }
    Ok(changed)
}

/// The live (not retired) views.
async fn live_rows(tx: &Tx<'_>) -> Result<Vec<LiveView>, StoreError> {
    Ok(rows(
        tx,
        "SELECT view_id, collection, kind, query, state, names, sources FROM views \
         WHERE state != 'retired' ORDER BY view_id",
        &[],
    )
    .await?
    .iter()
    .map(|r| LiveView {
        view_id: r.get(0),
        collection: r.get(1),
        kind: r.get(2),
        query: r.get(3),
        state: r.get(4),
        names: Some(r.get(5)),
        sources: r.get(6),
    })
    .collect())
}

/// A writable collection: its stored view, created if new, with the names `source:`
/// terms use for it. Returns whether anything changed.
async fn apply_stored(
    tx: &Tx<'_>,
    c: &CollectionSetup,
    plan: StoredPlan,
) -> Result<bool, StoreError> {
    match plan {
        StoredPlan::Keep(_) => Ok(false),
        StoredPlan::Rename(view_id) => {
            exec(
                tx,
                "UPDATE views SET names = $2 WHERE view_id = $1",
                &[&view_id, &c.names.join("\n")],
            )
            .await?;
            Ok(true)
        }
        StoredPlan::Create => {
            let names = c.names.join("\n");
            create_view(tx, &c.id, None, ViewState::Active, None, &names).await?;
            Ok(true)
        }
    }
}

/// A query collection: nothing to do while its active view is current, else the view
/// (re)built for its query and sources while the old one, if any, keeps serving.
/// Returns whether a view was created.
///
/// A rebuild under way is told which view it replaces: replicas load the registry,
/// `replaces` included, from the database.
async fn apply_query(
    tx: &Tx<'_>,
    id: &str,
    text: &str,
    sources: &str,
    plan: QueryPlan,
) -> Result<bool, StoreError> {
    let QueryPlan::Rebuild { building, replaces } = plan else {
        return Ok(false);
    };
    match building {
        Building::Resume(view_id) => {
            exec(
                tx,
                "UPDATE views SET replaces = $2 WHERE view_id = $1 AND replaces IS DISTINCT FROM $2",
                &[&view_id, &replaces],
            )
            .await?;
            Ok(false)
        }
        Building::Create => {
            create_view(
                tx,
                id,
                Some((text, sources)),
                ViewState::Building,
                replaces,
                "",
            )
            .await?;
            Ok(true)
        }
    }
}

/// Up to [`BATCH`] latest object versions after `after_vid`.
pub async fn candidates<C: GenericClient>(
    client: &C,
    after_vid: i64,
) -> Result<Vec<Candidate>, StoreError> {
    let limit = BATCH as i64;
    let stmt = client
        .prepare_cached(
            "SELECT vid, stix_id, type, spec_version, version_us, added_us, sources, raw \
             FROM object_versions WHERE vid > $1 AND is_latest ORDER BY vid LIMIT $2",
        )
        .await?;
    Ok(client
        .query(&stmt, &[&after_vid, &limit])
        .await?
        .iter()
        .map(|r| Candidate {
            row: VersionRow {
                vid: r.get(0),
                stix_id: r.get(1),
                kind: r.get(2),
                spec_version: r.get(3),
                version_us: r.get(4),
            },
            added_us: r.get(5),
            sources: r.get(6),
            raw: r.get(7),
        })
        .collect())
}

fn vids(batch: &[Candidate]) -> Vec<i64> {
    batch.iter().map(|c| c.row.vid).collect()
}

/// The current `sources` of those versions of `batch` that are still their object's
/// latest in one of the stored views `sources` (a query view's sources). Which stored
/// collections hold a version, and which version is the latest in each, are the only
/// facts of a stored version that other writers change (a POST of the same bytes into
/// another collection, a DELETE, a newer version).
async fn current_sources(
    tx: &Tx<'_>,
    batch: &[Candidate],
    sources: &[i64],
) -> Result<HashMap<i64, String>, StoreError> {
    Ok(rows(
        tx,
        "SELECT o.vid, o.sources FROM object_versions o WHERE o.vid = ANY($1) \
         AND EXISTS (SELECT 1 FROM entries e WHERE e.view_id = ANY($2) AND e.vid = o.vid AND e.is_last)",
        &[&vids(batch), &sources],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

/// The `date_added` of those versions of `batch` that are members of a view.
async fn members(
    tx: &Tx<'_>,
    view_id: i64,
    batch: &[Candidate],
) -> Result<HashMap<i64, Micros>, StoreError> {
    Ok(rows(
        tx,
        "SELECT vid, date_added FROM entries WHERE view_id = $1 AND vid = ANY($2)",
        &[&view_id, &vids(batch)],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

/// Which of the objects `$2` the view `$1` holds some version of.
pub(super) const OBJECTS_HELD: &str = "SELECT DISTINCT o.stix_id FROM object_versions o \
     JOIN entries e ON e.view_id = $1 AND e.vid = o.vid WHERE o.stix_id = ANY($2)";

/// The STIX ids of `batch` of which a view holds some version.
async fn objects_held(
    tx: &Tx<'_>,
    view_id: i64,
    batch: &[Candidate],
) -> Result<HashSet<String>, StoreError> {
    let ids: Vec<&str> = batch.iter().map(|c| c.row.stix_id.as_str()).collect();
    Ok(rows(tx, OBJECTS_HELD, &[&view_id, &ids])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Whether each candidate of `batch` belongs in `view` (whose query is `query`), decided
/// on its facts as they are now — call it under the clock lock, with `view` as the
/// registry read under it says: `None` for a version that is not (or no longer) its
/// object's latest in one of the view's sources. The batch was read, and `early` decided with `early_registry`,
/// before the lock was taken; meanwhile another replica may have posted an object into
/// another collection or deleted it from one, which `source:` terms depend on. Those
/// versions (or all, if the registry changed) are evaluated again; the rest keep
/// their early decision (the JSON is not parsed twice under the lock).
#[allow(clippy::too_many_arguments)]
pub async fn decide(
    tx: &Tx<'_>,
    view: &View,
    batch: &[Candidate],
    early: &[bool],
    early_registry: &Arc<Registry>,
    registry: &Arc<Registry>,
    query: &Query,
    now: Micros,
) -> Result<Vec<Option<bool>>, StoreError> {
    let current = current_sources(tx, batch, &view.sources).await?;
    let same_registry = Arc::ptr_eq(early_registry, registry);
    Ok(batch
        .iter()
        .zip(early)
        .map(|(c, &early)| {
            let sources = current.get(&c.row.vid)?;
            Some(if same_registry && *sources == c.sources {
                early
            } else {
                matches_in(registry, query, c, sources, now)
            })
        })
        .collect())
}

/// Where a rebuild stands (`None`: the view is not building any more).
pub async fn progress<C: GenericClient>(
    client: &C,
    view_id: i64,
) -> Result<Option<i64>, StoreError> {
    Ok(client
        .query_opt(
            "SELECT progress_vid FROM views WHERE view_id = $1 AND state = 'building'",
            &[&view_id],
        )
        .await?
        .map(|r| r.get(0)))
}

/// Insert the members of a batch (as [`decide`]d under the clock lock) into a building
/// view and advance its progress.
pub async fn fill(
    tx: &Tx<'_>,
    clock: &Clock,
    view: &View,
    batch: &[Candidate],
    decided: &[Option<bool>],
    last_vid: i64,
) -> Result<(), StoreError> {
    let mut sizes = SizeChanges::default();
    // Stamps kept from the view being replaced.
    let kept = match view.replaces {
        Some(old) => members(tx, old, batch).await?,
        None => HashMap::new(),
    };
    // Objects of the batch the view already holds a version of (ingest may have added
    // one meanwhile): those go through the general insert, which checks membership and
    // keeps the first/last flags right; the others are one INSERT each.
    let held = objects_held(tx, view.view_id, batch).await?;
    let mut seen = HashSet::new();
    for (c, decided) in batch.iter().zip(decided) {
        if *decided != Some(true) {
            continue;
        }
        let (stamp, provisional) =
            member_stamp(clock, view.replaces, kept.get(&c.row.vid).copied());
        let first = seen.insert(c.row.stix_id.as_str()) && !held.contains(&c.row.stix_id);
        if first {
            insert_first_entry(tx, &mut sizes, view.view_id, &c.row, stamp, provisional).await?;
        } else {
            insert_entry(tx, &mut sizes, view.view_id, &c.row, stamp, provisional).await?;
        }
    }
    flush_sizes(tx, sizes).await?;
    exec(
        tx,
        "UPDATE views SET progress_vid = $2 WHERE view_id = $1",
        &[&view.view_id, &last_vid],
    )
    .await?;
    Ok(())
}

/// Put a fully built view live: rows new to the collection get fresh stamps, then the
/// view replaces the old one (which is retired, its rows purged later).
///
/// One statement whatever the number of provisional rows (the clock row is locked
/// meanwhile, so this is a write outage): they are restamped `base + 1µs, base + 2µs, …`
/// in their provisional order, `base` being the clock's last stamp (or now, if later). Every new stamp is above every stamp ever handed
/// out, so none clashes with a row of the view (primary key `(view_id, date_added)`).
///
/// Each row is found again by its `ctid`, never by joining on the view: the planner
/// knows nothing of a view created since the table was last analysed (at 10M objects
/// autovacuum's threshold is a million changed rows) and estimates one row for it, and
/// a nested loop over the view's rows with that join as a filter was quadratic — the
/// first rebuild at 10M on PostgreSQL ran into the statement timeout here. A row
/// found by `ctid` costs one lookup whatever the plan.
pub async fn switch(tx: &Tx<'_>, clock: &Clock, view: &View) -> Result<(), StoreError> {
    let n: i64 = rows(
        tx,
        "SELECT count(*) FROM entries WHERE view_id = $1 AND provisional",
        &[&view.view_id],
    )
    .await?
    .first()
    .map(|r| r.get(0))
    .unwrap_or(0);
    let base = clock.reserve(n);
    exec(
        tx,
        "UPDATE entries e SET date_added = $2 + p.rn, provisional = false \
         FROM (SELECT ctid AS row, row_number() OVER (ORDER BY date_added) AS rn \
               FROM entries WHERE view_id = $1 AND provisional) p \
         WHERE e.ctid = p.row",
        &[&view.view_id, &base],
    )
    .await?;
    if let Some(old) = view.replaces {
        retire(tx, old).await?;
    }
    exec(
        tx,
        "UPDATE views SET state = 'active', replaces = NULL WHERE view_id = $1",
        &[&view.view_id],
    )
    .await?;
    bump_registry(tx).await
}

/// Apply a re-evaluation of a batch (as [`decide`]d under the clock lock) to a live
/// view; returns how many memberships changed.
pub async fn reevaluate(
    tx: &Tx<'_>,
    clock: &Clock,
    view_id: i64,
    batch: &[Candidate],
    decided: &[Option<bool>],
) -> Result<usize, StoreError> {
    let mut sizes = SizeChanges::default();
    let mut changed = 0;
    let members = members(tx, view_id, batch).await?;
    for (c, decided) in batch.iter().zip(decided) {
        // A version no longer the latest in one of the view's sources: its writer took
        // care of the view (or it never belonged).
        let Some(wanted) = *decided else {
            continue;
        };
        let member = members.contains_key(&c.row.vid);
        if wanted && !member {
            insert_entry(tx, &mut sizes, view_id, &c.row, clock.stamp(), false).await?;
            changed += 1;
        } else if !wanted && member {
            remove_entry(tx, &mut sizes, view_id, c.row.vid, &c.row.stix_id).await?;
            changed += 1;
        }
    }
    flush_sizes(tx, sizes).await?;
    Ok(changed)
}

/// Views retired before `before` (replicas with an older registry may still read
/// views retired more recently, so their rows are kept a little longer).
pub async fn retired<C: GenericClient>(client: &C, before: Micros) -> Result<Vec<i64>, StoreError> {
    Ok(client
        .query(
            "SELECT view_id FROM views WHERE state = 'retired' AND coalesce(retired_us, 0) < $1",
            &[&before],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Delete some rows of a retired view; drops the view when it is empty. Returns
/// whether the view is gone. The rows are picked by `ctid` (a TID scan whatever the
/// planner thinks the view holds: see [`switch`]).
pub async fn purge_some(tx: &Tx<'_>, view_id: i64) -> Result<bool, StoreError> {
    let limit = (BATCH * 5) as i64;
    let n = exec(
        tx,
        "DELETE FROM entries WHERE ctid = ANY(ARRAY( \
           SELECT ctid FROM entries WHERE view_id = $1 LIMIT $2))",
        &[&view_id, &limit],
    )
    .await?;
    if n == 0 {
        exec(
            tx,
            "DELETE FROM views WHERE view_id = $1 AND state = 'retired'",
            &[&view_id],
        )
        .await?;
        return Ok(true);
    }
    Ok(false)
}

/// Delete status resources older than the retention.
pub async fn purge_statuses(tx: &Tx<'_>, older_than: Micros) -> Result<u64, StoreError> {
    exec(
        tx,
        "DELETE FROM status WHERE created_us < $1",
        &[&older_than],
    )
    .await
}
