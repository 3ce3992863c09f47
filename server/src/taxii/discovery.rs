//! Discovery (`/taxii2/`) and API root resources.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::error::TaxiiError;
use super::media::{taxii_media_type, TAXII_21};
use super::response::json;
use crate::taxii::context::Ctx;

#[derive(Serialize)]
struct Discovery<'a> {
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    default: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    api_roots: Vec<String>,
}

/// `GET /taxii2/`: absolute API root URLs and a `default` (some clients crash without one).
pub fn discovery(ctx: &Ctx) -> Result<Response, TaxiiError> {
    let service = &ctx.config.config.service;
    let roots = &ctx.config.config.api_roots;
    let url = |path: &str| format!("{}/{}/", ctx.base, path);
    let default = service
        .default_api_root
        .as_deref()
        .or_else(|| roots.first().map(|r| r.path.as_str()))
        .map(url);
    let body = Discovery {
        title: &service.title,
        description: service.description.as_deref(),
        contact: service.contact.as_deref(),
        default,
        api_roots: roots.iter().map(|r| url(&r.path)).collect(),
    };
    json(StatusCode::OK, taxii_media_type(ctx.version), &body)
}

#[derive(Serialize)]
struct ApiRootResource<'a> {
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    versions: Vec<&'static str>,
    max_content_length: usize,
}

/// `GET /{root}/`.
pub fn api_root(ctx: &Ctx, root: &str) -> Result<Response, TaxiiError> {
    let r = ctx.api_root(root)?;
    let body = ApiRootResource {
        title: &r.title,
        description: r.description.as_deref(),
        versions: vec![TAXII_21],
        max_content_length: ctx.config.config.limits.max_content_length,
    };
    json(StatusCode::OK, taxii_media_type(ctx.version), &body)
}
