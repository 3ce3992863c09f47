//! Feeds' rows in `feed_state`: checkpoints, run records and leases (see
//! [`crate::store::Store`]).
//! A lease is measured by the database's clock, so replicas whose clocks differ still
//! agree on when it ends.

use std::time::Duration;

use super::handle::PostgresStore;
use crate::store::error::StoreError;

/// The database's clock in microseconds since the epoch.
const NOW_US: &str = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

impl PostgresStore {
    pub(super) async fn read_feed_checkpoint(
        &self,
        feed: &str,
    ) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT checkpoint FROM feed_state WHERE name = $1",
                &[&feed],
            )
            .await?;
        Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
    }

    pub(super) async fn write_feed_checkpoint(
        &self,
        feed: &str,
        checkpoint: &str,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO feed_state (name, checkpoint) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET checkpoint = excluded.checkpoint",
                &[&feed, &checkpoint],
            )
            .await?;
        Ok(())
    }

    pub(super) async fn read_feed_run(&self, feed: &str) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT run FROM feed_state WHERE name = $1", &[&feed])
            .await?;
        Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
    }

    pub(super) async fn write_feed_run(&self, feed: &str, run: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO feed_state (name, run) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET run = excluded.run",
                &[&feed, &run],
            )
            .await?;
        Ok(())
    }

    pub(super) async fn take_feed_lease(
        &self,
        feed: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let ttl_us = ttl.as_micros().min(i64::MAX as u128 / 2) as i64;
        let client = self.client().await?;
        let changed = client
            .execute(
                &format!(
                    "INSERT INTO feed_state (name, holder, lease_until_us) VALUES ($1, $2, {NOW_US} + $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                       lease_until_us = excluded.lease_until_us \
                     WHERE feed_state.holder = excluded.holder OR feed_state.lease_until_us < {NOW_US}"
                ),
                &[&feed, &holder, &ttl_us],
            )
            .await?;
        Ok(changed == 1)
    }

    pub(super) async fn drop_feed_lease(&self, feed: &str, holder: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE feed_state SET lease_until_us = 0 WHERE name = $1 AND holder = $2",
                &[&feed, &holder],
            )
            .await?;
        Ok(())
    }
}
