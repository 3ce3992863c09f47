//! The validated, compiled configuration the server serves.

use super::collection::CollectionConfig;
use super::error::Problem;
use super::model::{ApiRoot, Config, TaxiiVersion};
use super::sources;
use super::xsoar::XsoarCollection;

/// A validated, compiled configuration: what the server serves.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The configuration as written in `taxiway.toml`.
    pub config: Config,
    /// The collections of `collections.json` as written (empty without the file).
    pub xsoar_collections: Vec<XsoarCollection>,
    /// Collections in configuration order.
    pub collections: Vec<CollectionConfig>,
    /// `service.trusted_proxies`, parsed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl ServiceConfig {
    /// The API root with this path.
    pub fn api_root(&self, path: &str) -> Option<&ApiRoot> {
        self.config.api_roots.iter().find(|r| r.path == path)
    }

    /// The collection with this id in this API root.
    pub fn collection(&self, api_root: &str, id: &str) -> Option<&CollectionConfig> {
        self.collections
            .iter()
            .find(|c| c.settings.api_root == api_root && c.settings.id == id)
    }

    /// Collections of one API root.
    pub fn collections_in<'a>(
        &'a self,
        api_root: &'a str,
    ) -> impl Iterator<Item = &'a CollectionConfig> + 'a {
        self.collections
            .iter()
            .filter(move |c| c.settings.api_root == api_root)
    }

    /// The collection an `import` names by id, alias or title.
    pub fn find_collection(&self, name: &str) -> Option<&CollectionConfig> {
        self.collections
            .iter()
            .find(|c| c.settings.id == name)
            .or_else(|| {
                self.collections
                    .iter()
                    .find(|c| c.settings.alias.as_deref() == Some(name))
            })
            .or_else(|| self.collections.iter().find(|c| c.settings.title == name))
    }

    /// Whether `ip` is one of `service.trusted_proxies` (whose forwarded headers are believed).
    pub fn is_trusted_proxy(&self, ip: &std::net::IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(ip))
    }

    /// What is allowed but probably not meant: a query collection readable more widely
    /// than a collection it draws from (it republishes that collection's objects), a
    /// writable collection left out of a query collection's default sources, a writable
    /// collection nobody may write to. Shown by `check-config`, logged at load and
    /// reported on TaxiiCollection status.
    pub fn warnings(&self) -> Vec<Problem> {
        sources::warnings(&self.collections)
    }

    /// Whether `other` was loaded from the same files (so reloading it changes nothing).
    pub fn same_files(&self, other: &ServiceConfig) -> bool {
        self.config == other.config && self.xsoar_collections == other.xsoar_collections
    }

    /// Whether a TAXII version is served.
    pub fn serves(&self, version: TaxiiVersion) -> bool {
        self.config.service.versions.contains(&version)
    }
}
