//! TAXII 2.0 collections and collection resources, and the access checks the
//! object endpoints share.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use crate::access::Caller;
use crate::config::CollectionConfig;
use crate::taxii::error::TaxiiError;
use crate::taxii::media::{STIX_20, TAXII_20};
use crate::taxii::response::json;
use crate::taxii::Ctx;

/// A collection as TAXII 2.0 describes it (no `alias`: that is 2.1).
#[derive(Serialize)]
struct CollectionResource<'a> {
    id: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    can_read: bool,
    can_write: bool,
    media_types: [&'static str; 1],
}

fn resource<'a>(ctx: &Ctx, c: &'a CollectionConfig) -> CollectionResource<'a> {
    let rights = ctx.rights(c);
    CollectionResource {
        id: &c.settings.id,
        title: &c.settings.title,
        description: c.settings.description.as_deref(),
        can_read: rights.read,
        can_write: rights.write,
        media_types: [STIX_20],
    }
}

#[derive(Serialize)]
struct Collections<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    collections: Vec<CollectionResource<'a>>,
}

/// `GET /{root}/collections/`: the collections the caller may read or write.
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
    json(StatusCode::OK, TAXII_20, &Collections { collections })
}

/// `GET /{root}/collections/{id}/`.
pub fn get(ctx: &Ctx, root: &str, id: &str) -> Result<Response, TaxiiError> {
    ctx.api_root(root)?;
    let c = ctx.visible_collection(root, id)?;
    json(StatusCode::OK, TAXII_20, &resource(ctx, c))
}

/// The collection, if the caller may read it (403 if they may only write).
pub fn readable<'a>(
    ctx: &'a Ctx,
    root: &str,
    id: &str,
) -> Result<&'a CollectionConfig, TaxiiError> {
    ctx.api_root(root)?;
    let c = ctx.visible_collection(root, id)?;
    if !ctx.rights(c).read {
        return Err(TaxiiError::forbidden(
            "you may add objects to this collection but not read it",
        ));
    }
    Ok(c)
}

/// The collection, if the caller may add objects to it.
pub fn writable<'a>(
    ctx: &'a Ctx,
    root: &str,
    id: &str,
) -> Result<&'a CollectionConfig, TaxiiError> {
    ctx.api_root(root)?;
    let c = ctx.visible_collection(root, id)?;
    if !c.is_writable() {
        return Err(TaxiiError::forbidden(
            "this collection is a read-only query collection",
        ));
    }
    if !ctx.rights(c).write {
        return Err(match ctx.caller {
            Caller::Anonymous => TaxiiError::unauthorized(),
            Caller::User(_) => TaxiiError::forbidden("you may not write to this collection"),
        });
    }
    Ok(c)
}
