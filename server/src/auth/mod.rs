//! Authentication: who is calling, from the credentials a request presents.
//!
//! Users come from the credentials directory (see [`credentials`]). With no users the
//! service runs open ([`Policy::Open`]) — which the server only starts in when told
//! to, or on a loopback address without a credentials directory ([`startup`]); with
//! users, every request is checked:
//!
//! - credentials in any form TAXII consumers send ([`presented`]), or a client
//!   certificate verified by the TLS layer and mapped to a user by CN or SAN;
//! - a Basic login naming a user is checked against that user's hashes only; an API
//!   key alone is found by its lookup tag and checked against that one user's hash
//!   ([`password`]); only keys whose hash has no tag are tried one after the other;
//! - argon2 verification runs on the blocking pool, a few at a time; a credential that
//!   verified is remembered ([`cache`]) so later requests cost microseconds;
//! - every refusal costs the same: a path with no real hash to check (unknown user,
//!   no candidate key, a lockout) runs one argon2 verification of a dummy hash with
//!   the real hashes' parameters, and every refusal is answered no sooner than the
//!   slowest refusal takes — so neither the answer nor its timing tells a wrong
//!   password from an unknown, disabled, locked or locked-out user;
//! - repeated failures lock the client address, and a user name *from that address*,
//!   out for a while ([`lockout`]).
//!
//! [`Auth`] (`authenticator`) does the checking against one load of the credentials
//! file (`snapshot`); `CredentialsDir` reloads that file ([`crate::reload`]).

mod authenticator;
mod cache;
pub mod lockout;
pub(crate) mod presented;
mod reload;
mod snapshot;
pub(crate) mod startup;

pub use taxiway_model::auth::{credentials, password};
pub use taxiway_model::config::auth as settings;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::{header, Extensions, HeaderMap, HeaderName, HeaderValue, StatusCode};

pub use self::authenticator::Auth;
use self::authenticator::Refusal;
pub use self::credentials::{Credentials, CredentialsError, UserRecord, UsersFile};
pub use self::reload::CredentialsDir;
pub use self::settings::{AuthSettings, ClientCertUser};
pub use self::startup::{startup_credentials, OpenRefused};
use crate::access::{Caller, Policy};
use crate::config::ServiceConfig;
use crate::state::AppState;
use crate::taxii::error::TaxiiError;
use crate::tls::CertificateNames;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client address lockouts and per-client limits count: the peer, or, when the
/// peer is one of `service.trusted_proxies`, the nearest `X-Forwarded-For` entry that
/// is not.
pub fn client_address(
    config: &ServiceConfig,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Option<IpAddr> {
    let trusted = |ip: &IpAddr| config.is_trusted_proxy(ip);
    let peer = peer?;
    if !trusted(&peer) {
        return Some(peer);
    }
    // Right to left: entries were appended by each proxy in turn, so the ones on the
    // right are the trustworthy ones; stop at the first that is not ours (the client)
    // or not an address (everything left of it is whatever the client sent).
    let entries: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut nearest = None;
    for entry in entries.iter().rev() {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            break;
        };
        nearest = Some(ip);
        if !trusted(&ip) {
            break;
        }
    }
    Some(nearest.unwrap_or(peer))
}

/// Who is calling. Unauthenticated requests are anonymous where some collection
/// allows anonymous reads and challenged (401) otherwise, so that clients which send
/// credentials only when asked (challenge-response) do.
///
/// The listener puts the peer address (`ConnectInfo<SocketAddr>`) and the names in a
/// verified client certificate (`Arc<CertificateNames>`) in the request's extensions.
pub async fn caller(
    state: &AppState,
    config: &ServiceConfig,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Result<Caller, TaxiiError> {
    let auth = &state.auth;
    if auth.policy() == Policy::Open {
        return Ok(Caller::Anonymous);
    }
    let settings = &config.config.auth;
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let address = client_address(config, headers, peer);
    let outcome = match presented::from_headers(headers) {
        Err(presented::Malformed) => Err(Refusal::Unauthorized("malformed")),
        Ok(Some(presented)) => auth.verify(presented, address, settings).await,
        Ok(None) => match extensions
            .get::<Arc<CertificateNames>>()
            .and_then(|names| auth.certificate_user(names, settings))
        {
            Some(outcome) => outcome,
            None => {
                let anonymous_reads = config
                    .collections
                    .iter()
                    .any(|c| c.settings.access.anonymous_read);
                return if anonymous_reads {
                    Ok(Caller::Anonymous)
                } else {
                    Err(state.unauthorized())
                };
            }
        },
    };
    match outcome {
        Ok(identity) => Ok(Caller::User(identity)),
        Err(Refusal::Unauthorized(reason)) => {
            state.metrics.auth_failure(reason);
            tracing::info!(
                address = address.map(|a| a.to_string()).unwrap_or_default(),
                reason,
                "authentication refused"
            );
            Err(state.unauthorized())
        }
        Err(Refusal::Busy) => {
            state.metrics.auth_failure("busy");
            Err(
                TaxiiError::new(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable")
                    .describe("too many logins are being checked; retry shortly")
                    .with_header(header::RETRY_AFTER, HeaderValue::from_static("5")),
            )
        }
    }
}
