//! Membership rows: adding and removing object versions in views, keeping the
//! `is_first`/`is_last` flags and view sizes right (as the SQLite store does).

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::tx::Tx;
use crate::store::error::StoreError;
use crate::store::micros::Micros;

/// Run a cached statement, returning its rows.
pub async fn rows(
    tx: &Tx<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.query(&stmt, params).await?)
}

/// Run a cached statement, returning at most one row.
pub async fn row(
    tx: &Tx<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, StoreError> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.query_opt(&stmt, params).await?)
}

/// Run a cached statement, returning how many rows it changed.
pub async fn exec(
    tx: &Tx<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.execute(&stmt, params).await?)
}

pub use crate::store::membership::{SizeChanges, VersionRow};

/// The `vid`s of one object's version rows (by `object_versions_by_id`, schema step 8), the id
/// given as the statement parameter or column named by the argument: a statement on an
/// object's entries in a view asks `entries_by_version (view_id, vid)` for these.
/// There is no index of entries by object id (schema step 7, as SQLite's step 10):
/// ids are random, so such an index cost every new entry a leaf page of its own —
/// written into the WAL whole after each checkpoint, and read back once the database
/// outgrew its buffers.
macro_rules! object_vids {
    ($id:literal) => {
        concat!(
            "ARRAY(SELECT vid FROM object_versions WHERE stix_id = ",
            $id,
            ")"
        )
    };
}
pub(super) use object_vids;

/// Write the per-view size changes accumulated during a transaction.
pub async fn flush_sizes(tx: &Tx<'_>, sizes: SizeChanges) -> Result<(), StoreError> {
    for (view_id, delta) in sizes.into_changes() {
        exec(
            tx,
            "UPDATE views SET size = size + $2 WHERE view_id = $1",
            &[&view_id, &delta],
        )
        .await?;
    }
    Ok(())
}

/// The `date_added` of a version in a view, if it is a member.
pub async fn date_added_in(
    tx: &Tx<'_>,
    view_id: i64,
    vid: i64,
) -> Result<Option<Micros>, StoreError> {
    Ok(row(
        tx,
        "SELECT date_added FROM entries WHERE view_id = $1 AND vid = $2",
        &[&view_id, &vid],
    )
    .await?
    .map(|r| r.get(0)))
}

/// [`insert_entry`] in one statement: the object's bounds in the view, the flags the
/// other versions lose to the new one and the new entry with its own (as
/// [`crate::store::membership::first_and_last`] gives them). The updates' statement
/// triggers fire with empty transition tables when no flag moves, which changes nothing.
pub(super) const INSERT_ENTRY: &str = concat!(
    "WITH b AS ( \
       SELECT min(version_us) AS lo, max(version_us) AS hi, coalesce(bool_or(vid = $3), false) AS held \
       FROM entries WHERE view_id = $1 AND vid = ANY(",
    object_vids!("$4"),
    ")), \
     f AS (UPDATE entries SET is_first = false \
       WHERE view_id = $1 AND vid = ANY(",
    object_vids!("$4"),
    ") AND is_first \
         AND (SELECT NOT held AND $7 < lo FROM b)), \
     l AS (UPDATE entries SET is_last = false \
       WHERE view_id = $1 AND vid = ANY(",
    object_vids!("$4"),
    ") AND is_last \
         AND (SELECT NOT held AND $7 > hi FROM b)) \
     INSERT INTO entries (view_id, date_added, vid, stix_id, type, spec_version, version_us, \
       is_first, is_last, provisional) \
     SELECT $1::bigint, $2::bigint, $3::bigint, $4::text, $5::text, $6::text, $7::bigint, \
       lo IS NULL OR $7 <= lo, hi IS NULL OR $7 >= hi, $8::boolean \
     FROM b WHERE NOT held"
);

/// Add a version to a view at `date_added` unless it is already a member; returns
/// whether it was added.
pub async fn insert_entry(
    tx: &Tx<'_>,
    sizes: &mut SizeChanges,
    view_id: i64,
    r: &VersionRow,
    date_added: Micros,
    provisional: bool,
) -> Result<bool, StoreError> {
    let added = exec(
        tx,
        INSERT_ENTRY,
        &[
            &view_id,
            &date_added,
            &r.vid,
            &r.stix_id,
            &r.kind,
            &r.spec_version,
            &r.version_us,
            &provisional,
        ],
    )
    .await?
        == 1;
    if added {
        sizes.add(view_id, 1);
    }
    Ok(added)
}

/// Add the first version of an object that no view holds yet: no flags to update.
pub async fn insert_first_entry(
    tx: &Tx<'_>,
    sizes: &mut SizeChanges,
    view_id: i64,
    r: &VersionRow,
    date_added: Micros,
    provisional: bool,
) -> Result<(), StoreError> {
    exec(
        tx,
        "INSERT INTO entries (view_id, date_added, vid, stix_id, type, spec_version, version_us, \
         is_first, is_last, provisional) VALUES ($1, $2, $3, $4, $5, $6, $7, true, true, $8)",
        &[
            &view_id,
            &date_added,
            &r.vid,
            &r.stix_id,
            &r.kind,
            &r.spec_version,
            &r.version_us,
            &provisional,
        ],
    )
    .await?;
    sizes.add(view_id, 1);
    Ok(())
}

/// [`remove_entry`] in one statement: the update reads the entries as they were before the delete, so it leaves the removed
/// row out itself, and writes only rows whose flags change (the delete already moves
/// the view's change counter).
pub(super) const REMOVE_ENTRY: &str = concat!(
    "WITH d AS (DELETE FROM entries WHERE view_id = $1 AND vid = $2 \
       RETURNING vid), \
     r AS (SELECT min(version_us) AS lo, max(version_us) AS hi FROM entries \
       WHERE view_id = $1 AND vid = ANY(",
    object_vids!("$3"),
    ") AND vid <> $2), \
     u AS (UPDATE entries e SET is_first = (e.version_us = r.lo), is_last = (e.version_us = r.hi) \
       FROM r WHERE e.view_id = $1 AND e.vid = ANY(",
    object_vids!("$3"),
    ") AND e.vid <> $2 \
         AND EXISTS (SELECT 1 FROM d) \
         AND (e.is_first <> (e.version_us = r.lo) OR e.is_last <> (e.version_us = r.hi))) \
     SELECT count(*) FROM d"
);

/// Remove a version from a view and set the flags of the object's other versions
/// there from what is left; returns whether it was a member.
pub async fn remove_entry(
    tx: &Tx<'_>,
    sizes: &mut SizeChanges,
    view_id: i64,
    vid: i64,
    stix_id: &str,
) -> Result<bool, StoreError> {
    let removed: i64 = row(tx, REMOVE_ENTRY, &[&view_id, &vid, &stix_id])
        .await?
        .map(|r| r.get(0))
        .unwrap_or(0);
    if removed == 0 {
        return Ok(false);
    }
    sizes.add(view_id, -1);
    Ok(true)
}
