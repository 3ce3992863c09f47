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
    let staged = Staged::create_named(temp_dir, "backup")?;
    vacuum_into(data_dir, &staged.path)?;
    let mut copy = File::open(&staged.path)
        .map_err(|e| StoreError::Database(format!("cannot read {}: {e}", staged.path.display())))?;
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
    /// A new, empty file `.taxiway-<what>-<pid>.db` in `dir` (`VACUUM INTO` accepts an
    /// empty file).
    fn create_named(dir: &Path, what: &str) -> Result<Staged, StoreError> {
        let path = dir.join(format!(".taxiway-{what}-{}.db", std::process::id()));
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
        // What SQLite may have created beside it (checking a WAL-mode backup opens an
        // empty write-ahead log and its shared memory).
        for suffix in ["-journal", "-wal", "-shm"] {
            let mut side = self.path.clone().into_os_string();
            side.push(suffix);
            let _ = std::fs::remove_file(side);
        }
    }
}

/// Replace the store in `data_dir` with the backup read from `input` (a file written by
/// [`backup`] or the stream of [`backup_to_writer`]); returns its size in bytes.
///
/// The server must be stopped: a store another process holds open is refused. The
/// backup is written beside the store first and checked (an SQLite database that
/// passes `PRAGMA quick_check` and holds a Taxiway store); only then are the old
/// write-ahead log and shared-memory files removed and the backup renamed over
/// `taxiway.db`. A refused backup leaves the store as it was.
pub fn restore(data_dir: &Path, input: &mut dyn Read) -> Result<u64, StoreError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", data_dir.display())))?;
    let store = data_dir.join(DB_FILE);
    refuse_if_in_use(&store)?;
    let staged = Staged::create_named(data_dir, "restore")?;
    let bytes = {
        let mut file = OpenOptions::new()
            .write(true)
            .open(&staged.path)
            .map_err(|e| StoreError::Database(format!("cannot write the restore: {e}")))?;
        let bytes = std::io::copy(input, &mut file)
            .map_err(|e| StoreError::Database(format!("cannot read the backup: {e}")))?;
        file.sync_all()
            .map_err(|e| StoreError::Database(format!("cannot write the restore: {e}")))?;
        bytes
    };
    check_backup(&staged.path)?;
    // The checked file is renamed below; its side files go when `staged` is dropped.
    for suffix in ["-wal", "-shm"] {
        let mut side = store.clone().into_os_string();
        side.push(suffix);
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StoreError::Database(format!(
                    "cannot remove {}: {e}",
                    Path::new(&side).display()
                )))
            }
        }
    }
    std::fs::rename(&staged.path, &store)
        .map_err(|e| StoreError::Database(format!("cannot replace {}: {e}", store.display())))?;
    if let Ok(dir) = File::open(data_dir) {
        let _ = dir.sync_all();
    }
    Ok(bytes)
}

/// Refuse to restore over a store that a running server (or any process) has open.
fn refuse_if_in_use(store: &Path) -> Result<(), StoreError> {
    if !store.exists() {
        return Ok(());
    }
    let conn = Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    // A server holds the store for good: no point waiting long for it.
    conn.busy_timeout(std::time::Duration::from_secs(1))?;
    // Exclusive locking mode before the first read: SQLite then needs the database
    // file to itself, which it cannot have while another connection holds it open.
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    let in_use = conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;").is_err();
    if in_use {
        return Err(StoreError::Database(format!(
            "{} is in use (is the server running?); stop it before restoring",
            store.display()
        )));
    }
    Ok(())
}

/// A restore candidate must be an intact SQLite database holding a Taxiway store.
fn check_backup(path: &Path) -> Result<(), StoreError> {
    let invalid = |why: String| StoreError::Database(format!("not a Taxiway backup: {why}"));
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| invalid(e.to_string()))?;
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| invalid(e.to_string()))?;
    if check != "ok" {
        return Err(invalid(format!("quick_check: {check}")));
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'object_versions'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| invalid(e.to_string()))?;
    if tables == 0 {
        return Err(invalid("it holds no object_versions table".into()));
    }
    Ok(())
}
