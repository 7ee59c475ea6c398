//! Application class-data sharing (AppCDS): an archive of the classes a ZooKeeper node loads, so later JVMs
//! map them instead of loading and verifying them again. Java 13+ writes one at exit with
//! `-XX:ArchiveClassesAtExit`; zkdev asks one node to record it (into its own directory) the first time, and
//! moves the file into `$ZKDEV_HOME/cds/` when that node has stopped by itself; every later start maps it
//! with `-XX:SharedArchiveFile`. A stale or unusable archive only costs a warning in the node's log: the JVM
//! then starts without it.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use crate::spec::ClusterSpec;
use crate::state::ClusterPaths;

/// What `render` adds to the nodes' command lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Map this archive.
    pub use_archive: Option<PathBuf>,
    /// This node records an archive at exit, at this path.
    pub record: Option<(u32, PathBuf)>,
}

/// The archive fits one java binary (and its size and time, so an upgrade makes a new one), one classpath
/// and one set of JVM flags.
pub fn archive_path(spec: &ClusterSpec, paths: &ClusterPaths) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    spec.dist.java.hash(&mut h);
    if let Ok(m) = std::fs::metadata(std::fs::canonicalize(&spec.dist.java).unwrap_or(spec.dist.java.clone())) {
        m.len().hash(&mut h);
        m.modified().ok().hash(&mut h);
    }
    spec.dist.classpath.hash(&mut h);
    spec.settings.jvm_flags.hash(&mut h);
    spec.settings.heap_max_mb.hash(&mut h);
    spec.settings.heap_min_mb.hash(&mut h);
    paths
        .cds_dir
        .join(format!("zookeeper-{}-{:016x}.jsa", spec.dist.version, h.finish()))
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
