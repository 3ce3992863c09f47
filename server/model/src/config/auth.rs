//! `[auth]` in `taxiway.toml`: lockout thresholds and client-certificate mapping.

use std::num::NonZeroU64;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How authentication failures are limited and how callers are identified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Failed authentications naming one user from one client address, within
    /// `failure_window_secs`, that lock that user's password out *for that address*;
    /// 0 turns per-user lockout off.
    pub max_failures_per_user: u32,
    /// Failed authentications from one client address, within `failure_window_secs`,
    /// that lock that address out; 0 turns per-address lockout off.
    pub max_failures_per_address: u32,
    /// The window failures are counted in (seconds).
    pub failure_window_secs: NonZeroU64,
    /// How long a first lockout lasts (seconds); each further lockout of the same
    /// subject soon after doubles, up to `max_lockout_secs`.
    pub lockout_secs: NonZeroU64,
    /// The longest a repeated lockout lasts (seconds; never less than `lockout_secs`).
    pub max_lockout_secs: NonZeroU64,
    /// Which name of a verified client certificate is the user name.
    pub client_cert_user: ClientCertUser,
}

const DEFAULT_WINDOW: NonZeroU64 = NonZeroU64::new(600).unwrap();
const DEFAULT_LOCKOUT: NonZeroU64 = NonZeroU64::new(900).unwrap();
const DEFAULT_MAX_LOCKOUT: NonZeroU64 = NonZeroU64::new(3600).unwrap();

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            max_failures_per_user: 10,
            max_failures_per_address: 30,
            failure_window_secs: DEFAULT_WINDOW,
            lockout_secs: DEFAULT_LOCKOUT,
            max_lockout_secs: DEFAULT_MAX_LOCKOUT,
            client_cert_user: ClientCertUser::Cn,
        }
    }
}

impl AuthSettings {
    /// The failure-counting window.
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.failure_window_secs.get())
    }

    /// The first lockout's duration.
    pub fn lockout(&self) -> Duration {
        Duration::from_secs(self.lockout_secs.get())
    }

    /// The longest lockout.
    pub fn max_lockout(&self) -> Duration {
        Duration::from_secs(self.max_lockout_secs.get().max(self.lockout_secs.get()))
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
