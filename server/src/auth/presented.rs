//! Credentials as clients present them, in every form TAXII consumers use:
//! `Authorization: Basic` (any case of the scheme; an API key may stand as the
//! password), `Authorization: Bearer <key>`, `Authorization: Token <key>` and
//! `X-API-Key: <key>`.

use std::fmt;

use axum::http::{header, HeaderMap, HeaderName};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;

/// The custom API-key header.
pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// What a request presents. Debug never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Presented {
    /// HTTP Basic: a user name (possibly empty or anything, when the password is an
    /// API key) and a password or API key.
    Basic {
        /// The user name as sent.
        user: String,
        /// The password or API key.
        secret: String,
    },
    /// An API key on its own (Bearer, Token or X-API-Key).
    ApiKey(String),
}

impl fmt::Debug for Presented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Presented::Basic { user, .. } => write!(f, "Basic({user:?}, ..)"),
            Presented::ApiKey(_) => f.write_str("ApiKey(..)"),
        }
    }
}

impl Presented {
    /// The password or API key.
    pub fn secret(&self) -> &str {
        match self {
            Presented::Basic { secret, .. } | Presented::ApiKey(secret) => secret,
        }
    }
}

/// Credentials were sent but cannot be read (unknown scheme, bad base64, empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// The credentials in `headers`: `Authorization` first, then `X-API-Key`.
pub fn from_headers(headers: &HeaderMap) -> Result<Option<Presented>, Malformed> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| Malformed)?.trim();
        let (scheme, param) = value.split_once(' ').ok_or(Malformed)?;
        let param = param.trim();
        if param.is_empty() {
            return Err(Malformed);
        }
        return if scheme.eq_ignore_ascii_case("basic") {
            basic(param).map(Some)
        } else if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
            Ok(Some(Presented::ApiKey(param.to_string())))
        } else {
            Err(Malformed)
        };
    }
    match headers.get(X_API_KEY) {
        None => Ok(None),
        Some(v) => {
            let key = v.to_str().map_err(|_| Malformed)?.trim();
            if key.is_empty() {
                Err(Malformed)
            } else {
                Ok(Some(Presented::ApiKey(key.to_string())))
            }
        }
    }
}

fn basic(param: &str) -> Result<Presented, Malformed> {
    let decoded = STANDARD
        .decode(param)
        .or_else(|_| STANDARD_NO_PAD.decode(param))
        .map_err(|_| Malformed)?;
    let text = String::from_utf8(decoded).map_err(|_| Malformed)?;
    let (user, secret) = text.split_once(':').ok_or(Malformed)?;
    if secret.is_empty() {
        return Err(Malformed);
    }
    Ok(Presented::Basic {
        user: user.to_string(),
        secret: secret.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    fn basic_of(user: &str, secret: &str) -> Presented {
        Presented::Basic {
            user: user.into(),
            secret: secret.into(),
        }
    }

    #[test]
    fn basic_in_any_case() {
        let b64 = STANDARD.encode("alice:pa:ss");
        for scheme in ["Basic", "basic", "BASIC", "bAsIc"] {
            let h = headers(&[("authorization", &format!("{scheme} {b64}"))]);
            assert_eq!(from_headers(&h), Ok(Some(basic_of("alice", "pa:ss"))));
        }
    }

    #[test]
    fn api_key_as_basic_password_with_empty_user() {
        let h = headers(&[(
            "authorization",
            &format!("Basic {}", STANDARD.encode(":k3y")),
        )]);
        assert_eq!(from_headers(&h), Ok(Some(basic_of("", "k3y"))));
        let unpadded = STANDARD_NO_PAD.encode(":k3y4");
        let h = headers(&[("authorization", &format!("Basic {unpadded}"))]);
        assert_eq!(from_headers(&h), Ok(Some(basic_of("", "k3y4"))));
    }

    #[test]
    fn bearer_token_and_header_keys() {
        for value in ["Bearer k3y", "bearer k3y", "Token k3y", "TOKEN  k3y "] {
            let h = headers(&[("authorization", value)]);
            assert_eq!(from_headers(&h), Ok(Some(Presented::ApiKey("k3y".into()))));
        }
        let h = headers(&[("x-api-key", "k3y")]);
        assert_eq!(from_headers(&h), Ok(Some(Presented::ApiKey("k3y".into()))));
        let both = headers(&[("authorization", "Bearer a"), ("x-api-key", "b")]);
        assert_eq!(from_headers(&both), Ok(Some(Presented::ApiKey("a".into()))));
    }

    #[test]
    fn nothing_or_garbage() {
        assert_eq!(from_headers(&HeaderMap::new()), Ok(None));
        for value in [
            "Basic",
            "Basic !!!",
            "Basic dXNlcg==", // "user": no colon
            "Basic dXNlcjo=", // "user:": empty password
            "Digest abc",
            "Bearer ",
            "k3y",
        ] {
            let h = headers(&[("authorization", value)]);
            assert_eq!(from_headers(&h), Err(Malformed), "{value}");
        }
        assert_eq!(
            from_headers(&headers(&[("x-api-key", " ")])),
            Err(Malformed)
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let shown = format!(
            "{:?} {:?}",
            basic_of("u", "hunter2"),
            Presented::ApiKey("k3y".into())
        );
        assert!(
            !shown.contains("hunter2") && !shown.contains("k3y"),
            "{shown}"
        );
    }
}
