//! The credentials directory: `credentials/users.toml`, the users and their hashed
//! secrets. The Kubernetes operator renders it from the users' own Secrets; by hand,
//! hashes come from `taxiway-server hash-password`.
//!
//! ```toml
//! [[users]]
//! name = "sentinel"
//! password_hash = "$argon2id$v=19$m=19456,t=2,p=1$…$…"
//! api_key_hash = "$argon2id$v=19$m=19456,t=2,p=1$…$…"   # optional
//! groups = ["siem"]
//! disabled = false                                      # optional
//! locked = false                                        # optional
//! ```

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::password::{self, Cost, SecretHash, Tag};
use crate::access::Identity;

/// Name of the users file inside the credentials directory.
pub const USERS_FILE: &str = "users.toml";

/// `users.toml` as written: what the operator generates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    /// Every user.
    #[serde(default)]
    pub users: Vec<UserRecord>,
}

/// One user as written in `users.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    /// User name (the HTTP Basic user, or a client certificate's CN/SAN).
    pub name: String,
    /// argon2id PHC string of the password; absent = no password login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// argon2id PHC string of the API key; absent = no API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_hash: Option<String>,
    /// Refused like a wrong password, until re-enabled.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// Refused like a wrong password, until unlocked (an administrator's lock, not the
    /// automatic temporary lockout).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub locked: bool,
    /// Groups, named in collections' access rules as `group:<name>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// A user ready for verification.
#[derive(Debug)]
pub struct User {
    /// Name and groups, as access rules see them.
    pub identity: Arc<Identity>,
    /// Password hash.
    pub password: Option<SecretHash>,
    /// API key hash.
    pub api_key: Option<SecretHash>,
    /// Whether the user may authenticate at all (neither disabled nor locked).
    pub enabled: bool,
    /// Why not, for metrics: `disabled` or `locked`.
    pub refusal: Option<&'static str>,
}

/// The validated users.
#[derive(Debug, Default)]
pub struct Credentials {
    file: UsersFile,
    users: HashMap<String, User>,
    /// Users with an API key, in file order.
    with_api_key: Vec<String>,
    /// Users whose API key hash carries a lookup tag, by tag.
    by_tag: HashMap<Tag, Vec<String>>,
    /// Users whose API key hash carries no tag, in file order: a key that matches no
    /// tag must be tried against each of these.
    untagged: Vec<String>,
}

/// Where an API key presented without a user name may belong.
#[derive(Debug)]
pub enum KeyOwners<'a> {
    /// The users whose key carries the presented key's tag (almost always one).
    Tagged(Vec<&'a User>),
    /// No tag matches: the users whose key carries no tag, each to be tried.
    Untagged(Vec<&'a User>),
    /// No user can hold it.
    Nobody,
}

impl Credentials {
    /// No users: the service runs open.
    pub fn none() -> Credentials {
        Credentials::default()
    }

    /// Validate a parsed users file; every problem is reported, no hash is ever repeated.
    pub fn from_file(file: UsersFile) -> Result<Credentials, CredentialsError> {
        let mut problems = Vec::new();
        let mut users = HashMap::with_capacity(file.users.len());
        let mut with_api_key = Vec::new();
        let mut by_tag: HashMap<Tag, Vec<String>> = HashMap::new();
        let mut untagged = Vec::new();
        let mut seen = HashSet::new();
        for (i, r) in file.users.iter().enumerate() {
            let at = format!("users[{i}]");
            if let Err(m) = check_name(&r.name) {
                problems.push(format!("{at}.name: {m}"));
                continue;
            }
            let at = format!("users[{i}] ({})", r.name);
            if !seen.insert(r.name.as_str()) {
                problems.push(format!("{at}: duplicate user name"));
                continue;
            }
            let mut hash = |field: &str, value: &Option<String>| match value {
                None => None,
                Some(phc) => match SecretHash::parse(phc) {
                    Ok(h) => Some(h),
                    Err(m) => {
                        problems.push(format!("{at}.{field}: {m}"));
                        None
                    }
                },
            };
            let password = hash("password_hash", &r.password_hash);
            let api_key = hash("api_key_hash", &r.api_key_hash);
            for (j, g) in r.groups.iter().enumerate() {
                if g.trim().is_empty() || g.contains(char::is_whitespace) {
                    problems.push(format!(
                        "{at}.groups[{j}]: must be non-empty with no spaces"
                    ));
                }
            }
            if let Some(key) = &api_key {
                with_api_key.push(r.name.clone());
                match key.tag() {
                    Some(tag) => by_tag.entry(tag).or_default().push(r.name.clone()),
                    None => untagged.push(r.name.clone()),
                }
            }
            let refusal = if r.disabled {
                Some("disabled")
            } else if r.locked {
                Some("locked")
            } else {
                None
            };
            users.insert(
                r.name.clone(),
                User {
                    identity: Arc::new(Identity {
                        name: r.name.clone(),
                        groups: r.groups.clone(),
                    }),
                    password,
                    api_key,
                    enabled: refusal.is_none(),
                    refusal,
                },
            );
        }
        if problems.is_empty() {
            Ok(Credentials {
                file,
                users,
                with_api_key,
                by_tag,
                untagged,
            })
        } else {
            Err(CredentialsError::Invalid(problems))
        }
    }

    /// Parse and validate `users.toml` text.
    pub fn parse(text: &str) -> Result<Credentials, CredentialsError> {
        let file: UsersFile = toml::from_str(text).map_err(|e| CredentialsError::Syntax {
            path: PathBuf::from(USERS_FILE),
            message: describe_toml_error(text, &e),
        })?;
        Credentials::from_file(file)
    }

    /// Read the credentials directory; a directory without `users.toml` holds no users.
    pub fn load_dir(dir: &Path) -> Result<Credentials, CredentialsError> {
        let path = dir.join(USERS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir.is_dir() => {
                return Ok(Credentials::none())
            }
            Err(source) => return Err(CredentialsError::Read { path, source }),
        };
        Credentials::parse(&text).map_err(|e| match e {
            CredentialsError::Syntax { message, .. } => CredentialsError::Syntax { path, message },
            other => other,
        })
    }

    /// Whether there are no users (the service then runs open).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// The user with this name.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// Users holding an API key, in file order.
    pub fn api_key_users(&self) -> impl Iterator<Item = &User> {
        self.with_api_key.iter().filter_map(|n| self.users.get(n))
    }

    /// The users an API key presented without a user name may belong to: found by its
    /// tag in O(1), else every user whose key hash has no tag.
    pub fn key_owners(&self, key: &[u8]) -> KeyOwners<'_> {
        let named = |names: &[String]| -> Vec<&User> {
            names.iter().filter_map(|n| self.users.get(n)).collect()
        };
        if let Some(names) = self.by_tag.get(&password::api_key_tag(key)) {
            return KeyOwners::Tagged(named(names));
        }
        if self.untagged.is_empty() {
            KeyOwners::Nobody
        } else {
            KeyOwners::Untagged(named(&self.untagged))
        }
    }

    /// How many API key hashes carry no lookup tag (each costs a verification for
    /// every key presented without a user name that matches no tag).
    pub fn untagged_api_keys(&self) -> usize {
        self.untagged.len()
    }

    /// The most verifications one authentication can take: a key with no tag match
    /// tries every untagged key; a Basic login naming a user whose key has no tag tries
    /// the password, then the key.
    pub fn most_verifications(&self) -> usize {
        let bucket = self.by_tag.values().map(Vec::len).max().unwrap_or(0);
        let named =
            if self.users.values().any(|u| {
                u.password.is_some() && u.api_key.as_ref().is_some_and(|k| k.tag().is_none())
            }) {
                2
            } else {
                1
            };
        [1, bucket, self.untagged.len(), named]
            .into_iter()
            .max()
            .unwrap_or(1)
    }

    /// The argon2 cost most hashes have (the default's when there are none): what a
    /// dummy verification must cost to look like a real one.
    pub fn typical_cost(&self) -> Cost {
        let mut counts: HashMap<Cost, usize> = HashMap::new();
        for user in self.users.values() {
            for hash in [&user.password, &user.api_key].into_iter().flatten() {
                *counts.entry(hash.cost()).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .max_by_key(|(cost, n)| (*n, cost.m, cost.t))
            .map_or_else(password::default_cost, |(cost, _)| cost)
    }

    /// The record of user `name` as written, to tell whether a reload changed it.
    pub fn record(&self, name: &str) -> Option<&UserRecord> {
        self.file.users.iter().find(|u| u.name == name)
    }

    /// Whether two loads say the same thing (a no-op reload keeps the cache).
    pub fn same_as(&self, other: &Credentials) -> bool {
        self.file == other.file
    }
}

/// A user name usable in HTTP Basic (no `:`), in rules (no `group:` prefix) and in logs.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 256 {
        return Err("must be 1-256 characters".into());
    }
    if name.contains(':') {
        return Err("must not contain ':' (HTTP Basic cannot carry it)".into());
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    Ok(())
}

/// A TOML error with its line and column but without the offending text, which may be
/// a hash: serde messages quote values, so quoted parts are elided.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let mut message = String::new();
    let mut quoted = false;
    for ch in e.message().trim().chars() {
        match ch {
            '"' if !quoted => {
                quoted = true;
                message.push_str("\"…");
            }
            '"' => {
                quoted = false;
                message.push('"');
            }
            _ if quoted => {}
            '\n' => message.push(' '),
            _ => message.push(ch),
        }
    }
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// Why the credentials could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not TOML, or not the format.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where and what (never the offending text).
        message: String,
    },
    /// Rules broken.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::hash;

    fn users_toml(extra: &str) -> String {
        let pw = hash(b"pw").expect("hash");
        format!(
            "[[users]]\nname = \"alice\"\npassword_hash = \"{pw}\"\ngroups = [\"soc\"]\n{extra}"
        )
    }

    #[test]
    fn parses_users_and_flags() {
        let key = hash(b"key").expect("hash");
        let text = users_toml(&format!(
            "[[users]]\nname = \"bob\"\napi_key_hash = \"{key}\"\ndisabled = true\n\
             [[users]]\nname = \"carol\"\nlocked = true\n"
        ));
        let c = Credentials::parse(&text).expect("valid");
        assert_eq!(c.len(), 3);
        let alice = c.user("alice").expect("alice");
        assert!(alice.enabled && alice.password.is_some() && alice.api_key.is_none());
        assert_eq!(alice.identity.groups, vec!["soc".to_string()]);
        let bob = c.user("bob").expect("bob");
        assert_eq!((bob.enabled, bob.refusal), (false, Some("disabled")));
        assert_eq!(c.user("carol").map(|u| u.refusal), Some(Some("locked")));
        assert_eq!(
            c.api_key_users()
                .map(|u| u.identity.name.as_str())
                .collect::<Vec<_>>(),
            ["bob"]
        );
    }

    #[test]
    fn tagged_keys_are_found_by_tag_untagged_ones_listed() {
        let tagged = crate::auth::password::hash_api_key(b"tagged-key-0123456789").expect("hash");
        let plain = hash(b"plain-key").expect("hash");
        let text = format!(
            "[[users]]\nname = \"t\"\napi_key_hash = \"{tagged}\"\n\
             [[users]]\nname = \"u\"\npassword_hash = \"{plain}\"\napi_key_hash = \"{plain}\"\n"
        );
        let c = Credentials::parse(&text).expect("valid");
        let names = |owners: KeyOwners<'_>| match owners {
            KeyOwners::Tagged(u) => (
                "tagged",
                u.iter().map(|u| u.identity.name.clone()).collect(),
            ),
            KeyOwners::Untagged(u) => (
                "untagged",
                u.iter().map(|u| u.identity.name.clone()).collect(),
            ),
            KeyOwners::Nobody => ("nobody", Vec::new()),
        };
        assert_eq!(
            names(c.key_owners(b"tagged-key-0123456789")),
            ("tagged", vec!["t".to_string()])
        );
        assert_eq!(
            names(c.key_owners(b"other")),
            ("untagged", vec!["u".to_string()])
        );
        assert_eq!(c.untagged_api_keys(), 1);
        assert_eq!(c.most_verifications(), 2, "u: password, then key");
        let only_tagged = Credentials::parse(&format!(
            "[[users]]\nname = \"t\"\napi_key_hash = \"{tagged}\"\n"
        ))
        .expect("valid");
        assert!(matches!(
            only_tagged.key_owners(b"other"),
            KeyOwners::Nobody
        ));
        assert_eq!(only_tagged.most_verifications(), 1);
        assert_eq!(
            only_tagged.typical_cost(),
            crate::auth::password::default_cost()
        );
    }

    #[test]
    fn every_problem_is_reported_without_hashes() {
        let text = "[[users]]\nname = \"a:b\"\n\
                    [[users]]\nname = \"x\"\npassword_hash = \"plaintext-password\"\n\
                    [[users]]\nname = \"x\"\n\
                    [[users]]\nname = \"y\"\ngroups = [\"\"]\n";
        let Err(CredentialsError::Invalid(problems)) = Credentials::parse(text) else {
            panic!("must be invalid");
        };
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems.iter().all(|p| !p.contains("plaintext-password")));
    }

    #[test]
    fn syntax_errors_say_where_but_not_what() {
        let text = "[[users]]\nname = \"x\"\ndisabled = \"$argon2id$secret\"\n";
        let e = Credentials::parse(text)
            .expect_err("wrong type")
            .to_string();
        assert!(e.contains("line 3"), "{e}");
        assert!(!e.contains("argon2id$secret"), "{e}");
        let unknown = Credentials::parse("[[users]]\nname = \"x\"\npassword = \"hunter2\"\n")
            .expect_err("plaintext field refused")
            .to_string();
        assert!(!unknown.contains("hunter2"), "{unknown}");
    }

    #[test]
    fn a_directory_without_the_file_holds_no_users() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(Credentials::load_dir(dir.path()).expect("empty").is_empty());
        assert!(Credentials::load_dir(&dir.path().join("missing")).is_err());
    }
}
