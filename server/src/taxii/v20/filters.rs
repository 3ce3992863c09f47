//! The filters of a TAXII 2.0 request: the 2.1 ones, less those 2.0 lacks.

use crate::taxii::context::Ctx;
use crate::taxii::error::TaxiiError;
use crate::taxii::params::{self, Allowed, Params};

/// The filters of a 2.0 request; the 2.1-only `next` and `match[spec_version]` are 400s.
pub(super) fn parse_params(
    ctx: &Ctx,
    query: Option<&str>,
    allowed: Allowed,
) -> Result<Params, TaxiiError> {
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
