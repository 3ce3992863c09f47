//! What authentication reads: the credentials directory ([`credentials`]) and the
//! hashes of passwords and API keys in it ([`password`]). The `[auth]` section of
//! `taxiway.toml` is part of the configuration ([`crate::config::auth`]); checking a
//! request's credentials is the server's job.

pub mod credentials;
pub mod password;

pub use self::credentials::{Credentials, CredentialsError, UserRecord, UsersFile};
