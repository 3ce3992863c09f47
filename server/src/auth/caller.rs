//! Who is calling: the credentials a request presents, checked by the [`Auth`].
//! Refusals are [`AuthError`]s; the HTTP layer decides how they are answered.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderMap;

use super::{presented, Auth, Refusal};
use crate::access::{Caller, Policy};
use crate::config::ServiceConfig;
use crate::tls::CertificateNames;

/// Why a request has no caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No valid credentials (none presented where every collection needs them, or
    /// refused); the client should authenticate.
    #[error("authentication required")]
    Unauthorized,
    /// Too many logins are being checked at once; the client should retry shortly.
    #[error("too many logins are being checked")]
    Busy,
}

impl Auth {
    /// Who is calling. Unauthenticated requests are anonymous where some collection
    /// allows anonymous reads and challenged ([`AuthError::Unauthorized`]) otherwise,
    /// so that clients which send credentials only when asked (challenge-response) do.
    ///
    /// `certificate`: the names in a verified client certificate; `address`: the client
    /// address after proxy trust, which lockouts count.
    pub async fn caller(
        &self,
        config: &ServiceConfig,
        headers: &HeaderMap,
        certificate: Option<&Arc<CertificateNames>>,
        address: Option<IpAddr>,
    ) -> Result<Caller, AuthError> {
        if self.policy() == Policy::Open {
            return Ok(Caller::Anonymous);
        }
        let settings = &config.config.auth;
        let outcome = match presented::from_headers(headers) {
            Err(presented::Malformed) => Err(Refusal::Unauthorized("malformed")),
            Ok(Some(presented)) => self.verify(presented, address, settings).await,
            Ok(None) => {
                match certificate.and_then(|names| self.certificate_user(names, settings)) {
                    Some(outcome) => outcome,
                    None => return anonymous_or_challenged(config),
                }
            }
        };
        match outcome {
            Ok(identity) => Ok(Caller::User(identity)),
            Err(Refusal::Unauthorized(reason)) => {
                self.metrics.auth_failure(reason);
                tracing::info!(
                    address = address.map(|a| a.to_string()).unwrap_or_default(),
                    reason,
                    "authentication refused"
                );
                Err(AuthError::Unauthorized)
            }
            Err(Refusal::Busy) => {
                self.metrics.auth_failure("busy");
                Err(AuthError::Busy)
            }
        }
    }
}

/// A request without credentials: anonymous where some collection allows anonymous
/// reads, challenged otherwise.
fn anonymous_or_challenged(config: &ServiceConfig) -> Result<Caller, AuthError> {
    let anonymous_reads = config
        .collections
        .iter()
        .any(|c| c.settings.access.anonymous_read);
    if anonymous_reads {
        Ok(Caller::Anonymous)
    } else {
        Err(AuthError::Unauthorized)
    }
}
