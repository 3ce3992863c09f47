//! STIX patterns (the source of `ioc_type`/`ioc_value`) and STIX timestamps.
//!
//! The input is tried as a whole pattern, as an object path (`ioc_type:` values
//! are canonicalised with it) and as a timestamp. Checks, besides "never panics":
//! - a pattern error points inside the text;
//! - a timestamp that parses formats back to one that parses to the same instant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taxiway_server::stix::pattern::{canonical_ioc_type, iocs};
use taxiway_server::stix::timestamp::{format_taxii, parse_timestamp};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match iocs(text) {
        Ok(found) => {
            for ioc in found {
                assert!(!ioc.ioc_type.is_empty(), "{text:?} gave an IOC without a type");
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
        assert_eq!(parse_timestamp(&formatted), Ok(us), "{text:?} -> {formatted}");
    }
});
