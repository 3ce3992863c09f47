//! The PostgreSQL schema and its versioned migrations.
//!
//! Migrations run at start-up inside a session advisory lock, so replicas starting
//! together apply each one exactly once; `schema_version` records the last applied.
//! A database written by a newer binary is refused.

use deadpool_postgres::Client;

use crate::store::error::StoreError;

/// Advisory-lock namespace of Taxiway ("TXWY"); the second key says what is locked.
pub const LOCK_NAMESPACE: i32 = 0x5458_5759;
/// Second key of the migration lock.
pub const MIGRATION_LOCK: i32 = 0;
/// Namespace of per-view rebuild locks (the second key is the view id).
pub const REBUILD_NAMESPACE: i32 = 0x5458_5756;

/// Schema versions, applied in order.
const MIGRATIONS: &[&str] = &[
    // 1: object versions, views, entries, status resources, the clock.
    r#"
    CREATE TABLE object_versions (
        vid          bigserial PRIMARY KEY,
        stix_id      text    NOT NULL,
        type         text    NOT NULL,
        spec_version text    NOT NULL,
        version_key  bigint  NOT NULL,
        version_us   bigint  NOT NULL,
        added_us     bigint  NOT NULL,
        sources      text    NOT NULL,
        is_latest    boolean NOT NULL,
        raw          text    NOT NULL
    );
    CREATE UNIQUE INDEX object_versions_by_version ON object_versions (stix_id, version_key);
    CREATE INDEX object_versions_latest ON object_versions (vid) WHERE is_latest;
    CREATE INDEX object_versions_latest_by_id ON object_versions (stix_id) WHERE is_latest;

    CREATE TABLE views (
        view_id      bigserial PRIMARY KEY,
        collection   text    NOT NULL,
        kind         text    NOT NULL CHECK (kind IN ('stored', 'query')),
        query        text,
        state        text    NOT NULL CHECK (state IN ('active', 'building', 'retired')),
        replaces     bigint,
        progress_vid bigint  NOT NULL DEFAULT 0,
        size         bigint  NOT NULL DEFAULT 0,
        -- names `source:` terms may use for a stored collection, '\n'-separated.
        names        text    NOT NULL DEFAULT '',
        created_us   bigint  NOT NULL,
        retired_us   bigint
    );
    CREATE INDEX views_by_collection ON views (collection, state);

    CREATE TABLE entries (
        view_id      bigint  NOT NULL,
        date_added   bigint  NOT NULL,
        vid          bigint  NOT NULL,
        stix_id      text    NOT NULL,
        type         text    NOT NULL,
        spec_version text    NOT NULL,
        version_us   bigint  NOT NULL,
        is_first     boolean NOT NULL,
        is_last      boolean NOT NULL,
        provisional  boolean NOT NULL DEFAULT false,
        PRIMARY KEY (view_id, date_added)
    );
    CREATE UNIQUE INDEX entries_by_version ON entries (view_id, vid);
    CREATE INDEX entries_by_object ON entries (view_id, stix_id, version_us);
    CREATE INDEX entries_by_type ON entries (view_id, type, date_added);
    CREATE INDEX entries_latest ON entries (view_id, date_added) WHERE is_last;
    CREATE INDEX entries_provisional ON entries (view_id) WHERE provisional;

    CREATE TABLE status (
        id          text    PRIMARY KEY,
        api_root    text    NOT NULL,
        created_us  bigint  NOT NULL,
        body        text    NOT NULL
    );
    CREATE INDEX status_by_age ON status (created_us);

    -- One row. `last`: the last date_added handed out; every write transaction locks
    -- this row first (FOR UPDATE), so writes commit in stamp order across replicas.
    -- `registry_gen` changes whenever the views change.
    CREATE TABLE clock (
        one          boolean PRIMARY KEY DEFAULT true CHECK (one),
        last         bigint  NOT NULL,
        registry_gen bigint  NOT NULL
    );
    INSERT INTO clock (one, last, registry_gen) VALUES (true, 0, 0);

    -- One row: when relative-time maintenance last ran (on any replica).
    CREATE TABLE maintenance (
        one          boolean PRIMARY KEY DEFAULT true CHECK (one),
        last_us      bigint  NOT NULL
    );
    INSERT INTO maintenance (one, last_us) VALUES (true, 0);
    "#,
    // 2: collections are isolated (as SQLite's migration 2): a version row is shared
    // only by collections posted the very same bytes; `is_latest` marks a version that
    // is its object's latest in at least one stored collection; query views record the
    // stored collections they draw from (NULL before: rebuilt); statuses have an owner.
    // Ingest no longer looks up "the" latest version of an object (there is one per
    // stored collection, found in its entries): the partial index for that goes.
    r#"
    DROP INDEX object_versions_by_version;
    CREATE INDEX object_versions_by_version ON object_versions (stix_id, version_key);
    DROP INDEX object_versions_latest_by_id;
    UPDATE object_versions o SET is_latest = EXISTS (
        SELECT 1 FROM views v JOIN entries e ON e.view_id = v.view_id AND e.vid = o.vid
        WHERE v.kind = 'stored' AND e.is_last);
    ALTER TABLE views ADD COLUMN sources text;
    ALTER TABLE status ADD COLUMN owner text NOT NULL DEFAULT '';
    "#,
    // 3: feeds (`[[feeds]]`): each feed's checkpoint, and which replica runs it until
    // when (a lease, so each feed runs on one replica at a time).
    r#"
    CREATE TABLE feed_state (
        name           text   PRIMARY KEY,
        checkpoint     text,
        holder         text   NOT NULL DEFAULT '',
        lease_until_us bigint NOT NULL DEFAULT 0
    );
    "#,
    // 4: the record of each feed's runs (JSON of `feed_status::FeedRun`), reported on
    // the admin listener's `GET /feeds` by whichever replica is asked.
    r#"
    ALTER TABLE feed_state ADD COLUMN run text;
    "#,
    // 5: a view's change counter, moved by every change to its existing entries (an
    // update — flags, a restamp — or a removal) in the changing transaction itself, so
    // that a page body cached by any replica under a (view, change_seq) key is never
    // served once the page could differ. Appends are stamped after every entry (the
    // clock row) and leave full pages as they are. Statement triggers: one counter
    // update per statement whatever the rows it touched.
    r#"
    ALTER TABLE views ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;
    CREATE FUNCTION taxiway_entries_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
        UPDATE views SET change_seq = change_seq + 1
         WHERE view_id IN (SELECT DISTINCT view_id FROM changed_entries);
        RETURN NULL;
    END
    $fn$;
    CREATE TRIGGER entries_updated AFTER UPDATE ON entries
        REFERENCING OLD TABLE AS changed_entries
        FOR EACH STATEMENT EXECUTE FUNCTION taxiway_entries_changed();
    CREATE TRIGGER entries_deleted AFTER DELETE ON entries
        REFERENCING OLD TABLE AS changed_entries
        FOR EACH STATEMENT EXECUTE FUNCTION taxiway_entries_changed();
    "#,
    // 6: a query view keeps its own copy of its objects' JSON (as SQLite's migration
    // 7), so a query page reads its view's rows instead of one lookup per object into
    // the whole `object_versions` table. Kept by statement triggers on `entries`,
    // whatever path adds or removes an entry, on any replica.
    r#"
    CREATE TABLE view_objects (
        view_id bigint NOT NULL,
        vid     bigint NOT NULL,
        raw     text   NOT NULL,
        PRIMARY KEY (view_id, vid)
    );
    CREATE FUNCTION taxiway_view_objects_added() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
        INSERT INTO view_objects (view_id, vid, raw)
        SELECT n.view_id, n.vid, o.raw FROM added_entries n
          JOIN views w ON w.view_id = n.view_id AND w.kind = 'query'
          JOIN object_versions o ON o.vid = n.vid;
        RETURN NULL;
    END
    $fn$;
    CREATE FUNCTION taxiway_view_objects_removed() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
        DELETE FROM view_objects vo USING removed_entries r
         WHERE vo.view_id = r.view_id AND vo.vid = r.vid;
        RETURN NULL;
    END
    $fn$;
    CREATE TRIGGER view_objects_added AFTER INSERT ON entries
        REFERENCING NEW TABLE AS added_entries
        FOR EACH STATEMENT EXECUTE FUNCTION taxiway_view_objects_added();
    CREATE TRIGGER view_objects_removed AFTER DELETE ON entries
        REFERENCING OLD TABLE AS removed_entries
        FOR EACH STATEMENT EXECUTE FUNCTION taxiway_view_objects_removed();
    INSERT INTO view_objects (view_id, vid, raw)
    SELECT e.view_id, e.vid, o.raw FROM views w
      JOIN entries e ON e.view_id = w.view_id
      JOIN object_versions o ON o.vid = e.vid
     WHERE w.kind = 'query'
     ORDER BY e.view_id, e.vid;
    "#,
    // 7: no index of entries by object id (as SQLite's migration 10). Ids are random,
    // so each new entry cost that index a leaf page of its own: after every checkpoint
    // a whole page image in the WAL, and a read once the database outgrew its buffers
    // — half the ingest rate at 10M objects. An object's entries are asked through its
    // version rows (`object_versions_by_version`), each then one `entries_by_version`
    // probe (`entries::object_vids!`). Replicas of an older release still running
    // against the database read entries by id the old way, slowly, until replaced.
    r#"
    DROP INDEX entries_by_object;
    "#,
    // 8: the index of object versions by id is a hash index. Every question asked of it
    // is "the version rows of this id" (equality, a handful of rows); the B-tree kept
    // the id's text and version key per row where a hash index keeps a 4-byte code:
    // less than half the pages (32 against 74 MB per million ids) for the shared
    // buffers to hold and — ids are random, each new object still touches one page of
    // it — fewer of them written whole to the WAL after each checkpoint. PostgreSQL
    // logs hash indexes since version 10. Built in ~3 s per million version rows.
    r#"
    DROP INDEX object_versions_by_version;
    CREATE INDEX object_versions_by_id ON object_versions USING hash (stix_id);
    "#,
];

/// The schema version this binary writes.
pub fn known_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Apply pending migrations under the migration lock; refuse a newer database.
pub async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    client
        .execute(
            "SELECT pg_advisory_lock($1, $2)",
            &[&LOCK_NAMESPACE, &MIGRATION_LOCK],
        )
        .await?;
    let result = migrate_locked(client).await;
    let unlock = client
        .execute(
            "SELECT pg_advisory_unlock($1, $2)",
            &[&LOCK_NAMESPACE, &MIGRATION_LOCK],
        )
        .await;
    result?;
    unlock?;
    Ok(())
}

async fn migrate_locked(client: &mut Client) -> Result<(), StoreError> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version bigint NOT NULL)")
        .await?;
    let current: Option<i64> = client
        .query_opt("SELECT max(version) FROM schema_version", &[])
        .await?
        .and_then(|r| r.get(0));
    let current = current.unwrap_or(0);
    let known = known_version();
    if current > known {
        return Err(StoreError::Database(format!(
            "the database has schema version {current}, newer than this binary understands \
             ({known}); upgrade taxiway-server (refusing to start)"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = (i + 1) as i64;
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute("DELETE FROM schema_version", &[]).await?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(version, "database schema migrated");
    }
    Ok(())
}
