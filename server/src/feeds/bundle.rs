//! Pulling a STIX bundle URL: stored whole when its bytes changed since the last pull
//! (a STIX 2.0 bundle converted to 2.1 as a TAXII 2.0 POST would be); an unchanged
//! bundle stores nothing.

use serde_json::Value;

use crate::feeds::checkpoint::{source_of, Checkpoint};
use crate::feeds::error::FeedError;
use crate::feeds::pull::Pull;
use crate::feeds::sink::PullReport;
use crate::taxii::envelope::parse_envelope_within;
use crate::taxii::v20::bundle;

const ACCEPT: &str = "application/stix+json, application/json;q=0.9, */*;q=0.5";

/// Hex SHA-256 of `bytes`.
fn sha256(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Pull the bundle unless its digest is `last`.
pub async fn pull(
    pull: &Pull<'_>,
    last: Option<String>,
    report: &mut PullReport,
) -> Result<(), FeedError> {
    let fetched = pull.upstream.get(&pull.feed.url, ACCEPT, &[]).await?;
    match fetched.status {
        200..=299 => {}
        401 | 403 => return Err(FeedError::Unauthorized(fetched.status)),
        s => return Err(FeedError::Status(s)),
    }
    let digest = sha256(&fetched.body);
    if last.as_deref() == Some(digest.as_str()) {
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default)]
        spec_version: Option<Value>,
    }
    let head: Head = serde_json::from_slice(&fetched.body)
        .map_err(|e| FeedError::Protocol(format!("not a STIX bundle: {e}")))?;
    let request = if head.spec_version.as_ref().and_then(Value::as_str) == Some("2.0") {
        bundle::parse(&fetched.body, pull.max_object_bytes)
    } else {
        parse_envelope_within(&fetched.body, None, pull.max_object_bytes)
    }
    .map_err(FeedError::Protocol)?;
    drop(fetched);
    pull.sink.store(request, report).await?;
    pull.save(&Checkpoint::Bundle {
        source: source_of(pull.feed),
        sha256: digest,
    })
    .await
}
