//! One load of the credentials file: the users, the credentials verified against it,
//! and what makes every refusal cost the same (a dummy hash with the real hashes'
//! parameters, and the time the slowest refusal is expected to take).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

use super::cache::{Fingerprint, VerifiedCache};
use super::credentials::{Credentials, KeyOwners, User};
use super::password::{self, Dummy, SecretHash};
use super::presented::Presented;
use crate::access::Identity;

/// Refusals are answered no sooner than this multiple of the slowest refusal's
/// expected time, so that the ordinary spread of argon2 timings stays hidden.
const FLOOR_MARGIN: f64 = 1.25;

/// One load of the credentials file, the credentials verified against it, and what
/// makes every refusal cost the same.
pub(super) struct Snapshot {
    pub(super) credentials: Credentials,
    pub(super) verified: VerifiedCache,
    /// A hash with the real hashes' parameters (none without users).
    dummy: Option<Dummy>,
    /// The most argon2 verifications one authentication can take.
    most: u32,
    /// What one verification takes, in nanoseconds (a moving average).
    per_verification: AtomicU64,
}

impl Snapshot {
    /// A snapshot of `credentials`; slow when there are users (hashes the dummy once).
    pub(super) fn new(credentials: Credentials, verified: VerifiedCache) -> Arc<Snapshot> {
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
    pub(super) fn verify(
        &self,
        presented: &Presented,
        by_name: bool,
        locked_out: bool,
        fingerprint: Fingerprint,
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
    pub(super) fn measured(&self, took: Duration, runs: u32) {
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
    pub(super) fn refusal_floor(&self) -> Duration {
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
