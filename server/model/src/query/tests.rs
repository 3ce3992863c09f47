//! What a query author sees: queries against realistic STIX objects.

use serde_json::{json, Value};

use super::{ObjectFacts, Query};
use crate::stix::timestamp::parse_timestamp;

const GREEN: &str = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da";
const WHITE: &str = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9";
const AMBER_STRICT: &str = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003";
const RED_V2: &str = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1";

const DAY: i64 = 86_400_000_000;

fn ts(s: &str) -> i64 {
    parse_timestamp(s).unwrap()
}

fn now() -> i64 {
    ts("2024-06-15T12:00:00Z")
}

fn query(text: &str) -> Query {
    Query::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Whether `text` matches `object`, posted to `partner-inbox`, added a day before now.
fn hit(text: &str, object: &Value) -> bool {
    let sources = [
        "partner-inbox",
        "Partner Inbox",
        "9f1a7d3e-2c4b-4e8f-a1b2-c3d4e5f60718",
    ];
    let facts = ObjectFacts {
        object,
        sources: &sources,
        added_us: now() - DAY,
    };
    query(text).matches(&facts, now())
}

fn ipv4_indicator() -> Value {
    json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2024-06-01T09:30:00.000Z",
        "modified": "2024-06-10T09:30:00.000Z",
        "name": "Emotet C2 server",
        "description": "Seen in the \"crime ware\" campaign",
        "indicator_types": ["malicious-activity"],
        "pattern": "[ipv4-addr:value = '198.51.100.23']",
        "pattern_type": "stix",
        "valid_from": "2024-06-01T09:30:00Z",
        "confidence": 85,
        "revoked": false,
        "labels": ["APT", "crime ware", "botnet"],
        "kill_chain_phases": [
            {"kill_chain_name": "mitre-attack", "phase_name": "command-and-control"}
        ],
        "external_references": [
            {"source_name": "internal", "external_id": "CASE-1"},
            {"source_name": "mitre-attack", "external_id": "T1071", "url": "https://attack.mitre.org/techniques/T1071/"}
        ],
        "object_marking_refs": [GREEN],
        "x_score": 7.5
    })
}

fn hash_indicator() -> Value {
    json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--1c0a3ee9-6f36-4a47-8b8a-5b8f2a7f0d11",
        "created": "2024-05-01T00:00:00Z",
        "modified": "2024-05-01T00:00:00Z",
        "name": "Dridex dropper",
        "pattern": "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f' OR file:hashes.MD5 = '6cf9fd0a8a7e9e0d1e1f2a3b4c5d6e7f']",
        "pattern_type": "stix",
        "valid_from": "2024-05-01T00:00:00Z",
        "confidence": 40,
        "revoked": true,
        "object_marking_refs": [AMBER_STRICT, WHITE]
    })
}

fn malware() -> Value {
    json!({
        "type": "malware",
        "spec_version": "2.1",
        "id": "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b",
        "created": "2024-01-01T00:00:00Z",
        "modified": "2024-01-01T00:00:00Z",
        "name": "Emotet",
        "is_family": true,
        "malware_types": ["trojan", "downloader"]
    })
}

fn relationship() -> Value {
    json!({
        "type": "relationship",
        "spec_version": "2.1",
        "id": "relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad",
        "created": "2024-06-01T09:30:00Z",
        "modified": "2024-06-01T09:30:00Z",
        "relationship_type": "indicates",
        "source_ref": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "target_ref": "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b",
        "object_marking_refs": [RED_V2]
    })
}

#[test]
fn the_design_examples() {
    let ip = ipv4_indicator();
    assert!(hit(
        "type:indicator and ioc_type:ipv4-addr and confidence:>=70 and tlp:green",
        &ip
    ));
    assert!(hit(
        r#"(labels:apt or labels:"crime ware") and not revoked:true and modified:>now-30d"#,
        &ip
    ));
    assert!(hit(
        "external_references.source_name:mitre-attack  name:*emotet*  source:partner-inbox",
        &ip
    ));
    assert!(!hit(
        "type:indicator and ioc_type:ipv4-addr and confidence:>=70 and tlp:green",
        &hash_indicator()
    ));
}

#[test]
fn equality_ignores_case() {
    let ip = ipv4_indicator();
    assert!(hit("type:INDICATOR", &ip));
    assert!(hit("name:\"emotet c2 SERVER\"", &ip));
    assert!(!hit("name:emotet", &ip), "equality is the whole value");
    assert!(!hit("type:malware", &ip));
}

#[test]
fn ordered_comparisons_on_numbers() {
    let ip = ipv4_indicator();
    for (q, expected) in [
        ("confidence:85", true),
        ("confidence:84", false),
        ("confidence:>84", true),
        ("confidence:>85", false),
        ("confidence:>=85", true),
        ("confidence:>=86", false),
        ("confidence:<86", true),
        ("confidence:<85", false),
        ("confidence:<=85", true),
        ("confidence:<=84", false),
        ("x_score:>7.25", true),
        ("x_score:7.5", true),
        ("x_score:<=7", false),
    ] {
        assert_eq!(hit(q, &ip), expected, "{q}");
    }
}

#[test]
fn ordered_comparisons_on_times() {
    let ip = ipv4_indicator();
    for (q, expected) in [
        ("modified:>2024-06-10T09:29:59.999999Z", true),
        ("modified:>2024-06-10T09:30:00Z", false),
        ("modified:>=2024-06-10T09:30:00Z", true),
        ("modified:<2024-06-10T09:30:00.000001Z", true),
        ("modified:<=2024-06-10T09:30:00Z", true),
        ("modified:2024-06-10T09:30:00Z", true),
        ("valid_from:2024-06-01T09:30:00.000000000Z", true),
        ("modified:>now-30d", true),
        ("modified:>now-1d", false),
        ("modified:<now", true),
        ("valid_from:<now+1w", true),
        ("created:>=now-15d", true),
        ("created:>=now-360h", true),
        ("created:>=now-21600m", true),
        ("created:>=now-1296000s", true),
        ("created:>now-2w", false),
    ] {
        assert_eq!(hit(q, &ip), expected, "{q}");
    }
}

#[test]
fn time_values_compare_text_when_the_property_is_not_a_time() {
    let obj = json!({"type": "note", "content": "now", "x_when": "soon"});
    assert!(hit("content:now", &obj));
    assert!(!hit("x_when:>now", &obj));
}

#[test]
fn strings_compare_as_numbers_or_alphabetically() {
    let obj = json!({"type": "x-thing", "spec_version": "2.1", "name": "Mango"});
    assert!(hit("spec_version:>=2.1", &obj));
    assert!(!hit("spec_version:>2.1", &obj));
    assert!(hit("spec_version:2.1", &obj));
    assert!(hit("name:>apple", &obj));
    assert!(hit("name:<=mango", &obj));
    assert!(!hit("name:>mango", &obj));
}

#[test]
fn type_mismatches_are_false_never_errors() {
    let ip = ipv4_indicator();
    for q in [
        "revoked:70",
        "revoked:>true",
        "labels:>=5",
        "x_score:abc",
        "x_score:true",
        "kill_chain_phases:x",
        "name:>now",
        "external_references:mitre-attack",
    ] {
        assert!(!hit(q, &ip), "{q}");
    }
}

#[test]
fn booleans() {
    let ip = ipv4_indicator();
    assert!(hit("revoked:false", &ip));
    assert!(hit("revoked:FALSE", &ip));
    assert!(!hit("revoked:true", &ip));
    assert!(hit("not revoked:true", &ip));
    assert!(hit("revoked:true", &hash_indicator()));
    assert!(hit("is_family:true", &malware()));
}

#[test]
fn lists_match_if_any_element_does() {
    let ip = ipv4_indicator();
    assert!(hit("labels:apt", &ip));
    assert!(hit("labels:botnet", &ip));
    assert!(!hit("labels:ransomware", &ip));
    assert!(hit("kill_chain_phases.phase_name:command-and-control", &ip));
    assert!(hit("kill_chain_phases.kill_chain_name:mitre-attack", &ip));
    assert!(hit("external_references.external_id:T1071", &ip));
    assert!(hit(
        "external_references.url:https://attack.mitre.org/*",
        &ip
    ));
    assert!(hit("not labels:ransomware", &ip));
    assert!(!hit("not labels:apt", &ip), "not negates the any");
    let nested = json!({"type": "x", "grid": [[{"v": 1}], [{"v": 2}, {"v": 3}]]});
    assert!(hit("grid.v:3", &nested));
    assert!(hit("grid.v:>2", &nested));
    assert!(!hit("grid.v:>3", &nested));
}

#[test]
fn wildcards() {
    let ip = ipv4_indicator();
    for (q, expected) in [
        ("name:*emotet*", true),
        ("name:EMOTET*", true),
        ("name:*server", true),
        ("name:*c2*", true),
        ("name:emotet", false),
        ("name:*dridex*", false),
        ("id:indicator--*", true),
        ("labels:crime*", true),
        (r#"labels:"crime *""#, true),
        (r#"description:"*\"crime ware\"*""#, true),
        (r#"name:"emotet\*""#, false),
    ] {
        assert_eq!(hit(q, &ip), expected, "{q}");
    }
    assert!(
        Query::parse("confidence:8*").is_err(),
        "numbers have no wildcards"
    );
    let starry = json!({"type": "x", "name": "a*b"});
    assert!(hit(r#"name:"a\*b""#, &starry));
    assert!(!hit(r#"name:"a\*b""#, &json!({"type": "x", "name": "axb"})));
}

#[test]
fn presence() {
    let ip = ipv4_indicator();
    assert!(hit("confidence:*", &ip));
    assert!(hit("kill_chain_phases:*", &ip));
    assert!(hit("external_references.url:*", &ip));
    assert!(!hit("valid_until:*", &ip));
    assert!(hit("not valid_until:*", &ip));
    let sparse = json!({"type": "x", "empty": [], "nothing": null, "nulls": [null]});
    assert!(!hit("empty:*", &sparse));
    assert!(!hit("nothing:*", &sparse));
    assert!(!hit("nulls:*", &sparse));
}

#[test]
fn ioc_fields_come_from_the_pattern() {
    let ip = ipv4_indicator();
    assert!(hit("ioc_type:ipv4-addr", &ip));
    assert!(hit("ioc_type:IPv4-Addr", &ip));
    assert!(hit("ioc_type:ipv4-addr:value", &ip));
    assert!(hit("ioc_value:198.51.100.23", &ip));
    assert!(hit("ioc_value:198.51.100.*", &ip));
    assert!(!hit("ioc_value:10.*", &ip));
    assert!(hit("ioc_type:*", &ip));
    assert!(hit("ioc_value:*", &ip));

    let hashes = hash_indicator();
    assert!(hit("ioc_type:file:hashes.'SHA-256'", &hashes));
    assert!(hit(r#"ioc_type:"file:hashes.'SHA-256'""#, &hashes));
    assert!(hit("ioc_type:file:hashes.SHA-256", &hashes));
    assert!(hit("ioc_type:file:hashes.'sha-256'", &hashes));
    assert!(hit("ioc_type:file:hashes.'MD5'", &hashes));
    assert!(hit("ioc_type:file:hashes.MD5", &hashes));
    assert!(hit("ioc_type:file:hashes.*", &hashes));
    assert!(!hit("ioc_type:ipv4-addr", &hashes));
    assert!(hit(
        "ioc_value:AEC070645FE53EE3B3763059376134F058CC337247C978ADD178B6CCDFB0019F",
        &hashes
    ));
    assert!(hit("ioc_value:6cf9fd0a8a7e9e0d1e1f2a3b4c5d6e7f", &hashes));
}

#[test]
fn only_stix_indicators_have_iocs() {
    assert!(!hit("ioc_type:*", &malware()));
    let observed = json!({"type": "observed-data", "pattern": "[ipv4-addr:value = '1.2.3.4']"});
    assert!(!hit("ioc_type:*", &observed));
    let sigma = json!({
        "type": "indicator",
        "pattern_type": "sigma",
        "pattern": "title: x\ndetection: ..."
    });
    assert!(!hit("ioc_type:*", &sigma));
    let stix20 = json!({"type": "indicator", "pattern": "[url:value = 'http://evil.example/a']"});
    assert!(hit(
        "ioc_type:url and ioc_value:\"http://evil.example/a\"",
        &stix20
    ));
    assert!(hit("ioc_value:http://evil.example/a", &stix20));
    let broken =
        json!({"type": "indicator", "pattern_type": "stix", "pattern": "[ipv4-addr:value = "});
    assert!(!hit("ioc_type:*", &broken));
    assert!(hit("not ioc_type:*", &broken));
    assert!(hit("type:indicator", &broken));
}

#[test]
fn ioc_terms_are_checked_independently() {
    let mixed = json!({
        "type": "indicator",
        "pattern": "[ipv4-addr:value = '10.0.0.1'] AND [domain-name:value = 'evil.example']"
    });
    // Each term may be satisfied by a different IOC of the same pattern.
    assert!(hit("ioc_type:domain-name and ioc_value:10.*", &mixed));
}

#[test]
fn tlp_levels_and_order() {
    let green = ipv4_indicator();
    let strict = hash_indicator();
    let red = relationship();
    let unmarked = malware();
    for (q, expected) in [
        ("tlp:green", [true, false, false, false]),
        ("tlp:TLP:GREEN", [true, false, false, false]),
        ("tlp:amber+strict", [false, true, false, false]),
        ("tlp:red", [false, false, true, false]),
        ("tlp:<=green", [true, false, false, false]),
        ("tlp:<amber", [true, false, false, false]),
        ("tlp:>=amber", [false, true, true, false]),
        ("tlp:>amber+strict", [false, false, true, false]),
        ("tlp:>white", [true, true, true, false]),
        ("tlp:>=clear", [true, true, true, false]),
        ("tlp:*", [true, true, true, false]),
        ("not tlp:*", [false, false, false, true]),
        ("not tlp:>green", [true, false, false, true]),
    ] {
        let got = [&green, &strict, &red, &unmarked].map(|o| hit(q, o));
        assert_eq!(got, expected, "{q}");
    }
}

#[test]
fn source_matches_any_collection_name() {
    let ip = ipv4_indicator();
    assert!(hit("source:partner-inbox", &ip));
    assert!(hit("source:\"partner inbox\"", &ip));
    assert!(hit("source:9f1a7d3e-2c4b-4e8f-a1b2-c3d4e5f60718", &ip));
    assert!(hit("source:partner*", &ip));
    assert!(hit("source:*", &ip));
    assert!(!hit("source:internal", &ip));
    let facts = ObjectFacts {
        object: &ip,
        sources: &[],
        added_us: 0,
    };
    assert!(!query("source:*").matches(&facts, now()));
    assert!(query("not source:*").matches(&facts, now()));
}

#[test]
fn added_is_the_store_time() {
    let ip = ipv4_indicator();
    // hit() adds the object one day before now.
    for (q, expected) in [
        ("added:>now-2d", true),
        ("added:>now-1d", false),
        ("added:>=now-1d", true),
        ("added:<now", true),
        ("added:<=now-25h", false),
        ("added:>2024-06-14T00:00:00Z", true),
        ("added:2024-06-14T12:00:00Z", true),
        ("added:<2024-06-14T12:00:00Z", false),
        ("added:*", true),
    ] {
        assert_eq!(hit(q, &ip), expected, "{q}");
    }
}

#[test]
fn relative_queries_move_with_now() {
    let q = query("added:>now-30d");
    assert!(q.uses_relative_time());
    let obj = malware();
    let facts = ObjectFacts {
        object: &obj,
        sources: &[],
        added_us: now(),
    };
    assert!(q.matches(&facts, now() + 29 * DAY));
    assert!(!q.matches(&facts, now() + 31 * DAY));
}

#[test]
fn knows_which_queries_are_relative() {
    for (q, relative) in [
        ("type:indicator", false),
        ("modified:>2024-01-01T00:00:00Z", false),
        ("modified:>now-30d", true),
        ("type:x and not (a:b or created:<now)", true),
        ("added:>now-1h", true),
        ("added:>2024-01-01T00:00:00Z", false),
        ("name:now*", false),
        ("name:nowhere", false),
    ] {
        assert_eq!(query(q).uses_relative_time(), relative, "{q}");
    }
}

#[test]
fn boolean_structure() {
    let ip = ipv4_indicator();
    for (q, expected) in [
        ("type:malware or type:indicator", true),
        ("type:malware or type:note", false),
        ("type:indicator and type:malware", false),
        ("type:indicator type:malware", false),
        ("type:malware or type:indicator and confidence:<10", false),
        ("(type:malware or type:indicator) and confidence:>10", true),
        ("type:indicator and confidence:<10 or labels:apt", true),
        ("type:indicator and (confidence:<10 or labels:apt)", true),
        ("not type:malware and not type:note", true),
        ("not (type:malware or type:indicator)", false),
        ("not not type:indicator", true),
        ("NOT type:indicator OR labels:apt", true),
    ] {
        assert_eq!(hit(q, &ip), expected, "{q}");
    }
}

#[test]
fn ioc_terms_are_evaluated_after_cheap_ones() {
    // Same answers whatever the written order.
    let ip = ipv4_indicator();
    let mal = malware();
    for q in [
        "ioc_type:ipv4-addr and type:indicator",
        "type:indicator and ioc_type:ipv4-addr",
        "ioc_value:198.* or type:malware",
    ] {
        assert!(hit(q, &ip), "{q}");
    }
    assert!(hit("ioc_value:198.* or type:malware", &mal));
    assert!(!hit("ioc_type:ipv4-addr and type:indicator", &mal));
}

#[test]
fn malware_relationships() {
    let rel = relationship();
    assert!(hit(
        "type:relationship and relationship_type:indicates and target_ref:malware--*",
        &rel
    ));
    assert!(!hit("type:relationship and source_ref:malware--*", &rel));
}

#[test]
fn unicode_values() {
    let obj =
        json!({"type": "threat-actor", "name": "Ürük Şahin", "aliases": ["Σίσυφος", "日本語"]});
    assert!(hit("name:\"ürük şahin\"", &obj));
    assert!(hit("name:ÜRÜK*", &obj));
    assert!(hit("aliases:σίσυφος", &obj));
    assert!(hit("aliases:日本*", &obj));
}

#[test]
fn query_value_semantics() {
    let a = query("type:indicator  and tlp:green");
    assert_eq!(a.text(), "type:indicator  and tlp:green");
    assert_eq!(a.to_string(), "type:indicator  and tlp:green");
    assert_eq!(a, "type:indicator  and tlp:green".parse::<Query>().unwrap());
    assert_ne!(a, query("type:indicator and tlp:green"));
}

#[test]
fn serde_round_trip_and_errors() {
    let q: Query = serde_json::from_value(json!("confidence:>=70")).unwrap();
    assert_eq!(serde_json::to_value(&q).unwrap(), json!("confidence:>=70"));
    let err = serde_json::from_value::<Query>(json!("confidence:>=")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid query: at column 14: expected a value after ':>=', found end of query"
    );
}

#[test]
fn query_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Query>();
}

#[test]
fn odd_objects_never_panic() {
    let q = query(
        "a.b.c:1 or labels:x* or confidence:>1 or modified:>now or tlp:red or ioc_value:* or source:x or added:>now",
    );
    for object in [
        json!(null),
        json!([]),
        json!("indicator"),
        json!({"type": 5, "pattern": 7, "object_marking_refs": {"a": 1}}),
        json!({"a": {"b": [null, {"c": [1, "1"]}]}}),
        json!({"type": "indicator", "pattern": "(".repeat(10_000)}),
        json!({"modified": "not a time", "confidence": "high", "labels": [[["x"]]]}),
    ] {
        let facts = ObjectFacts {
            object: &object,
            sources: &[],
            added_us: i64::MIN,
        };
        let _ = q.matches(&facts, i64::MAX);
    }
}

#[test]
fn cookbook_queries_parse_and_behave() {
    let cookbook = [
        "type:indicator and ioc_type:ipv4-addr and confidence:>=70 and not revoked:true",
        "tlp:<=green and added:>now-30d",
        "type:indicator and ioc_type:\"file:hashes.'SHA-256'\"",
        "ioc_type:file:hashes.*",
        "ioc_type:ipv4-addr or ioc_type:ipv6-addr or ioc_type:domain-name or ioc_type:url",
        "external_references.source_name:mitre-attack",
        "external_references.source_name:mitre-attack and external_references.external_id:T1071*",
        "source:partner-inbox",
        "name:*emotet* or labels:emotet or aliases:*emotet*",
        "type:indicator and not revoked:true and (not valid_until:* or valid_until:>now)",
        "type:relationship and relationship_type:indicates and source_ref:indicator--* and target_ref:malware--*",
        "(type:malware and is_family:true) or (type:relationship and target_ref:malware--*)",
        "kill_chain_phases.phase_name:command-and-control and modified:>now-7d and not labels:test",
        "type:indicator and pattern_type:stix and not ioc_type:*",
    ];
    let objects = [
        ipv4_indicator(),
        hash_indicator(),
        malware(),
        relationship(),
    ];
    let expected = [
        [true, false, false, false],
        [true, false, false, false],
        [false, true, false, false],
        [false, true, false, false],
        [true, false, false, false],
        [true, false, false, false],
        [true, false, false, false],
        [true, true, true, true],
        [true, false, true, false],
        [true, false, false, false],
        [false, false, false, true],
        [false, false, true, true],
        [true, false, false, false],
        [false, false, false, false],
    ];
    for (q, want) in cookbook.iter().zip(expected) {
        let got = objects.each_ref().map(|o| hit(q, o));
        assert_eq!(got, want, "{q}");
    }
}
