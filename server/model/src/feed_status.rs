//! What a feed's runs did, as the server reports it on its admin listener
//! (`GET /feeds`) and the operator copies into each `TaxiiFeed`'s status.
//!
//! The server keeps the record of a feed's last run in the store beside its
//! checkpoint, so every replica on one database reports the same thing, whichever
//! of them ran the pull. Nothing here is a credential: errors are the sanitised
//! messages of the server's feed errors (no URL query strings, no file contents).

use serde::{Deserialize, Serialize};

/// The path of the report on the admin listener.
pub const FEEDS_PATH: &str = "/feeds";

/// Where a feed stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// A pull is running now.
    Syncing,
    /// The last pull finished without an error.
    Ok,
    /// The last pull failed (`error_kind`, `error`).
    Failed,
}

/// The record of a feed's runs, kept in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedRun {
    /// Now: syncing, or how the last pull ended.
    pub state: RunState,
    /// When the current or last pull started (RFC 3339, UTC).
    pub started_at: String,
    /// When the last pull finished (RFC 3339, UTC), if one has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// When a pull last finished without an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<String>,
    /// The kind of the last pull's error (the `kind` label of the feed error metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// The last pull's error, as logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Pulls that failed in a row (0 after a success).
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Objects (or list entries) the last pull fetched.
    #[serde(default)]
    pub fetched: u64,
    /// Objects the last pull stored.
    #[serde(default)]
    pub stored: u64,
    /// Objects the last pull rejected.
    #[serde(default)]
    pub rejected: u64,
    /// Objects stored by every pull of this feed so far.
    #[serde(default)]
    pub stored_total: u64,
    /// The process that ran it (host name and port).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub holder: String,
}

/// One configured feed in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedReport {
    /// The feed's `name`.
    pub name: String,
    /// The collection it stores into, as configured (`into`).
    pub into: String,
    /// Its `format`.
    pub format: String,
    /// Seconds between two pulls.
    pub interval_secs: u64,
    /// Its runs; `None` before the first pull started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<FeedRun>,
}

/// The body of `GET /feeds`: every feed the serving configuration names, in its order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedsReport {
    /// The feeds.
    pub feeds: Vec<FeedReport>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_round_trips_in_camel_case() {
        let report = FeedsReport {
            feeds: vec![FeedReport {
                name: "partner".into(),
                into: "inbox".into(),
                format: "taxii".into(),
                interval_secs: 900,
                run: Some(FeedRun {
                    state: RunState::Failed,
                    started_at: "2026-12-06T10:00:00Z".into(),
                    finished_at: Some("2026-12-06T10:00:01Z".into()),
                    last_success_at: None,
                    error_kind: Some("auth".into()),
                    error: Some("the upstream refused the credentials (401)".into()),
                    consecutive_failures: 2,
                    fetched: 0,
                    stored: 0,
                    rejected: 0,
                    stored_total: 10,
                    holder: "taxiway-0:8443".into(),
                }),
            }],
        };
        let text = serde_json::to_string(&report).expect("json");
        assert!(text.contains("\"intervalSecs\":900"), "{text}");
        assert!(text.contains("\"state\":\"failed\""), "{text}");
        assert!(text.contains("\"consecutiveFailures\":2"), "{text}");
        assert!(!text.contains("lastSuccessAt"), "{text}");
        let back: FeedsReport = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, report);
    }
}
