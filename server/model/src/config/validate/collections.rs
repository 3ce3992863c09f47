//! API roots and collections: unique paths, ids and names, each collection either
//! writable or a compiled query, and the sources query collections draw from.

use std::collections::HashSet;
use std::sync::Arc;

use super::values::{check_path_segment, check_title, is_uuid_v4};
use crate::config::collection::{CollectionConfig, CollectionKind};
use crate::config::error::Problem;
use crate::config::model::{ApiRoot, Collection};
use crate::config::sources;
use crate::query::Query;

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

/// Ids and names seen so far: ids are unique across the service, titles and aliases
/// within their API root.
#[derive(Default)]
struct Seen<'a> {
    ids: HashSet<&'a str>,
    names: HashSet<(&'a str, &'a str)>,
}

/// `[[collections]]`: each checked ([`names`], [`kind`], [`fits_kind`]) and, when its
/// kind is clear, compiled (sources still empty: see [`resolve_sources`]).
pub(super) fn compile(
    written: &[Collection],
    root_paths: &HashSet<&str>,
) -> (Vec<CollectionConfig>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut seen = Seen::default();
    let mut collections = Vec::with_capacity(written.len());
    for (i, c) in written.iter().enumerate() {
        problems.extend(names(i, c, root_paths, &mut seen));
        let kind = match kind(i, c) {
            Ok(kind) => Some(kind),
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        problems.extend(fits_kind(i, c));
        if let Some(kind) = kind {
            collections.push(CollectionConfig {
                settings: c.clone(),
                kind,
                sources: Vec::new(),
            });
        }
    }
    (collections, problems)
}

fn at(i: usize, field: &str) -> String {
    format!("collections[{i}].{field}")
}

/// A collection's id (a UUIDv4, unique), API root (configured), title and alias
/// (valid, unique in the API root).
fn names<'a>(
    i: usize,
    c: &'a Collection,
    root_paths: &HashSet<&str>,
    seen: &mut Seen<'a>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if !is_uuid_v4(&c.id) {
        problems.push(Problem::new(
            at(i, "id"),
            format!(
                "must be a lowercase UUIDv4 (e.g. 2f1c9a4e-8b6d-4e3f-9a7b-1c2d3e4f5a6b), got {:?}",
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
    if !seen.names.insert((c.api_root.as_str(), c.title.as_str())) {
        problems.push(Problem::new(
            at(i, "title"),
            format!("duplicate title {:?} in API root {:?}", c.title, c.api_root),
        ));
    }
    if let Some(alias) = &c.alias {
        if let Err(message) = check_title(alias) {
            problems.push(Problem::new(at(i, "alias"), message));
        }
        if alias != &c.title && !seen.names.insert((c.api_root.as_str(), alias.as_str())) {
            problems.push(Problem::new(
                at(i, "alias"),
                format!(
                    "alias {alias:?} is already used in API root {:?}",
                    c.api_root
                ),
            ));
        }
    }
    problems
}

/// Writable, or a query view with its query compiled: exactly one of the two.
fn kind(i: usize, c: &Collection) -> Result<CollectionKind, Problem> {
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
        (Some(text), false) => match Query::parse(text) {
            Ok(q) => Ok(CollectionKind::Query(Arc::new(q))),
            Err(e) => Err(Problem::new(at(i, "query"), e.to_string())),
        },
    }
}

/// Settings only one kind of collection has: writers for writable collections,
/// sources for query collections.
fn fits_kind(i: usize, c: &Collection) -> Vec<Problem> {
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
    problems
}

/// Fill in the writable collections each query collection draws from
/// ([`sources::resolve`]); problems name the collection's position as written.
pub(super) fn resolve_sources(
    written: &[Collection],
    collections: &mut [CollectionConfig],
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, sources) in sources::resolve(collections).into_iter().enumerate() {
        match sources {
            Ok(ids) => collections[i].sources = ids,
            Err(errors) => {
                let index = written
                    .iter()
                    .position(|c| c.id == collections[i].settings.id)
                    .unwrap_or(i);
                for message in errors {
                    problems.push(Problem::new(at(index, "sources"), message));
                }
            }
        }
    }
    problems
}
