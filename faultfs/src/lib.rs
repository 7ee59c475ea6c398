//! Disk faults for one ZooKeeper JVM, without root: loaded with `LD_PRELOAD`, this library wraps `fsync`,
//! `fdatasync`, `write`, `pwrite`, `pwrite64` and `writev`. While a fault is on, a call on a file under one of
//! the directories in `ZKDEV_FAULTFS_PATHS` (colon-separated: the node's data and data-log directories) is
//! delayed (`slow-fsync MS`) or fails with ENOSPC (`full`) or EIO (`eio`). Every other file (the JVM's logs,
//! sockets) is untouched.
//!
//! The fault is switched at run time through the control file named by `ZKDEV_FAULTFS_CONTROL`, which the
//! supervisor replaces atomically. Its one line is `none`, `slow-fsync MS`, `full` or `eio`. The file is
//! looked at (one `stat`) at most every `CHECK_EVERY_MS`, so a call costs a clock read when no fault is on.
//!
//! With `ZKDEV_FAULTFS_UNDO` set, it also keeps, per file, what has not reached "disk" yet (see `undo`), for
//! a power cut; for that it wraps every call that changes a file's bytes or length (`pwritev`, `ftruncate`,
//! `truncate`, `fallocate`, `copy_file_range`, `sendfile`, an `open` with O_TRUNC...), `rename` and `unlink`
//! (the record follows the file), `sync`/`syncfs` (everything is on disk), and `close`/`dup2`/`dup3` (which
//! end what a descriptor was). Writes through a shared memory mapping are not seen (see the book's
//! disk-faults page: ZooKeeper makes none).
//!
//! Nothing here may panic or allocate on the hot path: these functions run inside every JVM thread that writes.

mod undo;

use std::ffi::{c_int, c_void, CStr};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use libc::{iovec, off_t, size_t, ssize_t};

/// How often the control file is looked at, at most.
const CHECK_EVERY_MS: i64 = 25;

const NONE: u32 = 0;
const SLOW_FSYNC: u32 = 1;
const FULL: u32 = 2;
const EIO: u32 = 3;

static MODE: AtomicU32 = AtomicU32::new(NONE);
static SLOW_MS: AtomicU32 = AtomicU32::new(0);
static NEXT_CHECK_MS: AtomicI64 = AtomicI64::new(0);
/// The control file's identity when last read (inode and mtime mixed): a rename or a rewrite changes it.
static SEEN: AtomicU64 = AtomicU64::new(0);
static RELOAD: Mutex<()> = Mutex::new(());

struct Config {
    control: Option<std::ffi::CString>,
    prefixes: Vec<Vec<u8>>,
    /// Where the undo records go (the node's `power` directory); None: no accounting.
    undo_dir: Option<Vec<u8>>,
}

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| Config {
        control: std::env::var_os("ZKDEV_FAULTFS_CONTROL").and_then(|p| std::ffi::CString::new(p.as_bytes()).ok()),
        prefixes: std::env::var("ZKDEV_FAULTFS_PATHS")
            .unwrap_or_default()
            .split(':')
            .filter(|p| !p.is_empty())
            .map(|p| p.trim_end_matches('/').as_bytes().to_vec())
            .collect(),
        undo_dir: std::env::var("ZKDEV_FAULTFS_UNDO")
            .ok()
            .map(|d| d.trim_end_matches('/').as_bytes().to_vec())
            .filter(|d| !d.is_empty()),
    })
}

/// Read the environment when the library is loaded, before any JVM thread writes: the hot path never
/// allocates to build it.
#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;

extern "C" fn init() {
    let _ = config();
}

fn now_ms() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// The fault in force now, re-reading the control file when it may have changed.
fn mode() -> u32 {
    let now = now_ms();
    if now >= NEXT_CHECK_MS.load(Ordering::Relaxed) {
        // One thread reloads; the others go on with what is known.
        if let Ok(_g) = RELOAD.try_lock() {
            NEXT_CHECK_MS.store(now + CHECK_EVERY_MS, Ordering::Relaxed);
            reload();
        }
    }
    MODE.load(Ordering::Relaxed)
}

fn reload() {
    let Some(control) = config().control.as_ref() else {
        return;
    };
    // SAFETY: an all-zero stat is a valid value to be filled; control is a NUL-terminated path.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::stat(control.as_ptr(), &mut st) } != 0 {
        MODE.store(NONE, Ordering::Relaxed);
        SEEN.store(0, Ordering::Relaxed);
        return;
    }
    let identity = (st.st_ino as u64) ^ ((st.st_mtime as u64) << 32) ^ (st.st_mtime_nsec as u64) ^ (st.st_size as u64);
    if identity == SEEN.swap(identity, Ordering::Relaxed) {
        return;
    }
    // Read with plain syscalls into the stack: no allocation inside a JVM thread's write.
    let mut buf = [0u8; 64];
    // SAFETY: control is a NUL-terminated path; buf is writable for its length; fd is closed once.
    let n = unsafe {
        let fd = libc::open(control.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            -1
        } else {
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            libc::close(fd);
            n
        }
    };
    let text = if n > 0 {
        std::str::from_utf8(&buf[..n as usize]).unwrap_or("")
    } else {
        ""
    };
    let (mode, ms) = parse(text);
    SLOW_MS.store(ms, Ordering::Relaxed);
    MODE.store(mode, Ordering::Relaxed);
}

/// `none`, `slow-fsync MS`, `full`, `eio`; anything else is no fault.
fn parse(text: &str) -> (u32, u32) {
    let mut words = text.split_whitespace();
    match (words.next(), words.next().and_then(|w| w.parse::<u32>().ok())) {
        (Some("slow-fsync"), Some(ms)) => (SLOW_FSYNC, ms),
        (Some("full"), _) => (FULL, 0),
        (Some("eio"), _) => (EIO, 0),
        _ => (NONE, 0),
    }
}

/// Is `fd` a file under one of the node's data directories? Asked only while a fault is on.
fn is_ours(fd: c_int) -> bool {
    let prefixes = &config().prefixes;
    if prefixes.is_empty() || fd < 0 {
        return false;
    }
    let mut link = [0u8; 64];
    let mut target = [0u8; 4096];
    let name = format_fd_path(&mut link, fd);
    // SAFETY: name is NUL-terminated inside `link`; target is a writable buffer of the given length.
    let n = unsafe { libc::readlink(name.as_ptr(), target.as_mut_ptr().cast(), target.len()) };
    if n <= 0 {
        return false;
    }
    let path = &target[..n as usize];
    prefixes
        .iter()
        .any(|p| path.starts_with(p) && (path.len() == p.len() || path[p.len()] == b'/'))
}

/// `/proc/self/fd/N` into `buf`, NUL-terminated, without allocating.
fn format_fd_path(buf: &mut [u8; 64], fd: c_int) -> &CStr {
    const HEAD: &[u8] = b"/proc/self/fd/";
    buf[..HEAD.len()].copy_from_slice(HEAD);
    let mut digits = [0u8; 12];
    let mut n = fd as u32;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[HEAD.len() + i] = digits[len - 1 - i];
    }
    buf[HEAD.len() + len] = 0;
    CStr::from_bytes_until_nul(&buf[..]).unwrap_or(c"/proc/self/fd/-1")
}

/// The fault that applies to this call on `fd`: one of `kinds` (the faults this call can suffer) when it is
/// on and `fd` is one of the node's files, else NONE. The path is resolved only in that case.
fn fault_for(fd: c_int, kinds: &[u32]) -> u32 {
    match mode() {
        m if kinds.contains(&m) && is_ours(fd) => m,
        _ => NONE,
    }
}

fn set_errno(code: c_int) {
    // SAFETY: __errno_location returns this thread's errno.
    unsafe { *libc::__errno_location() = code };
}

/// The next definition of `name` after this library (libc's), looked up once.
fn next(cache: &AtomicUsize, name: &CStr) -> usize {
    let p = cache.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: RTLD_NEXT with a NUL-terminated symbol name.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
    cache.store(p, Ordering::Relaxed);
    p
}

/// Call libc's `$name` (of type `$ty`) with the arguments; when the loader finds none (it always should),
/// fail the call with ENOSYS rather than jump to address 0.
macro_rules! call_real {
    ($name:literal, $ty:ty, $($arg:expr),*) => {{
        static CACHE: AtomicUsize = AtomicUsize::new(0);
        match next(&CACHE, $name) {
            0 => {
                set_errno(libc::ENOSYS);
                -1
            }
            p => {
                // SAFETY: the symbol named is libc's function of exactly this type.
                let f = unsafe { std::mem::transmute::<usize, $ty>(p) };
                f($($arg),*)
            }
        }
    }};
}

/// A failing write: nothing is written, as on a disk with no space left (or a failing one).
fn write_fault(fd: c_int) -> Option<ssize_t> {
    match fault_for(fd, &[FULL, EIO]) {
        FULL => {
            set_errno(libc::ENOSPC);
            Some(-1)
        }
        EIO => {
            set_errno(libc::EIO);
            Some(-1)
        }
        _ => None,
    }
}

/// Before a sync: the delay of a slow disk, or the error of a failing one.
fn sync_fault(fd: c_int) -> Option<c_int> {
    match fault_for(fd, &[SLOW_FSYNC, EIO]) {
        SLOW_FSYNC => {
            slow_sync();
            None
        }
        EIO => {
            set_errno(libc::EIO);
            Some(-1)
        }
        _ => None,
    }
}

/// The delay of a slow disk, slept in slices of at most `CHECK_EVERY_MS`: a heal (or a shorter delay) set
/// meanwhile ends it within a slice, instead of a sync already under way sleeping out the old delay.
fn slow_sync() {
    let start = now_ms();
    loop {
        if mode() != SLOW_FSYNC {
            return;
        }
        let left = i64::from(SLOW_MS.load(Ordering::Relaxed)) - (now_ms() - start);
        if left <= 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(left.min(CHECK_EVERY_MS) as u64));
    }
}

/// # Safety
/// As libc's `fsync`.
#[no_mangle]
pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
    if let Some(r) = sync_fault(fd) {
        return r;
    }
    let r = call_real!(c"fsync", extern "C" fn(c_int) -> c_int, fd);
    if r == 0 {
        undo::synced(fd);
    }
    r
}

/// # Safety
/// As libc's `fdatasync`.
#[no_mangle]
pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
    if let Some(r) = sync_fault(fd) {
        return r;
    }
    let r = call_real!(c"fdatasync", extern "C" fn(c_int) -> c_int, fd);
    if r == 0 {
        undo::synced(fd);
    }
    r
}

/// # Safety
/// As libc's `write`.
#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t {
    if let Some(r) = write_fault(fd) {
        return r;
    }
    undo::before_change(fd, None, count as u64);
    call_real!(
        c"write",
        unsafe extern "C" fn(c_int, *const c_void, size_t) -> ssize_t,
        fd,
        buf,
        count
    )
}

/// # Safety
/// As libc's `pwrite`.
#[no_mangle]
pub unsafe extern "C" fn pwrite(fd: c_int, buf: *const c_void, count: size_t, offset: off_t) -> ssize_t {
    if let Some(r) = write_fault(fd) {
        return r;
    }
    undo::before_change(fd, Some(offset), count as u64);
    call_real!(
        c"pwrite",
        unsafe extern "C" fn(c_int, *const c_void, size_t, off_t) -> ssize_t,
        fd,
        buf,
        count,
        offset
    )
}

/// # Safety
/// As libc's `pwrite64`.
#[no_mangle]
pub unsafe extern "C" fn pwrite64(fd: c_int, buf: *const c_void, count: size_t, offset: off_t) -> ssize_t {
    if let Some(r) = write_fault(fd) {
        return r;
    }
    undo::before_change(fd, Some(offset), count as u64);
    call_real!(
        c"pwrite64",
        unsafe extern "C" fn(c_int, *const c_void, size_t, off_t) -> ssize_t,
        fd,
        buf,
        count,
        offset
    )
}

/// # Safety
/// As libc's `writev`.
#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    if let Some(r) = write_fault(fd) {
        return r;
    }
    undo::before_change(fd, None, iov_len(iov, iovcnt));
    call_real!(
        c"writev",
        unsafe extern "C" fn(c_int, *const iovec, c_int) -> ssize_t,
        fd,
        iov,
        iovcnt
    )
}

/// The bytes an iovec array carries.
fn iov_len(iov: *const iovec, n: c_int) -> u64 {
    if iov.is_null() || n <= 0 {
        return 0;
    }
    // SAFETY: the caller passes `n` iovecs at `iov`, as for the call being wrapped.
    let all = unsafe { std::slice::from_raw_parts(iov, n as usize) };
    all.iter().map(|v| v.iov_len as u64).sum()
}

/// libc's own close (for the records this library opens).
fn real_close(fd: c_int) -> c_int {
    call_real!(c"close", extern "C" fn(c_int) -> c_int, fd)
}

/// libc's own writev (for the records).
///
/// # Safety
/// As libc's `writev`.
unsafe fn real_writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    call_real!(
        c"writev",
        unsafe extern "C" fn(c_int, *const iovec, c_int) -> ssize_t,
        fd,
        iov,
        n
    )
}

/// # Safety
/// As libc's `pwritev`.
#[no_mangle]
pub unsafe extern "C" fn pwritev(fd: c_int, iov: *const iovec, iovcnt: c_int, offset: off_t) -> ssize_t {
    if let Some(r) = write_fault(fd) {
        return r;
    }
    undo::before_change(fd, Some(offset), iov_len(iov, iovcnt));
    call_real!(
        c"pwritev",
        unsafe extern "C" fn(c_int, *const iovec, c_int, off_t) -> ssize_t,
        fd,
        iov,
        iovcnt,
        offset
    )
}

/// # Safety
/// As libc's `pwritev64`.
#[no_mangle]
pub unsafe extern "C" fn pwritev64(fd: c_int, iov: *const iovec, iovcnt: c_int, offset: off_t) -> ssize_t {
    if let Some(r) = write_fault(fd) {
        return r;
    }
    undo::before_change(fd, Some(offset), iov_len(iov, iovcnt));
    call_real!(
        c"pwritev64",
        unsafe extern "C" fn(c_int, *const iovec, c_int, off_t) -> ssize_t,
        fd,
        iov,
        iovcnt,
        offset
    )
}

/// # Safety
/// As libc's `pwritev2` (offset -1: at the current position).
#[no_mangle]
pub unsafe extern "C" fn pwritev2(fd: c_int, iov: *const iovec, iovcnt: c_int, offset: off_t, flags: c_int) -> ssize_t {
    if let Some(r) = write_fault(fd) {
        return r;
    }
    undo::before_change(fd, (offset >= 0).then_some(offset), iov_len(iov, iovcnt));
    call_real!(
        c"pwritev2",
        unsafe extern "C" fn(c_int, *const iovec, c_int, off_t, c_int) -> ssize_t,
        fd,
        iov,
        iovcnt,
        offset,
        flags
    )
}

/// # Safety
/// As libc's `pwritev64v2` (what `pwritev2` is in a program built with 64-bit file offsets, as Python is).
#[no_mangle]
pub unsafe extern "C" fn pwritev64v2(
    fd: c_int,
    iov: *const iovec,
    iovcnt: c_int,
    offset: off_t,
    flags: c_int,
) -> ssize_t {
    if let Some(r) = write_fault(fd) {
        return r;
    }
    undo::before_change(fd, (offset >= 0).then_some(offset), iov_len(iov, iovcnt));
    call_real!(
        c"pwritev64v2",
        unsafe extern "C" fn(c_int, *const iovec, c_int, off_t, c_int) -> ssize_t,
        fd,
        iov,
        iovcnt,
        offset,
        flags
    )
}

/// # Safety
/// As libc's `ftruncate`.
#[no_mangle]
pub unsafe extern "C" fn ftruncate(fd: c_int, len: off_t) -> c_int {
    if let Some(r) = write_fault(fd) {
        return r as c_int;
    }
    undo::before_truncate(fd, len);
    call_real!(c"ftruncate", extern "C" fn(c_int, off_t) -> c_int, fd, len)
}

/// # Safety
/// As libc's `ftruncate64`.
#[no_mangle]
pub unsafe extern "C" fn ftruncate64(fd: c_int, len: off_t) -> c_int {
    if let Some(r) = write_fault(fd) {
        return r as c_int;
    }
    undo::before_truncate(fd, len);
    call_real!(c"ftruncate64", extern "C" fn(c_int, off_t) -> c_int, fd, len)
}

/// # Safety
/// As libc's `fallocate`.
#[no_mangle]
pub unsafe extern "C" fn fallocate(fd: c_int, mode: c_int, offset: off_t, len: off_t) -> c_int {
    if let Some(r) = write_fault(fd) {
        return r as c_int;
    }
    undo::before_change(fd, Some(offset), len.max(0) as u64);
    call_real!(
        c"fallocate",
        extern "C" fn(c_int, c_int, off_t, off_t) -> c_int,
        fd,
        mode,
        offset,
        len
    )
}

/// # Safety
/// As libc's `fallocate64`.
#[no_mangle]
pub unsafe extern "C" fn fallocate64(fd: c_int, mode: c_int, offset: off_t, len: off_t) -> c_int {
    if let Some(r) = write_fault(fd) {
        return r as c_int;
    }
    undo::before_change(fd, Some(offset), len.max(0) as u64);
    call_real!(
        c"fallocate64",
        extern "C" fn(c_int, c_int, off_t, off_t) -> c_int,
        fd,
        mode,
        offset,
        len
    )
}

/// # Safety
/// As libc's `posix_fallocate` (returns the error number rather than setting errno).
#[no_mangle]
pub unsafe extern "C" fn posix_fallocate(fd: c_int, offset: off_t, len: off_t) -> c_int {
    undo::before_change(fd, Some(offset), len.max(0) as u64);
    call_real!(
        c"posix_fallocate",
        extern "C" fn(c_int, off_t, off_t) -> c_int,
        fd,
        offset,
        len
    )
}

/// # Safety
/// As libc's `posix_fallocate64`.
#[no_mangle]
pub unsafe extern "C" fn posix_fallocate64(fd: c_int, offset: off_t, len: off_t) -> c_int {
    undo::before_change(fd, Some(offset), len.max(0) as u64);
    call_real!(
        c"posix_fallocate64",
        extern "C" fn(c_int, off_t, off_t) -> c_int,
        fd,
        offset,
        len
    )
}

/// # Safety
/// As libc's `rename`.
#[no_mangle]
pub unsafe extern "C" fn rename(from: *const libc::c_char, to: *const libc::c_char) -> c_int {
    let r = call_real!(
        c"rename",
        unsafe extern "C" fn(*const libc::c_char, *const libc::c_char) -> c_int,
        from,
        to
    );
    if r == 0 {
        undo::renamed(libc::AT_FDCWD, from, libc::AT_FDCWD, to);
    }
    r
}

/// # Safety
/// As libc's `renameat`.
#[no_mangle]
pub unsafe extern "C" fn renameat(
    olddir: c_int,
    from: *const libc::c_char,
    newdir: c_int,
    to: *const libc::c_char,
) -> c_int {
    let r = call_real!(
        c"renameat",
        unsafe extern "C" fn(c_int, *const libc::c_char, c_int, *const libc::c_char) -> c_int,
        olddir,
        from,
        newdir,
        to
    );
    if r == 0 {
        undo::renamed(olddir, from, newdir, to);
    }
    r
}

/// # Safety
/// As libc's `renameat2`.
#[no_mangle]
pub unsafe extern "C" fn renameat2(
    olddir: c_int,
    from: *const libc::c_char,
    newdir: c_int,
    to: *const libc::c_char,
    flags: libc::c_uint,
) -> c_int {
    let r = call_real!(
        c"renameat2",
        unsafe extern "C" fn(c_int, *const libc::c_char, c_int, *const libc::c_char, libc::c_uint) -> c_int,
        olddir,
        from,
        newdir,
        to,
        flags
    );
    if r == 0 {
        undo::renamed(olddir, from, newdir, to);
    }
    r
}

/// # Safety
/// As libc's `close`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if undo::on() {
        undo::forget(fd);
    }
    real_close(fd)
}

/// # Safety
/// As libc's `dup2`.
#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if undo::on() && old != new {
        undo::forget(new);
    }
    call_real!(c"dup2", extern "C" fn(c_int, c_int) -> c_int, old, new)
}

/// # Safety
/// As libc's `dup3`.
#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if undo::on() && old != new {
        undo::forget(new);
    }
    call_real!(c"dup3", extern "C" fn(c_int, c_int, c_int) -> c_int, old, new, flags)
}

/// # Safety
/// As libc's `unlink`.
#[no_mangle]
pub unsafe extern "C" fn unlink(path: *const libc::c_char) -> c_int {
    let r = real_unlink(path);
    if r == 0 {
        undo::removed(libc::AT_FDCWD, path);
    }
    r
}

/// # Safety
/// As libc's `unlinkat`.
#[no_mangle]
pub unsafe extern "C" fn unlinkat(dir: c_int, path: *const libc::c_char, flags: c_int) -> c_int {
    let r = call_real!(
        c"unlinkat",
        unsafe extern "C" fn(c_int, *const libc::c_char, c_int) -> c_int,
        dir,
        path,
        flags
    );
    if r == 0 && flags & libc::AT_REMOVEDIR == 0 {
        undo::removed(dir, path);
    }
    r
}

/// # Safety
/// As libc's `remove` (the JVM's `File.delete`; libc's own unlink inside it is not interposable).
#[no_mangle]
pub unsafe extern "C" fn remove(path: *const libc::c_char) -> c_int {
    let r = call_real!(c"remove", unsafe extern "C" fn(*const libc::c_char) -> c_int, path);
    if r == 0 {
        undo::removed(libc::AT_FDCWD, path);
    }
    r
}

/// # Safety
/// As libc's `truncate`.
#[no_mangle]
pub unsafe extern "C" fn truncate(path: *const libc::c_char, len: off_t) -> c_int {
    undo::before_path_truncate(libc::AT_FDCWD, path, len);
    call_real!(
        c"truncate",
        unsafe extern "C" fn(*const libc::c_char, off_t) -> c_int,
        path,
        len
    )
}

/// # Safety
/// As libc's `truncate64`.
#[no_mangle]
pub unsafe extern "C" fn truncate64(path: *const libc::c_char, len: off_t) -> c_int {
    undo::before_path_truncate(libc::AT_FDCWD, path, len);
    call_real!(
        c"truncate64",
        unsafe extern "C" fn(*const libc::c_char, off_t) -> c_int,
        path,
        len
    )
}

// `open` and its kin are variadic in C: the mode is read only with O_CREAT or O_TMPFILE, so taking it as a
// third argument is what the callee does anyway (on x86-64 and aarch64 a variadic integer travels in the same
// register as a fixed one). Only O_TRUNC matters here: it cuts an existing file to 0 bytes.

/// # Safety
/// As libc's `open`.
#[no_mangle]
pub unsafe extern "C" fn open(path: *const libc::c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    if flags & libc::O_TRUNC != 0 {
        undo::before_path_truncate(libc::AT_FDCWD, path, 0);
    }
    call_real!(
        c"open",
        unsafe extern "C" fn(*const libc::c_char, c_int, libc::mode_t) -> c_int,
        path,
        flags,
        mode
    )
}

/// # Safety
/// As libc's `open64`.
#[no_mangle]
pub unsafe extern "C" fn open64(path: *const libc::c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    if flags & libc::O_TRUNC != 0 {
        undo::before_path_truncate(libc::AT_FDCWD, path, 0);
    }
    call_real!(
        c"open64",
        unsafe extern "C" fn(*const libc::c_char, c_int, libc::mode_t) -> c_int,
        path,
        flags,
        mode
    )
}

/// # Safety
/// As libc's `openat`.
#[no_mangle]
pub unsafe extern "C" fn openat(dir: c_int, path: *const libc::c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    if flags & libc::O_TRUNC != 0 {
        undo::before_path_truncate(dir, path, 0);
    }
    call_real!(
        c"openat",
        unsafe extern "C" fn(c_int, *const libc::c_char, c_int, libc::mode_t) -> c_int,
        dir,
        path,
        flags,
        mode
    )
}

/// # Safety
/// As libc's `openat64`.
#[no_mangle]
pub unsafe extern "C" fn openat64(dir: c_int, path: *const libc::c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    if flags & libc::O_TRUNC != 0 {
        undo::before_path_truncate(dir, path, 0);
    }
    call_real!(
        c"openat64",
        unsafe extern "C" fn(c_int, *const libc::c_char, c_int, libc::mode_t) -> c_int,
        dir,
        path,
        flags,
        mode
    )
}

/// # Safety
/// As libc's `creat` (an open with O_TRUNC).
#[no_mangle]
pub unsafe extern "C" fn creat(path: *const libc::c_char, mode: libc::mode_t) -> c_int {
    undo::before_path_truncate(libc::AT_FDCWD, path, 0);
    call_real!(
        c"creat",
        unsafe extern "C" fn(*const libc::c_char, libc::mode_t) -> c_int,
        path,
        mode
    )
}

/// # Safety
/// As libc's `creat64`.
#[no_mangle]
pub unsafe extern "C" fn creat64(path: *const libc::c_char, mode: libc::mode_t) -> c_int {
    undo::before_path_truncate(libc::AT_FDCWD, path, 0);
    call_real!(
        c"creat64",
        unsafe extern "C" fn(*const libc::c_char, libc::mode_t) -> c_int,
        path,
        mode
    )
}

/// # Safety
/// As libc's `copy_file_range` (the kernel copies into `fd_out`, at `*off_out` or its position).
#[no_mangle]
pub unsafe extern "C" fn copy_file_range(
    fd_in: c_int,
    off_in: *mut i64,
    fd_out: c_int,
    off_out: *mut i64,
    len: size_t,
    flags: libc::c_uint,
) -> ssize_t {
    if let Some(r) = write_fault(fd_out) {
        return r;
    }
    // SAFETY: the caller's pointer, null or valid.
    let at = (!off_out.is_null()).then(|| unsafe { *off_out } as off_t);
    undo::before_change(fd_out, at, len as u64);
    call_real!(
        c"copy_file_range",
        unsafe extern "C" fn(c_int, *mut i64, c_int, *mut i64, size_t, libc::c_uint) -> ssize_t,
        fd_in,
        off_in,
        fd_out,
        off_out,
        len,
        flags
    )
}

/// # Safety
/// As libc's `sendfile` (written into `out` at its position).
#[no_mangle]
pub unsafe extern "C" fn sendfile(out: c_int, input: c_int, offset: *mut off_t, count: size_t) -> ssize_t {
    if let Some(r) = write_fault(out) {
        return r;
    }
    undo::before_change(out, None, count as u64);
    call_real!(
        c"sendfile",
        unsafe extern "C" fn(c_int, c_int, *mut off_t, size_t) -> ssize_t,
        out,
        input,
        offset,
        count
    )
}

/// # Safety
/// As libc's `sendfile64`.
#[no_mangle]
pub unsafe extern "C" fn sendfile64(out: c_int, input: c_int, offset: *mut off_t, count: size_t) -> ssize_t {
    if let Some(r) = write_fault(out) {
        return r;
    }
    undo::before_change(out, None, count as u64);
    call_real!(
        c"sendfile64",
        unsafe extern "C" fn(c_int, c_int, *mut off_t, size_t) -> ssize_t,
        out,
        input,
        offset,
        count
    )
}

/// # Safety
/// As libc's `sync`: everything is on disk after it.
#[no_mangle]
pub unsafe extern "C" fn sync() {
    static CACHE: AtomicUsize = AtomicUsize::new(0);
    let p = next(&CACHE, c"sync");
    if p != 0 {
        // SAFETY: libc's `sync`.
        let f = unsafe { std::mem::transmute::<usize, extern "C" fn()>(p) };
        f();
    }
    if undo::on() {
        undo::all_synced(None);
    }
}

/// # Safety
/// As libc's `syncfs`: everything on `fd`'s file system is on disk after it.
#[no_mangle]
pub unsafe extern "C" fn syncfs(fd: c_int) -> c_int {
    let r = call_real!(c"syncfs", extern "C" fn(c_int) -> c_int, fd);
    if r == 0 && undo::on() {
        // SAFETY: an all-zero stat is a valid value to fill.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fd is the caller's descriptor.
        if unsafe { libc::fstat(fd, &mut st) } == 0 {
            undo::all_synced(Some(st.st_dev as u64));
        }
    }
    r
}

/// libc's own unlink (for the records).
///
/// # Safety
/// As libc's `unlink`.
unsafe fn real_unlink(path: *const libc::c_char) -> c_int {
    call_real!(c"unlink", unsafe extern "C" fn(*const libc::c_char) -> c_int, path)
}

/// libc's own open, without a mode (for the records and the files read to save them).
fn real_open(path: *const libc::c_char, flags: c_int) -> c_int {
    call_real!(
        c"open",
        extern "C" fn(*const libc::c_char, c_int, libc::mode_t) -> c_int,
        path,
        flags,
        0
    )
}

/// libc's own ftruncate (for the records).
fn real_ftruncate(fd: c_int, len: off_t) -> c_int {
    call_real!(c"ftruncate", extern "C" fn(c_int, off_t) -> c_int, fd, len)
}

/// libc's own rename (for the records).
///
/// # Safety
/// As libc's `rename`.
unsafe fn real_rename(from: *const libc::c_char, to: *const libc::c_char) -> c_int {
    call_real!(
        c"rename",
        unsafe extern "C" fn(*const libc::c_char, *const libc::c_char) -> c_int,
        from,
        to
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_line_names_the_fault() {
        assert_eq!(parse("slow-fsync 500\n"), (SLOW_FSYNC, 500));
        assert_eq!(parse("full"), (FULL, 0));
        assert_eq!(parse("eio\n"), (EIO, 0));
        assert_eq!(parse("none"), (NONE, 0));
        assert_eq!(parse("slow-fsync soon"), (NONE, 0));
        assert_eq!(parse(""), (NONE, 0));
    }

    #[test]
    fn the_fd_link_is_spelled_without_allocating() {
        let mut buf = [0u8; 64];
        assert_eq!(format_fd_path(&mut buf, 0).to_str().unwrap(), "/proc/self/fd/0");
        assert_eq!(format_fd_path(&mut buf, 1234).to_str().unwrap(), "/proc/self/fd/1234");
    }
}
