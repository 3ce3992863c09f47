//! The TAXII HTTP API. A request passes the request context ([`context`]: facts,
//! origin, negotiated version, caller), is routed to its resource ([`routes`]: one
//! router per resource, TAXII 2.1 and 2.0 sharing them), and the resource's handler
//! answers with the logic in the modules below, in the version negotiated.

pub(crate) mod budget;
mod collections;
pub mod context;
pub mod cursor;
mod discovery;
pub mod envelope;
pub(crate) mod error;
mod frames;
pub mod media;
mod objects;
pub mod params;
pub mod proxy;
pub(crate) mod response;
mod routes;
mod status;
pub(crate) mod strict;
mod v20;

use axum::body::Body;
use axum::http::{header, HeaderMap};

pub use self::context::Ctx;
use self::error::TaxiiError;
pub use self::routes::router;
use crate::listener::body::{drain_cap, drain_in_background};

/// Read a request body up to `max` bytes; larger bodies are a 413 (refused from
/// `Content-Length` before reading when the client announces it). The body is
/// gathered into one buffer sized from `Content-Length`, each frame released once
/// copied, so a body is never held twice.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    max: usize,
) -> Result<bytes::Bytes, TaxiiError> {
    use http_body_util::BodyExt;

    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Too large: answer at once, and read the rest in the background so the client can
    // finish sending and read the answer (see `drain_in_background`).
    let refuse = |body: Body| {
        drain_in_background(body, drain_cap(max));
        TaxiiError::too_large(max)
    };
    if let Some(n) = announced.filter(|n| *n > max as u64) {
        // A body larger than the drain would read is not worth reading at all.
        if n > drain_cap(max) {
            return Err(TaxiiError::too_large(max));
        }
        return Err(refuse(body));
    }
    let capacity = announced
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
        .min(max);
    let mut buf = Vec::with_capacity(capacity);
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| TaxiiError::too_large(max))?;
        if let Ok(data) = frame.into_data() {
            if data.len() > max - buf.len() {
                return Err(refuse(body));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(bytes::Bytes::from(buf))
}
