//! Who the caller is and what they may do with each collection.

use std::sync::Arc;

use crate::config::CollectionConfig;

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User name.
    pub name: String,
    /// Groups the user belongs to.
    pub groups: Vec<String>,
}

/// The party making a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Caller {
    /// No credentials were presented.
    #[default]
    Anonymous,
    /// Credentials were verified.
    User(Arc<Identity>),
}

impl Caller {
    /// A stable key for binding paging cursors to the caller.
    pub fn key(&self) -> &str {
        match self {
            Caller::Anonymous => "",
            Caller::User(u) => &u.name,
        }
    }
}

/// How access is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// No users are configured (standalone evaluation): everyone may read and write.
    Open,
    /// Users are configured: collections' access rules apply.
    Rules,
}

/// What a caller may do with one collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rights {
    /// May list and get objects.
    pub read: bool,
    /// May add and delete objects.
    pub write: bool,
}

/// Whether a rule list names this identity (by user name or `group:<name>`).
fn names(rule: &[String], who: &Identity) -> bool {
    rule.iter().any(|entry| match entry.strip_prefix("group:") {
        Some(group) => who.groups.iter().any(|g| g == group),
        None => *entry == who.name,
    })
}

/// The caller's rights on a collection. An empty `read` list means every authenticated
/// user; an empty `write` list means nobody (write needs a grant). Only writable
/// collections are ever writable.
pub fn rights(policy: Policy, caller: &Caller, collection: &CollectionConfig) -> Rights {
    let access = &collection.settings.access;
    let writable = collection.is_writable();
    match (policy, caller) {
        (Policy::Open, _) => Rights {
            read: true,
            write: writable,
        },
        (Policy::Rules, Caller::Anonymous) => Rights {
            read: access.anonymous_read,
            write: false,
        },
        (Policy::Rules, Caller::User(who)) => Rights {
            read: access.read.is_empty() || names(&access.read, who),
            write: writable && names(&access.write, who),
        },
    }
}
