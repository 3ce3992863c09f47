//! Storing what a feed fetched: through the store's ingest path, as a TAXII POST by
//! the user `feed:<name>` would be (status resource, `date_added`, query collections
//! updated), in batches, keeping only `match_types`.

use crate::config::{Feed, ServiceConfig};
use crate::feeds::error::FeedError;
use crate::store::{AddObjects, NewObject, SharedStore, StatusResource};

/// Objects stored per ingest transaction.
const BATCH: usize = 500;

/// What one pull did, so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PullReport {
    /// Objects (or list entries) received from the upstream.
    pub fetched: u64,
    /// Objects the store accepted (stored, or already held with the same bytes).
    pub stored: u64,
    /// Objects (or list entries) refused: invalid STIX, too large, not an indicator.
    pub rejected: u64,
}

/// Where a feed's objects go.
pub struct Sink<'a> {
    store: &'a SharedStore,
    api_root: String,
    collection: String,
    owner: String,
    match_types: &'a [String],
}

impl<'a> Sink<'a> {
    /// The writable collection `feed.into` names in `config`.
    pub fn new(
        store: &'a SharedStore,
        config: &ServiceConfig,
        feed: &'a Feed,
    ) -> Result<Sink<'a>, FeedError> {
        let owner = feed.owner();
        // Validation refuses a feed its collection does not grant write; checked again
        // here so that no path stores without the grant.
        let target = config
            .find_collection(&feed.into)
            .filter(|c| c.is_writable() && c.settings.access.write.contains(&owner))
            .ok_or_else(|| FeedError::Target(feed.into.clone()))?;
        Ok(Sink {
            store,
            api_root: target.settings.api_root.clone(),
            collection: target.id().to_string(),
            owner,
            match_types: &feed.match_types,
        })
    }

    /// Store `request`'s objects of the wanted types, counting into `report` (the
    /// request's own failures count as rejected).
    pub async fn store(
        &self,
        request: AddObjects,
        report: &mut PullReport,
    ) -> Result<(), FeedError> {
        report.fetched += (request.objects.len() + request.failures.len()) as u64;
        report.rejected += request.failures.len() as u64;
        let objects: Vec<NewObject> = request
            .objects
            .into_iter()
            .filter(|o| self.match_types.is_empty() || self.match_types.contains(&o.object.kind))
            .collect();
        let mut objects = objects.into_iter();
        loop {
            let batch: Vec<NewObject> = objects.by_ref().take(BATCH).collect();
            if batch.is_empty() {
                return Ok(());
            }
            let status = self
                .store
                .add_objects(
                    &self.api_root,
                    &self.collection,
                    AddObjects {
                        objects: batch,
                        failures: Vec::new(),
                        owner: self.owner.clone(),
                        status_resource: StatusResource::Record,
                    },
                )
                .await?;
            report.stored += status.success_count;
            report.rejected += status.failure_count;
        }
    }
}
