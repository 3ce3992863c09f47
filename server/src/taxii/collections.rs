//! Collections and collection resources.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::error::TaxiiError;
use super::media::{taxii_media_type, STIX_21};
use super::response::json;
use crate::config::CollectionConfig;
use crate::taxii::context::Ctx;

/// A collection as TAXII describes it; `can_read`/`can_write` are the caller's.
#[derive(Serialize)]
pub struct CollectionResource<'a> {
    id: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alias: Option<&'a str>,
    can_read: bool,
    can_write: bool,
    media_types: Vec<&'static str>,
}

fn resource<'a>(ctx: &Ctx, c: &'a CollectionConfig) -> CollectionResource<'a> {
    let rights = ctx.rights(c);
    CollectionResource {
        id: &c.settings.id,
        title: &c.settings.title,
        description: c.settings.description.as_deref(),
        alias: c.settings.alias.as_deref(),
        can_read: rights.read,
        can_write: rights.write,
        media_types: vec![STIX_21],
    }
}

#[derive(Serialize)]
struct Collections<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    collections: Vec<CollectionResource<'a>>,
}

/// `GET /{root}/collections/`: only the collections the caller may read or write.
pub fn list(ctx: &Ctx, root: &str) -> Result<Response, TaxiiError> {
    ctx.api_root(root)?;
    let collections = ctx
        .config
        .collections_in(root)
        .filter(|c| {
            let r = ctx.rights(c);
            r.read || r.write
        })
        .map(|c| resource(ctx, c))
        .collect();
    json(
        StatusCode::OK,
        taxii_media_type(ctx.version),
        &Collections { collections },
    )
}

/// `GET /{root}/collections/{id}/`.
pub fn get(ctx: &Ctx, root: &str, id: &str) -> Result<Response, TaxiiError> {
    ctx.api_root(root)?;
    let c = ctx.visible_collection(root, id)?;
    json(
        StatusCode::OK,
        taxii_media_type(ctx.version),
        &resource(ctx, c),
    )
}
