//! Where a feed's next pull starts, kept in the store (`feed_state`) so a restart
//! resumes: the TAXII `added_after`, the digest of the bundle stored last, or what a
//! list feed remembers of its entries.

use serde::{Deserialize, Serialize};

use crate::config::{Feed, FeedFormat};
use crate::feeds::error::FeedError;
use crate::feeds::indicators::ListState;
use crate::store::SharedStore;

/// A feed's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Checkpoint {
    /// A TAXII pull: the upstream it came from and the `date_added` of the last
    /// object stored (`X-TAXII-Date-Added-Last`).
    Taxii {
        /// URL and collection the checkpoint belongs to (a change starts afresh).
        source: String,
        /// The next pull's `added_after`.
        added_after: String,
    },
    /// A bundle: the SHA-256 of the body stored last (an unchanged bundle is skipped).
    Bundle {
        /// URL the checkpoint belongs to.
        source: String,
        /// Hex SHA-256 of the body.
        sha256: String,
    },
    /// A list: every entry the feed has made an indicator of (kept across URL changes:
    /// ids depend on the feed's name and the pattern only).
    List(ListState),
}

/// What a TAXII or bundle checkpoint belongs to.
pub fn source_of(feed: &Feed) -> String {
    match &feed.collection {
        Some(c) => format!("{} {c}", feed.url),
        None => feed.url.clone(),
    }
}

/// The feed's checkpoint, if one fits its current settings.
pub async fn load(store: &SharedStore, feed: &Feed) -> Result<Option<Checkpoint>, FeedError> {
    let Some(text) = store.feed_checkpoint(&feed.name).await? else {
        return Ok(None);
    };
    let Ok(checkpoint) = serde_json::from_str::<Checkpoint>(&text) else {
        tracing::warn!(target: "taxiway::feeds", feed = %feed.name, "unreadable checkpoint; starting afresh");
        return Ok(None);
    };
    let source = source_of(feed);
    let fits = match (&checkpoint, feed.format) {
        (Checkpoint::Taxii { source: s, .. }, FeedFormat::Taxii) => *s == source,
        (Checkpoint::Bundle { source: s, .. }, FeedFormat::StixBundle) => *s == source,
        (Checkpoint::List(_), f) => f.is_list(),
        _ => false,
    };
    Ok(fits.then_some(checkpoint))
}

/// Save the feed's checkpoint.
pub async fn save(
    store: &SharedStore,
    feed: &Feed,
    checkpoint: &Checkpoint,
) -> Result<(), FeedError> {
    let text = serde_json::to_string(checkpoint)
        .map_err(|e| FeedError::Protocol(format!("cannot encode the checkpoint: {e}")))?;
    store.save_feed_checkpoint(&feed.name, &text).await?;
    Ok(())
}
