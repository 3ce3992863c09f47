//! Writes: adding objects to a stored collection (and keeping query views in step)
//! and deleting them. The same rules as the SQLite store (see its `ingest` module):
//! stored collections hold every version posted to them; a query collection holds the
//! latest version of each object whose latest version matches.

use super::entries::{
    date_added_in, exec, flush_sizes, insert_entry, insert_first_entry, remove_entry, row, rows,
    SizeChanges, VersionRow,
};
use super::Tx;
use crate::query::ObjectFacts;
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

struct Latest {
    row: VersionRow,
    sources: String,
    added_us: Micros,
}

struct Writer<'a, 't> {
    tx: &'a Tx<'t>,
    registry: &'a Registry,
    clock: &'a Clock,
    sizes: &'a mut SizeChanges,
    now: Micros,
}

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
        // One probe for both the same version and the object's latest version.
        let known = rows(
            tx,
            "SELECT vid, version_key, sources, added_us, version_us, is_latest FROM object_versions \
             WHERE stix_id = $1 AND (version_key = $2 OR is_latest)",
            &[&obj.id, &version_key],
        )
        .await?;
        // No version of this object is stored: no view holds any of it, so its entries
        // need no flag updates or removals (the common case of ingest).
        let fresh = known.is_empty();
        let existing = known
            .iter()
            .find(|r| r.get::<_, i64>(1) == version_key)
            .map(|r| {
                (
                    r.get::<_, i64>(0),
                    r.get::<_, String>(2),
                    r.get::<_, Micros>(3),
                    r.get::<_, Micros>(4),
                    r.get::<_, bool>(5),
                )
            });
        let current = known
            .iter()
            .find(|r| r.get::<_, bool>(5))
            .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)));
        let (vid, sources, added_us, version_us, is_latest) = match existing {
            Some((vid, sources, added_us, version_us, is_latest)) => {
                if date_added_in(tx, view_id, vid).await?.is_some() {
                    return Ok(()); // a duplicate is not an error
                }
                let sources = format!("{sources}{collection}\n");
                exec(
                    tx,
                    "UPDATE object_versions SET sources = $2 WHERE vid = $1",
                    &[&vid, &sources],
                )
                .await?;
                (vid, sources, added_us, version_us, is_latest)
            }
            None => {
                let is_latest = current.is_none_or(|(_, key)| version_key > key);
                if let (true, Some((old, _))) = (is_latest, current) {
                    exec(
                        tx,
                        "UPDATE object_versions SET is_latest = false WHERE vid = $1",
                        &[&old],
                    )
                    .await?;
                }
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
                        &is_latest,
                        &new.raw,
                    ],
                )
                .await?
                .map(|r| r.get(0))
                .ok_or_else(|| StoreError::Database("INSERT returned no row".into()))?;
                (vid, sources, added_us, version_us, is_latest)
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
        let stamp = self.clock.stamp();
        if fresh {
            insert_first_entry(tx, self.sizes, view_id, &latest.row, stamp, false).await?;
        } else {
            insert_entry(tx, self.sizes, view_id, &latest.row, stamp, false).await?;
        }
        if is_latest {
            self.sync_query_views(&latest, &obj.value, fresh).await?;
        }
        Ok(())
    }

    /// `fresh`: no view holds any version of the object yet.
    async fn sync_query_views(
        &mut self,
        latest: &Latest,
        value: &serde_json::Value,
        fresh: bool,
    ) -> Result<(), StoreError> {
        let names = self.registry.names_of(&latest.sources);
        let facts = ObjectFacts {
            object: value,
            sources: &names,
            added_us: latest.added_us,
        };
        let views: Vec<_> = self
            .registry
            .query_views()
            .map(|(v, q)| (v.clone(), q.matches(&facts, self.now)))
            .collect();
        for (view, wanted) in views {
            if fresh {
                if wanted {
                    // Not in the view it replaces either: a new member, provisional
                    // while the view builds.
                    let provisional = view.state == ViewState::Building && view.replaces.is_some();
                    insert_first_entry(
                        self.tx,
                        self.sizes,
                        view.view_id,
                        &latest.row,
                        self.clock.stamp(),
                        provisional,
                    )
                    .await?;
                }
                continue;
            }
            self.remove_other_versions(view.view_id, &latest.row.stix_id, latest.row.vid)
                .await?;
            if wanted {
                let (stamp, provisional) =
                    stamp_for(self.tx, self.clock, &view, latest.row.vid).await?;
                insert_entry(
                    self.tx,
                    self.sizes,
                    view.view_id,
                    &latest.row,
                    stamp,
                    provisional,
                )
                .await?;
            } else {
                remove_entry(
                    self.tx,
                    self.sizes,
                    view.view_id,
                    latest.row.vid,
                    &latest.row.stix_id,
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn remove_other_versions(
        &mut self,
        view_id: i64,
        stix_id: &str,
        keep_vid: i64,
    ) -> Result<(), StoreError> {
        let others: Vec<i64> = rows(
            self.tx,
            "SELECT vid FROM entries WHERE view_id = $1 AND stix_id = $2 AND vid != $3",
            &[&view_id, &stix_id, &keep_vid],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        for vid in others {
            remove_entry(self.tx, self.sizes, view_id, vid, stix_id).await?;
        }
        Ok(())
    }

    async fn resync_object(&mut self, stix_id: &str) -> Result<(), StoreError> {
        let tx = self.tx;
        exec(
            tx,
            "UPDATE object_versions SET is_latest = (vid = (SELECT vid FROM object_versions o \
             WHERE o.stix_id = $1 ORDER BY o.version_key DESC LIMIT 1)) WHERE stix_id = $1",
            &[&stix_id],
        )
        .await?;
        let latest = row(
            tx,
            "SELECT vid, type, spec_version, version_us, sources, added_us, raw FROM object_versions \
             WHERE stix_id = $1 AND is_latest",
            &[&stix_id],
        )
        .await?;
        match latest {
            Some(r) => {
                let latest = Latest {
                    row: VersionRow {
                        vid: r.get(0),
                        stix_id: stix_id.to_string(),
                        kind: r.get(1),
                        spec_version: r.get(2),
                        version_us: r.get(3),
                    },
                    sources: r.get(4),
                    added_us: r.get(5),
                };
                let raw: String = r.get(6);
                let value = serde_json::from_str(&raw).map_err(|e| {
                    StoreError::Database(format!("corrupt stored object {stix_id}: {e}"))
                })?;
                self.sync_query_views(&latest, &value, false).await
            }
            None => {
                let views: Vec<i64> = self
                    .registry
                    .query_views()
                    .map(|(v, _)| v.view_id)
                    .collect();
                for view_id in views {
                    self.remove_other_versions(view_id, stix_id, -1).await?;
                }
                Ok(())
            }
        }
    }
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

/// Delete versions of `stix_id` from the stored view `view_id`.
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
        w.resync_object(stix_id).await?;
    }
    flush_sizes(tx, sizes).await?;
    Ok(removed)
}
