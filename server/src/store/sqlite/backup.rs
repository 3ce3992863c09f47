//! `taxiway-server backup`: a consistent copy of the embedded store.

use std::path::Path;

use rusqlite::{params, Connection};

use super::db_file::DB_FILE;
use crate::store::error::StoreError;

/// Write a consistent copy of the store in `data_dir` to `target` while it may be
/// serving (SQLite `VACUUM INTO`: a transactionally consistent, compacted snapshot).
pub fn backup(data_dir: &Path, target: &Path) -> Result<(), StoreError> {
    if target.exists() {
        return Err(StoreError::Database(format!(
            "{} already exists; refusing to overwrite a backup",
            target.display()
        )));
    }
    let source = data_dir.join(DB_FILE);
    if !source.exists() {
        return Err(StoreError::Database(format!(
            "no store at {}",
            source.display()
        )));
    }
    let conn = Connection::open_with_flags(&source, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let target = target
        .to_str()
        .ok_or_else(|| StoreError::Database("the backup path is not UTF-8".into()))?;
    conn.execute("VACUUM INTO ?1", params![target])?;
    Ok(())
}
