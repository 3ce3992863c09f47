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
//! copied and no reader still reading from it, which a writer that never pauses never
//! finds. Once the log holds [`RESTART_PAGES`] the checkpointer asks ([`super::log_restart::LogRestart`])
//! and the next write transaction first finishes the log itself ([`super::log_restart::restart_log`]:
//! `RESTART`, waiting at most 50 ms for readers): by then the thread has
//! copied all but the last commit's pages, so the writer copies only those. Measured
//! on the 1M store: a finish costs the writer 50–90 ms (the last commit's pages and an
//! `fsync`); taking the writer's lock from the thread instead cost two finishes of
//! ~150 ms per restart, most of it pages committed while the thread waited for the
//! lock. A reader still in the log makes the restart wait for a later write (asked
//! again once the log has grown by [`RESTART_RETRY_PAGES`]). The writer's own
//! automatic checkpoint stays as a backstop ([`BACKSTOP_PAGES`]) should the thread
//! fall behind.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::inner::Inner;
use super::log_restart::{checkpoint, LogState};
use crate::store::error::StoreError;

/// How often the checkpointer looks at the log.
const INTERVAL: Duration = Duration::from_millis(20);

/// Log pages after which the next write restarts the log (128 MiB of 4 KiB pages):
/// the finish costs the writer one commit's pages, so the longer the log, the rarer
/// (measured at 1M objects: 12,200–15,300 objects/s at 4,096 pages, 15,900–16,600 at
/// 32,768).
pub(super) const RESTART_PAGES: i64 = 32_768;

/// The writer checkpoints by itself once the log holds this many pages (512 MiB):
/// only when the checkpointer is behind or gone.
pub(super) const BACKSTOP_PAGES: i64 = 4 * RESTART_PAGES;

/// A restart that did not happen (a reader was in the log) is asked for again once the
/// log has grown by this many pages (a few commits).
const RESTART_RETRY_PAGES: i64 = RESTART_PAGES / 4;

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

/// What the checkpointer remembers between two looks at the log.
#[derive(Debug, Default)]
struct Watch {
    /// What the previous look saw.
    last: Option<LogState>,
    /// The log's length when a restart was last asked for (0: not asked since the
    /// last restart).
    asked_at: i64,
    /// The writer's restarts seen.
    generation: u64,
    /// The length of a log the writer has just finished: the next write restarts it.
    finished: Option<i64>,
}

fn run(conn: &Connection, inner: &Weak<Inner>, stop: &AtomicBool) {
    let mut watch = Watch::default();
    while !stop.load(Ordering::Acquire) {
        std::thread::park_timeout(INTERVAL);
        if stop.load(Ordering::Acquire) {
            break;
        }
        let Some(inner) = inner.upgrade() else { break };
        if let Err(e) = step(conn, &inner, &mut watch) {
            tracing::warn!(target: "taxiway::store", error = %e, "checkpoint failed");
        }
    }
}

/// One look at the log: copy what is committed into the database; once the log holds
/// [`RESTART_PAGES`], ask the next write to restart it (again after every
/// [`RESTART_RETRY_PAGES`] should it not).
fn step(conn: &Connection, inner: &Inner, watch: &mut Watch) -> Result<(), StoreError> {
    let generation = inner.log_restart.generation();
    let state = checkpoint(conn)?;
    if state.pages < 0 || watch.last == Some(state) {
        // Another connection's checkpoint was running (the writer's), or nothing new.
        return Ok(());
    }
    watch.last = Some(state);
    if generation != watch.generation {
        watch.generation = generation;
        watch.finished = Some(state.pages);
        watch.asked_at = 0;
    }
    if watch.finished == Some(state.pages) {
        return Ok(());
    }
    watch.finished = None;
    if state.pages < watch.asked_at {
        // Restarted since.
        watch.asked_at = 0;
    }
    let due = if watch.asked_at == 0 {
        RESTART_PAGES
    } else {
        watch.asked_at + RESTART_RETRY_PAGES
    };
    if state.pages >= due {
        watch.asked_at = state.pages;
        inner.log_restart.ask(generation);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rows` rows of 3,000 bytes (a page each) in one write transaction.
    fn fill(inner: &Inner, rows: i64) {
        let mut writer = inner.writer.lock().expect("writer");
        writer
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS filler (n INTEGER PRIMARY KEY, pad BLOB); \
                 PRAGMA synchronous = NORMAL;",
            )
            .expect("table");
        let tx = inner.write_transaction(&mut writer).expect("write");
        tx.execute(
            "INSERT INTO filler (pad) SELECT zeroblob(3000) FROM \
                 (WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < ?1) \
                  SELECT k FROM c)",
            [rows],
        )
        .expect("insert");
        tx.commit().expect("commit");
    }

    /// A store whose checkpointer steps are taken by hand, not by the thread's clock.
    fn by_hand() -> (
        tempfile::TempDir,
        crate::store::sqlite::SqliteStore,
        Arc<Inner>,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::sqlite::SqliteStore::open(dir.path(), 1).expect("open");
        store.checkpointer.stop();
        let inner = store.inner.clone();
        (dir, store, inner)
    }

    /// The writer only appends to the log; the checkpointer copies it, and once it is
    /// long enough makes the next write start it afresh — every row still there.
    #[test]
    fn the_checkpointer_copies_the_log_and_has_the_next_write_restart_it() {
        let (dir, _store, inner) = by_hand();
        let conn = Connection::open(dir.path().join(super::super::DB_FILE)).expect("open");
        let mut watch = Watch::default();

        // A short log is copied (and restarted by a write that finds it copied).
        fill(&inner, 100);
        step(&conn, &inner, &mut watch).expect("step");
        let short = watch.last.expect("a look");
        assert!(
            short.pages > 100 && short.pages < RESTART_PAGES,
            "{short:?}"
        );
        assert_eq!(short.copied, short.pages, "{short:?}");

        // A long one is finished by the next write, which restarts it.
        fill(&inner, RESTART_PAGES);
        step(&conn, &inner, &mut watch).expect("step");
        let long = watch.last.expect("a look");
        assert!(long.pages >= RESTART_PAGES, "{long:?}");
        inner
            .log_restart
            .serve(&inner.writer.lock().expect("writer"));
        assert_eq!(inner.log_restart.generation(), 1);
        // The finished log is not asked about again: the next write restarts it.
        step(&conn, &inner, &mut watch).expect("step");
        assert!(!inner.log_restart.take());
        fill(&inner, 10);
        let after = checkpoint(&conn).expect("checkpoint");
        assert!(after.pages < 100, "the log did not restart: {after:?}");

        let writer = inner.writer.lock().expect("writer");
        let rows: i64 = writer
            .query_row("SELECT count(*) FROM filler", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, 110 + RESTART_PAGES);
    }

    /// A reader still reading from the log delays its restart (to a later write),
    /// never the write itself beyond 50 ms.
    #[test]
    fn a_reader_in_the_log_postpones_the_restart_not_the_write() {
        let (dir, _store, inner) = by_hand();
        let conn = Connection::open(dir.path().join(super::super::DB_FILE)).expect("open");
        let mut watch = Watch::default();
        fill(&inner, 200);
        let reader = Connection::open(dir.path().join(super::super::DB_FILE)).expect("open");
        reader.execute_batch("BEGIN").expect("begin");
        let seen: i64 = reader
            .query_row("SELECT count(*) FROM filler", [], |r| r.get(0))
            .expect("count");
        assert_eq!(seen, 200);

        fill(&inner, RESTART_PAGES);
        step(&conn, &inner, &mut watch).expect("step");
        let started = std::time::Instant::now();
        fill(&inner, 10);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            inner.log_restart.generation(),
            0,
            "no restart under a reader"
        );
        let grown = checkpoint(&conn).expect("checkpoint");
        assert!(grown.pages > RESTART_PAGES, "{grown:?}");

        // Not asked again before the log grows by a quarter; asked then, and restarted
        // once the reader is gone.
        step(&conn, &inner, &mut watch).expect("step");
        assert!(!inner.log_restart.take(), "asked again too soon");
        fill(&inner, RESTART_RETRY_PAGES);
        step(&conn, &inner, &mut watch).expect("step");
        reader.execute_batch("COMMIT").expect("commit");
        fill(&inner, 10);
        assert_eq!(inner.log_restart.generation(), 1);
        let after = checkpoint(&conn).expect("checkpoint");
        assert!(after.pages < 100, "the log did not restart: {after:?}");
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM filler", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, 220 + RESTART_PAGES + RESTART_RETRY_PAGES);
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
