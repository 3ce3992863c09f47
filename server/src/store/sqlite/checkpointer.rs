//! Checkpoints beside the writer: copying the write-ahead log's pages into
//! `taxiway.db` on a thread of its own instead of inside a commit.
//!
//! Left to SQLite, the commit that takes the log past 1,000 pages copies them all
//! before it returns (reading each back from the log, writing it to the database, one
//! `fsync`): on a store of a million objects, where an ingest of 1,000 objects dirties
//! ~2,000 pages, that was every commit, in series with the next write. Here the writer
//! only appends to the log, and a checkpointer thread copies what was committed
//! (`PASSIVE`: never waits for the writer or readers) while the writer goes on — the
//! second core's work.
//!
//! The log restarts from its beginning only at a write that finds every page of it
//! copied, which a writer that never pauses never finds: once the log holds
//! [`RESTART_PAGES`], the checkpointer copies the last few pages holding the writer's
//! lock, so the next write starts the log afresh. The writer's own automatic
//! checkpoint stays as a backstop ([`BACKSTOP_PAGES`]) should this thread fall behind.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::inner::{poisoned, Inner};
use crate::store::error::StoreError;

/// How often the checkpointer looks at the log.
const INTERVAL: Duration = Duration::from_millis(20);

/// Log pages after which the checkpointer makes the next write restart the log
/// (16 MiB of 4 KiB pages).
pub(super) const RESTART_PAGES: i64 = 4_096;

/// The writer checkpoints by itself once the log holds this many pages (64 MiB):
/// only when the checkpointer is behind or gone.
pub(super) const BACKSTOP_PAGES: i64 = 16_384;

/// The checkpointer thread of a store; stopped by [`Checkpointer::stop`] or when the
/// store is dropped.
pub(super) struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// A checkpointer of the database at `path`, with a connection of its own; it
    /// takes `writer`'s lock to finish a log.
    pub(super) fn start(path: &Path, inner: Weak<Inner>) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path)?;
        // A checkpoint's copies are durable before the log may be reused.
        conn.pragma_update(None, "synchronous", "FULL")?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&conn, &inner, &stopping))
            .map_err(|e| StoreError::Database(format!("cannot start the checkpointer: {e}")))?;
        Ok(Checkpointer {
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stop the thread and wait for a checkpoint in progress to end.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let thread = match self.thread.lock() {
            Ok(mut t) => t.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(thread) = thread {
            thread.thread().unpark();
            // Not from the thread itself (its last `Inner` reference dropping).
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What `PRAGMA wal_checkpoint` reports: pages in the log, and how many of them are
/// in the database now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LogState {
    /// `wal_checkpoint`'s first column: 1 when a reader or writer kept it from
    /// finishing.
    pub busy: bool,
    /// Pages in the log.
    pub pages: i64,
    /// Of those, the pages copied into the database.
    pub copied: i64,
}

/// One `PASSIVE` checkpoint on `conn`.
pub(super) fn checkpoint(conn: &Connection) -> Result<LogState, StoreError> {
    Ok(conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok(LogState {
            busy: r.get::<_, i64>(0)? != 0,
            pages: r.get(1)?,
            copied: r.get(2)?,
        })
    })?)
}

fn run(conn: &Connection, inner: &Weak<Inner>, stop: &AtomicBool) {
    let mut last = None;
    while !stop.load(Ordering::Acquire) {
        std::thread::park_timeout(INTERVAL);
        if stop.load(Ordering::Acquire) {
            break;
        }
        let Some(inner) = inner.upgrade() else { break };
        if let Err(e) = step(conn, &inner, &mut last) {
            tracing::warn!(target: "taxiway::store", error = %e, "checkpoint failed");
        }
    }
}

/// One look at the log: copy what is committed into the database; once the log holds
/// [`RESTART_PAGES`], copy the rest holding the writer's lock, so the next write
/// restarts it. `last`: what the previous look saw (nothing new: nothing to do).
fn step(conn: &Connection, inner: &Inner, last: &mut Option<LogState>) -> Result<(), StoreError> {
    let state = checkpoint(conn)?;
    if *last == Some(state) {
        return Ok(());
    }
    *last = Some(state);
    if state.pages < RESTART_PAGES {
        return Ok(());
    }
    // With no write in progress, the pages committed while the checkpoint above ran.
    let writer = inner.writer.lock().map_err(poisoned)?;
    checkpoint(&writer)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(inner: &Inner, rows: i64) {
        let writer = inner.writer.lock().expect("writer");
        writer
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS filler (n INTEGER PRIMARY KEY, pad BLOB); \
                 PRAGMA synchronous = NORMAL;",
            )
            .expect("table");
        writer
            .execute(
                "INSERT INTO filler (pad) SELECT zeroblob(3000) FROM \
                 (WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < ?1) \
                  SELECT k FROM c)",
                [rows],
            )
            .expect("insert");
    }

    /// The writer only appends to the log; the checkpointer copies it, and once it is
    /// long enough makes the next write start it afresh — every row still there.
    #[test]
    fn the_checkpointer_copies_the_log_and_has_the_next_write_restart_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::sqlite::SqliteStore::open(dir.path(), 1).expect("open");
        let inner = store.inner.clone();
        // Steps taken by hand, not by the thread's clock.
        store.checkpointer.stop();
        let conn = Connection::open(dir.path().join(super::super::DB_FILE)).expect("open");
        let mut last = None;

        // A short log is copied (and restarted by a write that finds it copied).
        fill(&inner, 100);
        step(&conn, &inner, &mut last).expect("step");
        let short = last.expect("a look");
        assert!(
            short.pages > 100 && short.pages < RESTART_PAGES,
            "{short:?}"
        );
        assert_eq!(short.copied, short.pages, "{short:?}");

        // A long one is finished under the writer's lock: the next write restarts it.
        fill(&inner, RESTART_PAGES);
        step(&conn, &inner, &mut last).expect("step");
        let long = last.expect("a look");
        assert!(long.pages >= RESTART_PAGES, "{long:?}");
        fill(&inner, 10);
        let after = checkpoint(&conn).expect("checkpoint");
        assert!(after.pages < 100, "the log did not restart: {after:?}");

        let writer = inner.writer.lock().expect("writer");
        let rows: i64 = writer
            .query_row("SELECT count(*) FROM filler", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, 110 + RESTART_PAGES);
    }

    /// Left running, the thread copies committed pages by itself.
    #[test]
    fn the_thread_copies_what_the_writer_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::sqlite::SqliteStore::open(dir.path(), 1).expect("open");
        fill(&store.inner, 200);
        let conn = Connection::open(dir.path().join(super::super::DB_FILE)).expect("open");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            // A read-only look: `wal_checkpoint` would copy by itself.
            let copied: i64 = conn
                .query_row("SELECT count(*) FROM filler", [], |r| r.get(0))
                .expect("count");
            assert_eq!(copied, 200);
            let db_pages = std::fs::metadata(dir.path().join(super::super::DB_FILE))
                .expect("db")
                .len()
                / 4096;
            if db_pages > 200 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "nothing was copied");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
