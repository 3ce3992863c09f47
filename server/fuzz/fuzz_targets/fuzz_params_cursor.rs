//! Listing parameters (`match[...]`, `added_after`, `limit`, `next`) and paging cursors.
//!
//! The input is a URL query string; it is parsed for each endpoint kind, its
//! `next` (and the whole input) is decoded as a cursor, and a cursor built from
//! the parsed filters must survive an encode/decode round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taxiway_server::taxii::cursor::{resume, Cursor};
use taxiway_server::taxii::params::{parse, Allowed};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cursor) = Cursor::decode(text) {
        assert_eq!(Cursor::decode(&cursor.encode()).as_ref(), Ok(&cursor));
    }
    for allowed in [Allowed::All, Allowed::VersionAndSpec, Allowed::SpecOnly] {
        let Ok(params) = parse(Some(text), allowed) else {
            continue;
        };
        if let Ok(resumed) = resume(&params, "objects|c1|alice") {
            let cursor = Cursor::new(
                "objects|c1|alice".into(),
                resumed.after.unwrap_or(i64::MIN),
                resumed.filters,
            );
            assert_eq!(Cursor::decode(&cursor.encode()).as_ref(), Ok(&cursor));
        }
        let cursor = Cursor::new("s".into(), i64::MAX, params.filters.clone());
        assert_eq!(Cursor::decode(&cursor.encode()).as_ref(), Ok(&cursor));
    }
    let _ = parse(None, Allowed::All);
});
