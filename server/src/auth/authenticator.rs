//! The authenticator: verifies presented credentials against the current
//! [`Snapshot`] of the users, remembers what verified, bounds how many argon2
//! verifications run at once, and counts failures towards lockouts.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::cache::{self, VerifiedCache};
use super::credentials::{Credentials, KeyOwners};
use super::lockout::{Limit, Lockouts, Subject};
use super::presented::Presented;
use super::settings::{AuthSettings, ClientCertUser};
use super::snapshot::Snapshot;
use crate::access::{Identity, Policy};
use crate::clock::{SharedClock, SystemClock};
use crate::metrics::Metrics;
use crate::tls::CertificateNames;

/// The target of these log lines: where they were logged before the authenticator
/// had a file of its own, so that log filters and readers see the same lines.
const LOG: &str = "taxiway_server::auth";

/// How long a request waits for a verification slot before it is told to retry.
const VERIFY_QUEUE_WAIT: Duration = Duration::from_secs(10);

/// Why a request was not authenticated: the reason goes to metrics and logs only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
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
    pub(super) metrics: Arc<Metrics>,
    /// What lockouts are measured by.
    clock: SharedClock,
}

impl Auth {
    /// An authenticator for these users, verifying at most one credential per core at a time.
    pub fn new(credentials: Credentials, metrics: Arc<Metrics>) -> Auth {
        Auth::with_clock(credentials, metrics, SystemClock::shared())
    }

    /// [`Auth::new`] with lockouts measured by `clock` (tests move a manual one).
    pub fn with_clock(credentials: Credentials, metrics: Arc<Metrics>, clock: SharedClock) -> Auth {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        metrics.users(credentials.len());
        warn_untagged(&credentials);
        Auth {
            current: ArcSwap::new(Snapshot::new(credentials, VerifiedCache::new())),
            lockouts: Lockouts::new(),
            verifications: Arc::new(Semaphore::new(cores)),
            searches: Arc::new(Semaphore::new(1)),
            metrics,
            clock,
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
    pub(super) async fn verify(
        &self,
        presented: Presented,
        address: Option<IpAddr>,
        settings: &AuthSettings,
    ) -> Result<Arc<Identity>, Refusal> {
        let started = Instant::now();
        let now = self.clock.now();
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
            .any(|(s, _)| self.lockouts.is_locked(s, now));

        let fingerprint = snapshot.verified.fingerprint(&presented, named.is_some());
        if !locked_out {
            if let Some(identity) = snapshot.verified.get(&fingerprint) {
                self.succeeded(&subjects, now);
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
                self.succeeded(&subjects, self.clock.now());
                Ok(identity)
            }
            Err(reason) => {
                self.failed(&subjects, settings, self.clock.now());
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
                    target: LOG,
                    %subject,
                    failures = max_failures,
                    lockout_secs = lockout.as_secs(),
                    "too many failed authentications; locked out"
                );
            }
        }
    }

    /// The user a verified client certificate names.
    pub(super) fn certificate_user(
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
            target: LOG,
            untagged,
            "API key hashes without a lookup tag: an API key presented without a user name that \
             matches no tag is tried against each of them (one search at a time); re-hash the keys \
             with `taxiway-server hash-password --api-key` (see docs/security.md)"
        );
    }
}
