//! `collections.json`: the collections of Cortex XSOAR's TAXII2 Server integration,
//! served as they are written there.
//!
//! ```json
//! {
//!   "High-confidence IPs": "type:IP verdict:Malicious",
//!   "Phishing URLs": {"query": "type:URL tags:phishing", "description": "From the mail gateway"}
//! }
//! ```
//! Each name becomes a query collection titled by the name, in the default API root,
//! whose query is in the XSOAR dialect ([`QueryDialect::Xsoar`]); its id is
//! [`collection_id`], the same on every deployment. Validation with `taxiway.toml` is in
//! [`validate`](super::validate).

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::config::collection::{CollectionConfig, CollectionKind};
use crate::config::error::Problem;
use crate::config::model::{Access, Collection, QueryDialect};

#[cfg(test)]
mod with_taxiway_toml;

/// Name of the XSOAR collections file inside the config directory (beside `taxiway.toml`).
pub const COLLECTIONS_FILE: &str = "collections.json";

/// The namespace of Taxiway's name-based (UUIDv5) collection ids. Fixed forever: changing
/// it would change every id derived from it.
pub const COLLECTION_ID_NAMESPACE: uuid::Uuid = uuid::uuid!("818a33c1-763e-414a-9d13-3cc5a06b303e");

/// One collection of `collections.json`, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XsoarCollection {
    /// The key: the collection's title.
    pub name: String,
    /// The XSOAR indicator query.
    pub query: String,
    /// The description of the object form, if any.
    pub description: Option<String>,
}

impl XsoarCollection {
    /// The query collection it is in API root `api_root`: titled by the name, with the
    /// id [`collection_id`], readable like other query collections by default.
    pub fn to_collection(&self, api_root: &str) -> Collection {
        Collection {
            id: collection_id(api_root, &self.name),
            api_root: api_root.to_owned(),
            title: self.name.clone(),
            description: self.description.clone(),
            alias: None,
            writable: false,
            query: Some(self.query.clone()),
            dialect: QueryDialect::Xsoar,
            sources: None,
            access: Access::default(),
        }
    }
}

/// Why `collections.json` cannot be read as XSOAR collections.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XsoarCollectionsError {
    /// Not JSON, or not an object of collections (with the line and column).
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads `collections.json`: `{"name": "<query>"}` or `{"name": {"query": "…",
/// "description": "…"}}`, mixed, in file order. A name given twice is an error.
pub fn parse_collections(json: &str) -> Result<Vec<XsoarCollection>, XsoarCollectionsError> {
    let mut de = serde_json::Deserializer::from_str(json);
    let collections = Collections::deserialize(&mut de)
        .and_then(|c| de.end().map(|()| c))
        .map_err(|e| XsoarCollectionsError::Syntax {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
    Ok(collections.0)
}

/// serde_json appends " at line L column C"; the error carries them already.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// The collections in file order (a map visitor sees entries as written).
struct Collections(Vec<XsoarCollection>);

impl<'de> Deserialize<'de> for Collections {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(CollectionsVisitor)
    }
}

struct CollectionsVisitor;

impl<'de> Visitor<'de> for CollectionsVisitor {
    type Value = Collections;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "an object mapping each collection name to its XSOAR query, or to {\"query\": …, \"description\": …}",
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Collections, A::Error> {
        let mut out: Vec<XsoarCollection> = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            let value: Value = map.next_value()?;
            if out.iter().any(|c| c.name == name) {
                return Err(de::Error::custom(format!(
                    "collection {name:?} is given twice"
                )));
            }
            let (query, description) = entry(&name, value).map_err(de::Error::custom)?;
            out.push(XsoarCollection {
                name,
                query,
                description,
            });
        }
        Ok(Collections(out))
    }
}

/// A collection's query and description, from either form.
fn entry(name: &str, value: Value) -> Result<(String, Option<String>), String> {
    let mut object = match value {
        Value::String(query) => return Ok((query, None)),
        Value::Object(object) => object,
        other => {
            return Err(format!(
                "collection {name:?}: expected a query string or {{\"query\": …, \"description\": …}}, found {}",
                kind(&other)
            ))
        }
    };
    let query = match object.remove("query") {
        Some(Value::String(query)) => query,
        Some(other) => {
            return Err(format!(
                "collection {name:?}: \"query\" must be a string, found {}",
                kind(&other)
            ))
        }
        None => return Err(format!("collection {name:?}: \"query\" is required")),
    };
    let description = match object.remove("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) if d.is_empty() => None,
        Some(Value::String(d)) => Some(d),
        Some(other) => {
            return Err(format!(
                "collection {name:?}: \"description\" must be a string, found {}",
                kind(&other)
            ))
        }
    };
    if let Some(key) = object.keys().next() {
        return Err(format!(
            "collection {name:?}: unknown key {key:?} (a collection has \"query\" and \"description\")"
        ));
    }
    Ok((query, description))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A warning for each native query collection that reads an XSOAR field (see
/// [`xsoar_field_in`](crate::query::xsoar::xsoar_field_in)): it parses, but matches
/// nothing, and was most likely pasted without `dialect = "xsoar"`.
pub(crate) fn lookalike_warnings(collections: &[CollectionConfig]) -> Vec<Problem> {
    collections
        .iter()
        .filter(|c| c.settings.dialect == QueryDialect::Native)
        .filter_map(|c| match &c.kind {
            CollectionKind::Query(query) => {
                let field = crate::query::xsoar::xsoar_field_in(query)?;
                Some(Problem::new(
                    format!("{}.query", c.at),
                    format!(
                        "reads {field:?}, which no STIX object has, so it matches nothing; \
                         if this is a Cortex XSOAR query, set dialect = \"xsoar\""
                    ),
                ))
            }
            CollectionKind::Stored => None,
        })
        .collect()
}

/// The id of the collection `name` in API root `api_root`, so a re-deployed
/// `collections.json` keeps its ids (and so consumers keep their URLs): the UUIDv5 of
/// `"<api_root>/<name>"` in [`COLLECTION_ID_NAMESPACE`] with the version digit set to 4.
/// Name-based like a UUIDv5, but shaped as the UUIDv4 every TAXII collection id of
/// Taxiway is, because consumers check it: Microsoft Sentinel's connector refuses a
/// collection id that is not a UUIDv4.
pub fn collection_id(api_root: &str, name: &str) -> String {
    let mut bytes = uuid_v5(&COLLECTION_ID_NAMESPACE, &format!("{api_root}/{name}")).into_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
}

/// RFC 9562 §5.5: SHA-1 of the namespace and the name, version 5, variant 10.
fn uuid_v5(namespace: &uuid::Uuid, name: &str) -> uuid::Uuid {
    let mut context = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(namespace.as_bytes());
    context.update(name.as_bytes());
    let digest = context.finish();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_mixed_in_file_order() {
        let json = r#"{
            "Zeta": "type:IP",
            "Alpha": {"query": "type:URL tags:\"crime ware\"", "description": "URLs"},
            "Mid": {"query": "type:File"},
            "Empty description": {"query": "type:CVE", "description": ""}
        }"#;
        let c = parse_collections(json).expect("valid");
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Zeta", "Alpha", "Mid", "Empty description"]);
        assert_eq!(c[0].query, "type:IP");
        assert_eq!(c[0].description, None);
        assert_eq!(c[1].query, r#"type:URL tags:"crime ware""#);
        assert_eq!(c[1].description.as_deref(), Some("URLs"));
        assert_eq!(c[3].description, None);
        assert_eq!(parse_collections("{}").expect("empty"), []);
    }

    #[test]
    fn errors_say_where_and_what() {
        let cases = [
            ("[]", "expected an object mapping each collection name"),
            (r#"{"a": 5}"#, "collection \"a\": expected a query string"),
            (
                r#"{"a": {"description": "x"}}"#,
                "collection \"a\": \"query\" is required",
            ),
            (
                r#"{"a": {"query": 1}}"#,
                "\"query\" must be a string, found a number",
            ),
            (
                r#"{"a": {"query": "x", "description": []}}"#,
                "\"description\" must be a string",
            ),
            (
                r#"{"a": {"query": "x", "owner": "me"}}"#,
                "unknown key \"owner\"",
            ),
            (r#"{"a": "x", "a": "y"}"#, "collection \"a\" is given twice"),
            ("{\"a\": \"x\",\n \"b\": }", "expected value"),
            (r#"{"a": "x"} {}"#, "trailing characters"),
        ];
        for (json, message) in cases {
            let e = parse_collections(json).unwrap_err().to_string();
            assert!(e.contains(message), "{json}: {e}");
            assert!(e.starts_with("line "), "{json}: {e}");
        }
        let XsoarCollectionsError::Syntax { line, .. } =
            parse_collections("{\"a\": \"x\",\n \"b\": }").unwrap_err();
        assert_eq!(line, 2);
    }

    #[test]
    fn uuid_v5_is_the_standard_one() {
        // RFC 9562 appendix A.4: the DNS namespace and "www.example.com".
        let dns = uuid::uuid!("6ba7b810-9dad-11d1-80b4-00c04fd430c8");
        assert_eq!(
            uuid_v5(&dns, "www.example.com").to_string(),
            "2ed6657d-e927-568b-95e1-2665a8aea6a2"
        );
    }

    #[test]
    fn collection_ids_are_stable_v4_shaped_and_distinct() {
        let id = collection_id("feeds", "High-confidence IPs");
        assert_eq!(id, collection_id("feeds", "High-confidence IPs"));
        let parsed = uuid::Uuid::try_parse(&id).expect("a UUID");
        assert_eq!(
            parsed.get_version_num(),
            4,
            "consumers such as Sentinel want a v4"
        );
        assert!(crate::config::is_uuid_v4(&id));
        assert_eq!(parsed.hyphenated().to_string(), id, "lowercase, hyphenated");
        assert_ne!(id, collection_id("other", "High-confidence IPs"));
        assert_ne!(id, collection_id("feeds", "High-confidence IPv6"));
        // Pinned: a change here changes every deployed id.
        assert_eq!(id, "fac88a53-5935-4665-83db-bdf58066c949");
    }

    #[test]
    fn a_collection_of_the_file() {
        let c = XsoarCollection {
            name: "Phishing URLs".into(),
            query: "type:URL".into(),
            description: Some("d".into()),
        }
        .to_collection("feeds");
        assert_eq!(c.id, collection_id("feeds", "Phishing URLs"));
        assert_eq!(
            (c.title.as_str(), c.api_root.as_str()),
            ("Phishing URLs", "feeds")
        );
        assert_eq!(c.dialect, QueryDialect::Xsoar);
        assert!(!c.writable && c.sources.is_none() && c.access == Access::default());
    }
}
