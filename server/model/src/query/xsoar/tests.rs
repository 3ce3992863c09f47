//! What an XSOAR user sees: each query they bring, its translation, and what it matches.

use serde_json::{json, Value};

use super::translate;
use crate::query::{ObjectFacts, Query};
use crate::stix::timestamp::parse_timestamp;

fn native(xsoar: &str) -> String {
    let text = translate(xsoar).unwrap_or_else(|e| panic!("{xsoar}: {e}"));
    Query::parse(&text).unwrap_or_else(|e| panic!("{xsoar} → {text}: {e}"));
    text
}

fn error(xsoar: &str) -> (usize, String) {
    match translate(xsoar) {
        Ok(text) => panic!("{xsoar} translated to {text}"),
        Err(e) => (e.column, e.message),
    }
}

#[test]
fn indicator_types() {
    let cases = [
        ("type:IP", "ioc_type:ipv4-addr and not ioc_value:*/*"),
        ("type:ip", "ioc_type:ipv4-addr and not ioc_value:*/*"),
        ("type:IPv6", "ioc_type:ipv6-addr and not ioc_value:*/*"),
        ("type:CIDR", "ioc_type:ipv4-addr and ioc_value:*/*"),
        ("type:IPv6CIDR", "ioc_type:ipv6-addr and ioc_value:*/*"),
        (
            "type:Domain",
            r#"ioc_type:domain-name and not ioc_value:"*\**""#,
        ),
        (
            "type:DomainGlob",
            r#"ioc_type:domain-name and ioc_value:"*\**""#,
        ),
        ("type:URL", "ioc_type:url"),
        ("type:File", "ioc_type:file:hashes.*"),
        ("type:\"File SHA-256\"", "ioc_type:file:hashes.'SHA-256'"),
        ("type:Email", "ioc_type:email-addr"),
        ("type:\"Registry Key\"", "ioc_type:windows-registry-key:key"),
        ("type:ASN", "ioc_type:autonomous-system:number"),
        ("type:CVE", "type:vulnerability and name:CVE-*"),
        ("type:Account", "ioc_type:user-account:*"),
        ("type:Malware", "type:malware"),
        ("type:\"Threat Actor\"", "type:threat-actor"),
        ("type:\"Attack Pattern\"", "type:attack-pattern"),
        ("type:Campaign", "type:campaign"),
        ("type:\"Intrusion Set\"", "type:intrusion-set"),
        ("type:Tool", "type:tool"),
        ("type:Report", "type:report"),
        ("type:\"Course of Action\"", "type:course-of-action"),
        ("type:Identity", "type:identity"),
        ("type:Location", "type:location"),
        ("type:Infrastructure", "type:infrastructure"),
        ("type:Vulnerability", "type:vulnerability"),
    ];
    for (xsoar, expected) in cases {
        assert_eq!(native(xsoar), expected, "{xsoar}");
    }
}

#[test]
fn verdicts_reputations_and_scores_are_confidence_bands() {
    let malicious = "confidence:>=70";
    let suspicious = "confidence:>=30 and confidence:<=69";
    let good = "confidence:>=1 and confidence:<=29";
    let unknown = "not confidence:* or confidence:0";
    let cases = [
        ("verdict:Malicious", malicious),
        ("verdict:bad", malicious),
        ("verdict:Suspicious", suspicious),
        ("verdict:Benign", good),
        ("verdict:Good", good),
        ("verdict:Unknown", unknown),
        ("reputation:Bad", malicious),
        ("reputation:Suspicious", suspicious),
        ("reputation:Good", good),
        ("reputation:None", unknown),
        ("reputation:Unknown", unknown),
        ("score:3", malicious),
        ("score:2", suspicious),
        ("score:1", good),
        ("score:0", unknown),
        ("score:>=2", "confidence:>=30"),
        ("score:>1", "confidence:>=30"),
        ("score:>0", "confidence:>=1"),
        ("score:<2", "not confidence:* or confidence:<=29"),
        ("score:<=2", "not confidence:* or confidence:<=69"),
        ("score:<=3", "not confidence:* or confidence:<=100"),
        ("score:<1", unknown),
    ];
    for (xsoar, expected) in cases {
        assert_eq!(native(xsoar), expected, "{xsoar}");
    }
    assert_eq!(
        native("score:>=1 score:<3"),
        "confidence:>=1 and (not confidence:* or confidence:<=69)"
    );
    assert_eq!(native("-verdict:Malicious"), "not confidence:>=70");
    assert_eq!(
        native("type:IP verdict:Unknown"),
        "ioc_type:ipv4-addr and not ioc_value:*/* and (not confidence:* or confidence:0)"
    );
}

#[test]
fn tags_sources_and_values() {
    let cases = [
        ("tags:apt", "labels:apt"),
        ("tags:\"crime ware\"", r#"labels:"crime ware""#),
        ("tags:apt*", "labels:apt*"),
        ("tags:*", "labels:*"),
        (
            "sourceBrands:\"AlienVault OTX\"",
            r#"source:"AlienVault OTX""#,
        ),
        ("sourcebrands:osint-*", "source:osint-*"),
        ("sourceInstances:partner-inbox", "source:partner-inbox"),
        (
            "value:*.evil.example",
            "ioc_value:*.evil.example or name:*.evil.example",
        ),
        (
            "value:\"Cobalt Strike\"",
            r#"ioc_value:"Cobalt Strike" or name:"Cobalt Strike""#,
        ),
        (
            "value:http://x.example/a?b=c",
            "ioc_value:http://x.example/a?b=c or name:http://x.example/a?b=c",
        ),
        (r#"value:"a\*b""#, r#"ioc_value:"a\*b" or name:"a\*b""#),
    ];
    for (xsoar, expected) in cases {
        assert_eq!(native(xsoar), expected, "{xsoar}");
    }
}

#[test]
fn expiration_status() {
    assert_eq!(
        native("expirationStatus:active"),
        "not revoked:true and (not valid_until:* or valid_until:>now)"
    );
    assert_eq!(
        native("expirationStatus:Expired"),
        "revoked:true or valid_until:<=now"
    );
    assert_eq!(
        native("type:URL expirationStatus:expired"),
        "ioc_type:url and (revoked:true or valid_until:<=now)"
    );
}

#[test]
fn dates() {
    let cases = [
        (
            r#"lastSeen:>="2024-01-01T00:00:00 +0000""#,
            "modified:>=2024-01-01T00:00:00Z",
        ),
        (
            r#"lastSeen:>="2024-01-01T02:00:00 +0200""#,
            "modified:>=2024-01-01T00:00:00Z",
        ),
        (
            "modified:<2024-01-01T00:00:00Z",
            "modified:<2024-01-01T00:00:00Z",
        ),
        (r#"firstSeen:>"7 days ago""#, "created:>now-7d"),
        (r#"firstSeen:>="3 hours ago""#, "created:>=now-3h"),
        (r#"lastSeen:>="2 weeks ago""#, "modified:>=now-2w"),
        (r#"lastSeen:>="1 month ago""#, "modified:>=now-30d"),
        ("lastSeen:>=now-24h", "modified:>=now-24h"),
        (
            "firstSeen:2024-01-01",
            "created:>=2024-01-01T00:00:00Z and created:<2024-01-02T00:00:00Z",
        ),
        ("firstSeen:>2024-01-01", "created:>=2024-01-02T00:00:00Z"),
        ("firstSeen:>=2024-01-01", "created:>=2024-01-01T00:00:00Z"),
        ("firstSeen:<2024-01-01", "created:<2024-01-01T00:00:00Z"),
        ("firstSeen:<=2024-12-31", "created:<2025-01-01T00:00:00Z"),
        (
            "firstSeen:\"2024-01-01T10:00:00 +0000\"",
            "created:2024-01-01T10:00:00Z",
        ),
        ("lastSeen:*", "modified:*"),
        (r#"expiration:>"now""#, "valid_until:>now"),
    ];
    for (xsoar, expected) in cases {
        assert_eq!(native(xsoar), expected, "{xsoar}");
    }
}

#[test]
fn structure_is_kept() {
    let cases = [
        (
            "type:IP tags:c2",
            "ioc_type:ipv4-addr and not ioc_value:*/* and labels:c2",
        ),
        ("type:URL and tags:c2", "ioc_type:url and labels:c2"),
        (
            "type:URL OR type:Email",
            "ioc_type:url or ioc_type:email-addr",
        ),
        (
            "(type:URL or type:Email) -tags:test",
            "(ioc_type:url or ioc_type:email-addr) and not labels:test",
        ),
        (
            "type:IP or type:URL tags:c2",
            "(ioc_type:ipv4-addr and not ioc_value:*/*) or (ioc_type:url and labels:c2)",
        ),
        ("NOT tags:test", "not labels:test"),
        ("not (tags:a or tags:b)", "not (labels:a or labels:b)"),
        ("-type:IP", "not (ioc_type:ipv4-addr and not ioc_value:*/*)"),
        ("-value:x", "not (ioc_value:x or name:x)"),
    ];
    for (xsoar, expected) in cases {
        assert_eq!(native(xsoar), expected, "{xsoar}");
    }
}

#[test]
fn errors_name_the_column_and_the_field() {
    let cases = [
        ("type:IP investigationIDs:42", 9, "field 'investigationIDs' cannot be translated: it refers to XSOAR incidents"),
        ("type:IP and customFields.owner:bob", 13, "field 'customFields.owner' cannot be translated"),
        ("myCustomField:x", 1, "field 'myCustomField' cannot be translated: it is not an XSOAR indicator field"),
        ("aggregatedReliability:A", 1, "field 'aggregatedReliability' cannot be translated"),
        ("type:Hostname", 6, "indicator type 'Hostname' cannot be translated: Taxiway knows IP, IPv6"),
        ("type:IP*", 6, "expected one indicator type (no wildcards) after 'type:', found 'IP*'"),
        ("verdict:Evil", 9, "expected Malicious (or Bad), Suspicious, Benign (or Good) or Unknown"),
        ("score:4", 7, "expected a score 0 (Unknown), 1 (Good), 2 (Suspicious) or 3 (Malicious) after 'score:', found '4'"),
        ("score:>3", 8, "'score:>3' matches no score (scores are 0 to 3)"),
        ("score:<0", 8, "'score:<0' matches no score"),
        ("tags:>a", 5, "expected ':' ('tags' values have no order), found ':>'"),
        ("expirationStatus:soon", 18, "expected active or expired after 'expirationStatus:', found 'soon'"),
        ("lastSeen:>yesterday", 11, "expected a time like \"2024-01-01T00:00:00 +0000\""),
        (r#"lastSeen:>="2024-01-01T00:00:00 CET""#, 12, "expected a time like"),
        (r#"lastSeen:"7 days ago""#, 10, "expected a comparison before a relative time"),
        ("lastSeen:>2024*", 11, "expected a time like"),
        ("type:Threat Actor", 13, "expected field:value, found 'Actor'"),
        ("type:IP and", 12, "expected a term after 'and', found end of query"),
        ("(type:IP", 9, "expected ')' to close the '(' at column 1"),
        (r#"tags:"open"#, 11, "expected '\"' to close the string opened at column 6"),
        ("\"evil\"", 1, "expected a field name and ':' before the string"),
    ];
    for (xsoar, column, message) in cases {
        let (got_column, got) = error(xsoar);
        assert!(got.starts_with(message), "{xsoar}: {got}");
        assert_eq!(got_column, column, "{xsoar}: {got}");
    }
    let e = translate("tags:x myField:1").unwrap_err();
    assert_eq!(
        e.to_string(),
        "at column 8: field 'myField' cannot be translated: it is not an XSOAR indicator field \
         Taxiway knows (custom fields cannot be translated); Taxiway translates type, score, \
         verdict, reputation, tags, sourceBrands, sourceInstances, expirationStatus, value, \
         firstSeen, lastSeen, modified and expiration"
    );
}

#[test]
fn columns_count_characters() {
    let (column, message) = error("tags:日本 type:Nope");
    assert_eq!(column, 14, "{message}");
}

#[test]
fn translations_always_reparse() {
    // Every pair of terms under every connective, with negations and groups.
    let terms = [
        "type:IP",
        "type:DomainGlob",
        "type:CVE",
        "verdict:Unknown",
        "score:<=2",
        "tags:\"a b\"",
        "value:*x*",
        "expirationStatus:active",
        "lastSeen:>=\"7 days ago\"",
        "firstSeen:2024-01-01",
        "sourceBrands:\"(odd) \\\"name\\\"\"",
    ];
    for a in terms {
        for b in terms {
            for shape in [
                "{a} {b}",
                "{a} or {b}",
                "-{a} or not ({b})",
                "not ({a} or -{b})",
            ] {
                let xsoar = shape.replace("{a}", a).replace("{b}", b);
                native(&xsoar);
            }
        }
    }
    let deep = format!("{}-type:IP{}", "(".repeat(47), ")".repeat(47));
    native(&deep);
}

#[test]
fn never_panics() {
    let alphabet = [
        "type",
        ":",
        ">",
        "<",
        "=",
        "*",
        "(",
        ")",
        "\"",
        "\\",
        " ",
        "and",
        "or",
        "not",
        "-",
        "score",
        "3",
        "lastSeen",
        "7 days ago",
        "é",
        "\u{0}",
        "IP",
        "value",
    ];
    let n = alphabet.len();
    for len in 1..=4u32 {
        for mut i in 0..n.pow(len) {
            let mut s = String::new();
            for _ in 0..len {
                s.push_str(alphabet[i % n]);
                i /= n;
            }
            if let Ok(text) = translate(&s) {
                assert!(Query::parse(&text).is_ok(), "{s} → {text}");
            }
        }
    }
}

/// Whether the translation of `xsoar` matches `object` (posted to `partner-inbox`).
fn hit(xsoar: &str, object: &Value) -> bool {
    let now = parse_timestamp("2024-06-15T12:00:00Z").expect("time");
    let sources = ["partner-inbox", "Partner Inbox"];
    let facts = ObjectFacts {
        object,
        sources: &sources,
        added_us: now,
    };
    Query::parse(&native(xsoar))
        .expect("parses")
        .matches(&facts, now)
}

fn indicator(pattern: &str, confidence: Option<u8>) -> Value {
    let mut object = json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2024-06-01T09:30:00.000Z",
        "modified": "2024-06-10T09:30:00.000Z",
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2024-06-01T09:30:00Z",
        "labels": ["c2"]
    });
    if let Some(c) = confidence {
        object["confidence"] = json!(c);
    }
    object
}

#[test]
fn translations_match_what_xsoar_users_mean() {
    let ip = indicator("[ipv4-addr:value = '198.51.100.23']", Some(85));
    let cidr = indicator("[ipv4-addr:value = '198.51.100.0/24']", Some(50));
    let domain = indicator("[domain-name:value = 'evil.example']", Some(10));
    let glob = indicator("[domain-name:value = '*.evil.example']", None);
    let sha256 = indicator("[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']", Some(0));
    let md5 = indicator(
        "[file:hashes.MD5 = '6cf9fd0a8a7e9e0d1e1f2a3b4c5d6e7f']",
        Some(70),
    );
    let key = indicator(
        "[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\\\Run']",
        None,
    );
    let asn = indicator("[autonomous-system:number = 64496]", None);
    let account = indicator("[user-account:user_id = 'admin']", None);
    let cve = json!({"type": "vulnerability", "id": "vulnerability--1", "name": "CVE-2024-3094",
        "created": "2024-03-29T00:00:00Z", "modified": "2024-03-29T00:00:00Z"});

    assert!(hit("type:IP", &ip) && !hit("type:IP", &cidr));
    assert!(hit("type:CIDR", &cidr) && !hit("type:CIDR", &ip));
    assert!(hit("type:Domain", &domain) && !hit("type:Domain", &glob));
    assert!(hit("type:DomainGlob", &glob) && !hit("type:DomainGlob", &domain));
    assert!(hit("type:File", &sha256) && hit("type:File", &md5) && !hit("type:File", &ip));
    assert!(hit("type:\"File MD5\"", &md5) && !hit("type:\"File MD5\"", &sha256));
    assert!(hit("type:\"Registry Key\"", &key));
    assert!(hit("type:ASN", &asn) && hit("type:Account", &account));
    assert!(hit("type:CVE", &cve) && hit("type:vulnerability", &cve) && !hit("type:CVE", &ip));

    assert!(hit("verdict:Malicious", &ip) && hit("verdict:Malicious", &md5));
    assert!(hit("verdict:Suspicious", &cidr) && !hit("verdict:Suspicious", &ip));
    assert!(hit("verdict:Good", &domain) && !hit("verdict:Good", &sha256));
    assert!(hit("verdict:Unknown", &glob) && hit("verdict:Unknown", &sha256));
    assert!(hit("score:>=2", &cidr) && !hit("score:>=2", &domain) && !hit("score:>=2", &glob));
    assert!(hit("score:<2", &glob) && hit("score:<2", &domain) && !hit("score:<2", &cidr));

    assert!(hit("tags:C2", &ip) && !hit("-tags:c2", &ip));
    assert!(hit("sourceBrands:\"partner inbox\"", &ip) && !hit("sourceBrands:osint", &ip));
    assert!(hit("value:198.51.100.*", &ip) && hit("value:*.evil.*", &glob));
    assert!(hit("value:cve-2024-*", &cve));

    assert!(hit(r#"lastSeen:>="7 days ago""#, &ip) && !hit(r#"lastSeen:>="3 days ago""#, &ip));
    assert!(hit("firstSeen:2024-06-01", &ip) && !hit("firstSeen:2024-06-02", &ip));
    assert!(hit(r#"firstSeen:<"2024-06-01T11:00:00 +0100""#, &ip));
    assert!(!hit(r#"firstSeen:<"2024-06-01T10:00:00 +0100""#, &ip));

    let mut expired = ip.clone();
    expired["valid_until"] = json!("2024-06-14T00:00:00Z");
    let mut revoked = ip.clone();
    revoked["revoked"] = json!(true);
    let mut later = ip.clone();
    later["valid_until"] = json!("2024-07-01T00:00:00Z");
    for (object, active) in [
        (&ip, true),
        (&later, true),
        (&expired, false),
        (&revoked, false),
    ] {
        assert_eq!(hit("expirationStatus:active", object), active, "{object}");
        assert_eq!(hit("expirationStatus:expired", object), !active, "{object}");
    }
}
