//! Reads: a page of a view, the size of a listing, a status resource.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use crate::store::add_objects::Status;
use crate::store::error::StoreError;
use crate::store::listing::{Entry, Listing, ObjectsPage, Page, PageGeneration};

type Args = Vec<Box<dyn ToSql + Sync + Send>>;

fn refs(args: &Args) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// A column of the view serving the collection `$1`, resolved by the database in the
/// same statement as the read (no replica-local registry cache: a view switched or
/// first built by another replica is read at once). Query views before stored ones,
/// as the registry orders them.
macro_rules! serving_view {
    ($column:literal) => {
        concat!(
            "(SELECT v.",
            $column,
            " FROM views v WHERE v.collection = $1 \
             AND v.state = 'active' ORDER BY v.kind = 'stored', v.view_id LIMIT 1)"
        )
    };
}

/// The view serving the collection `$1`.
const SERVING_VIEW: &str = serving_view!("view_id");

/// Its kind (`'query'` or `'stored'`): uncorrelated, so PostgreSQL evaluates it once
/// per statement.
const SERVING_KIND: &str = serving_view!("kind");

/// The generation of the view serving `collection` (`None` while it has none).
pub async fn generation<C: GenericClient>(
    client: &C,
    collection: &str,
) -> Result<Option<PageGeneration>, StoreError> {
    let sql = format!(
        "SELECT v.view_id, v.change_seq, \
                (SELECT max(e.date_added) FROM entries e WHERE e.view_id = v.view_id) \
         FROM views v WHERE v.view_id = {SERVING_VIEW}"
    );
    let stmt = client.prepare_cached(&sql).await?;
    Ok(client
        .query_opt(&stmt, &[&collection])
        .await?
        .map(|row| PageGeneration {
            view_id: row.get(0),
            change_seq: row.get(1),
            last_added: row.get(2),
        }))
}

/// One page of a collection: an index range scan from the listing's position.
pub async fn list<C: GenericClient>(
    client: &C,
    collection: &str,
    listing: &Listing,
) -> Result<Page, StoreError> {
    let Some((sql, args)) = list_statement(collection, listing) else {
        return Ok(Page::default());
    };
    let budget = listing.max_bytes.filter(|_| listing.with_raw);
    let stmt = client.prepare_cached(&sql).await?;
    let rows = client.query(&stmt, &refs(&args)).await?;
    let mut entries = Vec::with_capacity(rows.len().min(listing.limit));
    let mut more = match (budget, rows.first()) {
        (Some(_), Some(first)) => {
            let fetched: i64 = first.get(5);
            usize::try_from(fetched).unwrap_or(usize::MAX) > rows.len()
        }
        _ => false,
    };
    for row in rows {
        if entries.len() == listing.limit {
            more = true;
            break;
        }
        entries.push(Entry {
            date_added: row.get(0),
            id: row.get(1),
            version: row.get(2),
            spec_version: row.get(3),
            raw: row.get(4),
        });
    }
    Ok(Page { entries, more })
}

/// The statement of [`list`] and its arguments; `None` when the version match selects
/// nothing at all.
fn list_statement(collection: &str, listing: &Listing) -> Option<(String, Args)> {
    let mut sql = String::from("SELECT e.date_added, e.stix_id, e.version_us, e.spec_version");
    if listing.with_raw {
        sql.push_str(", v.raw FROM entries e JOIN object_versions v ON v.vid = e.vid");
    } else {
        sql.push_str(", ''::text FROM entries e");
    }
    let mut args = filter(&mut sql, collection, listing)?;
    let fetch = i64::try_from(listing.limit.saturating_add(1)).unwrap_or(i64::MAX);
    args.push(Box::new(fetch));
    sql.push_str(&format!(" ORDER BY e.date_added LIMIT ${}", args.len()));
    if let Some(max) = listing.max_bytes.filter(|_| listing.with_raw) {
        // Cut at the byte budget in the database, so that no more than the budget (plus
        // one object) crosses the wire: a running total over the page's rows, and how
        // many rows the page had, to tell `more`.
        args.push(Box::new(i64::try_from(max).unwrap_or(i64::MAX)));
        sql = format!(
            "SELECT date_added, stix_id, version_us, spec_version, raw, fetched FROM ( \
               SELECT p.*, (sum(len) OVER (ORDER BY date_added))::bigint AS running, \
                      count(*) OVER () AS fetched FROM ( \
                 SELECT page.*, octet_length(page.raw)::bigint + 1 AS len FROM ({sql}) page \
               ) p \
             ) q WHERE running = len OR running <= ${}::bigint ORDER BY date_added",
            args.len()
        );
    }
    Some((sql, args))
}

/// The text of [`list`]'s statement for `listing` (for the plan test).
pub(super) fn listing_sql(listing: &Listing) -> String {
    list_statement("", listing)
        .map(|(sql, _)| sql)
        .unwrap_or_default()
}

/// The text of [`list_objects`]'s statement for `listing` (for the plan test).
pub(super) fn objects_page_sql(listing: &Listing) -> String {
    objects_statement("", listing)
        .map(|(sql, _)| sql)
        .unwrap_or_default()
}

/// The statement of [`list_objects`] and its arguments; `None` when the version match
/// selects nothing at all.
fn objects_statement(collection: &str, listing: &Listing) -> Option<(String, Args)> {
    // A query view's own copy of the JSON (the version's should it lack one); a stored
    // view has no copies, so its rows go straight to the version: one index probe per
    // object, not a failed one into `view_objects` first.
    let mut sql = format!(
        "SELECT e.date_added, CASE WHEN {SERVING_KIND} = 'query' THEN COALESCE( \
           (SELECT o.raw FROM view_objects o WHERE o.view_id = e.view_id AND o.vid = e.vid), \
           (SELECT v.raw FROM object_versions v WHERE v.vid = e.vid)) \
         ELSE (SELECT v.raw FROM object_versions v WHERE v.vid = e.vid) END AS raw \
         FROM entries e"
    );
    let mut args = filter(&mut sql, collection, listing)?;
    let fetch = i64::try_from(listing.limit.saturating_add(1)).unwrap_or(i64::MAX);
    args.push(Box::new(fetch));
    sql.push_str(&format!(" ORDER BY e.date_added LIMIT ${}", args.len()));
    if let Some(max) = listing.max_bytes {
        // Every row that starts within the budget (the page, and the one that would
        // bring it over), and the first two whatever their size (the first always
        // joins; the second tells `more`): what `admit` needs to cut the page.
        args.push(Box::new(i64::try_from(max).unwrap_or(i64::MAX)));
        sql = format!(
            "SELECT date_added, raw FROM ( \
               SELECT p.*, (sum(len) OVER (ORDER BY date_added))::bigint - len AS before, \
                      row_number() OVER (ORDER BY date_added) AS n FROM ( \
                 SELECT page.*, octet_length(page.raw)::bigint + 1 AS len FROM ({sql}) page \
               ) p \
             ) q WHERE before <= ${}::bigint OR n <= 2 ORDER BY date_added",
            args.len()
        );
    }
    Some((sql, args))
}

/// One page of objects as bytes: only `date_added` and the object's JSON are read.
/// The byte budget is applied in the database, so what crosses the wire is the page
/// plus at most the one object that did not fit (which tells `more`).
pub async fn list_objects<C: GenericClient>(
    client: &C,
    collection: &str,
    listing: &Listing,
) -> Result<ObjectsPage, StoreError> {
    let mut page = ObjectsPage::for_listing(listing);
    let Some((sql, args)) = objects_statement(collection, listing) else {
        return Ok(page);
    };
    let stmt = client.prepare_cached(&sql).await?;
    for row in client.query(&stmt, &refs(&args)).await? {
        let raw: &str = row.try_get(1)?;
        if !page.admit(listing, row.try_get(0)?, raw.as_bytes()) {
            break;
        }
    }
    Ok(page)
}

/// How many entries of a collection a listing selects, whatever its `limit`.
pub async fn count<C: GenericClient>(
    client: &C,
    collection: &str,
    listing: &Listing,
) -> Result<u64, StoreError> {
    let mut sql = String::from("SELECT count(*) FROM entries e");
    let Some(args) = filter(&mut sql, collection, listing) else {
        return Ok(0);
    };
    let stmt = client.prepare_cached(&sql).await?;
    let n: i64 = client.query_one(&stmt, &refs(&args)).await?.get(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Append the listing's `WHERE` clause and return its arguments; `None` when the
/// version match selects nothing at all.
fn filter(sql: &mut String, collection: &str, listing: &Listing) -> Option<Args> {
    let mut args: Args = vec![
        Box::new(collection.to_string()),
        Box::new(listing.after.unwrap_or(i64::MIN)),
    ];
    sql.push_str(&format!(
        " WHERE e.view_id = {SERVING_VIEW} AND e.date_added > $2"
    ));
    if !listing.ids.is_empty() {
        // Through the objects' version rows: entries have no index by object id
        // (schema step 7), and a version's entry is one `entries_by_version` probe.
        args.push(Box::new(listing.ids.clone()));
        sql.push_str(&format!(
            " AND e.vid = ANY(ARRAY(SELECT vid FROM object_versions WHERE stix_id = ANY(${})))",
            args.len()
        ));
    }
    for (column, values) in [
        ("e.type", &listing.types),
        ("e.spec_version", &listing.spec_versions),
    ] {
        if !values.is_empty() {
            args.push(Box::new(values.clone()));
            sql.push_str(&format!(" AND {column} = ANY(${})", args.len()));
        }
    }
    let v = &listing.versions;
    if !v.all {
        let mut alternatives = Vec::new();
        if v.last {
            alternatives.push("e.is_last".to_string());
        }
        if v.first {
            alternatives.push("e.is_first".to_string());
        }
        if !v.at.is_empty() {
            args.push(Box::new(v.at.clone()));
            alternatives.push(format!("e.version_us = ANY(${})", args.len()));
        }
        if alternatives.is_empty() {
            return None;
        }
        sql.push_str(&format!(" AND ({})", alternatives.join(" OR ")));
    }
    Some(args)
}

/// A status resource of an API root created by `owner`.
pub async fn status<C: GenericClient>(
    client: &C,
    api_root: &str,
    id: &str,
    owner: &str,
) -> Result<Option<Status>, StoreError> {
    let row = client
        .query_opt(
            "SELECT body FROM status WHERE id = $1 AND api_root = $2 AND owner = $3",
            &[&id, &api_root, &owner],
        )
        .await?;
    match row {
        None => Ok(None),
        Some(row) => {
            let body: String = row.get(0);
            serde_json::from_str(&body)
                .map(Some)
                .map_err(|e| StoreError::Database(format!("corrupt status {id}: {e}")))
        }
    }
}
