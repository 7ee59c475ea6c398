//! A node's zoo.cfg on disk, which two writers share. zkdev writes it at every start; with
//! `reconfigEnabled=true` ZooKeeper rewrites it too: it moves the server lines into
//! `zoo.cfg.dynamic.<version>` (the membership it committed), keeps a copy of the original as `zoo.cfg.bak`,
//! drops zkdev's comments and points zoo.cfg at the dynamic file (`dynamicConfigFile=`).
//!
//! zkdev keeps a copy of what it wrote last (`zoo.cfg.zkdev` beside it), so a file that differs is known to
//! be someone else's doing. At a start, a zoo.cfg that names an existing dynamic file keeps it: zkdev writes
//! its own settings (ports, dataDir, timing) without server lines, pointing at ZooKeeper's dynamic file,
//! instead of putting back the profile's membership over the one ZooKeeper committed.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::render::{self, NodeFiles};
use crate::os::state::ClusterPaths;

/// What zkdev wrote to a node's zoo.cfg last.
pub fn record(paths: &ClusterPaths, id: u32) -> PathBuf {
    paths.conf_dir(id).join("zoo.cfg.zkdev")
}

/// A node's zoo.cfg, compared with what zkdev wrote there last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnDisk {
    /// Not written yet.
    Missing,
    /// As zkdev wrote it (a file from before zkdev kept its copy counts as zkdev's unless it names a dynamic file).
    AsWritten {
        /// The dynamic file zkdev kept (ZooKeeper's membership), when it kept one.
        dynamic: Option<PathBuf>,
    },
    /// ZooKeeper rewrote it (reconfigEnabled): the servers are in `dynamic`.
    RewrittenByZookeeper { dynamic: PathBuf },
    /// Changed, but not into a dynamic configuration: edited by hand. The next start writes zkdev's.
    Edited,
}

impl OnDisk {
    /// The dynamic file that holds the node's membership, if ZooKeeper keeps one.
    pub fn dynamic(&self) -> Option<&Path> {
        match self {
            OnDisk::AsWritten { dynamic } => dynamic.as_deref(),
            OnDisk::RewrittenByZookeeper { dynamic } => Some(dynamic),
            OnDisk::Missing | OnDisk::Edited => None,
        }
    }

    pub fn rewritten_by_zookeeper(&self) -> bool {
        matches!(self, OnDisk::RewrittenByZookeeper { .. })
    }
}

/// Does ZooKeeper's dynamic file list node `id`? None without a readable one; false for a node a reconfig
/// removed (it runs, if at all, as a non-voting follower).
pub fn in_membership(dynamic: &Path, id: u32) -> Option<bool> {
    let members = std::fs::read_to_string(dynamic).ok()?;
    Some(render::lists_server(&members, id))
}

/// The newest membership ZooKeeper committed, from the dynamic files the nodes' zoo.cfg name (the highest
/// version among them); None when ZooKeeper keeps none (reconfiguration off).
pub fn committed_membership(paths: &ClusterPaths, ids: &[u32]) -> Option<crate::model::membership::Membership> {
    ids.iter()
        .filter_map(|id| inspect(paths, *id).dynamic().map(Path::to_path_buf))
        .filter_map(|file| {
            let text = std::fs::read_to_string(&file).ok()?;
            let mut m = crate::model::membership::Membership::parse(&text)?;
            // The file's own version is in its name (`zoo.cfg.dynamic.300000009`), not in its text.
            if m.version.is_none() {
                let name = file.file_name()?.to_string_lossy().into_owned();
                m.version = u64::from_str_radix(name.rsplit('.').next()?, 16).ok();
            }
            Some(m)
        })
        .max_by_key(|m| m.version)
}

/// Look at node `id`'s zoo.cfg without changing anything.
pub fn inspect(paths: &ClusterPaths, id: u32) -> OnDisk {
    let Ok(now) = std::fs::read_to_string(paths.zoo_cfg(id)) else {
        return OnDisk::Missing;
    };
    let written = std::fs::read_to_string(record(paths, id)).ok();
    let dynamic = render::dynamic_config_file(&now).map(PathBuf::from);
    match (written.as_deref() == Some(now.as_str()), dynamic) {
        (true, dynamic) => OnDisk::AsWritten { dynamic },
        (false, Some(dynamic)) => OnDisk::RewrittenByZookeeper { dynamic },
        (false, None) if written.is_none() => OnDisk::AsWritten { dynamic: None },
        (false, None) => OnDisk::Edited,
    }
}

/// The zoo.cfg zkdev writes for a start: `rendered`, or, when the file on disk names a dynamic file that
/// exists, `rendered` without its server lines pointing at that file; a node that file leaves out (removed
/// by a reconfig) gets its members plus itself, as a joiner.
pub fn contents_for_start(paths: &ClusterPaths, id: u32, rendered: &str) -> String {
    let now = std::fs::read_to_string(paths.zoo_cfg(id)).unwrap_or_default();
    let Some(dynamic) = render::dynamic_config_file(&now) else {
        return rendered.to_string();
    };
    match std::fs::read_to_string(dynamic) {
        Ok(members) if render::lists_server(&members, id) => render::with_dynamic_file(rendered, dynamic),
        Ok(members) if members.lines().any(|l| l.trim_start().starts_with("server.")) => {
            render::as_joiner(rendered, &members, id)
        }
        _ => rendered.to_string(),
    }
}

/// Write one node's files (directories created as needed), each atomically.
pub fn write_files(files: &NodeFiles) -> Result<()> {
    for (path, contents) in &files.files {
        let dir = path.parent().expect("file has a parent");
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        crate::os::state::write_atomic(path, contents.as_bytes())?;
    }
    Ok(())
}

/// Write a node's files for a start, each atomically: zoo.cfg as `contents_for_start` says (and zkdev's copy
/// of it), the rest as rendered.
pub fn write_node(paths: &ClusterPaths, files: &NodeFiles) -> Result<()> {
    let zoo_cfg = paths.zoo_cfg(files.id);
    for (path, contents) in &files.files {
        let dir = path.parent().expect("file has a parent");
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        if *path == zoo_cfg {
            let text = contents_for_start(paths, files.id, contents);
            // The copy first: a crash between the two leaves a file that differs from the copy, which reads
            // as changed, never the other way round.
            crate::os::state::write_atomic(&record(paths, files.id), text.as_bytes())?;
            crate::os::state::write_atomic(path, text.as_bytes())?;
        } else {
            crate::os::state::write_atomic(path, contents.as_bytes())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::state::Home;

    fn paths() -> (tempfile::TempDir, ClusterPaths) {
        let dir = tempfile::tempdir().unwrap();
        let paths = Home {
            root: dir.path().to_path_buf(),
        }
        .cluster("demo");
        (dir, paths)
    }

    fn files(paths: &ClusterPaths, zoo_cfg: &str) -> NodeFiles {
        NodeFiles {
            id: 1,
            files: vec![
                (paths.zoo_cfg(1), zoo_cfg.to_string()),
                (paths.data_dir(1).join("myid"), "1\n".into()),
            ],
            argv: vec![],
        }
    }

    const RENDERED: &str = "# Written by zkdev\ntickTime=200\nclientPort=12181\nserver.1=127.0.0.1:2881:3881\nserver.2=127.0.0.1:2882:3882\n";

    #[test]
    fn a_rewrite_by_zookeeper_is_seen_and_its_membership_kept_at_the_next_start() {
        let (_dir, paths) = paths();
        assert_eq!(inspect(&paths, 1), OnDisk::Missing);
        write_node(&paths, &files(&paths, RENDERED)).unwrap();
        assert_eq!(inspect(&paths, 1), OnDisk::AsWritten { dynamic: None });
        assert_eq!(std::fs::read_to_string(paths.zoo_cfg(1)).unwrap(), RENDERED);

        // What ZooKeeper 3.8 does at a start with reconfigEnabled=true.
        let dynamic = paths.conf_dir(1).join("zoo.cfg.dynamic.100000000");
        std::fs::write(&dynamic, "server.1=127.0.0.1:2881:3881:participant;127.0.0.1:12181\n").unwrap();
        let zk = format!("tickTime=200\ndynamicConfigFile={}\n", dynamic.display());
        std::fs::write(paths.zoo_cfg(1), &zk).unwrap();
        assert_eq!(
            inspect(&paths, 1),
            OnDisk::RewrittenByZookeeper {
                dynamic: dynamic.clone()
            }
        );

        write_node(&paths, &files(&paths, RENDERED)).unwrap();
        let now = std::fs::read_to_string(paths.zoo_cfg(1)).unwrap();
        assert!(
            now.starts_with("# Written by zkdev\ntickTime=200\nclientPort=12181\n"),
            "{now}"
        );
        assert!(!now.contains("server."), "{now}");
        assert!(
            now.ends_with(&format!("dynamicConfigFile={}\n", dynamic.display())),
            "{now}"
        );
        assert_eq!(
            inspect(&paths, 1),
            OnDisk::AsWritten {
                dynamic: Some(dynamic.clone())
            }
        );

        // The dynamic file gone (a hand clean-up): the profile's servers again.
        std::fs::remove_file(&dynamic).unwrap();
        write_node(&paths, &files(&paths, RENDERED)).unwrap();
        assert_eq!(std::fs::read_to_string(paths.zoo_cfg(1)).unwrap(), RENDERED);
    }

    #[test]
    fn a_hand_edit_is_not_taken_for_zookeeper_and_is_overwritten() {
        let (_dir, paths) = paths();
        write_node(&paths, &files(&paths, RENDERED)).unwrap();
        std::fs::write(paths.zoo_cfg(1), "tickTime=2000\n").unwrap();
        assert_eq!(inspect(&paths, 1), OnDisk::Edited);
        write_node(&paths, &files(&paths, RENDERED)).unwrap();
        assert_eq!(std::fs::read_to_string(paths.zoo_cfg(1)).unwrap(), RENDERED);
    }
}
