//! Power cuts, the pure part: the undo records the disk-fault library keeps per data file (what each change
//! overwrote since the file's last sync), read back; and what a cut cost, per file.

use serde::{Deserialize, Serialize};

const MAGIC: u32 = u32::from_le_bytes(*b"UNDO");
const HEADER: usize = 40;

/// One entry of an undo record, in the order the library appended them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A change of `len` bytes at `offset` (a write, a truncate, an allocation); the file was `old_size` long.
    Change {
        offset: u64,
        len: u64,
        old_size: u64,
        /// When (Unix ms; 0 when unknown).
        at_ms: u64,
    },
    /// The bytes at `offset` before the change that follows them... saved just after its `Change`.
    Bytes { offset: u64, data: Vec<u8> },
    /// `len` zero bytes at `offset` before the change.
    Zeros { offset: u64, len: u64 },
}

/// The entries of a record; a torn last entry (the JVM killed while appending it) is dropped, as is anything
/// after a damaged header.
pub fn parse(bytes: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut at = 0;
    let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    while at + HEADER <= bytes.len() {
        let h = &bytes[at..at + HEADER];
        if u32::from_le_bytes(h[0..4].try_into().expect("4 bytes")) != MAGIC {
            break;
        }
        let kind = u32::from_le_bytes(h[4..8].try_into().expect("4 bytes"));
        let (a, b, c, when) = (u64_at(h, 8), u64_at(h, 16), u64_at(h, 24), u64_at(h, 32));
        at += HEADER;
        match kind {
            1 => out.push(Entry::Change {
                offset: a,
                len: b,
                old_size: c,
                at_ms: when,
            }),
            2 => {
                let Some(data) = usize::try_from(b).ok().and_then(|n| bytes.get(at..at.checked_add(n)?)) else {
                    break;
                };
                out.push(Entry::Bytes {
                    offset: a,
                    data: data.to_vec(),
                });
                at += data.len();
            }
            3 => out.push(Entry::Zeros { offset: a, len: b }),
            _ => break,
        }
    }
    out
}

/// The data file a record is about (its path below the data directory) from the record's file name.
pub fn data_file_of(record_name: &str) -> Option<String> {
    let rel = record_name.strip_suffix(".undo")?;
    (!rel.is_empty() && !rel.contains("..")).then(|| rel.replace('%', "/"))
}

/// The entries a cut at `cut_ms` takes back when the kernel wrote back every change older than
/// `writeback_ms` by itself (None: it wrote back nothing, every unsynced change is lost): the changes from
/// the first one made less than `writeback_ms` before the cut.
pub fn unsynced_at(entries: &[Entry], cut_ms: u64, writeback_ms: Option<u64>) -> &[Entry] {
    let Some(w) = writeback_ms else {
        return entries;
    };
    let since = cut_ms.saturating_sub(w);
    let first = entries
        .iter()
        .position(|e| matches!(e, Entry::Change { at_ms, .. } if *at_ms >= since))
        .unwrap_or(entries.len());
    &entries[first..]
}

/// The newest change of a record: what `--torn` tears.
pub fn last_change(entries: &[Entry]) -> Option<(u64, u64)> {
    entries.iter().rev().find_map(|e| match e {
        Entry::Change { offset, len, .. } => Some((*offset, *len)),
        _ => None,
    })
}

/// What a power cut did to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLoss {
    /// Below the node's directory: `data/version-2/log.100000001`.
    pub file: String,
    /// Changes since its last sync, undone.
    pub changes: u64,
    /// Bytes of content (not the zeros of a preallocated log) that the cut took back.
    pub bytes_lost: u64,
    pub size_before: u64,
    pub size_after: u64,
    /// With `--torn`: bytes of its last unsynced change kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn_kept: Option<u64>,
}

/// One node's power cut, as kept beside its data (what `status` shows) and journalled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCut {
    pub node: u32,
    pub at_ms: u64,
    /// Its JVM was running (and was killed by the cut); a node that was not loses nothing.
    pub was_running: bool,
    /// Files that had changes since their last sync (files with none are not listed).
    pub files: Vec<FileLoss>,
}

impl NodeCut {
    pub fn bytes_lost(&self) -> u64 {
        self.files.iter().map(|f| f.bytes_lost).sum()
    }

    /// `node 2: lost 1234 bytes (data/version-2/log.100000001: 1234 of 3 unsynced changes)`.
    pub fn describe(&self) -> String {
        let lost: Vec<String> = self
            .files
            .iter()
            .filter(|f| f.bytes_lost > 0 || f.size_before != f.size_after)
            .map(|f| {
                let mut s = format!(
                    "{}: {} lost, {} undone, {} -> {} bytes long",
                    f.file,
                    crate::model::words::count(f.bytes_lost as usize, "byte"),
                    crate::model::words::count(f.changes as usize, "unsynced change"),
                    f.size_before,
                    f.size_after
                );
                if let Some(k) = f.torn_kept {
                    s.push_str(&format!(
                        ", {} of its last write kept (torn)",
                        crate::model::words::count(k as usize, "byte")
                    ));
                }
                s
            })
            .collect();
        if !self.was_running {
            format!("node {}: not running, nothing lost", self.node)
        } else if lost.is_empty() {
            format!("node {}: nothing lost (every file was synced)", self.node)
        } else {
            format!(
                "node {}: lost {} ({})",
                self.node,
                crate::model::words::count(self.bytes_lost() as usize, "byte"),
                lost.join("; ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u32, a: u64, b: u64, c: u64) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend(MAGIC.to_le_bytes());
        h.extend(kind.to_le_bytes());
        for v in [a, b, c, 5_000] {
            h.extend(v.to_le_bytes());
        }
        h
    }

    #[test]
    fn a_record_reads_back_and_a_torn_tail_is_dropped() {
        let mut r = header(1, 10, 4, 12);
        r.extend(header(2, 10, 2, 0));
        r.extend(b"ab");
        r.extend(header(3, 0, 8, 0));
        r.extend(header(2, 0, 100, 0));
        r.extend(b"short");
        assert_eq!(
            parse(&r),
            vec![
                Entry::Change {
                    offset: 10,
                    len: 4,
                    old_size: 12,
                    at_ms: 5_000
                },
                Entry::Bytes {
                    offset: 10,
                    data: b"ab".to_vec()
                },
                Entry::Zeros { offset: 0, len: 8 },
            ]
        );
        assert_eq!(last_change(&parse(&r)), Some((10, 4)));
    }

    #[test]
    fn the_kernel_writeback_keeps_older_changes() {
        let mut r = header(1, 0, 4, 0);
        r.extend(header(3, 0, 4, 0));
        let old = parse(&r);
        assert_eq!(
            unsynced_at(&old, 5_500, Some(100)).len(),
            0,
            "older than the writeback: on disk"
        );
        assert_eq!(unsynced_at(&old, 5_050, Some(100)).len(), 2);
        assert_eq!(unsynced_at(&old, 99_999, None).len(), 2, "no writeback: all lost");
    }

    #[test]
    fn a_record_name_gives_its_data_file() {
        assert_eq!(
            data_file_of("version-2%log.100000001.undo").as_deref(),
            Some("version-2/log.100000001")
        );
        assert_eq!(data_file_of("..%x.undo"), None);
        assert_eq!(data_file_of("x.txt"), None);
    }
}
