//! `/{api_root}/collections/{collection}/objects/`: list objects (GET), add them (POST).

use axum::extract::Request;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::{refusing, resource, CollectionPath, Segments};
use crate::config::TaxiiVersion;
use crate::state::AppState;
use crate::taxii::context::Resource;
use crate::taxii::error::TaxiiError;
use crate::taxii::{objects, v20, Ctx};

pub(super) fn routes(state: &AppState) -> Router {
    resource(
        "/{api_root}/collections/{collection}/objects",
        Resource::new(state, "objects"),
        refusing(get(list).post(add), refuse),
    )
}

async fn list(Segments(path): Segments<CollectionPath>, ctx: Ctx, request: Request) -> Response {
    let (root, id) = (&path.api_root, &path.collection);
    let query = request.uri().query();
    let result = match ctx.version {
        TaxiiVersion::V21 => objects::get_objects(&ctx, root, id, query).await,
        TaxiiVersion::V20 => {
            v20::objects::get_objects(&ctx, root, id, query, request.headers()).await
        }
    };
    ctx.answer(result)
}

async fn add(Segments(path): Segments<CollectionPath>, ctx: Ctx, request: Request) -> Response {
    let (root, id) = (&path.api_root, &path.collection);
    let (parts, body) = request.into_parts();
    let result = match ctx.version {
        TaxiiVersion::V21 => objects::add_objects(&ctx, root, id, &parts.headers, body).await,
        TaxiiVersion::V20 => v20::objects::add_objects(&ctx, root, id, &parts.headers, body).await,
    };
    ctx.answer(result)
}

async fn refuse(ctx: Ctx) -> Response {
    ctx.answer(Err(TaxiiError::method_not_allowed("GET, POST")))
}
