//! Hot reload of the credentials directory (see [`crate::reload`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Auth, Credentials};
use crate::reload::{Counter, Reloadable};

/// The target of these log lines: where they were logged before reloading had a file
/// of its own, so that log filters and readers see the same lines.
const LOG: &str = "taxiway_server::auth";

/// The credentials directory, reloaded into an authenticator: each valid change is
/// swapped in; an invalid one is logged and counted, and the users loaded before keep
/// working.
pub struct CredentialsDir {
    auth: Arc<Auth>,
    dir: PathBuf,
}

impl CredentialsDir {
    /// Reload `dir` into `auth`.
    pub fn new(auth: Arc<Auth>, dir: &Path) -> CredentialsDir {
        CredentialsDir {
            auth,
            dir: dir.to_path_buf(),
        }
    }
}

/// Re-read `dir` and swap its users in: whether anything changed, or why not.
fn replace_from(auth: &Auth, dir: &Path) -> Result<bool, String> {
    Credentials::load_dir(dir)
        .map_err(|e| e.to_string())
        .and_then(|next| auth.replace(next).map_err(str::to_string))
}

impl Reloadable for CredentialsDir {
    type Change = ();
    type Error = String;

    const COUNTER: Counter = Counter::Credentials;

    fn dir(&self) -> &Path {
        &self.dir
    }

    async fn reload(&self) -> Result<Option<()>, String> {
        // Loading hashes a dummy (tens of milliseconds): off the async workers.
        let (auth, dir) = (self.auth.clone(), self.dir.clone());
        match tokio::task::spawn_blocking(move || replace_from(&auth, &dir)).await {
            Ok(replaced) => replaced.map(|changed| changed.then_some(())),
            // A panic while loading changed nothing (and the panic is reported).
            Err(_) => Ok(None),
        }
    }

    fn applied(&self, (): ()) {
        tracing::info!(target: LOG, users = self.auth.users(), "credentials reloaded");
    }

    fn rejected(&self, error: String) {
        tracing::error!(
            target: LOG,
            %error,
            "credentials change rejected; the users loaded before keep working"
        );
    }
}
