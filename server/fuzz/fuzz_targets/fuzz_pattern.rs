//! STIX patterns (the source of `ioc_type`/`ioc_value`) and STIX timestamps.
//!
//! The input is tried as a whole pattern, as an object path (`ioc_type:` values
//! are canonicalised with it) and as a timestamp. Checks, besides "never panics":
//! - a pattern error points inside the text;
//! - every IOC found can be asked for: an indicator with this pattern matches the
//!   queries `ioc_value:"<value>"` and `ioc_type:"<type>"` (quoted and escaped);
//! - a timestamp that parses formats back to one that parses to the same instant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taxiway_server::query::{ObjectFacts, Query};
use taxiway_server::stix::pattern::{canonical_ioc_type, iocs};
use taxiway_server::stix::timestamp::{format_taxii, parse_timestamp};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match iocs(text) {
        Ok(found) => {
            let indicator = serde_json::json!({
                "type": "indicator",
                "pattern_type": "stix",
                "pattern": text,
            });
            let facts = ObjectFacts {
                object: &indicator,
                sources: &[],
                added_us: 0,
            };
            for ioc in found.iter().take(8) {
                assert!(
                    !ioc.ioc_type.is_empty(),
                    "{text:?} gave an IOC without a type"
                );
                for (field, value) in [("ioc_value", &ioc.value), ("ioc_type", &ioc.ioc_type)] {
                    let query = format!("{field}:\"{}\"", escape(value));
                    let parsed = Query::parse(&query)
                        .unwrap_or_else(|e| panic!("{query} (from {text:?}) does not parse: {e}"));
                    assert!(parsed.matches(&facts, 0), "{query} does not match {text:?}");
                }
            }
        }
        Err(e) => {
            let columns = text.chars().count() + 1;
            assert!(
                (1..=columns).contains(&e.position),
                "error column {} outside 1..={columns}: {e}",
                e.position
            );
        }
    }
    let _ = canonical_ioc_type(text);
    if let Ok(us) = parse_timestamp(text) {
        let formatted = format_taxii(us);
        assert_eq!(
            parse_timestamp(&formatted),
            Ok(us),
            "{text:?} -> {formatted}"
        );
    }
});

/// A query string body: `\\`, `"` and `*` escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '*') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
