//! Writes: adding objects to a stored collection (and keeping query views in step)
//! and deleting them.
//!
//! Stored collections hold every version posted to them. A query collection holds
//! the *latest* version of each object whose latest version matches its query: when
//! a newer version stops matching (revoked, confidence lowered), the object leaves the
//! view; when it matches, it replaces the older one with a fresh `date_added`, so
//! pollers see the update.

use rusqlite::{params, OptionalExtension, Transaction};

use super::entries::{
    date_added_in, flush_sizes, insert_entry, remove_entry, SizeChanges, VersionRow,
};
use crate::query::ObjectFacts;
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

/// The latest stored version of an object, as query views need it.
struct Latest {
    row: VersionRow,
    sources: String,
    added_us: Micros,
}

/// One write transaction's context.
struct Writer<'a, 't> {
    tx: &'a Transaction<'t>,
    registry: &'a Registry,
    clock: &'a Clock,
    sizes: &'a mut SizeChanges,
    now: Micros,
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
        let existing: Option<(i64, String, Micros, Micros, bool)> = tx
            .prepare_cached(
                "SELECT vid, sources, added_us, version_us, is_latest FROM object_versions \
                 WHERE stix_id = ?1 AND version_key = ?2",
            )?
            .query_row(params![obj.id, version_key], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        let (vid, sources, added_us, version_us, is_latest) = match existing {
            Some((vid, sources, added_us, version_us, is_latest)) => {
                if date_added_in(tx, view_id, vid)?.is_some() {
                    return Ok(()); // a duplicate is not an error
                }
                let sources = format!("{sources}{collection}\n");
                tx.prepare_cached("UPDATE object_versions SET sources = ?2 WHERE vid = ?1")?
                    .execute(params![vid, sources])?;
                (vid, sources, added_us, version_us, is_latest)
            }
            None => {
                let current: Option<(i64, i64)> = tx
                    .prepare_cached(
                        "SELECT vid, version_key FROM object_versions WHERE stix_id = ?1 AND is_latest = 1",
                    )?
                    .query_row(params![obj.id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let is_latest = current.is_none_or(|(_, key)| version_key > key);
                if let (true, Some((old, _))) = (is_latest, current) {
                    tx.prepare_cached("UPDATE object_versions SET is_latest = 0 WHERE vid = ?1")?
                        .execute(params![old])?;
                }
                let added_us = self.clock.stamp();
                let version_us = obj.version.unwrap_or(added_us);
                let sources = format!("{collection}\n");
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
                    sources,
                    is_latest,
                    new.raw
                ])?;
                (
                    tx.last_insert_rowid(),
                    sources,
                    added_us,
                    version_us,
                    is_latest,
                )
            }
        };
        let latest = Latest {
            row: VersionRow {
                vid,
                stix_id: obj.id.clone(),
                kind: obj.kind.clone(),
                spec_version: obj.spec_version.clone(),
                version_us,
            },
            sources,
            added_us,
        };
        insert_entry(
            tx,
            self.sizes,
            view_id,
            &latest.row,
            self.clock.stamp(),
            false,
        )?;
        // An older version arriving late changes no query view.
        if is_latest {
            self.sync_query_views(&latest, &obj.value)?;
        }
        Ok(())
    }

    /// Make every query view hold exactly the latest version of the object if it
    /// matches, and nothing of the object otherwise.
    fn sync_query_views(
        &mut self,
        latest: &Latest,
        value: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let names = self.registry.names_of(&latest.sources);
        let facts = ObjectFacts {
            object: value,
            sources: &names,
            added_us: latest.added_us,
        };
        for (view, query) in self.registry.query_views() {
            self.remove_other_versions(view.view_id, &latest.row.stix_id, latest.row.vid)?;
            if query.matches(&facts, self.now) {
                let (stamp, provisional) = stamp_for(self.tx, self.clock, view, latest.row.vid)?;
                insert_entry(
                    self.tx,
                    self.sizes,
                    view.view_id,
                    &latest.row,
                    stamp,
                    provisional,
                )?;
            } else {
                remove_entry(
                    self.tx,
                    self.sizes,
                    view.view_id,
                    latest.row.vid,
                    &latest.row.stix_id,
                )?;
            }
        }
        Ok(())
    }

    fn remove_other_versions(
        &mut self,
        view_id: i64,
        stix_id: &str,
        keep_vid: i64,
    ) -> Result<(), StoreError> {
        let others: Vec<i64> = self
            .tx
            .prepare_cached(
                "SELECT vid FROM entries INDEXED BY entries_by_object WHERE view_id = ?1 AND stix_id = ?2 AND vid != ?3",
            )?
            .query_map(params![view_id, stix_id, keep_vid], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for vid in others {
            remove_entry(self.tx, self.sizes, view_id, vid, stix_id)?;
        }
        Ok(())
    }

    /// After versions of an object were deleted: promote the newest remaining version
    /// and bring query views in line with it (or drop the object from them).
    fn resync_object(&mut self, stix_id: &str) -> Result<(), StoreError> {
        let tx = self.tx;
        tx.prepare_cached(
            "UPDATE object_versions SET is_latest = (vid = (SELECT vid FROM object_versions o \
             WHERE o.stix_id = ?1 ORDER BY o.version_key DESC LIMIT 1)) WHERE stix_id = ?1",
        )?
        .execute(params![stix_id])?;
        let latest: Option<(Latest, String)> = tx
            .prepare_cached(
                "SELECT vid, type, spec_version, version_us, sources, added_us, raw FROM object_versions \
                 WHERE stix_id = ?1 AND is_latest = 1",
            )?
            .query_row(params![stix_id], |r| {
                Ok((
                    Latest {
                        row: VersionRow {
                            vid: r.get(0)?,
                            stix_id: stix_id.to_string(),
                            kind: r.get(1)?,
                            spec_version: r.get(2)?,
                            version_us: r.get(3)?,
                        },
                        sources: r.get(4)?,
                        added_us: r.get(5)?,
                    },
                    r.get(6)?,
                ))
            })
            .optional()?;
        match latest {
            Some((latest, raw)) => {
                let value = serde_json::from_str(&raw).map_err(|e| {
                    StoreError::Database(format!("corrupt stored object {stix_id}: {e}"))
                })?;
                self.sync_query_views(&latest, &value)
            }
            None => {
                for (view, _) in self.registry.query_views() {
                    self.remove_other_versions(view.view_id, stix_id, -1)?;
                }
                Ok(())
            }
        }
    }
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
    for vid in doomed {
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
        }
    }
    if removed > 0 {
        let mut w = Writer {
            tx,
            registry,
            clock,
            sizes: &mut sizes,
            now: now_us(),
        };
        w.resync_object(stix_id)?;
    }
    flush_sizes(tx, sizes)?;
    Ok(removed)
}
