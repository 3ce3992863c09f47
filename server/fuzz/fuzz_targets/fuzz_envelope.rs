//! Envelopes and bundles as producers POST them (and `import` reads them).
//!
//! Checks, besides "never panics": every accepted object's raw JSON re-parses,
//! its version formats as a timestamp that parses back, and a page written from
//! the accepted objects is an envelope that parses again with the same objects.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taxiway_server::stix::timestamp::parse_timestamp;
use taxiway_server::stix::tlp::{defined_tlp, tlp_of};
use taxiway_server::store::Entry;
use taxiway_server::taxii::envelope::{parse_envelope, write_envelope};

fuzz_target!(|data: &[u8]| {
    for assumed in [None, Some("2.0"), Some("2.1")] {
        let Ok(parsed) = parse_envelope(data, assumed) else {
            continue;
        };
        let mut entries = Vec::new();
        for (i, new) in parsed.objects.iter().enumerate() {
            let reparsed: serde_json::Value =
                serde_json::from_str(&new.raw).expect("accepted raw JSON re-parses");
            assert_eq!(reparsed, new.object.value);
            let version = new.object.version_text();
            if let Some(us) = new.object.version {
                assert_eq!(parse_timestamp(&version), Ok(us), "{version}");
            }
            let _ = (tlp_of(&new.object.value), defined_tlp(&new.object.value));
            entries.push(Entry {
                date_added: i64::try_from(i).unwrap_or(i64::MAX),
                id: new.object.id.clone(),
                version: new.object.version.unwrap_or(0),
                spec_version: new.object.spec_version.clone(),
                raw: new.raw.clone(),
            });
        }
        let page = write_envelope(&entries, true, Some("next\"cursor"));
        let again = parse_envelope(&page, assumed).expect("a written page parses");
        assert_eq!(again.objects.len(), parsed.objects.len());
        assert!(again.failures.is_empty());
    }
});
