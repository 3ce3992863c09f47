//! Writes, once for both backends: adding objects to a stored collection (and keeping
//! query views in step) and deleting them. Each backend gives the statements
//! ([`IngestTx`]) inside its own write transaction; the rules live here.
//!
//! Collections are isolated: a version row is shared only by collections posted the
//! very same bytes, and "latest" is decided per stored collection. Stored collections
//! hold every version posted to them. A query collection holds the latest version of
//! each object in each of its sources that matches its query: when a newer version
//! stops matching (revoked, confidence lowered), the object leaves the view; when it
//! matches, it replaces the older one with a fresh `date_added`, so pollers see the
//! update.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::query::{ObjectFacts, Query};
use crate::stix::timestamp::now_us;
use crate::store::add_objects::{AddObjects, NewObject, Status, StatusDetail, StatusResource};
use crate::store::clock::Clock;
use crate::store::error::StoreError;
use crate::store::listing::VersionMatch;
use crate::store::membership::{Ingested, SizeChanges, VersionRow};
use crate::store::micros::Micros;
use crate::store::registry::{Registry, View, ViewState};
use crate::store::validate::ValidObject;

/// What a query needs of one version: its JSON, the stored collections that hold
/// those very bytes, and when it entered the store.
pub(crate) struct Evaluated<'v> {
    /// The object.
    pub value: Cow<'v, serde_json::Value>,
    /// Stored collections holding these bytes, `\n`-terminated ids.
    pub sources: String,
    /// When the version entered the store.
    pub added_us: Micros,
    /// Its indexed facts.
    pub row: VersionRow,
}

/// A version row holding the very bytes being posted.
pub(crate) struct SameBytes {
    /// `object_versions.vid`.
    pub vid: i64,
    /// Stored collections holding it, `\n`-terminated ids.
    pub sources: String,
    /// The version as listed.
    pub version_us: Micros,
    /// When it entered the store.
    pub added_us: Micros,
}

/// What ingest knows about one posted version before writing it.
#[derive(Default)]
pub(crate) struct Probe {
    /// The stored view already holds this version (an unversioned object: any
    /// version). Nothing else needs to be known then.
    pub held: bool,
    /// The object's latest version in the stored view: `(vid, version_us)`.
    pub previous: Option<(i64, Micros)>,
    /// The version row with the very same bytes, if any.
    pub same_bytes: Option<SameBytes>,
    /// No version of the object is stored anywhere (a backend that cannot tell at no
    /// extra cost says `false`): no view holds any of it.
    pub fresh: bool,
}

/// One version of an object in a stored view, as a delete request selects it.
pub(crate) struct HeldVersion {
    /// `object_versions.vid`.
    pub vid: i64,
    /// The version as listed.
    pub version_us: Micros,
    /// `spec_version`.
    pub spec_version: String,
    /// The object's first version in the view.
    pub is_first: bool,
    /// The object's latest version in the view.
    pub is_last: bool,
}

/// The statements of one backend's write transaction that ingest and delete use.
/// SQLite runs them synchronously (see [`run_ready`]); PostgreSQL batches where it can
/// (each statement is a round trip there).
pub(crate) trait IngestTx {
    /// What is known of a version about to be posted to the stored view `view_id`.
    async fn probe(
        &self,
        view_id: i64,
        object: &ValidObject,
        version_key: i64,
        raw: &str,
    ) -> Result<Probe, StoreError>;

    /// [`Self::probe`] for several versions of distinct objects at once (`versions`:
    /// each one's object, version key and exact JSON), in their order. One by one here;
    /// a backend where each statement is a round trip asks once.
    async fn probe_each(
        &self,
        view_id: i64,
        versions: &[(&ValidObject, i64, &str)],
    ) -> Result<Vec<Probe>, StoreError> {
        let mut probes = Vec::with_capacity(versions.len());
        for (object, version_key, raw) in versions {
            probes.push(self.probe(view_id, object, *version_key, raw).await?);
        }
        Ok(probes)
    }

    /// A collection was posted bytes already stored: record it among the row's sources
    /// (`sources`, already extended), and mark the row latest if `becomes_last`.
    async fn share_version(
        &self,
        vid: i64,
        sources: &str,
        becomes_last: bool,
    ) -> Result<(), StoreError>;

    /// Store a new version row; returns its `vid`.
    async fn insert_version(&self, new: &NewVersion<'_>) -> Result<i64, StoreError>;

    /// Of `ids`, those with a version stored in any collection (one question for a
    /// whole request: every other id is brand-new).
    async fn stored_among(&self, ids: &[&str]) -> Result<HashSet<String>, StoreError>;

    /// Store brand-new objects together ([`FreshBatch`]): each one's version row, then
    /// its entries. One by one here; a backend where each statement is a round trip
    /// writes them with a statement per table.
    async fn insert_fresh(
        &self,
        sizes: &mut SizeChanges,
        batch: &FreshBatch<'_>,
    ) -> Result<(), StoreError> {
        let mut entries = batch.entries.iter().peekable();
        for (i, v) in batch.versions.iter().enumerate() {
            let obj = &v.new.object;
            let vid = self
                .insert_version(&NewVersion {
                    object: obj,
                    version_key: v.version_key,
                    version_us: v.version_us,
                    added_us: v.added_us,
                    sources: &batch.sources,
                    is_latest: true,
                    raw: &v.new.raw,
                })
                .await?;
            let row = VersionRow {
                vid,
                stix_id: obj.id.clone(),
                kind: obj.kind.clone(),
                spec_version: obj.spec_version.clone(),
                version_us: v.version_us,
            };
            while let Some(e) = entries.next_if(|e| e.version == i) {
                self.insert_entry(sizes, e.view_id, &row, e.date_added, e.provisional, true)
                    .await?;
            }
        }
        Ok(())
    }

    /// Add a version to a view unless it is a member. `view_empty`: the view is known to
    /// hold nothing of the object (a backend may then skip the flag bookkeeping).
    async fn insert_entry(
        &self,
        sizes: &mut SizeChanges,
        view_id: i64,
        row: &VersionRow,
        date_added: Micros,
        provisional: bool,
        view_empty: bool,
    ) -> Result<(), StoreError>;

    /// Remove a version from a view; returns whether it was a member.
    async fn remove_entry(
        &self,
        sizes: &mut SizeChanges,
        view_id: i64,
        vid: i64,
        stix_id: &str,
    ) -> Result<bool, StoreError>;

    /// The `date_added` of a version in a view, if it is a member.
    async fn date_added_in(&self, view_id: i64, vid: i64) -> Result<Option<Micros>, StoreError>;

    /// The latest version of an object in a view.
    async fn last_in(&self, view_id: i64, stix_id: &str) -> Result<Option<i64>, StoreError>;

    /// The latest version of an object in each of `views` holding it: `(view, vid)`.
    async fn last_in_each(
        &self,
        views: &[i64],
        stix_id: &str,
    ) -> Result<Vec<(i64, i64)>, StoreError>;

    /// What `views` hold of an object: `(view, vid)`.
    async fn held_in(&self, views: &[i64], stix_id: &str) -> Result<Vec<(i64, i64)>, StoreError>;

    /// Stored versions, parsed for evaluation.
    async fn load(&self, vids: &[i64]) -> Result<Vec<Evaluated<'static>>, StoreError>;

    /// Recompute whether a version is its object's latest in some stored view.
    async fn refresh_latest(&self, vid: i64) -> Result<(), StoreError>;

    /// Every version of an object in a stored view.
    async fn versions_in(
        &self,
        view_id: i64,
        stix_id: &str,
    ) -> Result<Vec<HeldVersion>, StoreError>;

    /// The stored collections holding a version row, `\n`-terminated ids.
    async fn sources_of(&self, vid: i64) -> Result<String, StoreError>;

    /// Record which stored collections still hold a version row.
    async fn set_sources(&self, vid: i64, sources: &str) -> Result<(), StoreError>;

    /// Drop a version row no stored collection holds any more.
    async fn delete_version(&self, vid: i64) -> Result<(), StoreError>;

    /// Write the per-view size changes accumulated during the transaction.
    async fn flush_sizes(&self, sizes: SizeChanges) -> Result<(), StoreError>;

    /// Keep the status resource of an add-objects request.
    async fn insert_status(
        &self,
        status_id: &str,
        api_root: &str,
        body: &str,
        owner: &str,
    ) -> Result<(), StoreError>;
}

/// A version row about to be stored.
pub(crate) struct NewVersion<'a> {
    /// The object.
    pub object: &'a ValidObject,
    /// Its version, `-1` when unversioned (the unique key).
    pub version_key: i64,
    /// The version as listed.
    pub version_us: Micros,
    /// Now.
    pub added_us: Micros,
    /// The collection it is posted to, `\n`-terminated.
    pub sources: &'a str,
    /// Whether it is its object's latest in some stored view.
    pub is_latest: bool,
    /// The exact JSON received.
    pub raw: &'a str,
}

/// Brand-new objects of a request — stored nowhere before, each posted once in it —
/// written together after the request's other objects, with the stamps and
/// query-view memberships they would have been given one by one: stamps are taken
/// when an object is planned, so entries keep the request's order. No other object of
/// the request reads their rows (each is the only one with its id), so only the
/// numbering of version rows differs — the batch's come after the request's others.
#[derive(Default)]
pub(crate) struct FreshBatch<'n> {
    /// The stored collection's id, `\n`-terminated: every row's sources.
    pub sources: String,
    /// The version rows, in the request's order (all of them their object's latest).
    pub versions: Vec<FreshVersion<'n>>,
    /// Their entries, in order of `version`: each the first and last version of its
    /// object in its view.
    pub entries: Vec<FreshEntry>,
}

/// A version row of a [`FreshBatch`].
pub(crate) struct FreshVersion<'n> {
    /// The object as posted.
    pub new: &'n NewObject,
    /// Its version, `-1` when unversioned.
    pub version_key: i64,
    /// The version as listed.
    pub version_us: Micros,
    /// When it entered the store.
    pub added_us: Micros,
}

/// An entry of a [`FreshBatch`].
pub(crate) struct FreshEntry {
    /// Index of its version in [`FreshBatch::versions`].
    pub version: usize,
    /// The view.
    pub view_id: i64,
    /// Its stamp.
    pub date_added: Micros,
    /// A new member of a view being rebuilt.
    pub provisional: bool,
}

/// Where a write goes: the registry and clock of its transaction, and the stored
/// collection.
pub(crate) struct Target<'a> {
    /// The views the transaction fills.
    pub registry: &'a Registry,
    /// `date_added` stamps.
    pub clock: &'a Clock,
    /// The stored collection's id.
    pub collection: &'a str,
    /// Its stored view.
    pub view_id: i64,
}

/// Store `request` (received at `request_timestamp`) in the target's stored view, keep
/// every query view in step and record the status resource (unless the request omits
/// it); returns it. The request's objects are left to the caller, to drop once its
/// transaction (and the writer's lock) is over: freeing a thousand parsed objects is
/// not work for the one writer. Its failures move into the status.
pub(crate) async fn add_objects<T: IngestTx>(
    tx: &T,
    target: &Target<'_>,
    api_root: &str,
    request: &mut AddObjects,
    request_timestamp: String,
) -> Result<Status, StoreError> {
    let total = (request.objects.len() + request.failures.len()) as u64;
    let mut out = Ingested {
        failures: std::mem::take(&mut request.failures),
        successes: Vec::with_capacity(request.objects.len()),
    };
    let mut w = Writer::new(tx, target, SizeChanges::default());
    let (fresh, mut probes) = brand_new(tx, target.view_id, &request.objects).await?;
    let mut batch = FreshBatch {
        sources: format!("{}\n", target.collection),
        ..FreshBatch::default()
    };
    for ((object, fresh), probe) in request.objects.iter().zip(fresh).zip(probes.iter_mut()) {
        if fresh {
            w.plan_fresh(&mut batch, object);
        } else {
            w.store_one(object, probe.take()).await?;
        }
        out.successes.push(StatusDetail {
            id: object.object.id.clone(),
            version: object.object.version_text(),
            message: None,
        });
    }
    w.write_fresh(batch).await?;
    tx.flush_sizes(w.sizes).await?;
    let (status, body) = out.into_status(request_timestamp, total)?;
    if request.status_resource == StatusResource::Record {
        tx.insert_status(&status.id, api_root, &body, &request.owner)
            .await?;
    }
    Ok(status)
}

/// Which of a request's objects are brand-new: no version of the object is stored in
/// any collection, and the request posts it once (a second version in the same
/// request finds the first, so it takes the object-by-object path). And, probed
/// together, what the stored view `view_id` holds of the others the request posts once:
/// nothing the request writes before them changes that (every other object written
/// has another id), so their probes are asked at once.
async fn brand_new<T: IngestTx>(
    tx: &T,
    view_id: i64,
    objects: &[NewObject],
) -> Result<(Vec<bool>, Vec<Option<Probe>>), StoreError> {
    let mut posted: HashMap<&str, usize> = HashMap::with_capacity(objects.len());
    for o in objects {
        *posted.entry(o.object.id.as_str()).or_default() += 1;
    }
    let ids: Vec<&str> = posted.keys().copied().collect();
    let stored = if ids.is_empty() {
        HashSet::new()
    } else {
        tx.stored_among(&ids).await?
    };
    let fresh: Vec<bool> = objects
        .iter()
        .map(|o| {
            let id = o.object.id.as_str();
            posted.get(id) == Some(&1) && !stored.contains(id)
        })
        .collect();
    let mut probes: Vec<Option<Probe>> = objects.iter().map(|_| None).collect();
    let once: Vec<usize> = (0..objects.len())
        .filter(|&i| !fresh[i] && posted.get(objects[i].object.id.as_str()) == Some(&1))
        .collect();
    if !once.is_empty() {
        let versions: Vec<(&ValidObject, i64, &str)> = once
            .iter()
            .map(|&i| {
                let o = &objects[i];
                (&o.object, o.object.version.unwrap_or(-1), o.raw.as_str())
            })
            .collect();
        for (i, probe) in once
            .into_iter()
            .zip(tx.probe_each(view_id, &versions).await?)
        {
            probes[i] = Some(probe);
        }
    }
    Ok((fresh, probes))
}

/// Delete the versions of `stix_id` a request selects from the target's stored view;
/// versions no longer in any stored collection leave the store. Returns how many
/// versions left the collection.
pub(crate) async fn delete_object<T: IngestTx>(
    tx: &T,
    target: &Target<'_>,
    stix_id: &str,
    versions: &VersionMatch,
    spec_versions: &[String],
) -> Result<u64, StoreError> {
    let view_id = target.view_id;
    let doomed: Vec<i64> = tx
        .versions_in(view_id, stix_id)
        .await?
        .into_iter()
        .filter(|v| selected(v, versions, spec_versions))
        .map(|v| v.vid)
        .collect();
    let mut sizes = SizeChanges::default();
    let mut removed = 0;
    let before = tx.last_in(view_id, stix_id).await?;
    // Version rows no stored collection holds any more: dropped last, once the query
    // views have let go of them (a backend may find an object's entries through its
    // version rows).
    let mut unheld = Vec::new();
    for vid in doomed {
        if tx.remove_entry(&mut sizes, view_id, vid, stix_id).await? {
            removed += 1;
        }
        let remaining = without(&tx.sources_of(vid).await?, target.collection);
        if remaining.is_empty() {
            unheld.push(vid);
        } else {
            tx.set_sources(vid, &remaining).await?;
            tx.refresh_latest(vid).await?;
        }
    }
    let after = tx.last_in(view_id, stix_id).await?;
    if before != after {
        if let Some(vid) = after {
            tx.refresh_latest(vid).await?;
        }
        let mut w = Writer::new(tx, target, sizes);
        w.sync_query_views(stix_id, None, false).await?;
        sizes = w.sizes;
    }
    for vid in unheld {
        tx.delete_version(vid).await?;
    }
    tx.flush_sizes(sizes).await?;
    Ok(removed)
}

/// Whether a delete request's `match[version]` and `match[spec_version]` select a version.
fn selected(v: &HeldVersion, versions: &VersionMatch, spec_versions: &[String]) -> bool {
    let version_ok = versions.all
        || (versions.first && v.is_first)
        || (versions.last && v.is_last)
        || versions.at.contains(&v.version_us);
    let spec_ok = spec_versions.is_empty() || spec_versions.contains(&v.spec_version);
    version_ok && spec_ok
}

/// A row's sources (`\n`-terminated ids) without `collection`.
fn without(sources: &str, collection: &str) -> String {
    sources
        .split('\n')
        .filter(|s| !s.is_empty() && *s != collection)
        .map(|s| format!("{s}\n"))
        .collect()
}

/// The `date_added` a version gets when it enters `view`. A building view keeps the
/// stamp the row has in the view it replaces, so clients see no change for rows both
/// views hold; rows new to the collection are provisional and get fresh stamps when
/// the rebuilt view goes live.
pub(crate) async fn stamp_for<T: IngestTx>(
    tx: &T,
    clock: &Clock,
    view: &View,
    vid: i64,
) -> Result<(Micros, bool), StoreError> {
    Ok(match (view.state, view.replaces) {
        (ViewState::Building, Some(old)) => match tx.date_added_in(old, vid).await? {
            Some(kept) => (kept, false),
            None => (clock.stamp(), true),
        },
        _ => (clock.stamp(), false),
    })
}

/// One write transaction's context.
struct Writer<'a, T> {
    tx: &'a T,
    target: &'a Target<'a>,
    sizes: SizeChanges,
    now: Micros,
}

impl<'a, T: IngestTx> Writer<'a, T> {
    fn new(tx: &'a T, target: &'a Target<'a>, sizes: SizeChanges) -> Self {
        Writer {
            tx,
            target,
            sizes,
            now: now_us(),
        }
    }

    /// Give a brand-new object (see [`brand_new`]) what [`Self::store_one`] would —
    /// its version row, its entry in the stored view, an entry in each query view
    /// drawing from it that it matches, stamped in that order — into `batch`.
    fn plan_fresh<'n>(&self, batch: &mut FreshBatch<'n>, new: &'n NewObject) {
        let obj = &new.object;
        let clock = self.target.clock;
        let added_us = clock.stamp();
        let version = batch.versions.len();
        batch.versions.push(FreshVersion {
            new,
            version_key: obj.version.unwrap_or(-1),
            version_us: obj.version.unwrap_or(added_us),
            added_us,
        });
        batch.entries.push(FreshEntry {
            version,
            view_id: self.target.view_id,
            date_added: clock.stamp(),
            provisional: false,
        });
        let changed = self.target.view_id;
        for (view, query) in self.target.registry.query_views() {
            if view.draws_from(changed)
                && self.matches_object(query, &obj.value, &batch.sources, added_us)
            {
                // Not in the view it replaces either: a new member, provisional while
                // the view builds.
                batch.entries.push(FreshEntry {
                    version,
                    view_id: view.view_id,
                    date_added: clock.stamp(),
                    provisional: view.state == ViewState::Building && view.replaces.is_some(),
                });
            }
        }
    }

    /// Write the brand-new objects planned.
    async fn write_fresh(&mut self, batch: FreshBatch<'_>) -> Result<(), StoreError> {
        if batch.versions.is_empty() {
            return Ok(());
        }
        self.tx.insert_fresh(&mut self.sizes, &batch).await
    }

    /// Store one version (`probe`: what was asked of it already, if it was).
    async fn store_one(&mut self, new: &NewObject, probe: Option<Probe>) -> Result<(), StoreError> {
        let (tx, view_id) = (self.tx, self.target.view_id);
        let obj = &new.object;
        let version_key = obj.version.unwrap_or(-1);
        let probe = match probe {
            Some(probe) => probe,
            None => tx.probe(view_id, obj, version_key, &new.raw).await?,
        };
        // A version this collection already holds (an SCO: the object) is a duplicate,
        // not an error; the first write of a version wins, within its collection only.
        if probe.held {
            return Ok(());
        }
        let previous = probe.previous;
        // Whether this version becomes the object's latest in this collection (an
        // older version arriving late does not).
        let becomes_last = previous.is_none_or(|(_, v)| obj.version.is_none_or(|k| k > v));
        let posted = self
            .store_version(new, version_key, probe.same_bytes, becomes_last)
            .await?;
        let stamp = self.target.clock.stamp();
        // `previous.is_none()`: the collection holds nothing of the object.
        tx.insert_entry(
            &mut self.sizes,
            view_id,
            &posted.row,
            stamp,
            false,
            previous.is_none(),
        )
        .await?;
        if !becomes_last {
            return Ok(()); // no query view changes
        }
        if let Some((old, _)) = previous {
            tx.refresh_latest(old).await?;
        }
        self.sync_query_views(&obj.id, Some(posted), probe.fresh)
            .await
    }

    /// The version row of a posted object: the one with the very same bytes (now
    /// shared with this collection), else a new one. A version row is shared only with
    /// collections posted the very same bytes.
    async fn store_version<'n>(
        &mut self,
        new: &'n NewObject,
        version_key: i64,
        same_bytes: Option<SameBytes>,
        becomes_last: bool,
    ) -> Result<Evaluated<'n>, StoreError> {
        let obj = &new.object;
        let collection = self.target.collection;
        let (vid, version_us, added_us, sources) = match same_bytes {
            Some(row) => {
                let sources = format!("{}{collection}\n", row.sources);
                self.tx
                    .share_version(row.vid, &sources, becomes_last)
                    .await?;
                (row.vid, row.version_us, row.added_us, sources)
            }
            None => {
                let added_us = self.target.clock.stamp();
                let version_us = obj.version.unwrap_or(added_us);
                let mut sources = String::with_capacity(collection.len() + 1);
                sources.push_str(collection);
                sources.push('\n');
                let vid = self
                    .tx
                    .insert_version(&NewVersion {
                        object: obj,
                        version_key,
                        version_us,
                        added_us,
                        sources: &sources,
                        is_latest: becomes_last,
                        raw: &new.raw,
                    })
                    .await?;
                (vid, version_us, added_us, sources)
            }
        };
        Ok(Evaluated {
            value: Cow::Borrowed(&obj.value),
            sources,
            added_us,
            row: VersionRow {
                vid,
                stix_id: obj.id.clone(),
                kind: obj.kind.clone(),
                spec_version: obj.spec_version.clone(),
                version_us,
            },
        })
    }

    /// After the latest version of `stix_id` in the target's stored view changed: make
    /// every query view drawing from it hold exactly the latest version of the object
    /// in each of its sources that matches its query, and nothing else of the object.
    /// `posted`: the version just posted (the new latest), if one was. `fresh`: the
    /// object was stored nowhere before `posted` (no view holds any of it, no other
    /// source has it).
    async fn sync_query_views(
        &mut self,
        stix_id: &str,
        posted: Option<Evaluated<'_>>,
        fresh: bool,
    ) -> Result<(), StoreError> {
        let changed = self.target.view_id;
        let registry: &'a Registry = self.target.registry;
        let views: Vec<(&'a View, &'a Arc<Query>)> = registry
            .query_views()
            .filter(|(v, _)| v.draws_from(changed))
            .collect();
        if views.is_empty() {
            return Ok(());
        }
        if let (true, Some(posted)) = (fresh, &posted) {
            return self.add_fresh(&views, posted).await;
        }
        // The object's latest version in each stored view any of them draws from: in
        // `changed`, the version just posted (if one was); the others are looked up.
        let mut latest: HashMap<i64, i64> = HashMap::new();
        let mut evaluated: HashMap<i64, Evaluated<'_>> = HashMap::new();
        if let Some(posted) = posted {
            latest.insert(changed, posted.row.vid);
            evaluated.insert(posted.row.vid, posted);
        }
        let sources = distinct(
            views
                .iter()
                .flat_map(|(v, _)| v.sources.iter().copied())
                .filter(|s| !latest.contains_key(s)),
        );
        if !sources.is_empty() {
            latest.extend(self.tx.last_in_each(&sources, stix_id).await?);
        }
        let missing = distinct(
            latest
                .values()
                .copied()
                .filter(|vid| !evaluated.contains_key(vid)),
        );
        if !missing.is_empty() {
            for e in self.tx.load(&missing).await? {
                evaluated.insert(e.row.vid, e);
            }
        }
        // What the views hold of the object now.
        let view_ids: Vec<i64> = views.iter().map(|(v, _)| v.view_id).collect();
        let held = self.tx.held_in(&view_ids, stix_id).await?;
        for (view, query) in &views {
            let members = self.members(view, query, &latest, &evaluated);
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

    /// A version of an object stored nowhere else enters every query view it matches.
    async fn add_fresh(
        &mut self,
        views: &[(&View, &Arc<Query>)],
        posted: &Evaluated<'_>,
    ) -> Result<(), StoreError> {
        for (view, query) in views {
            if self.matches(query, posted) {
                // Not in the view it replaces either: a new member, provisional while
                // the view builds.
                let provisional = view.state == ViewState::Building && view.replaces.is_some();
                let stamp = self.target.clock.stamp();
                self.tx
                    .insert_entry(
                        &mut self.sizes,
                        view.view_id,
                        &posted.row,
                        stamp,
                        provisional,
                        true,
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// The versions `view` should hold: the latest in each of its sources, if it matches.
    fn members(
        &self,
        view: &View,
        query: &Query,
        latest: &HashMap<i64, i64>,
        evaluated: &HashMap<i64, Evaluated<'_>>,
    ) -> Vec<i64> {
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
        members
    }

    fn matches(&self, query: &Query, e: &Evaluated<'_>) -> bool {
        self.matches_object(query, &e.value, &e.sources, e.added_us)
    }

    /// Whether a version (its JSON, the collections holding it, its arrival) matches.
    fn matches_object(
        &self,
        query: &Query,
        object: &serde_json::Value,
        sources: &str,
        added_us: Micros,
    ) -> bool {
        let names = self.target.registry.names_of(sources);
        query.matches(
            &ObjectFacts {
                object,
                sources: &names,
                added_us,
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
            self.tx
                .remove_entry(&mut self.sizes, view.view_id, *vid, stix_id)
                .await?;
        }
        // Whether the view holds nothing of the object before the next insert.
        let mut empty = !held.iter().any(|v| members.contains(v));
        for vid in members.iter().filter(|v| !held.contains(v)) {
            let row = &evaluated[vid].row;
            let (stamp, provisional) = stamp_for(self.tx, self.target.clock, view, *vid).await?;
            self.tx
                .insert_entry(
                    &mut self.sizes,
                    view.view_id,
                    row,
                    stamp,
                    provisional,
                    empty,
                )
                .await?;
            empty = false;
        }
        Ok(())
    }
}

/// The distinct ids, sorted.
fn distinct(ids: impl Iterator<Item = i64>) -> Vec<i64> {
    let mut ids: Vec<i64> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Run a future whose every await completes at once: the flow above over the SQLite
/// statements, which are synchronous (it runs on a blocking thread, never on the async
/// runtime).
pub(crate) fn run_ready<F: Future>(work: F) -> Result<F::Output, StoreError> {
    let mut work = std::pin::pin!(work);
    match work.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => Ok(out),
        Poll::Pending => Err(StoreError::Database(
            "a synchronous store operation did not complete".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(version_us: Micros, spec: &str, first: bool, last: bool) -> HeldVersion {
        HeldVersion {
            vid: 1,
            version_us,
            spec_version: spec.into(),
            is_first: first,
            is_last: last,
        }
    }

    #[test]
    fn a_delete_selects_by_version_and_spec_version() {
        let spec = |s: &str| vec![s.to_string()];
        let middle = held(5, "2.1", false, false);
        assert!(selected(&middle, &VersionMatch::all(), &[]));
        assert!(!selected(&middle, &VersionMatch::last(), &[]));
        assert!(selected(
            &held(5, "2.1", false, true),
            &VersionMatch::last(),
            &[]
        ));
        let at = VersionMatch {
            at: vec![5],
            ..Default::default()
        };
        assert!(selected(&middle, &at, &spec("2.1")));
        assert!(!selected(&middle, &at, &spec("2.0")));
    }

    #[test]
    fn a_deleted_collection_leaves_the_other_sources() {
        assert_eq!(without("a\nb\nc\n", "b"), "a\nc\n");
        assert_eq!(without("b\n", "b"), "");
    }

    #[test]
    fn a_ready_future_runs_and_a_pending_one_is_an_error() {
        assert_eq!(run_ready(async { 7 }).ok(), Some(7));
        assert!(run_ready(std::future::pending::<()>()).is_err());
    }
}
