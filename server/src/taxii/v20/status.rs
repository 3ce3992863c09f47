//! Status resources in their TAXII 2.0 shape: `successes` and `pendings` are lists of
//! object ids, `failures` carry an id and a message.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use crate::access::{Caller, Policy};
use crate::store::Status;
use crate::taxii::error::TaxiiError;
use crate::taxii::media::TAXII_20;
use crate::taxii::response::json;
use crate::taxii::Ctx;

/// A status resource as TAXII 2.0 writes it.
#[derive(Debug, Serialize)]
pub struct Status20<'a> {
    id: &'a str,
    status: &'a str,
    request_timestamp: &'a str,
    total_count: u64,
    success_count: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    successes: Vec<&'a str>,
    failure_count: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failures: Vec<Failure<'a>>,
    pending_count: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pendings: Vec<&'a str>,
}

#[derive(Debug, Serialize)]
struct Failure<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

impl<'a> From<&'a Status> for Status20<'a> {
    fn from(s: &'a Status) -> Self {
        Status20 {
            id: &s.id,
            status: &s.status,
            request_timestamp: &s.request_timestamp,
            total_count: s.total_count,
            success_count: s.success_count,
            successes: s.successes.iter().map(|d| d.id.as_str()).collect(),
            failure_count: s.failure_count,
            failures: s
                .failures
                .iter()
                .map(|d| Failure {
                    id: &d.id,
                    message: d.message.as_deref(),
                })
                .collect(),
            pending_count: s.pending_count,
            pendings: s.pendings.iter().map(|d| d.id.as_str()).collect(),
        }
    }
}

/// A status resource as a 2.0 response.
pub fn respond(code: StatusCode, status: &Status) -> Result<Response, TaxiiError> {
    json(code, TAXII_20, &Status20::from(status))
}

/// `GET /{root}/status/{id}/`.
pub async fn get(ctx: &Ctx, root: &str, id: &str) -> Result<Response, TaxiiError> {
    ctx.api_root(root)?;
    if ctx.caller == Caller::Anonymous && ctx.state.policy() == Policy::Rules {
        return Err(TaxiiError::unauthorized());
    }
    // Another caller's status is not found: its ids and failure messages are theirs.
    let status = ctx
        .store()
        .status(root, id, ctx.caller.key())
        .await?
        .ok_or_else(|| {
            TaxiiError::not_found("no such status (statuses are kept at least 24 hours)")
        })?;
    respond(StatusCode::OK, &status)
}
