//! The collection query language: parsing, and evaluating a parsed query.
//!
//! Input: query text, optionally followed by a NUL byte and a JSON value to
//! evaluate the query against (a STIX object). Checks, besides "never panics":
//! - a parse error points inside the text (column 1..=chars+1);
//! - a parsed query keeps its text;
//! - `not ( q )` matches exactly when `q` does not, and `q or q` / `q q` match as `q`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use taxiway_server::query::{ObjectFacts, Query};

/// Evaluation times: a realistic one, the epoch and the extremes (relative times saturate).
const NOWS: [i64; 4] = [1_717_000_000_000_000, 0, i64::MIN, i64::MAX];

fuzz_target!(|data: &[u8]| {
    let (text, object) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let query = match Query::parse(text) {
        Ok(q) => q,
        Err(e) => {
            let columns = text.chars().count() + 1;
            assert!(
                (1..=columns).contains(&e.position),
                "error column {} outside 1..={columns}: {e}",
                e.position
            );
            return;
        }
    };
    assert_eq!(query.text(), text);
    assert_eq!(
        Query::parse(&query.to_string()).map(|q| q.text().to_owned()),
        Ok(text.to_owned())
    );

    let Some(object) = object else { return };
    let Ok(value) = serde_json::from_slice::<Value>(object) else {
        return;
    };
    let sources = [
        "e78eb331-c15a-463f-ba62-73b2a71a324a",
        "inbox",
        "Threat feed",
    ];
    let negated = Query::parse(&format!("not ( {text} )")).ok();
    let doubled = Query::parse(&format!("( {text} ) or ( {text} )")).ok();
    let juxtaposed = Query::parse(&format!("( {text} ) ( {text} )")).ok();
    for (i, now) in NOWS.into_iter().enumerate() {
        let facts = ObjectFacts {
            object: &value,
            sources: &sources,
            added_us: NOWS[(i + 1) % NOWS.len()],
        };
        let matched = query.matches(&facts, now);
        if let Some(n) = &negated {
            assert_eq!(n.matches(&facts, now), !matched, "not ( {text} )");
        }
        if let Some(d) = &doubled {
            assert_eq!(d.matches(&facts, now), matched, "( {text} ) or ( {text} )");
        }
        if let Some(j) = &juxtaposed {
            assert_eq!(j.matches(&facts, now), matched, "( {text} ) ( {text} )");
        }
    }
});
