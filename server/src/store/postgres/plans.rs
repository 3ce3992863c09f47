//! The statements that ask for one object's entries in a view or for its version rows,
//! listed for the plan test (`server/tests/store.rs`,
//! `pg_an_objects_entries_are_found_by_version`): entries have no index by object id
//! (schema step 7), so each must reach them through the object's version rows
//! (`object_versions_by_id`, a hash index since step 8) and `entries_by_version
//! (view_id, vid)` — a plan that scans a view's entries, or the version rows, instead
//! is O(collection) per posted object.

use super::entries::{INSERT_ENTRY, REMOVE_ENTRY};
use super::ingest::{HELD_IN, LAST_IN, LAST_IN_EACH, PROBE, STORED_AMONG, VERSIONS_IN};
use super::read::{listing_sql, objects_page_sql};
use super::views::OBJECTS_HELD;
use crate::store::listing::{Listing, VersionMatch};

/// A statement and arguments to `EXECUTE` it with (SQL literals, in order).
#[derive(Debug, Clone)]
pub struct ObjectStatement {
    /// What it is for.
    pub name: &'static str,
    /// Its text, with `$n` parameters.
    pub sql: String,
    /// Literal arguments of the right types, for `EXPLAIN EXECUTE`.
    pub args: &'static str,
}

/// Every statement of the store that asks for an object's entries or version rows by
/// its id.
#[doc(hidden)]
pub fn object_statements() -> Vec<ObjectStatement> {
    let by_id = Listing {
        ids: vec!["indicator--0".into()],
        types: Vec::new(),
        versions: VersionMatch::all(),
        spec_versions: Vec::new(),
        after: None,
        limit: 1000,
        with_raw: false,
        max_bytes: None,
    };
    let statement = |name, sql: &str, args| ObjectStatement {
        name,
        sql: sql.to_string(),
        args,
    };
    vec![
        statement(
            "insert an entry",
            INSERT_ENTRY,
            "1, 2, 3, 'indicator--0', 'indicator', '2.1', 4, false",
        ),
        statement("remove an entry", REMOVE_ENTRY, "1, 2, 'indicator--0'"),
        statement(
            "probe posted versions",
            PROBE,
            "1, ARRAY['indicator--0'], ARRAY[4::bigint], ARRAY[4::bigint], ARRAY['{}']",
        ),
        statement(
            "ids stored anywhere",
            STORED_AMONG,
            "ARRAY['indicator--0', 'indicator--1']",
        ),
        statement("latest in a view", LAST_IN, "1, 'indicator--0'"),
        statement(
            "latest in each view",
            LAST_IN_EACH,
            "ARRAY[1::bigint, 2::bigint], 'indicator--0'",
        ),
        statement(
            "held in views",
            HELD_IN,
            "ARRAY[1::bigint, 2::bigint], 'indicator--0'",
        ),
        statement("versions in a view", VERSIONS_IN, "1, 'indicator--0'"),
        statement(
            "objects a view holds",
            OBJECTS_HELD,
            "1, ARRAY['indicator--0']",
        ),
        ObjectStatement {
            name: "a listing by match[id]",
            sql: listing_sql(&by_id),
            args: "'inbox', 0, ARRAY['indicator--0'], 1001",
        },
    ]
}

/// The statement of an objects page (`limit` 1,000, no filter): its parameters are
/// the collection, the position after which to start (`i64::MIN` for the first page)
/// and the rows to fetch. For the test that a stored collection's page reads each
/// object's version row only, never the query views' copies.
#[doc(hidden)]
pub fn objects_page_statement() -> String {
    objects_page_sql(&Listing {
        ids: Vec::new(),
        types: Vec::new(),
        versions: VersionMatch::all(),
        spec_versions: Vec::new(),
        after: None,
        limit: 1000,
        with_raw: true,
        max_bytes: None,
    })
}
