//! Authentication: who is calling, from the credentials a request presents.
//!
//! Users come from the credentials directory (see [`credentials`]). With no users the
//! service runs open ([`Policy::Open`]); with users, every request is checked:
//!
//! - credentials in any form TAXII consumers send ([`presented`]), or a client
//!   certificate verified by the TLS layer and mapped to a user by CN or SAN;
//! - argon2 verification runs on the blocking pool, a few at a time; a credential that
//!   verified is remembered ([`cache`]) so later requests cost microseconds;
//! - a wrong password, an unknown user, a disabled or locked user and a locked-out
//!   user or address are all answered with the same 401;
//! - repeated failures lock the user name and the client address out for a while
//!   ([`lockout`]).

mod cache;
pub mod credentials;
pub mod lockout;
pub mod password;
pub mod presented;
pub mod settings;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::extract::ConnectInfo;
use axum::http::{header, Extensions, HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::sync::{mpsc, Semaphore};

use self::cache::VerifiedCache;
pub use self::credentials::{Credentials, CredentialsError, UserRecord, UsersFile};
use self::lockout::{Limit, Lockouts, Subject};
use self::presented::Presented;
pub use self::settings::{AuthSettings, ClientCertUser};
use crate::access::{Caller, Identity, Policy};
use crate::config::watch::DirWatcher;
use crate::config::ServiceConfig;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::taxii::error::TaxiiError;
use crate::tls::CertificateNames;

/// How long a request waits for a verification slot before it is told to retry.
const VERIFY_QUEUE_WAIT: Duration = Duration::from_secs(10);

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// One load of the credentials file and the credentials verified against it.
struct Snapshot {
    credentials: Credentials,
    verified: VerifiedCache,
}

impl Snapshot {
    fn new(credentials: Credentials) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            credentials,
            verified: VerifiedCache::new(),
        })
    }

    /// Verify a credential (slow) and remember it if it identifies an enabled user;
    /// the error says why not.
    fn verify(
        &self,
        presented: &Presented,
        by_name: bool,
        fingerprint: cache::Fingerprint,
    ) -> Result<Arc<Identity>, &'static str> {
        let name = check(&self.credentials, presented, by_name);
        match name.and_then(|n| self.credentials.user(&n)) {
            Some(user) if user.enabled => {
                self.verified.insert(fingerprint, user.identity.clone());
                Ok(user.identity.clone())
            }
            Some(user) => Err(user.refusal.unwrap_or("disabled")),
            None => Err("invalid"),
        }
    }
}

/// Why a request was not authenticated: the reason goes to metrics and logs only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Refused; the client sees a 401.
    Unauthorized(&'static str),
    /// Too many verifications queued; the client sees a 503.
    Busy,
}

/// The authenticator: current users, verified credentials, lockouts.
pub struct Auth {
    current: ArcSwap<Snapshot>,
    lockouts: Lockouts,
    verifications: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Auth {
    /// An authenticator for these users, verifying at most one credential per core at a time.
    pub fn new(credentials: Credentials, metrics: Arc<Metrics>) -> Auth {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        metrics.users(credentials.len());
        Auth {
            current: ArcSwap::new(Snapshot::new(credentials)),
            lockouts: Lockouts::new(),
            verifications: Arc::new(Semaphore::new(cores)),
            metrics,
        }
    }

    /// Open while no users are configured, rules otherwise.
    pub fn policy(&self) -> Policy {
        if self.current.load().credentials.is_empty() {
            Policy::Open
        } else {
            Policy::Rules
        }
    }

    /// How many users are configured.
    pub fn users(&self) -> usize {
        self.current.load().credentials.len()
    }

    /// Swap in a new load of the credentials file; returns whether anything changed.
    /// Going from some users to none is refused: it would open every collection to
    /// everyone, and a half-written or missing file must never do that (restart the
    /// server to run without users on purpose).
    pub fn replace(&self, next: Credentials) -> Result<bool, &'static str> {
        let current = self.current.load();
        if next.same_as(&current.credentials) {
            return Ok(false);
        }
        if next.is_empty() && !current.credentials.is_empty() {
            return Err(
                "the new credentials hold no users, which would open every collection to everyone",
            );
        }
        self.metrics.users(next.len());
        self.current.store(Snapshot::new(next));
        Ok(true)
    }

    /// How many verified credentials are remembered now.
    pub fn cached(&self) -> usize {
        self.current.load().verified.len()
    }

    /// Verify presented credentials.
    async fn verify(
        &self,
        presented: Presented,
        address: Option<IpAddr>,
        settings: &AuthSettings,
    ) -> Result<Arc<Identity>, Refusal> {
        let snapshot = self.current.load_full();
        let now = Instant::now();
        let address = address.map(Subject::Address);
        // A Basic user name that names a user is what per-user lockout protects; API
        // keys name nobody until they verify.
        let named = match &presented {
            Presented::Basic { user, .. } if snapshot.credentials.user(user).is_some() => {
                Some(Subject::User(user.clone()))
            }
            _ => None,
        };
        let locked_out = [&address, &named]
            .into_iter()
            .flatten()
            .any(|s| self.lockouts.is_locked(s, now));
        if locked_out {
            return Err(Refusal::Unauthorized("locked-out"));
        }

        let fingerprint = snapshot.verified.fingerprint(&presented, named.is_some());
        let verdict = match snapshot.verified.get(&fingerprint) {
            Some(identity) => Ok(identity),
            None => {
                self.verify_slowly(&snapshot, presented, named.is_some(), fingerprint)
                    .await?
            }
        };
        match verdict {
            Ok(identity) => {
                for s in [&address, &named].into_iter().flatten() {
                    self.lockouts.success(s, now);
                }
                Ok(identity)
            }
            Err(reason) => {
                self.failed(&address, &named, settings, now);
                Err(Refusal::Unauthorized(reason))
            }
        }
    }

    /// Run argon2 on a credential not seen before, a bounded number at a time. The
    /// inner error is why it did not identify an enabled user.
    async fn verify_slowly(
        &self,
        snapshot: &Arc<Snapshot>,
        presented: Presented,
        by_name: bool,
        fingerprint: cache::Fingerprint,
    ) -> Result<Result<Arc<Identity>, &'static str>, Refusal> {
        let permit = tokio::time::timeout(
            VERIFY_QUEUE_WAIT,
            self.verifications.clone().acquire_owned(),
        )
        .await
        .map_err(|_| Refusal::Busy)?
        .map_err(|_| Refusal::Busy)?;
        // Another request may have verified the same credential while this one waited.
        if let Some(identity) = snapshot.verified.get(&fingerprint) {
            return Ok(Ok(identity));
        }
        self.metrics.verification();
        let verifying = snapshot.clone();
        tokio::task::spawn_blocking(move || {
            // Held until the verdict is cached, so a request that was waiting for this
            // slot finds it instead of verifying the same credential again.
            let _permit = permit;
            verifying.verify(&presented, by_name, fingerprint)
        })
        .await
        .map_err(|_| Refusal::Unauthorized("internal"))
    }

    /// Count a failure against the address and the named user; log lockouts.
    fn failed(
        &self,
        address: &Option<Subject>,
        named: &Option<Subject>,
        settings: &AuthSettings,
        now: Instant,
    ) {
        let window = settings.window();
        let lockout = settings.lockout();
        let limits = [
            (address, settings.max_failures_per_address, "address"),
            (named, settings.max_failures_per_user, "user"),
        ];
        for (subject, max_failures, kind) in limits {
            let Some(subject) = subject else { continue };
            let limit = Limit {
                max_failures,
                window,
                lockout,
            };
            if self.lockouts.failure(subject.clone(), limit, now) {
                self.metrics.lockout(kind);
                tracing::warn!(
                    %subject,
                    failures = max_failures,
                    lockout_secs = lockout.as_secs(),
                    "too many failed authentications; locked out"
                );
            }
        }
    }

    /// The user a verified client certificate names.
    fn certificate_user(
        &self,
        names: &CertificateNames,
        settings: &AuthSettings,
    ) -> Option<Result<Arc<Identity>, Refusal>> {
        let candidates = match settings.client_cert_user {
            ClientCertUser::Cn => &names.common_names,
            ClientCertUser::San => &names.alt_names,
            ClientCertUser::None => return None,
        };
        let snapshot = self.current.load();
        let found = candidates.iter().find_map(|n| snapshot.credentials.user(n));
        Some(match found {
            Some(user) if user.enabled => Ok(user.identity.clone()),
            Some(user) => Err(Refusal::Unauthorized(user.refusal.unwrap_or("disabled"))),
            None => Err(Refusal::Unauthorized("unknown-certificate")),
        })
    }
}

/// Which user, if any, the secret verifies for. Slow: run on the blocking pool.
fn check(credentials: &Credentials, presented: &Presented, by_name: bool) -> Option<String> {
    let (user, secret) = match presented {
        Presented::Basic { user, secret } => (by_name.then_some(user), secret.as_bytes()),
        Presented::ApiKey(secret) => (None, secret.as_bytes()),
    };
    if let Some(user) = user.and_then(|name| credentials.user(name)) {
        let hashes = [&user.password, &user.api_key];
        if hashes.iter().all(|h| h.is_none()) {
            password::dummy_verify(secret);
        }
        return hashes
            .into_iter()
            .flatten()
            .any(|h| h.verify(secret))
            .then(|| user.identity.name.clone());
    }
    let mut tried = false;
    for user in credentials.api_key_users() {
        tried = true;
        if user.api_key.as_ref().is_some_and(|h| h.verify(secret)) {
            return Some(user.identity.name.clone());
        }
    }
    if !tried {
        password::dummy_verify(secret);
    }
    None
}

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

/// Watch the credentials directory and swap in each valid change; an invalid one is
/// logged and counted, and the users loaded before keep working.
pub fn spawn_reload(auth: Arc<Auth>, dir: PathBuf) -> notify::Result<DirWatcher> {
    let (tx, mut rx) = mpsc::channel(4);
    let watcher = DirWatcher::start(std::slice::from_ref(&dir), tx)?;
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            reload_once(&auth, &dir);
        }
    });
    Ok(watcher)
}

/// Re-read the credentials directory once; returns whether new users went live.
pub fn reload_once(auth: &Auth, dir: &std::path::Path) -> bool {
    let result = Credentials::load_dir(dir)
        .map_err(|e| e.to_string())
        .and_then(|next| auth.replace(next).map_err(str::to_string));
    match result {
        Ok(false) => false,
        Ok(true) => {
            auth.metrics.credentials_reload(true);
            tracing::info!(users = auth.users(), "credentials reloaded");
            true
        }
        Err(error) => {
            auth.metrics.credentials_reload(false);
            tracing::error!(%error, "credentials change rejected; the users loaded before keep working");
            false
        }
    }
}
