//! The TAXII 2.0 API. It serves the same API roots, collections and data as 2.1 —
//! which version answers is chosen by the request's `Accept` — in 2.0's media types
//! and shapes: objects are converted to STIX 2.0 per request and sent as bundles,
//! listings page by `Range: items a-b`, posted 2.0 bundles are stored as 2.1.

pub(crate) mod bundle;
pub(super) mod collections;
pub(super) mod discovery;
mod filters;
pub(super) mod manifest;
pub(super) mod objects;
mod paging;
mod range;
mod selection;
pub(super) mod status;

pub use self::discovery::discovery;
