//! Writes: adding objects to a stored collection (and keeping query views in step)
//! and deleting them.
//!
//! Stored collections hold every version posted to them. A query collection holds
//! the *latest* version of each object whose latest version matches its query: when
//! a newer version stops matching (revoked, confidence lowered), the object leaves the
//! view; when it matches, it replaces the older one with a fresh `date_added`, so
//! pollers see the update.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{params, OptionalExtension, Transaction};

use super::entries::{
    date_added_in, flush_sizes, insert_entry, remove_entry, SizeChanges, VersionRow,
};
use crate::query::{ObjectFacts, Query};
use crate::stix::timestamp::now_us;
use crate::store::membership::Ingested;
use crate::store::registry::{Registry, View, ViewState};
use crate::store::{AddObjects, Clock, Micros, NewObject, StatusDetail, StoreError, VersionMatch};

/// Store `request` in the stored view `view_id` and keep every query view in step.
pub fn add_objects(
    tx: &Transaction<'_>,
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
        w.store_one(collection, view_id, object)?;
        out.successes.push(StatusDetail {
            id,
            version,
            message: None,
        });
    }
    flush_sizes(tx, sizes)?;
    Ok(out)
}

/// One write transaction's context.
struct Writer<'a, 't> {
    tx: &'a Transaction<'t>,
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

impl Writer<'_, '_> {
    fn store_one(
        &mut self,
        collection: &str,
        view_id: i64,
        new: NewObject,
    ) -> Result<(), StoreError> {
        let tx = self.tx;
        let obj = &new.object;
        let version_key = obj.version.unwrap_or(-1);
        // A version this collection already holds (an SCO: the object) is a duplicate,
        // not an error; the first write of a version wins, within its collection only.
        if holds_version(tx, view_id, &obj.id, obj.version)? {
            return Ok(());
        }
        let previous = last_in(tx, view_id, &obj.id)?;
        // Whether this version becomes the object's latest in this collection (an
        // older version arriving late does not).
        let becomes_last = previous.is_none_or(|(_, v)| obj.version.is_none_or(|k| k > v));
        // A version row is shared only with collections posted the very same bytes.
        let existing: Option<(i64, String, Micros, Micros)> = tx
            .prepare_cached(
                "SELECT vid, sources, version_us, added_us FROM object_versions \
                 WHERE stix_id = ?1 AND version_key = ?2 AND raw = ?3",
            )?
            .query_row(params![obj.id, version_key, new.raw], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        let (vid, version_us, added_us, sources) = match existing {
            Some((vid, sources, version_us, added_us)) => {
                let sources = format!("{sources}{collection}\n");
                tx.prepare_cached(
                    "UPDATE object_versions SET sources = ?2, is_latest = is_latest OR ?3 WHERE vid = ?1",
                )?
                .execute(params![vid, sources, becomes_last])?;
                (vid, version_us, added_us, sources)
            }
            None => {
                let added_us = self.clock.stamp();
                let version_us = obj.version.unwrap_or(added_us);
                tx.prepare_cached(
                    "INSERT INTO object_versions (stix_id, type, spec_version, version_key, version_us, \
                     added_us, sources, is_latest, raw) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?
                .execute(params![
                    obj.id,
                    obj.kind,
                    obj.spec_version,
                    version_key,
                    version_us,
                    added_us,
                    format!("{collection}\n"),
                    becomes_last,
                    new.raw
                ])?;
                (
                    tx.last_insert_rowid(),
                    version_us,
                    added_us,
                    format!("{collection}\n"),
                )
            }
        };
        let row = VersionRow {
            vid,
            stix_id: obj.id.clone(),
            kind: obj.kind.clone(),
            spec_version: obj.spec_version.clone(),
            version_us,
        };
        insert_entry(tx, self.sizes, view_id, &row, self.clock.stamp(), false)?;
        if !becomes_last {
            return Ok(()); // no query view changes
        }
        if let Some((old, _)) = previous {
            refresh_latest(tx, old)?;
        }
        let posted = Evaluated {
            value: Cow::Borrowed(&obj.value),
            sources,
            added_us,
            row,
        };
        self.sync_query_views(view_id, &obj.id, Some(posted))
    }

    /// After the latest version of `stix_id` in the stored view `changed` changed: make
    /// every query view drawing from it hold exactly the latest version of the object
    /// in each of its sources that matches its query, and nothing else of the object.
    fn sync_query_views(
        &mut self,
        changed: i64,
        stix_id: &str,
        posted: Option<Evaluated<'_>>,
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
        // The object's latest version in each stored view any of them draws from.
        let mut latest: HashMap<i64, Option<i64>> = HashMap::new();
        let mut evaluated: HashMap<i64, Evaluated<'_>> = HashMap::new();
        if let Some(posted) = posted {
            // Just posted as the latest in `changed`: no need to look it up again.
            latest.insert(changed, Some(posted.row.vid));
            evaluated.insert(posted.row.vid, posted);
        }
        for (view, query) in &views {
            let mut wanted = Vec::new();
            for source in &view.sources {
                let vid = match latest.get(source) {
                    Some(vid) => *vid,
                    None => {
                        let vid = last_in(self.tx, *source, stix_id)?.map(|(vid, _)| vid);
                        latest.insert(*source, vid);
                        vid
                    }
                };
                if let Some(vid) = vid.filter(|v| !wanted.contains(v)) {
                    wanted.push(vid);
                }
            }
            let mut members = Vec::new();
            for vid in wanted {
                let e = match evaluated.entry(vid) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => e.insert(load(self.tx, vid)?),
                };
                let names = self.registry.names_of(&e.sources);
                let facts = ObjectFacts {
                    object: &e.value,
                    sources: &names,
                    added_us: e.added_us,
                };
                if query.matches(&facts, self.now) {
                    members.push(vid);
                }
            }
            self.make_members(view, stix_id, &members, &evaluated)?;
        }
        Ok(())
    }

    /// Make the versions of `stix_id` in `view` exactly `members`.
    fn make_members(
        &mut self,
        view: &View,
        stix_id: &str,
        members: &[i64],
        evaluated: &HashMap<i64, Evaluated<'_>>,
    ) -> Result<(), StoreError> {
        let held: Vec<i64> = self
            .tx
            .prepare_cached(
                "SELECT vid FROM entries INDEXED BY entries_by_object WHERE view_id = ?1 AND stix_id = ?2",
            )?
            .query_map(params![view.view_id, stix_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for vid in held.iter().filter(|v| !members.contains(v)) {
            remove_entry(self.tx, self.sizes, view.view_id, *vid, stix_id)?;
        }
        for vid in members.iter().filter(|v| !held.contains(v)) {
            let row = &evaluated[vid].row;
            let (stamp, provisional) = stamp_for(self.tx, self.clock, view, *vid)?;
            insert_entry(self.tx, self.sizes, view.view_id, row, stamp, provisional)?;
        }
        Ok(())
    }
}

/// Whether the stored view holds this version of the object (any version of an
/// unversioned object).
fn holds_version(
    tx: &Transaction<'_>,
    view_id: i64,
    stix_id: &str,
    version: Option<Micros>,
) -> Result<bool, StoreError> {
    Ok(match version {
        Some(v) => tx
            .prepare_cached(
                "SELECT 1 FROM entries INDEXED BY entries_by_object \
                 WHERE view_id = ?1 AND stix_id = ?2 AND version_us = ?3",
            )?
            .exists(params![view_id, stix_id, v])?,
        None => tx
            .prepare_cached(
                "SELECT 1 FROM entries INDEXED BY entries_by_object WHERE view_id = ?1 AND stix_id = ?2",
            )?
            .exists(params![view_id, stix_id])?,
    })
}

/// The latest version of an object in a view: `(vid, version_us)`.
fn last_in(
    tx: &Transaction<'_>,
    view_id: i64,
    stix_id: &str,
) -> Result<Option<(i64, Micros)>, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT vid, version_us FROM entries INDEXED BY entries_by_object \
             WHERE view_id = ?1 AND stix_id = ?2 ORDER BY version_us DESC LIMIT 1",
        )?
        .query_row(params![view_id, stix_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Recompute whether a version is its object's latest in some stored view.
fn refresh_latest(tx: &Transaction<'_>, vid: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE object_versions SET is_latest = EXISTS (SELECT 1 FROM views v \
           JOIN entries e ON e.view_id = v.view_id AND e.vid = ?1 \
           WHERE v.kind = 'stored' AND e.is_last = 1) WHERE vid = ?1",
    )?
    .execute(params![vid])?;
    Ok(())
}

/// A stored version, parsed for evaluation.
fn load(tx: &Transaction<'_>, vid: i64) -> Result<Evaluated<'static>, StoreError> {
    let (stix_id, kind, spec_version, version_us, sources, added_us, raw): (
        String,
        String,
        String,
        Micros,
        String,
        Micros,
        String,
    ) = tx
        .prepare_cached(
            "SELECT stix_id, type, spec_version, version_us, sources, added_us, raw \
             FROM object_versions WHERE vid = ?1",
        )?
        .query_row(params![vid], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?;
    let value = serde_json::from_str(&raw)
        .map_err(|e| StoreError::Database(format!("corrupt stored object {stix_id}: {e}")))?;
    Ok(Evaluated {
        value: Cow::Owned(value),
        sources,
        added_us,
        row: VersionRow {
            vid,
            stix_id,
            kind,
            spec_version,
            version_us,
        },
    })
}

/// The `date_added` a version gets when it enters `view`. A building view keeps the
/// stamp the row has in the view it replaces, so clients see no change for rows both
/// views hold; rows new to the collection are provisional and get fresh stamps when
/// the rebuilt view goes live.
pub fn stamp_for(
    tx: &Transaction<'_>,
    clock: &Clock,
    view: &View,
    vid: i64,
) -> Result<(Micros, bool), StoreError> {
    Ok(match (view.state, view.replaces) {
        (ViewState::Building, Some(old)) => match date_added_in(tx, old, vid)? {
            Some(kept) => (kept, false),
            None => (clock.stamp(), true),
        },
        _ => (clock.stamp(), false),
    })
}

/// Delete versions of `stix_id` from the stored view `view_id`; versions no longer in
/// any stored collection leave the store. Returns how many versions left the collection.
#[allow(clippy::too_many_arguments)]
pub fn delete_object(
    tx: &Transaction<'_>,
    registry: &Registry,
    clock: &Clock,
    collection: &str,
    view_id: i64,
    stix_id: &str,
    versions: &VersionMatch,
    spec_versions: &[String],
) -> Result<u64, StoreError> {
    let mut doomed = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT vid, version_us, spec_version, is_first, is_last FROM entries INDEXED BY entries_by_object \
             WHERE view_id = ?1 AND stix_id = ?2",
        )?;
        let rows = stmt.query_map(params![view_id, stix_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })?;
        for row in rows {
            let (vid, version_us, spec, first, last) = row?;
            let version_ok = versions.all
                || (versions.first && first)
                || (versions.last && last)
                || versions.at.contains(&version_us);
            let spec_ok = spec_versions.is_empty() || spec_versions.contains(&spec);
            if version_ok && spec_ok {
                doomed.push(vid);
            }
        }
    }
    let mut sizes = SizeChanges::default();
    let mut removed = 0;
    let before = last_in(tx, view_id, stix_id)?.map(|(vid, _)| vid);
    for vid in &doomed {
        let vid = *vid;
        if remove_entry(tx, &mut sizes, view_id, vid, stix_id)? {
            removed += 1;
        }
        let sources: String = tx
            .prepare_cached("SELECT sources FROM object_versions WHERE vid = ?1")?
            .query_row(params![vid], |r| r.get(0))?;
        let remaining: String = sources
            .split('\n')
            .filter(|s| !s.is_empty() && *s != collection)
            .map(|s| format!("{s}\n"))
            .collect();
        if remaining.is_empty() {
            tx.prepare_cached("DELETE FROM object_versions WHERE vid = ?1")?
                .execute(params![vid])?;
        } else {
            tx.prepare_cached("UPDATE object_versions SET sources = ?2 WHERE vid = ?1")?
                .execute(params![vid, remaining])?;
            refresh_latest(tx, vid)?;
        }
    }
    let after = last_in(tx, view_id, stix_id)?.map(|(vid, _)| vid);
    if before != after {
        if let Some(vid) = after {
            refresh_latest(tx, vid)?;
        }
        let mut w = Writer {
            tx,
            registry,
            clock,
            sizes: &mut sizes,
            now: now_us(),
        };
        w.sync_query_views(view_id, stix_id, None)?;
    }
    flush_sizes(tx, sizes)?;
    Ok(removed)
}
