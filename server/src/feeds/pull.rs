//! What a pull in progress works with: the feed, its HTTP client, where objects go,
//! its checkpoint and its lease.

use std::time::Duration;

use crate::config::Feed;
use crate::feeds::checkpoint::{self, Checkpoint};
use crate::feeds::client::Upstream;
use crate::feeds::error::FeedError;
use crate::feeds::sink::Sink;
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

impl<'a> Pull<'a> {
    /// A pull of `feed` with `upstream`, storing through `sink`.
    pub(crate) fn new(
        store: &'a SharedStore,
        feed: &'a Feed,
        upstream: Upstream,
        sink: Sink<'a>,
        max_object_bytes: usize,
        lease: Option<&'a Lease>,
    ) -> Pull<'a> {
        Pull {
            store,
            feed,
            upstream,
            sink,
            max_object_bytes,
            lease,
        }
    }
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
