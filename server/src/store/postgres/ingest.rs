//! Writes: adding objects to a stored collection (and keeping query views in step)
//! and deleting them. The same rules as the SQLite store (see its `ingest` module):
//! collections are isolated — a version row is shared only by collections posted the
//! very same bytes, "latest" is decided per stored collection, and a query collection
//! holds the latest version of each object in each of its sources that matches.
//!
//! Statements are few and batched where the SQLite store loops (each is a round trip
//! here): one probe per posted version, and a brand-new object costs its row, its entry
//! and one entry per query view it matches.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use super::entries::{
    date_added_in, exec, flush_sizes, insert_entry, insert_first_entry, remove_entry, row, rows,
    SizeChanges, VersionRow,
};
use super::Tx;
use crate::query::{ObjectFacts, Query};
use crate::stix::timestamp::now_us;
use crate::store::membership::Ingested;
use crate::store::registry::{Registry, View, ViewState};
use crate::store::{AddObjects, Clock, Micros, NewObject, StatusDetail, StoreError, VersionMatch};

/// Store `request` in the stored view `view_id` and keep every query view in step.
pub async fn add_objects(
    tx: &Tx<'_>,
    registry: &Registry,
    clock: &Clock,
    collection: &str,
    view_id: i64,
    request: AddObjects,
) -> Result<Ingested, StoreError> {
    let mut sizes = SizeChanges::default();
    let mut out = Ingested {
        failures: request.failures,
        ..Default::default()
    };
    let now = now_us();
    for object in request.objects {
        let version = object.object.version_text();
        let id = object.object.id.clone();
        let mut w = Writer {
            tx,
            registry,
            clock,
            sizes: &mut sizes,
            now,
        };
        w.store_one(collection, view_id, object).await?;
        out.successes.push(StatusDetail {
            id,
            version,
            message: None,
        });
    }
    flush_sizes(tx, sizes).await?;
    Ok(out)
}

/// One write transaction's context.
struct Writer<'a, 't> {
    tx: &'a Tx<'t>,
    registry: &'a Registry,
    clock: &'a Clock,
    sizes: &'a mut SizeChanges,
    now: Micros,
}

/// What a query needs of one version: its JSON, the stored collections that hold
/// those very bytes, and when it entered the store.
struct Evaluated<'v> {
    value: Cow<'v, serde_json::Value>,
    sources: String,
    added_us: Micros,
    row: VersionRow,
}

/// Everything ingest needs to know before writing one version, in one round trip:
/// whether the stored view already holds the version (an unversioned object: any
/// version), the object's latest version there, the version row with the very same
/// bytes, and whether any version of the object is stored at all.
const PROBE: &str = "SELECT \
       EXISTS (SELECT 1 FROM entries WHERE view_id = $1 AND stix_id = $2 \
               AND ($3::bigint IS NULL OR version_us = $3)), \
       l.vid, l.version_us, \
       o.vid, o.sources, o.version_us, o.added_us, \
       EXISTS (SELECT 1 FROM object_versions WHERE stix_id = $2) \
     FROM (SELECT 1) AS one \
     LEFT JOIN LATERAL (SELECT vid, version_us FROM entries WHERE view_id = $1 AND stix_id = $2 \
                        ORDER BY version_us DESC LIMIT 1) l ON true \
     LEFT JOIN LATERAL (SELECT vid, sources, version_us, added_us FROM object_versions \
                        WHERE stix_id = $2 AND version_key = $4 AND raw = $5 LIMIT 1) o ON true";

impl Writer<'_, '_> {
    async fn store_one(
        &mut self,
        collection: &str,
        view_id: i64,
        new: NewObject,
    ) -> Result<(), StoreError> {
        let tx = self.tx;
        let obj = &new.object;
        let version_key = obj.version.unwrap_or(-1);
        let probe = row(
            tx,
            PROBE,
            &[&view_id, &obj.id, &obj.version, &version_key, &new.raw],
        )
        .await?
        .ok_or_else(|| StoreError::Database("the ingest probe returned no row".into()))?;
        // A version this collection already holds (an SCO: the object) is a duplicate,
        // not an error; the first write of a version wins, within its collection only.
        if probe.get::<_, bool>(0) {
            return Ok(());
        }
        let previous: Option<(i64, Micros)> = probe
            .get::<_, Option<i64>>(1)
            .map(|vid| (vid, probe.get(2)));
        let existing: Option<(i64, String, Micros, Micros)> = probe
            .get::<_, Option<i64>>(3)
            .map(|vid| (vid, probe.get(4), probe.get(5), probe.get(6)));
        // No version of this object is stored: no view holds any of it, so its entries
        // need no flag updates or removals (the common case of ingest).
        let fresh = !probe.get::<_, bool>(7);
        // Whether this version becomes the object's latest in this collection (an
        // older version arriving late does not).
        let becomes_last = previous.is_none_or(|(_, v)| obj.version.is_none_or(|k| k > v));
        // A version row is shared only with collections posted the very same bytes.
        let (vid, version_us, added_us, sources) = match existing {
            Some((vid, sources, version_us, added_us)) => {
                let sources = format!("{sources}{collection}\n");
                exec(
                    tx,
                    "UPDATE object_versions SET sources = $2, is_latest = is_latest OR $3 WHERE vid = $1",
                    &[&vid, &sources, &becomes_last],
                )
                .await?;
                (vid, version_us, added_us, sources)
            }
            None => {
                let added_us = self.clock.stamp();
                let version_us = obj.version.unwrap_or(added_us);
                let sources = format!("{collection}\n");
                let vid: i64 = row(
                    tx,
                    "INSERT INTO object_versions (stix_id, type, spec_version, version_key, version_us, \
                     added_us, sources, is_latest, raw) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     RETURNING vid",
                    &[
                        &obj.id,
                        &obj.kind,
                        &obj.spec_version,
                        &version_key,
                        &version_us,
                        &added_us,
                        &sources,
                        &becomes_last,
                        &new.raw,
                    ],
                )
                .await?
                .map(|r| r.get(0))
                .ok_or_else(|| StoreError::Database("INSERT returned no row".into()))?;
                (vid, version_us, added_us, sources)
            }
        };
        let row = VersionRow {
            vid,
            stix_id: obj.id.clone(),
            kind: obj.kind.clone(),
            spec_version: obj.spec_version.clone(),
            version_us,
        };
        let stamp = self.clock.stamp();
        if previous.is_none() {
            // The collection holds nothing of the object: first and last, no flags to move.
            insert_first_entry(tx, self.sizes, view_id, &row, stamp, false).await?;
        } else {
            insert_entry(tx, self.sizes, view_id, &row, stamp, false).await?;
        }
        if !becomes_last {
            return Ok(()); // no query view changes
        }
        if let Some((old, _)) = previous {
            refresh_latest(tx, old).await?;
        }
        let posted = Evaluated {
            value: Cow::Borrowed(&obj.value),
            sources,
            added_us,
            row,
        };
        self.sync_query_views(view_id, &obj.id, Some(posted), fresh)
            .await
    }

    /// After the latest version of `stix_id` in the stored view `changed` changed: make
    /// every query view drawing from it hold exactly the latest version of the object
    /// in each of its sources that matches its query, and nothing else of the object.
    /// `fresh`: the object was stored nowhere before `posted` (no view holds any of
    /// it, no other source has it).
    async fn sync_query_views(
        &mut self,
        changed: i64,
        stix_id: &str,
        posted: Option<Evaluated<'_>>,
        fresh: bool,
    ) -> Result<(), StoreError> {
        let views: Vec<(View, Arc<Query>)> = self
            .registry
            .query_views()
            .filter(|(v, _)| v.draws_from(changed))
            .map(|(v, q)| (v.clone(), q.clone()))
            .collect();
        if views.is_empty() {
            return Ok(());
        }
        if let (true, Some(posted)) = (fresh, &posted) {
            for (view, query) in &views {
                if self.matches(query, posted) {
                    // Not in the view it replaces either: a new member, provisional
                    // while the view builds.
                    let provisional = view.state == ViewState::Building && view.replaces.is_some();
                    insert_first_entry(
                        self.tx,
                        self.sizes,
                        view.view_id,
                        &posted.row,
                        self.clock.stamp(),
                        provisional,
                    )
                    .await?;
                }
            }
            return Ok(());
        }
        // The object's latest version in each stored view any of them draws from: in
        // `changed`, the version just posted (if one was); the others are looked up.
        let mut latest: HashMap<i64, i64> = HashMap::new();
        let mut evaluated: HashMap<i64, Evaluated<'_>> = HashMap::new();
        if let Some(posted) = posted {
            latest.insert(changed, posted.row.vid);
            evaluated.insert(posted.row.vid, posted);
        }
        let mut sources: Vec<i64> = views
            .iter()
            .flat_map(|(v, _)| v.sources.iter().copied())
            .filter(|s| !latest.contains_key(s))
            .collect();
        sources.sort_unstable();
        sources.dedup();
        if !sources.is_empty() {
            for r in rows(
                self.tx,
                "SELECT DISTINCT ON (view_id) view_id, vid FROM entries \
                 WHERE view_id = ANY($1) AND stix_id = $2 ORDER BY view_id, version_us DESC",
                &[&sources, &stix_id],
            )
            .await?
            {
                latest.insert(r.get(0), r.get(1));
            }
        }
        let mut missing: Vec<i64> = latest
            .values()
            .copied()
            .filter(|vid| !evaluated.contains_key(vid))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            for e in load(self.tx, &missing).await? {
                evaluated.insert(e.row.vid, e);
            }
        }
        // What the views hold of the object now.
        let view_ids: Vec<i64> = views.iter().map(|(v, _)| v.view_id).collect();
        let held: Vec<(i64, i64)> = rows(
            self.tx,
            "SELECT view_id, vid FROM entries WHERE view_id = ANY($1) AND stix_id = $2",
            &[&view_ids, &stix_id],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
        for (view, query) in &views {
            let mut members: Vec<i64> = Vec::new();
            for source in &view.sources {
                let Some(&vid) = latest.get(source) else {
                    continue;
                };
                if members.contains(&vid) {
                    continue;
                }
                if evaluated.get(&vid).is_some_and(|e| self.matches(query, e)) {
                    members.push(vid);
                }
            }
            let held: Vec<i64> = held
                .iter()
                .filter(|(v, _)| *v == view.view_id)
                .map(|(_, vid)| *vid)
                .collect();
            self.make_members(view, stix_id, &held, &members, &evaluated)
                .await?;
        }
        Ok(())
    }

    fn matches(&self, query: &Query, e: &Evaluated<'_>) -> bool {
        let names = self.registry.names_of(&e.sources);
        query.matches(
            &ObjectFacts {
                object: &e.value,
                sources: &names,
                added_us: e.added_us,
            },
            self.now,
        )
    }

    /// Make the versions of `stix_id` in `view` exactly `members` (it holds `held`).
    async fn make_members(
        &mut self,
        view: &View,
        stix_id: &str,
        held: &[i64],
        members: &[i64],
        evaluated: &HashMap<i64, Evaluated<'_>>,
    ) -> Result<(), StoreError> {
        for vid in held.iter().filter(|v| !members.contains(v)) {
            remove_entry(self.tx, self.sizes, view.view_id, *vid, stix_id).await?;
        }
        // Whether the view holds nothing of the object before the next insert.
        let mut empty = !held.iter().any(|v| members.contains(v));
        for vid in members.iter().filter(|v| !held.contains(v)) {
            let row = &evaluated[vid].row;
            let (stamp, provisional) = stamp_for(self.tx, self.clock, view, *vid).await?;
            if empty {
                insert_first_entry(self.tx, self.sizes, view.view_id, row, stamp, provisional)
                    .await?;
                empty = false;
            } else {
                insert_entry(self.tx, self.sizes, view.view_id, row, stamp, provisional).await?;
            }
        }
        Ok(())
    }
}

/// The latest version of an object in a view.
async fn last_in(tx: &Tx<'_>, view_id: i64, stix_id: &str) -> Result<Option<i64>, StoreError> {
    Ok(row(
        tx,
        "SELECT vid FROM entries WHERE view_id = $1 AND stix_id = $2 \
         ORDER BY version_us DESC LIMIT 1",
        &[&view_id, &stix_id],
    )
    .await?
    .map(|r| r.get(0)))
}

/// Recompute whether a version is its object's latest in some stored view (the row
/// is written only when that changes).
async fn refresh_latest(tx: &Tx<'_>, vid: i64) -> Result<(), StoreError> {
    exec(
        tx,
        "UPDATE object_versions SET is_latest = NOT is_latest WHERE vid = $1 \
         AND is_latest <> EXISTS (SELECT 1 FROM views v \
           JOIN entries e ON e.view_id = v.view_id AND e.vid = $1 \
           WHERE v.kind = 'stored' AND e.is_last)",
        &[&vid],
    )
    .await?;
    Ok(())
}

/// Stored versions, parsed for evaluation.
async fn load(tx: &Tx<'_>, vids: &[i64]) -> Result<Vec<Evaluated<'static>>, StoreError> {
    rows(
        tx,
        "SELECT vid, stix_id, type, spec_version, version_us, sources, added_us, raw \
         FROM object_versions WHERE vid = ANY($1)",
        &[&vids],
    )
    .await?
    .iter()
    .map(|r| {
        let stix_id: String = r.get(1);
        let raw: &str = r.get(7);
        let value = serde_json::from_str(raw)
            .map_err(|e| StoreError::Database(format!("corrupt stored object {stix_id}: {e}")))?;
        Ok(Evaluated {
            value: Cow::Owned(value),
            sources: r.get(5),
            added_us: r.get(6),
            row: VersionRow {
                vid: r.get(0),
                stix_id,
                kind: r.get(2),
                spec_version: r.get(3),
                version_us: r.get(4),
            },
        })
    })
    .collect()
}

/// The `date_added` a version gets when it enters `view` (see the SQLite store).
pub async fn stamp_for(
    tx: &Tx<'_>,
    clock: &Clock,
    view: &View,
    vid: i64,
) -> Result<(Micros, bool), StoreError> {
    Ok(match (view.state, view.replaces) {
        (ViewState::Building, Some(old)) => match date_added_in(tx, old, vid).await? {
            Some(kept) => (kept, false),
            None => (clock.stamp(), true),
        },
        _ => (clock.stamp(), false),
    })
}

/// Delete versions of `stix_id` from the stored view `view_id`; versions no longer in
/// any stored collection leave the store. Returns how many versions left the collection.
#[allow(clippy::too_many_arguments)]
pub async fn delete_object(
    tx: &Tx<'_>,
    registry: &Registry,
    clock: &Clock,
    collection: &str,
    view_id: i64,
    stix_id: &str,
    versions: &VersionMatch,
    spec_versions: &[String],
) -> Result<u64, StoreError> {
    let mut doomed = Vec::new();
    for r in rows(
        tx,
        "SELECT vid, version_us, spec_version, is_first, is_last FROM entries \
         WHERE view_id = $1 AND stix_id = $2",
        &[&view_id, &stix_id],
    )
    .await?
    {
        let (vid, version_us, spec, first, last): (i64, i64, String, bool, bool) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        let version_ok = versions.all
            || (versions.first && first)
            || (versions.last && last)
            || versions.at.contains(&version_us);
        let spec_ok = spec_versions.is_empty() || spec_versions.contains(&spec);
        if version_ok && spec_ok {
            doomed.push(vid);
        }
    }
    let mut sizes = SizeChanges::default();
    let mut removed = 0;
    let before = last_in(tx, view_id, stix_id).await?;
    for vid in doomed {
        if remove_entry(tx, &mut sizes, view_id, vid, stix_id).await? {
            removed += 1;
        }
        let sources: String = row(
            tx,
            "SELECT sources FROM object_versions WHERE vid = $1",
            &[&vid],
        )
        .await?
        .map(|r| r.get(0))
        .unwrap_or_default();
        let remaining: String = sources
            .split('\n')
            .filter(|s| !s.is_empty() && *s != collection)
            .map(|s| format!("{s}\n"))
            .collect();
        if remaining.is_empty() {
            exec(tx, "DELETE FROM object_versions WHERE vid = $1", &[&vid]).await?;
        } else {
            exec(
                tx,
                "UPDATE object_versions SET sources = $2 WHERE vid = $1",
                &[&vid, &remaining],
            )
            .await?;
            refresh_latest(tx, vid).await?;
        }
    }
    let after = last_in(tx, view_id, stix_id).await?;
    if before != after {
        if let Some(vid) = after {
            refresh_latest(tx, vid).await?;
        }
        let mut w = Writer {
            tx,
            registry,
            clock,
            sizes: &mut sizes,
            now: now_us(),
        };
        w.sync_query_views(view_id, stix_id, None, false).await?;
    }
    flush_sizes(tx, sizes).await?;
    Ok(removed)
}
