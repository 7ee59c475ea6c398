//! The cluster directory on disk: resolving the home, the advisory lock, atomic writes, and `state.json`
//! (what zkdev started: pid, start time, how each node was last left). Where every file lives is path
//! arithmetic in `model::layout`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::model::layout::{ClusterPaths, Home, MARKER_FILE};
use crate::model::spec::ClusterSpec;

pub const STATE_FORMAT: u32 = 1;

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
        Ok(Home { root: canonical(&root) })
    }
}

/// One spelling for every path: symbolic links, `.` and `..` resolved in the part that exists, `.` and `..`
/// folded in the part that does not exist yet. Two spellings of the same home are then the same home, so a
/// node's command line, the lock and the purge guard all agree.
pub fn canonical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut existing = path.to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    let base = loop {
        if let Ok(c) = existing.canonicalize() {
            break c;
        }
        match (existing.file_name().map(|n| n.to_os_string()), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            // `..` or `.` at the end of a missing path: fold lexically from the root.
            _ => match existing.parent() {
                Some(parent) if existing.ends_with("..") || existing.ends_with(".") => {
                    let comp = existing.components().next_back().map(|c| c.as_os_str().to_os_string());
                    rest.extend(comp);
                    existing = parent.to_path_buf();
                }
                _ => break existing.clone(),
            },
        }
    };
    let mut out = base;
    for part in rest.iter().rev() {
        match Path::new(part).components().next() {
            Some(Component::ParentDir) => {
                out.pop();
            }
            Some(Component::CurDir) | None => {}
            _ => out.push(part),
        }
    }
    out
}

impl ClusterPaths {
    /// What identifies node `id`'s JVM (see `process::Ident`).
    pub fn ident(&self, spec: &ClusterSpec, id: u32) -> crate::os::process::Ident {
        crate::os::process::Ident::new(&spec.uid, id, self.zoo_cfg(id), Some(&spec.dist.java))
    }

    /// Each node's log, for `model::election::explain`. Lossy: one odd byte in a log (a znode's binary
    /// data, say) must not hide the node's votes; a missing log reads as empty.
    pub fn log_texts(&self, spec: &ClusterSpec) -> BTreeMap<u32, String> {
        spec.ids()
            .into_iter()
            .map(|id| {
                let text = fs::read(self.log_file(id))
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                (id, text)
            })
            .collect()
    }

    pub fn idents(&self, spec: &ClusterSpec) -> Vec<(u32, crate::os::process::Ident)> {
        spec.ids().into_iter().map(|id| (id, self.ident(spec, id))).collect()
    }

    pub fn exists(&self) -> bool {
        self.spec_file().is_file()
    }

    pub fn load_spec(&self) -> Result<ClusterSpec> {
        let path = self.spec_file();
        let text = fs::read_to_string(&path).map_err(|e| Error::io("cannot read", &path, e))?;
        ClusterSpec::from_toml(&text, &path.display().to_string())
    }

    /// What `state.json` records. A damaged one (truncated, not JSON, a symbolic link, another format) is
    /// treated like a missing one: the processes themselves are the truth, and `adopt_orphans` finds the
    /// cluster's JVMs by their tokens. Says so once per process (`os::warn`); see `state_damage`.
    pub fn load_state(&self) -> Result<State> {
        match self.read_state() {
            Ok(s) => Ok(s),
            Err(StateRead::Damaged(why)) => {
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| {
                    crate::os::warn::warn(&format!(
                        "warning: {} {why}; ignoring it and finding the cluster's JVMs by their command lines",
                        self.state_file().display()
                    ))
                });
                Ok(State::default())
            }
            Err(StateRead::Io(e)) => Err(e),
        }
    }

    /// `load_state` without the fallback: why the file cannot be used, if it cannot.
    pub fn read_state(&self) -> std::result::Result<State, StateRead> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.state_file();
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path);
        let mut file = match file {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
                return Err(StateRead::Damaged("is a symbolic link, not a file zkdev wrote".into()))
            }
            Err(e) => return Err(StateRead::Io(Error::io("cannot read", &path, e))),
        };
        let mut text = String::new();
        if let Err(e) = file.read_to_string(&mut text) {
            return Err(StateRead::Damaged(format!("cannot be read as text ({e})")));
        }
        let state: State = serde_json::from_str(&text).map_err(|e| StateRead::Damaged(format!("is damaged ({e})")))?;
        if state.format != STATE_FORMAT {
            return Err(StateRead::Damaged(format!(
                "has format {} (this zkdev writes {STATE_FORMAT})",
                state.format
            )));
        }
        Ok(state)
    }

    pub fn save_state(&self, state: &State) -> Result<()> {
        let text = serde_json::to_string_pretty(state).expect("state serialises");
        write_atomic(&self.state_file(), text.as_bytes())
    }

    /// Take the cluster's lock, waiting up to `wait` for another zkdev command to finish.
    pub async fn lock(&self, wait: Duration) -> Result<LockGuard> {
        lock_file(&self.lock, wait, Duration::from_millis(50))
            .await
            .map_err(|_| {
                Error::failed(format!(
                    "another zkdev command is working on this cluster (lock {} held); wait for it to finish and retry",
                    self.lock.display()
                ))
            })
    }

    /// Take the quorum guard's lock, waiting up to `wait` for another take-down (a command or the
    /// dashboard) to finish. Whoever holds it decides with a fresh look at the nodes and keeps it until its
    /// nodes are down, so the next decision counts them.
    pub async fn quorum_lock(&self, wait: Duration) -> Result<LockGuard> {
        let file = self.quorum_lock_file();
        lock_file(&file, wait, Duration::from_millis(5))
            .await
            .map_err(|e| match e {
                Some(e) => e,
                None => Error::failed(format!(
                    "another stop, kill or pause of this cluster did not finish within {} s (lock {} held); \
                 wait for it and retry",
                    wait.as_secs(),
                    file.display()
                )),
            })
    }
}

/// An exclusive advisory lock on `path`, polled every `every` for up to `wait`. Err(None): still held by
/// someone else at the deadline; Err(Some): the file could not be opened.
async fn lock_file(path: &Path, wait: Duration, every: Duration) -> std::result::Result<LockGuard, Option<Error>> {
    let dir = path.parent().expect("lock has a parent");
    fs::create_dir_all(dir).map_err(|e| Some(Error::io("cannot create", dir, e)))?;
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Some(Error::io("cannot open lock file", path, e)))?;
    let deadline = std::time::Instant::now() + wait;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(held) => return Ok(LockGuard { _held: held }),
            Err((f, _)) => file = f,
        }
        if std::time::Instant::now() >= deadline {
            return Err(None);
        }
        tokio::time::sleep(every).await;
    }
}

/// Why `state.json` could not be used.
#[derive(Debug)]
pub enum StateRead {
    Damaged(String),
    Io(Error),
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

    /// Take in the JVMs of `idents` that run but are not recorded (see `process::find_unrecorded`).
    /// Returns the ids adopted; the caller saves the state if it should.
    pub fn adopt_orphans(&mut self, idents: &[(u32, crate::os::process::Ident)]) -> Vec<u32> {
        use crate::os::process::{identify, Liveness};
        let missing: Vec<(u32, crate::os::process::Ident)> = idents
            .iter()
            .filter(|(id, ident)| identify(&self.node(*id), ident) == Liveness::Gone)
            .cloned()
            .collect();
        if missing.is_empty() {
            return Vec::new();
        }
        let found = crate::os::process::find_unrecorded(&missing);
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
    /// zkdev has begun to stop this process (the intent is written before the signal): once it is gone it
    /// counts as stopped, never as crashed, even if the zkdev that stopped it was killed half-way.
    Stopping {
        pid: i32,
        start_ticks: u64,
        started_at: u64,
        reason: StopReason,
    },
    Stopped {
        reason: StopReason,
    },
    /// Exited without zkdev asking, as the supervisor saw it (`how`: exit status or signal, and the log's
    /// last error).
    Crashed {
        how: String,
        at_ms: u64,
    },
}

impl NodeState {
    /// The recorded process (pid, start time), if one is meant to be alive or on its way out.
    pub fn process(&self) -> Option<(i32, u64)> {
        match *self {
            NodeState::Started { pid, start_ticks, .. } | NodeState::Stopping { pid, start_ticks, .. } => {
                Some((pid, start_ticks))
            }
            _ => None,
        }
    }

    /// The same process, marked as being stopped by zkdev for `reason`.
    pub fn stopping(&self, reason: StopReason) -> NodeState {
        match *self {
            NodeState::Started {
                pid,
                start_ticks,
                started_at,
            } => NodeState::Stopping {
                pid,
                start_ticks,
                started_at,
                reason,
            },
            ref other => other.clone(),
        }
    }
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
    fn one_spelling_per_home() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().canonicalize().unwrap().join("r");
        fs::create_dir(&real).unwrap();
        let link = d.path().join("l");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(canonical(&link), real);
        assert_eq!(canonical(&link.join("./x/../h")), real.join("h"));
        assert_eq!(canonical(&d.path().join("./r/new/./a/../b")), real.join("new/b"));
        assert_eq!(canonical(&link.join("missing/..")), real);
    }

    #[test]
    fn a_damaged_or_linked_state_file_is_not_a_dead_end() {
        let d = tempfile::tempdir().unwrap();
        let home = Home {
            root: d.path().to_path_buf(),
        };
        let paths = home.cluster("x");
        fs::create_dir_all(&paths.root).unwrap();
        fs::write(paths.state_file(), "{\"format\":1,\"nod").unwrap();
        assert!(matches!(paths.read_state(), Err(StateRead::Damaged(_))));
        assert_eq!(paths.load_state().unwrap(), State::default());
        fs::remove_file(paths.state_file()).unwrap();
        let elsewhere = d.path().join("elsewhere.json");
        fs::write(&elsewhere, serde_json::to_string(&State::default()).unwrap()).unwrap();
        std::os::unix::fs::symlink(&elsewhere, paths.state_file()).unwrap();
        assert!(matches!(paths.read_state(), Err(StateRead::Damaged(m)) if m.contains("symbolic link")));
        // Saving replaces the link itself, never the file it points to.
        paths.save_state(&State::default()).unwrap();
        assert!(!fs::symlink_metadata(paths.state_file())
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(paths.read_state().is_ok());
    }

    #[tokio::test]
    async fn lock_is_exclusive_between_holders() {
        let d = tempfile::tempdir().unwrap();
        let home = Home {
            root: d.path().to_path_buf(),
        };
        let paths = home.cluster("x");
        let held = paths.lock(Duration::from_millis(10)).await.unwrap();
        // flock is per open file description, so a second open in the same process contends too.
        assert!(paths.lock(Duration::from_millis(100)).await.is_err());
        drop(held);
        paths.lock(Duration::from_millis(10)).await.unwrap();
        // The quorum guard's lock is its own: a take-down does not wait for an `add`, nor one for the other.
        let held = paths.lock(Duration::from_millis(10)).await.unwrap();
        let guard = paths.quorum_lock(Duration::from_millis(10)).await.unwrap();
        let err = paths
            .quorum_lock(Duration::from_millis(50))
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("quorum.lock held"), "{err}");
        drop((held, guard));
        paths.quorum_lock(Duration::from_millis(10)).await.unwrap();
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
