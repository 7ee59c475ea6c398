//! The journal: every event of a cluster as one JSON line in `events.ndjson`, appended by the supervisor
//! alone (it holds the supervisor lock), never rewritten in place, rotated to `events.1.ndjson` past a size.
//!
//! A line is written with one `write` on a file opened for appending. A reader takes only lines that end
//! in a newline and parse, so a line torn by a SIGKILL mid-write is never read as an event; the next
//! supervisor starts its first line on a fresh line, after the torn one.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::timeline::Event;
use crate::os::state::ClusterPaths;

/// Past this size the journal is rotated (the previous rotation is dropped): two files of at most 8 MiB.
pub const MAX_BYTES: u64 = 8 * 1024 * 1024;

pub struct Journal {
    file: File,
    path: PathBuf,
    old: PathBuf,
    seq: u64,
    size: u64,
    max_bytes: u64,
}

impl Journal {
    pub fn open(paths: &ClusterPaths) -> Result<Journal> {
        Journal::open_at(&paths.journal(), &paths.journal_old(), MAX_BYTES)
    }

    pub fn open_at(path: &Path, old: &Path, max_bytes: u64) -> Result<Journal> {
        let seq = read_events(old)
            .into_iter()
            .chain(read_events(path))
            .map(|e| e.seq)
            .max()
            .unwrap_or(0);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(|e| Error::io("cannot open the journal", path, e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size > 0 {
            // A torn last line (no newline): end it, so the next event starts a line of its own.
            let mut last = [0u8; 1];
            if file.seek(SeekFrom::Start(size - 1)).is_ok() && file.read_exact(&mut last).is_ok() && last[0] != b'\n' {
                file.write_all(b"\n")
                    .map_err(|e| Error::io("cannot write the journal", path, e))?;
            }
        }
        Ok(Journal {
            file,
            path: path.to_path_buf(),
            old: old.to_path_buf(),
            seq,
            size,
            max_bytes,
        })
    }

    /// The last sequence number written.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Number the event, write it as one line, and return it as written. A write error is reported on
    /// stderr (the supervisor's log) and the event is still returned: the ensemble matters more.
    pub fn append(&mut self, mut event: Event) -> Event {
        self.seq += 1;
        event.seq = self.seq;
        let mut line = serde_json::to_vec(&event).expect("events serialise");
        line.push(b'\n');
        if self.size + line.len() as u64 > self.max_bytes && self.size > 0 {
            self.rotate();
        }
        match self.file.write_all(&line) {
            Ok(()) => self.size += line.len() as u64,
            Err(e) => super::start::log(format_args!(
                "warning: cannot write the journal {}: {e}",
                self.path.display()
            )),
        }
        event
    }

    fn rotate(&mut self) {
        if let Err(e) = std::fs::rename(&self.path, &self.old) {
            super::start::log(format_args!(
                "warning: cannot rotate the journal {}: {e}",
                self.path.display()
            ));
            return;
        }
        match OpenOptions::new().create(true).append(true).read(true).open(&self.path) {
            Ok(f) => {
                self.file = f;
                self.size = 0;
            }
            Err(e) => super::start::log(format_args!(
                "warning: cannot open a new journal {}: {e}",
                self.path.display()
            )),
        }
    }
}

/// Every whole event in one file, in order; torn or foreign lines are skipped.
pub fn read_events(path: &Path) -> Vec<Event> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    parse_lines(&bytes).0
}

/// The events of the whole bytes that end in a newline, and how many bytes those were.
pub fn parse_lines(bytes: &[u8]) -> (Vec<Event>, usize) {
    let mut events = Vec::new();
    let mut used = 0;
    while let Some(n) = bytes[used..].iter().position(|b| *b == b'\n') {
        let line = &bytes[used..used + n];
        used += n + 1;
        if let Ok(e) = serde_json::from_slice::<Event>(line) {
            events.push(e);
        }
    }
    (events, used)
}

/// The whole journal (the rotated part first).
pub fn read_all(paths: &ClusterPaths) -> Vec<Event> {
    let mut v = read_events(&paths.journal_old());
    v.extend(read_events(&paths.journal()));
    v
}

/// Follows the journal as it grows (and across a rotation), for `events --follow` and `watch`.
pub struct Tail {
    path: PathBuf,
    offset: u64,
    inode: u64,
    last_seq: u64,
}

impl Tail {
    /// Start after the event `after_seq` (0: from the start of the current file).
    pub fn new(paths: &ClusterPaths, after_seq: u64) -> Tail {
        Tail {
            path: paths.journal(),
            offset: 0,
            inode: 0,
            last_seq: after_seq,
        }
    }

    /// The events written since the last call.
    pub fn poll(&mut self) -> Vec<Event> {
        use std::os::unix::fs::MetadataExt;
        let Ok(mut f) = File::open(&self.path) else {
            return Vec::new();
        };
        let Ok(meta) = f.metadata() else {
            return Vec::new();
        };
        if meta.ino() != self.inode || meta.len() < self.offset {
            // A new or rotated file: read it from the start, skipping what was already seen by seq.
            self.inode = meta.ino();
            self.offset = 0;
        }
        if meta.len() == self.offset || f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut bytes = Vec::new();
        if f.read_to_end(&mut bytes).is_err() {
            return Vec::new();
        }
        let (events, used) = parse_lines(&bytes);
        self.offset += used as u64;
        let fresh: Vec<Event> = events.into_iter().filter(|e| e.seq > self.last_seq).collect();
        if let Some(last) = fresh.last() {
            self.last_seq = last.seq;
        }
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::timeline::Kind;

    #[test]
    fn a_torn_line_is_never_an_event_and_numbering_goes_on() {
        let d = tempfile::tempdir().unwrap();
        let (p, old) = (d.path().join("events.ndjson"), d.path().join("events.1.ndjson"));
        let mut j = Journal::open_at(&p, &old, MAX_BYTES).unwrap();
        j.append(Event::new(Kind::Note, "one"));
        j.append(Event::new(Kind::Note, "two"));
        // A SIGKILL in the middle of a write leaves half a line.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"seq":3,"at_ms":1,"time":"x","kind":"no"#).unwrap();
        drop(j);
        assert_eq!(read_events(&p).len(), 2);
        let mut j = Journal::open_at(&p, &old, MAX_BYTES).unwrap();
        assert_eq!(j.seq(), 2);
        assert_eq!(j.append(Event::new(Kind::Note, "three")).seq, 3);
        let all = read_events(&p);
        assert_eq!(
            all.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
            ["one", "two", "three"]
        );
        // Every line but the torn one is valid JSON.
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text.lines()
                .filter(|l| serde_json::from_str::<Event>(l).is_err())
                .count(),
            1
        );
    }

    #[test]
    fn rotation_keeps_order_and_the_tail_follows_it() {
        let d = tempfile::tempdir().unwrap();
        let (p, old) = (d.path().join("events.ndjson"), d.path().join("events.1.ndjson"));
        let mut j = Journal::open_at(&p, &old, 600).unwrap();
        let home = crate::os::state::Home { root: d.path().into() };
        let _ = home;
        let mut tail = Tail {
            path: p.clone(),
            offset: 0,
            inode: 0,
            last_seq: 0,
        };
        let mut seen = Vec::new();
        for i in 0..20 {
            j.append(Event::new(Kind::Note, format!("event {i}")));
            seen.extend(tail.poll());
        }
        assert!(old.exists(), "rotated");
        assert!(std::fs::metadata(&p).unwrap().len() <= 600);
        let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    }
}
