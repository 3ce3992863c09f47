//! TAXII 2.0 discovery (`/taxii/`) and API root resources.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::Serialize;

use crate::config::TaxiiVersion;
use crate::taxii::context::Ctx;
use crate::taxii::error::TaxiiError;
use crate::taxii::media::{self, TAXII_20};
use crate::taxii::response::json;

/// The `versions` value of a TAXII 2.0 API root.
const TAXII_2_0: &str = "taxii-2.0";

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

/// `GET /taxii/`. It answers in 2.0 to any `Accept` that allows 2.0 (`*/*`, none,
/// the 2.0 media types), whatever the server's default version; an `Accept` that
/// only allows 2.1 is a 406.
pub fn discovery(ctx: &Ctx, method: &Method, accept: Option<&str>) -> Result<Response, TaxiiError> {
    if method != Method::GET {
        return Err(TaxiiError::method_not_allowed("GET"));
    }
    if media::negotiate(accept, &[TaxiiVersion::V20]).is_err() {
        return Err(TaxiiError::not_acceptable());
    }
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
    json(StatusCode::OK, TAXII_20, &body)
}

#[derive(Serialize)]
struct ApiRootResource<'a> {
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    versions: [&'static str; 1],
    max_content_length: usize,
}

/// `GET /{root}/`.
pub fn api_root(ctx: &Ctx, root: &str) -> Result<Response, TaxiiError> {
    let r = ctx.api_root(root)?;
    let body = ApiRootResource {
        title: &r.title,
        description: r.description.as_deref(),
        versions: [TAXII_2_0],
        max_content_length: ctx.config.config.limits.max_content_length,
    };
    json(StatusCode::OK, TAXII_20, &body)
}
