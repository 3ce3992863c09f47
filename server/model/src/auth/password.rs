//! Slow, salted hashes of passwords and API keys: argon2id in PHC string form
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
//!
//! An API key hash may carry a *lookup tag* in the PHC `keyid` parameter
//! (`$argon2id$v=19$m=19456,t=2,p=1,keyid=<tag>$<salt>$<hash>`): the first
//! [`TAG_LEN`] bytes of an HMAC-SHA256 of the key under a fixed, public key
//! ([`api_key_tag`]). It lets the server find the one user a presented key can belong
//! to without running argon2 against every user's key; argon2 ignores `keyid`, so
//! tagged hashes verify like any other. The tag is a short, fast digest of the key:
//! harmless for random keys (`openssl rand -base64 32`), which is what API keys must be.

use std::fmt;

use argon2::password_hash::{PasswordHashString, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, KeyId, Params, ParamsBuilder, PasswordVerifier, Version};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Bytes of an API key's lookup tag.
pub const TAG_LEN: usize = 4;

/// An API key's lookup tag.
pub type Tag = [u8; TAG_LEN];

/// The fixed key of the lookup-tag HMAC: tags must be the same in every process that
/// writes or reads them, so this is not a secret.
const TAG_KEY: &[u8] = b"taxiway api-key lookup tag v1";

/// Shortest API key `hash_api_key` accepts (characters): a tag of a short key would
/// make guessing it offline cheap.
pub const MIN_API_KEY_LEN: usize = 20;

/// Largest argon2 memory cost accepted from a credentials file (KiB): a typo must not
/// let one verification take all the pod's memory.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;

/// Largest argon2 pass count accepted (the default is 2; OWASP's heaviest setting 5):
/// `t=4294967295` would make one verification run for days.
const MAX_PASSES: u32 = 16;

/// Largest argon2 lane count accepted (the default is 1).
const MAX_LANES: u32 = 16;

/// A verified-parseable argon2id hash of a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash {
    phc: PasswordHashString,
    cost: Cost,
    tag: Option<Tag>,
}

/// What one verification of a hash costs: its argon2 parameters and output length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cost {
    /// Memory (KiB).
    pub m: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
    /// Output bytes.
    pub len: usize,
}

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
        if params.t_cost() > MAX_PASSES {
            return Err(format!(
                "argon2 pass count {} is above the limit of {MAX_PASSES}",
                params.t_cost()
            ));
        }
        if params.p_cost() > MAX_LANES {
            return Err(format!(
                "argon2 lane count {} is above the limit of {MAX_LANES}",
                params.p_cost()
            ));
        }
        let Some(output) = hash.hash else {
            return Err("has no salt or no hash".into());
        };
        if hash.salt.is_none() {
            return Err("has no salt or no hash".into());
        }
        let cost = Cost {
            m: params.m_cost(),
            t: params.t_cost(),
            p: params.p_cost(),
            len: output.len(),
        };
        let tag = params.keyid().try_into().ok();
        Ok(SecretHash {
            phc: parsed,
            cost,
            tag,
        })
    }

    /// Whether `secret` hashes to this (slow: tens of milliseconds; constant-time compare).
    pub fn verify(&self, secret: &[u8]) -> bool {
        Argon2::default()
            .verify_password(secret, &self.phc.password_hash())
            .is_ok()
    }

    /// The PHC string.
    pub fn as_str(&self) -> &str {
        self.phc.as_str()
    }

    /// What verifying against this hash costs.
    pub fn cost(&self) -> Cost {
        self.cost
    }

    /// The API-key lookup tag this hash carries, if any.
    pub fn tag(&self) -> Option<Tag> {
        self.tag
    }
}

/// The lookup tag of an API key (fast; see the module docs).
pub fn api_key_tag(key: &[u8]) -> Tag {
    let digest = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, TAG_KEY), key);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&digest.as_ref()[..TAG_LEN]);
    tag
}

/// A hash that verifies nothing, costing what verifying a real hash of `cost` costs:
/// what an authentication with no real hash to check runs, so that it takes as long as
/// one that has.
pub struct Dummy(Option<SecretHash>);

impl Dummy {
    /// A dummy for hashes of `cost` (slow: runs argon2 once).
    pub fn new(cost: Cost) -> Dummy {
        let mut salt = [0u8; 16];
        let _ = SystemRandom::new().fill(&mut salt);
        let made = hash_with(b"taxiway: nobody's secret", cost, None, &salt)
            .ok()
            .and_then(|h| SecretHash::parse(&h).ok());
        Dummy(made)
    }

    /// Spend one verification; always false.
    pub fn verify(&self, secret: &[u8]) {
        if let Some(hash) = &self.0 {
            let _ = hash.verify(secret);
        }
    }
}

/// Why a secret could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The secret is empty.
    #[error("the secret is empty")]
    Empty,
    /// An API key too short to be a random key.
    #[error("an API key must be at least {MIN_API_KEY_LEN} characters of random text (e.g. `openssl rand -base64 32`)")]
    TooShort,
    /// No randomness for the salt, or argon2 failed.
    #[error("cannot hash: {0}")]
    Failed(String),
}

/// The cost of argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane, 32 bytes).
pub fn default_cost() -> Cost {
    let params = Params::default();
    Cost {
        m: params.m_cost(),
        t: params.t_cost(),
        p: params.p_cost(),
        len: Params::DEFAULT_OUTPUT_LEN,
    }
}

/// Hash a password or API key with argon2id (default parameters: 19 MiB, 2 passes)
/// and a fresh random salt; returns the PHC string for `credentials/users.toml`.
pub fn hash(secret: &[u8]) -> Result<String, HashError> {
    if secret.is_empty() {
        return Err(HashError::Empty);
    }
    hash_with(secret, default_cost(), None, &random_salt()?)
}

/// Hash an API key like [`hash`], with its lookup tag in `keyid`, so that the server
/// finds its user at once. Keys shorter than [`MIN_API_KEY_LEN`] are refused.
pub fn hash_api_key(key: &[u8]) -> Result<String, HashError> {
    if key.is_empty() {
        return Err(HashError::Empty);
    }
    if key.len() < MIN_API_KEY_LEN {
        return Err(HashError::TooShort);
    }
    hash_with(key, default_cost(), Some(api_key_tag(key)), &random_salt()?)
}

fn random_salt() -> Result<[u8; 16], HashError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| HashError::Failed("no system randomness".into()))?;
    Ok(salt)
}

fn hash_with(
    secret: &[u8],
    cost: Cost,
    tag: Option<Tag>,
    salt: &[u8],
) -> Result<String, HashError> {
    let failed = |e: &dyn fmt::Display| HashError::Failed(e.to_string());
    let mut params = ParamsBuilder::new();
    params
        .m_cost(cost.m)
        .t_cost(cost.t)
        .p_cost(cost.p)
        .output_len(cost.len);
    if let Some(tag) = tag {
        params.keyid(KeyId::new(&tag).map_err(|e| failed(&e))?);
    }
    let params = params.build().map_err(|e| failed(&e))?;
    let salt = SaltString::encode_b64(salt).map_err(|e| failed(&e))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(secret, &salt)
        .map(|h| h.to_string())
        .map_err(|e| failed(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_passes_and_lanes_are_refused_before_any_verification() {
        let real = hash(b"pw").expect("hash");
        for (params, what) in [
            ("m=19456,t=4294967295,p=1", "pass count"),
            ("m=19456,t=17,p=1", "pass count"),
            ("m=19456,t=2,p=17", "lane count"),
            ("m=4294967295,t=2,p=1", "memory cost"),
        ] {
            let edited = real.replacen("m=19456,t=2,p=1", params, 1);
            match SecretHash::parse(&edited) {
                Err(e) => assert!(e.contains(what), "{params}: {e}"),
                Ok(_) => panic!("{params} accepted"),
            }
        }
        assert!(SecretHash::parse(&real.replacen("t=2", "t=16", 1)).is_ok());
    }

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
        assert!(matches!(hash_api_key(b""), Err(HashError::Empty)));
        assert!(matches!(hash_api_key(b"short"), Err(HashError::TooShort)));
    }

    #[test]
    fn api_key_hashes_carry_their_tag_and_verify() {
        let key = b"0123456789abcdefghijklmnop";
        let phc = hash_api_key(key).expect("hash");
        assert!(phc.contains(",keyid="), "{phc}");
        let parsed = SecretHash::parse(&phc).expect("parse");
        assert_eq!(parsed.tag(), Some(api_key_tag(key)));
        assert!(parsed.verify(key));
        assert!(!parsed.verify(b"0123456789abcdefghijklmnoq"));
        assert_eq!(parsed.cost(), default_cost());
        let plain = SecretHash::parse(&hash(key).expect("hash")).expect("parse");
        assert_eq!(plain.tag(), None, "a password hash has no tag");
        assert_ne!(api_key_tag(b"a"), api_key_tag(b"b"));
    }

    #[test]
    fn a_dummy_costs_what_its_parameters_cost_and_verifies_nothing() {
        let cost = Cost {
            m: 64,
            t: 1,
            p: 1,
            len: 32,
        };
        let dummy = Dummy::new(cost);
        assert_eq!(dummy.0.as_ref().map(SecretHash::cost), Some(cost));
        dummy.verify(b"anything");
    }
}
