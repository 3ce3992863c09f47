//! `/{api_root}/collections/{collection}/`: one collection.

use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::{only_get, refusing, resource, CollectionPath, Segments};
use crate::config::TaxiiVersion;
use crate::state::AppState;
use crate::taxii::context::Resource;
use crate::taxii::{collections, v20, Ctx};

pub(super) fn routes(state: &AppState) -> Router {
    resource(
        "/{api_root}/collections/{collection}",
        Resource::new(state, "collection"),
        refusing(get(collection), only_get),
    )
}

async fn collection(Segments(path): Segments<CollectionPath>, ctx: Ctx) -> Response {
    let (root, id) = (&path.api_root, &path.collection);
    let result = match ctx.version {
        TaxiiVersion::V21 => collections::get(&ctx, root, id),
        TaxiiVersion::V20 => v20::collections::get(&ctx, root, id),
    };
    ctx.answer(result)
}
