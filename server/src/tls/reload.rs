//! Hot reload of the TLS directory (see [`crate::reload`]): Kubernetes swaps a
//! `..data` symlink, so the directory is watched. Errors are logged and counted.

use std::path::Path;

use super::{Reloaded, Tls, TlsError};
use crate::reload::{Counter, Reloadable};

/// The target of these log lines: where they were logged before reloading had a file
/// of its own, so that log filters and readers see the same lines.
const LOG: &str = "taxiway_server::tls";

impl Reloadable for Tls {
    type Change = Reloaded;
    type Error = TlsError;

    const COUNTER: Counter = Counter::Tls;

    fn dir(&self) -> &Path {
        &self.dir
    }

    async fn reload(&self) -> Result<Option<Reloaded>, TlsError> {
        let changed = Tls::reload(self)?;
        Ok((changed != Reloaded::default()).then_some(changed))
    }

    fn applied(&self, changed: Reloaded) {
        if changed.certificate {
            tracing::info!(
                target: LOG,
                certificate = %self.describe_certificate(),
                "TLS certificate reloaded"
            );
        }
        if changed.client_ca {
            tracing::info!(
                target: LOG,
                client_certificates = self.asks_client_certificates(),
                "client CA (ca.crt) reloaded"
            );
        }
    }

    fn rejected(&self, error: TlsError) {
        tracing::error!(
            target: LOG,
            error = %error,
            "TLS change rejected; the previous certificate keeps serving"
        );
    }
}
