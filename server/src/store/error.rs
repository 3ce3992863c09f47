//! Why the store could not do what was asked, and how database errors map onto it.

/// Why the store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database failed (I/O, corruption, full disk, locked).
    #[error("database error: {0}")]
    Database(String),
    /// The store is not reachable right now (e.g. pool exhausted, database down).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The collection has no view in the store (not a configured collection).
    #[error("unknown collection {0}")]
    UnknownCollection(String),
    /// The collection does not accept writes.
    #[error("collection {0} is read-only")]
    ReadOnly(String),
}

impl From<rusqlite::Error> for StoreError {
    /// The database still locked by another process's write after the busy timeout
    /// (an `import` beside the server, a backup) is `Unavailable` (503, retry); the rest
    /// are errors.
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Unavailable(format!("the store is busy: {e}"))
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl From<tokio_postgres::Error> for StoreError {
    /// Connection problems (no SQLSTATE, class 08, shutdown, too many connections,
    /// serialisation failures) are `Unavailable` (503, retry); the rest are errors.
    fn from(e: tokio_postgres::Error) -> Self {
        let retryable = match e.code() {
            None => true,
            Some(code) => {
                let c = code.code();
                c.starts_with("08")
                    || c.starts_with("53")
                    || c.starts_with("57P")
                    || c == "40001"
                    || c == "40P01"
            }
        };
        let message = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        if retryable {
            StoreError::Unavailable(format!("database unreachable: {message}"))
        } else {
            StoreError::Database(message)
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        // Whatever stops a new connection (refused, shutting down, not accepting
        // connections, authentication), the store cannot serve now: 503, retry.
        match e {
            deadpool_postgres::PoolError::Backend(e) => match StoreError::from(e) {
                StoreError::Database(m) | StoreError::Unavailable(m) => {
                    StoreError::Unavailable(format!("cannot connect to the database: {m}"))
                }
                other => other,
            },
            other => StoreError::Unavailable(format!("database unreachable: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    #[test]
    fn a_store_locked_by_another_process_is_unavailable_not_an_error() {
        let sqlite =
            |code: i32| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        for busy in [rusqlite::ffi::SQLITE_BUSY, rusqlite::ffi::SQLITE_LOCKED] {
            assert!(matches!(
                StoreError::from(sqlite(busy)),
                StoreError::Unavailable(_)
            ));
        }
        assert!(matches!(
            StoreError::from(sqlite(rusqlite::ffi::SQLITE_CORRUPT)),
            StoreError::Database(_)
        ));
    }
}
