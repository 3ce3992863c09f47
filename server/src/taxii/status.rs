//! Status resources of add-objects requests.

use axum::http::StatusCode;
use axum::response::Response;

use super::error::TaxiiError;
use super::media::taxii_media_type;
use super::response::json;
use super::Ctx;
use crate::access::Caller;

/// `GET /{root}/status/{id}/`.
pub async fn get(ctx: &Ctx, root: &str, id: &str) -> Result<Response, TaxiiError> {
    ctx.api_root(root)?;
    if ctx.caller == Caller::Anonymous && ctx.state.policy() == crate::access::Policy::Rules {
        return Err(TaxiiError::unauthorized());
    }
    // Another caller's status is not found: its ids and failure messages are theirs.
    let status = ctx
        .store()
        .status(root, id, ctx.caller.key())
        .await?
        .ok_or_else(|| {
            TaxiiError::not_found("no such status (statuses are kept at least 24 hours)")
        })?;
    json(StatusCode::OK, taxii_media_type(ctx.version), &status)
}
