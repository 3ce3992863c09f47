//! A resource's routes: its methods at its path with and without the trailing `/`,
//! behind the request context, with the methods it does not support refused.

use axum::handler::Handler;
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::MethodRouter;
use axum::Router;

use crate::taxii::context::{self, Ctx, Resource};
use crate::taxii::error::TaxiiError;

/// `methods` at `path` (given without its trailing `/`) and at `path/`, behind the
/// context layer for `resource`.
pub(super) fn resource(path: &str, resource: Resource, methods: MethodRouter) -> Router {
    let service = behind_context(resource, methods);
    Router::new()
        .route_service(path, service.clone())
        .route_service(&format!("{path}/"), service)
}

/// `methods` with the context layer in front: it runs before method routing, so a
/// request it refuses (406, 401) never reaches a method's handler.
pub(super) fn behind_context(
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
pub(super) fn refusing<H, T>(methods: MethodRouter, refuse: H) -> MethodRouter
where
    H: Handler<T, ()>,
    T: 'static,
{
    methods.head(refuse.clone()).fallback(refuse)
}

/// 405 for a resource that supports GET only.
pub(super) async fn only_get(ctx: Ctx) -> Response {
    ctx.answer(Err(TaxiiError::method_not_allowed("GET")))
}
