//! Which STIX types exist on which side: the types STIX 2.0 lacks, and the type an
//! identifier names.

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
