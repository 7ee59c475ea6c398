//! The cluster directory on disk: where every file lives, the advisory lock, atomic writes, and
//! `state.json` (what zkdev started: pid, start time, how each node was last left).
//!
//! ```text
//! $ZKDEV_HOME/clusters/<name>/cluster.toml     the resolved spec
//! $ZKDEV_HOME/clusters/<name>/state.json       per node process state
//! $ZKDEV_HOME/clusters/<name>/node<i>/conf/    zoo.cfg + log configuration
//! $ZKDEV_HOME/clusters/<name>/node<i>/data/    myid, version-2/
//! $ZKDEV_HOME/clusters/<name>/node<i>/logs/    zookeeper.log
//! $ZKDEV_HOME/locks/<name>.lock                held by every command that changes the cluster
//! $ZKDEV_HOME/cds/<key>.jsa                     class-data-sharing archives (profiles that ask for them)
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::ClusterSpec;

pub const STATE_FORMAT: u32 = 1;
/// Written into every cluster directory zkdev creates; purge refuses a directory without it.
pub const MARKER_FILE: &str = ".zkdev-cluster";

#[derive(Debug, Clone)]
pub struct Home {
    pub root: PathBuf,
}

impl Home {
    /// `--home`, else `$ZKDEV_HOME` (clap fills that in), else `$XDG_DATA_HOME/zkdev`, else `~/.local/share/zkdev`.
    pub fn resolve(flag: Option<PathBuf>) -> Result<Home> {
        let root = match flag {
            Some(p) => p,
            None => {
                let data = std::env::var_os("XDG_DATA_HOME")
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
                    .ok_or_else(|| {
                        Error::env("cannot find a home for zkdev: set --home DIR or ZKDEV_HOME (HOME is not set)")
                    })?;
                data.join("zkdev")
            }
        };
        let root = if root.is_absolute() {
            root
        } else {
            std::env::current_dir()
                .map_err(|e| Error::io("cannot read the current directory", ".", e))?
                .join(root)
        };
        Ok(Home { root })
    }

    pub fn cluster(&self, name: &str) -> ClusterPaths {
        ClusterPaths {
            root: self.root.join("clusters").join(name),
            lock: self.root.join("locks").join(format!("{name}.lock")),
            cds_dir: self.root.join("cds"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClusterPaths {
    pub root: PathBuf,
    pub lock: PathBuf,
    /// The class-data-sharing archive cache, shared by every cluster of this home.
    pub cds_dir: PathBuf,
}

impl ClusterPaths {
    pub fn spec_file(&self) -> PathBuf {
        self.root.join("cluster.toml")
    }
    pub fn state_file(&self) -> PathBuf {
        self.root.join("state.json")
    }
    pub fn marker(&self) -> PathBuf {
        self.root.join(MARKER_FILE)
    }
    pub fn node_dir(&self, id: u32) -> PathBuf {
        self.root.join(format!("node{id}"))
    }
    pub fn conf_dir(&self, id: u32) -> PathBuf {
        self.node_dir(id).join("conf")
    }
    pub fn zoo_cfg(&self, id: u32) -> PathBuf {
        self.conf_dir(id).join("zoo.cfg")
    }
    pub fn data_dir(&self, id: u32) -> PathBuf {
        self.node_dir(id).join("data")
    }
    pub fn logs_dir(&self, id: u32) -> PathBuf {
        self.node_dir(id).join("logs")
    }
    pub fn log_file(&self, id: u32) -> PathBuf {
        self.logs_dir(id).join("zookeeper.log")
    }
    /// Where a node records a class-data-sharing archive at exit, before zkdev adopts it into the cache.
    pub fn cds_partial(&self, id: u32) -> PathBuf {
        self.node_dir(id).join("cds-recording.jsa")
    }

    pub fn exists(&self) -> bool {
        self.spec_file().is_file()
    }

    pub fn load_spec(&self) -> Result<ClusterSpec> {
        let path = self.spec_file();
        let text = fs::read_to_string(&path).map_err(|e| Error::io("cannot read", &path, e))?;
        ClusterSpec::from_toml(&text, &path.display().to_string())
    }

    pub fn load_state(&self) -> Result<State> {
        let path = self.state_file();
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                Error::failed(format!(
                    "{} is damaged ({e}); zkdev cannot tell which JVMs are its own. Stop them by pid if needed, \
                     then `zkdev down --purge`",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(Error::io("cannot read", &path, e)),
        }
    }

    /// The state, with any unrecorded JVM of the cluster's nodes taken in and saved. For commands that hold
    /// the lock (a zkdev killed between spawning a node and recording it leaves such a JVM).
    pub fn load_state_adopting(&self, ids: &[u32]) -> Result<State> {
        let mut state = self.load_state()?;
        if !state.adopt_orphans(self, ids).is_empty() {
            self.save_state(&state)?;
        }
        Ok(state)
    }

    pub fn save_state(&self, state: &State) -> Result<()> {
        let text = serde_json::to_string_pretty(state).expect("state serialises");
        write_atomic(&self.state_file(), text.as_bytes())
    }

    /// Take the cluster's lock, waiting up to `wait` for another zkdev command to finish.
    pub fn lock(&self, wait: Duration) -> Result<LockGuard> {
        let dir = self.lock.parent().expect("lock has a parent");
        fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(|e| Error::io("cannot open lock file", &self.lock, e))?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(held) => return Ok(LockGuard { _held: held }),
                Err((f, _)) => file = f,
            }
            if std::time::Instant::now() >= deadline {
                return Err(Error::failed(format!(
                    "another zkdev command is working on this cluster (lock {} held); wait for it to finish and retry",
                    self.lock.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Held while a command changes the cluster; released on drop (the kernel releases it if zkdev dies).
pub struct LockGuard {
    _held: Flock<File>,
}

/// Write a file atomically: a temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("file has a parent");
    fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io("cannot write in", dir, e))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| Error::io("cannot write", path, e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("cannot write", path, e.error))?;
    Ok(())
}

/// What zkdev knows about the processes it started.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub format: u32,
    pub nodes: BTreeMap<u32, NodeState>,
}

impl Default for State {
    fn default() -> Self {
        State {
            format: STATE_FORMAT,
            nodes: BTreeMap::new(),
        }
    }
}

impl State {
    pub fn node(&self, id: u32) -> NodeState {
        self.nodes.get(&id).cloned().unwrap_or(NodeState::Stopped {
            reason: StopReason::NeverStarted,
        })
    }
    pub fn set(&mut self, id: u32, s: NodeState) {
        self.nodes.insert(id, s);
    }

    /// Take in the JVMs of `ids` that run but are not recorded (see `process::find_by_marker`).
    /// Returns the ids adopted; the caller saves the state if it holds the lock.
    pub fn adopt_orphans(&mut self, paths: &ClusterPaths, ids: &[u32]) -> Vec<u32> {
        use crate::process::{identify, Liveness};
        let missing: Vec<(u32, PathBuf)> = ids
            .iter()
            .filter(|id| identify(&self.node(**id), &paths.zoo_cfg(**id)) == Liveness::Gone)
            .map(|id| (*id, paths.zoo_cfg(*id)))
            .collect();
        if missing.is_empty() {
            return Vec::new();
        }
        let found = crate::process::find_by_marker(&missing);
        let adopted = found.iter().map(|(id, _)| *id).collect();
        for (id, s) in found {
            self.set(id, s);
        }
        adopted
    }
}

/// A node's lifecycle as zkdev last left it. Whether a `Started` process still lives is checked against
/// /proc every time (see `process::identify`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum NodeState {
    Started {
        pid: i32,
        /// Process start time in clock ticks since boot (/proc/PID/stat field 22).
        start_ticks: u64,
        /// Wall-clock start, seconds since the epoch, for display.
        started_at: u64,
    },
    Stopped {
        reason: StopReason,
    },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    NeverStarted,
    /// `down`, `stop`.
    Stopped,
    /// `kill`, `kill-leader`.
    Killed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips() {
        let mut s = State::default();
        s.set(
            1,
            NodeState::Started {
                pid: 42,
                start_ticks: 7,
                started_at: 1,
            },
        );
        s.set(
            2,
            NodeState::Stopped {
                reason: StopReason::Killed,
            },
        );
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<State>(&text).unwrap(), s);
        assert!(text.contains("\"state\":\"started\""));
    }

    #[test]
    fn lock_is_exclusive_between_holders() {
        let d = tempfile::tempdir().unwrap();
        let home = Home {
            root: d.path().to_path_buf(),
        };
        let paths = home.cluster("x");
        let held = paths.lock(Duration::from_millis(10)).unwrap();
        // flock is per open file description, so a second open in the same process contends too.
        assert!(paths.lock(Duration::from_millis(100)).is_err());
        drop(held);
        paths.lock(Duration::from_millis(10)).unwrap();
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }
}
