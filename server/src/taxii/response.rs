//! Building TAXII responses.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::TaxiiError;
use crate::stix::timestamp::format_taxii;
use crate::store::Micros;

/// `X-TAXII-Date-Added-First`.
pub static DATE_ADDED_FIRST: HeaderName = HeaderName::from_static("x-taxii-date-added-first");
/// `X-TAXII-Date-Added-Last`.
pub static DATE_ADDED_LAST: HeaderName = HeaderName::from_static("x-taxii-date-added-last");

/// A response with a body already encoded and a media type.
pub fn bytes(status: StatusCode, media_type: &'static str, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    r
}

/// A response whose body is `chunks` sent one after another (with a `Content-Length`).
pub fn chunked(
    status: StatusCode,
    media_type: &'static str,
    chunks: Vec<bytes::Bytes>,
) -> Response {
    let mut r = (status, super::frames::chunks(chunks)).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    r
}

/// A JSON response in a media type.
pub fn json<T: Serialize>(
    status: StatusCode,
    media_type: &'static str,
    body: &T,
) -> Result<Response, TaxiiError> {
    let body = serde_json::to_vec(body).map_err(|e| {
        tracing::error!(error = %e, "cannot encode response");
        TaxiiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    })?;
    Ok(bytes(status, media_type, body))
}

/// Add the `X-TAXII-Date-Added-First/Last` headers.
pub fn with_date_added(mut r: Response, first: Option<Micros>, last: Option<Micros>) -> Response {
    for (name, value) in [(&DATE_ADDED_FIRST, first), (&DATE_ADDED_LAST, last)] {
        if let Some(v) = value.and_then(|t| HeaderValue::from_str(&format_taxii(t)).ok()) {
            r.headers_mut().insert(name.clone(), v);
        }
    }
    r
}
