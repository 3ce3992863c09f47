//! One pull of one feed: the client built, the checkpoint read, the format's puller run.

use crate::config::{Feed, FeedFormat, ServiceConfig};
use crate::feeds::checkpoint::{self, Checkpoint};
use crate::feeds::client::Upstream;
use crate::feeds::error::FeedError;
use crate::feeds::pull::{Lease, Pull};
use crate::feeds::sink::{PullReport, Sink};
use crate::feeds::{bundle, list, taxii};
use crate::store::SharedStore;

/// Pull `feed` once into the collection `feed.into` names in `config`, from its
/// checkpoint in `store`; `report` says what was done, also when it fails midway.
pub async fn pull_once(
    store: &SharedStore,
    config: &ServiceConfig,
    feed: &Feed,
    lease: Option<&Lease>,
    report: &mut PullReport,
) -> Result<(), FeedError> {
    let pull = Pull::new(
        store,
        feed,
        Upstream::new(feed)?,
        Sink::new(store, config, feed)?,
        config.config.limits.max_object_bytes,
        lease,
    );
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
