//! Power cuts on this machine: the directory where the disk-fault library keeps a node's undo records
//! (inside the node's own directory), playing them back after the JVM is gone, and the note of the last cut
//! that `status` reads.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::power::{self, Entry, FileLoss, NodeCut};
use crate::model::rng::Rng;
use crate::model::zkfile::{self, Damage, FileKind, TouchedRecord};
use crate::os::state::ClusterPaths;

/// A node's undo records: `node<i>/power/`.
pub fn records_dir(paths: &ClusterPaths, id: u32) -> PathBuf {
    paths.node_dir(id).join("power")
}

/// The note of a node's last power cut: `node<i>/power-cut.json`.
pub fn note_file(paths: &ClusterPaths, id: u32) -> PathBuf {
    paths.node_dir(id).join("power-cut.json")
}

/// Before a node's JVM starts: an empty record directory. What an earlier JVM left unsynced when it stopped
/// (cleanly, or killed without a power cut) stayed in the page cache of a machine that kept running, so it
/// reached the disk: its records go.
pub fn prepare(paths: &ClusterPaths, id: u32) -> Result<()> {
    let dir = records_dir(paths, id);
    fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
    for rec in records(&dir)? {
        fs::remove_file(&rec).map_err(|e| Error::io("cannot remove", &rec, e))?;
    }
    Ok(())
}

/// The `.undo` files of a record directory (only those: nothing else there is touched).
fn records(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("cannot read", dir, e)),
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "undo") && p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Bytes of unsynced changes a node's records hold now (0 when there are none).
pub fn pending(paths: &ClusterPaths, id: u32) -> u64 {
    records(&records_dir(paths, id))
        .unwrap_or_default()
        .iter()
        .filter_map(|p| fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// After node `id`'s JVM is gone: every file under its data directory goes back to what it was at its last
/// sync (its undo records played backwards); with `torn`, a seeded prefix of each file's last unsynced
/// change stays. The records are emptied. Returns what each file lost.
/// `writeback_ms`: the kernel wrote back by itself every change older than this (None: nothing).
pub fn roll_back(
    paths: &ClusterPaths,
    id: u32,
    torn: Option<u64>,
    cut_ms: u64,
    writeback_ms: Option<u64>,
) -> Result<Vec<FileLoss>> {
    let data = paths.data_dir(id);
    let mut out = Vec::new();
    for rec in records(&records_dir(paths, id))? {
        let name = rec.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let bytes = fs::read(&rec).map_err(|e| Error::io("cannot read", &rec, e))?;
        let all = power::parse(&bytes);
        let entries = power::unsynced_at(&all, cut_ms, writeback_ms);
        if let Some(rel) = power::data_file_of(&name) {
            let file = data.join(&rel);
            if !entries.is_empty() && file.is_file() {
                let seed = torn.map(|s| s ^ fnv(&rel));
                let mut loss = undo_file(&file, entries, seed)?;
                loss.file = format!("data/{rel}");
                out.push(loss);
            }
        }
        fs::remove_file(&rec).map_err(|e| Error::io("cannot remove", &rec, e))?;
    }
    Ok(out)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Play `entries` backwards on `path`.
fn undo_file(path: &Path, entries: &[Entry], torn_seed: Option<u64>) -> Result<FileLoss> {
    let io = |e| Error::io("cannot roll back", path, e);
    let f = OpenOptions::new().read(true).write(true).open(path).map_err(io)?;
    let size_before = f.metadata().map_err(io)?.len();
    // --torn: the prefix of the last change that reached the disk, read before anything is undone.
    let kept = match (torn_seed, power::last_change(entries)) {
        (Some(seed), Some((offset, len))) if len > 0 => {
            let k = Rng::new(seed).range(0, len - 1);
            let mut prefix = vec![0u8; k.min(size_before.saturating_sub(offset)) as usize];
            f.read_exact_at(&mut prefix, offset).map_err(io)?;
            Some((offset, prefix))
        }
        _ => None,
    };
    let mut lost = 0u64;
    let mut changes = 0u64;
    for e in entries.iter().rev() {
        match e {
            Entry::Bytes { offset, data } => {
                lost += differing(&f, *offset, data)?;
                f.write_all_at(data, *offset).map_err(io)?;
            }
            Entry::Zeros { offset, len } => {
                lost += nonzero(&f, *offset, offset + len)?;
                write_zeros(&f, *offset, *len).map_err(io)?;
            }
            Entry::Change { old_size, .. } => {
                changes += 1;
                let now = f.metadata().map_err(io)?.len();
                if now > *old_size {
                    lost += nonzero(&f, *old_size, now)?;
                }
                f.set_len(*old_size).map_err(io)?;
            }
        }
    }
    let torn_kept = match kept {
        Some((offset, prefix)) => {
            f.write_all_at(&prefix, offset).map_err(io)?;
            lost = lost.saturating_sub(prefix.iter().filter(|b| **b != 0).count() as u64);
            Some(prefix.len() as u64)
        }
        None => None,
    };
    Ok(FileLoss {
        file: String::new(),
        changes,
        bytes_lost: lost,
        size_before,
        size_after: f.metadata().map_err(io)?.len(),
        torn_kept,
    })
}

/// Bytes of `[offset, offset + data.len())` of `f` that differ from `data` (past the end: data's non-zeros).
fn differing(f: &File, offset: u64, data: &[u8]) -> Result<u64> {
    let mut now = vec![0u8; data.len()];
    let n = read_up_to(f, offset, &mut now)?;
    Ok(data
        .iter()
        .enumerate()
        .filter(|(i, b)| if *i < n { now[*i] != **b } else { **b != 0 })
        .count() as u64)
}

/// Non-zero bytes of `[from, to)` of `f`.
fn nonzero(f: &File, from: u64, to: u64) -> Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let (mut at, mut count) = (from, 0u64);
    while at < to {
        let want = ((to - at) as usize).min(buf.len());
        let n = read_up_to(f, at, &mut buf[..want])?;
        if n == 0 {
            break;
        }
        count += buf[..n].iter().filter(|b| **b != 0).count() as u64;
        at += n as u64;
    }
    Ok(count)
}

fn read_up_to(f: &File, offset: u64, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(Error::failed(format!("cannot read a file to roll it back: {e}"))),
        }
    }
    Ok(n)
}

fn write_zeros(f: &File, offset: u64, len: u64) -> std::io::Result<()> {
    let zeros = vec![0u8; (len as usize).min(1 << 20)];
    let mut at = offset;
    while at < offset + len {
        let n = ((offset + len - at) as usize).min(zeros.len());
        f.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Keep the note of a node's cut (what `status` shows until the node is started again... and after).
pub fn write_note(paths: &ClusterPaths, cut: &NodeCut) -> Result<()> {
    let text = serde_json::to_string_pretty(cut).expect("a cut serialises");
    crate::os::state::write_atomic(&note_file(paths, cut.node), text.as_bytes())
}

/// The note of a node's last power cut, if it had one.
pub fn read_note(paths: &ClusterPaths, id: u32) -> Option<NodeCut> {
    let mut text = String::new();
    File::open(note_file(paths, id)).ok()?.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// The last power cut of each of `ids` that had one (what `status` and the dashboard show).
pub fn last_cuts(paths: &ClusterPaths, ids: &[u32]) -> Vec<NodeCut> {
    ids.iter().filter_map(|id| read_note(paths, *id)).collect()
}

/// Forget the power cuts of `ids` (`zkdev reset`: what they lost went with every znode); the journal keeps
/// them. Returns the nodes whose note went.
pub fn forget_cuts(paths: &ClusterPaths, ids: &[u32]) -> Result<Vec<u32>> {
    let mut gone = Vec::new();
    for id in ids {
        let note = note_file(paths, *id);
        match fs::remove_file(&note) {
            Ok(()) => gone.push(*id),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("cannot remove", &note, e)),
        }
    }
    Ok(gone)
}

/// The newest log or snapshot of node `id`, its path and its name below the node's directory.
fn newest_file(paths: &ClusterPaths, id: u32, kind: FileKind) -> Result<(PathBuf, String)> {
    let dir = paths.data_dir(id).join("version-2");
    let names: Vec<String> = fs::read_dir(&dir)
        .map_err(|e| Error::io("cannot read", &dir, e))?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let Some(name) = zkfile::newest(&names, kind.prefix()) else {
        return Err(Error::usage(format!(
            "node {id} has no {} in {}: ZooKeeper writes one once the node has {}",
            match kind {
                FileKind::Log => "transaction log",
                FileKind::Snapshot => "snapshot",
            },
            dir.display(),
            match kind {
                FileKind::Log => "taken a write",
                FileKind::Snapshot => "started once",
            }
        )));
    };
    Ok((dir.join(name), format!("data/version-2/{name}")))
}

/// Flip `n` bytes at seeded offsets inside the written records of node `id`'s newest log (inside the
/// snapshot past its header, for a snapshot). The node must not be running (the caller checks).
pub fn corrupt(paths: &ClusterPaths, id: u32, kind: FileKind, n: u32, seed: u64) -> Result<Damage> {
    let (path, file) = newest_file(paths, id, kind)?;
    let mut bytes = fs::read(&path).map_err(|e| Error::io("cannot read", &path, e))?;
    let size = bytes.len() as u64;
    let (from, to, records) = match kind {
        FileKind::Log => {
            let records = zkfile::log_records(&bytes)
                .ok_or_else(|| Error::failed(format!("{} does not start like a transaction log", path.display())))?;
            let end = records.last().map_or(zkfile::FILE_HEADER, |r| r.end);
            (zkfile::FILE_HEADER, end, Some(records))
        }
        FileKind::Snapshot => (zkfile::FILE_HEADER, size, None),
    };
    if to <= from {
        return Err(Error::usage(format!(
            "{} holds no records yet (nothing past its header): write to the ensemble first",
            path.display()
        )));
    }
    let offsets = zkfile::positions(from, to, n, seed);
    for o in &offsets {
        bytes[*o as usize] ^= zkfile::flip_mask(seed, *o);
    }
    fs::write(&path, &bytes).map_err(|e| Error::io("cannot write", &path, e))?;
    let mut touched: Vec<TouchedRecord> = Vec::new();
    if let Some(r) = &records {
        for o in &offsets {
            if let Some(i) = zkfile::record_at(r, *o) {
                if !touched.iter().any(|t| t.index == i) {
                    touched.push(TouchedRecord {
                        index: i,
                        zxid: r[i].zxid.clone(),
                    });
                }
            }
        }
    }
    Ok(Damage {
        node: id,
        file,
        how: "corrupt".into(),
        seed,
        offsets,
        records: touched,
        records_before: records.as_ref().map(Vec::len),
        records_after: None,
        size_before: size,
        size_after: size,
    })
}

/// Cut node `id`'s newest log at a seeded offset inside its records (past the header, before the end of
/// the last record: at least one record is torn or gone).
pub fn truncate_log(paths: &ClusterPaths, id: u32, seed: u64) -> Result<Damage> {
    let (path, file) = newest_file(paths, id, FileKind::Log)?;
    let bytes = fs::read(&path).map_err(|e| Error::io("cannot read", &path, e))?;
    let records = zkfile::log_records(&bytes)
        .ok_or_else(|| Error::failed(format!("{} does not start like a transaction log", path.display())))?;
    let Some(last) = records.last() else {
        return Err(Error::usage(format!(
            "{} holds no records yet: write to the ensemble first",
            path.display()
        )));
    };
    let at = zkfile::positions(zkfile::FILE_HEADER + 1, last.end, 1, seed)[0];
    let f = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("cannot open", &path, e))?;
    f.set_len(at).map_err(|e| Error::io("cannot truncate", &path, e))?;
    let kept = records.iter().filter(|r| r.end <= at).count();
    let touched = zkfile::record_at(&records, at)
        .map(|i| TouchedRecord {
            index: i,
            zxid: records[i].zxid.clone(),
        })
        .into_iter()
        .collect();
    Ok(Damage {
        node: id,
        file,
        how: "truncate".into(),
        seed,
        offsets: vec![at],
        records: touched,
        records_before: Some(records.len()),
        records_after: Some(kept),
        size_before: bytes.len() as u64,
        size_after: at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    fn header(kind: u32, a: u64, b: u64, c: u64) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend(b"UNDO");
        h.extend(kind.to_le_bytes());
        for v in [a, b, c, 0] {
            h.extend(v.to_le_bytes());
        }
        h
    }

    #[test]
    fn an_append_and_an_overwrite_are_taken_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        // Synced: "hello" + 5 zeros. Since then: "WORLD" over the zeros, then "!!" appended.
        let mut f = File::create(&path).unwrap();
        f.write_all(b"helloWORLD!!").unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        let mut rec = header(1, 5, 5, 10);
        rec.extend(header(3, 5, 5, 0));
        rec.extend(header(1, 10, 2, 10));
        let entries = power::parse(&rec);
        let loss = undo_file(&path, &entries, None).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello\0\0\0\0\0");
        assert_eq!(loss.bytes_lost, 7);
        assert_eq!((loss.size_before, loss.size_after, loss.changes), (12, 10, 2));
    }

    #[test]
    fn torn_keeps_a_prefix_of_the_last_change_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, b"abcdefgh").unwrap();
        let rec = header(1, 4, 4, 4);
        let loss = undo_file(&path, &power::parse(&rec), Some(7)).unwrap();
        let k = loss.torn_kept.unwrap() as usize;
        assert!(k < 4);
        assert_eq!(fs::read(&path).unwrap(), b"abcdefgh"[..4 + k].to_vec());
        assert_eq!(loss.bytes_lost, 4 - k as u64);
    }
}
