//! API roots and collections: unique paths, ids and names, each collection either
//! writable or a compiled query, and the sources query collections draw from.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::values::{check_path_segment, check_title, is_collection_id};
use crate::config::collection::{CollectionConfig, CollectionKind};
use crate::config::error::Problem;
use crate::config::model::{ApiRoot, Collection, Config, QueryDialect};
use crate::config::sources;
use crate::config::xsoar::{XsoarCollection, COLLECTIONS_FILE};
use crate::query::{xsoar, Query};

/// `[[api_roots]]` paths (valid, not reserved, unique) and the
/// `service.default_api_root` naming one of them; returns the configured paths.
pub(super) fn api_roots<'a>(
    roots: &'a [ApiRoot],
    default: Option<&str>,
) -> (HashSet<&'a str>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut paths = HashSet::new();
    for (i, root) in roots.iter().enumerate() {
        let at = format!("api_roots[{i}].path");
        if let Err(message) = check_path_segment(&root.path) {
            problems.push(Problem::new(at.clone(), message));
        }
        if matches!(root.path.as_str(), "taxii" | "taxii2") {
            problems.push(Problem::new(
                at.clone(),
                "`taxii` and `taxii2` are reserved for discovery",
            ));
        }
        if !paths.insert(root.path.as_str()) {
            problems.push(Problem::new(
                at,
                format!("duplicate API root {:?}", root.path),
            ));
        }
    }
    if let Some(default) = default {
        if !paths.contains(default) {
            problems.push(Problem::new(
                "service.default_api_root",
                format!("names no configured API root: {default:?}"),
            ));
        }
    }
    (paths, problems)
}

/// A collection as written, and where: `collections[2]` in `taxiway.toml`, or
/// `collections.json "name"`.
pub(super) struct Written {
    pub at: String,
    pub collection: Collection,
}

/// The `[[collections]]` of `taxiway.toml`, then those of `collections.json` as query
/// collections in the default API root (`service.default_api_root`, else the only one).
pub(super) fn written(config: &Config, xsoar: &[XsoarCollection]) -> (Vec<Written>, Vec<Problem>) {
    let mut out: Vec<Written> = config
        .collections
        .iter()
        .enumerate()
        .map(|(i, c)| Written {
            at: format!("collections[{i}]"),
            collection: c.clone(),
        })
        .collect();
    if xsoar.is_empty() {
        return (out, Vec::new());
    }
    let roots = &config.api_roots;
    let root = match (&config.service.default_api_root, roots.as_slice()) {
        (Some(default), _) if roots.iter().any(|r| &r.path == default) => default.as_str(),
        // Reported as service.default_api_root already.
        (Some(_), _) => return (out, Vec::new()),
        (None, [only]) => only.path.as_str(),
        (None, _) => {
            let why = if roots.is_empty() {
                "there is no [[api_roots]] to put them in".to_owned()
            } else {
                format!(
                    "taxiway.toml has {} API roots and no service.default_api_root: set it to the \
                     API root they belong in",
                    roots.len()
                )
            };
            let problem = Problem::new(
                COLLECTIONS_FILE,
                format!("its collections go in the default API root, but {why}"),
            );
            return (out, vec![problem]);
        }
    };
    out.extend(xsoar.iter().map(|c| Written {
        at: format!("{COLLECTIONS_FILE} {:?}", c.name),
        collection: c.to_collection(root),
    }));
    (out, Vec::new())
}

/// Ids and names seen so far (and where): ids are unique across the service, titles
/// and aliases within their API root.
#[derive(Default)]
struct Seen<'a> {
    ids: HashSet<&'a str>,
    names: HashMap<(&'a str, &'a str), &'a str>,
}

/// Every collection: each checked ([`names`], [`kind`], [`fits_kind`]) and, when its
/// kind is clear, compiled (sources still empty: see [`resolve_sources`]).
pub(super) fn compile(
    written: &[Written],
    root_paths: &HashSet<&str>,
) -> (Vec<CollectionConfig>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut seen = Seen::default();
    let mut collections = Vec::with_capacity(written.len());
    for w in written {
        let c = &w.collection;
        problems.extend(names(w, root_paths, &mut seen));
        let kind = match kind(&w.at, c) {
            Ok(kind) => Some(kind),
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        problems.extend(fits_kind(&w.at, c));
        if let Some(kind) = kind {
            collections.push(CollectionConfig {
                settings: c.clone(),
                kind,
                sources: Vec::new(),
                at: w.at.clone(),
            });
        }
    }
    (collections, problems)
}

fn at(collection: &str, field: &str) -> String {
    format!("{collection}.{field}")
}

/// A collection's id (a UUIDv4 or v5, unique), API root (configured), title and alias
/// (valid, unique in the API root).
fn names<'a>(w: &'a Written, root_paths: &HashSet<&str>, seen: &mut Seen<'a>) -> Vec<Problem> {
    let (c, i) = (&w.collection, w.at.as_str());
    let mut problems = Vec::new();
    if !is_collection_id(&c.id) {
        problems.push(Problem::new(
            at(i, "id"),
            format!(
                "must be a lowercase UUIDv4 (e.g. 2f1c9a4e-8b6d-4e3f-9a7b-1c2d3e4f5a6b) or UUIDv5, got {:?}",
                c.id
            ),
        ));
    }
    if !seen.ids.insert(c.id.as_str()) {
        problems.push(Problem::new(
            at(i, "id"),
            format!("duplicate collection id {}", c.id),
        ));
    }
    if !root_paths.contains(c.api_root.as_str()) {
        problems.push(Problem::new(
            at(i, "api_root"),
            format!("names no configured API root: {:?}", c.api_root),
        ));
    }
    if let Err(message) = check_title(&c.title) {
        problems.push(Problem::new(at(i, "title"), message));
    }
    if let Some(first) = seen
        .names
        .insert((c.api_root.as_str(), c.title.as_str()), i)
    {
        problems.push(Problem::new(
            at(i, "title"),
            format!(
                "duplicate title {:?} in API root {:?} (also {first})",
                c.title, c.api_root
            ),
        ));
    }
    if let Some(alias) = &c.alias {
        if let Err(message) = check_title(alias) {
            problems.push(Problem::new(at(i, "alias"), message));
        }
        if alias != &c.title {
            if let Some(first) = seen.names.insert((c.api_root.as_str(), alias.as_str()), i) {
                problems.push(Problem::new(
                    at(i, "alias"),
                    format!(
                        "alias {alias:?} is already used in API root {:?} (by {first})",
                        c.api_root
                    ),
                ));
            }
        }
    }
    problems
}

/// Writable, or a query view with its query compiled (an XSOAR query translated
/// first): exactly one of the two.
fn kind(i: &str, c: &Collection) -> Result<CollectionKind, Problem> {
    match (&c.query, c.writable) {
        (Some(_), true) => Err(Problem::new(
            at(i, "query"),
            "a collection is either `writable` or has a `query`, not both",
        )),
        (None, false) => Err(Problem::new(
            at(i, "query"),
            "a collection needs a `query` or `writable = true`",
        )),
        (None, true) => Ok(CollectionKind::Stored),
        (Some(text), false) => {
            let native = match c.dialect {
                QueryDialect::Native => text.clone(),
                QueryDialect::Xsoar => xsoar::translate(text)
                    .map_err(|e| Problem::new(at(i, "query"), format!("XSOAR query {e}")))?,
            };
            match Query::parse(&native) {
                Ok(q) => Ok(CollectionKind::Query(Arc::new(q))),
                Err(e) => Err(Problem::new(at(i, "query"), e.to_string())),
            }
        }
    }
}

/// Settings only one kind of collection has: writers for writable collections,
/// sources for query collections.
fn fits_kind(i: &str, c: &Collection) -> Vec<Problem> {
    let mut problems = Vec::new();
    if !c.access.write.is_empty() && !c.writable {
        problems.push(Problem::new(
            at(i, "access.write"),
            "only writable collections accept writes",
        ));
    }
    if c.sources.is_some() && c.writable {
        problems.push(Problem::new(
            at(i, "sources"),
            "only query collections draw from sources",
        ));
    }
    if c.dialect != QueryDialect::Native && c.writable {
        problems.push(Problem::new(
            at(i, "dialect"),
            "only query collections have a query dialect",
        ));
    }
    problems
}

/// Fill in the writable collections each query collection draws from
/// ([`sources::resolve`]); problems name where the collection is written.
pub(super) fn resolve_sources(collections: &mut [CollectionConfig]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, sources) in sources::resolve(collections).into_iter().enumerate() {
        match sources {
            Ok(ids) => collections[i].sources = ids,
            Err(errors) => {
                for message in errors {
                    problems.push(Problem::new(at(&collections[i].at, "sources"), message));
                }
            }
        }
    }
    problems
}
