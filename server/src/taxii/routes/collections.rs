//! `/{api_root}/collections/`: the collections the caller may see.

use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::{only_get, refusing, resource, ApiRootPath, Segments};
use crate::config::TaxiiVersion;
use crate::state::AppState;
use crate::taxii::context::Resource;
use crate::taxii::{collections, v20, Ctx};

pub(super) fn routes(state: &AppState) -> Router {
    resource(
        "/{api_root}/collections",
        Resource::new(state, "collections"),
        refusing(get(list), only_get),
    )
}

async fn list(Segments(path): Segments<ApiRootPath>, ctx: Ctx) -> Response {
    let result = match ctx.version {
        TaxiiVersion::V21 => collections::list(&ctx, &path.api_root),
        TaxiiVersion::V20 => v20::collections::list(&ctx, &path.api_root),
    };
    ctx.answer(result)
}
