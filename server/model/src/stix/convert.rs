//! Conversion between STIX 2.1 (what the store holds) and STIX 2.0 (what the TAXII
//! 2.0 API speaks). Pure functions over JSON values; `docs/taxii-versions.md` lists
//! the rules and why.
//!
//! - [`to_stix20`]: a stored object as a valid STIX 2.0 object, or why 2.0 cannot
//!   express it (it is then left out of 2.0 responses).
//! - [`to_stix21`]: a posted STIX 2.0 object as a valid STIX 2.1 object, which is
//!   what gets stored, so 2.1 clients read 2.1.

mod down;
mod ids;
mod markings;
mod up;

pub use down::{to_stix20, Unservable};
pub use ids::{id_candidates, to_v4_id};
pub use up::to_stix21;

/// Object types STIX 2.1 has and STIX 2.0 does not: every cyber-observable (2.0 only
/// embeds observables inside `observed-data`) and the SDOs/SMOs new in 2.1. They are
/// never served on the 2.0 API.
pub const NOT_IN_STIX20: &[&str] = &[
    // STIX 2.1 cyber-observable objects.
    "artifact",
    "autonomous-system",
    "directory",
    "domain-name",
    "email-addr",
    "email-message",
    "file",
    "ipv4-addr",
    "ipv6-addr",
    "mac-addr",
    "mutex",
    "network-traffic",
    "process",
    "software",
    "url",
    "user-account",
    "windows-registry-key",
    "x509-certificate",
    // Domain and meta objects new in 2.1.
    "extension-definition",
    "grouping",
    "incident",
    "infrastructure",
    "language-content",
    "location",
    "malware-analysis",
    "note",
    "opinion",
];

/// Whether objects of this type can appear on the 2.0 API (standard 2.0 types and
/// custom types; not the types listed in [`NOT_IN_STIX20`]).
pub fn servable_as_stix20(kind: &str) -> bool {
    !NOT_IN_STIX20.contains(&kind)
}

/// The STIX type named by an identifier (`indicator--…` → `indicator`).
pub fn type_of(id: &str) -> &str {
    id.split_once("--").map_or(id, |(t, _)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observables_and_new_sdos_are_not_servable() {
        for t in ["ipv4-addr", "file", "location", "grouping", "incident"] {
            assert!(!servable_as_stix20(t), "{t}");
        }
        for t in ["indicator", "relationship", "marking-definition", "x-acme"] {
            assert!(servable_as_stix20(t), "{t}");
        }
        assert_eq!(type_of("attack-pattern--0a"), "attack-pattern");
        assert_eq!(type_of("odd"), "odd");
    }
}
