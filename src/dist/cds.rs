//! Application class-data sharing (AppCDS): an archive of the classes a ZooKeeper node loads, so later JVMs
//! map them instead of loading and verifying them again. Java 13+ writes one at exit with
//! `-XX:ArchiveClassesAtExit`; zkdev asks one node to record it (into its own directory) the first time, and
//! moves the file into `$ZKDEV_HOME/cds/` when that node has stopped by itself; every later start maps it
//! with `-XX:SharedArchiveFile`. A stale or unusable archive only costs a warning in the node's log: the JVM
//! then starts without it.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

pub use crate::model::dist::Plan;
use crate::model::layout::ClusterPaths;
use crate::model::spec::ClusterSpec;

/// The archive fits one java binary (and its size and time, so an upgrade makes a new one), one classpath
/// and one set of JVM flags.
pub fn archive_path(spec: &ClusterSpec, paths: &ClusterPaths) -> PathBuf {
    let java = &spec.dist.java;
    let java_file = std::fs::metadata(std::fs::canonicalize(java).unwrap_or(java.clone()))
        .ok()
        .map(|m| (m.len(), m.modified().ok()));
    let key = ArchiveKey {
        java,
        java_file,
        classpath: &spec.dist.classpath,
        jvm_flags: &spec.settings.jvm_flags,
        heap_max_mb: spec.settings.heap_max_mb,
        heap_min_mb: spec.settings.heap_min_mb,
    };
    paths
        .cds_dir
        .join(format!("zookeeper-{}-{}.jsa", spec.dist.version, key.digest()))
}

/// What an archive is good for; each field goes into its name.
struct ArchiveKey<'a> {
    java: &'a Path,
    /// The java binary's size and modification time (links followed), when they can be read.
    java_file: Option<(u64, Option<SystemTime>)>,
    classpath: &'a [PathBuf],
    jvm_flags: &'a [String],
    heap_max_mb: Option<u32>,
    heap_min_mb: Option<u32>,
}

impl ArchiveKey<'_> {
    /// The first 16 hex digits of SHA-256 over an encoding that no Rust release can change: the tag
    /// `zkdev-cds-1`, then each field in order. A byte string (a path, a flag) is its length as u64
    /// little-endian, then its bytes; a list is its length, then its items; a number is a u64
    /// little-endian; an absent value is the byte 0, a present one the byte 1 and then the value; a time
    /// is the byte 1 (at or after the Unix epoch) or 2 (before it), then whole seconds (u64) and
    /// nanoseconds (u32 little-endian) from the epoch. Changing this encoding orphans every archive:
    /// bump the tag when doing so on purpose.
    fn digest(&self) -> String {
        fn bytes(h: &mut Sha256, b: &[u8]) {
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        }
        fn number(h: &mut Sha256, n: u64) {
            h.update(n.to_le_bytes());
        }
        fn optional<T>(h: &mut Sha256, v: Option<T>, put: impl FnOnce(&mut Sha256, T)) {
            match v {
                None => h.update([0]),
                Some(v) => {
                    h.update([1]);
                    put(h, v);
                }
            }
        }
        fn time(h: &mut Sha256, t: SystemTime) {
            let (sign, d) = match t.duration_since(UNIX_EPOCH) {
                Ok(d) => (1u8, d),
                Err(e) => (2u8, e.duration()),
            };
            h.update([sign]);
            number(h, d.as_secs());
            h.update(d.subsec_nanos().to_le_bytes());
        }

        let mut h = Sha256::new();
        h.update(b"zkdev-cds-1");
        bytes(&mut h, self.java.as_os_str().as_bytes());
        optional(&mut h, self.java_file, |h, (len, modified)| {
            number(h, len);
            optional(h, modified, time);
        });
        number(&mut h, self.classpath.len() as u64);
        for jar in self.classpath {
            bytes(&mut h, jar.as_os_str().as_bytes());
        }
        number(&mut h, self.jvm_flags.len() as u64);
        for flag in self.jvm_flags {
            bytes(&mut h, flag.as_bytes());
        }
        optional(&mut h, self.heap_max_mb, |h, mb| number(h, mb.into()));
        optional(&mut h, self.heap_min_mb, |h, mb| number(h, mb.into()));
        h.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// For starting `ids`: map the archive if there is one, else let the lowest id record it.
pub fn plan(spec: &ClusterSpec, paths: &ClusterPaths, ids: &[u32]) -> Plan {
    if !spec.settings.class_data_sharing {
        return Plan::default();
    }
    let archive = archive_path(spec, paths);
    if archive.is_file() {
        return Plan {
            use_archive: Some(archive),
            record: None,
        };
    }
    let record = ids.iter().min().map(|id| {
        let partial = paths.cds_partial(*id);
        let _ = std::fs::remove_file(&partial); // a stale, maybe incomplete, recording
        (*id, partial)
    });
    Plan {
        use_archive: None,
        record,
    }
}

/// After nodes stopped by themselves (SIGTERM, no SIGKILL needed): move a finished recording into the
/// cache. A recording of a node that had to be SIGKILLed may be incomplete and is dropped.
pub fn adopt(spec: &ClusterSpec, paths: &ClusterPaths, exited_cleanly: &[u32], killed: &[u32]) {
    for id in killed {
        let _ = std::fs::remove_file(paths.cds_partial(*id));
    }
    if !spec.settings.class_data_sharing {
        return;
    }
    let archive = archive_path(spec, paths);
    for id in exited_cleanly {
        let partial = paths.cds_partial(*id);
        if !partial.is_file() {
            continue;
        }
        let adopted = !archive.is_file()
            && std::fs::create_dir_all(&paths.cds_dir).is_ok()
            && std::fs::rename(&partial, &archive).is_ok();
        if !adopted {
            let _ = std::fs::remove_file(&partial);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key<'a>(classpath: &'a [PathBuf], flags: &'a [String]) -> ArchiveKey<'a> {
        ArchiveKey {
            java: Path::new("/usr/lib/jvm/java-17-openjdk-amd64/bin/java"),
            java_file: Some((14_496, Some(UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789)))),
            classpath,
            jvm_flags: flags,
            heap_max_mb: Some(32),
            heap_min_mb: None,
        }
    }

    #[test]
    fn the_archive_name_is_a_fixed_value_for_fixed_inputs() {
        // If this fails, every archive on every machine is orphaned: change the encoding only on purpose,
        // with a new tag, and update the value here.
        let classpath = [
            PathBuf::from("/opt/zk/lib/zookeeper-3.8.6.jar"),
            PathBuf::from("/opt/zk/lib/zookeeper-jute-3.8.6.jar"),
        ];
        let flags = ["-XX:+UseSerialGC".to_string(), "-Xss256k".to_string()];
        assert_eq!(key(&classpath, &flags).digest(), "0ba514db0b70275a");
    }

    #[test]
    fn every_input_and_every_boundary_changes_the_name() {
        let cp = [PathBuf::from("/a.jar"), PathBuf::from("/b.jar")];
        let flags = ["-Xss256k".to_string()];
        let base = key(&cp, &flags).digest();
        let mut others = Vec::new();
        let mut k = key(&cp, &flags);
        k.java = Path::new("/usr/bin/java");
        others.push(k.digest());
        let mut k = key(&cp, &flags);
        k.java_file = Some((14_497, k.java_file.unwrap().1));
        others.push(k.digest());
        let mut k = key(&cp, &flags);
        k.java_file = Some((14_496, Some(UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_790))));
        others.push(k.digest());
        let mut k = key(&cp, &flags);
        k.java_file = Some((14_496, None));
        others.push(k.digest());
        let mut k = key(&cp, &flags);
        k.java_file = None;
        others.push(k.digest());
        let mut k = key(&cp, &flags);
        k.heap_max_mb = None;
        others.push(k.digest());
        let mut k = key(&cp, &flags);
        k.heap_min_mb = Some(32);
        others.push(k.digest());
        // The same bytes split differently between items and fields.
        others.push(key(&[PathBuf::from("/a.jar/b.jar")], &flags).digest());
        others.push(key(&cp[..1], &["/b.jar".to_string(), "-Xss256k".to_string()]).digest());
        others.push(key(&cp, &["-Xss256k".to_string(), String::new()]).digest());
        for (i, o) in others.iter().enumerate() {
            assert_eq!(o.len(), 16);
            assert_ne!(*o, base, "change {i} left the name as it was");
        }
        let mut all = others.clone();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), others.len(), "two different inputs share a name: {others:?}");
    }
}
