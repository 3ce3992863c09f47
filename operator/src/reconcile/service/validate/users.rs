//! Users: each from a `kubernetes.io/basic-auth` Secret, judged on its own — those
//! `spec.users` names, then those `spec.userSelector` selects.
//!
//! Conflicts fail closed: a user name is never handed from one Secret to another. A
//! selected Secret claiming a name that `spec.users` has is left out (the TaxiiService's
//! own list wins); two selected Secrets claiming one name are both left out until one is
//! changed or removed.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;

use super::selector::Selector;
use super::{Inputs, Problem, ProblemKind, Warning, BASIC_AUTH};
use crate::credentials::PlainUser;

/// Annotation of a selected Secret: the user's groups, comma-separated.
pub const GROUPS_ANNOTATION: &str = "taxiway.dev/groups";
/// Annotation of a selected Secret: `"true"` locks the user (refused until unlocked).
pub const LOCKED_ANNOTATION: &str = "taxiway.dev/locked";
/// Annotation of a selected Secret: `"true"` disables the user.
pub const DISABLED_ANNOTATION: &str = "taxiway.dev/disabled";
/// Key of a selected Secret holding the user's API key (optional).
pub const API_KEY_KEY: &str = "api-key";
/// Reason of the warning about selected Secrets of another type.
pub const IGNORED_USER_SECRETS: &str = "IgnoredUserSecrets";

/// What `spec.userSelector` selected, for status (counts and Secret names only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SelectorReport {
    /// Users taken from selected Secrets.
    pub users: usize,
    /// Selected `kubernetes.io/basic-auth` Secrets left out (conflicts, unusable).
    pub refused: usize,
    /// Names of selected Secrets of another type (ignored).
    pub ignored: Vec<String>,
}

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

/// Every user: `spec.users` in order, then the selected Secrets' by user name.
pub(super) fn validate_users(
    inputs: &Inputs,
    problems: &mut Vec<Problem>,
) -> (Vec<PlainUser>, Option<SelectorReport>) {
    let (mut users, claimed) = listed_users(inputs, problems);
    let report = inputs.service.spec.user_selector.as_ref().map(|selector| {
        let (selected, report) = selected_users(inputs, selector, &claimed, problems);
        users.extend(selected);
        report
    });
    (users, report)
}

/// The warning about selected Secrets that are not `kubernetes.io/basic-auth`.
pub(super) fn selector_warnings(report: Option<&SelectorReport>) -> Vec<Warning> {
    let Some(report) = report.filter(|r| !r.ignored.is_empty()) else {
        return vec![];
    };
    let n = report.ignored.len();
    // A few names are enough to find them; the count is on status.
    const SHOWN: usize = 10;
    let mut names = report.ignored[..n.min(SHOWN)].join(", ");
    if n > SHOWN {
        names.push_str(&format!(" and {} more", n - SHOWN));
    }
    vec![Warning {
        reason: IGNORED_USER_SECRETS,
        message: format!(
            "spec.userSelector matches {n} Secret{} not of type {BASIC_AUTH}, ignored: {names} \
             (create user Secrets with --type={BASIC_AUTH})",
            if n == 1 { "" } else { "s" },
        ),
    }]
}

/// The users of `spec.users`, and every user name their Secrets claim (also of those
/// left out for another reason: a selected Secret cannot take over a listed user whose
/// Secret is briefly unusable).
fn listed_users(
    inputs: &Inputs,
    problems: &mut Vec<Problem>,
) -> (Vec<PlainUser>, BTreeMap<String, String>) {
    let mut users = Vec::new();
    let mut seen = BTreeSet::new();
    let mut claimed = BTreeMap::new();
    for spec in &inputs.service.spec.users {
        if let Some(name) = inputs
            .secrets
            .get(&spec.secret_name)
            .and_then(|s| secret_text(s, "username").ok())
        {
            claimed
                .entry(name)
                .or_insert_with(|| spec.secret_name.clone());
        }
    }
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
    (users, claimed)
}

/// A user from a selected Secret: `username`, `password` (may be left out with an
/// `api-key`), and the annotations.
pub fn selected_user(secret: &Secret) -> Result<PlainUser, String> {
    let name = secret_text(secret, "username")?;
    let api_key = has_key(secret, API_KEY_KEY)
        .then(|| secret_text(secret, API_KEY_KEY))
        .transpose()?;
    let password = match secret_text(secret, "password") {
        Ok(password) => Some(password),
        Err(_) if api_key.is_some() && !has_key(secret, "password") => None,
        Err(e) => return Err(e),
    };
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    let flag = |key: &str| match annotations.get(key).map(|v| v.trim()) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") || v.is_empty() => Ok(false),
        Some(v) => Err(format!(
            "has annotation {key}: {v:?}, expected \"true\" or \"false\""
        )),
    };
    let locked = flag(LOCKED_ANNOTATION)?;
    let disabled = flag(DISABLED_ANNOTATION)?;
    let mut groups: Vec<String> = vec![];
    for group in annotations
        .get(GROUPS_ANNOTATION)
        .map(|g| g.split(',').map(str::trim).filter(|g| !g.is_empty()))
        .into_iter()
        .flatten()
    {
        if !groups.iter().any(|g| g == group) {
            groups.push(group.to_string());
        }
    }
    crate::credentials::check_user(&name, &groups)
        .map_err(|problems| format!("is refused by the server: {}", problems.join("; ")))?;
    Ok(PlainUser {
        name,
        password,
        api_key,
        disabled,
        locked,
        groups,
    })
}

/// The users of the Secrets `selector` selects (`inputs.selected_secrets`), leaving
/// out those `spec.users` names itself and, failing closed, every Secret whose user
/// name is claimed twice.
fn selected_users(
    inputs: &Inputs,
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    claimed: &BTreeMap<String, String>,
    problems: &mut Vec<Problem>,
) -> (Vec<PlainUser>, SelectorReport) {
    let mut report = SelectorReport::default();
    let selector = match Selector::parse(selector) {
        Ok(selector) => selector,
        Err(errors) => {
            for error in errors {
                problems.push(Problem {
                    kind: ProblemKind::InvalidUserSelector,
                    message: format!(
                        "spec.userSelector {error}; no Secret is selected, no user added"
                    ),
                });
            }
            return (vec![], report);
        }
    };
    let listed: BTreeSet<&str> = inputs
        .service
        .spec
        .users
        .iter()
        .map(|u| u.secret_name.as_str())
        .collect();
    let mut secrets: Vec<&Secret> = inputs
        .selected_secrets
        .iter()
        .filter(|s| {
            let labels = s.metadata.labels.clone().unwrap_or_default();
            selector.matches(&labels)
        })
        // A Secret spec.users names is that entry's user, with its settings.
        .filter(|s| !listed.contains(s.metadata.name.as_deref().unwrap_or_default()))
        .collect();
    secrets.sort_by_key(|s| s.metadata.name.clone());

    let mut by_name: BTreeMap<String, Vec<(String, PlainUser)>> = BTreeMap::new();
    for secret in secrets {
        let secret_name = secret.metadata.name.clone().unwrap_or_default();
        let type_ = secret.type_.as_deref().unwrap_or("Opaque");
        if type_ != BASIC_AUTH {
            report.ignored.push(secret_name);
            continue;
        }
        match selected_user(secret) {
            Ok(user) => by_name
                .entry(user.name.clone())
                .or_default()
                .push((secret_name, user)),
            Err(message) => {
                report.refused += 1;
                problems.push(Problem {
                    kind: ProblemKind::InvalidUserSecret,
                    message: format!(
                        "spec.userSelector: Secret {secret_name} {message}; the user cannot sign in"
                    ),
                });
            }
        }
    }
    let mut users = vec![];
    for (name, mut claims) in by_name {
        if let Some(listed_in) = claimed.get(&name) {
            for (secret_name, _) in &claims {
                report.refused += 1;
                problems.push(Problem {
                    kind: ProblemKind::ConflictingUserSecrets,
                    message: format!(
                        "spec.userSelector: Secret {secret_name} claims the user name {name}, \
                         which spec.users has (Secret {listed_in}); the Secret is ignored"
                    ),
                });
            }
        } else if claims.len() > 1 {
            report.refused += claims.len();
            let secret_names: Vec<&str> = claims.iter().map(|(s, _)| s.as_str()).collect();
            problems.push(Problem {
                kind: ProblemKind::ConflictingUserSecrets,
                message: format!(
                    "spec.userSelector: Secrets {} all claim the user name {name}; \
                     {name} cannot sign in until all but one are changed or removed",
                    secret_names.join(", ")
                ),
            });
        } else if let Some((_, user)) = claims.pop() {
            report.users += 1;
            users.push(user);
        }
    }
    (users, report)
}
