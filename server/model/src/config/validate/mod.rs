//! Validation: every rule of `taxiway.toml`, and the collections compiled.
//!
//! Each step is a pure function over one part of the file returning the problems it
//! found; [`validate`] runs them in the order the file is read (settings sections, API
//! roots, collections, their sources) and reports every problem at once.

mod collections;
mod feeds;
mod sections;
mod values;

pub use self::values::{is_collection_id, is_uuid_v4, parse_proxy};

use super::error::{ConfigError, Problem};
use super::model::Config;
use super::service::ServiceConfig;
use super::xsoar::XsoarCollection;

/// Check every rule and compile the queries; report all problems at once.
pub fn validate(config: Config) -> Result<ServiceConfig, ConfigError> {
    validate_with_xsoar(config, Vec::new())
}

/// [`validate`] `taxiway.toml` together with the collections of `collections.json`
/// (query collections in the XSOAR dialect, in the default API root), as one
/// configuration: their titles must not clash with taxiway.toml's, their problems
/// name the file and the collection (`collections.json "Phishing URLs".query`).
pub fn validate_with_xsoar(
    config: Config,
    xsoar: Vec<XsoarCollection>,
) -> Result<ServiceConfig, ConfigError> {
    let mut problems: Vec<Problem> = sections::service(&config.service);
    problems.extend(sections::limits(&config.limits));
    problems.extend(sections::server(&config.server));
    problems.extend(sections::store(&config.store));
    let (root_paths, roots) = collections::api_roots(
        &config.api_roots,
        config.service.default_api_root.as_deref(),
    );
    problems.extend(roots);
    let (written, placement) = collections::written(&config, &xsoar);
    problems.extend(placement);
    let (mut compiled, collection_problems) = collections::compile(&written, &root_paths);
    problems.extend(collection_problems);
    problems.extend(collections::resolve_sources(&mut compiled));
    problems.extend(feeds::validate(&config.feeds, &config.collections));
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    let trusted_proxies = values::trusted_proxies(&config.service.trusted_proxies);
    Ok(ServiceConfig {
        config,
        xsoar_collections: xsoar,
        collections: compiled,
        trusted_proxies,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{parse, ConfigError};

    /// Problems come in the order the file is read, whichever step finds them.
    #[test]
    fn every_problem_is_reported_in_file_order() {
        let text = r#"
[service]
title = " "
external_url = "ftp://x"
default_api_root = "nope"

[limits]
max_page_size = 0

[server]
max_connections = 0

[store]
refresh_interval_secs = 0

[[api_roots]]
path = "taxii"
title = "Reserved"

[[collections]]
id = "not-a-uuid"
api_root = "taxii"
title = "Bad"
"#;
        let Err(ConfigError::Invalid(problems)) = parse(text) else {
            panic!("invalid");
        };
        let at: Vec<&str> = problems.iter().map(|p| p.at.as_str()).collect();
        assert_eq!(
            at,
            [
                "service.title",
                "service.external_url",
                "limits.max_page_size",
                "limits.default_page_size",
                "server.max_connections",
                "store.refresh_interval_secs",
                "api_roots[0].path",
                "service.default_api_root",
                "collections[0].id",
                "collections[0].query",
            ]
        );
    }
}
