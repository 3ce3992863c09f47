//! Slow, salted hashes of passwords and API keys: argon2id in PHC string form
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).

use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHashString, PasswordHasher, SaltString};
use argon2::{Argon2, Params, PasswordVerifier};
use ring::rand::{SecureRandom, SystemRandom};

/// Largest argon2 memory cost accepted from a credentials file (KiB): a typo must not
/// let one verification take all the pod's memory.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;

/// A verified-parseable argon2id hash of a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(PasswordHashString);

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

impl SecretHash {
    /// Parse a PHC string; only argon2id with sane parameters is accepted. The error
    /// never repeats the string.
    pub fn parse(phc: &str) -> Result<SecretHash, String> {
        let parsed = PasswordHashString::new(phc).map_err(|_| {
            "is not a PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)".to_string()
        })?;
        let hash = parsed.password_hash();
        if hash.algorithm != argon2::Algorithm::Argon2id.ident() {
            return Err(format!(
                "uses {}; only argon2id hashes are accepted (see `taxiway-server hash-password`)",
                hash.algorithm
            ));
        }
        let params = Params::try_from(&hash).map_err(|e| format!("bad argon2 parameters: {e}"))?;
        if params.m_cost() > MAX_MEMORY_KIB {
            return Err(format!(
                "argon2 memory cost {} KiB is above the limit of {MAX_MEMORY_KIB} KiB",
                params.m_cost()
            ));
        }
        if hash.salt.is_none() || hash.hash.is_none() {
            return Err("has no salt or no hash".into());
        }
        Ok(SecretHash(parsed))
    }

    /// Whether `secret` hashes to this (slow: tens of milliseconds; constant-time compare).
    pub fn verify(&self, secret: &[u8]) -> bool {
        Argon2::default()
            .verify_password(secret, &self.0.password_hash())
            .is_ok()
    }

    /// The PHC string.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Why a secret could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The secret is empty.
    #[error("the secret is empty")]
    Empty,
    /// No randomness for the salt, or argon2 failed.
    #[error("cannot hash: {0}")]
    Failed(String),
}

/// Hash a password or API key with argon2id (default parameters: 19 MiB, 2 passes)
/// and a fresh random salt; returns the PHC string for `credentials/users.toml`.
pub fn hash(secret: &[u8]) -> Result<String, HashError> {
    if secret.is_empty() {
        return Err(HashError::Empty);
    }
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| HashError::Failed("no system randomness".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Failed(e.to_string()))?;
    Argon2::default()
        .hash_password(secret, &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

/// Spend the time of one verification without any user, so that an unknown user name
/// costs what a known one does.
pub fn dummy_verify(secret: &[u8]) {
    static DUMMY: OnceLock<Option<SecretHash>> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        hash(b"taxiway: no such user")
            .ok()
            .and_then(|h| SecretHash::parse(&h).ok())
    });
    if let Some(d) = dummy {
        let _ = d.verify(secret);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash(b"correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$"), "{h}");
        let parsed = SecretHash::parse(&h).expect("parse");
        assert!(parsed.verify(b"correct horse"));
        assert!(!parsed.verify(b"correct hors"));
        assert!(!parsed.verify(b""));
    }

    #[test]
    fn salts_differ() {
        assert_ne!(hash(b"x").ok(), hash(b"x").ok());
    }

    #[test]
    fn only_argon2id_is_accepted() {
        let id = hash(b"pw").expect("hash");
        let i = id.replacen("$argon2id$", "$argon2i$", 1);
        assert!(SecretHash::parse(&i).is_err());
        assert!(SecretHash::parse("plaintext").is_err());
        assert!(SecretHash::parse("").is_err());
        assert!(
            SecretHash::parse("$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA").is_err(),
            "other algorithms are refused"
        );
        let greedy = id.replacen("m=19456", "m=4194304", 1);
        assert!(SecretHash::parse(&greedy).is_err(), "absurd memory cost");
    }

    #[test]
    fn errors_never_repeat_the_hash() {
        let secretish = "$argon2id$v=19$m=19456,t=2,p=1$bm90YXNhbHQ$!!!";
        let e = SecretHash::parse(secretish).expect_err("invalid");
        assert!(!e.contains("bm90YXNhbHQ"), "{e}");
    }

    #[test]
    fn empty_secret_is_refused() {
        assert!(matches!(hash(b""), Err(HashError::Empty)));
    }
}
