//! The writer's write-ahead log, written in large pieces.
//!
//! SQLite appends a commit's pages to the log one frame at a time, each with two
//! `pwrite`s — its 24-byte header, then the page — so a commit of 1,300 pages (1,000
//! new objects at 1M) is 2,600 system calls, most of them partial writes of a kernel
//! page (a frame is 4,120 bytes): a fifth of the writer's time. The writer's connection
//! opens the store through this VFS instead: the default (`unix`) one, except that the
//! write-ahead log gathers consecutive writes in a buffer of up to [`GATHER_BYTES`] and
//! writes them with one call — when the buffer is full, and before anything else is
//! done with the file (a read, a size, a sync, a truncation, a file control, a close).
//!
//! Nothing is visible to others before it is written, and nothing gathered outlives
//! the transaction that wrote it:
//! - other connections read only frames of committed transactions, and the writer runs
//!   with `synchronous=FULL` (`schema::configure`), so every commit ends with the log's
//!   `fsync` — which writes what is gathered first;
//! - frames of a transaction that rolled back after its pages spilled into the log are
//!   written (as SQLite would have written them at once) before the writer lets go of
//!   the log's write lock, or of the database file's lock in `locking_mode=EXCLUSIVE` —
//!   the main database file is wrapped for these hooks — so they can never land over
//!   frames that another connection or process (an `import` beside the server) commits
//!   afterwards;
//! - a failed write of gathered frames fails the call that caused it with
//!   `SQLITE_IOERR_WRITE`, which rolls the whole transaction back, and they stay
//!   gathered for the next try until the transaction ends: SQLite counts them as
//!   written;
//! - on a connection run with less than `synchronous=FULL` (only tests do), frames are
//!   written before the log's shared header makes them visible (the `xShmBarrier` SQLite
//!   places between the header's two copies); a failure to write them there cannot fail
//!   the commit any more, which is why the store's writer runs with `FULL`.
//!
//! A log whose database file is not ours, or on a device where a write may disturb the
//! bytes beside it (no `SQLITE_IOCAP_POWERSAFE_OVERWRITE`), is not gathered at all.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::mem::{align_of, size_of};
use std::ptr::{self, addr_of_mut};
use std::sync::OnceLock;

use rusqlite::ffi;

/// The VFS's name, for `Connection::open_with_flags_and_vfs`.
pub const VFS_NAME: &CStr = c"taxiway-gathered-log";

/// The most bytes gathered before they are written: the most `unix` writes with one
/// call (it cuts a write to 128 KiB − 1 bytes), in whole kernel pages — 30 frames of
/// 4 KiB pages. One buffer, on the writer's connection only.
pub const GATHER_BYTES: usize = 31 * 4096;

/// The log's write lock: slot 0 of the shared-memory locks (`WAL_WRITE_LOCK`).
const WAL_WRITE_LOCK: c_int = 0;

/// Registers the VFS once per process. `false` when the default VFS is not `unix`, or
/// registration failed: the caller then opens with the default VFS.
pub fn registered() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    // SAFETY: `register` only reads the default VFS, which SQLite keeps for the
    // process, and registers a copy that lives as long.
    *REGISTERED.get_or_init(|| unsafe { register() })
}

/// The `unix` VFS this one forwards to, set once by [`register`].
static UNIX: OnceLock<usize> = OnceLock::new();

unsafe fn register() -> bool {
    let unix = ffi::sqlite3_vfs_find(ptr::null());
    if unix.is_null() || (*unix).zName.is_null() || CStr::from_ptr((*unix).zName) != c"unix" {
        return false;
    }
    let Ok(size) = c_int::try_from(inner_offset() + (*unix).szOsFile as usize) else {
        return false;
    };
    if UNIX.set(unix as usize).is_err() {
        return false;
    }
    // The `unix` methods other than `xOpen` do not read their VFS argument (they take
    // it as `NotUsed`), so they are shared as they are; `pAppData` is copied anyway.
    let vfs = Box::new(ffi::sqlite3_vfs {
        szOsFile: size,
        pNext: ptr::null_mut(),
        zName: VFS_NAME.as_ptr(),
        xOpen: Some(open),
        ..*unix
    });
    // Leaked on purpose: SQLite keeps the pointer for the life of the process.
    ffi::sqlite3_vfs_register(Box::into_raw(vfs), 0) == ffi::SQLITE_OK
}

fn unix() -> *mut ffi::sqlite3_vfs {
    UNIX.get()
        .map_or(ptr::null_mut(), |p| *p as *mut ffi::sqlite3_vfs)
}

// SQLite allocates `szOsFile` bytes for every file it opens through this VFS and hands
// them to `open`; the methods below are only ever called with a file `open` opened (a
// `MainFile` for `MAIN_METHODS`, a `LogFile` for `LOG_METHODS`), by one connection at
// a time. `unix`'s own file lives at `inner_offset()` in that memory.

/// The main database file: SQLite's file header, then the log opened for it (null when
/// none is), then `unix`'s file.
#[repr(C)]
struct MainFile {
    base: ffi::sqlite3_file,
    log: *mut LogFile,
}

/// A log file: SQLite's file header, its database's file (null: not gathered), the
/// gathered bytes, then `unix`'s file.
#[repr(C)]
struct LogFile {
    base: ffi::sqlite3_file,
    main: *mut MainFile,
    gathered: Gathered,
}

/// Where `unix`'s file starts within ours.
const fn inner_offset() -> usize {
    let align = align_of::<u64>();
    let ours = if size_of::<LogFile>() > size_of::<MainFile>() {
        size_of::<LogFile>()
    } else {
        size_of::<MainFile>()
    };
    ours.div_ceil(align) * align
}

unsafe fn inner(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    file.cast::<u8>().add(inner_offset()).cast()
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let unix = unix();
    let Some(unix_open) = unix.as_ref().and_then(|u| u.xOpen) else {
        return ffi::SQLITE_ERROR;
    };
    if flags & (ffi::SQLITE_OPEN_MAIN_DB | ffi::SQLITE_OPEN_WAL) == 0 {
        // Neither: `unix`'s file in place, its methods called directly.
        return unix_open(unix, name, file, flags, out_flags);
    }
    let rc = unix_open(unix, name, inner(file), flags, out_flags);
    if rc != ffi::SQLITE_OK {
        (*file).pMethods = ptr::null();
        return rc;
    }
    if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
        addr_of_mut!((*file.cast::<MainFile>()).log).write(ptr::null_mut());
        (*file).pMethods = &MAIN_METHODS;
        return ffi::SQLITE_OK;
    }
    let log = file.cast::<LogFile>();
    let db = ffi::sqlite3_database_file_object(name);
    // Gathered only beside a database file of ours (for the hooks), and only where
    // a write never disturbs bytes beside it (without that, SQLite pads a commit and
    // writes its last frame's tail after the sync).
    let ours = !db.is_null() && ptr::eq((*db).pMethods, &MAIN_METHODS);
    let main = match ours && device_characteristics(db) & ffi::SQLITE_IOCAP_POWERSAFE_OVERWRITE != 0
    {
        true => db.cast::<MainFile>(),
        false => ptr::null_mut(),
    };
    addr_of_mut!((*log).main).write(main);
    addr_of_mut!((*log).gathered).write(Gathered::default());
    if !main.is_null() {
        (*main).log = log;
    }
    (*file).pMethods = &LOG_METHODS;
    ffi::SQLITE_OK
}

/// Consecutive writes not yet made: `bytes` belong at `start` in the file.
#[derive(Default)]
struct Gathered {
    start: i64,
    bytes: Vec<u8>,
}

impl Gathered {
    fn end(&self) -> i64 {
        self.start + self.bytes.len() as i64
    }

    /// Takes a write: into the buffer when it continues or lies within what is
    /// gathered, else after writing what is gathered (`through` writes to the file).
    fn write(
        &mut self,
        data: &[u8],
        offset: i64,
        mut through: impl FnMut(&[u8], i64) -> c_int,
    ) -> c_int {
        let len = data.len() as i64;
        if !self.bytes.is_empty() {
            if offset >= self.start && offset + len <= self.end() {
                let at = (offset - self.start) as usize;
                self.bytes[at..at + data.len()].copy_from_slice(data);
                return ffi::SQLITE_OK;
            }
            if offset == self.end() && self.bytes.len() + data.len() <= GATHER_BYTES {
                self.bytes.extend_from_slice(data);
                return ffi::SQLITE_OK;
            }
        }
        let rc = self.flush(&mut through);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        if data.len() >= GATHER_BYTES {
            return through(data, offset);
        }
        if self.bytes.capacity() == 0 {
            self.bytes.reserve_exact(GATHER_BYTES);
        }
        self.start = offset;
        self.bytes.extend_from_slice(data);
        ffi::SQLITE_OK
    }

    /// Writes what is gathered. On failure it stays gathered, to be written by the
    /// next flush — SQLite counts those frames as written — and the call fails with
    /// `SQLITE_IOERR_WRITE`, an error that rolls the whole transaction back (a
    /// `SQLITE_FULL` would undo only the statement, and the transaction could commit
    /// over frames never written).
    fn flush(&mut self, mut through: impl FnMut(&[u8], i64) -> c_int) -> c_int {
        if self.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        match through(&self.bytes, self.start) {
            ffi::SQLITE_OK => {
                self.bytes.clear();
                ffi::SQLITE_OK
            }
            _ => ffi::SQLITE_IOERR_WRITE,
        }
    }

    /// Forgets what is gathered: frames of a transaction that will never commit.
    fn discard(&mut self) {
        self.bytes.clear();
    }
}

unsafe fn write_through(inner: *mut ffi::sqlite3_file, data: &[u8], offset: i64) -> c_int {
    let Ok(len) = c_int::try_from(data.len()) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    match (*(*inner).pMethods).xWrite {
        Some(write) => write(inner, data.as_ptr().cast(), len, offset),
        None => ffi::SQLITE_IOERR_WRITE,
    }
}

/// The inner file's method `$m`, called with `$args` as it is.
macro_rules! forwarded {
    ($file:ident, $m:ident, $missing:expr $(, $arg:expr)*) => {{
        let inner = inner($file);
        match (*(*inner).pMethods).$m {
            Some(method) => method(inner $(, $arg)*),
            None => $missing,
        }
    }};
}

/// Defines `$name`, an io method that calls the inner file's `$m` (`$missing` when it
/// has none) — after `$before(file)` when given, whose error it returns.
macro_rules! io_method {
    ($name:ident, $m:ident, $missing:expr, ($($arg:ident: $ty:ty),*) $(, $before:ident)?) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            $(
                let rc = $before(file.cast());
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
            )?
            forwarded!(file, $m, $missing $(, $arg)*)
        }
    };
}

/// Writes what `log` gathered.
unsafe fn flush(log: *mut LogFile) -> c_int {
    let inner = inner(log.cast());
    (*log)
        .gathered
        .flush(|data, at| write_through(inner, data, at))
}

/// The end of a write transaction on `log`: committed frames were written by the
/// commit's sync, so what is left belongs to a transaction that rolled back. It is
/// written as SQLite would have written it at once — before anyone else may write the
/// log — or, failing that, forgotten.
unsafe fn release(log: *mut LogFile) {
    if !log.is_null() && flush(log) != ffi::SQLITE_OK {
        (*log).gathered.discard();
    }
}

// The log's methods.

unsafe extern "C" fn log_close(file: *mut ffi::sqlite3_file) -> c_int {
    let log = file.cast::<LogFile>();
    let flushed = flush(log);
    if !(*log).main.is_null() {
        (*(*log).main).log = ptr::null_mut();
    }
    ptr::drop_in_place(addr_of_mut!((*log).gathered));
    let closed = forwarded!(file, xClose, ffi::SQLITE_OK);
    (*file).pMethods = ptr::null();
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

unsafe extern "C" fn log_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let log = file.cast::<LogFile>();
    let inner = inner(file);
    let Ok(len) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let data = std::slice::from_raw_parts(buf.cast::<u8>(), len);
    if (*log).main.is_null() {
        // Not gathered (any longer): what was, first.
        let rc = flush(log);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        return write_through(inner, data, offset);
    }
    (*log)
        .gathered
        .write(data, offset, |data, at| write_through(inner, data, at))
}

io_method!(log_read, xRead, ffi::SQLITE_IOERR_READ, (buf: *mut c_void, amount: c_int, offset: i64), flush);
io_method!(log_truncate, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, (size: i64), flush);
io_method!(log_sync, xSync, ffi::SQLITE_IOERR_FSYNC, (flags: c_int), flush);
io_method!(log_file_size, xFileSize, ffi::SQLITE_IOERR_FSTAT, (size: *mut i64), flush);
io_method!(log_file_control, xFileControl, ffi::SQLITE_NOTFOUND, (op: c_int, arg: *mut c_void), flush);
io_method!(log_fetch, xFetch, no_fetch(out), (offset: i64, amount: c_int, out: *mut *mut c_void), flush);

static LOG_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(log_close),
    xRead: Some(log_read),
    xWrite: Some(log_write),
    xTruncate: Some(log_truncate),
    xSync: Some(log_sync),
    xFileSize: Some(log_file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(log_file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(log_fetch),
    xUnfetch: Some(unfetch),
};

// The main database file's methods: `unix`'s, but for the log's link and the ends of
// write transactions.

unsafe extern "C" fn main_close(file: *mut ffi::sqlite3_file) -> c_int {
    let main = file.cast::<MainFile>();
    if !(*main).log.is_null() {
        (*(*main).log).main = ptr::null_mut();
    }
    let closed = forwarded!(file, xClose, ffi::SQLITE_OK);
    (*file).pMethods = ptr::null();
    closed
}

unsafe extern "C" fn main_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    if offset == WAL_WRITE_LOCK && flags == ffi::SQLITE_SHM_UNLOCK | ffi::SQLITE_SHM_EXCLUSIVE {
        release((*file.cast::<MainFile>()).log);
    }
    forwarded!(file, xShmLock, ffi::SQLITE_IOERR_SHMLOCK, offset, n, flags)
}

unsafe extern "C" fn main_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // In `locking_mode=EXCLUSIVE` the log's locks are not taken in shared memory; the
    // database file's lock is what others wait for.
    release((*file.cast::<MainFile>()).log);
    forwarded!(file, xUnlock, ffi::SQLITE_OK, level)
}

unsafe extern "C" fn main_shm_barrier(file: *mut ffi::sqlite3_file) {
    // SQLite writes the log's shared header between two barriers, and readers take it
    // only once both copies agree: whatever is gathered is in the file before any
    // reader can see the frames. (With `synchronous=FULL` the commit's sync has
    // written them already; this is for a connection run with less.)
    let log = (*file.cast::<MainFile>()).log;
    if !log.is_null() {
        let _ = flush(log);
    }
    forwarded!(file, xShmBarrier, ())
}

static MAIN_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(main_close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(main_unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(main_shm_lock),
    xShmBarrier: Some(main_shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

// Methods both files forward as they are.

io_method!(read, xRead, ffi::SQLITE_IOERR_READ, (buf: *mut c_void, amount: c_int, offset: i64));
io_method!(write, xWrite, ffi::SQLITE_IOERR_WRITE, (buf: *const c_void, amount: c_int, offset: i64));
io_method!(truncate, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, (size: i64));
io_method!(sync, xSync, ffi::SQLITE_IOERR_FSYNC, (flags: c_int));
io_method!(file_size, xFileSize, ffi::SQLITE_IOERR_FSTAT, (size: *mut i64));
io_method!(lock, xLock, ffi::SQLITE_OK, (level: c_int));
io_method!(unlock, xUnlock, ffi::SQLITE_OK, (level: c_int));
io_method!(check_reserved_lock, xCheckReservedLock, ffi::SQLITE_OK, (out: *mut c_int));
io_method!(file_control, xFileControl, ffi::SQLITE_NOTFOUND, (op: c_int, arg: *mut c_void));
io_method!(sector_size, xSectorSize, 4096, ());
io_method!(device_characteristics, xDeviceCharacteristics, 0, ());
io_method!(shm_map, xShmMap, ffi::SQLITE_IOERR_SHMMAP, (region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void));
io_method!(shm_lock, xShmLock, ffi::SQLITE_IOERR_SHMLOCK, (offset: c_int, n: c_int, flags: c_int));
io_method!(shm_unmap, xShmUnmap, ffi::SQLITE_OK, (delete: c_int));
io_method!(fetch, xFetch, no_fetch(out), (offset: i64, amount: c_int, out: *mut *mut c_void));
io_method!(unfetch, xUnfetch, ffi::SQLITE_OK, (offset: i64, page: *mut c_void));

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    forwarded!(file, xShmBarrier, ())
}

/// "No memory map here": SQLite then reads the page.
unsafe fn no_fetch(out: *mut *mut c_void) -> c_int {
    *out = ptr::null_mut();
    ffi::SQLITE_OK
}

#[cfg(test)]
mod tests {
    use rusqlite::{params, Connection, OpenFlags};

    use super::*;

    /// A file as a byte vector: what `through` leaves there.
    fn put(file: &mut Vec<u8>, data: &[u8], at: i64) -> c_int {
        let at = at as usize;
        if file.len() < at + data.len() {
            file.resize(at + data.len(), 0);
        }
        file[at..at + data.len()].copy_from_slice(data);
        ffi::SQLITE_OK
    }

    /// A small deterministic generator (xorshift), so the sequences are reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, below: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % below
        }
    }

    #[test]
    fn gathered_writes_leave_the_file_as_direct_writes_do() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..50 {
            let (mut direct, mut file) = (Vec::new(), Vec::new());
            let mut gathered = Gathered::default();
            let mut at = 0i64;
            let mut calls = 0;
            for step in 0..200u32 {
                let len = match rng.next(8) {
                    0..=2 => 24,
                    3..=5 => 4096,
                    6 => 1 + rng.next(200) as usize,
                    _ => GATHER_BYTES + rng.next(9000) as usize,
                };
                // Mostly appends, as a log is written; sometimes a frame rewritten in
                // place, or a jump back to the start (a restart) or ahead.
                at = match rng.next(10) {
                    0 => rng.next(at.max(1) as u64) as i64,
                    1 => 0,
                    2 => at + rng.next(5000) as i64,
                    _ => at,
                };
                let data = vec![(step % 251) as u8 + 1; len];
                put(&mut direct, &data, at);
                let rc = gathered.write(&data, at, |d, o| {
                    calls += 1;
                    put(&mut file, d, o)
                });
                assert_eq!(rc, ffi::SQLITE_OK);
                at += len as i64;
                if rng.next(40) == 0 {
                    gathered.flush(|d, o| put(&mut file, d, o));
                    assert_eq!(file, direct, "after a flush at step {step}");
                }
            }
            gathered.flush(|d, o| put(&mut file, d, o));
            assert_eq!(file, direct);
            assert!(calls < 200, "{calls} writes for 200");
        }
    }

    #[test]
    fn consecutive_frames_become_one_write_per_buffer() {
        let mut gathered = Gathered::default();
        let mut writes = Vec::new();
        let frame = [7u8; 4096];
        let mut at = 32i64;
        for _ in 0..90 {
            gathered.write(&frame[..24], at, |d, o| {
                writes.push((o, d.len()));
                ffi::SQLITE_OK
            });
            gathered.write(&frame, at + 24, |d, o| {
                writes.push((o, d.len()));
                ffi::SQLITE_OK
            });
            at += 4120;
        }
        gathered.flush(|d, o| {
            writes.push((o, d.len()));
            ffi::SQLITE_OK
        });
        // 180 calls of SQLite, 3 writes (30 frames each) of at most GATHER_BYTES.
        assert_eq!(writes.len(), 3, "{writes:?}");
        assert!(writes.iter().all(|(_, len)| *len <= GATHER_BYTES));
        assert_eq!(writes[0].0, 32);
        assert_eq!(writes.iter().map(|(_, len)| len).sum::<usize>(), 90 * 4120);
    }

    #[test]
    fn a_failed_write_fails_the_call_as_an_io_error_and_is_tried_again() {
        let mut gathered = Gathered::default();
        let mut file = Vec::new();
        gathered.write(b"first", 0, |d, o| put(&mut file, d, o));
        // A full disk fails the call as an I/O error, which rolls the transaction back.
        let rc = gathered.flush(|_, _| ffi::SQLITE_FULL);
        assert_eq!(rc, ffi::SQLITE_IOERR_WRITE);
        let rc = gathered.write(b"second", 100, |_, _| ffi::SQLITE_FULL);
        assert_eq!(rc, ffi::SQLITE_IOERR_WRITE);
        // The next flush writes the frames SQLite counts as written.
        gathered.write(b"second", 100, |d, o| put(&mut file, d, o));
        gathered.flush(|d, o| put(&mut file, d, o));
        assert_eq!(&file[..5], b"first");
        assert_eq!(&file[100..], b"second");
        // What is discarded is never written.
        gathered.write(b"third", 200, |d, o| put(&mut file, d, o));
        gathered.discard();
        gathered.flush(|d, o| put(&mut file, d, o));
        assert_eq!(file.len(), 106);
    }

    fn writer(path: &std::path::Path) -> Connection {
        assert!(registered(), "the VFS registers on Linux");
        let conn = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), VFS_NAME)
            .expect("open through the VFS");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("wal");
        conn.pragma_update(None, "synchronous", "FULL")
            .expect("full");
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .expect("no autocheckpoint");
        conn
    }

    /// A fresh database in a directory of its own, with table `t`, written through the VFS.
    fn table() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let conn = writer(&path);
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
            .expect("table");
        (dir, path, conn)
    }

    fn assert_intact(reader: &Connection) {
        let check: String = reader
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("check");
        assert_eq!(check, "ok");
    }

    /// Count and byte sum of the table, as another connection sees them.
    fn seen(reader: &Connection) -> (i64, i64) {
        reader
            .query_row(
                "SELECT count(*), coalesce(sum(length(v)), 0) FROM t",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("read")
    }

    fn fill(conn: &mut Connection, from: i64, rows: i64) {
        let tx = conn.transaction().expect("begin");
        {
            let mut insert = tx
                .prepare("INSERT INTO t (k, v) VALUES (?1, randomblob(1500 + ?1 % 700))")
                .expect("prepare");
            for k in from..from + rows {
                insert.execute(params![k]).expect("insert");
            }
        }
        tx.commit().expect("commit");
    }

    fn expected(rows: i64) -> (i64, i64) {
        (rows, (0..rows).map(|k| 1500 + k % 700).sum())
    }

    #[test]
    fn every_commit_is_read_by_other_connections_and_survives_reopening() {
        let (_dir, path, mut conn) = table();
        let reader = Connection::open(&path).expect("reader");
        let mut rows = 0;
        for round in 0..12 {
            // A few pages, then a commit of hundreds of frames (many buffers).
            let n = if round % 3 == 0 { 3 } else { 400 };
            fill(&mut conn, rows, n);
            rows += n;
            assert_eq!(seen(&reader), expected(rows), "after commit {round}");
            if round == 5 {
                // The log restarts: its header is rewritten at the start of the file.
                let busy: i64 = conn
                    .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get(0))
                    .expect("restart");
                assert_eq!(busy, 0);
            }
        }
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        })
        .expect("truncate");
        fill(&mut conn, rows, 50);
        rows += 50;
        assert_eq!(seen(&reader), expected(rows));
        assert_intact(&reader);
        drop(reader);
        // Closed without a checkpoint of the last commits: they are read from the log.
        std::mem::forget(conn);
        let again = Connection::open(&path).expect("reopen");
        assert_eq!(seen(&again), expected(rows));
    }

    #[test]
    fn a_transaction_larger_than_the_cache_reads_back_its_spilled_pages() {
        let (_dir, path, mut conn) = table();
        // A cache of 20 pages: the transaction's pages go to the log before its
        // commit, are read back from it, and rewritten in place.
        conn.pragma_update(None, "cache_size", 20).expect("cache");
        let tx = conn.transaction().expect("begin");
        for i in 0..3000i64 {
            // Keys all over the table: pages spilled long ago are wanted again.
            let k = i * 7919 % 3000;
            tx.execute(
                "INSERT INTO t (k, v) VALUES (?1, randomblob(1500 + ?1 % 700))",
                params![k],
            )
            .expect("insert");
            if i % 500 == 499 {
                tx.execute("UPDATE t SET v = randomblob(length(v)) WHERE k % 7 = 0", [])
                    .expect("update");
            }
        }
        tx.commit().expect("commit");
        let reader = Connection::open(&path).expect("reader");
        assert_eq!(seen(&reader), expected(3000));
        assert_intact(&reader);
    }

    #[test]
    fn frames_of_a_rolled_back_transaction_never_land_over_a_later_commit() {
        let (_dir, path, mut conn) = table();
        conn.pragma_update(None, "cache_size", 20).expect("cache");
        // Spills frames into the log (the last of them still gathered), then rolls back.
        {
            let tx = conn.transaction().expect("begin");
            tx.execute(
                "WITH RECURSIVE s (k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM s WHERE k < 300) \
                 INSERT INTO t (k, v) SELECT k, randomblob(1800) FROM s",
                [],
            )
            .expect("insert");
            tx.rollback().expect("rollback");
        }
        // Another writer (an `import` beside the server) commits over the same part of
        // the log, then the first connection reads.
        let mut other = Connection::open(&path).expect("other writer");
        fill(&mut other, 0, 600);
        let (count, _) = seen(&conn);
        assert_eq!(count, 600);
        let reader = Connection::open(&path).expect("reader");
        assert_eq!(seen(&reader), expected(600));
        assert_intact(&reader);
    }
}
