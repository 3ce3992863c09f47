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

mod cache;
mod caller;
pub mod credentials;
pub mod lockout;
pub mod password;
pub mod presented;
pub mod settings;
pub mod startup;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use self::cache::VerifiedCache;
pub use self::caller::AuthError;
pub use self::credentials::{Credentials, CredentialsError, UserRecord, UsersFile};
use self::credentials::{KeyOwners, User};
use self::lockout::{Limit, Lockouts, Subject};
use self::password::{Dummy, SecretHash};
use self::presented::Presented;
pub use self::settings::{AuthSettings, ClientCertUser};
pub use self::startup::{startup_credentials, OpenRefused};
use crate::access::{Identity, Policy};
use crate::config::watch::DirWatcher;
use crate::metrics::Metrics;
use crate::tls::CertificateNames;

/// How long a request waits for a verification slot before it is told to retry.
const VERIFY_QUEUE_WAIT: Duration = Duration::from_secs(10);

/// Refusals are answered no sooner than this multiple of the slowest refusal's
/// expected time, so that the ordinary spread of argon2 timings stays hidden.
const FLOOR_MARGIN: f64 = 1.25;

/// One load of the credentials file, the credentials verified against it, and what
/// makes every refusal cost the same.
struct Snapshot {
    credentials: Credentials,
    verified: VerifiedCache,
    /// A hash with the real hashes' parameters (none without users).
    dummy: Option<Dummy>,
    /// The most argon2 verifications one authentication can take.
    most: u32,
    /// What one verification takes, in nanoseconds (a moving average).
    per_verification: AtomicU64,
}

impl Snapshot {
    /// A snapshot of `credentials`; slow when there are users (hashes the dummy once).
    fn new(credentials: Credentials, verified: VerifiedCache) -> Arc<Snapshot> {
        let started = Instant::now();
        let dummy = (!credentials.is_empty()).then(|| Dummy::new(credentials.typical_cost()));
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Arc::new(Snapshot {
            most: u32::try_from(credentials.most_verifications()).unwrap_or(u32::MAX),
            credentials,
            verified,
            dummy,
            per_verification: AtomicU64::new(took),
        })
    }

    /// Run one verification of the dummy hash.
    fn dummy_verify(&self, secret: &[u8]) {
        if let Some(dummy) = &self.dummy {
            dummy.verify(secret);
        }
    }

    /// Check a credential (slow; on the blocking pool) and remember it if it identifies
    /// an enabled user. `locked_out`: refuse after one dummy verification. Returns the
    /// verdict (the error says why not) and how many verifications ran.
    fn verify(
        &self,
        presented: &Presented,
        by_name: bool,
        locked_out: bool,
        fingerprint: cache::Fingerprint,
    ) -> (Result<Arc<Identity>, &'static str>, u32) {
        let secret = presented.secret().as_bytes();
        if locked_out {
            self.dummy_verify(secret);
            return (Err("locked-out"), 1);
        }
        let named = match presented {
            Presented::Basic { user, .. } if by_name => self.credentials.user(user),
            _ => None,
        };
        let (found, runs) = match named {
            Some(user) => {
                let candidates = named_candidates(user, secret);
                let (ok, runs) = verify_any(candidates.iter().copied(), secret);
                (ok.then_some(user), runs)
            }
            None => match self.credentials.key_owners(secret) {
                KeyOwners::Tagged(users) | KeyOwners::Untagged(users) => {
                    let mut runs = 0;
                    let found = users.into_iter().find(|u| {
                        let (ok, n) = verify_any(u.api_key.iter(), secret);
                        runs += n;
                        ok
                    });
                    (found, runs)
                }
                KeyOwners::Nobody => (None, 0),
            },
        };
        if runs == 0 {
            self.dummy_verify(secret);
        }
        let verdict = match found {
            Some(user) if user.enabled => {
                self.verified.insert(fingerprint, user.identity.clone());
                Ok(user.identity.clone())
            }
            Some(user) => Err(user.refusal.unwrap_or("disabled")),
            None => Err("invalid"),
        };
        (verdict, runs.max(1))
    }

    /// Fold one measurement into the per-verification average.
    fn measured(&self, took: Duration, runs: u32) {
        let sample = u64::try_from(took.as_nanos() / u128::from(runs.max(1))).unwrap_or(u64::MAX);
        let old = self.per_verification.load(Ordering::Relaxed);
        let new = if sample >= old {
            old + (sample - old) / 8
        } else {
            old - (old - sample) / 8
        };
        self.per_verification.store(new, Ordering::Relaxed);
    }

    /// How long the slowest refusal is expected to take.
    fn refusal_floor(&self) -> Duration {
        let per = self.per_verification.load(Ordering::Relaxed) as f64;
        Duration::from_nanos((per * f64::from(self.most) * FLOOR_MARGIN) as u64)
    }
}

/// The hashes a Basic login naming `user` is checked against, in order: the API key
/// alone when its tag says the secret is the key, else the password, then a key
/// whose hash has no tag.
fn named_candidates<'a>(user: &'a User, secret: &[u8]) -> Vec<&'a SecretHash> {
    let key = user.api_key.as_ref();
    let tag = password::api_key_tag(secret);
    let is_key = |k: &&SecretHash| k.tag().is_some_and(|t| bool::from(t.ct_eq(&tag)));
    if let Some(k) = key.filter(is_key) {
        return vec![k];
    }
    user.password
        .iter()
        .chain(key.filter(|k| k.tag().is_none()))
        .collect()
}

/// Verify `secret` against each hash until one matches: whether one did, and how
/// many verifications ran.
fn verify_any<'a>(hashes: impl Iterator<Item = &'a SecretHash>, secret: &[u8]) -> (bool, u32) {
    let mut runs = 0;
    for hash in hashes {
        runs += 1;
        if hash.verify(secret) {
            return (true, runs);
        }
    }
    (false, runs)
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
    /// Searches through API keys without a tag: one at a time, so that unknown keys
    /// never take more than one core however many keys there are.
    searches: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Auth {
    /// An authenticator for these users, verifying at most one credential per core at a time.
    pub fn new(credentials: Credentials, metrics: Arc<Metrics>) -> Auth {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        metrics.users(credentials.len());
        warn_untagged(&credentials);
        Auth {
            current: ArcSwap::new(Snapshot::new(credentials, VerifiedCache::new())),
            lockouts: Lockouts::new(),
            verifications: Arc::new(Semaphore::new(cores)),
            searches: Arc::new(Semaphore::new(1)),
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
    /// server to run without users on purpose). Verified credentials of users whose
    /// record did not change stay remembered.
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
        let verified = current.verified.next(|identity| {
            let unchanged = next.record(&identity.name).is_some()
                && next.record(&identity.name) == current.credentials.record(&identity.name);
            unchanged
                .then(|| next.user(&identity.name).map(|u| u.identity.clone()))
                .flatten()
        });
        self.metrics.users(next.len());
        warn_untagged(&next);
        self.current.store(Snapshot::new(next, verified));
        Ok(true)
    }

    /// How many verified credentials are remembered now.
    pub fn cached(&self) -> usize {
        self.current.load().verified.len()
    }

    /// Subjects the lockout table tracks now.
    pub fn lockouts_tracked(&self) -> usize {
        self.lockouts.tracked()
    }

    /// Verify presented credentials.
    async fn verify(
        &self,
        presented: Presented,
        address: Option<IpAddr>,
        settings: &AuthSettings,
    ) -> Result<Arc<Identity>, Refusal> {
        let started = Instant::now();
        let snapshot = self.current.load_full();
        // A Basic user name that names a user is what per-user lockout protects; API
        // keys name nobody until they verify.
        let named = match &presented {
            Presented::Basic { user, .. } if snapshot.credentials.user(user).is_some() => {
                Some(user.clone())
            }
            _ => None,
        };
        let subjects = Subjects {
            address: address.map(Subject::address),
            user: address
                .zip(named.as_deref())
                .map(|(a, n)| Subject::user_at(n, a)),
        };
        let locked_out = subjects
            .iter()
            .any(|(s, _)| self.lockouts.is_locked(s, started));

        let fingerprint = snapshot.verified.fingerprint(&presented, named.is_some());
        if !locked_out {
            if let Some(identity) = snapshot.verified.get(&fingerprint) {
                self.succeeded(&subjects, started);
                return Ok(identity);
            }
        }
        let search = !locked_out
            && named.is_none()
            && matches!(
                snapshot
                    .credentials
                    .key_owners(presented.secret().as_bytes()),
                KeyOwners::Untagged(_)
            );
        let verdict = self
            .verify_slowly(
                &snapshot,
                presented,
                named.is_some(),
                locked_out,
                search,
                fingerprint,
            )
            .await?;
        match verdict {
            Ok(identity) => {
                self.succeeded(&subjects, Instant::now());
                Ok(identity)
            }
            Err(reason) => {
                self.failed(&subjects, settings, Instant::now());
                // Every refusal takes as long as the slowest one would.
                tokio::time::sleep_until((started + snapshot.refusal_floor()).into()).await;
                Err(Refusal::Unauthorized(reason))
            }
        }
    }

    /// Run argon2 on a credential not seen before, a bounded number at a time (and
    /// searches through untagged keys one at a time). The inner error is why it did
    /// not identify an enabled user.
    async fn verify_slowly(
        &self,
        snapshot: &Arc<Snapshot>,
        presented: Presented,
        by_name: bool,
        locked_out: bool,
        search: bool,
        fingerprint: cache::Fingerprint,
    ) -> Result<Result<Arc<Identity>, &'static str>, Refusal> {
        let permits = tokio::time::timeout(VERIFY_QUEUE_WAIT, async {
            let searching = match search {
                true => Some(self.searches.clone().acquire_owned().await?),
                false => None,
            };
            let slot = self.verifications.clone().acquire_owned().await?;
            Ok::<(OwnedSemaphorePermit, Option<OwnedSemaphorePermit>), tokio::sync::AcquireError>((
                slot, searching,
            ))
        })
        .await
        .map_err(|_| Refusal::Busy)?
        .map_err(|_| Refusal::Busy)?;
        // Another request may have verified the same credential while this one waited.
        if !locked_out {
            if let Some(identity) = snapshot.verified.get(&fingerprint) {
                return Ok(Ok(identity));
            }
        }
        self.metrics.verification();
        let verifying = snapshot.clone();
        tokio::task::spawn_blocking(move || {
            // Held until the verdict is cached, so a request that was waiting for this
            // slot finds it instead of verifying the same credential again.
            let _permits = permits;
            let started = Instant::now();
            let (verdict, runs) = verifying.verify(&presented, by_name, locked_out, fingerprint);
            verifying.measured(started.elapsed(), runs);
            verdict
        })
        .await
        .map_err(|_| Refusal::Unauthorized("internal"))
    }

    /// A success forgets the failures counted against the address and the user there.
    fn succeeded(&self, subjects: &Subjects, now: Instant) {
        for (subject, _) in subjects.iter() {
            self.lockouts.success(subject, now);
        }
    }

    /// Count a failure against the address and the named user there; log lockouts.
    fn failed(&self, subjects: &Subjects, settings: &AuthSettings, now: Instant) {
        for (subject, kind) in subjects.iter() {
            let max_failures = match kind {
                "user" => settings.max_failures_per_user,
                _ => settings.max_failures_per_address,
            };
            let limit = Limit {
                max_failures,
                window: settings.window(),
                lockout: settings.lockout(),
                max_lockout: settings.max_lockout(),
            };
            if let Some(lockout) = self.lockouts.failure(subject.clone(), limit, now) {
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

/// What one authentication's failures count against.
struct Subjects {
    address: Option<Subject>,
    user: Option<Subject>,
}

impl Subjects {
    /// Each subject with its metric label.
    fn iter(&self) -> impl Iterator<Item = (&Subject, &'static str)> {
        self.address
            .iter()
            .map(|s| (s, "address"))
            .chain(self.user.iter().map(|s| (s, "user")))
    }
}

/// Say so when API keys have no lookup tag: each such key costs every unknown key a
/// verification.
fn warn_untagged(credentials: &Credentials) {
    let untagged = credentials.untagged_api_keys();
    if untagged > 1 {
        tracing::warn!(
            untagged,
            "API key hashes without a lookup tag: an API key presented without a user name that \
             matches no tag is tried against each of them (one search at a time); re-hash the keys \
             with `taxiway-server hash-password --api-key` (see docs/security.md)"
        );
    }
}

/// Watch the credentials directory and swap in each valid change; an invalid one is
/// logged and counted, and the users loaded before keep working.
pub fn spawn_reload(auth: Arc<Auth>, dir: PathBuf) -> notify::Result<DirWatcher> {
    let (tx, mut rx) = mpsc::channel(4);
    let watcher = DirWatcher::start(std::slice::from_ref(&dir), tx)?;
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Loading hashes a dummy (tens of milliseconds): off the async workers.
            let (auth, dir) = (auth.clone(), dir.clone());
            let _ = tokio::task::spawn_blocking(move || reload_once(&auth, &dir)).await;
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
