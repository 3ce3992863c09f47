//! The TAXII HTTP API: one entry point that names the resource, negotiates the
//! version, and hands the request to the resource's handler.

pub(crate) mod budget;
mod collections;
pub mod cursor;
mod discovery;
pub mod envelope;
pub(crate) mod error;
pub mod media;
mod objects;
pub(crate) mod origin;
pub mod params;
pub mod resource;
pub(crate) mod response;
mod status;
pub(crate) mod strict;
mod v20;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::Router;

use self::error::TaxiiError;
use self::resource::Resource;
use crate::access::{rights, Caller, Rights};
use crate::config::{CollectionConfig, ServiceConfig, TaxiiVersion};
use crate::state::AppState;
use crate::store::SharedStore;

/// The scheme the client used, set by the listener (TLS or plain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme(pub &'static str);

/// Everything a handler needs about one request.
pub struct Ctx {
    /// The configuration serving this request (a consistent snapshot).
    pub config: Arc<ServiceConfig>,
    /// The store.
    pub store: SharedStore,
    /// Who is asking.
    pub caller: Caller,
    /// The TAXII version negotiated.
    pub version: TaxiiVersion,
    /// Absolute base URL the client reached us at (no trailing `/`).
    pub base: String,
    /// The app state (policy, metrics).
    pub state: AppState,
}

impl Ctx {
    /// The caller's rights on a collection.
    pub fn rights(&self, c: &CollectionConfig) -> Rights {
        rights(self.state.policy(), &self.caller, c)
    }

    /// The collection, if the caller may at least see it. Unauthenticated callers
    /// get 401 (so clients know to send credentials); authenticated callers without
    /// rights get 404, hiding the collection.
    pub fn visible_collection(
        &self,
        root: &str,
        id: &str,
    ) -> Result<&CollectionConfig, TaxiiError> {
        let not_found = || TaxiiError::not_found("no such collection in this API root");
        let c = self.config.collection(root, id).ok_or_else(not_found)?;
        let r = self.rights(c);
        if r.read || r.write {
            return Ok(c);
        }
        match self.caller {
            Caller::Anonymous => Err(self.state.unauthorized()),
            Caller::User(_) => Err(not_found()),
        }
    }

    /// Log and count the `match[<field>]` parameters a listing ignored.
    pub fn note_ignored(&self, params: &params::Params) {
        for field in &params.ignored {
            tracing::debug!(field = %field, "ignoring unsupported filter match[{field}]");
            self.state
                .metrics
                .ignored_match_field(params::ignored_label(field));
        }
    }

    /// The API root, or 404.
    pub fn api_root(&self, root: &str) -> Result<&crate::config::ApiRoot, TaxiiError> {
        self.config
            .api_root(root)
            .ok_or_else(|| TaxiiError::not_found("no such API root"))
    }
}

/// The TAXII router: every path goes through [`handle`].
pub fn router(state: AppState) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// Serve one TAXII request and record its metrics.
pub async fn handle(State(state): State<AppState>, request: Request) -> Response {
    let started = Instant::now();
    let config = state.config.load_full();
    let scheme = request
        .extensions()
        .get::<Scheme>()
        .map(|s| s.0)
        .unwrap_or("http");
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let origin = origin::origin(&config, request.headers(), scheme, peer);
    let resource = Resource::parse(origin.local_path(request.uri().path()));
    let endpoint = resource
        .as_ref()
        .map(Resource::endpoint)
        .unwrap_or("unknown");
    let method = request.method().clone();
    let response = match dispatch(state.clone(), config, origin.base, resource, request).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    state.metrics.observe_request(
        endpoint,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

async fn dispatch(
    state: AppState,
    config: Arc<ServiceConfig>,
    base: String,
    resource: Option<Resource>,
    request: Request,
) -> Result<Response, TaxiiError> {
    let served = &config.config.service.versions;
    let headers = request.headers();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let default_version = if config.serves(TaxiiVersion::V21) {
        TaxiiVersion::V21
    } else {
        TaxiiVersion::V20
    };
    let version = media::negotiate(accept, served)
        .map_err(|_| TaxiiError::not_acceptable().in_version(default_version))?;
    let err_version = |e: TaxiiError| e.in_version(version);

    let caller = crate::auth::caller(&state, &config, headers, request.extensions())
        .await
        .map_err(err_version)?;
    let Some(resource) = resource else {
        return Err(err_version(TaxiiError::not_found(
            "no TAXII resource at this path",
        )));
    };
    let ctx = Ctx {
        config: config.clone(),
        store: state.store.clone(),
        caller,
        version,
        base,
        state: state.clone(),
    };
    let method = request.method().clone();
    let query = request.uri().query().map(str::to_string);
    let result = match (&resource, &method) {
        (Resource::Discovery20, _) if config.serves(TaxiiVersion::V20) => {
            v20::discovery(&ctx, &method, accept)
        }
        (Resource::Discovery21, &Method::GET) if config.serves(TaxiiVersion::V21) => {
            if version != TaxiiVersion::V21 {
                Err(TaxiiError::not_acceptable())
            } else {
                discovery::discovery(&ctx)
            }
        }
        (Resource::Discovery21, _) if !config.serves(TaxiiVersion::V21) => {
            Err(TaxiiError::not_found("TAXII 2.1 is not served"))
        }
        (Resource::Discovery20, _) | (Resource::Discovery21, _) if version == TaxiiVersion::V20 => {
            Err(TaxiiError::not_acceptable())
        }
        (Resource::Discovery21, &Method::GET) => {
            Err(TaxiiError::not_found("TAXII 2.1 is not served"))
        }
        (Resource::Discovery20, &Method::GET) => {
            Err(TaxiiError::not_found("TAXII 2.0 is not served"))
        }
        _ if version == TaxiiVersion::V20 => v20::dispatch(&ctx, &resource, request).await,
        (Resource::ApiRoot { root }, &Method::GET) => discovery::api_root(&ctx, root),
        (Resource::Collections { root }, &Method::GET) => collections::list(&ctx, root),
        (Resource::Collection { root, collection }, &Method::GET) => {
            collections::get(&ctx, root, collection)
        }
        (Resource::Objects { root, collection }, &Method::GET) => {
            objects::get_objects(&ctx, root, collection, query.as_deref()).await
        }
        (Resource::Objects { root, collection }, &Method::POST) => {
            let (parts, body) = request.into_parts();
            objects::add_objects(&ctx, root, collection, &parts.headers, body).await
        }
        (
            Resource::Object {
                root,
                collection,
                object,
            },
            &Method::GET,
        ) => objects::get_object(&ctx, root, collection, object, query.as_deref()).await,
        (
            Resource::Object {
                root,
                collection,
                object,
            },
            &Method::DELETE,
        ) => objects::delete_object(&ctx, root, collection, object, query.as_deref()).await,
        (
            Resource::Versions {
                root,
                collection,
                object,
            },
            &Method::GET,
        ) => objects::get_versions(&ctx, root, collection, object, query.as_deref()).await,
        (Resource::Manifest { root, collection }, &Method::GET) => {
            objects::get_manifest(&ctx, root, collection, query.as_deref()).await
        }
        (Resource::Status { root, status }, &Method::GET) => status::get(&ctx, root, status).await,
        (Resource::Objects { .. }, _) => Err(TaxiiError::method_not_allowed("GET, POST")),
        (Resource::Object { .. }, _) => Err(TaxiiError::method_not_allowed("GET, DELETE")),
        _ => Err(TaxiiError::method_not_allowed("GET")),
    };
    result.map_err(err_version)
}

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
        crate::limits::body::drain_in_background(body, crate::limits::body::drain_cap(max));
        TaxiiError::too_large(max)
    };
    if let Some(n) = announced.filter(|n| *n > max as u64) {
        // A body larger than the drain would read is not worth reading at all.
        if n > crate::limits::body::drain_cap(max) {
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
