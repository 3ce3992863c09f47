//! Where query collections draw from, and who can read what they publish.
//!
//! A query collection republishes objects posted to writable collections. Left to
//! itself it draws only from writable collections that every one of its readers may
//! read anyway, so a query can never widen a collection's audience by accident; a
//! `sources` list names the collections explicitly (a deliberate publication), and
//! [`warnings`] says when that publication reaches readers the source does not have.

use super::collection::{CollectionConfig, CollectionKind};
use super::error::Problem;
use super::model::Access;

/// Whether every caller who may read a collection with access `reader` may also read
/// one with access `source`. Conservative: group membership is not known here, so a
/// restricted list covers another only when it names every entry of it.
pub fn readers_covered(source: &Access, reader: &Access) -> bool {
    if reader.anonymous_read && !source.anonymous_read {
        return false;
    }
    if source.read.is_empty() {
        return true;
    }
    !reader.read.is_empty() && reader.read.iter().all(|who| source.read.contains(who))
}

/// The writable collection a `sources` entry names: by id, else alias or title in the
/// query collection's API root, else an alias or title unique across API roots.
fn find_source<'a>(
    collections: &'a [CollectionConfig],
    api_root: &str,
    name: &str,
) -> Result<&'a CollectionConfig, String> {
    let stored = || collections.iter().filter(|c| c.is_writable());
    if let Some(c) = collections.iter().find(|c| c.settings.id == name) {
        return if c.is_writable() {
            Ok(c)
        } else {
            Err(format!(
                "{name:?} is a query collection; sources must be writable collections"
            ))
        };
    }
    let named = |c: &&CollectionConfig| {
        c.settings.title == name || c.settings.alias.as_deref() == Some(name)
    };
    if let Some(c) = stored()
        .filter(|c| c.settings.api_root == api_root)
        .find(named)
    {
        return Ok(c);
    }
    let mut anywhere = stored().filter(named);
    match (anywhere.next(), anywhere.next()) {
        (Some(c), None) => Ok(c),
        (Some(_), Some(_)) => Err(format!(
            "{name:?} names writable collections in several API roots; use the collection id"
        )),
        (None, _) => Err(format!("{name:?} names no writable collection")),
    }
}

/// For each collection (in order): the ids of the writable collections it draws from
/// (empty for writable collections), or why its `sources` list is wrong.
pub fn resolve(collections: &[CollectionConfig]) -> Vec<Result<Vec<String>, Vec<String>>> {
    collections
        .iter()
        .map(|q| {
            if !matches!(q.kind, CollectionKind::Query(_)) {
                return Ok(Vec::new());
            }
            match &q.settings.sources {
                None => Ok(collections
                    .iter()
                    .filter(|s| {
                        s.is_writable() && readers_covered(&s.settings.access, &q.settings.access)
                    })
                    .map(|s| s.settings.id.clone())
                    .collect()),
                Some(names) => {
                    let mut ids: Vec<String> = Vec::new();
                    let mut errors = Vec::new();
                    for name in names {
                        match find_source(collections, &q.settings.api_root, name) {
                            Ok(c) if !ids.contains(&c.settings.id) => {
                                ids.push(c.settings.id.clone())
                            }
                            Ok(_) => {}
                            Err(e) => errors.push(e),
                        }
                    }
                    if errors.is_empty() {
                        Ok(ids)
                    } else {
                        Err(errors)
                    }
                }
            }
        })
        .collect()
}

/// See [`ServiceConfig::warnings`](super::ServiceConfig::warnings): `collections` as
/// validated (each says where it is written).
pub fn warnings(collections: &[CollectionConfig]) -> Vec<Problem> {
    let mut out = Vec::new();
    let title = |id: &str| {
        collections
            .iter()
            .find(|c| c.settings.id == id)
            .map_or(id.to_string(), |c| c.settings.title.clone())
    };
    for c in collections {
        let at = |field: &str| format!("{}.{field}", c.at);
        if c.is_writable() && c.settings.access.write.is_empty() {
            out.push(Problem {
                at: at("access.write"),
                message: format!(
                    "nobody may write to {:?}: grant writers in access.write (an empty list \
                     grants nobody; only a server running open without users accepts writes)",
                    c.settings.title
                ),
            });
        }
        if !matches!(c.kind, CollectionKind::Query(_)) {
            continue;
        }
        match &c.settings.sources {
            Some(_) => {
                for id in &c.sources {
                    let Some(source) = collections.iter().find(|s| &s.settings.id == id) else {
                        continue;
                    };
                    if !readers_covered(&source.settings.access, &c.settings.access) {
                        out.push(Problem {
                            at: at("sources"),
                            message: format!(
                                "{:?} is readable more widely than its source {:?}: it \
                                 republishes what is posted there to readers who cannot read it",
                                c.settings.title, source.settings.title
                            ),
                        });
                    }
                }
            }
            None => {
                let left_out: Vec<String> = collections
                    .iter()
                    .filter(|s| s.is_writable() && !c.sources.contains(&s.settings.id))
                    .map(|s| format!("{:?}", title(&s.settings.id)))
                    .collect();
                if !left_out.is_empty() {
                    out.push(Problem {
                        at: at("sources"),
                        message: format!(
                            "{:?} does not draw from {} (readable by fewer callers than it); \
                             name them in `sources` to publish them to its readers",
                            c.settings.title,
                            left_out.join(", ")
                        ),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServiceConfig;

    fn access(read: &[&str], anonymous: bool) -> Access {
        Access {
            read: read.iter().map(|s| s.to_string()).collect(),
            write: Vec::new(),
            anonymous_read: anonymous,
        }
    }

    #[test]
    fn a_source_covers_readers_it_already_has() {
        let everyone = access(&[], false);
        let soc = access(&["group:soc"], false);
        let soc_and_siem = access(&["group:soc", "group:siem"], false);
        assert!(readers_covered(&everyone, &soc));
        assert!(readers_covered(&soc_and_siem, &soc));
        assert!(readers_covered(&soc, &soc));
        assert!(!readers_covered(&soc, &soc_and_siem));
        assert!(!readers_covered(&soc, &everyone));
        assert!(!readers_covered(&everyone, &access(&[], true)));
        assert!(readers_covered(&access(&[], true), &access(&[], true)));
    }

    fn parsed(text: &str) -> ServiceConfig {
        super::super::parse(text).expect("valid")
    }

    const HEAD: &str = "[service]\ntitle = \"t\"\n[[api_roots]]\npath = \"feeds\"\ntitle = \"F\"\n";

    fn stored(id: &str, title: &str, read: &str) -> String {
        format!(
            "[[collections]]\nid = \"{id}\"\napi_root = \"feeds\"\ntitle = \"{title}\"\n\
             writable = true\naccess = {{ read = [{read}], write = [\"w\"] }}\n"
        )
    }

    const CERT: &str = "0b7f0a6e-1111-4111-8111-111111111111";
    const PARTNER: &str = "0b7f0a6e-2222-4222-8222-222222222222";
    const VIEW: &str = "0b7f0a6e-3333-4333-8333-333333333333";

    #[test]
    fn by_default_a_query_draws_only_from_what_its_readers_could_read() {
        let c = parsed(&format!(
            "{HEAD}{}{}[[collections]]\nid = \"{VIEW}\"\napi_root = \"feeds\"\ntitle = \"v\"\n\
             query = \"type:indicator\"\naccess = {{ read = [\"partner\"] }}\n",
            stored(CERT, "cert", "\"cert\""),
            stored(PARTNER, "partner", "\"partner\", \"cert\""),
        ));
        let view = c
            .collections
            .iter()
            .find(|c| c.settings.id == VIEW)
            .expect("view");
        assert_eq!(view.sources, vec![PARTNER.to_string()]);
        let warnings = c.warnings();
        assert!(
            warnings
                .iter()
                .any(|w| w.message.contains("does not draw from \"cert\"")),
            "{warnings:?}"
        );
    }

    #[test]
    fn named_sources_resolve_and_wider_audiences_are_warned() {
        let c = parsed(&format!(
            "{HEAD}{}{}[[collections]]\nid = \"{VIEW}\"\napi_root = \"feeds\"\ntitle = \"v\"\n\
             query = \"type:indicator\"\nsources = [\"cert\", \"{PARTNER}\", \"cert\"]\n",
            stored(CERT, "cert", "\"cert\""),
            stored(PARTNER, "partner", ""),
        ));
        let view = c
            .collections
            .iter()
            .find(|c| c.settings.id == VIEW)
            .expect("view");
        assert_eq!(view.sources, vec![CERT.to_string(), PARTNER.to_string()]);
        let warnings = c.warnings();
        assert!(
            warnings.iter().any(|w| w
                .message
                .contains("readable more widely than its source \"cert\"")),
            "{warnings:?}"
        );
        assert!(!warnings.iter().any(|w| w.message.contains("\"partner\"")));
    }

    #[test]
    fn sources_must_name_writable_collections() {
        let text = format!(
            "{HEAD}{}[[collections]]\nid = \"{VIEW}\"\napi_root = \"feeds\"\ntitle = \"v\"\n\
             query = \"type:indicator\"\nsources = [\"nope\", \"v\"]\n",
            stored(CERT, "cert", ""),
        );
        let err = super::super::parse(&text).expect_err("invalid").to_string();
        assert!(
            err.contains("\"nope\" names no writable collection"),
            "{err}"
        );
        assert!(err.contains("collections[1].sources"), "{err}");
        let text = format!(
            "{HEAD}{}",
            stored(CERT, "cert", "").replace("writable", "sources = [\"x\"]\nwritable")
        );
        let err = super::super::parse(&text).expect_err("invalid").to_string();
        assert!(err.contains("only query collections"), "{err}");
    }

    #[test]
    fn a_writable_collection_without_writers_is_warned() {
        let c = parsed(&format!(
            "{HEAD}[[collections]]\nid = \"{CERT}\"\napi_root = \"feeds\"\ntitle = \"cert\"\nwritable = true\n"
        ));
        assert!(c
            .warnings()
            .iter()
            .any(|w| w.message.contains("nobody may write")));
    }
}
