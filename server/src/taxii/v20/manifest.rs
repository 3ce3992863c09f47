//! The TAXII 2.0 manifest: one entry per object version listed (what `match[version]`
//! selects), so a `Range` counts the same items as on the objects endpoint.

use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;

use super::collections::readable;
use super::filters::parse_params;
use super::paging;
use super::range;
use super::selection::Selection;
use crate::stix::timestamp::format_taxii;
use crate::taxii::context::Ctx;
use crate::taxii::error::TaxiiError;
use crate::taxii::media::{STIX_20, TAXII_20};
use crate::taxii::params::Allowed;
use crate::taxii::response::json;

#[derive(Serialize)]
struct ManifestEntry {
    id: String,
    date_added: String,
    versions: [String; 1],
    media_types: [&'static str; 1],
}

#[derive(Serialize)]
struct Manifest {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    objects: Vec<ManifestEntry>,
}

/// `GET …/manifest/`: the served objects' ids and versions (as the 2.0 objects
/// endpoint serves them), paged by `Range: items a-b`.
pub async fn get(
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
    let objects = paged
        .items
        .served
        .iter()
        .filter_map(|s| {
            Some(ManifestEntry {
                id: (!s.id.is_empty()).then(|| s.id.clone())?,
                date_added: format_taxii(s.date_added),
                versions: [s.version.clone()?],
                media_types: [STIX_20],
            })
        })
        .collect();
    let response = json(paged.status(), TAXII_20, &Manifest { objects })?;
    Ok(paged.headers(response))
}
