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
    match uuid::Uuid::try_parse(s) {
        Ok(u) => {
            u.get_version_num() == 4
                && u.get_variant() == uuid::Variant::RFC4122
                && u.hyphenated().to_string() == s
        }
        Err(_) => false,
    }
}
