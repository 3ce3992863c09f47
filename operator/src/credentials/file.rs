//! The server's `credentials/` file, as the operator writes it.
//!
//! This is the one place that knows the file's name and shape, so following a change
//! of the server's format is a change to this file only. Shape:
//! `{"users":[{"name":..,"password_hash":"$argon2id$..","api_key_hash":null,"disabled":false,"locked":false,"groups":[..]}]}`.

use serde::{Deserialize, Serialize};

/// Name of the file inside the `credentials/` directory (the key in the Secret).
pub const FILE_NAME: &str = "users.json";

/// Every user the server accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsFile {
    /// Users in a stable order (by name).
    pub users: Vec<UserRecord>,
}

/// One user: salted slow hashes only, never a plaintext.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// User name (Basic auth username).
    pub name: String,
    /// Argon2id PHC string of the password.
    pub password_hash: String,
    /// Argon2id PHC string of the API key, if the user has one.
    pub api_key_hash: Option<String>,
    /// A disabled user cannot sign in.
    pub disabled: bool,
    /// A locked user cannot sign in until unlocked.
    pub locked: bool,
    /// Groups for access rules (`group:<name>`).
    pub groups: Vec<String>,
}

impl CredentialsFile {
    /// The file's bytes: pretty JSON with a trailing newline.
    pub fn render(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Read a file the operator wrote earlier.
    pub fn parse(bytes: &[u8]) -> Result<CredentialsFile, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The record of this user, if any.
    pub fn user(&self, name: &str) -> Option<&UserRecord> {
        self.users.iter().find(|u| u.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_the_documented_shape() {
        let file = CredentialsFile {
            users: vec![UserRecord {
                name: "alice".into(),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                api_key_hash: None,
                disabled: false,
                locked: true,
                groups: vec!["soc".into()],
            }],
        };
        let bytes = file.render().expect("renders");
        let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(value["users"][0]["name"], "alice");
        assert_eq!(value["users"][0]["api_key_hash"], serde_json::Value::Null);
        assert_eq!(value["users"][0]["locked"], true);
        assert_eq!(CredentialsFile::parse(&bytes).expect("parses"), file);
    }
}
