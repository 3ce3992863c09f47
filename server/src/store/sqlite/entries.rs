//! Membership rows: adding and removing object versions in views, keeping the
//! `is_first`/`is_last` flags and view sizes right.

use rusqlite::{params, OptionalExtension, Transaction};

use crate::store::error::StoreError;
use crate::store::membership::first_and_last;
use crate::store::micros::Micros;

pub use crate::store::membership::{SizeChanges, VersionRow};

/// The entries (`e`) of the object `?2` in the view `?1`, found through the object's
/// version rows (`o`, by `object_versions_by_version`) with one `entries_by_version`
/// probe each. There is no index of entries by object id (schema step 10): object ids
/// are random, so such an index cost every entry a write (and a read) of a page of its
/// own, about a third of the pages an ingest wrote.
macro_rules! object_entries {
    () => {
        "object_versions o CROSS JOIN entries e INDEXED BY entries_by_version \
         ON e.view_id = ?1 AND e.vid = o.vid WHERE o.stix_id = ?2"
    };
}
pub(super) use object_entries;

/// The `vid`s of the object `?2`'s version rows, to narrow a statement on entries by
/// `(view_id, vid)` to one object.
macro_rules! object_vids {
    () => {
        "(SELECT vid FROM object_versions WHERE stix_id = ?2)"
    };
}

/// A view's kind, as its entries are written and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewKind {
    /// A stored collection: its entries point at `object_versions`, in the order they
    /// were stored.
    Stored,
    /// A query collection: its entries carry their object's JSON (`entries.raw`), so
    /// its pages read one range of its own rows.
    Query,
}

/// Write the per-view size changes accumulated during a transaction.
pub fn flush_sizes(tx: &Transaction<'_>, sizes: SizeChanges) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached("UPDATE views SET size = size + ?2 WHERE view_id = ?1")?;
    for (view_id, delta) in sizes.into_changes() {
        stmt.execute(params![view_id, delta])?;
    }
    Ok(())
}

/// The `date_added` of a version in a view, if it is a member.
pub fn date_added_in(
    tx: &Transaction<'_>,
    view_id: i64,
    vid: i64,
) -> Result<Option<Micros>, StoreError> {
    Ok(tx
        .prepare_cached("SELECT date_added FROM entries WHERE view_id = ?1 AND vid = ?2")?
        .query_row(params![view_id, vid], |r| r.get(0))
        .optional()?)
}

/// Add a version to a view at `date_added` unless it is already a member; returns
/// whether it was added.
pub fn insert_entry(
    tx: &Transaction<'_>,
    sizes: &mut SizeChanges,
    (view_id, kind): (i64, ViewKind),
    row: &VersionRow,
    date_added: Micros,
    provisional: bool,
) -> Result<bool, StoreError> {
    if date_added_in(tx, view_id, row.vid)?.is_some() {
        return Ok(false);
    }
    let (min, max): (Option<Micros>, Option<Micros>) = tx
        .prepare_cached(concat!(
            "SELECT min(e.version_us), max(e.version_us) FROM ",
            object_entries!()
        ))?
        .query_row(params![view_id, row.stix_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (is_first, is_last) = first_and_last(row.version_us, min, max);
    if is_first && min.is_some_and(|m| row.version_us < m) {
        tx.prepare_cached(concat!(
            "UPDATE entries INDEXED BY entries_by_version SET is_first = 0 \
             WHERE view_id = ?1 AND is_first = 1 AND vid IN ",
            object_vids!()
        ))?
        .execute(params![view_id, row.stix_id])?;
    }
    if is_last && max.is_some_and(|m| row.version_us > m) {
        tx.prepare_cached(concat!(
            "UPDATE entries INDEXED BY entries_by_version SET is_last = 0 \
             WHERE view_id = ?1 AND is_last = 1 AND vid IN ",
            object_vids!()
        ))?
        .execute(params![view_id, row.stix_id])?;
    }
    write_entry(
        tx,
        (view_id, kind),
        row,
        date_added,
        (is_first, is_last),
        provisional,
    )?;
    sizes.add(view_id, 1);
    Ok(true)
}

/// Add a version to a view known to hold nothing of its object (so not the version
/// either): first and last, no flags to move, nothing to check.
pub fn insert_first_entry(
    tx: &Transaction<'_>,
    sizes: &mut SizeChanges,
    (view_id, kind): (i64, ViewKind),
    row: &VersionRow,
    date_added: Micros,
    provisional: bool,
) -> Result<(), StoreError> {
    write_entry(
        tx,
        (view_id, kind),
        row,
        date_added,
        (true, true),
        provisional,
    )?;
    sizes.add(view_id, 1);
    Ok(())
}

/// The entry row itself, with its `(is_first, is_last)` flags; a query view's entry
/// with its object's JSON.
fn write_entry(
    tx: &Transaction<'_>,
    (view_id, kind): (i64, ViewKind),
    row: &VersionRow,
    date_added: Micros,
    (is_first, is_last): (bool, bool),
    provisional: bool,
) -> Result<(), StoreError> {
    tx.prepare_cached(match kind {
        ViewKind::Stored => {
            "INSERT INTO entries (view_id, date_added, vid, stix_id, type, spec_version, \
             version_us, is_first, is_last, provisional) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        }
        ViewKind::Query => {
            "INSERT INTO entries (view_id, date_added, vid, stix_id, type, spec_version, \
             version_us, is_first, is_last, provisional, raw) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
                     (SELECT raw FROM object_versions WHERE vid = ?3))"
        }
    })?
    .execute(params![
        view_id,
        date_added,
        row.vid,
        row.stix_id,
        row.kind,
        row.spec_version,
        row.version_us,
        is_first,
        is_last,
        provisional
    ])?;
    Ok(())
}

/// Remove a version from a view; returns whether it was a member.
pub fn remove_entry(
    tx: &Transaction<'_>,
    sizes: &mut SizeChanges,
    view_id: i64,
    vid: i64,
    stix_id: &str,
) -> Result<bool, StoreError> {
    let removed = tx
        .prepare_cached("DELETE FROM entries WHERE view_id = ?1 AND vid = ?2")?
        .execute(params![view_id, vid])?;
    if removed == 0 {
        return Ok(false);
    }
    sizes.add(view_id, -1);
    refresh_flags(tx, view_id, stix_id)?;
    Ok(true)
}

/// Recompute `is_first`/`is_last` of one object's versions in a view.
pub fn refresh_flags(tx: &Transaction<'_>, view_id: i64, stix_id: &str) -> Result<(), StoreError> {
    tx.prepare_cached(concat!(
        "UPDATE entries INDEXED BY entries_by_version SET \
           is_first = (version_us = (SELECT min(e.version_us) FROM ",
        object_entries!(),
        ")), is_last = (version_us = (SELECT max(e.version_us) FROM ",
        object_entries!(),
        ")) WHERE view_id = ?1 AND vid IN ",
        object_vids!()
    ))?
    .execute(params![view_id, stix_id])?;
    Ok(())
}
