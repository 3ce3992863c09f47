//! Writes: adding objects to a stored collection (and the query views they match)
//! and deleting them.

use rusqlite::{params, OptionalExtension, Transaction};

use super::entries::{date_added_in, insert_entry, remove_entry, SizeChanges, VersionRow};
use super::registry::{Registry, ViewState};
use crate::query::ObjectFacts;
use crate::stix::timestamp::now_us;
use crate::store::{AddObjects, Clock, Micros, NewObject, StatusDetail, StoreError, VersionMatch};

/// Counts of one ingest.
#[derive(Debug, Default)]
pub struct Ingested {
    /// Per-object outcomes.
    pub successes: Vec<StatusDetail>,
    /// Rejected objects.
    pub failures: Vec<StatusDetail>,
}

/// Store `request` in the stored view `view_id` and every matching query view.
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
        store_one(
            tx, registry, clock, collection, view_id, object, now, &mut sizes,
        )?;
        out.successes.push(StatusDetail {
            id,
            version,
            message: None,
        });
    }
    sizes.flush(tx)?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn store_one(
    tx: &Transaction<'_>,
    registry: &Registry,
    clock: &Clock,
    collection: &str,
    view_id: i64,
    new: NewObject,
    now: Micros,
    sizes: &mut SizeChanges,
) -> Result<(), StoreError> {
    let obj = &new.object;
    let version_key = obj.version.unwrap_or(-1);
    let existing: Option<(i64, String, Micros, Micros)> = tx
        .prepare_cached(
            "SELECT vid, sources, added_us, version_us FROM object_versions WHERE stix_id = ?1 AND version_key = ?2",
        )?
        .query_row(params![obj.id, version_key], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let (row, sources, added_us) = match existing {
        Some((vid, sources, added_us, version_us)) => {
            if date_added_in(tx, view_id, vid)?.is_some() {
                return Ok(()); // a duplicate is not an error
            }
            let sources = format!("{sources}{collection}\n");
            tx.prepare_cached("UPDATE object_versions SET sources = ?2 WHERE vid = ?1")?
                .execute(params![vid, sources])?;
            let row = VersionRow {
                vid,
                stix_id: obj.id.clone(),
                kind: obj.kind.clone(),
                spec_version: obj.spec_version.clone(),
                version_us,
            };
            (row, sources, added_us)
        }
        None => {
            let added_us = clock.stamp();
            let version_us = obj.version.unwrap_or(added_us);
            let sources = format!("{collection}\n");
            tx.prepare_cached(
                "INSERT INTO object_versions (stix_id, type, spec_version, version_key, version_us, added_us, sources, raw) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                obj.id,
                obj.kind,
                obj.spec_version,
                version_key,
                version_us,
                added_us,
                sources,
                new.raw
            ])?;
            let row = VersionRow {
                vid: tx.last_insert_rowid(),
                stix_id: obj.id.clone(),
                kind: obj.kind.clone(),
                spec_version: obj.spec_version.clone(),
                version_us,
            };
            (row, sources, added_us)
        }
    };
    insert_entry(tx, sizes, view_id, &row, clock.stamp(), false)?;

    let names = registry.names_of(&sources);
    let facts = ObjectFacts {
        object: &obj.value,
        sources: &names,
        added_us,
    };
    for (view, query) in registry.query_views() {
        if !query.matches(&facts, now) {
            continue;
        }
        // A building view keeps the stamp the row has in the view it replaces, so
        // clients see no change for rows both views hold; rows new to the collection
        // are provisional and get fresh stamps when the rebuilt view goes live.
        let (stamp, provisional) = match (view.state, view.replaces) {
            (ViewState::Building, Some(old)) => match date_added_in(tx, old, row.vid)? {
                Some(kept) => (kept, false),
                None => (clock.stamp(), true),
            },
            (ViewState::Building, None) => (clock.stamp(), false),
            (ViewState::Active, _) => (clock.stamp(), false),
        };
        insert_entry(tx, sizes, view.view_id, &row, stamp, provisional)?;
    }
    Ok(())
}

/// Delete versions of `stix_id` from the stored view `view_id`; versions no longer in
/// any stored collection leave the store and every query view. Returns how many
/// versions left the collection.
pub fn delete_object(
    tx: &Transaction<'_>,
    registry: &Registry,
    collection: &str,
    view_id: i64,
    stix_id: &str,
    versions: &VersionMatch,
    spec_versions: &[String],
) -> Result<u64, StoreError> {
    let mut doomed = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT vid, version_us, spec_version, is_first, is_last FROM entries WHERE view_id = ?1 AND stix_id = ?2",
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
            for (view, _) in registry.query_views() {
                remove_entry(tx, &mut sizes, view.view_id, vid, stix_id)?;
            }
            tx.prepare_cached("DELETE FROM object_versions WHERE vid = ?1")?
                .execute(params![vid])?;
        } else {
            tx.prepare_cached("UPDATE object_versions SET sources = ?2 WHERE vid = ?1")?
                .execute(params![vid, remaining])?;
            // Still stored elsewhere: only `source:` terms can have changed their verdict.
            recheck_version(tx, registry, vid, &mut sizes)?;
        }
    }
    sizes.flush(tx)?;
    Ok(removed)
}

/// Re-evaluate one version against every query view and drop it where it no longer matches.
fn recheck_version(
    tx: &Transaction<'_>,
    registry: &Registry,
    vid: i64,
    sizes: &mut SizeChanges,
) -> Result<(), StoreError> {
    let (stix_id, sources, added_us, raw): (String, String, Micros, String) = tx
        .prepare_cached(
            "SELECT stix_id, sources, added_us, raw FROM object_versions WHERE vid = ?1",
        )?
        .query_row(params![vid], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&raw) else {
        return Ok(());
    };
    let names = registry.names_of(&sources);
    let facts = ObjectFacts {
        object: &value,
        sources: &names,
        added_us,
    };
    let now = now_us();
    for (view, query) in registry.query_views() {
        if !query.matches(&facts, now) {
            remove_entry(tx, sizes, view.view_id, vid, &stix_id)?;
        }
    }
    Ok(())
}
