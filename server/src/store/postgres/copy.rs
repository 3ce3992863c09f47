//! `taxiway-server migrate --from-sqlite`: copy an embedded store into an empty
//! PostgreSQL database, keeping object bytes, view membership with its exact
//! `date_added`, view ids, status resources and feeds' checkpoints and run records.

use std::path::Path;

use futures::future::try_join_all;
use rusqlite::{params, Connection, OpenFlags};
use tokio_postgres::types::ToSql;

use super::handle::PostgresStore;
use super::tx::Tx;
use crate::store::error::StoreError;
use crate::store::sqlite::db_file::DB_FILE;

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
    /// Feeds whose checkpoint and run record were copied.
    pub feeds: u64,
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
    let mut source = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    source.busy_timeout(std::time::Duration::from_secs(30))?;
    source.execute_batch("BEGIN")?;

    let mut client = target.client().await?;
    let tx = client.transaction().await?;
    // Lock the clock row: no replica writes while we copy.
    tx.query_one("SELECT last FROM clock FOR UPDATE", &[])
        .await?;
    ensure_empty(&tx).await?;
    let mut report = copy_tables(&mut source, &tx).await?;
    source.execute_batch("COMMIT")?;

    let max_added: Option<i64> = tx
        .query_one("SELECT max(added_us) FROM object_versions", &[])
        .await?
        .get(0);
    report.last_stamp = report.last_stamp.max(max_added.unwrap_or(0));
    tx.execute(
        "UPDATE clock SET last = greatest(last, $1), registry_gen = registry_gen + 1",
        &[&report.last_stamp],
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
    Ok(report)
}

/// Refuse a target that already holds objects, views or statuses.
async fn ensure_empty(tx: &Tx<'_>) -> Result<(), StoreError> {
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
    Ok(())
}

/// Copy every table, parents first: object versions, views (retired ones are not
/// worth copying), their entries, status resources, feeds' state. `last_stamp` is the
/// largest `date_added` copied.
async fn copy_tables(source: &mut Connection, tx: &Tx<'_>) -> Result<CopyReport, StoreError> {
    let mut report = CopyReport {
        object_versions: copy_table::<VersionRecord>(source, tx, None, |_| ()).await?,
        ..Default::default()
    };
    let mut views = Vec::new();
    report.views = copy_table::<ViewRecord>(source, tx, None, |chunk| {
        views.extend(chunk.iter().map(|v| v.view_id))
    })
    .await?;
    for view_id in views {
        report.entries += copy_table::<EntryRecord>(source, tx, Some(view_id), |chunk| {
            if let Some(last) = chunk.last() {
                report.last_stamp = report.last_stamp.max(last.date_added);
            }
        })
        .await?;
    }
    report.statuses = copy_table::<StatusRecord>(source, tx, None, |_| ()).await?;
    report.feeds = copy_feed_state(read_feed_state(source)?, tx).await?;
    Ok(report)
}

/// A feed's row of `feed_state`, without its lease (the replicas take leases afresh).
struct FeedStateRecord {
    name: String,
    checkpoint: Option<String>,
    run: Option<String>,
}

/// Every feed's checkpoint and run record (one row per configured feed: few). A store
/// older than feeds (schema 3) has none; one older than run records (4) has no `run`.
fn read_feed_state(source: &Connection) -> Result<Vec<FeedStateRecord>, StoreError> {
    let version: i64 = source.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let select = match version {
        ..=2 => return Ok(Vec::new()),
        3 => "SELECT name, checkpoint, NULL AS run FROM feed_state ORDER BY name",
        _ => "SELECT name, checkpoint, run FROM feed_state ORDER BY name",
    };
    let mut select = source.prepare(select)?;
    let rows = select.query_map([], |r| {
        Ok(FeedStateRecord {
            name: r.get("name")?,
            checkpoint: r.get("checkpoint")?,
            run: r.get("run")?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Write feeds' checkpoints and run records, so each feed resumes where it stopped.
/// A feed a replica already leased in the target keeps its lease. Returns how many.
async fn copy_feed_state(feeds: Vec<FeedStateRecord>, tx: &Tx<'_>) -> Result<u64, StoreError> {
    for feed in &feeds {
        tx.execute(
            "INSERT INTO feed_state (name, checkpoint, run) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET checkpoint = excluded.checkpoint, \
               run = excluded.run",
            &[&feed.name, &feed.checkpoint, &feed.run],
        )
        .await?;
    }
    Ok(feeds.len() as u64)
}

/// A row copied from the SQLite store to the same table in PostgreSQL.
trait Record: Sized + Sync {
    /// Where the next chunk starts after (the SQLite order of the rows).
    type Key: rusqlite::ToSql + Send;
    /// The key before every row.
    const START: Self::Key;
    /// Reads a chunk: `?1` the key to start after, `?2` the chunk size, `?3` the
    /// scope passed to [`copy_table`] (if any).
    const SELECT: &'static str;
    /// Writes one row, its columns in [`Record::values`] order.
    const INSERT: &'static str;
    /// One row of [`Record::SELECT`].
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
    /// Its key.
    fn key(&self) -> Self::Key;
    /// The parameters of [`Record::INSERT`].
    fn values(&self) -> Vec<&(dyn ToSql + Sync)>;
}

/// Copy the rows of one table (within `scope`: a view's entries) chunk by chunk: each chunk of [`CHUNK`]
/// rows is read in order and inserted with pipelined statements, then shown to
/// `copied`. Returns how many rows were copied.
async fn copy_table<R: Record>(
    source: &mut Connection,
    tx: &Tx<'_>,
    scope: Option<i64>,
    mut copied: impl FnMut(&[R]),
) -> Result<u64, StoreError> {
    let insert = tx.prepare(R::INSERT).await?;
    let mut after = R::START;
    let mut count = 0;
    loop {
        let rows = read_chunk::<R>(source, &after, scope)?;
        let Some(last) = rows.last().map(R::key) else {
            break;
        };
        let insert = &insert;
        try_join_all(
            rows.iter()
                .map(|r| async move { tx.execute(insert, &r.values()).await }),
        )
        .await?;
        count += rows.len() as u64;
        copied(&rows);
        after = last;
    }
    Ok(count)
}

/// Up to [`CHUNK`] rows after `after` (within `scope`).
fn read_chunk<R: Record>(
    source: &Connection,
    after: &R::Key,
    scope: Option<i64>,
) -> Result<Vec<R>, StoreError> {
    let mut select = source.prepare_cached(R::SELECT)?;
    let rows = match scope {
        Some(scope) => select.query_map(params![after, CHUNK, scope], R::read)?,
        None => select.query_map(params![after, CHUNK], R::read)?,
    };
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A row of `object_versions`.
struct VersionRecord {
    vid: i64,
    stix_id: String,
    kind: String,
    spec_version: String,
    version_key: i64,
    version_us: i64,
    added_us: i64,
    sources: String,
    is_latest: bool,
    raw: String,
}

impl Record for VersionRecord {
    type Key = i64;
    const START: i64 = i64::MIN;
    const SELECT: &'static str = "SELECT vid, stix_id, type, spec_version, version_key, \
        version_us, added_us, sources, is_latest, raw FROM object_versions \
        WHERE vid > ?1 ORDER BY vid LIMIT ?2";
    const INSERT: &'static str = "INSERT INTO object_versions (vid, stix_id, type, \
        spec_version, version_key, version_us, added_us, sources, is_latest, raw) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(VersionRecord {
            vid: r.get("vid")?,
            stix_id: r.get("stix_id")?,
            kind: r.get("type")?,
            spec_version: r.get("spec_version")?,
            version_key: r.get("version_key")?,
            version_us: r.get("version_us")?,
            added_us: r.get("added_us")?,
            sources: r.get("sources")?,
            is_latest: r.get("is_latest")?,
            raw: r.get("raw")?,
        })
    }

    fn key(&self) -> i64 {
        self.vid
    }

    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.vid,
            &self.stix_id,
            &self.kind,
            &self.spec_version,
            &self.version_key,
            &self.version_us,
            &self.added_us,
            &self.sources,
            &self.is_latest,
            &self.raw,
        ]
    }
}

/// A row of `views` (not retired). A building view whose old view is not copied
/// (retired) replaces nothing.
struct ViewRecord {
    view_id: i64,
    collection: String,
    kind: String,
    query: Option<String>,
    state: String,
    replaces: Option<i64>,
    progress_vid: i64,
    size: i64,
    created_us: i64,
    sources: Option<String>,
}

impl Record for ViewRecord {
    type Key = i64;
    const START: i64 = i64::MIN;
    const SELECT: &'static str = "SELECT view_id, collection, kind, query, state, \
        (SELECT o.view_id FROM views o WHERE o.view_id = v.replaces AND o.state != 'retired') \
        AS replaces, progress_vid, size, created_us, sources FROM views v \
        WHERE state != 'retired' AND view_id > ?1 ORDER BY view_id LIMIT ?2";
    const INSERT: &'static str = "INSERT INTO views (view_id, collection, kind, query, state, \
        replaces, progress_vid, size, created_us, sources) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(ViewRecord {
            view_id: r.get("view_id")?,
            collection: r.get("collection")?,
            kind: r.get("kind")?,
            query: r.get("query")?,
            state: r.get("state")?,
            replaces: r.get("replaces")?,
            progress_vid: r.get("progress_vid")?,
            size: r.get("size")?,
            created_us: r.get("created_us")?,
            sources: r.get("sources")?,
        })
    }

    fn key(&self) -> i64 {
        self.view_id
    }

    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.view_id,
            &self.collection,
            &self.kind,
            &self.query,
            &self.state,
            &self.replaces,
            &self.progress_vid,
            &self.size,
            &self.created_us,
            &self.sources,
        ]
    }
}

/// A row of `entries` (scope: its view).
struct EntryRecord {
    view_id: i64,
    date_added: i64,
    vid: i64,
    stix_id: String,
    kind: String,
    spec_version: String,
    version_us: i64,
    is_first: bool,
    is_last: bool,
    provisional: bool,
}

impl Record for EntryRecord {
    type Key = i64;
    const START: i64 = i64::MIN;
    const SELECT: &'static str = "SELECT view_id, date_added, vid, stix_id, type, spec_version, \
        version_us, is_first, is_last, provisional FROM entries \
        WHERE view_id = ?3 AND date_added > ?1 ORDER BY date_added LIMIT ?2";
    const INSERT: &'static str = "INSERT INTO entries (view_id, date_added, vid, stix_id, type, \
        spec_version, version_us, is_first, is_last, provisional) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(EntryRecord {
            view_id: r.get("view_id")?,
            date_added: r.get("date_added")?,
            vid: r.get("vid")?,
            stix_id: r.get("stix_id")?,
            kind: r.get("type")?,
            spec_version: r.get("spec_version")?,
            version_us: r.get("version_us")?,
            is_first: r.get("is_first")?,
            is_last: r.get("is_last")?,
            provisional: r.get("provisional")?,
        })
    }

    fn key(&self) -> i64 {
        self.date_added
    }

    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.view_id,
            &self.date_added,
            &self.vid,
            &self.stix_id,
            &self.kind,
            &self.spec_version,
            &self.version_us,
            &self.is_first,
            &self.is_last,
            &self.provisional,
        ]
    }
}

/// A row of `status`.
struct StatusRecord {
    id: String,
    api_root: String,
    created_us: i64,
    body: String,
    owner: String,
}

impl Record for StatusRecord {
    type Key = String;
    const START: String = String::new();
    const SELECT: &'static str = "SELECT id, api_root, created_us, body, owner FROM status \
        WHERE id > ?1 ORDER BY id LIMIT ?2";
    const INSERT: &'static str =
        "INSERT INTO status (id, api_root, created_us, body, owner) VALUES ($1, $2, $3, $4, $5)";

    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(StatusRecord {
            id: r.get("id")?,
            api_root: r.get("api_root")?,
            created_us: r.get("created_us")?,
            body: r.get("body")?,
            owner: r.get("owner")?,
        })
    }

    fn key(&self) -> String {
        self.id.clone()
    }

    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.id,
            &self.api_root,
            &self.created_us,
            &self.body,
            &self.owner,
        ]
    }
}
