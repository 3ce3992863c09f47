//! Feeds' rows in `feed_state`: checkpoints, run records and leases (see
//! [`crate::store::Store`]).

use std::time::Duration;

use rusqlite::{params, OptionalExtension};

use super::handle::SqliteStore;
use super::inner::poisoned;
use crate::stix::timestamp::now_us;
use crate::store::error::StoreError;

impl SqliteStore {
    pub(super) async fn read_feed_checkpoint(
        &self,
        feed: &str,
    ) -> Result<Option<String>, StoreError> {
        let feed = feed.to_string();
        self.blocking(move |inner| {
            let conn = inner.readers.get()?;
            let checkpoint: Option<Option<String>> = conn
                .query_row(
                    "SELECT checkpoint FROM feed_state WHERE name = ?1",
                    params![feed],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(checkpoint.flatten())
        })
        .await
    }

    pub(super) async fn write_feed_checkpoint(
        &self,
        feed: &str,
        checkpoint: &str,
    ) -> Result<(), StoreError> {
        let (feed, checkpoint) = (feed.to_string(), checkpoint.to_string());
        self.blocking(move |inner| {
            let writer = inner.writer.lock().map_err(poisoned)?;
            writer.execute(
                "INSERT INTO feed_state (name, checkpoint) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET checkpoint = excluded.checkpoint",
                params![feed, checkpoint],
            )?;
            Ok(())
        })
        .await
    }

    pub(super) async fn read_feed_run(&self, feed: &str) -> Result<Option<String>, StoreError> {
        let feed = feed.to_string();
        self.blocking(move |inner| {
            let conn = inner.readers.get()?;
            let run: Option<Option<String>> = conn
                .query_row(
                    "SELECT run FROM feed_state WHERE name = ?1",
                    params![feed],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(run.flatten())
        })
        .await
    }

    pub(super) async fn write_feed_run(&self, feed: &str, run: &str) -> Result<(), StoreError> {
        let (feed, run) = (feed.to_string(), run.to_string());
        self.blocking(move |inner| {
            let writer = inner.writer.lock().map_err(poisoned)?;
            writer.execute(
                "INSERT INTO feed_state (name, run) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET run = excluded.run",
                params![feed, run],
            )?;
            Ok(())
        })
        .await
    }

    pub(super) async fn take_feed_lease(
        &self,
        feed: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let (feed, holder) = (feed.to_string(), holder.to_string());
        self.blocking(move |inner| {
            let now = now_us();
            let until = now.saturating_add(ttl.as_micros().min(i64::MAX as u128) as i64);
            let writer = inner.writer.lock().map_err(poisoned)?;
            let changed = writer.execute(
                "INSERT INTO feed_state (name, holder, lease_until_us) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                   lease_until_us = excluded.lease_until_us \
                 WHERE feed_state.holder = excluded.holder OR feed_state.lease_until_us < ?4",
                params![feed, holder, until, now],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    pub(super) async fn drop_feed_lease(&self, feed: &str, holder: &str) -> Result<(), StoreError> {
        let (feed, holder) = (feed.to_string(), holder.to_string());
        self.blocking(move |inner| {
            let writer = inner.writer.lock().map_err(poisoned)?;
            writer.execute(
                "UPDATE feed_state SET lease_until_us = 0 WHERE name = ?1 AND holder = ?2",
                params![feed, holder],
            )?;
            Ok(())
        })
        .await
    }
}
