//! The TAXII 2.0 API. It serves the same API roots, collections and data as 2.1 —
//! which version answers is chosen by the request's `Accept` — in 2.0's media types
//! and shapes: objects are converted to STIX 2.0 per request and sent as bundles,
//! listings page by `Range: items a-b`, posted 2.0 bundles are stored as 2.1.

mod bundle;
mod collections;
mod discovery;
mod manifest;
mod objects;
mod paging;
mod range;
mod selection;
mod status;

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;

pub use discovery::discovery;

use super::error::TaxiiError;
use super::params::{self, Allowed, Params};
use super::resource::Resource;
use super::Ctx;

/// Serve a request that negotiated TAXII 2.0 (any resource but discovery).
pub async fn dispatch(
    ctx: &Ctx,
    resource: &Resource,
    request: Request,
) -> Result<Response, TaxiiError> {
    let method = request.method().clone();
    let query = request.uri().query().map(str::to_string);
    let query = query.as_deref();
    match (resource, &method) {
        (Resource::ApiRoot { root }, &Method::GET) => discovery::api_root(ctx, root),
        (Resource::Collections { root }, &Method::GET) => collections::list(ctx, root),
        (Resource::Collection { root, collection }, &Method::GET) => {
            collections::get(ctx, root, collection)
        }
        (Resource::Objects { root, collection }, &Method::GET) => {
            objects::get_objects(ctx, root, collection, query, request.headers()).await
        }
        (Resource::Objects { root, collection }, &Method::POST) => {
            let (parts, body) = request.into_parts();
            objects::add_objects(ctx, root, collection, &parts.headers, body).await
        }
        (
            Resource::Object {
                root,
                collection,
                object,
            },
            &Method::GET,
        ) => objects::get_object(ctx, root, collection, object, query).await,
        (Resource::Manifest { root, collection }, &Method::GET) => {
            manifest::get(ctx, root, collection, query, request.headers()).await
        }
        (Resource::Status { root, status }, &Method::GET) => status::get(ctx, root, status).await,
        (Resource::Versions { .. }, _) => Err(TaxiiError::not_found(
            "TAXII 2.0 has no versions endpoint; ask for the object with match[version]=all",
        )),
        (Resource::Discovery20 | Resource::Discovery21, _) => {
            Err(TaxiiError::not_found("no TAXII 2.0 resource at this path"))
        }
        (Resource::Objects { .. }, _) => Err(TaxiiError::method_not_allowed("GET, POST")),
        _ => Err(TaxiiError::method_not_allowed("GET")),
    }
}

/// The filters of a 2.0 request; the 2.1-only `next` and `match[spec_version]` are 400s.
fn parse_params(ctx: &Ctx, query: Option<&str>, allowed: Allowed) -> Result<Params, TaxiiError> {
    let params = params::parse(query, allowed).map_err(TaxiiError::bad_request)?;
    ctx.note_ignored(&params);
    if params.next.is_some() {
        return Err(TaxiiError::bad_request(
            "TAXII 2.0 pages with the Range header (e.g. `Range: items 0-99`), not `next`",
        ));
    }
    if !params.filters.spec_versions.is_empty() {
        return Err(TaxiiError::bad_request(
            "match[spec_version] is a TAXII 2.1 filter; TAXII 2.0 serves STIX 2.0 only",
        ));
    }
    Ok(params)
}
