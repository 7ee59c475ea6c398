//! The disk-fault library on this machine: where it is, the environment that preloads it into a node's JVM,
//! and the control file through which the supervisor switches a node's fault.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::disk::DiskFault;
use crate::os::state::ClusterPaths;

/// The library's file name as cargo builds it (the `zkdev-faultfs` crate of this workspace).
pub const LIBRARY: &str = "libzkdev_faultfs.so";

/// The library: `ZKDEV_FAULTFS` if set, else next to the zkdev executable (where `cargo build` puts both).
pub fn library() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ZKDEV_FAULTFS") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::env(format!(
                "ZKDEV_FAULTFS names {}, which is not a file; point it at {LIBRARY} or unset it",
                p.display()
            )))
        };
    }
    let exe = std::env::current_exe().map_err(|e| Error::env(format!("cannot find zkdev's own executable: {e}")))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let p = dir.join(LIBRARY);
    if p.is_file() {
        Ok(p)
    } else {
        Err(Error::env(format!(
            "the disk-fault library {LIBRARY} is not next to zkdev ({}): build the whole workspace \
             (`cargo build --release` at the top of zkdev's sources builds both), or set ZKDEV_FAULTFS to its path",
            dir.display()
        )))
    }
}

/// A node's control file (in its own directory, beside `data`).
pub fn control_file(paths: &ClusterPaths, id: u32) -> PathBuf {
    paths.node_dir(id).join("disk-fault")
}

/// The environment a node's JVM starts with when the cluster has disk faults on: the library preloaded,
/// told which control file to read and which directories are the node's (its data directory holds both the
/// snapshots and the transaction log: zkdev sets no dataLogDir).
pub fn env(paths: &ClusterPaths, id: u32) -> Result<Vec<(String, String)>> {
    let lib = library()?.display().to_string();
    let data = paths.data_dir(id).display().to_string();
    // The dynamic loader splits LD_PRELOAD at spaces and colons, and the library its directory list at
    // colons: such a path would be ignored, and a fault would silently do nothing.
    for (what, path, fix) in [
        ("the disk-fault library", &lib, "move zkdev (with the library) to a directory whose path has neither, or set ZKDEV_FAULTFS to a copy of the library at such a path"),
        ("the node's data directory", &data, "use a zkdev home whose path has neither (--home or ZKDEV_HOME)"),
    ] {
        if path.contains(|c: char| c == ':' || c.is_whitespace()) {
            return Err(Error::env(format!(
                "{what} {path} has a space or a colon in its path, which the dynamic loader (LD_PRELOAD) cannot \
                 take; {fix}"
            )));
        }
    }
    // A preload the user already has (jemalloc, say) stays, after zkdev's.
    let preload = match std::env::var("LD_PRELOAD") {
        Ok(other) if !other.trim().is_empty() && !other.contains(LIBRARY) => format!("{lib}:{other}"),
        _ => lib,
    };
    Ok(vec![
        ("LD_PRELOAD".into(), preload),
        (
            "ZKDEV_FAULTFS_CONTROL".into(),
            control_file(paths, id).display().to_string(),
        ),
        ("ZKDEV_FAULTFS_PATHS".into(), data),
        (
            UNDO_ENV.into(),
            crate::os::power::records_dir(paths, id).display().to_string(),
        ),
    ])
}

/// The variable that turns on the library's record of unsynced changes (for `disk --power-cut`).
pub const UNDO_ENV: &str = "ZKDEV_FAULTFS_UNDO";

/// Does process `pid` keep the record of unsynced changes a power cut needs (started with `UNDO_ENV`)?
pub fn records_in(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
        env.split(|b| *b == 0)
            .any(|kv| kv.starts_with(format!("{UNDO_ENV}=").as_bytes()))
    })
}

/// Has process `pid` loaded the disk-fault library? (A JVM started before the cluster had disk faults, or
/// whose loader refused the preload, has not: a fault set for it would do nothing.)
pub fn loaded_in(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).is_ok_and(|maps| maps.contains(LIBRARY))
}

/// Set a node's fault; the library sees it within 25 ms.
pub fn set(paths: &ClusterPaths, id: u32, fault: DiskFault) -> Result<()> {
    crate::os::state::write_atomic(&control_file(paths, id), fault.control_line().as_bytes())
}

/// A node's fault now (healthy when there is no control file).
pub fn get(paths: &ClusterPaths, id: u32) -> DiskFault {
    std::fs::read_to_string(control_file(paths, id))
        .map(|t| DiskFault::from_control_line(&t))
        .unwrap_or(DiskFault::Healthy)
}
