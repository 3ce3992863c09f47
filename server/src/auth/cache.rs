//! Verified credentials, so that a client polling every minute pays for argon2 once.
//!
//! Entries are keyed by an HMAC of the presented secret under a random key made for
//! this cache, so neither the secret nor an offline-guessable hash of it is held. A
//! cache belongs to one load of the credentials file: a change to the file keeps only
//! the entries of users whose record did not change, so a changed password, a removed
//! user or a new flag applies at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ring::hmac;
use ring::rand::SystemRandom;

use crate::access::Identity;
use crate::auth::presented::Presented;

/// Most entries kept; past it the cache starts over (distinct valid credentials are
/// few, so this only bounds memory).
const MAX_ENTRIES: usize = 4096;

/// The keyed digest of one presented credential.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

/// Credentials that verified, and whom they identify.
pub struct VerifiedCache {
    key: hmac::Key,
    entries: Mutex<HashMap<Fingerprint, Arc<Identity>>>,
}

impl VerifiedCache {
    /// An empty cache with a fresh random key.
    pub fn new() -> VerifiedCache {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            // Without system randomness, fall back to a key from the address space
            // layout and clock: still never the secret itself.
            .unwrap_or_else(|_| {
                let seed = format!("{:p}{:?}", &MAX_ENTRIES, std::time::SystemTime::now());
                hmac::Key::new(hmac::HMAC_SHA256, seed.as_bytes())
            });
        VerifiedCache {
            key,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The fingerprint of a credential. Basic credentials naming a user are bound to
    /// that user; API keys (alone, or as a Basic password under any other name) are not.
    pub fn fingerprint(&self, presented: &Presented, names_user: bool) -> Fingerprint {
        let mut ctx = hmac::Context::with_key(&self.key);
        match presented {
            Presented::Basic { user, secret } if names_user => {
                ctx.update(b"user\0");
                ctx.update(user.as_bytes());
                ctx.update(b"\0");
                ctx.update(secret.as_bytes());
            }
            Presented::Basic { secret, .. } | Presented::ApiKey(secret) => {
                ctx.update(b"key\0");
                ctx.update(secret.as_bytes());
            }
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        Fingerprint(out)
    }

    /// Whom a verified credential identifies.
    pub fn get(&self, fingerprint: &Fingerprint) -> Option<Arc<Identity>> {
        self.lock().get(fingerprint).cloned()
    }

    /// Remember a verified credential.
    pub fn insert(&self, fingerprint: Fingerprint, identity: Arc<Identity>) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(fingerprint, identity);
    }

    /// The cache for the next load of the credentials file: same key, and of the
    /// entries only those `keep` maps to an identity (in the new load).
    pub fn next(&self, keep: impl Fn(&Identity) -> Option<Arc<Identity>>) -> VerifiedCache {
        let entries = self
            .lock()
            .iter()
            .filter_map(|(f, identity)| keep(identity).map(|i| (f.clone(), i)))
            .collect();
        VerifiedCache {
            key: self.key.clone(),
            entries: Mutex::new(entries),
        }
    }

    /// How many credentials are remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Fingerprint, Arc<Identity>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for VerifiedCache {
    fn default() -> Self {
        VerifiedCache::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, secret: &str) -> Presented {
        Presented::Basic {
            user: user.into(),
            secret: secret.into(),
        }
    }

    #[test]
    fn fingerprints_bind_user_and_secret() {
        let c = VerifiedCache::new();
        let a = c.fingerprint(&basic("alice", "pw"), true);
        assert_eq!(a, c.fingerprint(&basic("alice", "pw"), true));
        assert_ne!(a, c.fingerprint(&basic("bob", "pw"), true));
        assert_ne!(a, c.fingerprint(&basic("alice", "pw2"), true));
        // Separators matter: ("ab", "c") is not ("a", "bc").
        assert_ne!(
            c.fingerprint(&basic("ab", "c"), true),
            c.fingerprint(&basic("a", "bc"), true)
        );
        // An API key is the same credential however it is sent.
        let key = c.fingerprint(&Presented::ApiKey("k".into()), false);
        assert_eq!(key, c.fingerprint(&basic("", "k"), false));
        assert_eq!(key, c.fingerprint(&basic("anything", "k"), false));
        assert_ne!(key, c.fingerprint(&basic("alice", "k"), true));
    }

    #[test]
    fn fingerprints_are_keyed_and_hold_no_secret() {
        let (c1, c2) = (VerifiedCache::new(), VerifiedCache::new());
        let p = basic("alice", "hunter2");
        let f1 = c1.fingerprint(&p, true);
        assert_ne!(f1, c2.fingerprint(&p, true), "a new cache, a new key");
        assert!(!f1.0.windows(7).any(|w| w == b"hunter2"));
    }

    #[test]
    fn remembers_and_stays_bounded() {
        let c = VerifiedCache::new();
        let id = Arc::new(Identity {
            name: "alice".into(),
            groups: vec![],
        });
        let f = c.fingerprint(&basic("alice", "pw"), true);
        assert!(c.get(&f).is_none());
        c.insert(f.clone(), id.clone());
        assert_eq!(c.get(&f), Some(id.clone()));
        for i in 0..(MAX_ENTRIES + 10) {
            c.insert(
                c.fingerprint(&basic("alice", &i.to_string()), true),
                id.clone(),
            );
        }
        assert!(c.len() <= MAX_ENTRIES);
    }

    #[test]
    fn the_next_cache_keeps_what_it_is_told_under_the_same_key() {
        let c = VerifiedCache::new();
        let identity = |name: &str| {
            Arc::new(Identity {
                name: name.into(),
                groups: vec![],
            })
        };
        let (a, b) = (
            c.fingerprint(&basic("alice", "pw"), true),
            c.fingerprint(&basic("bob", "pw"), true),
        );
        c.insert(a.clone(), identity("alice"));
        c.insert(b.clone(), identity("bob"));
        let next = c.next(|i| (i.name == "alice").then(|| identity("alice")));
        assert_eq!(next.len(), 1);
        assert!(next.get(&a).is_some() && next.get(&b).is_none());
        assert_eq!(next.fingerprint(&basic("alice", "pw"), true), a, "same key");
    }
}
