//! Collections: each judged by the server's validator together with those admitted
//! before it.

use std::collections::BTreeMap;

use kube::ResourceExt;
use taxiway_model::config::{self as server_config, Access, Collection, Config, ConfigError};
use taxiway_model::query::Query;

use super::{CollectionVerdict, QueryVerdict, Rejection, Urls};
use crate::crd::{QueryDialect, TaxiiCollection, TaxiiCollectionSpec};
use crate::xsoar;

/// The TAXII collection id of a TaxiiCollection: `spec.id`, else `metadata.uid`.
fn id_of(collection: &TaxiiCollection) -> Option<String> {
    collection.spec.id.clone().or_else(|| collection.uid())
}

/// The server's view of one TaxiiCollection, before it is checked. `spec.sources`
/// entries naming a TaxiiCollection of the service become its collection id; others
/// (ids, titles, aliases) are passed to the server's validator as written.
fn settings_of(
    collection: &TaxiiCollection,
    base: &Config,
    siblings: &[TaxiiCollection],
) -> Option<Collection> {
    let spec = &collection.spec;
    let id = id_of(collection)?;
    let sources = spec.sources.as_ref().map(|names| {
        names
            .iter()
            .map(|name| {
                siblings
                    .iter()
                    .find(|c| &c.name_any() == name)
                    .and_then(id_of)
                    .unwrap_or_else(|| name.clone())
            })
            .collect()
    });
    Some(Collection {
        id,
        api_root: api_root_of(collection, base),
        title: spec.title.clone().unwrap_or_else(|| collection.name_any()),
        description: spec.description.clone(),
        alias: spec.alias.clone(),
        writable: spec.writable,
        query: match native_query(spec) {
            Some(Ok(native)) => Some(native),
            // The XSOAR text itself: the verdict says why it cannot be translated.
            _ => spec.query.clone(),
        },
        // Rendered in the native language: the server never translates what the
        // operator hands it.
        dialect: server_config::QueryDialect::Native,
        sources,
        access: Access {
            read: spec.access.read.clone(),
            write: spec.access.write.clone(),
            anonymous_read: spec.access.anonymous_read,
        },
    })
}

fn api_root_of(collection: &TaxiiCollection, base: &Config) -> String {
    collection
        .spec
        .api_root
        .clone()
        .unwrap_or_else(|| default_api_root(base))
}

/// The API root collections go to when they name none.
pub(super) fn default_api_root(base: &Config) -> String {
    base.service
        .default_api_root
        .clone()
        .or_else(|| base.api_roots.first().map(|r| r.path.clone()))
        .unwrap_or_default()
}

/// `spec.query` in the native query language: translated when `spec.dialect` is
/// `xsoar` (or why it cannot be); `None` without a query.
pub fn native_query(spec: &TaxiiCollectionSpec) -> Option<Result<String, String>> {
    let text = spec.query.as_ref()?;
    Some(match spec.dialect {
        QueryDialect::Native => Ok(text.clone()),
        QueryDialect::Xsoar => xsoar::translate(text),
    })
}

/// The verdict on a collection's query, by the server's own parser (after translation
/// from its dialect).
pub fn query_verdict(spec: &TaxiiCollectionSpec) -> QueryVerdict {
    if spec.writable {
        return QueryVerdict::Writable;
    }
    match native_query(spec) {
        Some(Ok(text)) => match Query::parse(&text) {
            Ok(_) => QueryVerdict::Valid,
            Err(e) => QueryVerdict::Invalid(e.to_string()),
        },
        Some(Err(message)) => QueryVerdict::Invalid(message),
        None => QueryVerdict::Missing,
    }
}

/// A verdict with the query judged and no decision on acceptance yet.
pub(super) fn verdict(collection: &TaxiiCollection, base: &Config) -> CollectionVerdict {
    let spec = &collection.spec;
    let query = query_verdict(spec);
    CollectionVerdict {
        name: collection.name_any(),
        generation: collection.metadata.generation,
        id: spec.id.clone().or_else(|| collection.uid()),
        api_root: api_root_of(collection, base),
        url: None,
        query,
        rejection: None,
        previous_query: None,
        native_query: None,
        sources: Vec::new(),
        warnings: Vec::new(),
    }
}

/// Admit collections oldest first; each is checked by the server's validator together
/// with the ones already admitted. A query collection whose query no longer parses
/// keeps its last valid query (`previous_queries`, by collection id) when it had one:
/// the edit is reported on its status, and consumers keep their feed.
pub(super) fn admit_collections(
    mut config: Config,
    collections: &[TaxiiCollection],
    previous_queries: &BTreeMap<String, String>,
    urls: &Urls,
) -> (Config, Vec<CollectionVerdict>) {
    // Writable collections first (query collections name them as sources), each kind
    // oldest first.
    let mut order: Vec<&TaxiiCollection> = collections.iter().collect();
    order.sort_by(|a, b| {
        let key = |c: &TaxiiCollection| {
            (
                !c.spec.writable,
                c.metadata.creation_timestamp.as_ref().map(|t| t.0),
                c.name_any(),
            )
        };
        key(a).cmp(&key(b))
    });
    let mut verdicts = Vec::with_capacity(order.len());
    for collection in order {
        let mut v = verdict(collection, &config);
        let Some(mut settings) = settings_of(collection, &config, collections) else {
            v.rejection = Some(Rejection {
                reason: "Invalid",
                message: "metadata.uid is not set yet and spec.id is empty".into(),
            });
            verdicts.push(v);
            continue;
        };
        let previous = match v.query {
            QueryVerdict::Invalid(_) => previous_queries
                .get(&settings.id)
                .filter(|q| Query::parse(q).is_ok())
                .cloned(),
            _ => None,
        };
        if let Some(query) = &previous {
            settings.query = Some(query.clone());
        }
        let untranslatable = match (&v.query, collection.spec.dialect) {
            (QueryVerdict::Invalid(message), QueryDialect::Xsoar) if previous.is_none() => {
                Some(format!("spec.query: {message}"))
            }
            _ => None,
        };
        let served_query = settings.query.clone();
        let messages = match untranslatable {
            Some(message) => vec![message],
            None => try_admit(&mut config, settings),
        };
        if messages.is_empty() {
            let served = config.collections.last().map(|c| (&c.api_root, &c.id));
            v.url = served.map(|(root, id)| urls.collection(root, id));
            v.previous_query = previous;
            if !collection.spec.dialect.is_native() {
                v.native_query = served_query;
            }
        } else {
            let reason = match v.query {
                QueryVerdict::Invalid(_) => "InvalidQuery",
                _ => "Invalid",
            };
            v.rejection = Some(Rejection {
                reason,
                message: messages.join("; "),
            });
        }
        verdicts.push(v);
    }
    describe_sources(&config, collections, &mut verdicts);
    verdicts.sort_by(|a, b| a.name.cmp(&b.name));
    (config, verdicts)
}

/// Each served collection's sources (as TaxiiCollection names) and the server's
/// warnings about it, from the configuration as admitted.
fn describe_sources(
    config: &Config,
    collections: &[TaxiiCollection],
    verdicts: &mut [CollectionVerdict],
) {
    let Ok(served) = server_config::validate(config.clone()) else {
        return;
    };
    let name_of = |id: &String| {
        collections
            .iter()
            .find(|c| id_of(c).as_ref() == Some(id))
            .map_or_else(|| id.clone(), |c| c.name_any())
    };
    let warnings = served.warnings();
    for v in verdicts.iter_mut().filter(|v| v.rejection.is_none()) {
        let Some(index) = served
            .collections
            .iter()
            .position(|c| Some(&c.settings.id) == v.id.as_ref())
        else {
            continue;
        };
        v.sources = served.collections[index]
            .sources
            .iter()
            .map(name_of)
            .collect();
        let at = format!("collections[{index}].");
        v.warnings = warnings
            .iter()
            // "nobody may write" is said in the Accepted condition already.
            .filter(|w| w.at.starts_with(&at) && !w.at.ends_with("access.write"))
            .map(|w| w.message.clone())
            .collect();
    }
}

/// Add `settings` to `config` if the server's validator accepts the result; otherwise
/// leave `config` as it was and return what is wrong, as TaxiiCollection fields.
pub(super) fn try_admit(config: &mut Config, settings: Collection) -> Vec<String> {
    let index = config.collections.len();
    config.collections.push(settings);
    let messages = match server_config::validate(config.clone()) {
        Ok(_) => vec![],
        Err(ConfigError::Invalid(problems)) => {
            let prefix = format!("collections[{index}].");
            problems
                .into_iter()
                .filter_map(|p| {
                    p.at.strip_prefix(&prefix)
                        .map(|field| format!("spec.{}: {}", collection_field(field), p.message))
                })
                .collect()
        }
        Err(other) => vec![other.to_string()],
    };
    if !messages.is_empty() {
        config.collections.pop();
    }
    messages
}

/// A server collection field as the TaxiiCollection field that sets it.
fn collection_field(field: &str) -> String {
    match field {
        "api_root" => "apiRoot".into(),
        "id" => "id (or metadata.uid)".into(),
        "title" => "title (or metadata.name)".into(),
        "access.write" => "access.write".into(),
        "sources" => "sources".into(),
        "access.read" => "access.read".into(),
        other => other.to_string(),
    }
}
