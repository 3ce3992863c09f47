//! The TAXII routes: one router per resource, merged here. TAXII 2.1 and 2.0 share
//! the routes and handlers; a handler answers in the version negotiated (see
//! [`Ctx::version`]), and a resource 2.0 lacks is a 404 there.
//!
//! Every route is served with and without its trailing `/`. API roots come from the
//! configuration, so routes name them as a parameter (`/{api_root}/…`) and the
//! handlers check the root (404 when it is not configured). Methods a resource does
//! not support — HEAD included — are answered 405 with a TAXII error and `Allow`.

mod api_root;
mod collection;
mod collections;
mod discovery;
mod manifest;
mod object;
mod objects;
mod status;
mod versions;

use axum::extract::{FromRequestParts, Path, Request};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, MethodRouter};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::context::{self, Resource};
use super::error::TaxiiError;
use super::Ctx;
use crate::config::TaxiiVersion;
use crate::state::AppState;

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

/// `methods` at `path` (given without its trailing `/`) and at `path/`, behind the
/// context layer for `resource`.
fn resource(path: &str, resource: Resource, methods: MethodRouter) -> Router {
    let service = behind_context(resource, methods);
    Router::new()
        .route_service(path, service.clone())
        .route_service(&format!("{path}/"), service)
}

/// `methods` with the context layer in front: it runs before method routing, so a
/// request it refuses (406, 401) never reaches a method's handler.
fn behind_context(
    resource: Resource,
    methods: MethodRouter,
) -> impl tower::Service<
    axum::extract::Request,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
       + Send
       + Sync
       + 'static {
    tower::Layer::layer(&from_fn_with_state(resource, context::enter), methods)
}

/// `methods`, with HEAD and every method it does not route answered by `refuse`.
fn refusing<H, T>(methods: MethodRouter, refuse: H) -> MethodRouter
where
    H: Handler<T, ()>,
    T: 'static,
{
    methods.head(refuse.clone()).fallback(refuse)
}

/// 405 for a resource that supports GET only.
async fn only_get(ctx: Ctx) -> Response {
    ctx.answer(Err(TaxiiError::method_not_allowed("GET")))
}

/// 404 for a path that names no TAXII resource.
async fn no_resource(ctx: Ctx) -> Response {
    ctx.answer(Err(TaxiiError::not_found("no TAXII resource at this path")))
}

/// The path parameters of a route, percent-decoded; a path they cannot be read from
/// is a TAXII 404. Extract it before the [`Ctx`] (its error speaks the negotiated
/// version).
struct Segments<T>(T);

impl<T, S> FromRequestParts<S> for Segments<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(segments)) => Ok(Segments(segments)),
            Err(_) => {
                let version = parts
                    .extensions
                    .get::<Ctx>()
                    .map_or(TaxiiVersion::V21, |c| c.version);
                Err(TaxiiError::not_found("no TAXII resource at this path")
                    .in_version(version)
                    .into_response())
            }
        }
    }
}

/// `/{api_root}/…`.
#[derive(Deserialize)]
struct ApiRootPath {
    api_root: String,
}

/// `/{api_root}/collections/{collection}/…`.
#[derive(Deserialize)]
struct CollectionPath {
    api_root: String,
    collection: String,
}

/// `/{api_root}/collections/{collection}/objects/{object}/…`.
#[derive(Deserialize)]
struct ObjectPath {
    api_root: String,
    collection: String,
    object: String,
}

/// `/{api_root}/status/{status}/`.
#[derive(Deserialize)]
struct StatusPath {
    api_root: String,
    status: String,
}
