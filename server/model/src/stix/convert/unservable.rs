//! Why an object cannot be served on the TAXII 2.0 API.

/// Why an object has no STIX 2.0 form (it is left out of 2.0 responses).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unservable(pub String);
