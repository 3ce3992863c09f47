//! Users' credentials: from the plaintext in their Secrets to the salted hashes the
//! server reads. A hash is kept for as long as it still verifies the current Secret,
//! so unchanged Secrets give a byte-identical credentials file on every reconcile.
//!
//! The file never lets the server run open: a server without users lets everyone read
//! and write, so when no user can sign in the file holds one disabled placeholder
//! ([`NO_USERS_PLACEHOLDER`]) instead of nothing.

mod file;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, Params};
use taxiway_model::auth::password::{self, SecretHash};

pub use file::{check_user, CredentialsFile, UserRecord, FILE_NAME};

/// The disabled user written when no user can sign in (see the module docs).
pub const NO_USERS_PLACEHOLDER: &str = "taxiway-operator-no-users";

/// A user as read from their Secret, before hashing.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainUser {
    /// User name.
    pub name: String,
    /// Password (plaintext, only in memory); `None` for an API-key-only user.
    pub password: Option<String>,
    /// API key (plaintext, only in memory), if any.
    pub api_key: Option<String>,
    /// Disabled flag.
    pub disabled: bool,
    /// Locked flag.
    pub locked: bool,
    /// Groups.
    pub groups: Vec<String>,
}

impl std::fmt::Debug for PlainUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainUser")
            .field("name", &self.name)
            .field("has_api_key", &self.api_key.is_some())
            .field("disabled", &self.disabled)
            .field("locked", &self.locked)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

/// Why a secret could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("cannot hash a credential: {0}")]
pub struct HashError(pub String);

/// Salted slow hashing of secrets, with the verification that decides reuse.
pub trait SecretHasher {
    /// A fresh PHC string for `secret`.
    fn hash(&self, secret: &str) -> Result<String, HashError>;
    /// A fresh PHC string for an API key: with the server's lookup tag when the key is
    /// long enough for one (the server then finds its user at once, instead of trying
    /// untagged hashes one by one), untagged otherwise.
    fn hash_api_key(&self, key: &str) -> Result<String, HashError> {
        self.hash(key)
    }
    /// Whether `phc` is a hash of `secret`.
    fn verify(&self, secret: &str, phc: &str) -> bool;
}

/// Whether an API key hash carries the server's lookup tag, or cannot (the key is too
/// short for one): a previous hash is only reused when it is as good as a fresh one.
fn tag_is_as_good_as_fresh(key: &str, phc: &str) -> bool {
    key.len() < password::MIN_API_KEY_LEN || SecretHash::parse(phc).is_ok_and(|h| h.tag().is_some())
}

/// Argon2id with the crate's defaults (the OWASP-recommended m=19 MiB, t=2, p=1).
///
/// Verifications are remembered (as a keyed fast hash of the secret, with a key drawn
/// per process) so that a resync does not spend an Argon2 run per user.
///
/// Only hashes the operator could have written itself are ever verified (see
/// [`trusted_hash`]): the previous credentials file lives in a Secret that anyone who
/// may edit Secrets in the namespace can change, and Argon2's cost is whatever the PHC
/// string says.
#[derive(Default)]
pub struct Argon2Hasher {
    key: RandomState,
    verified: Mutex<HashMap<String, u64>>,
}

impl Argon2Hasher {
    fn fingerprint(&self, secret: &str) -> u64 {
        self.key.hash_one(secret)
    }

    fn remember(&self, phc: &str, secret: &str) {
        if let Ok(mut verified) = self.verified.lock() {
            // Bounded: hashes of removed users would otherwise accumulate forever.
            if verified.len() > 10_000 {
                verified.clear();
            }
            verified.insert(phc.to_string(), self.fingerprint(secret));
        }
    }
}

impl SecretHasher for Argon2Hasher {
    fn hash(&self, secret: &str) -> Result<String, HashError> {
        let salt = SaltString::generate(&mut OsRng);
        let phc = Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .map_err(|e| HashError(e.to_string()))?
            .to_string();
        self.remember(&phc, secret);
        Ok(phc)
    }

    fn hash_api_key(&self, key: &str) -> Result<String, HashError> {
        if key.len() < password::MIN_API_KEY_LEN {
            return self.hash(key);
        }
        let phc = password::hash_api_key(key.as_bytes()).map_err(|e| HashError(e.to_string()))?;
        self.remember(&phc, key);
        Ok(phc)
    }

    fn verify(&self, secret: &str, phc: &str) -> bool {
        let known = self.verified.lock().ok().and_then(|v| v.get(phc).copied());
        if let Some(fingerprint) = known {
            return fingerprint == self.fingerprint(secret);
        }
        let ok = trusted_hash(phc).is_some_and(|hash| hash.verify(secret.as_bytes()));
        if ok {
            self.remember(phc, secret);
        }
        ok
    }
}

/// A hash from a previous credentials file that the operator may run Argon2 on: one
/// the server itself accepts (its own parsing, with its bounds on the parameters) and
/// that has exactly the parameters the operator hashes with. Anything else is
/// re-hashed without being verified, so a Secret edited to carry `m=4294967295` or
/// `t=4294967295` costs nothing but a fresh hash.
pub fn trusted_hash(phc: &str) -> Option<SecretHash> {
    let hash = SecretHash::parse(phc).ok()?;
    let params = Params::try_from(&PasswordHash::new(phc).ok()?).ok()?;
    let own = Params::default();
    let same = params.m_cost() == own.m_cost()
        && params.t_cost() == own.t_cost()
        && params.p_cost() == own.p_cost();
    same.then_some(hash)
}

/// The credentials file for `users`, reusing each hash in `previous` that still
/// verifies the user's current secret and hashing anew otherwise.
pub fn hash_users(
    users: &[PlainUser],
    previous: Option<&CredentialsFile>,
    hasher: &impl SecretHasher,
) -> Result<CredentialsFile, HashError> {
    let mut records = Vec::with_capacity(users.len());
    for user in users {
        let old = previous.and_then(|p| p.user(&user.name));
        let reuse = |secret: &str, phc: Option<&String>| -> Result<String, HashError> {
            match phc {
                Some(phc) if hasher.verify(secret, phc) => Ok(phc.clone()),
                _ => hasher.hash(secret),
            }
        };
        let password_hash = match &user.password {
            Some(password) => Some(reuse(password, old.and_then(|o| o.password_hash.as_ref()))?),
            None => None,
        };
        let api_key_hash = match &user.api_key {
            Some(key) => match old.and_then(|o| o.api_key_hash.as_ref()) {
                Some(phc) if tag_is_as_good_as_fresh(key, phc) && hasher.verify(key, phc) => {
                    Some(phc.clone())
                }
                _ => Some(hasher.hash_api_key(key)?),
            },
            None => None,
        };
        records.push(UserRecord {
            name: user.name.clone(),
            password_hash,
            api_key_hash,
            disabled: user.disabled,
            locked: user.locked,
            groups: user.groups.clone(),
        });
    }
    records.sort_by(|a, b| a.name.cmp(&b.name));
    if records.is_empty() {
        records.push(UserRecord {
            name: NO_USERS_PLACEHOLDER.into(),
            disabled: true,
            ..UserRecord::default()
        });
    }
    Ok(CredentialsFile { users: records })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, password: &str, api_key: Option<&str>) -> PlainUser {
        PlainUser {
            name: name.into(),
            password: Some(password.into()),
            api_key: api_key.map(Into::into),
            disabled: false,
            locked: false,
            groups: vec![],
        }
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let hasher = Argon2Hasher::default();
        let file =
            hash_users(&[user("alice", "pw-1", Some("key-1"))], None, &hasher).expect("hashes");
        let alice = &file.users[0];
        let password_hash = alice.password_hash.as_deref().expect("password hash");
        assert!(password_hash.starts_with("$argon2id$"));
        assert!(!password_hash.contains("pw-1"));
        // A fresh hasher has no memory: this is a real Argon2 verification.
        let fresh = Argon2Hasher::default();
        assert!(fresh.verify("pw-1", password_hash));
        assert!(!fresh.verify("pw-2", password_hash));
        let key_hash = alice.api_key_hash.as_deref().expect("api key hash");
        assert!(fresh.verify("key-1", key_hash));
    }

    #[test]
    fn unchanged_secrets_keep_their_hashes_changed_ones_do_not() {
        let hasher = Argon2Hasher::default();
        let users = [user("alice", "pw-a", None), user("bob", "pw-b", Some("k"))];
        let first = hash_users(&users, None, &hasher).expect("hashes");
        // A new process (no memory) still keeps hashes that verify.
        let restarted = Argon2Hasher::default();
        let again = hash_users(&users, Some(&first), &restarted).expect("hashes");
        assert_eq!(again, first);

        let changed = [
            user("alice", "new-pw", None),
            user("bob", "pw-b", Some("k")),
        ];
        let third = hash_users(&changed, Some(&again), &restarted).expect("hashes");
        assert_ne!(third.users[0].password_hash, first.users[0].password_hash);
        let new_hash = third.users[0].password_hash.as_deref().expect("hash");
        assert!(restarted.verify("new-pw", new_hash));
        assert_eq!(third.users[1], first.users[1]);
    }

    #[test]
    fn long_api_keys_get_the_servers_lookup_tag_and_untagged_hashes_are_replaced() {
        let hasher = Argon2Hasher::default();
        let long = "k3y-0123456789abcdefghij";
        let tagged = |phc: &Option<String>| {
            SecretHash::parse(phc.as_deref().expect("hash"))
                .expect("parse")
                .tag()
                .is_some()
        };
        let users = [
            user("bob", "pw-b", Some(long)),
            user("erin", "pw-e", Some("short")),
        ];
        let first = hash_users(&users, None, &hasher).expect("hashes");
        assert!(tagged(&first.users[0].api_key_hash), "a long key is tagged");
        assert!(
            !tagged(&first.users[1].api_key_hash),
            "a short key cannot be"
        );
        // A credentials file from before tags: the long key's hash is replaced by a
        // tagged one, the short key's kept.
        let mut old = first.clone();
        old.users[0].api_key_hash = Some(hasher.hash(long).expect("hash"));
        let next = hash_users(&users, Some(&old), &Argon2Hasher::default()).expect("hashes");
        assert!(tagged(&next.users[0].api_key_hash));
        assert_eq!(next.users[1], first.users[1]);
        let again = hash_users(&users, Some(&next), &Argon2Hasher::default()).expect("hashes");
        assert_eq!(again, next, "a tagged hash that verifies is kept");
    }

    /// A PHC string of `secret` with these parameters (the hash part is not a real one:
    /// only whether Argon2 would run matters).
    fn phc_with(params: &str) -> String {
        let real = Argon2Hasher::default().hash("pw").expect("hash");
        real.replacen("m=19456,t=2,p=1", params, 1)
    }

    #[test]
    fn only_hashes_with_the_operators_own_parameters_are_trusted() {
        let own = Argon2Hasher::default().hash("pw").expect("hash");
        assert!(trusted_hash(&own).is_some());
        for absurd in [
            "m=4294967295,t=2,p=1",
            "m=19456,t=4294967295,p=1",
            "m=19456,t=2,p=16777215",
            "m=1048576,t=2,p=1",
            "m=19456,t=3,p=1",
            "m=8,t=1,p=1",
        ] {
            assert!(trusted_hash(&phc_with(absurd)).is_none(), "{absurd}");
        }
        assert!(trusted_hash(&own.replacen("$argon2id$", "$argon2i$", 1)).is_none());
        assert!(trusted_hash("plaintext").is_none());
    }

    #[test]
    fn absurd_parameters_are_rehashed_at_once_not_verified() {
        let hasher = Argon2Hasher::default();
        let users = [user("alice", "pw", None)];
        for absurd in ["m=19456,t=4294967295,p=1", "m=4294967295,t=2,p=1"] {
            let planted = CredentialsFile {
                users: vec![UserRecord {
                    name: "alice".into(),
                    password_hash: Some(phc_with(absurd)),
                    ..UserRecord::default()
                }],
            };
            let started = std::time::Instant::now();
            let file = hash_users(&users, Some(&planted), &hasher).expect("hashes");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "{absurd}: took {:?}",
                started.elapsed()
            );
            let hash = file.users[0].password_hash.as_deref().expect("hash");
            assert!(hash.contains("m=19456,t=2,p=1"), "{hash}");
            assert!(Argon2Hasher::default().verify("pw", hash));
        }
    }

    #[test]
    fn without_users_the_file_holds_a_disabled_placeholder_not_nothing() {
        let file = hash_users(&[], None, &Argon2Hasher::default()).expect("file");
        assert_eq!(file.users.len(), 1);
        assert_eq!(file.users[0].name, NO_USERS_PLACEHOLDER);
        assert!(file.users[0].disabled);
        assert!(file.users[0].password_hash.is_none() && file.users[0].api_key_hash.is_none());
        assert!(file.render().is_ok());
    }

    #[test]
    fn an_api_key_only_user_has_no_password_hash() {
        let mut u = user("bot", "unused", Some("key"));
        u.password = None;
        let file = hash_users(&[u], None, &Argon2Hasher::default()).expect("file");
        assert!(file.users[0].password_hash.is_none());
        assert!(file.users[0].api_key_hash.is_some());
    }

    #[test]
    fn users_are_sorted_and_flags_carried() {
        let hasher = Argon2Hasher::default();
        let mut zed = user("zed", "z", None);
        zed.locked = true;
        zed.groups = vec!["soc".into()];
        let file = hash_users(&[zed, user("amy", "a", None)], None, &hasher).expect("hashes");
        let names: Vec<_> = file.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["amy", "zed"]);
        assert!(file.users[1].locked);
        assert_eq!(file.users[1].groups, ["soc"]);
    }
}
