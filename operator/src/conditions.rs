//! Status conditions as Kubernetes API conventions define them: one per type, and
//! `lastTransitionTime` moves only when a condition's status really changes (so a
//! reconcile of unchanged inputs writes an identical status, and writes nothing).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// A condition's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// It cannot be told yet.
    Unknown,
}

impl Status {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }

    /// `True` when `holds`, else `False`.
    pub fn from_bool(holds: bool) -> Status {
        if holds {
            Status::True
        } else {
            Status::False
        }
    }
}

/// A condition as the reconciler wants it, before timestamps are decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// The condition type, e.g. `Ready`.
    pub type_: &'static str,
    /// Its status.
    pub status: Status,
    /// A CamelCase reason.
    pub reason: String,
    /// A human-readable message.
    pub message: String,
}

impl Wanted {
    /// A wanted condition.
    pub fn new(
        type_: &'static str,
        status: Status,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Wanted {
        Wanted {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The current time at the one-second precision the API stores, so a condition read
/// back compares equal to the one written.
pub fn now() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// The conditions to write: `wanted` in order, each keeping the previous
/// `lastTransitionTime` unless its status changed. An empty message is replaced by the
/// reason: server-side apply on Kubernetes 1.20 sends `""` on as `null`, which the
/// schema (message is a required string) rejects.
pub fn merge(
    previous: &[Condition],
    wanted: Vec<Wanted>,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    wanted
        .into_iter()
        .map(|w| {
            let status = w.status.as_str();
            let since = previous
                .iter()
                .find(|c| c.type_ == w.type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            let message = if w.message.is_empty() {
                w.reason.clone()
            } else {
                w.message
            };
            Condition {
                type_: w.type_.to_string(),
                status: status.to_string(),
                reason: w.reason,
                message,
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}

/// The condition of this type, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of this type is present with this status.
pub fn is(conditions: &[Condition], type_: &str, status: Status) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    #[test]
    fn unchanged_status_keeps_its_transition_time() {
        let first = merge(
            &[],
            vec![Wanted::new("Ready", Status::False, "Starting", "0 of 1")],
            Some(1),
            &at(100),
        );
        let second = merge(
            &first,
            vec![Wanted::new(
                "Ready",
                Status::False,
                "Starting",
                "still 0 of 1",
            )],
            Some(2),
            &at(200),
        );
        assert_eq!(second[0].last_transition_time, at(100));
        assert_eq!(second[0].message, "still 0 of 1");
        assert_eq!(second[0].observed_generation, Some(2));
    }

    #[test]
    fn a_real_transition_moves_the_time() {
        let first = merge(
            &[],
            vec![Wanted::new("Ready", Status::False, "Starting", "")],
            Some(1),
            &at(100),
        );
        let second = merge(
            &first,
            vec![Wanted::new("Ready", Status::True, "Available", "")],
            Some(1),
            &at(200),
        );
        assert_eq!(second[0].last_transition_time, at(200));
        assert!(is(&second, "Ready", Status::True));
    }

    #[test]
    fn messages_are_never_empty() {
        let merged = merge(
            &[],
            vec![Wanted::new("Degraded", Status::False, "AsExpected", "")],
            None,
            &at(1),
        );
        assert_eq!(merged[0].message, "AsExpected");
    }

    #[test]
    fn same_inputs_give_identical_conditions() {
        let wanted = || {
            vec![
                Wanted::new("Ready", Status::True, "Available", "1 of 1"),
                Wanted::new("Degraded", Status::False, "AsExpected", ""),
            ]
        };
        let first = merge(&[], wanted(), Some(3), &at(100));
        assert_eq!(merge(&first, wanted(), Some(3), &at(999)), first);
    }
}
