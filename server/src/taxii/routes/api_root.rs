//! `/{api_root}/`: the API root resource.

use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::{only_get, refusing, resource, ApiRootPath, Segments};
use crate::config::TaxiiVersion;
use crate::state::AppState;
use crate::taxii::context::Resource;
use crate::taxii::{discovery, v20, Ctx};

pub(super) fn routes(state: &AppState) -> Router {
    resource(
        "/{api_root}",
        Resource::new(state, "api_root"),
        refusing(get(api_root), only_get),
    )
}

async fn api_root(Segments(path): Segments<ApiRootPath>, ctx: Ctx) -> Response {
    let result = match ctx.version {
        TaxiiVersion::V21 => discovery::api_root(&ctx, &path.api_root),
        TaxiiVersion::V20 => v20::discovery::api_root(&ctx, &path.api_root),
    };
    ctx.answer(result)
}
