//! Users: each from a `kubernetes.io/basic-auth` Secret, judged on its own.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Secret;

use super::{Inputs, Problem, ProblemKind, BASIC_AUTH};
use crate::credentials::PlainUser;

pub(super) fn has_key(secret: &Secret, key: &str) -> bool {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .is_some_and(|v| !v.0.is_empty())
}

fn secret_text(secret: &Secret, key: &str) -> Result<String, String> {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(|| format!("has no key {key}"))?;
    let text = String::from_utf8(bytes.0.clone()).map_err(|_| format!("key {key} is not UTF-8"))?;
    if text.is_empty() {
        return Err(format!("key {key} is empty"));
    }
    Ok(text)
}

pub(super) fn validate_users(inputs: &Inputs, problems: &mut Vec<Problem>) -> Vec<PlainUser> {
    let mut users = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, spec) in inputs.service.spec.users.iter().enumerate() {
        let user = inputs
            .secrets
            .get(&spec.secret_name)
            .ok_or_else(|| "not found".to_string())
            .and_then(|secret| {
                let type_ = secret.type_.as_deref().unwrap_or("Opaque");
                if type_ != BASIC_AUTH {
                    return Err(format!("has type {type_}, expected {BASIC_AUTH}"));
                }
                let name = secret_text(secret, "username")?;
                let api_key = spec
                    .api_key_key
                    .as_deref()
                    .map(|key| secret_text(secret, key))
                    .transpose()?;
                // A Secret with an API key and no password is an API-key-only user.
                let password = match secret_text(secret, "password") {
                    Ok(password) => Some(password),
                    Err(_) if api_key.is_some() && !has_key(secret, "password") => None,
                    Err(e) => return Err(e),
                };
                crate::credentials::check_user(&name, &spec.groups).map_err(|problems| {
                    format!("is refused by the server: {}", problems.join("; "))
                })?;
                Ok(PlainUser {
                    name,
                    password,
                    api_key,
                    disabled: spec.disabled,
                    locked: spec.locked,
                    groups: spec.groups.clone(),
                })
            })
            .and_then(|user| {
                if seen.insert(user.name.clone()) {
                    Ok(user)
                } else {
                    Err(format!(
                        "username {} is already used by another user",
                        user.name
                    ))
                }
            });
        match user {
            Ok(user) => users.push(user),
            Err(message) => problems.push(Problem {
                kind: ProblemKind::InvalidUserSecret,
                message: format!(
                    "spec.users[{i}]: Secret {} {message}; the user cannot sign in",
                    spec.secret_name
                ),
            }),
        }
    }
    users
}
