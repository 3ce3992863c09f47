//! The path parameters of the TAXII routes.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::config::TaxiiVersion;
use crate::taxii::context::Ctx;
use crate::taxii::error::TaxiiError;

/// The path parameters of a route, percent-decoded; a path they cannot be read from
/// is a TAXII 404. Extract it before the [`Ctx`] (its error speaks the negotiated
/// version).
pub(super) struct Segments<T>(pub(super) T);

impl<T, S> FromRequestParts<S> for Segments<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(segments)) => Ok(Segments(segments)),
            Err(_) => {
                let version = parts
                    .extensions
                    .get::<Ctx>()
                    .map_or(TaxiiVersion::V21, |c| c.version);
                Err(TaxiiError::not_found("no TAXII resource at this path")
                    .in_version(version)
                    .into_response())
            }
        }
    }
}

/// `/{api_root}/…`.
#[derive(Deserialize)]
pub(super) struct ApiRootPath {
    pub(super) api_root: String,
}

/// `/{api_root}/collections/{collection}/…`.
#[derive(Deserialize)]
pub(super) struct CollectionPath {
    pub(super) api_root: String,
    pub(super) collection: String,
}

/// `/{api_root}/collections/{collection}/objects/{object}/…`.
#[derive(Deserialize)]
pub(super) struct ObjectPath {
    pub(super) api_root: String,
    pub(super) collection: String,
    pub(super) object: String,
}

/// `/{api_root}/status/{status}/`.
#[derive(Deserialize)]
pub(super) struct StatusPath {
    pub(super) api_root: String,
    pub(super) status: String,
}
