//! The SQLite schema and its migrations.

use std::time::Duration;

use rusqlite::Connection;

use crate::store::error::StoreError;

/// Schema versions, applied in order; `PRAGMA user_version` records the last applied.
const MIGRATIONS: &[&str] = &[
    // 1: object versions, views, entries, status resources.
    r#"
    CREATE TABLE object_versions (
        vid          INTEGER PRIMARY KEY,
        stix_id      TEXT    NOT NULL,
        type         TEXT    NOT NULL,
        spec_version TEXT    NOT NULL,
        -- `modified`, else `created`; -1 for objects without either (SCOs): one version only.
        version_key  INTEGER NOT NULL,
        -- the version as listed: version_key, or added_us for unversioned objects.
        version_us   INTEGER NOT NULL,
        added_us     INTEGER NOT NULL,
        -- stored collections this version was posted to, '\n'-separated ids.
        sources      TEXT    NOT NULL,
        -- 1 for the newest version of its object: the one query collections evaluate.
        is_latest    INTEGER NOT NULL,
        raw          TEXT    NOT NULL
    );
    CREATE UNIQUE INDEX object_versions_by_version ON object_versions (stix_id, version_key);
    CREATE INDEX object_versions_latest ON object_versions (vid) WHERE is_latest = 1;

    CREATE TABLE views (
        view_id      INTEGER PRIMARY KEY,
        collection   TEXT    NOT NULL,
        kind         TEXT    NOT NULL CHECK (kind IN ('stored', 'query')),
        query        TEXT,
        state        TEXT    NOT NULL CHECK (state IN ('active', 'building', 'retired')),
        -- the view a building view will replace.
        replaces     INTEGER,
        -- rebuilds resume after this object_versions.vid.
        progress_vid INTEGER NOT NULL DEFAULT 0,
        size         INTEGER NOT NULL DEFAULT 0,
        created_us   INTEGER NOT NULL
    );
    CREATE INDEX views_by_collection ON views (collection, state);

    CREATE TABLE entries (
        view_id      INTEGER NOT NULL,
        date_added   INTEGER NOT NULL,
        vid          INTEGER NOT NULL,
        stix_id      TEXT    NOT NULL,
        type         TEXT    NOT NULL,
        spec_version TEXT    NOT NULL,
        version_us   INTEGER NOT NULL,
        is_first     INTEGER NOT NULL,
        is_last      INTEGER NOT NULL,
        -- set while a rebuild inserts rows that are new to the collection; re-stamped on switch.
        provisional  INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (view_id, date_added)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX entries_by_version ON entries (view_id, vid);
    CREATE INDEX entries_by_object ON entries (view_id, stix_id, version_us);
    CREATE INDEX entries_by_type ON entries (view_id, type, date_added);
    CREATE INDEX entries_latest ON entries (view_id, date_added) WHERE is_last = 1;
    CREATE INDEX entries_provisional ON entries (view_id) WHERE provisional = 1;

    CREATE TABLE status (
        id          TEXT    PRIMARY KEY,
        api_root    TEXT    NOT NULL,
        created_us  INTEGER NOT NULL,
        body        TEXT    NOT NULL
    );
    CREATE INDEX status_by_age ON status (created_us);
    "#,
    // 2: collections are isolated. A version row is shared only by collections that
    // were posted the very same bytes, so two collections may hold different objects
    // under one (id, modified); `is_latest` marks a version that is its object's
    // latest in at least one stored collection; query views record the stored
    // collections they draw from (NULL for views made before: rebuilt on start); a
    // status resource is readable only by who created it.
    r#"
    DROP INDEX object_versions_by_version;
    CREATE INDEX object_versions_by_version ON object_versions (stix_id, version_key);
    UPDATE object_versions SET is_latest = EXISTS (
        SELECT 1 FROM views v JOIN entries e ON e.view_id = v.view_id AND e.vid = object_versions.vid
        WHERE v.kind = 'stored' AND e.is_last = 1);
    ALTER TABLE views ADD COLUMN sources TEXT;
    ALTER TABLE status ADD COLUMN owner TEXT NOT NULL DEFAULT '';
    "#,
    // 3: feeds (`[[feeds]]`): each feed's checkpoint, and who runs it until when.
    r#"
    CREATE TABLE feed_state (
        name           TEXT    PRIMARY KEY,
        checkpoint     TEXT,
        holder         TEXT    NOT NULL DEFAULT '',
        lease_until_us INTEGER NOT NULL DEFAULT 0
    );
    "#,
    // 4: the record of each feed's runs (JSON of `feed_status::FeedRun`), reported on
    // the admin listener's `GET /feeds`.
    r#"
    ALTER TABLE feed_state ADD COLUMN run TEXT;
    "#,
    // 5: a view's change counter, moved by every change to its existing entries (an
    // update — flags, a restamp — or a removal) in the changing transaction itself, so
    // a page body cached under a (view, change_seq) key is never served once the page
    // could differ, whichever process changed it. Appends are stamped after every
    // entry and leave full pages as they are.
    r#"
    ALTER TABLE views ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
    CREATE TRIGGER entries_updated AFTER UPDATE ON entries BEGIN
        UPDATE views SET change_seq = change_seq + 1 WHERE view_id = OLD.view_id;
    END;
    CREATE TRIGGER entries_deleted AFTER DELETE ON entries BEGIN
        UPDATE views SET change_seq = change_seq + 1 WHERE view_id = OLD.view_id;
    END;
    "#,
    // 6: the number of object versions, kept by the transactions that change it, so
    // `/metrics` reads one row instead of counting the table at every scrape (counted
    // once here, on upgrade).
    r#"
    CREATE TABLE counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO counts (name, n) SELECT 'object_versions', count(*) FROM object_versions;
    CREATE TRIGGER object_versions_added AFTER INSERT ON object_versions BEGIN
        UPDATE counts SET n = n + 1 WHERE name = 'object_versions';
    END;
    CREATE TRIGGER object_versions_removed AFTER DELETE ON object_versions BEGIN
        UPDATE counts SET n = n - 1 WHERE name = 'object_versions';
    END;
    "#,
    // 7: the version count is written once per transaction by the transaction itself
    // (`SqliteIngest::flush_sizes`), not by a trigger per row: a trigger makes each
    // insert a multi-row write that keeps a statement journal (a copy of every page
    // it touches), about a tenth of the CPU of an ingest.
    r#"
    DROP TRIGGER object_versions_added;
    DROP TRIGGER object_versions_removed;
    "#,
    // 8: a query view's entries carry their object's JSON (`raw`, NULL in stored
    // views), so a query page is one range of the view's own rows, read in order like
    // a stored page's entries — no lookup per object into `object_versions`, whose
    // rows for one query view are spread over the whole table (and stay so when the
    // store is larger than memory). Written with the entry (`entries::write_entry`),
    // moved with it on a restamp, gone with it. Costs the view's share of the store.
    r#"
    ALTER TABLE entries ADD COLUMN raw TEXT;
    UPDATE entries SET raw = (SELECT v.raw FROM object_versions v WHERE v.vid = entries.vid)
    WHERE view_id IN (SELECT view_id FROM views WHERE kind = 'query');
    "#,
    // 9: the index of latest versions (what a page lists by default) covers what such
    // a page needs of an entry (its `vid`, and `is_last` itself, which the planner
    // wants in the index to call it covering), so a page looks each object up straight
    // from the index, without a lookup of the entry row per object.
    r#"
    DROP INDEX entries_latest;
    CREATE INDEX entries_latest ON entries (view_id, date_added, vid, is_last) WHERE is_last = 1;
    "#,
    // 10: no index of entries by object id. Ids are random, so each entry written cost
    // that index a page of its own — written to the log, checkpointed, and mostly read
    // first: a third of an ingest's page writes at 1M objects. An object's entries are
    // found through its version rows (`object_versions_by_version`) and one
    // `entries_by_version` probe each (`entries::object_entries!`).
    r#"
    DROP INDEX entries_by_object;
    "#,
];

/// How long the writer waits for another process's write lock.
pub const WRITER_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a reader waits for a lock (recovery of the log by another connection).
const READER_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Open-time settings of every connection.
pub fn configure(conn: &Connection, writer: bool) -> Result<(), StoreError> {
    // The writer waits longer for another process's write (an `import`'s batch on a
    // loaded machine) before answering 503: well within the 60 s request timeout.
    conn.busy_timeout(if writer {
        WRITER_BUSY_TIMEOUT
    } else {
        READER_BUSY_TIMEOUT
    })?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // Page cache per connection: the writer gets more (ingest touches indexes all over);
    // readers scan narrow index ranges. No mmap: each connection's mapping would count
    // the same file pages again in the process's RSS (measured: 1 GiB vs 343 MiB at 1M).
    conn.pragma_update(None, "cache_size", if writer { -32_000 } else { -8_000 })?;
    conn.pragma_update(None, "mmap_size", 0)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    if writer {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit is on disk before we answer 202.
        conn.pragma_update(None, "synchronous", "FULL")?;
    } else {
        conn.pragma_update(None, "query_only", true)?;
    }
    Ok(())
}

/// Apply pending migrations; refuse a database written by a newer binary.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::Database(format!(
            "the store has schema version {current}, newer than this binary understands ({known}); \
             upgrade taxiway-server"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    super::statistics::refresh(conn)?;
    Ok(())
}
