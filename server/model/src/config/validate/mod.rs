//! Validation: every rule of `taxiway.toml`, and the collections compiled.
//!
//! Each step is a pure function over one part of the file returning the problems it
//! found; [`validate`] runs them in the order the file is read (settings sections, API
//! roots, collections, their sources) and reports every problem at once.

mod collections;
mod sections;
mod values;

pub use self::values::{is_uuid_v4, parse_proxy};

use super::error::{ConfigError, Problem};
use super::model::Config;
use super::service::ServiceConfig;

/// Check every rule and compile the queries; report all problems at once.
pub fn validate(config: Config) -> Result<ServiceConfig, ConfigError> {
    let mut problems: Vec<Problem> = sections::service(&config.service);
    problems.extend(sections::limits(&config.limits));
    problems.extend(sections::server(&config.server));
    problems.extend(sections::store(&config.store));
    let (root_paths, roots) = collections::api_roots(
        &config.api_roots,
        config.service.default_api_root.as_deref(),
    );
    problems.extend(roots);
    let (mut compiled, collection_problems) =
        collections::compile(&config.collections, &root_paths);
    problems.extend(collection_problems);
    problems.extend(collections::resolve_sources(
        &config.collections,
        &mut compiled,
    ));
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    let trusted_proxies = values::trusted_proxies(&config.service.trusted_proxies);
    Ok(ServiceConfig {
        config,
        collections: compiled,
        trusted_proxies,
    })
}
