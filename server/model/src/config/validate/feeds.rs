//! `[[feeds]]`: unique valid names, `into` naming a writable collection that grants
//! the feed write (`feed:<name>` in its `access.write`), an http(s)
//! URL without credentials, sane numbers, credentials from files only and in pairs,
//! settings that fit the format.

use std::collections::HashSet;

use crate::config::error::Problem;
use crate::config::feeds::{Feed, FeedFormat, MIN_INTERVAL_SECS};
use crate::config::model::Collection;
use crate::stix::tlp::Tlp;

fn at(i: usize, field: &str) -> String {
    format!("feeds[{i}].{field}")
}

/// Every rule of `[[feeds]]`: unique valid names, `into` naming a writable
/// collection that grants the feed write, an http(s) URL, sane numbers, credentials from files only and in
/// pairs, settings that fit the format.
pub(super) fn validate(feeds: &[Feed], collections: &[Collection]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut names = HashSet::new();
    for (i, feed) in feeds.iter().enumerate() {
        let ok_name = !feed.name.is_empty()
            && feed.name.len() <= 64
            && feed
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok_name {
            problems.push(Problem::new(
                at(i, "name"),
                format!(
                    "must be 1-64 letters, digits, '-' or '_', got {:?}",
                    feed.name
                ),
            ));
        }
        if !names.insert(feed.name.as_str()) {
            problems.push(Problem::new(
                at(i, "name"),
                format!("duplicate feed name {:?}", feed.name),
            ));
        }
        problems.extend(into(i, feed, collections));
        problems.extend(url(i, &feed.url));
        problems.extend(numbers(i, feed));
        problems.extend(credentials(i, feed));
        problems.extend(fits_format(i, feed));
    }
    problems
}

/// The collection a feed's `into` names (id first, then alias, then title).
fn into_collection<'a>(into: &str, collections: &'a [Collection]) -> Option<&'a Collection> {
    collections
        .iter()
        .find(|c| c.id == into)
        .or_else(|| {
            collections
                .iter()
                .find(|c| c.alias.as_deref() == Some(into))
        })
        .or_else(|| collections.iter().find(|c| c.title == into))
}

/// A feed stores only into a writable collection that grants it write by name
/// (`feed:<name>` in `access.write`): no grant, no write — a feed is a writer like any
/// user, and whoever owns a collection decides who may add to it.
fn into(i: usize, feed: &Feed, collections: &[Collection]) -> Option<Problem> {
    let into = feed.into.as_str();
    match into_collection(into, collections) {
        None => Some(Problem::new(
            at(i, "into"),
            format!("names no configured collection (id, alias or title): {into:?}"),
        )),
        Some(c) if !c.writable => Some(Problem::new(
            at(i, "into"),
            format!("{into:?} is a query collection; a feed stores into a writable collection"),
        )),
        Some(c) if !c.access.write.contains(&feed.owner()) => Some(Problem::new(
            at(i, "into"),
            format!(
                "{into:?} does not grant this feed write: add {:?} to its access.write",
                feed.owner()
            ),
        )),
        Some(_) => None,
    }
}

fn url(i: usize, url: &str) -> Option<Problem> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(h) if !h.is_empty() && !h.contains('@') && !url.contains(char::is_whitespace) => None,
        Some(h) if h.contains('@') => Some(Problem::new(
            at(i, "url"),
            "must not hold credentials: use username/password_file or api_key_file",
        )),
        _ => Some(Problem::new(
            at(i, "url"),
            "must be an absolute http:// or https:// URL with a host",
        )),
    }
}

fn numbers(i: usize, feed: &Feed) -> Vec<Problem> {
    let mut problems = Vec::new();
    if feed.interval_secs < MIN_INTERVAL_SECS {
        problems.push(Problem::new(
            at(i, "interval_secs"),
            format!(
                "must be at least {MIN_INTERVAL_SECS}, got {}",
                feed.interval_secs
            ),
        ));
    }
    if feed.timeout_secs == 0 {
        problems.push(Problem::new(at(i, "timeout_secs"), "must be > 0"));
    }
    if feed.max_response_bytes < 1024 {
        problems.push(Problem::new(
            at(i, "max_response_bytes"),
            format!(
                "must be at least 1024 (bytes), got {}",
                feed.max_response_bytes
            ),
        ));
    }
    if feed.page_size == 0 {
        problems.push(Problem::new(at(i, "page_size"), "must be > 0"));
    }
    if feed.confidence.is_some_and(|c| c > 100) {
        problems.push(Problem::new(at(i, "confidence"), "must be 0-100"));
    }
    if let Some(tlp) = &feed.tlp {
        if Tlp::parse(tlp).is_none() {
            problems.push(Problem::new(
                at(i, "tlp"),
                format!("must be clear, green, amber, amber+strict or red, got {tlp:?}"),
            ));
        }
    }
    problems
}

fn credentials(i: usize, feed: &Feed) -> Vec<Problem> {
    let mut problems = Vec::new();
    if feed.username.is_some() != feed.password_file.is_some() {
        problems.push(Problem::new(
            at(i, "password_file"),
            "username and password_file go together",
        ));
    }
    if feed.api_key_file.is_some() && feed.username.is_some() {
        problems.push(Problem::new(
            at(i, "api_key_file"),
            "use either username/password_file or api_key_file, not both",
        ));
    }
    if feed.api_key_header.is_some() && feed.api_key_file.is_none() {
        problems.push(Problem::new(
            at(i, "api_key_header"),
            "only used with api_key_file",
        ));
    }
    if let Some(header) = &feed.api_key_header {
        if header.is_empty()
            || !header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            problems.push(Problem::new(
                at(i, "api_key_header"),
                format!("must be an HTTP header name, got {header:?}"),
            ));
        }
    }
    if feed.client_cert_file.is_some() != feed.client_key_file.is_some() {
        problems.push(Problem::new(
            at(i, "client_key_file"),
            "client_cert_file and client_key_file go together",
        ));
    }
    problems
}

fn fits_format(i: usize, feed: &Feed) -> Vec<Problem> {
    let mut problems = Vec::new();
    match (feed.format, &feed.collection) {
        (FeedFormat::Taxii, None) => problems.push(Problem::new(
            at(i, "collection"),
            "a TAXII feed names the upstream collection (id or title)",
        )),
        (FeedFormat::Taxii, Some(c)) if c.trim().is_empty() => {
            problems.push(Problem::new(at(i, "collection"), "must not be empty"))
        }
        (format, Some(_)) if format != FeedFormat::Taxii => problems.push(Problem::new(
            at(i, "collection"),
            "only TAXII feeds name an upstream collection",
        )),
        _ => {}
    }
    if feed.csv_column.is_some() && feed.format != FeedFormat::Csv {
        problems.push(Problem::new(
            at(i, "csv_column"),
            "only csv feeds have a column",
        ));
    }
    if feed.csv_column == Some(0) {
        problems.push(Problem::new(
            at(i, "csv_column"),
            "columns are counted from 1",
        ));
    }
    if !feed.format.is_list() {
        for (field, set) in [
            ("labels", !feed.labels.is_empty()),
            ("confidence", feed.confidence.is_some()),
            ("tlp", feed.tlp.is_some()),
        ] {
            if set {
                problems.push(Problem::new(
                    at(i, field),
                    "only lines and csv feeds make indicators (TAXII and bundle objects are stored as received)",
                ));
            }
        }
    }
    problems
}
