//! The record of a feed's runs as the store keeps it: the JSON of a
//! [`FeedRun`] in `feed_state.run`, beside the feed's checkpoint. Written by the feed
//! runner, read by it and by the admin listener's `GET /feeds`.

use taxiway_model::feed_status::FeedRun;

use crate::store::backend::Store;
use crate::store::error::StoreError;

/// `feed`'s record, if one was saved. One that does not parse (written by another
/// version) counts as none, with a warning.
pub async fn load(store: &dyn Store, feed: &str) -> Result<Option<FeedRun>, StoreError> {
    let Some(text) = store.feed_run(feed).await? else {
        return Ok(None);
    };
    match serde_json::from_str(&text) {
        Ok(run) => Ok(Some(run)),
        Err(e) => {
            tracing::warn!(target: "taxiway::feeds", feed = %feed, error = %e, "unreadable record of the feed's runs; ignored");
            Ok(None)
        }
    }
}

/// Save `feed`'s record (its checkpoint and lease stay as they are).
pub async fn save(store: &dyn Store, feed: &str, run: &FeedRun) -> Result<(), StoreError> {
    let text = serde_json::to_string(run).map_err(|e| {
        StoreError::Database(format!("cannot encode the record of the feed's runs: {e}"))
    })?;
    store.save_feed_run(feed, &text).await
}
