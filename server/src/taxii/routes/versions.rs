//! `/{api_root}/collections/{collection}/objects/{object}/versions/`: an object's
//! versions (TAXII 2.1; 2.0 asks for the object with `match[version]=all`).

use axum::extract::Request;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::{only_get, refusing, resource, ObjectPath, Segments};
use crate::state::AppState;
use crate::taxii::context::Resource;
use crate::taxii::{objects, Ctx};

pub(super) fn routes(state: &AppState) -> Router {
    let versions_resource = Resource::new(state, "versions").absent_in_20(
        "TAXII 2.0 has no versions endpoint; ask for the object with match[version]=all",
    );
    resource(
        "/{api_root}/collections/{collection}/objects/{object}/versions",
        versions_resource,
        refusing(get(versions), only_get),
    )
}

async fn versions(Segments(path): Segments<ObjectPath>, ctx: Ctx, request: Request) -> Response {
    let (root, id, object) = (&path.api_root, &path.collection, &path.object);
    let query = request.uri().query();
    ctx.answer(objects::get_versions(&ctx, root, id, object, query).await)
}
