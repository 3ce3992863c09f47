//! Content negotiation: `Accept` and `Content-Type` headers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taxiway_server::config::TaxiiVersion;
use taxiway_server::taxii::media::{negotiate, posted_version};

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    for served in [
        &[TaxiiVersion::V21][..],
        &[TaxiiVersion::V20],
        &[TaxiiVersion::V20, TaxiiVersion::V21],
    ] {
        if let Ok(version) = negotiate(Some(header), served) {
            assert!(served.contains(&version));
        }
    }
    let _ = posted_version(Some(header));
});
