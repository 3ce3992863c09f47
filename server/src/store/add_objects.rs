//! An add-objects request and the TAXII status resource it produces.

use serde::{Deserialize, Serialize};

use crate::store::validate::ValidObject;

/// A STIX object as received in an envelope, ready to store.
#[derive(Debug, Clone)]
pub struct NewObject {
    /// The parsed and validated object.
    pub object: ValidObject,
    /// The exact JSON bytes received.
    pub raw: String,
}

/// Outcome of one object of an add-objects request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDetail {
    /// STIX id (empty when the object had none).
    pub id: String,
    /// The version (`modified`) as a TAXII timestamp, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Why it failed (failures only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A TAXII status resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Status id (UUIDv4).
    pub id: String,
    /// `complete` or `pending`.
    pub status: String,
    /// When the request was received (TAXII timestamp).
    pub request_timestamp: String,
    /// Objects in the request.
    pub total_count: u64,
    /// Objects stored (or already present).
    pub success_count: u64,
    /// Objects rejected.
    pub failure_count: u64,
    /// Objects not yet processed.
    pub pending_count: u64,
    /// Stored objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub successes: Vec<StatusDetail>,
    /// Rejected objects, with reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<StatusDetail>,
    /// Objects still pending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pendings: Vec<StatusDetail>,
}

/// Whether an add-objects request leaves a TAXII status resource behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StatusResource {
    /// Keep the status resource, readable by the request's owner until it expires
    /// (TAXII POST, feeds).
    #[default]
    Record,
    /// Keep none: the request has no client that could ask for it (`import`). The
    /// [`Status`] returned still counts the request's successes and failures.
    Omit,
}

/// An add-objects request: validated objects plus the failures found while parsing.
#[derive(Debug, Clone, Default)]
pub struct AddObjects {
    /// Objects to store.
    pub objects: Vec<NewObject>,
    /// Objects rejected by validation before reaching the store.
    pub failures: Vec<StatusDetail>,
    /// Who sent it ([`crate::access::Caller::key`]): only they may read its status.
    pub owner: String,
    /// Whether the store keeps the request's status resource.
    pub status_resource: StatusResource,
}
