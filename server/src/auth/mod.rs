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
mod caller;
pub mod lockout;
pub(crate) mod presented;
mod reload;
mod snapshot;
pub(crate) mod startup;

pub use taxiway_model::auth::{credentials, password};
pub use taxiway_model::config::auth as settings;

pub use self::authenticator::Auth;
use self::authenticator::Refusal;
pub use self::caller::AuthError;
pub use self::credentials::{Credentials, CredentialsError, UserRecord, UsersFile};
pub use self::reload::CredentialsDir;
pub use self::settings::{AuthSettings, ClientCertUser};
pub use self::startup::{startup_credentials, OpenRefused};
