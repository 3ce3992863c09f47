//! `collections.json` validated with `taxiway.toml`, as the server and `check-config` load it.

use crate::config::xsoar::collection_id;
use crate::config::{load_dir, parse_files, CollectionKind, ConfigError, QueryDialect};

const TOML: &str = r#"
[service]
title = "Intel"
default_api_root = "feeds"

[[api_roots]]
path = "feeds"
title = "Feeds"

[[api_roots]]
path = "partners"
title = "Partners"

[[collections]]
id = "e78eb331-c15a-463f-ba62-73b2a71a324a"
api_root = "feeds"
title = "inbox"
writable = true
[collections.access]
write = ["alice"]
"#;

const JSON: &str = r#"{
    "Malicious IPs": "type:IP verdict:Malicious",
    "Phishing URLs": {"query": "type:URL and tags:phishing", "description": "From the mail gateway"}
}"#;

fn problems(toml: &str, json: &str) -> Vec<String> {
    match parse_files(toml, Some(json)) {
        Ok(_) => Vec::new(),
        Err(ConfigError::Invalid(p)) => p.iter().map(ToString::to_string).collect(),
        Err(e) => vec![e.to_string()],
    }
}

#[test]
fn each_name_is_a_query_collection_of_the_default_api_root() {
    let c = parse_files(TOML, Some(JSON)).expect("valid");
    assert_eq!(c.collections.len(), 3);
    let ips = &c.collections[1];
    assert_eq!(ips.settings.title, "Malicious IPs");
    assert_eq!(ips.settings.api_root, "feeds");
    assert_eq!(ips.settings.id, collection_id("feeds", "Malicious IPs"));
    assert_eq!(ips.settings.dialect, QueryDialect::Xsoar);
    assert_eq!(
        ips.settings.query.as_deref(),
        Some("type:IP verdict:Malicious")
    );
    assert_eq!(
        ips.native_query(),
        Some("ioc_type:ipv4-addr and not ioc_value:*/* and confidence:>=70")
    );
    assert_eq!(ips.at, r#"collections.json "Malicious IPs""#);
    assert!(matches!(ips.kind, CollectionKind::Query(_)));
    assert_eq!(ips.sources, ["e78eb331-c15a-463f-ba62-73b2a71a324a"]);
    let urls = &c.collections[2];
    assert_eq!(
        urls.settings.description.as_deref(),
        Some("From the mail gateway")
    );
    assert_eq!(
        urls.native_query(),
        Some("ioc_type:url and labels:phishing")
    );
    assert_eq!(c.xsoar_collections.len(), 2);
    // taxiway.toml alone is unchanged by the file.
    assert_eq!(c.config.collections.len(), 1);
}

#[test]
fn the_only_api_root_is_the_default() {
    let toml = TOML.replace("default_api_root = \"feeds\"\n", "").replace(
        "[[api_roots]]\npath = \"partners\"\ntitle = \"Partners\"\n",
        "",
    );
    let c = parse_files(&toml, Some(JSON)).expect("valid");
    assert_eq!(c.collections[1].settings.api_root, "feeds");
}

#[test]
fn no_default_api_root_among_several_is_an_error() {
    let toml = TOML.replace("default_api_root = \"feeds\"\n", "");
    let p = problems(&toml, JSON);
    assert_eq!(
        p,
        [
            "collections.json: its collections go in the default API root, but taxiway.toml has 2 \
          API roots and no service.default_api_root: set it to the API root they belong in"
        ]
    );
    // Without collections.json the same taxiway.toml is fine.
    assert!(problems(&toml, "{}").is_empty());
}

#[test]
fn problems_name_the_file_and_the_collection() {
    let json = r#"{
        "Good": "type:IP",
        "Incidents": "type:IP and investigationIDs:42",
        "inbox": "type:URL",
        "Bad.title": "type:URL"
    }"#;
    let p = problems(TOML, json);
    assert_eq!(
        p,
        [
            "collections.json \"Incidents\".query: XSOAR query at column 13: field \
             'investigationIDs' cannot be translated: it refers to XSOAR incidents, which \
             Taxiway does not have",
            "collections.json \"inbox\".title: duplicate title \"inbox\" in API root \"feeds\" \
             (also collections[0])",
            "collections.json \"Bad.title\".title: must not contain '.' or ',' (got \"Bad.title\")",
        ]
    );
}

#[test]
fn a_syntax_error_names_the_file_line_and_column() {
    let e = parse_files(TOML, Some("{\"a\": \"type:IP\",\n \"b\": 7}")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "collections.json: line 2, column 8: collection \"b\": expected a query string or \
         {\"query\": …, \"description\": …}, found a number"
    );
}

#[test]
fn the_dialect_key_in_taxiway_toml() {
    let toml = format!(
        "{TOML}\n[[collections]]\nid = \"1032cbac-1483-48ad-b107-b3b6a12c65ad\"\napi_root = \"partners\"\n\
         title = \"Old XSOAR feed\"\nquery = 'type:Domain -tags:internal'\ndialect = \"xsoar\"\n"
    );
    let c = parse_files(&toml, None).expect("valid");
    assert_eq!(
        c.collections[1].native_query(),
        Some(r#"ioc_type:domain-name and not ioc_value:"*\**" and not labels:internal"#)
    );
    assert_eq!(
        c.collections[1].settings.query.as_deref(),
        Some("type:Domain -tags:internal")
    );
    // Without the key the text is read as a native query, which it also happens to be.
    let native = toml.replace("dialect = \"xsoar\"\n", "dialect = \"native\"\n");
    let c = parse_files(&native, None).expect("valid");
    assert_eq!(
        c.collections[1].native_query(),
        Some("type:Domain -tags:internal")
    );
    let bad = toml.replace("dialect = \"xsoar\"", "dialect = \"splunk\"");
    assert!(parse_files(&bad, None).is_err());
    let writable = format!(
        "{TOML}\n[[collections]]\nid = \"1032cbac-1483-48ad-b107-b3b6a12c65ad\"\napi_root = \"feeds\"\n\
         title = \"w\"\nwritable = true\ndialect = \"xsoar\"\n[collections.access]\nwrite = [\"a\"]\n"
    );
    let e = parse_files(&writable, None).unwrap_err().to_string();
    assert_eq!(
        e,
        "collections[1].dialect: only query collections have a query dialect"
    );
}

#[test]
fn a_v5_id_is_accepted_in_taxiway_toml() {
    // An XSOAR collection id (name-based) kept by declaring the collection by hand.
    let toml = format!(
        "{TOML}\n[[collections]]\nid = \"fac88a53-5935-5665-83db-bdf58066c949\"\napi_root = \"feeds\"\n\
         title = \"Kept\"\nquery = \"type:IP\"\ndialect = \"xsoar\"\n"
    );
    parse_files(&toml, None).expect("valid");
}

#[test]
fn load_dir_reads_collections_json_beside_taxiway_toml() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("taxiway.toml"), TOML).expect("write");
    let without = load_dir(dir.path()).expect("valid");
    assert_eq!(without.collections.len(), 1);
    std::fs::write(dir.path().join("collections.json"), JSON).expect("write");
    let with = load_dir(dir.path()).expect("valid");
    assert_eq!(with.collections.len(), 3);
    assert!(!with.same_files(&without));
    assert!(with.same_files(&load_dir(dir.path()).expect("valid")));
    std::fs::write(dir.path().join("collections.json"), "{").expect("write");
    let e = load_dir(dir.path()).unwrap_err();
    let ConfigError::Syntax { path, .. } = &e else {
        panic!("{e}");
    };
    assert_eq!(path, &dir.path().join("collections.json"));
}
