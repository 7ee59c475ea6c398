//! What has reached "disk": for a power cut. While `ZKDEV_FAULTFS_UNDO` names a directory (the node's own
//! `power` directory, beside its data), every call that changes the bytes or the length of a regular file
//! under the node's data directory first appends to that file's undo record what it is about to overwrite:
//! the file's length, and the old bytes of the region (or that they were zeros). A successful fsync or
//! fdatasync of the file empties its record: what it held is on disk now. After the JVM is SIGKILLed, zkdev
//! plays the records backwards and the files are as they were at their last sync, as after a real power loss.
//!
//! A record is named after the file's path below the data directory, `/` spelled `%`, plus `.undo`. Its
//! entries (little-endian) are a 40-byte header: magic `UNDO`, kind, then four u64:
//! - kind 1, a change: offset, length of the change, the file's length before it, when (Unix ms);
//! - kind 2, old bytes: offset, length, 0, when, then that many bytes;
//! - kind 3, old zeros: offset, length, 0, when.
//!
//! The time lets zkdev model the kernel's own writeback (`--writeback`): changes older than it reached disk.
//!
//! Each entry is appended with one `writev`, so a SIGKILL leaves at most a torn last entry, which zkdev drops.
//!
//! The cost: a file descriptor is classified once (a `readlink` of /proc/self/fd/N) until it is closed; a
//! write to any other file (sockets, the JVM's logs) costs one atomic load. A tracked write costs an `fstat`,
//! a `pread` of the region it overwrites inside the file (none for an append) and one `writev` to the record.

use std::ffi::{c_int, CStr};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use libc::off_t;

pub const MAGIC: u32 = u32::from_le_bytes(*b"UNDO");
pub const CHANGE: u32 = 1;
pub const BYTES: u32 = 2;
pub const ZEROS: u32 = 3;
pub const HEADER: usize = 40;
/// Old bytes are saved in pieces of at most this much (a stack buffer: no allocation in a JVM thread).
const CHUNK: usize = 16 * 1024;

/// Descriptors classified: 0 not yet, -1 not a tracked file, n > 0: its record is open as descriptor n - 1.
const MAX_FD: usize = 1 << 16;
static FDS: [AtomicI32; MAX_FD] = [const { AtomicI32::new(0) }; MAX_FD];
/// The inode each tracked descriptor was classified with: a descriptor reused behind zkdev's back (closed
/// by a call this library does not wrap) is classified again instead of writing to another file's record.
static INODES: [AtomicU64; MAX_FD] = [const { AtomicU64::new(0) }; MAX_FD];
/// For a tracked descriptor opened write-only (Java's FileOutputStream): a read-only descriptor of the same
/// file (n + 1), to read what a write is about to overwrite.
static READERS: [AtomicI32; MAX_FD] = [const { AtomicI32::new(0) }; MAX_FD];

fn slot(fd: c_int) -> Option<usize> {
    (fd >= 0 && (fd as usize) < MAX_FD).then_some(fd as usize)
}

/// Is accounting on (the environment named a record directory)?
pub fn on() -> bool {
    crate::config().undo_dir.is_some()
}

/// The record of `fd` when it is a regular file under the node's data directory, with its `fstat`.
pub fn record_of(fd: c_int) -> Option<(c_int, libc::stat)> {
    if !on() {
        return None;
    }
    let i = slot(fd)?;
    let v = FDS[i].load(Ordering::Relaxed);
    if v == -1 {
        return None;
    }
    // SAFETY: an all-zero stat is a valid value to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is the caller's descriptor; st is writable.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    if v > 0 && INODES[i].load(Ordering::Relaxed) == st.st_ino {
        return Some((v - 1, st));
    }
    if v > 0 {
        forget(fd);
    }
    classify(fd, i, &st).map(|u| (u, st))
}

/// Open (creating) the record of `fd` if it is one of the node's regular files; remember the answer.
fn classify(fd: c_int, i: usize, st: &libc::stat) -> Option<c_int> {
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        FDS[i].store(-1, Ordering::Relaxed);
        return None;
    }
    let mut link = [0u8; 64];
    let mut target = [0u8; 4096];
    let name = crate::format_fd_path(&mut link, fd);
    // SAFETY: name is NUL-terminated; target is writable for its length.
    let n = unsafe { libc::readlink(name.as_ptr(), target.as_mut_ptr().cast(), target.len()) };
    if n <= 0 {
        FDS[i].store(-1, Ordering::Relaxed);
        return None;
    }
    let mut path = [0u8; 4096];
    let Some(len) = record_path(&target[..n as usize], &mut path) else {
        FDS[i].store(-1, Ordering::Relaxed);
        return None;
    };
    path[len] = 0;
    // SAFETY: path is NUL-terminated.
    let u = unsafe {
        libc::open(
            path.as_ptr().cast(),
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC,
            0o600,
        )
    };
    if u < 0 {
        // No record directory (zkdev makes it before the JVM starts): leave it untracked, try again later.
        return None;
    }
    INODES[i].store(st.st_ino, Ordering::Relaxed);
    match FDS[i].compare_exchange(0, u + 1, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            // SAFETY: fd is the caller's descriptor; name is NUL-terminated.
            let wronly = unsafe { libc::fcntl(fd, libc::F_GETFL) } & libc::O_ACCMODE == libc::O_WRONLY;
            if wronly {
                // SAFETY: as above.
                let r = unsafe { libc::open(name.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
                if r >= 0 {
                    let old = READERS[i].swap(r + 1, Ordering::AcqRel);
                    if old > 0 {
                        crate::real_close(old - 1);
                    }
                }
            }
            Some(u)
        }
        Err(other) => {
            crate::real_close(u);
            (other > 0).then_some(other - 1)
        }
    }
}

/// The record's path for data file `file` (absolute), into `out`; None when the file is not the node's.
pub fn record_path(file: &[u8], out: &mut [u8; 4096]) -> Option<usize> {
    let config = crate::config();
    let dir = config.undo_dir.as_deref()?;
    let prefix = config
        .prefixes
        .iter()
        .find(|p| file.starts_with(p) && file.len() > p.len() + 1 && file[p.len()] == b'/')?;
    let rel = &file[prefix.len() + 1..];
    let need = dir.len() + 1 + rel.len() + b".undo".len();
    if need >= out.len() {
        return None;
    }
    out[..dir.len()].copy_from_slice(dir);
    out[dir.len()] = b'/';
    let mut at = dir.len() + 1;
    for b in rel {
        out[at] = if *b == b'/' { b'%' } else { *b };
        at += 1;
    }
    out[at..at + 5].copy_from_slice(b".undo");
    Some(at + 5)
}

/// `fd` is closed (or replaced by dup2): forget what it was, closing its record.
pub fn forget(fd: c_int) {
    if let Some(i) = slot(fd) {
        let v = FDS[i].swap(0, Ordering::AcqRel);
        if v > 0 {
            crate::real_close(v - 1);
        }
        let r = READERS[i].swap(0, Ordering::AcqRel);
        if r > 0 {
            crate::real_close(r - 1);
        }
    }
}

/// The descriptor to read `fd`'s file through: its reader when `fd` is write-only.
fn readable(fd: c_int) -> c_int {
    match slot(fd).map(|i| READERS[i].load(Ordering::Acquire)) {
        Some(r) if r > 0 => r - 1,
        _ => fd,
    }
}

fn header(kind: u32, a: u64, b: u64, c: u64) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&kind.to_le_bytes());
    h[8..16].copy_from_slice(&a.to_le_bytes());
    h[16..24].copy_from_slice(&b.to_le_bytes());
    h[24..32].copy_from_slice(&c.to_le_bytes());
    h[32..40].copy_from_slice(&wall_ms().to_le_bytes());
    h
}

/// Unix time in ms, from the coarse clock (no system call).
fn wall_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

fn append(u: c_int, head: &[u8; HEADER], data: &[u8]) {
    let iov = [
        libc::iovec {
            iov_base: head.as_ptr() as *mut _,
            iov_len: HEADER,
        },
        libc::iovec {
            iov_base: data.as_ptr() as *mut _,
            iov_len: data.len(),
        },
    ];
    // SAFETY: both buffers live for the call; u is our record's descriptor (O_APPEND: one entry, one write).
    unsafe { crate::real_writev(u, iov.as_ptr(), if data.is_empty() { 1 } else { 2 }) };
}

/// Before `len` bytes at `offset` of `fd` change (None: at its current position): save the file's length
/// and the old bytes of the part of the region inside it.
pub fn before_change(fd: c_int, offset: Option<off_t>, len: u64) {
    let Some((u, st)) = record_of(fd) else {
        return;
    };
    let offset = match offset {
        Some(o) => o,
        // SAFETY: fd is the caller's descriptor.
        None => unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) },
    };
    if offset < 0 {
        return;
    }
    let (offset, size) = (offset as u64, st.st_size.max(0) as u64);
    append(u, &header(CHANGE, offset, len, size), &[]);
    save_region(fd, u, offset, offset.saturating_add(len).min(size));
}

/// Save the old bytes of `[from, to)` of `fd` into record `u`, zeros as zeros.
pub fn save_region(fd: c_int, u: c_int, from: u64, to: u64) {
    let fd = readable(fd);
    let mut buf = [0u8; CHUNK];
    let mut at = from;
    while at < to {
        let want = ((to - at) as usize).min(CHUNK);
        // SAFETY: buf is writable for `want` bytes.
        let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), want, at as off_t) };
        if n <= 0 {
            return;
        }
        let got = &buf[..n as usize];
        if got.iter().all(|b| *b == 0) {
            append(u, &header(ZEROS, at, got.len() as u64, 0), &[]);
        } else {
            append(u, &header(BYTES, at, got.len() as u64, 0), got);
        }
        at += n as u64;
    }
}

/// Before `fd`'s length becomes `len`: save its length and whatever a shrink cuts off.
pub fn before_truncate(fd: c_int, len: off_t) {
    let Some((u, st)) = record_of(fd) else {
        return;
    };
    let (len, size) = (len.max(0) as u64, st.st_size.max(0) as u64);
    append(u, &header(CHANGE, len.min(size), len.abs_diff(size), size), &[]);
    if len < size {
        save_region(fd, u, len, size);
    }
}

/// `fd` was synced: everything in its record is on disk now.
pub fn synced(fd: c_int) {
    if let Some((u, _)) = record_of(fd) {
        crate::real_ftruncate(u, 0);
    }
}

/// `from` (seen from `olddir`) was renamed to `to` (seen from `newdir`): the record follows the file; a
/// record of the file `to` replaced goes, that file being gone.
pub fn renamed(olddir: c_int, from: *const libc::c_char, newdir: c_int, to: *const libc::c_char) {
    if !on() || from.is_null() || to.is_null() {
        return;
    }
    // SAFETY: the caller's NUL-terminated paths.
    let (from, to) = unsafe { (CStr::from_ptr(from), CStr::from_ptr(to)) };
    let (mut fa, mut ta) = ([0u8; 4096], [0u8; 4096]);
    let (Some(lf), Some(lt)) = (absolute(olddir, from, &mut fa), absolute(newdir, to, &mut ta)) else {
        return;
    };
    let (mut a, mut b) = ([0u8; 4096], [0u8; 4096]);
    let (Some(la), Some(lb)) = (record_path(&fa[..lf], &mut a), record_path(&ta[..lt], &mut b)) else {
        return;
    };
    a[la] = 0;
    b[lb] = 0;
    // SAFETY: NUL-terminated paths in our buffers.
    unsafe {
        if crate::real_rename(a.as_ptr().cast(), b.as_ptr().cast()) != 0 {
            crate::real_unlink(b.as_ptr().cast());
        }
    }
}

/// `path` (seen from `dir`) was unlinked: its unsynced changes went with it (a power cut cannot bring back
/// a file the program deleted, nor should it play a record onto a later file of the same name).
pub fn removed(dir: c_int, path: *const libc::c_char) {
    if !on() || path.is_null() {
        return;
    }
    // SAFETY: the caller's NUL-terminated path.
    let path = unsafe { CStr::from_ptr(path) };
    let mut full = [0u8; 4096];
    let Some(lf) = absolute(dir, path, &mut full) else {
        return;
    };
    let mut rec = [0u8; 4096];
    let Some(lr) = record_path(&full[..lf], &mut rec) else {
        return;
    };
    rec[lr] = 0;
    // SAFETY: a NUL-terminated path in our buffer.
    unsafe { crate::real_unlink(rec.as_ptr().cast()) };
}

/// Before the file `path` (seen from `dir`) is cut to `len` bytes by name (`truncate`, or an `open` with
/// O_TRUNC: `len` 0): save what the cut takes, as `before_truncate` does for a descriptor.
pub fn before_path_truncate(dir: c_int, path: *const libc::c_char, len: off_t) {
    if !on() || path.is_null() {
        return;
    }
    // SAFETY: the caller's NUL-terminated path.
    let name = unsafe { CStr::from_ptr(path) };
    let mut full = [0u8; 4096];
    let Some(lf) = absolute(dir, name, &mut full) else {
        return;
    };
    let mut rec = [0u8; 4096];
    if record_path(&full[..lf], &mut rec).is_none() {
        return;
    }
    full[lf] = 0;
    // SAFETY: an all-zero stat is a valid value to fill; full is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::stat(full.as_ptr().cast(), &mut st) } != 0
        || st.st_mode & libc::S_IFMT != libc::S_IFREG
        || st.st_size <= len.max(0)
    {
        return; // a new file, or nothing cut off
    }
    let fd = crate::real_open(full.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return;
    }
    before_truncate(fd, len);
    forget(fd);
    crate::real_close(fd);
}

/// `sync` (dev None) or `syncfs` of the file system `dev`: every file of the node there is on disk now, so
/// every record is emptied.
pub fn all_synced(dev: Option<u64>) {
    let config = crate::config();
    let Some(dir) = config.undo_dir.as_deref() else {
        return;
    };
    let mut base = [0u8; 4096];
    if dir.len() + 2 >= base.len() {
        return;
    }
    base[..dir.len()].copy_from_slice(dir);
    if let (Some(dev), Some(data)) = (dev, config.prefixes.first()) {
        let mut p = [0u8; 4096];
        if data.len() + 1 >= p.len() {
            return;
        }
        p[..data.len()].copy_from_slice(data);
        // SAFETY: an all-zero stat is a valid value to fill; p is NUL-terminated.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::stat(p.as_ptr().cast(), &mut st) } != 0 || st.st_dev as u64 != dev {
            return; // another file system: the node's files are as unsynced as before
        }
    }
    // SAFETY: base is NUL-terminated; the directory stream is closed below.
    let d = unsafe { libc::opendir(base.as_ptr().cast()) };
    if d.is_null() {
        return;
    }
    loop {
        // SAFETY: d is an open directory stream.
        let e = unsafe { libc::readdir(d) };
        if e.is_null() {
            break;
        }
        // SAFETY: readdir's entry holds a NUL-terminated name.
        let name = unsafe { CStr::from_ptr((*e).d_name.as_ptr()) }.to_bytes();
        if !name.ends_with(b".undo") || dir.len() + 1 + name.len() + 1 >= 4096 {
            continue;
        }
        let mut path = [0u8; 4096];
        path[..dir.len()].copy_from_slice(dir);
        path[dir.len()] = b'/';
        path[dir.len() + 1..dir.len() + 1 + name.len()].copy_from_slice(name);
        let fd = crate::real_open(path.as_ptr().cast(), libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC);
        if fd >= 0 {
            crate::real_close(fd);
        }
    }
    // SAFETY: d is open; closed once.
    unsafe { libc::closedir(d) };
}

/// `path` as an absolute path: as it is when it starts with `/`, else after the directory `dir` names
/// (AT_FDCWD: the working directory), leading `./` dropped; into `out`, NUL-terminated; its length. A path
/// with `..` in it is not resolved (it matches no data directory, so it goes unaccounted).
pub fn absolute(dir: c_int, path: &CStr, out: &mut [u8; 4096]) -> Option<usize> {
    let mut p = path.to_bytes();
    if p.first() == Some(&b'/') {
        if p.len() >= out.len() {
            return None;
        }
        out[..p.len()].copy_from_slice(p);
        out[p.len()] = 0;
        return Some(p.len());
    }
    while let Some(rest) = p.strip_prefix(b"./") {
        p = rest;
    }
    let base = if dir == libc::AT_FDCWD {
        // SAFETY: out is writable for its length.
        if unsafe { libc::getcwd(out.as_mut_ptr().cast(), out.len()) }.is_null() {
            return None;
        }
        out.iter().position(|b| *b == 0)?
    } else {
        let mut link = [0u8; 64];
        let name = crate::format_fd_path(&mut link, dir);
        // SAFETY: name is NUL-terminated; out is writable for its length.
        let n = unsafe { libc::readlink(name.as_ptr(), out.as_mut_ptr().cast(), out.len()) };
        if n <= 0 {
            return None;
        }
        n as usize
    };
    let base = if base >= 1 && out[base - 1] == b'/' {
        base - 1
    } else {
        base
    };
    if base + 1 + p.len() >= out.len() {
        return None;
    }
    out[base] = b'/';
    out[base + 1..base + 1 + p.len()].copy_from_slice(p);
    out[base + 1 + p.len()] = 0;
    Some(base + 1 + p.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_spells_its_fields_little_endian() {
        let h = header(CHANGE, 1, 2, 3);
        assert_eq!(&h[0..4], b"UNDO");
        assert_eq!(u32::from_le_bytes(h[4..8].try_into().unwrap()), CHANGE);
        assert_eq!(u64::from_le_bytes(h[24..32].try_into().unwrap()), 3);
    }
}
