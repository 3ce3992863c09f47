//! TAXII error objects: every error response carries one, in the request's TAXII version.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::media::taxii_media_type;
use crate::auth::AuthError;
use crate::config::TaxiiVersion;
use crate::store::StoreError;

/// An error answered to a TAXII client.
#[derive(Debug, Clone, PartialEq)]
pub struct TaxiiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Short title (required by TAXII).
    pub title: String,
    /// What the client can do about it. Never internals or secrets.
    pub description: Option<String>,
    /// Version of the error body's media type.
    pub version: TaxiiVersion,
    /// Extra headers (e.g. `WWW-Authenticate`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    http_status: String,
}

impl TaxiiError {
    /// An error with a status and a title.
    pub fn new(status: StatusCode, title: impl Into<String>) -> Self {
        TaxiiError {
            status,
            title: title.into(),
            description: None,
            version: TaxiiVersion::V21,
            headers: Vec::new(),
        }
    }

    /// Add a description.
    pub fn describe(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Answer in this TAXII version.
    pub fn in_version(mut self, version: TaxiiVersion) -> Self {
        self.version = version;
        self
    }

    /// Add a response header.
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 400 with a description.
    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad request").describe(description)
    }

    /// 404 with a description.
    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found").describe(description)
    }

    /// 403 with a description.
    pub fn forbidden(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden").describe(description)
    }

    /// 405 for a method the resource does not support.
    pub fn method_not_allowed(allowed: &'static str) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
            .describe(format!("this resource supports {allowed}"))
            .with_header(header::ALLOW, HeaderValue::from_static(allowed))
    }

    /// 401 asking for credentials.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized")
            .describe("authenticate with HTTP Basic or an API key")
            .with_header(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"taxiway\", charset=\"UTF-8\""),
            )
    }

    /// 406: the `Accept` header names nothing we serve.
    pub fn not_acceptable() -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, "Not acceptable").describe(
            "ask for application/taxii+json;version=2.1 (or application/vnd.oasis.taxii+json; version=2.0 where TAXII 2.0 is served)",
        )
    }

    /// 415: the body's media type is not one we accept.
    pub fn unsupported_media_type() -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type")
            .describe("send objects as application/taxii+json;version=2.1")
    }

    /// 413: the body is larger than `max_content_length`.
    pub fn too_large(max: usize) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "Request entity too large").describe(format!(
            "the API root accepts at most {max} bytes per request"
        ))
    }
}

impl From<StoreError> for TaxiiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownCollection(_) => TaxiiError::not_found("no such collection"),
            StoreError::ReadOnly(_) => {
                TaxiiError::forbidden("this collection is a read-only query collection")
            }
            StoreError::Unavailable(msg) => {
                tracing::warn!(error = %msg, "store unavailable");
                TaxiiError::new(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable")
                    .describe("the store is temporarily unavailable; retry later")
                    .with_header(header::RETRY_AFTER, HeaderValue::from_static("5"))
            }
            StoreError::Database(msg) => {
                tracing::error!(error = %msg, "store error");
                TaxiiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
            }
        }
    }
}

impl From<AuthError> for TaxiiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized => TaxiiError::unauthorized(),
            AuthError::Busy => {
                TaxiiError::new(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable")
                    .describe("too many logins are being checked; retry shortly")
                    .with_header(header::RETRY_AFTER, HeaderValue::from_static("5"))
            }
        }
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            title: &self.title,
            description: self.description.as_deref(),
            http_status: self.status.as_u16().to_string(),
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(taxii_media_type(self.version)),
        );
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}
