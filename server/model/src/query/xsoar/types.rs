//! XSOAR indicator types as native terms.
//!
//! Network and file indicators are STIX indicators: their type is the `ioc_type` of
//! their pattern, refined by the `ioc_value` where XSOAR distinguishes what STIX does
//! not (a CIDR is an `ipv4-addr` whose value holds a `/`, a DomainGlob a
//! `domain-name` whose value holds a literal `*`). Threat-intel types are STIX object
//! types.

use super::native::Native;

/// The native test for an XSOAR indicator type, ignoring case, spaces, `-` and `_`
/// (`IP`, `ip`, `"Registry Key"`, `registry_key`); `None` if Taxiway has no such type.
pub(crate) fn native(name: &str) -> Option<Native> {
    let key: String = name
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect();
    let slash = || Native::pattern("ioc_value", &[String::new(), "/".into(), String::new()]);
    let star = || Native::pattern("ioc_value", &[String::new(), "*".into(), String::new()]);
    let ioc = |t: &str| Native::eq("ioc_type", t);
    let object = |t: &str| Native::eq("type", t);
    Some(match key.as_str() {
        "ip" => Native::And(vec![ioc("ipv4-addr"), slash().not()]),
        "ipv6" => Native::And(vec![ioc("ipv6-addr"), slash().not()]),
        "cidr" => Native::And(vec![ioc("ipv4-addr"), slash()]),
        "ipv6cidr" => Native::And(vec![ioc("ipv6-addr"), slash()]),
        "domain" => Native::And(vec![ioc("domain-name"), star().not()]),
        "domainglob" => Native::And(vec![ioc("domain-name"), star()]),
        "url" => ioc("url"),
        "file" => Native::pattern("ioc_type", &["file:hashes.".into(), String::new()]),
        "filemd5" => ioc("file:hashes.'MD5'"),
        "filesha1" => ioc("file:hashes.'SHA-1'"),
        "filesha256" => ioc("file:hashes.'SHA-256'"),
        "email" => ioc("email-addr"),
        "registrykey" => ioc("windows-registry-key:key"),
        "asn" => ioc("autonomous-system:number"),
        "account" => Native::pattern("ioc_type", &["user-account:".into(), String::new()]),
        "cve" => Native::And(vec![
            object("vulnerability"),
            Native::pattern("name", &["CVE-".into(), String::new()]),
        ]),
        "malware" => object("malware"),
        "threatactor" => object("threat-actor"),
        "attackpattern" => object("attack-pattern"),
        "campaign" => object("campaign"),
        "intrusionset" => object("intrusion-set"),
        "tool" => object("tool"),
        "report" => object("report"),
        "courseofaction" => object("course-of-action"),
        "identity" => object("identity"),
        "location" => object("location"),
        "infrastructure" => object("infrastructure"),
        "vulnerability" => object("vulnerability"),
        _ => return None,
    })
}

/// The types [`native`] knows, for messages.
pub(crate) const KNOWN: &str = "IP, IPv6, CIDR, IPv6CIDR, Domain, DomainGlob, URL, File, \
     File MD5, File SHA-1, File SHA-256, Email, Registry Key, ASN, CVE, Account, Malware, \
     Threat Actor, Attack Pattern, Campaign, Intrusion Set, Tool, Report, Course of Action, \
     Identity, Location, Infrastructure, Vulnerability";

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &str) -> String {
        native(name).unwrap_or_else(|| panic!("{name}")).render()
    }

    #[test]
    fn names_ignore_case_spaces_and_separators() {
        assert_eq!(text("IP"), text("ip"));
        assert_eq!(text("Registry Key"), text("registry_key"));
        assert_eq!(text("Threat Actor"), "type:threat-actor");
        assert_eq!(text("threat-actor"), "type:threat-actor");
        assert_eq!(native("Hostname"), None);
        assert_eq!(native(""), None);
    }

    #[test]
    fn every_known_type_is_mapped() {
        for name in KNOWN.split(", ") {
            assert!(native(name).is_some(), "{name}");
        }
    }
}
