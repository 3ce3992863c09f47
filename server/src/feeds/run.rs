//! One pull of one feed: the client built, the checkpoint read, the format's puller
//! run, the lease renewed as pages are stored.

use std::time::Duration;

use crate::config::{Feed, FeedFormat, ServiceConfig};
use crate::feeds::checkpoint::{self, Checkpoint};
use crate::feeds::client::Upstream;
use crate::feeds::error::FeedError;
use crate::feeds::sink::{PullReport, Sink};
use crate::feeds::{bundle, list, taxii};
use crate::store::SharedStore;

/// A lease held while pulling: renewed after each page stored.
#[derive(Debug, Clone)]
pub struct Lease {
    /// Who holds it.
    pub holder: String,
    /// How long each renewal lasts.
    pub ttl: Duration,
}

/// What a pull in progress works with.
pub struct Pull<'a> {
    pub(crate) store: &'a SharedStore,
    pub(crate) feed: &'a Feed,
    pub(crate) upstream: Upstream,
    pub(crate) sink: Sink<'a>,
    pub(crate) max_object_bytes: usize,
    lease: Option<&'a Lease>,
}

impl Pull<'_> {
    /// Save the feed's checkpoint.
    pub(crate) async fn save(&self, c: &Checkpoint) -> Result<(), FeedError> {
        checkpoint::save(self.store, self.feed, c).await
    }

    /// Renew the lease, if pulling under one; an error once another holder has it.
    pub(crate) async fn renew(&self) -> Result<(), FeedError> {
        let Some(lease) = self.lease else {
            return Ok(());
        };
        if self
            .store
            .lease_feed(&self.feed.name, &lease.holder, lease.ttl)
            .await?
        {
            Ok(())
        } else {
            Err(FeedError::Store(crate::store::StoreError::Unavailable(
                "the feed's lease was taken by another replica".into(),
            )))
        }
    }
}

/// Pull `feed` once into the collection `feed.into` names in `config`, from its
/// checkpoint in `store`; `report` says what was done, also when it fails midway.
pub async fn pull_once(
    store: &SharedStore,
    config: &ServiceConfig,
    feed: &Feed,
    lease: Option<&Lease>,
    report: &mut PullReport,
) -> Result<(), FeedError> {
    let pull = Pull {
        store,
        feed,
        upstream: Upstream::new(feed)?,
        sink: Sink::new(store, config, feed)?,
        max_object_bytes: config.config.limits.max_object_bytes,
        lease,
    };
    let checkpoint = checkpoint::load(store, feed).await?;
    match feed.format {
        FeedFormat::Taxii => {
            let after = match checkpoint {
                Some(Checkpoint::Taxii { added_after, .. }) => Some(added_after),
                _ => None,
            };
            taxii::pull(&pull, after, report).await
        }
        FeedFormat::StixBundle => {
            let last = match checkpoint {
                Some(Checkpoint::Bundle { sha256, .. }) => Some(sha256),
                _ => None,
            };
            bundle::pull(&pull, last, report).await
        }
        FeedFormat::Lines | FeedFormat::Csv => {
            let state = match checkpoint {
                Some(Checkpoint::List(state)) => state,
                _ => Default::default(),
            };
            list::pull(&pull, state, report).await
        }
    }
}
