//! Rules for single values: proxy addresses, API root paths, titles, collection ids.

/// An IP address or CIDR range of a trusted proxy.
pub fn parse_proxy(text: &str) -> Option<ipnet::IpNet> {
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

/// `service.trusted_proxies`, parsed (those that do not parse were reported).
pub(super) fn trusted_proxies(proxies: &[String]) -> Vec<ipnet::IpNet> {
    proxies.iter().filter_map(|p| parse_proxy(p)).collect()
}

/// An API root path: one URL path segment.
pub(super) fn check_path_segment(path: &str) -> Result<(), String> {
    let ok = !path.is_empty()
        && path.len() <= 64
        && path
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be 1-64 characters of letters, digits, '-' or '_' (no '.' or '/'), got {path:?}"
        ))
    }
}

/// A collection title or alias clients can select it by.
pub(super) fn check_title(title: &str) -> Result<(), String> {
    if title.trim().is_empty() {
        return Err("must not be empty".into());
    }
    // XSOAR, OpenCTI and Google SecOps select collections by title and split on these.
    if title.contains('.') || title.contains(',') {
        return Err(format!("must not contain '.' or ',' (got {title:?})"));
    }
    Ok(())
}

/// Whether `s` is a lowercase, hyphenated UUID of version 4 (variant 1).
pub fn is_uuid_v4(s: &str) -> bool {
    is_uuid_of(s, &[4])
}

/// Whether `s` can be a collection id: a lowercase, hyphenated UUID of version 4
/// (random, as written by hand or taken from Kubernetes) or 5 (name-based, as
/// [`collection_id`](crate::config::xsoar::collection_id) makes for `collections.json`).
pub fn is_collection_id(s: &str) -> bool {
    is_uuid_of(s, &[4, 5])
}

fn is_uuid_of(s: &str, versions: &[usize]) -> bool {
    match uuid::Uuid::try_parse(s) {
        Ok(u) => {
            versions.contains(&u.get_version_num())
                && u.get_variant() == uuid::Variant::RFC4122
                && u.hyphenated().to_string() == s
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_ids_are_lowercase_v4_or_v5() {
        let v4 = "2f1c9a4e-8b6d-4e3f-9a7b-1c2d3e4f5a6b";
        let v5 = "2ed6657d-e927-568b-95e1-2665a8aea6a2";
        assert!(is_uuid_v4(v4) && !is_uuid_v4(v5));
        assert!(is_collection_id(v4) && is_collection_id(v5));
        for bad in [
            "2ED6657D-E927-568B-95E1-2665A8AEA6A2",
            "2ed6657de927568b95e12665a8aea6a2",
            "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
            "2ed6657d-e927-568b-c5e1-2665a8aea6a2",
            "not-a-uuid",
        ] {
            assert!(!is_collection_id(bad), "{bad}");
        }
    }
}
