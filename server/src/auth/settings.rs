//! `[auth]` in `taxiway.toml`: lockout thresholds and client-certificate mapping.

use std::num::NonZeroU64;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How authentication failures are limited and how callers are identified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Failed authentications naming one user, within `failure_window_secs`, that lock
    /// that user's password out for `lockout_secs`; 0 turns per-user lockout off.
    pub max_failures_per_user: u32,
    /// Failed authentications from one client address, within `failure_window_secs`,
    /// that lock that address out for `lockout_secs`; 0 turns per-address lockout off.
    pub max_failures_per_address: u32,
    /// The window failures are counted in (seconds).
    pub failure_window_secs: NonZeroU64,
    /// How long a lockout lasts (seconds).
    pub lockout_secs: NonZeroU64,
    /// Which name of a verified client certificate is the user name.
    pub client_cert_user: ClientCertUser,
}

const DEFAULT_WINDOW: NonZeroU64 = NonZeroU64::new(600).unwrap();
const DEFAULT_LOCKOUT: NonZeroU64 = NonZeroU64::new(900).unwrap();

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            max_failures_per_user: 10,
            max_failures_per_address: 30,
            failure_window_secs: DEFAULT_WINDOW,
            lockout_secs: DEFAULT_LOCKOUT,
            client_cert_user: ClientCertUser::Cn,
        }
    }
}

impl AuthSettings {
    /// The failure-counting window.
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.failure_window_secs.get())
    }

    /// The lockout duration.
    pub fn lockout(&self) -> Duration {
        Duration::from_secs(self.lockout_secs.get())
    }
}

/// Which name of a client certificate names the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientCertUser {
    /// The subject's common name (CN).
    #[serde(rename = "cn")]
    Cn,
    /// The first subject alternative name (DNS, e-mail or URI) that names a user.
    #[serde(rename = "san")]
    San,
    /// Client certificates identify nobody (the TLS layer may still ask for them).
    #[serde(rename = "none")]
    None,
}
