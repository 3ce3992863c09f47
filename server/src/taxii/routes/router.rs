//! The TAXII router: every resource's routes merged, behind the request context.

use axum::extract::Request;
use axum::response::Response;
use axum::routing::any;
use axum::Router;

use super::resource::behind_context;
use super::{
    api_root, collection, collections, discovery, manifest, object, objects, status, versions,
};
use crate::state::AppState;
use crate::taxii::context::{self, Ctx, Resource};
use crate::taxii::error::TaxiiError;

/// The TAXII router: every resource's routes behind the request context.
pub fn router(state: AppState) -> Router {
    let resources = Router::new()
        .merge(discovery::routes(&state))
        .merge(api_root::routes(&state))
        .merge(collections::routes(&state))
        .merge(collection::routes(&state))
        .merge(objects::routes(&state))
        .merge(object::routes(&state))
        .merge(versions::routes(&state))
        .merge(manifest::routes(&state))
        .merge(status::routes(&state))
        .fallback_service(behind_context(
            Resource::new(&state, "unknown"),
            any(no_resource),
        ));
    // Every request enters through one fallback handler, as a top-level route: axum
    // sets `Content-Length` and empties HEAD answers there, for the answers of every
    // layer (limits, the request context) and resource alike.
    let enter = move |request: Request| {
        let (state, resources) = (state.clone(), resources.clone());
        async move { context::arrive(&state, request, resources).await }
    };
    Router::new().fallback(enter)
}

/// 404 for a path that names no TAXII resource.
async fn no_resource(ctx: Ctx) -> Response {
    ctx.answer(Err(TaxiiError::not_found("no TAXII resource at this path")))
}
