//! The TAXII 2.0 API. It serves the same API roots, collections and data as 2.1 —
//! which version answers is chosen by the request's `Accept` — in 2.0's media types
//! and shapes: objects are converted to STIX 2.0 per request and sent as bundles,
//! listings page by `Range: items a-b`, posted 2.0 bundles are stored as 2.1.

mod bundle;
pub(super) mod collections;
pub(super) mod discovery;
pub(super) mod manifest;
pub(super) mod objects;
mod paging;
mod range;
mod selection;
pub(super) mod status;

pub use discovery::discovery;

use super::error::TaxiiError;
use super::params::{self, Allowed, Params};
use super::Ctx;

/// The filters of a 2.0 request; the 2.1-only `next` and `match[spec_version]` are 400s.
fn parse_params(ctx: &Ctx, query: Option<&str>, allowed: Allowed) -> Result<Params, TaxiiError> {
    let params = params::parse(query, allowed).map_err(TaxiiError::bad_request)?;
    ctx.note_ignored(&params);
    if params.next.is_some() {
        return Err(TaxiiError::bad_request(
            "TAXII 2.0 pages with the Range header (e.g. `Range: items 0-99`), not `next`",
        ));
    }
    if !params.filters.spec_versions.is_empty() {
        return Err(TaxiiError::bad_request(
            "match[spec_version] is a TAXII 2.1 filter; TAXII 2.0 serves STIX 2.0 only",
        ));
    }
    Ok(params)
}
