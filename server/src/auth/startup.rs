//! Which users the server starts with, and when it refuses to start: never open to
//! everyone by accident.
//!
//! - `--credentials-dir` given: it must hold at least one user (a missing
//!   `users.toml`, an empty file or `users = []` is refused), so a file emptied by
//!   mistake fails closed on the next restart or rollout.
//! - no `--credentials-dir`: open is allowed only on a loopback listen address
//!   (evaluation on one machine).
//! - `--allow-anonymous-open` allows both on purpose.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use taxiway_model::auth::credentials::{Credentials, CredentialsError};

/// Why the server will not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenRefused {
    /// The credentials directory cannot be read or is invalid.
    #[error("invalid credentials in {dir}: {source}")]
    Invalid {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        source: CredentialsError,
    },
    /// The credentials directory holds no users.
    #[error(
        "the credentials directory {0} holds no users (no users.toml, an empty file or \
         `users = []`): refusing to start, which would open every collection to everyone. \
         Add users (see docs/security.md), or pass --allow-anonymous-open to run without \
         authentication on purpose"
    )]
    NoUsers(PathBuf),
    /// No credentials directory, and not on a loopback address.
    #[error(
        "no --credentials-dir: every collection would be open to everyone on {0}, which is not \
         a loopback address. Give --credentials-dir with users (see docs/security.md), listen on \
         127.0.0.1 for a local evaluation, or pass --allow-anonymous-open to serve without \
         authentication on purpose"
    )]
    OpenOnNetwork(SocketAddr),
}

/// The users to start with: those in `dir`, or none when running open is allowed
/// (see the module docs).
pub fn startup_credentials(
    dir: Option<&Path>,
    listen: SocketAddr,
    allow_open: bool,
) -> Result<Credentials, OpenRefused> {
    match dir {
        Some(dir) => {
            let credentials =
                Credentials::load_dir(dir).map_err(|source| OpenRefused::Invalid {
                    dir: dir.to_path_buf(),
                    source,
                })?;
            if credentials.is_empty() && !allow_open {
                return Err(OpenRefused::NoUsers(dir.to_path_buf()));
            }
            Ok(credentials)
        }
        None if allow_open || listen.ip().to_canonical().is_loopback() => Ok(Credentials::none()),
        None => Err(OpenRefused::OpenOnNetwork(listen)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn no_users_in_a_credentials_directory_is_refused_unless_allowed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let local = addr("127.0.0.1:9443");
        for contents in [None, Some(""), Some("users = []\n")] {
            if let Some(text) = contents {
                std::fs::write(dir.path().join("users.toml"), text).expect("write");
            }
            let refused = startup_credentials(Some(dir.path()), local, false);
            assert!(
                matches!(refused, Err(OpenRefused::NoUsers(_))),
                "{contents:?}: {refused:?}"
            );
            let allowed = startup_credentials(Some(dir.path()), local, true).expect("allowed");
            assert!(allowed.is_empty());
        }
        std::fs::write(dir.path().join("users.toml"), "users = 3\n").expect("write");
        assert!(matches!(
            startup_credentials(Some(dir.path()), local, true),
            Err(OpenRefused::Invalid { .. })
        ));
    }

    #[test]
    fn without_a_credentials_directory_only_loopback_runs_open() {
        for local in ["127.0.0.1:9443", "[::1]:9443", "[::ffff:127.0.0.1]:1"] {
            assert!(
                startup_credentials(None, addr(local), false).is_ok(),
                "{local}"
            );
        }
        for network in ["0.0.0.0:9443", "[::]:9443", "192.0.2.1:9443"] {
            let refused = startup_credentials(None, addr(network), false);
            assert!(
                matches!(refused, Err(OpenRefused::OpenOnNetwork(_))),
                "{network}"
            );
            assert!(startup_credentials(None, addr(network), true).is_ok());
        }
    }
}
