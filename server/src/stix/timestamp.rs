//! TEMPORARY until the query helper lands.
use chrono::{DateTime, SecondsFormat, Utc};
/// Bad timestamp.
#[derive(Debug, thiserror::Error)]
#[error("invalid timestamp")]
pub struct TimestampError;
/// Parse.
pub fn parse_timestamp(s: &str) -> Result<i64, TimestampError> {
    if !s.ends_with('Z') {
        return Err(TimestampError);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_micros())
        .map_err(|_| TimestampError)
}
/// Format.
pub fn format_taxii(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}
/// Now.
pub fn now_us() -> i64 {
    Utc::now().timestamp_micros()
}
