//! `/{api_root}/collections/{collection}/manifest/`: what a collection holds.

use axum::extract::Request;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::{only_get, refusing, resource, CollectionPath, Segments};
use crate::config::TaxiiVersion;
use crate::state::AppState;
use crate::taxii::context::Resource;
use crate::taxii::{objects, v20, Ctx};

pub(super) fn routes(state: &AppState) -> Router {
    resource(
        "/{api_root}/collections/{collection}/manifest",
        Resource::new(state, "manifest"),
        refusing(get(manifest), only_get),
    )
}

async fn manifest(
    Segments(path): Segments<CollectionPath>,
    ctx: Ctx,
    request: Request,
) -> Response {
    let (root, id) = (&path.api_root, &path.collection);
    let query = request.uri().query();
    let result = match ctx.version {
        TaxiiVersion::V21 => objects::get_manifest(&ctx, root, id, query).await,
        TaxiiVersion::V20 => v20::manifest::get(&ctx, root, id, query, request.headers()).await,
    };
    ctx.answer(result)
}
