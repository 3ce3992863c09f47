//! The SQLite store handle: opening the database and running blocking work off the
//! async runtime.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use super::checkpointer::{Checkpointer, BACKSTOP_PAGES};
use super::db_file::DB_FILE;
use super::gathered_log;
use super::inner::{poisoned, Inner, LAST_STAMP};
use super::log_restart::LogRestart;
use super::schema;
use crate::store::clock::Clock;
use crate::store::error::StoreError;
use crate::store::generation_reads::GenerationReads;
use crate::store::registry::Registry;

/// The writer's connection: through the VFS that writes its log in large pieces
/// ([`gathered_log`]), which relies on the `synchronous=FULL` that
/// [`schema::configure`] gives the writer.
fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    Ok(match gathered_log::registered() {
        true => Connection::open_with_flags_and_vfs(
            path,
            rusqlite::OpenFlags::default(),
            gathered_log::VFS_NAME,
        )?,
        false => Connection::open(path)?,
    })
}

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    pub(super) inner: Arc<Inner>,
    /// Copies the write-ahead log into the database beside the writer; stopped when
    /// the last handle goes, or by `close`.
    pub(super) checkpointer: Arc<Checkpointer>,
}

impl SqliteStore {
    /// Open (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path, readers: u32) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Database(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(DB_FILE);
        let mut writer = open_writer(&path)?;
        schema::configure(&writer, true)?;
        // The checkpointer copies the log; the writer only if it falls far behind.
        writer.pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)?;
        // Take the write lock at BEGIN, waiting (busy_timeout) for another process's
        // writes (an `import` beside the server) instead of failing mid-transaction.
        writer.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        schema::migrate(&mut writer)?;
        let last: Option<i64> = writer.query_row(LAST_STAMP, [], |r| r.get(0))?;
        let manager = SqliteConnectionManager::file(&path).with_init(|c| {
            schema::configure(c, false).map_err(|e| match e {
                StoreError::Database(m) | StoreError::Unavailable(m) => {
                    rusqlite::Error::InvalidParameterName(m)
                }
                other => rusqlite::Error::InvalidParameterName(other.to_string()),
            })
        });
        let readers = r2d2::Pool::builder()
            .max_size(readers.max(1))
            .min_idle(Some(1))
            .build(manager)?;
        let inner = Arc::new(Inner {
            writer: Mutex::new(writer),
            readers,
            clock: Clock::starting_after(last.unwrap_or(0)),
            registry: RwLock::new(Arc::new(Registry::default())),
            running: Mutex::new(HashSet::new()),
            retention_hours: AtomicU64::new(48),
            log_restart: LogRestart::default(),
            generations: GenerationReads::default(),
        });
        let checkpointer = Checkpointer::start(&path, Arc::downgrade(&inner))?;
        Ok(SqliteStore {
            inner,
            checkpointer: Arc::new(checkpointer),
        })
    }

    pub(super) fn registry(&self) -> Result<Arc<Registry>, StoreError> {
        Ok(self.inner.registry.read().map_err(poisoned)?.clone())
    }

    /// Run blocking store work off the async runtime.
    pub(super) async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|e| StoreError::Database(format!("store task failed: {e}")))?
    }
}
