//! What both store backends share about membership and ingest, whatever their SQL:
//! the indexed facts of a version, the `is_first`/`is_last` rule, per-view size
//! changes and the status resource an ingest ends with.

use std::collections::HashMap;

use crate::store::add_objects::{Status, StatusDetail};
use crate::store::error::StoreError;
use crate::store::micros::Micros;

/// The indexed facts of a stored object version.
#[derive(Debug, Clone)]
pub struct VersionRow {
    /// `object_versions.vid`.
    pub vid: i64,
    /// STIX id.
    pub stix_id: String,
    /// STIX type.
    pub kind: String,
    /// `spec_version`.
    pub spec_version: String,
    /// The version as listed.
    pub version_us: Micros,
}

/// Whether a version entering a view becomes the object's first and/or last there,
/// given the earliest and latest versions of the object the view already holds. A
/// query view drawing from several collections may hold two different objects with
/// the same id and version: a tie is first (or last) too, beside the other.
pub fn first_and_last(
    version_us: Micros,
    min: Option<Micros>,
    max: Option<Micros>,
) -> (bool, bool) {
    (
        min.is_none_or(|m| version_us <= m),
        max.is_none_or(|m| version_us >= m),
    )
}

/// Per-view size changes accumulated during a transaction, written once at the end.
#[derive(Debug, Default)]
pub struct SizeChanges(HashMap<i64, i64>);

impl SizeChanges {
    /// Record `delta` rows for a view.
    pub fn add(&mut self, view_id: i64, delta: i64) {
        *self.0.entry(view_id).or_default() += delta;
    }

    /// The non-zero changes, as `(view_id, delta)`.
    pub fn into_changes(self) -> impl Iterator<Item = (i64, i64)> {
        self.0.into_iter().filter(|(_, delta)| *delta != 0)
    }
}

/// Outcomes of one ingest.
#[derive(Debug, Default)]
pub struct Ingested {
    /// Per-object outcomes.
    pub successes: Vec<StatusDetail>,
    /// Rejected objects.
    pub failures: Vec<StatusDetail>,
}

impl Ingested {
    /// The completed status resource of an add-objects request of `total` objects
    /// received at `request_timestamp`, and its JSON as stored.
    pub fn into_status(
        self,
        request_timestamp: String,
        total: u64,
    ) -> Result<(Status, String), StoreError> {
        let status = Status {
            id: uuid::Uuid::new_v4().to_string(),
            status: "complete".into(),
            request_timestamp,
            total_count: total,
            success_count: self.successes.len() as u64,
            failure_count: self.failures.len() as u64,
            pending_count: 0,
            successes: self.successes,
            failures: self.failures,
            pendings: Vec::new(),
        };
        let body = serde_json::to_string(&status)
            .map_err(|e| StoreError::Database(format!("cannot encode status: {e}")))?;
        Ok((status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_outside_the_known_range_is_first_or_last() {
        assert_eq!(first_and_last(5, None, None), (true, true));
        assert_eq!(first_and_last(1, Some(2), Some(4)), (true, false));
        assert_eq!(first_and_last(9, Some(2), Some(4)), (false, true));
        assert_eq!(first_and_last(3, Some(2), Some(4)), (false, false));
        assert_eq!(
            first_and_last(4, Some(2), Some(4)),
            (false, true),
            "a tie is last too"
        );
    }

    #[test]
    fn only_non_zero_size_changes_are_written() {
        let mut sizes = SizeChanges::default();
        sizes.add(1, 2);
        sizes.add(1, -2);
        sizes.add(2, 1);
        assert_eq!(sizes.into_changes().collect::<Vec<_>>(), vec![(2, 1)]);
    }
}
