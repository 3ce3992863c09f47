//! The write-ahead log's state, and its restart by the writer when the checkpointer
//! asks (see `checkpointer.rs`): the one piece of checkpointing that runs on the
//! writer's connection, before a write transaction.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::Connection;

use super::schema::WRITER_BUSY_TIMEOUT;
use crate::store::error::StoreError;

/// How long the writer's finish of the log waits for readers still reading from it
/// (short page reads) before leaving the restart to a later write.
const RESTART_WAIT: Duration = Duration::from_millis(50);

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
    wal_checkpoint(conn, "PRAGMA wal_checkpoint(PASSIVE)")
}

fn wal_checkpoint(conn: &Connection, pragma: &str) -> Result<LogState, StoreError> {
    Ok(conn.query_row(pragma, [], |r| {
        Ok(LogState {
            busy: r.get::<_, i64>(0)? != 0,
            pages: r.get(1)?,
            copied: r.get(2)?,
        })
    })?)
}

/// The checkpointer's request that the writer restart the log, and which log it was
/// about: a request made before a restart it did not see is void.
#[derive(Debug, Default)]
pub(super) struct LogRestart {
    /// 1 + the generation of the log asked about; 0: nothing asked.
    asked: AtomicU64,
    /// Restarts the writer has made.
    generation: AtomicU64,
}

impl LogRestart {
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Ask for a restart of the log of `generation`.
    pub(super) fn ask(&self, generation: u64) {
        self.asked.store(generation + 1, Ordering::Release);
    }

    /// Whether a restart of the log being written to is asked for (taking the request).
    pub(super) fn take(&self) -> bool {
        let asked = self.asked.swap(0, Ordering::AcqRel);
        asked != 0 && asked - 1 == self.generation()
    }

    /// On the writer's connection, holding the store's write lock, before a write
    /// transaction: finish the log if asked to.
    pub(super) fn serve(&self, writer: &Connection) {
        if !self.take() {
            return;
        }
        match restart_log(writer) {
            Ok(state) if !state.busy => {
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
            // The checkpointer was copying (no wait for that lock): the next write
            // tries again.
            Ok(state) if state.pages < 0 => self.ask(self.generation()),
            // A reader still in the log: asked again once it has grown.
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(target: "taxiway::store", error = %e, "cannot restart the log");
            }
        }
    }
}

/// Finish the log on the writer's connection (holding the store's write lock, before
/// a write transaction): copy what the checkpointer has not yet copied and wait
/// (at most [`RESTART_WAIT`]) for readers to leave it, so the write that follows
/// starts the log from its beginning.
pub(super) fn restart_log(writer: &Connection) -> Result<LogState, StoreError> {
    writer.busy_timeout(RESTART_WAIT)?;
    let finished = wal_checkpoint(writer, "PRAGMA wal_checkpoint(RESTART)");
    writer.busy_timeout(WRITER_BUSY_TIMEOUT)?;
    finished
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request made before a restart it did not see is void.
    #[test]
    fn a_request_about_a_restarted_log_is_void() {
        let restart = LogRestart::default();
        restart.ask(0);
        restart.generation.fetch_add(1, Ordering::AcqRel);
        assert!(!restart.take());
        restart.ask(1);
        assert!(restart.take());
        assert!(!restart.take(), "taken once");
    }
}
