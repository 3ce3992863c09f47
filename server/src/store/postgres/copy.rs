//! `taxiway-server migrate --from-sqlite`: copy an embedded store into an empty
//! PostgreSQL database, keeping object bytes, view membership with its exact
//! `date_added`, view ids and status resources.

use std::path::Path;

use futures::future::try_join_all;
use rusqlite::{params, Connection, OpenFlags};

use super::PostgresStore;
use crate::store::sqlite::DB_FILE;
use crate::store::StoreError;

/// Rows copied per round of pipelined inserts.
const CHUNK: i64 = 1_000;

/// What a copy did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Object versions copied.
    pub object_versions: u64,
    /// Views copied (active and building).
    pub views: u64,
    /// View entries copied.
    pub entries: u64,
    /// Status resources copied.
    pub statuses: u64,
    /// The clock after the copy (the largest stamp copied).
    pub last_stamp: i64,
}

/// Copy the SQLite store in `data_dir` into `target`, whose database must be empty.
/// The SQLite store is read in one read transaction (a consistent snapshot), but the
/// server using it should be stopped so that nothing written afterwards is lost.
pub async fn copy_from_sqlite(
    data_dir: &Path,
    target: &PostgresStore,
) -> Result<CopyReport, StoreError> {
    let path = data_dir.join(DB_FILE);
    if !path.exists() {
        return Err(StoreError::Database(format!(
            "no store at {}",
            path.display()
        )));
    }
    let source = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    source.busy_timeout(std::time::Duration::from_secs(30))?;
    source.execute_batch("BEGIN")?;

    let mut client = target.client().await?;
    let tx = client.transaction().await?;
    // Lock the clock row: no replica writes while we copy.
    tx.query_one("SELECT last FROM clock FOR UPDATE", &[])
        .await?;
    let used: i64 = tx
        .query_one(
            "SELECT (SELECT count(*) FROM object_versions) + (SELECT count(*) FROM views) \
             + (SELECT count(*) FROM status)",
            &[],
        )
        .await?
        .get(0);
    if used > 0 {
        return Err(StoreError::Database(
            "the target database is not empty (it has objects, views or statuses); \
             migrate into a new database"
                .into(),
        ));
    }
    let mut report = CopyReport::default();

    // Object versions, by vid.
    let insert_version = tx
        .prepare(
            "INSERT INTO object_versions (vid, stix_id, type, spec_version, version_key, version_us, \
             added_us, sources, is_latest, raw) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .await?;
    let mut after = i64::MIN;
    loop {
        type VersionRow = (
            i64,
            String,
            String,
            String,
            i64,
            i64,
            i64,
            String,
            bool,
            String,
        );
        let rows: Vec<VersionRow> = source
            .prepare_cached(
                "SELECT vid, stix_id, type, spec_version, version_key, version_us, added_us, \
                 sources, is_latest, raw FROM object_versions WHERE vid > ?1 ORDER BY vid LIMIT ?2",
            )?
            .query_map(params![after, CHUNK], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        let Some(last) = rows.last().map(|r| r.0) else {
            break;
        };
        let (tx, st) = (&tx, &insert_version);
        try_join_all(rows.iter().map(|r| async move {
            tx.execute(
                st,
                &[&r.0, &r.1, &r.2, &r.3, &r.4, &r.5, &r.6, &r.7, &r.8, &r.9],
            )
            .await
        }))
        .await?;
        report.object_versions += rows.len() as u64;
        after = last;
    }

    // Views (retired ones are not worth copying) and their entries.
    type ViewRow = (
        i64,
        String,
        String,
        Option<String>,
        String,
        Option<i64>,
        i64,
        i64,
        i64,
        Option<String>,
    );
    let views: Vec<ViewRow> = source
        .prepare(
            "SELECT view_id, collection, kind, query, state, replaces, progress_vid, size, created_us, \
             sources FROM views WHERE state != 'retired' ORDER BY view_id",
        )?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let insert_entry = tx
        .prepare(
            "INSERT INTO entries (view_id, date_added, vid, stix_id, type, spec_version, version_us, \
             is_first, is_last, provisional) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .await?;
    let mut last_stamp: i64 = 0;
    for v in &views {
        // A building view whose old view is not copied replaces nothing.
        let replaces = v.5.filter(|old| views.iter().any(|o| o.0 == *old));
        tx.execute(
            "INSERT INTO views (view_id, collection, kind, query, state, replaces, progress_vid, size, \
             created_us, sources) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[&v.0, &v.1, &v.2, &v.3, &v.4, &replaces, &v.6, &v.7, &v.8, &v.9],
        )
        .await?;
        report.views += 1;
        let mut after = i64::MIN;
        loop {
            type EntryRow = (i64, i64, String, String, String, i64, bool, bool, bool);
            let rows: Vec<EntryRow> = source
                .prepare_cached(
                    "SELECT date_added, vid, stix_id, type, spec_version, version_us, is_first, is_last, \
                     provisional FROM entries WHERE view_id = ?1 AND date_added > ?2 \
                     ORDER BY date_added LIMIT ?3",
                )?
                .query_map(params![v.0, after, CHUNK], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                    ))
                })?
                .collect::<Result<_, _>>()?;
            let Some(last) = rows.last().map(|r| r.0) else {
                break;
            };
            let (tx, st) = (&tx, &insert_entry);
            try_join_all(rows.iter().map(|r| async move {
                tx.execute(
                    st,
                    &[&v.0, &r.0, &r.1, &r.2, &r.3, &r.4, &r.5, &r.6, &r.7, &r.8],
                )
                .await
            }))
            .await?;
            report.entries += rows.len() as u64;
            last_stamp = last_stamp.max(last);
            after = last;
        }
    }

    // Status resources.
    let insert_status = tx
        .prepare(
            "INSERT INTO status (id, api_root, created_us, body, owner) VALUES ($1, $2, $3, $4, $5)",
        )
        .await?;
    let mut after = String::new();
    loop {
        let rows: Vec<(String, String, i64, String, String)> = source
            .prepare_cached(
                "SELECT id, api_root, created_us, body, owner FROM status WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?
            .query_map(params![after, CHUNK], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        let Some(last) = rows.last().map(|r| r.0.clone()) else {
            break;
        };
        let (tx, st) = (&tx, &insert_status);
        try_join_all(
            rows.iter()
                .map(|r| async move { tx.execute(st, &[&r.0, &r.1, &r.2, &r.3, &r.4]).await }),
        )
        .await?;
        report.statuses += rows.len() as u64;
        after = last;
    }
    source.execute_batch("COMMIT")?;

    let max_added: Option<i64> = tx
        .query_one("SELECT max(added_us) FROM object_versions", &[])
        .await?
        .get(0);
    last_stamp = last_stamp.max(max_added.unwrap_or(0));
    tx.execute(
        "UPDATE clock SET last = greatest(last, $1), registry_gen = registry_gen + 1",
        &[&last_stamp],
    )
    .await?;
    for (table, column) in [("object_versions", "vid"), ("views", "view_id")] {
        tx.batch_execute(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), \
             coalesce((SELECT max({column}) FROM {table}), 1), \
             (SELECT max({column}) FROM {table}) IS NOT NULL)"
        ))
        .await?;
    }
    tx.commit().await?;
    // Planner statistics and the visibility map for the freshly filled tables, before
    // replicas serve them (autovacuum would get there, later).
    client.batch_execute("VACUUM (ANALYZE)").await?;
    target.invalidate();
    report.last_stamp = last_stamp;
    Ok(report)
}
