//! `/{api_root}/status/{status}/`: how an earlier POST of objects went.

use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::{only_get, refusing, resource, Segments, StatusPath};
use crate::config::TaxiiVersion;
use crate::state::AppState;
use crate::taxii::context::Resource;
use crate::taxii::{status, v20, Ctx};

pub(super) fn routes(state: &AppState) -> Router {
    resource(
        "/{api_root}/status/{status}",
        Resource::new(state, "status"),
        refusing(get(status), only_get),
    )
}

async fn status(Segments(path): Segments<StatusPath>, ctx: Ctx) -> Response {
    let result = match ctx.version {
        TaxiiVersion::V21 => status::get(&ctx, &path.api_root, &path.status).await,
        TaxiiVersion::V20 => v20::status::get(&ctx, &path.api_root, &path.status).await,
    };
    ctx.answer(result)
}
