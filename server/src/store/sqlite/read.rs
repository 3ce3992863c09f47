//! Reads: a page of a view, the size of a listing, a status resource.

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::entries::ViewKind;
use crate::store::add_objects::Status;
use crate::store::error::StoreError;
use crate::store::listing::{Entry, Listing, ObjectsPage, Page, PageGeneration};

/// One page of a view: an index range scan from the listing's position.
pub fn list(conn: &Connection, view_id: i64, listing: &Listing) -> Result<Page, StoreError> {
    let mut sql = String::from("SELECT e.date_added, e.stix_id, e.version_us, e.spec_version");
    let hint = by_id_hint(listing);
    if listing.with_raw {
        sql.push_str(&format!(
            ", v.raw FROM entries e{hint} JOIN object_versions v ON v.vid = e.vid"
        ));
    } else {
        sql.push_str(&format!(", '' FROM entries e{hint}"));
    }
    let Some(mut args) = filter(&mut sql, view_id, listing) else {
        return Ok(Page::default());
    };
    sql.push_str(" ORDER BY e.date_added LIMIT ?");
    let fetch = listing.limit.saturating_add(1);
    args.push(SqlValue::Integer(i64::try_from(fetch).unwrap_or(i64::MAX)));

    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(args))?;
    let mut entries = Vec::with_capacity(listing.limit.min(1024));
    let mut more = false;
    let mut bytes = 0usize;
    while let Some(row) = rows.next()? {
        if entries.len() == listing.limit {
            more = true;
            break;
        }
        let raw: String = row.get(4)?;
        if let Some(max) = listing.max_bytes {
            bytes = bytes.saturating_add(raw.len() + 1);
            if bytes > max && !entries.is_empty() {
                more = true;
                break;
            }
        }
        entries.push(Entry {
            date_added: row.get(0)?,
            id: row.get(1)?,
            version: row.get(2)?,
            spec_version: row.get(3)?,
            raw,
        });
    }
    Ok(Page { entries, more })
}

/// One page of objects as bytes: only `date_added` and the object's JSON are read,
/// and the JSON goes from SQLite's buffer straight into the page's.
pub fn list_objects(
    conn: &Connection,
    view_id: i64,
    kind: ViewKind,
    listing: &Listing,
) -> Result<ObjectsPage, StoreError> {
    let mut page = ObjectsPage::for_listing(listing);
    let Some((sql, args)) = objects_query(view_id, kind, listing) else {
        return Ok(page);
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(args))?;
    while let Some(row) = rows.next()? {
        let raw = match row.get_ref(1)? {
            ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes,
            _ => {
                return Err(StoreError::Database(
                    "an object version without JSON".into(),
                ))
            }
        };
        if !page.admit(listing, row.get(0)?, raw) {
            break;
        }
    }
    Ok(page)
}

/// The statement of an objects page and its arguments (`None`: it selects nothing).
fn objects_query(
    view_id: i64,
    kind: ViewKind,
    listing: &Listing,
) -> Option<(String, Vec<SqlValue>)> {
    let mut sql = match kind {
        // The entries in order, each followed by its object (`CROSS JOIN`: entries
        // first, one probe per row).
        ViewKind::Stored => {
            let hint = by_id_hint(listing);
            format!(
                "SELECT e.date_added, v.raw FROM entries e{hint} \
                 CROSS JOIN object_versions v ON v.vid = e.vid"
            )
        }
        // The view's own rows carry the JSON: one range of them, in order (the
        // table itself, not an index, unless ids or types narrow the page).
        ViewKind::Query => {
            let hint = match (listing.ids.is_empty(), listing.types.is_empty()) {
                (false, _) => BY_ID,
                (true, true) => " NOT INDEXED",
                (true, false) => "",
            };
            format!("SELECT e.date_added, e.raw FROM entries e{hint}")
        }
    };
    let mut args = filter(&mut sql, view_id, listing)?;
    sql.push_str(" ORDER BY e.date_added LIMIT ?");
    let fetch = listing.limit.saturating_add(1);
    args.push(SqlValue::Integer(i64::try_from(fetch).unwrap_or(i64::MAX)));
    Some((sql, args))
}

/// The generation of `view_id` (`None` once it is gone).
pub fn generation(conn: &Connection, view_id: i64) -> Result<Option<PageGeneration>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT change_seq, (SELECT max(date_added) FROM entries WHERE view_id = ?1) \
             FROM views WHERE view_id = ?1",
        )?
        .query_row(params![view_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .map(|(change_seq, last_added)| PageGeneration {
            view_id,
            change_seq,
            last_added,
        }))
}

/// How many entries of a view a listing selects, whatever its `limit`. It reads
/// every matching index entry: O(matches), not O(page).
pub fn count(conn: &Connection, view_id: i64, listing: &Listing) -> Result<u64, StoreError> {
    let mut sql = format!("SELECT count(*) FROM entries e{}", by_id_hint(listing));
    let Some(args) = filter(&mut sql, view_id, listing) else {
        return Ok(0);
    };
    let n: i64 = conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(args), |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Append the listing's `WHERE` clause (everything but order and limit) and return
/// its arguments; `None` when the version match selects nothing at all.
fn filter(sql: &mut String, view_id: i64, listing: &Listing) -> Option<Vec<SqlValue>> {
    sql.push_str(" WHERE e.view_id = ? AND e.date_added > ?");
    let mut args: Vec<SqlValue> = vec![
        SqlValue::Integer(view_id),
        SqlValue::Integer(listing.after.unwrap_or(i64::MIN)),
    ];
    if !listing.ids.is_empty() {
        // The objects' version rows, then their entries by `(view_id, vid)`: entries
        // have no index by object id (schema step 10).
        sql.push_str(&format!(
            " AND e.vid IN (SELECT vid FROM object_versions WHERE stix_id IN ({}))",
            placeholders(listing.ids.len())
        ));
        args.extend(listing.ids.iter().map(|s| SqlValue::Text(s.clone())));
    }
    in_list(sql, &mut args, "e.type", &listing.types);
    in_list(sql, &mut args, "e.spec_version", &listing.spec_versions);
    let v = &listing.versions;
    if !v.all {
        let mut alternatives = Vec::new();
        if v.last {
            // Written exactly as the partial index's condition so the planner can use it.
            alternatives.push("e.is_last = 1".to_string());
        }
        if v.first {
            alternatives.push("e.is_first = 1".to_string());
        }
        if !v.at.is_empty() {
            alternatives.push(format!("e.version_us IN ({})", placeholders(v.at.len())));
            args.extend(v.at.iter().map(|t| SqlValue::Integer(*t)));
        }
        if alternatives.is_empty() {
            return None;
        }
        sql.push_str(&format!(" AND ({})", alternatives.join(" OR ")));
    }
    Some(args)
}

/// With ids, the entries are found by the ids' versions (`entries_by_version`): left to
/// itself the planner may walk the whole collection in date order looking for them.
const BY_ID: &str = " INDEXED BY entries_by_version";

fn by_id_hint(listing: &Listing) -> &'static str {
    if listing.ids.is_empty() {
        ""
    } else {
        BY_ID
    }
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(",")
}

fn in_list(sql: &mut String, args: &mut Vec<SqlValue>, column: &str, values: &[String]) {
    if values.is_empty() {
        return;
    }
    sql.push_str(&format!(
        " AND {column} IN ({})",
        placeholders(values.len())
    ));
    args.extend(values.iter().map(|s| SqlValue::Text(s.clone())));
}

/// A status resource of an API root.
pub fn status(
    conn: &Connection,
    api_root: &str,
    id: &str,
    owner: &str,
) -> Result<Option<Status>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM status WHERE id = ?1 AND api_root = ?2 AND owner = ?3")?
        .query_row(params![id, api_root, owner], |r| r.get(0))
        .optional()?;
    match body {
        None => Ok(None),
        Some(body) => serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| StoreError::Database(format!("corrupt status {id}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::listing::VersionMatch;

    /// A view of `n` entries: types cycle indicator/malware/ipv4-addr; object `k`
    /// has two versions when `k` is even.
    fn view(n: i64) -> Connection {
        let mut conn = Connection::open_in_memory().expect("sqlite");
        super::super::schema::migrate(&mut conn).expect("schema");
        let kinds = ["indicator", "malware", "ipv4-addr"];
        let mut date_added = 0;
        for k in 0..n {
            let versions = if k % 2 == 0 { 2 } else { 1 };
            for v in 0..versions {
                date_added += 1;
                conn.execute(
                    "INSERT INTO object_versions (vid, stix_id, type, spec_version, version_key, \
                     version_us, added_us, sources, is_latest, raw) \
                     VALUES (?1, ?2, ?3, '2.1', ?4, ?4, ?1, '', ?5, '{}')",
                    params![
                        date_added,
                        format!("{}--{k}", kinds[k as usize % 3]),
                        kinds[k as usize % 3],
                        v,
                        v == versions - 1
                    ],
                )
                .expect("version");
                conn.execute(
                    "INSERT INTO entries (view_id, date_added, vid, stix_id, type, spec_version, \
                     version_us, is_first, is_last) VALUES (1, ?1, ?1, ?2, ?3, '2.1', ?4, ?5, ?6)",
                    params![
                        date_added,
                        format!("{}--{k}", kinds[k as usize % 3]),
                        kinds[k as usize % 3],
                        v,
                        v == 0,
                        v == versions - 1
                    ],
                )
                .expect("insert");
            }
        }
        conn
    }

    fn listing() -> Listing {
        Listing::latest(1_000_000)
    }

    /// A stored view (1) of `n` objects and a query view (2) holding the odd ones, whose
    /// entries carry their JSON.
    fn store_and_query_views(n: i64) -> Connection {
        let mut conn = Connection::open_in_memory().expect("sqlite");
        super::super::schema::migrate(&mut conn).expect("schema");
        conn.execute_batch(
            "INSERT INTO views (view_id, collection, kind, state, created_us) VALUES \
             (1, 'inbox', 'stored', 'active', 0), (2, 'odd', 'query', 'active', 0);",
        )
        .expect("views");
        for k in 0..n {
            conn.execute(
                "INSERT INTO object_versions (vid, stix_id, type, spec_version, version_key, \
                 version_us, added_us, sources, is_latest, raw) \
                 VALUES (?1, ?2, 'indicator', '2.1', 1, 1, ?1, '', 1, ?3)",
                params![k + 1, format!("indicator--{k}"), format!(r#"{{"n":{k}}}"#)],
            )
            .expect("version");
            let views: &[i64] = if k % 2 == 1 { &[1, 2] } else { &[1] };
            for view in views {
                let raw = (*view == 2).then(|| format!(r#"{{"n":{k}}}"#));
                conn.execute(
                    "INSERT INTO entries (view_id, date_added, vid, stix_id, type, spec_version, \
                     version_us, is_first, is_last, raw) \
                     VALUES (?1, ?2, ?2, ?3, 'indicator', '2.1', 1, 1, 1, ?4)",
                    params![view, k + 1, format!("indicator--{k}"), raw],
                )
                .expect("entry");
            }
        }
        conn
    }

    fn objects_listing() -> Listing {
        Listing {
            with_raw: true,
            limit: 100,
            ..listing()
        }
    }

    #[test]
    fn query_views_serve_their_own_copy_of_the_objects() {
        let conn = store_and_query_views(10);
        let page = list_objects(&conn, 2, ViewKind::Query, &objects_listing()).expect("page");
        assert_eq!(page.objects, br#"{"n":1},{"n":3},{"n":5},{"n":7},{"n":9}"#);
        assert_eq!((page.first_added, page.last_added), (Some(2), Some(10)));
        let stored = list_objects(&conn, 1, ViewKind::Stored, &objects_listing()).expect("page");
        assert_eq!(stored.count, 10);
        let typed = Listing {
            types: vec!["indicator".into()],
            ..objects_listing()
        };
        let page = list_objects(&conn, 2, ViewKind::Query, &typed).expect("page");
        assert_eq!(page.count, 5, "narrowed by type");
    }

    #[test]
    fn objects_pages_are_ranges_of_entries_with_at_most_one_probe_per_row() {
        let conn = store_and_query_views(0);
        let plan_of = |kind, l: &Listing| -> Vec<String> {
            let (sql, args) = objects_query(2, kind, l).expect("query");
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("plan");
            let plan = stmt
                .query_map(params_from_iter(args), |r| r.get::<_, String>(3))
                .expect("rows")
                .collect::<Result<Vec<_>, _>>()
                .expect("plan rows");
            assert!(!plan.iter().any(|p| p.contains("SCAN")), "{plan:?}");
            plan
        };
        let by_id = Listing {
            ids: vec!["indicator--1".into()],
            ..objects_listing()
        };
        let by_type = Listing {
            types: vec!["indicator".into()],
            ..objects_listing()
        };
        // A stored view: the latest versions in order from the index alone, then one
        // lookup of each object.
        let plan = plan_of(ViewKind::Stored, &objects_listing());
        assert!(
            plan[0].starts_with("SEARCH e USING COVERING INDEX entries_latest"),
            "{plan:?}"
        );
        for l in [objects_listing(), by_id.clone(), by_type.clone()] {
            let plan = plan_of(ViewKind::Stored, &l);
            assert!(plan[0].starts_with("SEARCH e"), "{plan:?}");
            // (By id, the ids' version rows are listed once before: a list subquery.)
            assert!(
                plan.iter()
                    .any(|p| p.starts_with("SEARCH v USING INTEGER PRIMARY KEY")),
                "{plan:?}"
            );
        }
        // A query view: one range of its own rows, nothing else.
        let plan = plan_of(ViewKind::Query, &objects_listing());
        assert_eq!(
            plan,
            ["SEARCH e USING PRIMARY KEY (view_id=? AND date_added>?)"]
        );
        for l in [by_id, by_type] {
            // Narrowed: whichever index the planner likes, still no other table.
            let plan = plan_of(ViewKind::Query, &l);
            assert!(plan[0].starts_with("SEARCH e USING "), "{plan:?}");
            assert!(!plan.iter().any(|p| p.starts_with("SEARCH v")), "{plan:?}");
        }
    }

    #[test]
    fn count_agrees_with_list_whatever_the_filters() {
        let conn = view(30);
        let cases = [
            listing(),
            Listing {
                versions: VersionMatch::all(),
                ..listing()
            },
            Listing {
                types: vec!["malware".into(), "ipv4-addr".into()],
                ..listing()
            },
            Listing {
                after: Some(17),
                ..listing()
            },
            Listing {
                ids: vec!["indicator--0".into(), "malware--1".into()],
                versions: VersionMatch::all(),
                limit: 1,
                ..listing()
            },
            Listing {
                versions: VersionMatch::default(),
                ..listing()
            },
        ];
        for l in cases {
            let listed = list(
                &conn,
                1,
                &Listing {
                    limit: 1_000_000,
                    ..l.clone()
                },
            )
            .expect("list")
            .entries
            .len() as u64;
            assert_eq!(count(&conn, 1, &l).expect("count"), listed, "{l:?}");
        }
        assert_eq!(count(&conn, 1, &listing()).expect("count"), 30);
        assert_eq!(
            count(&conn, 2, &listing()).expect("count"),
            0,
            "another view"
        );
    }
}
