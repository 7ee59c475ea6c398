//! ZooKeeper's files on disk, read from bytes passed in: where the records of a transaction log are (so a
//! corruption lands inside them, not in the zeros a preallocated log ends with), and seeded choices of
//! bytes to flip or an offset to cut at.

use serde::Serialize;

use crate::model::rng::Rng;

/// `FileHeader { int magic "ZKLG"; int version; long dbid }` (and the snapshot's, "ZKSN").
pub const FILE_HEADER: u64 = 16;

/// One transaction of a log: `long checksum; int length; <length bytes: TxnHeader + txn>; byte 'B'`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogRecord {
    /// Its first byte (the checksum) in the file.
    pub start: u64,
    /// One past its last byte (the 'B').
    pub end: u64,
    /// The zxid of its TxnHeader (`long clientId; int cxid; long zxid`), as `0x...`.
    pub zxid: String,
}

/// The records of a transaction log, up to the first zero length (the preallocated end), a torn record or
/// the end of the file. None when the file is not a log (no "ZKLG").
pub fn log_records(bytes: &[u8]) -> Option<Vec<LogRecord>> {
    if bytes.len() < FILE_HEADER as usize || &bytes[0..4] != b"ZKLG" {
        return None;
    }
    let mut out = Vec::new();
    let mut at = FILE_HEADER as usize;
    while at + 12 <= bytes.len() {
        let len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes"));
        if len <= 0 {
            break;
        }
        let end = at + 12 + len as usize + 1;
        if end > bytes.len() || bytes[end - 1] != b'B' {
            break;
        }
        let body = &bytes[at + 12..end - 1];
        let zxid = body
            .get(12..20)
            .map(|z| format!("{:#x}", u64::from_be_bytes(z.try_into().expect("8 bytes"))))
            .unwrap_or_default();
        out.push(LogRecord {
            start: at as u64,
            end: end as u64,
            zxid,
        });
        at = end;
    }
    Some(out)
}

/// `n` distinct offsets in `[from, to)`, fixed by `seed`, ascending.
pub fn positions(from: u64, to: u64, n: u32, seed: u64) -> Vec<u64> {
    let span = to.saturating_sub(from);
    let n = u64::from(n).min(span);
    let mut rng = Rng::new(seed);
    let mut out: Vec<u64> = Vec::new();
    while (out.len() as u64) < n {
        let p = from + rng.range(0, span - 1);
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out.sort_unstable();
    out
}

/// The mask a flipped byte is XORed with (never 0: the byte changes), fixed by `seed` and the offset.
pub fn flip_mask(seed: u64, offset: u64) -> u8 {
    Rng::new(seed ^ offset.rotate_left(17)).range(1, 255) as u8
}

/// Which record holds `offset` (its index), if one does.
pub fn record_at(records: &[LogRecord], offset: u64) -> Option<usize> {
    records.iter().position(|r| r.start <= offset && offset < r.end)
}

/// The newest of ZooKeeper's files named `prefix.<zxid hex>` (`log`, `snapshot`) among `names`.
pub fn newest<'a>(names: &'a [String], prefix: &str) -> Option<&'a String> {
    names
        .iter()
        .filter_map(|n| {
            let hex = n.strip_prefix(prefix)?.strip_prefix('.')?;
            Some((u64::from_str_radix(hex, 16).ok()?, n))
        })
        .max_by_key(|(z, _)| *z)
        .map(|(_, n)| n)
}

/// Which of a node's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    Log,
    Snapshot,
}

impl FileKind {
    /// The file name's prefix: `log`, `snapshot`.
    pub fn prefix(self) -> &'static str {
        match self {
            FileKind::Log => "log",
            FileKind::Snapshot => "snapshot",
        }
    }
}

/// A record a corruption or a cut touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TouchedRecord {
    /// Its place among the file's records, from 0.
    pub index: usize,
    pub zxid: String,
}

/// What `disk --corrupt` or `--truncate` did to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Damage {
    pub node: u32,
    /// Below the node's directory: `data/version-2/log.100000001`.
    pub file: String,
    /// `corrupt` or `truncate`.
    pub how: String,
    pub seed: u64,
    /// The bytes flipped, or the offset the file was cut at.
    pub offsets: Vec<u64>,
    /// The log records hit (a snapshot's bytes are not split into records: none listed).
    pub records: Vec<TouchedRecord>,
    /// The log's records before (None for a snapshot).
    pub records_before: Option<usize>,
    /// Whole records left after a cut.
    pub records_after: Option<usize>,
    pub size_before: u64,
    pub size_after: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(records: &[&[u8]]) -> Vec<u8> {
        let mut b = b"ZKLG\0\0\0\x02\0\0\0\0\0\0\0\0".to_vec();
        for r in records {
            b.extend(7u64.to_be_bytes());
            b.extend((r.len() as i32).to_be_bytes());
            b.extend(*r);
            b.push(b'B');
        }
        b.extend([0u8; 64]);
        b
    }

    #[test]
    fn the_records_end_where_the_padding_starts() {
        let mut txn = vec![0u8; 28];
        txn[12..20].copy_from_slice(&0x1_0000_0002u64.to_be_bytes());
        let b = log(&[&txn, &txn]);
        let r = log_records(&b).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].start, r[0].end), (16, 16 + 12 + 28 + 1));
        assert_eq!(r[1].end, r[0].end + 41);
        assert_eq!(r[0].zxid, "0x100000002");
        assert_eq!(record_at(&r, r[1].start + 3), Some(1));
        assert_eq!(log_records(b"ZKSN...........").map(|r| r.len()), None);
    }

    #[test]
    fn positions_are_distinct_inside_and_fixed_by_the_seed() {
        let p = positions(16, 100, 5, 42);
        assert_eq!(p.len(), 5);
        assert!(p.iter().all(|x| (16..100).contains(x)));
        assert_eq!(p, positions(16, 100, 5, 42));
        assert_eq!(positions(16, 18, 5, 1).len(), 2);
        assert_ne!(flip_mask(1, 2), 0);
    }

    #[test]
    fn the_newest_file_is_the_highest_zxid() {
        let names = vec!["log.100000001".to_string(), "log.20000000a".into(), "snapshot.0".into()];
        assert_eq!(newest(&names, "log").unwrap(), "log.20000000a");
        assert_eq!(newest(&names, "snapshot").unwrap(), "snapshot.0");
    }
}
