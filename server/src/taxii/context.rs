//! The request context: what every layer and handler knows about a request, worked
//! out once.
//!
//! - [`Facts`]: the configuration snapshot, the scheme, the peer, the client address
//!   after proxy trust and the TAXII version negotiated from `Accept`. Computed by the
//!   first layer that needs them (the per-request limits, or else [`arrive`]) and
//!   handed on in the request's extensions.
//! - [`arrive`] (before routing): the request's origin, the path with a proxy's prefix
//!   removed, and [`Arrival`] in the extensions; then the resources' router.
//! - [`enter`] (around each resource's methods): 406 when nothing acceptable is served,
//!   the caller (401/503 when refused), then [`Ctx`] in the extensions for the
//!   handler; the answer is coded as `Accept-Encoding` asks ([`encoding`]; 406 when
//!   it refuses every coding served, identity included); the request is counted in
//!   the metrics under the resource's name (and under its collection when it names a
//!   configured one), and written to the access log ([`access_log`]) with the bytes
//!   sent on the wire.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::uri::PathAndQuery;
use axum::http::{header, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceExt;

use super::access_log::{self, Objects};
use super::encoding::{self, Negotiation};
use super::error::TaxiiError;
use super::media;
use super::params;
use super::proxy::{self, Origin};
use crate::access::{rights, Caller, Rights};
use crate::config::{ApiRoot, CollectionConfig, ServiceConfig, TaxiiVersion};
use crate::listener::Scheme;
use crate::state::AppState;
use crate::store::Store;
use crate::tls::CertificateNames;

/// What is known about a request before it reaches a resource.
#[derive(Clone)]
pub struct Facts {
    /// The configuration serving this request (one snapshot for all of it).
    pub config: Arc<ServiceConfig>,
    /// `http` or `https`, as the listener accepted the connection.
    pub scheme: &'static str,
    /// The connection's peer.
    pub peer: Option<IpAddr>,
    /// The client after proxy trust (see [`proxy::client_address`]).
    pub client: Option<IpAddr>,
    /// The TAXII version negotiated from `Accept`; `None`: nothing served is acceptable.
    pub version: Option<TaxiiVersion>,
}

impl Facts {
    /// The facts of `request`: taken from its extensions when an outer layer worked
    /// them out already, worked out now otherwise.
    pub fn of(state: &AppState, request: &mut Request) -> Facts {
        match request.extensions_mut().remove::<Facts>() {
            Some(facts) => facts,
            None => Facts::compute(state, request),
        }
    }

    fn compute(state: &AppState, request: &Request) -> Facts {
        let config = state.config.load_full();
        let extensions = request.extensions();
        let scheme = extensions.get::<Scheme>().map_or("http", |s| s.0);
        let peer = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let headers = request.headers();
        let client = proxy::client_address(&config, headers, peer);
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
        let version = media::negotiate(accept, &config.config.service.versions).ok();
        Facts {
            config,
            scheme,
            peer,
            client,
            version,
        }
    }

    /// The version a 406 is answered in: 2.1 where it is served.
    fn default_version(&self) -> TaxiiVersion {
        if self.config.serves(TaxiiVersion::V21) {
            TaxiiVersion::V21
        } else {
            TaxiiVersion::V20
        }
    }
}

/// A request on its way to a resource: its facts, origin and arrival time.
#[derive(Clone)]
pub struct Arrival {
    facts: Facts,
    /// Absolute base URL the client reached us at (no trailing `/`).
    base: String,
    started: Instant,
}

/// Before routing: work out the facts and the origin, and hand the request to the
/// `resources` router with the path as seen behind a proxy's prefix.
pub async fn arrive(state: &AppState, mut request: Request, resources: Router) -> Response {
    let started = Instant::now();
    let facts = Facts::of(state, &mut request);
    let origin = proxy::origin(&facts.config, request.headers(), facts.scheme, facts.peer);
    route_locally(&mut request, &origin);
    request.extensions_mut().insert(Arrival {
        facts,
        base: origin.base,
        started,
    });
    match resources.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Rewrite the request's path to the one routed: without the proxy's prefix, and
/// `/` (which names no resource) when a segment is empty, `.` or `..`.
fn route_locally(request: &mut Request, origin: &Origin) {
    let path = request.uri().path();
    let local = origin.local_path(path);
    let routed = if !is_routable(local) {
        "/"
    } else if local.len() != path.len() {
        local
    } else {
        return;
    };
    let target = match request.uri().query() {
        Some(query) => PathAndQuery::try_from(format!("{routed}?{query}")),
        None => PathAndQuery::try_from(routed),
    };
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = Some(target.unwrap_or_else(|_| PathAndQuery::from_static("/")));
    if let Ok(uri) = Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
}

/// Whether routes may see `path`: it has segments, a trailing `/` is optional, and
/// no segment is empty, `.` or `..` (routes would take an empty one for a parameter).
fn is_routable(path: &str) -> bool {
    let Some(inner) = path.strip_prefix('/') else {
        return false;
    };
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    !inner.is_empty() && inner.split('/').all(|s| !matches!(s, "" | "." | ".."))
}

/// What the context layer knows about the resource it stands in front of.
#[derive(Clone)]
pub struct Resource {
    state: AppState,
    /// A low-cardinality name for metrics.
    endpoint: &'static str,
    /// Why TAXII 2.0 has no such resource (404 in 2.0), if it has none.
    absent_in_20: Option<&'static str>,
    /// `[server] access_log`, read when the routes are built (as `[server]` is read
    /// once at start).
    access_log: bool,
    /// `[server] compression`, read when the routes are built.
    compression: bool,
}

impl Resource {
    /// A resource served in both versions.
    pub fn new(state: &AppState, endpoint: &'static str) -> Resource {
        let config = state.config.load();
        Resource {
            state: state.clone(),
            endpoint,
            absent_in_20: None,
            access_log: config.config.server.access_log,
            compression: config.config.server.compression,
        }
    }

    /// A resource TAXII 2.0 does not have: 404 with `why` in 2.0.
    pub fn absent_in_20(mut self, why: &'static str) -> Resource {
        self.absent_in_20 = Some(why);
        self
    }
}

/// Around a resource's methods: admit the request (negotiated version and coding,
/// caller), hand the handler its [`Ctx`], code the answer, count the request (per
/// configured collection too) and write its access log line.
pub async fn enter(State(resource): State<Resource>, mut request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let negotiation = Negotiation::of(resource.compression, &method, request.headers());
    let path = request.uri().path().to_string();
    let arrival = request.extensions_mut().remove::<Arrival>();
    let started = arrival.as_ref().map_or_else(Instant::now, |a| a.started);
    let client = arrival.as_ref().and_then(|a| a.facts.client);
    let config = arrival.as_ref().map(|a| a.facts.config.clone());
    let mut user = None;
    let response = match admit(&resource, arrival, negotiation, &mut request).await {
        Ok(caller) => {
            user = match caller {
                Caller::User(identity) => Some(identity.name.clone()),
                Caller::Anonymous => None,
            };
            next.run(request).await
        }
        Err(error) => error.into_response(),
    };
    let metrics = &resource.state.metrics;
    let response = encoding::encode(response, negotiation, metrics).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    metrics.observe_request(resource.endpoint, method.as_str(), status, elapsed);
    let (api_root, collection) = access_log::scope_of(resource.endpoint, &path);
    let objects = response.extensions().get::<Objects>().copied();
    let configured = match (&config, api_root, collection) {
        (Some(config), Some(root), Some(id)) => config.collection(root, id).is_some(),
        _ => false,
    };
    if let (true, Some(root), Some(id)) = (configured, api_root, collection) {
        metrics.collection_request(root, id, resource.endpoint, status);
        if let Some(objects) = objects {
            metrics.collection_objects(root, id, objects.direction(), objects.count());
        }
    }
    if resource.access_log {
        access_log::Line {
            client,
            user: user.as_deref().unwrap_or(access_log::ANONYMOUS),
            method: method.as_str(),
            endpoint: resource.endpoint,
            api_root,
            collection,
            status,
            objects,
            bytes: access_log::response_bytes(&response),
            duration: elapsed,
        }
        .write();
    }
    response
}

/// 406 when nothing acceptable is served (in `Accept` or `Accept-Encoding`), 401/503
/// when the caller is refused, 404 for a resource the negotiated version lacks; else
/// the [`Ctx`] goes in the extensions and the caller is returned.
async fn admit(
    resource: &Resource,
    arrival: Option<Arrival>,
    negotiation: Negotiation,
    request: &mut Request,
) -> Result<Caller, TaxiiError> {
    let Some(Arrival { facts, base, .. }) = arrival else {
        return Err(internal());
    };
    let version = facts
        .version
        .ok_or_else(|| TaxiiError::not_acceptable().in_version(facts.default_version()))?;
    if negotiation.accepted.refused() {
        return Err(encoding::not_acceptable().in_version(version));
    }
    let certificate = request.extensions().get::<Arc<CertificateNames>>();
    let caller = resource
        .state
        .auth
        .caller(&facts.config, request.headers(), certificate, facts.client)
        .await
        .map_err(|e| TaxiiError::from(e).in_version(version))?;
    if let Some(why) = resource
        .absent_in_20
        .filter(|_| version == TaxiiVersion::V20)
    {
        return Err(TaxiiError::not_found(why).in_version(version));
    }
    request.extensions_mut().insert(Ctx {
        state: resource.state.clone(),
        config: facts.config,
        caller: caller.clone(),
        version,
        base,
    });
    Ok(caller)
}

fn internal() -> TaxiiError {
    TaxiiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
}

/// Everything a handler needs about one request; extract it once per handler.
#[derive(Clone)]
pub struct Ctx {
    /// The app state (store, policy, metrics).
    pub state: AppState,
    /// The configuration serving this request: one snapshot of `state.config` for all
    /// of the request, however the configuration is reloaded meanwhile.
    pub config: Arc<ServiceConfig>,
    /// Who is asking.
    pub caller: Caller,
    /// The TAXII version negotiated.
    pub version: TaxiiVersion,
    /// Absolute base URL the client reached us at (no trailing `/`).
    pub base: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = TaxiiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Ctx, TaxiiError> {
        parts.extensions.remove::<Ctx>().ok_or_else(internal)
    }
}

impl Ctx {
    /// The store.
    pub fn store(&self) -> &dyn Store {
        &*self.state.store
    }

    /// The response for a handler's result; errors in the negotiated version.
    pub fn answer(&self, result: Result<Response, TaxiiError>) -> Response {
        result.unwrap_or_else(|e| e.in_version(self.version).into_response())
    }

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
            Caller::Anonymous => Err(TaxiiError::unauthorized()),
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
    pub fn api_root(&self, root: &str) -> Result<&ApiRoot, TaxiiError> {
        self.config
            .api_root(root)
            .ok_or_else(|| TaxiiError::not_found("no such API root"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_dot_segments_are_not_routed() {
        for path in [
            "/taxii2",
            "/taxii2/",
            "/feeds",
            "/feeds/collections/x/objects/",
        ] {
            assert!(is_routable(path), "{path}");
        }
        for path in [
            "",
            "/",
            "//",
            "/feeds//collections/",
            "/feeds/../taxii2/",
            "/feeds/./",
            "/feeds/collections//",
            "feeds/",
        ] {
            assert!(!is_routable(path), "{path}");
        }
    }
}
