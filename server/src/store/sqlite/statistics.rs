//! The query planner's statistics (`sqlite_stat1`), written by the store from the
//! counters it already keeps, never gathered by `ANALYZE`.
//!
//! `ANALYZE` counts every row of every index it looks at, even under `analysis_limit`,
//! and `PRAGMA optimize` runs it on any table that has no statistics yet — a store fresh
//! from `import`. Measured on a 10M-object store with a cold page cache: 60 s for
//! `object_versions` and 120 s for `entries`, at start-up and again in a maintenance
//! pass holding the writer's lock. The shape of this schema's indexes is known (ids are
//! unique, a version has one row per view, a view's rows spread over a handful of
//! types), so the statistics follow from three numbers: object versions (`counts`),
//! entries and views (`views.size`). Written at open and by maintenance when a number
//! has moved by more than half, in one small transaction.
//!
//! The format (SQLite's file format, "The sqlite_stat1 table"): per index, the number
//! of rows, then the average number of rows sharing each prefix of its columns.

use rusqlite::{params, Connection, OptionalExtension};

use crate::store::error::StoreError;

/// Statistics are rewritten once a row count has grown or shrunk by this factor.
const DRIFT: f64 = 1.5;

/// The smallest store the statistics describe. A plan made for a small table (a scan of
/// `object_versions` for each page) must never be what a connection keeps using as the
/// store grows, so every store is planned as at least a million-row one — SQLite's own
/// assumption for a table it knows nothing about.
const FLOOR: u64 = 1_000_000;

/// Distinct STIX types a view's rows are assumed to spread over (`entries_by_type`).
const TYPES_PER_VIEW: u64 = 10;

/// What the statistics are computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Census {
    /// Object versions (`counts`).
    pub object_versions: u64,
    /// Entry rows of every view (the sum of `views.size`).
    pub entries: u64,
    /// Views (rows of `views`).
    pub views: u64,
}

impl Census {
    /// Read the counters (no table is scanned: `views` has a row per collection view).
    pub fn take(conn: &Connection) -> Result<Census, StoreError> {
        let object_versions: Option<i64> = conn
            .query_row(
                "SELECT n FROM counts WHERE name = 'object_versions'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let (views, entries): (i64, i64) = conn.query_row(
            "SELECT count(*), coalesce(sum(size), 0) FROM views",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(Census {
            object_versions: object_versions.unwrap_or(0).max(0) as u64,
            entries: entries.max(0) as u64,
            views: views.max(0) as u64,
        })
    }

    /// The `sqlite_stat1` rows: `(table, index, stat)`.
    pub fn rows(&self) -> Vec<(&'static str, &'static str, String)> {
        let versions = self.object_versions.max(FLOOR);
        let entries = self.entries.max(FLOOR);
        let per_view = (entries / self.views.max(1)).max(1);
        let per_type = (per_view / TYPES_PER_VIEW).max(1);
        vec![
            // (stix_id, version_key): an object has about one version; unique.
            (
                "object_versions",
                "object_versions_by_version",
                format!("{versions} 1 1"),
            ),
            (
                "object_versions",
                "object_versions_latest",
                format!("{versions} 1"),
            ),
            (
                "views",
                "views_by_collection",
                format!("{} 1 1", self.views.max(1)),
            ),
            // The primary key (view_id, date_added), and the other indexes led by view_id.
            ("entries", "entries", format!("{entries} {per_view} 1")),
            (
                "entries",
                "entries_by_version",
                format!("{entries} {per_view} 1"),
            ),
            (
                "entries",
                "entries_by_type",
                format!("{entries} {per_view} {per_type} 1"),
            ),
            (
                "entries",
                "entries_latest",
                format!("{entries} {per_view} 1 1 1"),
            ),
            // Rows of a rebuild in progress: few, against a whole view.
            ("entries", "entries_provisional", "1 1".to_string()),
        ]
    }

    /// Whether statistics made from `recorded` misdescribe this census.
    fn drifted_from(&self, recorded: &Census) -> bool {
        let apart = |a: u64, b: u64| {
            let (a, b) = (a.max(FLOOR) as f64, b.max(FLOOR) as f64);
            a / b > DRIFT || b / a > DRIFT
        };
        apart(self.object_versions, recorded.object_versions)
            || apart(self.entries, recorded.entries)
            || self.views.max(1) != recorded.views.max(1)
    }
}

/// Write the statistics if there are none, or if the store has drifted from those
/// written; the connection's planner reloads them. Other connections read them when
/// they open.
pub fn refresh(conn: &Connection) -> Result<bool, StoreError> {
    let census = Census::take(conn)?;
    if let Some(recorded) = recorded(conn)? {
        if !census.drifted_from(&recorded) {
            return Ok(false);
        }
    }
    write(conn, &census)?;
    Ok(true)
}

/// Replace every statistic (SQLite's own included) with those of `census`.
pub fn write(conn: &Connection, census: &Census) -> Result<(), StoreError> {
    if !has_table(conn, "sqlite_stat1")? {
        // Creates the statistics tables (analysing only the schema table, a few rows).
        conn.execute_batch("ANALYZE sqlite_schema")?;
    }
    let has_stat4 = has_table(conn, "sqlite_stat4")?;
    conn.execute_batch("SAVEPOINT statistics")?;
    let written = (|| -> Result<(), StoreError> {
        conn.execute("DELETE FROM sqlite_stat1", [])?;
        if has_stat4 {
            // Samples from an earlier `ANALYZE` would describe another size.
            conn.execute("DELETE FROM sqlite_stat4", [])?;
        }
        let mut insert =
            conn.prepare("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?1, ?2, ?3)")?;
        for (table, index, stat) in census.rows() {
            insert.execute(params![table, index, stat])?;
        }
        Ok(())
    })();
    match written {
        Ok(()) => conn.execute_batch("RELEASE statistics")?,
        Err(e) => {
            conn.execute_batch("ROLLBACK TO statistics; RELEASE statistics")?;
            return Err(e);
        }
    }
    // Reload this connection's statistics.
    conn.execute_batch("ANALYZE sqlite_schema")?;
    Ok(())
}

/// The census the recorded statistics were made from, if they are this module's.
fn recorded(conn: &Connection) -> Result<Option<Census>, StoreError> {
    if !has_table(conn, "sqlite_stat1")? {
        return Ok(None);
    }
    let leading = |idx: &str| -> Result<Option<u64>, StoreError> {
        let stat: Option<String> = conn
            .query_row("SELECT stat FROM sqlite_stat1 WHERE idx = ?1", [idx], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(stat.and_then(|s| s.split(' ').next().and_then(|n| n.parse().ok())))
    };
    let (Some(object_versions), Some(entries), Some(views)) = (
        leading("object_versions_by_version")?,
        leading("entries_by_version")?,
        leading("views_by_collection")?,
    ) else {
        return Ok(None);
    };
    Ok(Some(Census {
        object_versions,
        entries,
        views,
    }))
}

/// Whether the database has a table named `name`.
fn has_table(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::{refresh, write, Census};
    use crate::store::sqlite::schema;

    fn store() -> Connection {
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        schema::migrate(&mut conn).expect("migrate");
        conn
    }

    fn stat(conn: &Connection, idx: &str) -> String {
        conn.query_row("SELECT stat FROM sqlite_stat1 WHERE idx = ?1", [idx], |r| {
            r.get(0)
        })
        .expect("a statistic")
    }

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("plan");
        let details: Vec<String> = stmt
            .query_map([], |r| r.get(3))
            .expect("plan rows")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        details.join("; ")
    }

    #[test]
    fn statistics_follow_the_counters() {
        let census = Census {
            object_versions: 10_000_000,
            entries: 10_100_000,
            views: 3,
        };
        let rows = census.rows();
        let find = |idx: &str| {
            rows.iter()
                .find(|(_, i, _)| *i == idx)
                .map(|(_, _, s)| s.clone())
                .expect("row")
        };
        assert_eq!(find("object_versions_by_version"), "10000000 1 1");
        assert_eq!(find("entries_by_version"), "10100000 3366666 1");
        assert_eq!(find("entries_by_type"), "10100000 3366666 336666 1");
        assert_eq!(find("entries_latest"), "10100000 3366666 1 1 1");
        // An empty store is planned as a million-row one.
        let empty = Census {
            object_versions: 0,
            entries: 0,
            views: 0,
        };
        let rows = empty.rows();
        assert!(rows
            .iter()
            .all(|(_, _, s)| s.split(' ').all(|n| n.parse::<u64>().is_ok_and(|n| n >= 1))));
        assert!(rows.contains(&(
            "entries",
            "entries_by_type",
            "1000000 1000000 100000 1".to_string()
        )));
    }

    #[test]
    fn an_opened_store_has_statistics_and_rewrites_them_only_on_drift() {
        let conn = store();
        // `migrate` wrote them: an empty store, no views, planned at the floor.
        assert_eq!(stat(&conn, "object_versions_by_version"), "1000000 1 1");
        conn.execute_batch("UPDATE counts SET n = 1400000 WHERE name = 'object_versions'")
            .expect("grow a little");
        assert!(!refresh(&conn).expect("refresh"), "within the drift");
        conn.execute_batch(
            "UPDATE counts SET n = 2000000 WHERE name = 'object_versions';
             INSERT INTO views (view_id, collection, kind, state, size, created_us)
                 VALUES (1, 'c', 'stored', 'active', 2000000, 0);",
        )
        .expect("grow");
        assert!(refresh(&conn).expect("refresh"), "a new view, 2M versions");
        assert_eq!(stat(&conn, "object_versions_by_version"), "2000000 1 1");
        assert_eq!(stat(&conn, "entries_by_version"), "2000000 2000000 1");
        conn.execute_batch("UPDATE counts SET n = 2900000 WHERE name = 'object_versions'")
            .expect("grow a little");
        assert!(!refresh(&conn).expect("refresh"), "within the drift");
        conn.execute_batch("UPDATE counts SET n = 3100000 WHERE name = 'object_versions'")
            .expect("grow more");
        assert!(refresh(&conn).expect("refresh"), "past the drift");
        assert_eq!(stat(&conn, "object_versions_by_version"), "3100000 1 1");
    }

    #[test]
    fn statistics_replace_those_of_analyze() {
        let conn = store();
        conn.execute_batch(
            "INSERT INTO views (view_id, collection, kind, state, size, created_us)
                 VALUES (1, 'c', 'stored', 'active', 0, 0);
             ANALYZE;",
        )
        .expect("analyze");
        let census = Census {
            object_versions: 5,
            entries: 5,
            views: 1,
        };
        write(&conn, &census).expect("write");
        let tables: Vec<String> = conn
            .prepare("SELECT DISTINCT tbl FROM sqlite_stat1 ORDER BY tbl")
            .expect("select")
            .query_map([], |r| r.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(tables, ["entries", "object_versions", "views"]);
    }

    #[test]
    fn at_ten_million_objects_the_planner_keeps_to_the_narrow_indexes() {
        let conn = store();
        write(
            &conn,
            &Census {
                object_versions: 10_000_000,
                entries: 10_100_000,
                views: 3,
            },
        )
        .expect("write");
        // A rebuild's switch reads only the provisional rows.
        assert!(plan(
            &conn,
            "SELECT date_added FROM entries WHERE view_id = 1 AND provisional = 1 ORDER BY date_added"
        )
        .contains("entries_provisional"));
        // An object's versions by id.
        assert!(plan(
            &conn,
            "SELECT vid FROM object_versions WHERE stix_id = 'x' AND version_key = 1"
        )
        .contains("object_versions_by_version"));
        // A page of latest versions by date, from the covering index.
        let page = plan(
            &conn,
            "SELECT date_added, vid FROM entries WHERE view_id = 1 AND is_last = 1 \
             AND date_added > 5 ORDER BY date_added LIMIT 1000",
        );
        assert!(page.contains("entries_latest"), "{page}");
        // A page of one type.
        let typed = plan(
            &conn,
            "SELECT date_added, vid FROM entries WHERE view_id = 1 AND type = 'indicator' \
             AND date_added > 5 ORDER BY date_added LIMIT 1000",
        );
        assert!(typed.contains("entries_by_type"), "{typed}");
    }
}
