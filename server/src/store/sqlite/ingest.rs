//! The statements of a write (see [`crate::store::ingest`], which holds the rules):
//! synchronous, one prepared statement each, run in the writer's transaction.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;

use rusqlite::{params, OptionalExtension, Transaction};

use super::entries::{
    date_added_in, flush_sizes, insert_entry, insert_first_entry, object_entries, remove_entry,
    ViewKind,
};

/// Whether a version is the latest of its object in some stored collection. Views
/// first (a handful), then one probe of each view's entry for this version: left to
/// itself the planner walked every latest entry (`entries_latest`) per call, which
/// made ingest O(store) per version (an import of 100,000 objects into an empty
/// store: 46 s of CPU; 9 s with this plan).
const REFRESH_LATEST: &str =
    "UPDATE object_versions SET is_latest = EXISTS (SELECT 1 FROM views v \
       CROSS JOIN entries e INDEXED BY entries_by_version ON e.view_id = v.view_id AND e.vid = ?1 \
       WHERE v.kind = 'stored' AND e.is_last = 1) WHERE vid = ?1";
use crate::stix::timestamp::now_us;
use crate::store::error::StoreError;
use crate::store::ingest::{Evaluated, HeldVersion, IngestTx, NewVersion, Probe, SameBytes};
use crate::store::membership::{SizeChanges, VersionRow};
use crate::store::micros::Micros;
use crate::store::registry::Registry;
use crate::store::validate::ValidObject;

/// A write transaction of the SQLite store.
pub struct SqliteIngest<'a, 't> {
    tx: &'a Transaction<'t>,
    /// The views as the write sees them (which are query views).
    registry: &'a Registry,
    /// Version rows added less those removed so far, written to `counts` once, by
    /// [`IngestTx::flush_sizes`] (a trigger per row made every insert keep a statement
    /// journal: a copy of each page it touched).
    versions: Cell<i64>,
}

impl<'a, 't> SqliteIngest<'a, 't> {
    /// The statements of a write, in `tx`.
    pub fn new(tx: &'a Transaction<'t>, registry: &'a Registry) -> Self {
        SqliteIngest {
            tx,
            registry,
            versions: Cell::new(0),
        }
    }
}

impl IngestTx for SqliteIngest<'_, '_> {
    async fn probe(
        &self,
        view_id: i64,
        obj: &ValidObject,
        version_key: i64,
        raw: &str,
    ) -> Result<Probe, StoreError> {
        let tx = self.tx;
        // A brand-new object (the common case of a feed) is told by one index probe:
        // no version row, so no view holds any of it and no bytes are shared.
        if !stored_anywhere(tx, &obj.id)? {
            return Ok(Probe {
                fresh: true,
                ..Probe::default()
            });
        }
        if holds_version(tx, view_id, &obj.id, obj.version)? {
            return Ok(Probe {
                held: true,
                ..Probe::default()
            });
        }
        let previous = last_in(tx, view_id, &obj.id)?;
        let same_bytes = tx
            .prepare_cached(
                "SELECT vid, sources, version_us, added_us FROM object_versions \
                 WHERE stix_id = ?1 AND version_key = ?2 AND raw = ?3",
            )?
            .query_row(params![obj.id, version_key, raw], |r| {
                Ok(SameBytes {
                    vid: r.get(0)?,
                    sources: r.get(1)?,
                    version_us: r.get(2)?,
                    added_us: r.get(3)?,
                })
            })
            .optional()?;
        Ok(Probe {
            held: false,
            previous,
            same_bytes,
            fresh: false,
        })
    }

    async fn share_version(
        &self,
        vid: i64,
        sources: &str,
        becomes_last: bool,
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "UPDATE object_versions SET sources = ?2, is_latest = is_latest OR ?3 WHERE vid = ?1",
            )?
            .execute(params![vid, sources, becomes_last])?;
        Ok(())
    }

    async fn insert_version(&self, new: &NewVersion<'_>) -> Result<i64, StoreError> {
        let obj = new.object;
        self.tx
            .prepare_cached(
                "INSERT INTO object_versions (stix_id, type, spec_version, version_key, version_us, \
                 added_us, sources, is_latest, raw) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                obj.id,
                obj.kind,
                obj.spec_version,
                new.version_key,
                new.version_us,
                new.added_us,
                new.sources,
                new.is_latest,
                new.raw
            ])?;
        self.versions.set(self.versions.get() + 1);
        Ok(self.tx.last_insert_rowid())
    }

    async fn stored_among(&self, ids: &[&str]) -> Result<HashSet<String>, StoreError> {
        let mut stored = HashSet::new();
        for id in ids {
            if stored_anywhere(self.tx, id)? {
                stored.insert((*id).to_string());
            }
        }
        Ok(stored)
    }

    async fn insert_entry(
        &self,
        sizes: &mut SizeChanges,
        view_id: i64,
        row: &VersionRow,
        date_added: Micros,
        provisional: bool,
        view_empty: bool,
    ) -> Result<(), StoreError> {
        let view = match self.registry.is_query_view(view_id) {
            true => (view_id, ViewKind::Query),
            false => (view_id, ViewKind::Stored),
        };
        if view_empty {
            insert_first_entry(self.tx, sizes, view, row, date_added, provisional)?;
        } else {
            insert_entry(self.tx, sizes, view, row, date_added, provisional)?;
        }
        Ok(())
    }

    async fn remove_entry(
        &self,
        sizes: &mut SizeChanges,
        view_id: i64,
        vid: i64,
        stix_id: &str,
    ) -> Result<bool, StoreError> {
        remove_entry(self.tx, sizes, view_id, vid, stix_id)
    }

    async fn date_added_in(&self, view_id: i64, vid: i64) -> Result<Option<Micros>, StoreError> {
        date_added_in(self.tx, view_id, vid)
    }

    async fn last_in(&self, view_id: i64, stix_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(last_in(self.tx, view_id, stix_id)?.map(|(vid, _)| vid))
    }

    async fn last_in_each(
        &self,
        views: &[i64],
        stix_id: &str,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut latest = Vec::with_capacity(views.len());
        for view_id in views {
            if let Some((vid, _)) = last_in(self.tx, *view_id, stix_id)? {
                latest.push((*view_id, vid));
            }
        }
        Ok(latest)
    }

    async fn held_in(&self, views: &[i64], stix_id: &str) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached(concat!("SELECT e.vid FROM ", object_entries!()))?;
        let mut held = Vec::new();
        for view_id in views {
            for vid in stmt.query_map(params![view_id, stix_id], |r| r.get(0))? {
                held.push((*view_id, vid?));
            }
        }
        Ok(held)
    }

    async fn load(&self, vids: &[i64]) -> Result<Vec<Evaluated<'static>>, StoreError> {
        vids.iter().map(|vid| load(self.tx, *vid)).collect()
    }

    async fn refresh_latest(&self, vid: i64) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(REFRESH_LATEST)?
            .execute(params![vid])?;
        Ok(())
    }

    async fn versions_in(
        &self,
        view_id: i64,
        stix_id: &str,
    ) -> Result<Vec<HeldVersion>, StoreError> {
        let mut stmt = self.tx.prepare_cached(concat!(
            "SELECT e.vid, e.version_us, e.spec_version, e.is_first, e.is_last FROM ",
            object_entries!()
        ))?;
        let rows = stmt.query_map(params![view_id, stix_id], |r| {
            Ok(HeldVersion {
                vid: r.get(0)?,
                version_us: r.get(1)?,
                spec_version: r.get(2)?,
                is_first: r.get(3)?,
                is_last: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn sources_of(&self, vid: i64) -> Result<String, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT sources FROM object_versions WHERE vid = ?1")?
            .query_row(params![vid], |r| r.get(0))?)
    }

    async fn set_sources(&self, vid: i64, sources: &str) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("UPDATE object_versions SET sources = ?2 WHERE vid = ?1")?
            .execute(params![vid, sources])?;
        Ok(())
    }

    async fn delete_version(&self, vid: i64) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("DELETE FROM object_versions WHERE vid = ?1")?
            .execute(params![vid])?;
        self.versions.set(self.versions.get() - 1);
        Ok(())
    }

    async fn flush_sizes(&self, sizes: SizeChanges) -> Result<(), StoreError> {
        flush_sizes(self.tx, sizes)?;
        let versions = self.versions.replace(0);
        if versions != 0 {
            self.tx
                .prepare_cached("UPDATE counts SET n = n + ?1 WHERE name = 'object_versions'")?
                .execute(params![versions])?;
        }
        Ok(())
    }

    async fn insert_status(
        &self,
        status_id: &str,
        api_root: &str,
        body: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO status (id, api_root, created_us, body, owner) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![status_id, api_root, now_us(), body, owner])?;
        Ok(())
    }
}

/// Whether any version of the object is stored (in any collection).
fn stored_anywhere(tx: &Transaction<'_>, stix_id: &str) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached("SELECT 1 FROM object_versions WHERE stix_id = ?1")?
        .exists(params![stix_id])?)
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
            .prepare_cached(concat!(
                "SELECT 1 FROM ",
                object_entries!(),
                " AND e.version_us = ?3"
            ))?
            .exists(params![view_id, stix_id, v])?,
        None => tx
            .prepare_cached(concat!("SELECT 1 FROM ", object_entries!()))?
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
        .prepare_cached(concat!(
            "SELECT e.vid, e.version_us FROM ",
            object_entries!(),
            " ORDER BY e.version_us DESC LIMIT 1"
        ))?
        .query_row(params![view_id, stix_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// A stored version, parsed for evaluation.
fn load(tx: &Transaction<'_>, vid: i64) -> Result<Evaluated<'static>, StoreError> {
    let (row, sources, added_us, raw): (VersionRow, String, Micros, String) = tx
        .prepare_cached(
            "SELECT stix_id, type, spec_version, version_us, sources, added_us, raw \
             FROM object_versions WHERE vid = ?1",
        )?
        .query_row(params![vid], |r| {
            Ok((
                VersionRow {
                    vid,
                    stix_id: r.get(0)?,
                    kind: r.get(1)?,
                    spec_version: r.get(2)?,
                    version_us: r.get(3)?,
                },
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?;
    let value = serde_json::from_str(&raw)
        .map_err(|e| StoreError::Database(format!("corrupt stored object {}: {e}", row.stix_id)))?;
    Ok(Evaluated {
        value: Cow::Owned(value),
        sources,
        added_us,
        row,
    })
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::REFRESH_LATEST;
    use crate::store::sqlite::schema;

    #[test]
    fn refreshing_latest_probes_one_entry_per_view() {
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        schema::migrate(&mut conn).expect("migrate");
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {REFRESH_LATEST}"))
            .expect("plan");
        let plan: Vec<String> = stmt
            .query_map([1], |r| r.get::<_, String>(3))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        assert!(
            plan.iter()
                .any(|l| l.starts_with("SEARCH e USING INDEX entries_by_version")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|l| l.starts_with("SCAN e")), "{plan:?}");
    }
}
