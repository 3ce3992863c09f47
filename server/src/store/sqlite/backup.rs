//! `taxiway-server backup`: a consistent copy of the embedded store, to a new file or
//! streamed to a writer (standard output, for `kubectl exec … backup --output -`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

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
    vacuum_into(data_dir, target)
}

/// Write a consistent copy of the store in `data_dir` to `out` while it may be serving;
/// returns the bytes written. The snapshot is first taken into a temporary file in
/// `temp_dir` (it needs room for the compacted store), which is unlinked before
/// streaming starts, so no copy is left behind whatever happens to the stream.
pub fn backup_to_writer(
    data_dir: &Path,
    temp_dir: &Path,
    out: &mut dyn Write,
) -> Result<u64, StoreError> {
    let staged = Staged::create(temp_dir)?;
    vacuum_into(data_dir, &staged.path)?;
    let mut copy = File::open(&staged.path).map_err(|e| {
        StoreError::Database(format!("cannot read {}: {e}", staged.path.display()))
    })?;
    // Unlinked now: the open file keeps the data until the copy ends or the process dies.
    drop(staged);
    let bytes = copy_all(&mut copy, out)?;
    out.flush()
        .map_err(|e| StoreError::Database(format!("cannot write the backup: {e}")))?;
    Ok(bytes)
}

/// `VACUUM INTO` `target` (which must not exist or be empty) from the store in `data_dir`.
fn vacuum_into(data_dir: &Path, target: &Path) -> Result<(), StoreError> {
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

/// Copy `from` to `out` in 1 MiB pieces, counting the bytes.
fn copy_all(from: &mut File, out: &mut dyn Write) -> Result<u64, StoreError> {
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = from
            .read(&mut buf)
            .map_err(|e| StoreError::Database(format!("cannot read the snapshot: {e}")))?;
        if n == 0 {
            return Ok(bytes);
        }
        out.write_all(&buf[..n])
            .map_err(|e| StoreError::Database(format!("cannot write the backup: {e}")))?;
        bytes += n as u64;
    }
}

/// The temporary snapshot file, removed when dropped.
struct Staged {
    path: PathBuf,
}

impl Staged {
    /// A new, empty file in `dir` (`VACUUM INTO` accepts an empty file).
    fn create(dir: &Path) -> Result<Staged, StoreError> {
        let path = dir.join(format!(".taxiway-backup-{}.db", std::process::id()));
        let create = || OpenOptions::new().write(true).create_new(true).open(&path);
        // A file of this name was left by an earlier process with our id (one killed
        // mid-snapshot): nothing else can be using it.
        create()
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    std::fs::remove_file(&path).and_then(|()| create())
                }
                _ => Err(e),
            })
            .map_err(|e| {
                StoreError::Database(format!(
                    "cannot create the temporary snapshot {}: {e}",
                    path.display()
                ))
            })?;
        Ok(Staged { path })
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let mut journal = self.path.clone().into_os_string();
        journal.push("-journal");
        let _ = std::fs::remove_file(journal);
    }
}
