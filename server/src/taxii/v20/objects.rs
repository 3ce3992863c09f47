//! TAXII 2.0 objects and object resources: stored objects served as STIX 2.0
//! bundles, and STIX 2.0 bundles added (stored as STIX 2.1).

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

use super::collections::{readable, writable};
use super::filters::parse_params;
use super::paging::{self, Paged};
use super::selection::Selection;
use super::{bundle, range, status};
use crate::config::TaxiiVersion;
use crate::store::validate::is_stix_id;
use crate::taxii::access_log::Objects;
use crate::taxii::context::Ctx;
use crate::taxii::envelope::parse_off_runtime;
use crate::taxii::error::TaxiiError;
use crate::taxii::media::{self, STIX_20};
use crate::taxii::params::Allowed;
use crate::taxii::request_body::read_body;
use crate::taxii::response::chunked;

fn bundle_response(mut paged: Paged) -> Response {
    let served = std::mem::take(&mut paged.items.served);
    let count = Objects::Served(served.len() as u64);
    let body = bundle::chunks(served.into_iter().map(|s| s.json).collect());
    count.tag(paged.headers(chunked(paged.status(), STIX_20, body)))
}

/// `GET …/objects/`: a bundle of one page, paged by `Range: items a-b`.
pub async fn get_objects(
    ctx: &Ctx,
    root: &str,
    id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, TaxiiError> {
    let c = readable(ctx, root, id)?;
    let params = parse_params(ctx, query, Allowed::All)?;
    let range = range::parse(headers)?;
    let selection = Selection::new(&params.filters, None);
    let paged = paging::fetch(ctx, c.id(), &selection, range, params.limit).await?;
    Ok(bundle_response(paged))
}

/// `GET …/objects/{object}/`: a bundle of the object's versions (`match[version]`,
/// default the latest); 404 when the collection holds none that STIX 2.0 can express.
pub async fn get_object(
    ctx: &Ctx,
    root: &str,
    id: &str,
    object: &str,
    query: Option<&str>,
) -> Result<Response, TaxiiError> {
    let c = readable(ctx, root, id)?;
    if !is_stix_id(object) {
        return Err(TaxiiError::not_found("not a STIX object id"));
    }
    let params = parse_params(ctx, query, Allowed::VersionAndSpec)?;
    let selection = Selection::new(&params.filters, Some(object));
    let paged = paging::fetch(ctx, c.id(), &selection, None, None).await?;
    if paged.items.served.is_empty() {
        return Err(TaxiiError::not_found(
            "no such object in this collection (or none STIX 2.0 can express)",
        ));
    }
    Ok(bundle_response(paged))
}

/// `POST …/objects/`: a STIX 2.0 bundle, converted to STIX 2.1, validated and stored
/// durably; 202 with the status.
pub async fn add_objects(
    ctx: &Ctx,
    root: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, TaxiiError> {
    let c = writable(ctx, root, id)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if media::posted_version(content_type) != Some(TaxiiVersion::V20) {
        return Err(
            TaxiiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type")
                .describe("send a STIX 2.0 bundle as application/vnd.oasis.stix+json; version=2.0"),
        );
    }
    let limits = &ctx.config.config.limits;
    let body = read_body(headers, body, limits.max_content_length).await?;
    let max_object_bytes = limits.max_object_bytes;
    // Each object holds its own bytes once parsed: the body is not kept while storing.
    let mut request =
        parse_off_runtime(body, move |body| bundle::parse(body, max_object_bytes)).await?;
    request.owner = ctx.caller.key().to_string();
    let stored = ctx.store().add_objects(root, c.id(), request).await?;
    ctx.state
        .metrics
        .objects_added(stored.success_count, stored.failure_count);
    let accepted = Objects::Accepted(stored.success_count);
    Ok(accepted.tag(status::respond(StatusCode::ACCEPTED, &stored)?))
}
