//! Membership rows: adding and removing object versions in views, keeping the
//! `is_first`/`is_last` flags and view sizes right (as the SQLite store does).

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::tx::Tx;
use crate::store::error::StoreError;
use crate::store::membership::first_and_last;
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
    if date_added_in(tx, view_id, r.vid).await?.is_some() {
        return Ok(false);
    }
    let bounds = row(
        tx,
        "SELECT min(version_us), max(version_us) FROM entries WHERE view_id = $1 AND stix_id = $2",
        &[&view_id, &r.stix_id],
    )
    .await?;
    let (min, max): (Option<Micros>, Option<Micros>) = match bounds {
        Some(b) => (b.get(0), b.get(1)),
        None => (None, None),
    };
    let (is_first, is_last) = first_and_last(r.version_us, min, max);
    if is_first && min.is_some_and(|m| r.version_us < m) {
        exec(
            tx,
            "UPDATE entries SET is_first = false WHERE view_id = $1 AND stix_id = $2 AND is_first",
            &[&view_id, &r.stix_id],
        )
        .await?;
    }
    if is_last && max.is_some_and(|m| r.version_us > m) {
        exec(
            tx,
            "UPDATE entries SET is_last = false WHERE view_id = $1 AND stix_id = $2 AND is_last",
            &[&view_id, &r.stix_id],
        )
        .await?;
    }
    exec(
        tx,
        "INSERT INTO entries (view_id, date_added, vid, stix_id, type, spec_version, version_us, \
         is_first, is_last, provisional) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &view_id,
            &date_added,
            &r.vid,
            &r.stix_id,
            &r.kind,
            &r.spec_version,
            &r.version_us,
            &is_first,
            &is_last,
            &provisional,
        ],
    )
    .await?;
    sizes.add(view_id, 1);
    Ok(true)
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

/// Remove a version from a view; returns whether it was a member.
pub async fn remove_entry(
    tx: &Tx<'_>,
    sizes: &mut SizeChanges,
    view_id: i64,
    vid: i64,
    stix_id: &str,
) -> Result<bool, StoreError> {
    let removed = exec(
        tx,
        "DELETE FROM entries WHERE view_id = $1 AND vid = $2",
        &[&view_id, &vid],
    )
    .await?;
    if removed == 0 {
        return Ok(false);
    }
    sizes.add(view_id, -1);
    refresh_flags(tx, view_id, stix_id).await?;
    Ok(true)
}

/// Recompute `is_first`/`is_last` of one object's versions in a view.
pub async fn refresh_flags(tx: &Tx<'_>, view_id: i64, stix_id: &str) -> Result<(), StoreError> {
    exec(
        tx,
        "UPDATE entries SET \
           is_first = (version_us = (SELECT min(version_us) FROM entries e WHERE e.view_id = $1 AND e.stix_id = $2)), \
           is_last  = (version_us = (SELECT max(version_us) FROM entries e WHERE e.view_id = $1 AND e.stix_id = $2)) \
         WHERE view_id = $1 AND stix_id = $2",
        &[&view_id, &stix_id],
    )
    .await?;
    Ok(())
}
