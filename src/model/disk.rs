//! A node's disk fault: what `zkdev disk` sets, as the line the disk-fault library reads.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum DiskFault {
    Healthy,
    /// Every fsync/fdatasync under the node's data directory waits `ms` first.
    SlowFsync {
        ms: u32,
    },
    /// Every write there fails with ENOSPC.
    Full,
    /// Every write and fsync there fails with EIO.
    Eio,
}

impl DiskFault {
    /// The control file's line (the library's format: `none`, `slow-fsync MS`, `full`, `eio`).
    pub fn control_line(self) -> String {
        match self {
            DiskFault::Healthy => "none\n".into(),
            DiskFault::SlowFsync { ms } => format!("slow-fsync {ms}\n"),
            DiskFault::Full => "full\n".into(),
            DiskFault::Eio => "eio\n".into(),
        }
    }

    /// The fault a control file holds; anything unreadable is no fault, as the library sees it.
    pub fn from_control_line(text: &str) -> DiskFault {
        let mut words = text.split_whitespace();
        match (words.next(), words.next().and_then(|w| w.parse().ok())) {
            (Some("slow-fsync"), Some(ms)) => DiskFault::SlowFsync { ms },
            (Some("full"), _) => DiskFault::Full,
            (Some("eio"), _) => DiskFault::Eio,
            _ => DiskFault::Healthy,
        }
    }

    /// For people: `slow fsync (300 ms)`, `full (ENOSPC)`, `failing (EIO)`, `healthy`.
    pub fn describe(self) -> String {
        match self {
            DiskFault::Healthy => "healthy".into(),
            DiskFault::SlowFsync { ms } => format!("slow fsync ({ms} ms)"),
            DiskFault::Full => "full (writes fail with ENOSPC)".into(),
            DiskFault::Eio => "failing (writes and fsyncs fail with EIO)".into(),
        }
    }

    /// The `zkdev disk` flag that sets it.
    pub fn flag(self) -> String {
        match self {
            DiskFault::Healthy => "--heal".into(),
            DiskFault::SlowFsync { ms } => format!("--slow-fsync {ms}ms"),
            DiskFault::Full => "--full".into(),
            DiskFault::Eio => "--eio".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_survives_its_control_line() {
        for f in [
            DiskFault::Healthy,
            DiskFault::SlowFsync { ms: 300 },
            DiskFault::Full,
            DiskFault::Eio,
        ] {
            assert_eq!(DiskFault::from_control_line(&f.control_line()), f);
        }
        assert_eq!(DiskFault::from_control_line("garbage"), DiskFault::Healthy);
    }
}
