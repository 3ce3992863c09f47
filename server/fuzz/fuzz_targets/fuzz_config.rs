//! The configuration loader: `taxiway.toml` text through parsing, validation
//! and query compilation. Never panics; problems are reported, not thrown.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match taxiway_server::config::parse(text) {
        Ok(service) => {
            // Every collection that validated is reachable by its id and API root.
            for c in &service.collections {
                assert!(service.collection(&c.settings.api_root, c.id()).is_some());
                let _ = service.find_collection(c.id());
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
