//! What authentication reads: the credentials directory ([`credentials`]), the hashes
//! of passwords and API keys in it ([`password`]) and the `[auth]` section of
//! `taxiway.toml` ([`settings`]). Checking a request's credentials is the server's job.

pub mod credentials;
pub mod password;
pub mod settings;

pub use self::credentials::{Credentials, CredentialsError, UserRecord, UsersFile};
pub use self::settings::{AuthSettings, ClientCertUser};
