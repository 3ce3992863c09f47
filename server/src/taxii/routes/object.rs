//! `/{api_root}/collections/{collection}/objects/{object}/`: get an object's versions
//! (GET); delete them (DELETE, TAXII 2.1 only).

use axum::extract::Request;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::{refusing, resource, ObjectPath, Segments};
use crate::config::TaxiiVersion;
use crate::state::AppState;
use crate::taxii::context::Resource;
use crate::taxii::error::TaxiiError;
use crate::taxii::{objects, v20, Ctx};

pub(super) fn routes(state: &AppState) -> Router {
    resource(
        "/{api_root}/collections/{collection}/objects/{object}",
        Resource::new(state, "object"),
        refusing(get(object).delete(delete), refuse),
    )
}

async fn object(Segments(path): Segments<ObjectPath>, ctx: Ctx, request: Request) -> Response {
    let (root, id, object) = (&path.api_root, &path.collection, &path.object);
    let query = request.uri().query();
    let result = match ctx.version {
        TaxiiVersion::V21 => objects::get_object(&ctx, root, id, object, query).await,
        TaxiiVersion::V20 => v20::objects::get_object(&ctx, root, id, object, query).await,
    };
    ctx.answer(result)
}

async fn delete(Segments(path): Segments<ObjectPath>, ctx: Ctx, request: Request) -> Response {
    let (root, id, object) = (&path.api_root, &path.collection, &path.object);
    let result = match ctx.version {
        TaxiiVersion::V21 => {
            objects::delete_object(&ctx, root, id, object, request.uri().query()).await
        }
        TaxiiVersion::V20 => Err(TaxiiError::method_not_allowed("GET")),
    };
    ctx.answer(result)
}

async fn refuse(ctx: Ctx) -> Response {
    let allowed = match ctx.version {
        TaxiiVersion::V21 => "GET, DELETE",
        TaxiiVersion::V20 => "GET",
    };
    ctx.answer(Err(TaxiiError::method_not_allowed(allowed)))
}
