//! The statements of a write (see [`crate::store::ingest`], which holds the rules).
//!
//! Statements are few and batched where the SQLite store loops (each is a round trip
//! here): one probe per posted version, and a brand-new object costs its row, its entry
//! and one entry per query view it matches.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use super::entries::{
    date_added_in, exec, flush_sizes, insert_entry, insert_first_entry, object_vids, remove_entry,
    row, rows,
};
use super::tx::Tx;
use crate::stix::timestamp::now_us;
use crate::store::error::StoreError;
use crate::store::ingest::{
    Evaluated, FreshBatch, HeldVersion, IngestTx, NewVersion, Probe, SameBytes,
};
use crate::store::membership::{SizeChanges, VersionRow};
use crate::store::micros::Micros;
use crate::store::validate::ValidObject;

/// A write transaction of the PostgreSQL store (holding the clock row).
pub struct PgIngest<'a, 't>(pub &'a Tx<'t>);

/// Everything ingest needs to know before writing a version, for several versions of
/// distinct objects in one round trip (`$2`–`$5`: ids, versions — null when
/// unversioned —, version keys, exact JSON): whether the stored view already holds the
/// version (an unversioned object: any version), the object's latest version there,
/// the version row with the very same bytes, and whether any version of the object is
/// stored at all; in the order given.
/// The object's entries in the view are asked through its version rows (one lookup of
/// the id, `v.vids`), each then one `entries_by_version` probe.
pub(super) const PROBE: &str = concat!(
    "SELECT \
       EXISTS (SELECT 1 FROM entries WHERE view_id = $1 AND vid = ANY(v.vids) \
               AND (u.version IS NULL OR version_us = u.version)), \
       l.vid, l.version_us, \
       o.vid, o.sources, o.version_us, o.added_us, \
       cardinality(v.vids) > 0 \
     FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::text[]) WITH ORDINALITY \
          AS u(id, version, version_key, raw, n) \
     CROSS JOIN LATERAL (SELECT ",
    object_vids!("u.id"),
    " AS vids) v \
     LEFT JOIN LATERAL (SELECT vid, version_us FROM entries WHERE view_id = $1 AND vid = ANY(v.vids) \
                        ORDER BY version_us DESC LIMIT 1) l ON true \
     LEFT JOIN LATERAL (SELECT vid, sources, version_us, added_us FROM object_versions \
                        WHERE stix_id = u.id AND version_key = u.version_key AND raw = u.raw \
                        LIMIT 1) o ON true \
     ORDER BY u.n"
);

/// Which of the ids `$1` have a version stored (in any collection).
pub(super) const STORED_AMONG: &str =
    "SELECT DISTINCT stix_id FROM object_versions WHERE stix_id = ANY($1)";

/// The latest version of the object `$2` in the view `$1`.
pub(super) const LAST_IN: &str = concat!(
    "SELECT vid FROM entries WHERE view_id = $1 AND vid = ANY(",
    object_vids!("$2"),
    ") ORDER BY version_us DESC LIMIT 1"
);

/// The latest version of the object `$2` in each of the views `$1` holding it.
pub(super) const LAST_IN_EACH: &str = concat!(
    "SELECT DISTINCT ON (view_id) view_id, vid FROM entries \
     WHERE view_id = ANY($1) AND vid = ANY(",
    object_vids!("$2"),
    ") ORDER BY view_id, version_us DESC"
);

/// The versions of the object `$2` that the views `$1` hold.
pub(super) const HELD_IN: &str = concat!(
    "SELECT view_id, vid FROM entries WHERE view_id = ANY($1) AND vid = ANY(",
    object_vids!("$2"),
    ")"
);

/// The versions of the object `$2` in the view `$1`, with their flags.
pub(super) const VERSIONS_IN: &str = concat!(
    "SELECT vid, version_us, spec_version, is_first, is_last FROM entries \
     WHERE view_id = $1 AND vid = ANY(",
    object_vids!("$2"),
    ")"
);

impl IngestTx for PgIngest<'_, '_> {
    async fn probe(
        &self,
        view_id: i64,
        obj: &ValidObject,
        version_key: i64,
        raw: &str,
    ) -> Result<Probe, StoreError> {
        self.probe_each(view_id, &[(obj, version_key, raw)])
            .await?
            .pop()
            .ok_or_else(|| StoreError::Database("the ingest probe returned no row".into()))
    }

    async fn probe_each(
        &self,
        view_id: i64,
        versions: &[(&ValidObject, i64, &str)],
    ) -> Result<Vec<Probe>, StoreError> {
        let ids: Vec<&str> = versions.iter().map(|(o, _, _)| o.id.as_str()).collect();
        let listed: Vec<Option<i64>> = versions.iter().map(|(o, _, _)| o.version).collect();
        let keys: Vec<i64> = versions.iter().map(|(_, k, _)| *k).collect();
        let raws: Vec<&str> = versions.iter().map(|(_, _, r)| *r).collect();
        let probes: Vec<Probe> = rows(self.0, PROBE, &[&view_id, &ids, &listed, &keys, &raws])
            .await?
            .iter()
            .map(|probe| Probe {
                held: probe.get(0),
                previous: probe
                    .get::<_, Option<i64>>(1)
                    .map(|vid| (vid, probe.get(2))),
                same_bytes: probe.get::<_, Option<i64>>(3).map(|vid| SameBytes {
                    vid,
                    sources: probe.get(4),
                    version_us: probe.get(5),
                    added_us: probe.get(6),
                }),
                fresh: !probe.get::<_, bool>(7),
            })
            .collect();
        if probes.len() != versions.len() {
            return Err(StoreError::Database(format!(
                "the ingest probe returned {} rows for {} versions",
                probes.len(),
                versions.len()
            )));
        }
        Ok(probes)
    }

    async fn share_version(
        &self,
        vid: i64,
        sources: &str,
        becomes_last: bool,
    ) -> Result<(), StoreError> {
        exec(
            self.0,
            "UPDATE object_versions SET sources = $2, is_latest = is_latest OR $3 WHERE vid = $1",
            &[&vid, &sources, &becomes_last],
        )
        .await?;
        Ok(())
    }

    async fn insert_version(&self, new: &NewVersion<'_>) -> Result<i64, StoreError> {
        let obj = new.object;
        row(
            self.0,
            "INSERT INTO object_versions (stix_id, type, spec_version, version_key, version_us, \
             added_us, sources, is_latest, raw) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             RETURNING vid",
            &[
                &obj.id,
                &obj.kind,
                &obj.spec_version,
                &new.version_key,
                &new.version_us,
                &new.added_us,
                &new.sources,
                &new.is_latest,
                &new.raw,
            ],
        )
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::Database("INSERT returned no row".into()))
    }

    async fn stored_among(&self, ids: &[&str]) -> Result<HashSet<String>, StoreError> {
        Ok(rows(self.0, STORED_AMONG, &[&ids])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// Two statements for the whole batch, whatever its size: the version rows, then
    /// the entries (their `view_objects` copies follow by the statement trigger).
    async fn insert_fresh(
        &self,
        sizes: &mut SizeChanges,
        batch: &FreshBatch<'_>,
    ) -> Result<(), StoreError> {
        let versions = &batch.versions;
        let ids: Vec<&str> = versions.iter().map(|v| v.new.object.id.as_str()).collect();
        let kinds: Vec<&str> = versions
            .iter()
            .map(|v| v.new.object.kind.as_str())
            .collect();
        let specs: Vec<&str> = versions
            .iter()
            .map(|v| v.new.object.spec_version.as_str())
            .collect();
        let raws: Vec<&str> = versions.iter().map(|v| v.new.raw.as_str()).collect();
        let keys: Vec<i64> = versions.iter().map(|v| v.version_key).collect();
        let version_us: Vec<i64> = versions.iter().map(|v| v.version_us).collect();
        let added_us: Vec<i64> = versions.iter().map(|v| v.added_us).collect();
        let inserted = rows(
            self.0,
            "INSERT INTO object_versions (stix_id, type, spec_version, version_key, version_us, \
             added_us, sources, is_latest, raw) \
             SELECT u.stix_id, u.type, u.spec_version, u.version_key, u.version_us, u.added_us, \
                    $7, true, u.raw \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], \
                         $6::bigint[], $8::text[]) WITH ORDINALITY \
                  AS u(stix_id, type, spec_version, version_key, version_us, added_us, raw, n) \
             ORDER BY u.n RETURNING vid, stix_id",
            &[
                &ids,
                &kinds,
                &specs,
                &keys,
                &version_us,
                &added_us,
                &batch.sources,
                &raws,
            ],
        )
        .await?;
        // Ids are distinct in a batch: each row is found by its id.
        let vid_of: HashMap<&str, i64> = inserted
            .iter()
            .map(|r| (r.get::<_, &str>(1), r.get::<_, i64>(0)))
            .collect();
        let mut vids = Vec::with_capacity(versions.len());
        for id in &ids {
            vids.push(*vid_of.get(id).ok_or_else(|| {
                StoreError::Database(format!("no version row was stored for {id}"))
            })?);
        }
        let entries = &batch.entries;
        // Each entry's columns from its version.
        let of = |i: usize| &versions[i].new.object;
        let entry_ids: Vec<&str> = entries.iter().map(|e| of(e.version).id.as_str()).collect();
        let entry_kinds: Vec<&str> = entries
            .iter()
            .map(|e| of(e.version).kind.as_str())
            .collect();
        let entry_specs: Vec<&str> = entries
            .iter()
            .map(|e| of(e.version).spec_version.as_str())
            .collect();
        let view_ids: Vec<i64> = entries.iter().map(|e| e.view_id).collect();
        let stamps: Vec<i64> = entries.iter().map(|e| e.date_added).collect();
        let entry_vids: Vec<i64> = entries.iter().map(|e| vids[e.version]).collect();
        let entry_version_us: Vec<i64> = entries
            .iter()
            .map(|e| versions[e.version].version_us)
            .collect();
        let provisional: Vec<bool> = entries.iter().map(|e| e.provisional).collect();
        exec(
            self.0,
            "INSERT INTO entries (view_id, date_added, vid, stix_id, type, spec_version, \
             version_us, is_first, is_last, provisional) \
             SELECT u.view_id, u.date_added, u.vid, u.stix_id, u.type, u.spec_version, \
                    u.version_us, true, true, u.provisional \
             FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], \
                         $6::text[], $7::bigint[], $8::boolean[]) \
                  AS u(view_id, date_added, vid, stix_id, type, spec_version, version_us, provisional)",
            &[
                &view_ids,
                &stamps,
                &entry_vids,
                &entry_ids,
                &entry_kinds,
                &entry_specs,
                &entry_version_us,
                &provisional,
            ],
        )
        .await?;
        for view_id in view_ids {
            sizes.add(view_id, 1);
        }
        Ok(())
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
        if view_empty {
            // First and last, no flags to move, nothing to check.
            insert_first_entry(self.0, sizes, view_id, row, date_added, provisional).await
        } else {
            insert_entry(self.0, sizes, view_id, row, date_added, provisional).await?;
            Ok(())
        }
    }

    async fn remove_entry(
        &self,
        sizes: &mut SizeChanges,
        view_id: i64,
        vid: i64,
        stix_id: &str,
    ) -> Result<bool, StoreError> {
        remove_entry(self.0, sizes, view_id, vid, stix_id).await
    }

    async fn date_added_in(&self, view_id: i64, vid: i64) -> Result<Option<Micros>, StoreError> {
        date_added_in(self.0, view_id, vid).await
    }

    async fn last_in(&self, view_id: i64, stix_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(row(self.0, LAST_IN, &[&view_id, &stix_id])
            .await?
            .map(|r| r.get(0)))
    }

    async fn last_in_each(
        &self,
        views: &[i64],
        stix_id: &str,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(rows(self.0, LAST_IN_EACH, &[&views, &stix_id])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    async fn held_in(&self, views: &[i64], stix_id: &str) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(rows(self.0, HELD_IN, &[&views, &stix_id])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    async fn load(&self, vids: &[i64]) -> Result<Vec<Evaluated<'static>>, StoreError> {
        rows(
            self.0,
            "SELECT vid, stix_id, type, spec_version, version_us, sources, added_us, raw \
             FROM object_versions WHERE vid = ANY($1)",
            &[&vids],
        )
        .await?
        .iter()
        .map(|r| {
            let stix_id: String = r.get(1);
            let raw: &str = r.get(7);
            let value = serde_json::from_str(raw).map_err(|e| {
                StoreError::Database(format!("corrupt stored object {stix_id}: {e}"))
            })?;
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

    /// The row is written only when the flag changes.
    async fn refresh_latest(&self, vid: i64) -> Result<(), StoreError> {
        exec(
            self.0,
            "UPDATE object_versions SET is_latest = NOT is_latest WHERE vid = $1 \
             AND is_latest <> EXISTS (SELECT 1 FROM views v \
               JOIN entries e ON e.view_id = v.view_id AND e.vid = $1 \
               WHERE v.kind = 'stored' AND e.is_last)",
            &[&vid],
        )
        .await?;
        Ok(())
    }

    async fn versions_in(
        &self,
        view_id: i64,
        stix_id: &str,
    ) -> Result<Vec<HeldVersion>, StoreError> {
        Ok(rows(self.0, VERSIONS_IN, &[&view_id, &stix_id])
            .await?
            .iter()
            .map(|r| HeldVersion {
                vid: r.get(0),
                version_us: r.get(1),
                spec_version: r.get(2),
                is_first: r.get(3),
                is_last: r.get(4),
            })
            .collect())
    }

    async fn sources_of(&self, vid: i64) -> Result<String, StoreError> {
        Ok(row(
            self.0,
            "SELECT sources FROM object_versions WHERE vid = $1",
            &[&vid],
        )
        .await?
        .map(|r| r.get(0))
        .unwrap_or_default())
    }

    async fn set_sources(&self, vid: i64, sources: &str) -> Result<(), StoreError> {
        exec(
            self.0,
            "UPDATE object_versions SET sources = $2 WHERE vid = $1",
            &[&vid, &sources],
        )
        .await?;
        Ok(())
    }

    async fn delete_version(&self, vid: i64) -> Result<(), StoreError> {
        exec(
            self.0,
            "DELETE FROM object_versions WHERE vid = $1",
            &[&vid],
        )
        .await?;
        Ok(())
    }

    async fn flush_sizes(&self, sizes: SizeChanges) -> Result<(), StoreError> {
        flush_sizes(self.0, sizes).await
    }

    async fn insert_status(
        &self,
        status_id: &str,
        api_root: &str,
        body: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        exec(
            self.0,
            "INSERT INTO status (id, api_root, created_us, body, owner) VALUES ($1, $2, $3, $4, $5)",
            &[&status_id, &api_root, &now_us(), &body, &owner],
        )
        .await?;
        Ok(())
    }
}
