//! `/taxii2/` (TAXII 2.1) and `/taxii/` (TAXII 2.0) discovery.

use axum::extract::Request;
use axum::http::{header, Method};
use axum::response::Response;
use axum::routing::any;
use axum::Router;

use super::resource;
use crate::config::TaxiiVersion;
use crate::state::AppState;
use crate::taxii::context::Resource;
use crate::taxii::error::TaxiiError;
use crate::taxii::{discovery, v20, Ctx};

pub(super) fn routes(state: &AppState) -> Router {
    let resource_of = || Resource::new(state, "discovery");
    resource("/taxii2", resource_of(), any(taxii21)).merge(resource(
        "/taxii",
        resource_of(),
        any(taxii20),
    ))
}

/// `/taxii2/`: GET in TAXII 2.1 where 2.1 is served.
async fn taxii21(ctx: Ctx, method: Method) -> Response {
    let result = if !ctx.config.serves(TaxiiVersion::V21) {
        Err(TaxiiError::not_found("TAXII 2.1 is not served"))
    } else if ctx.version == TaxiiVersion::V20 {
        Err(TaxiiError::not_acceptable())
    } else if method != Method::GET {
        Err(TaxiiError::method_not_allowed("GET"))
    } else {
        discovery::discovery(&ctx)
    };
    ctx.answer(result)
}

/// `/taxii/`: answered in TAXII 2.0 where 2.0 is served, whatever was negotiated.
async fn taxii20(ctx: Ctx, request: Request) -> Response {
    let result = if ctx.config.serves(TaxiiVersion::V20) {
        let accept = request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        v20::discovery(&ctx, request.method(), accept)
    } else if request.method() == Method::GET {
        Err(TaxiiError::not_found("TAXII 2.0 is not served"))
    } else {
        Err(TaxiiError::method_not_allowed("GET"))
    };
    ctx.answer(result)
}
