//! What the cluster is doing right now: the recorded state, checked against /proc, plus what every server
//! answers, probed concurrently. This is the one structure behind `status`, its JSON, and every wait.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::Serialize;

use crate::probe::{self, Probe};
use crate::process::{identify, Liveness};
use crate::spec::{ClusterSpec, Role};
use crate::state::{ClusterPaths, NodeState, State};

/// How long one probe may take before the node counts as unresponsive.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessState {
    Running,
    Stopped,
    Paused,
    Crashed,
    Unresponsive,
}

impl ProcessState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessState::Running => "running",
            ProcessState::Stopped => "stopped",
            ProcessState::Paused => "paused",
            ProcessState::Crashed => "crashed",
            ProcessState::Unresponsive => "unresponsive",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub id: u32,
    pub role: Role,
    pub process: ProcessState,
    /// leader | follower | observer | standalone | read-only | looking; None when not running.
    pub mode: Option<String>,
    pub pid: Option<i32>,
    pub client_port: u16,
    pub quorum_port: u16,
    pub election_port: u16,
    pub admin_port: Option<u16>,
    pub zxid: Option<String>,
    pub epoch: Option<u32>,
    pub counter: Option<u32>,
    pub connections: Option<u64>,
    pub znodes: Option<u64>,
    pub data_dir: String,
    pub log_file: String,
    /// From `mntr` (3.6+), when asked: e.g. `following - broadcast`.
    pub peer_state: Option<String>,
    /// Leader only, from `mntr`.
    pub synced_followers: Option<u64>,
    pub synced_observers: Option<u64>,
    /// Why a node is not serving, when zkdev can tell (a crashed node's last log error, a probe error).
    pub detail: Option<String>,
    #[serde(skip)]
    pub zxid_raw: Option<u64>,
}

impl NodeStatus {
    /// Serving client requests (leader, follower, observer).
    pub fn serving(&self) -> bool {
        self.process == ProcessState::Running && self.zxid_raw.is_some()
    }
    pub fn is_leader(&self) -> bool {
        self.serving() && self.mode.as_deref() == Some("leader")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Quorum {
    pub voters: usize,
    pub voters_up: usize,
    pub needed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub cluster: String,
    pub connect_string: String,
    pub leader: Option<u32>,
    /// The leader's epoch (high 32 bits of its zxid).
    pub epoch: Option<u32>,
    pub quorum: Quorum,
    pub nodes: Vec<NodeStatus>,
}

impl ClusterStatus {
    pub fn leaders(&self) -> Vec<&NodeStatus> {
        self.nodes.iter().filter(|n| n.is_leader()).collect()
    }

    /// Every node serving and exactly one leader, a participant.
    pub fn healthy(&self) -> bool {
        let leaders = self.leaders();
        self.nodes.iter().all(NodeStatus::serving) && leaders.len() == 1 && leaders[0].role == Role::Participant
    }

    pub fn node(&self, id: u32) -> Option<&NodeStatus> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Why the cluster is not healthy, per node, for error messages and progress.
    pub fn not_serving(&self) -> Vec<&NodeStatus> {
        self.nodes.iter().filter(|n| !n.serving()).collect()
    }
}

/// How much to ask each server.
#[derive(Debug, Clone, Copy)]
pub struct Probing {
    pub timeout: Duration,
    /// Also ask `mntr` (peer state, synced followers); `status` does, the wait loops do not.
    pub mntr: bool,
}

impl Probing {
    /// For `status`: everything, 500 ms deadline.
    pub const FULL: Probing = Probing {
        timeout: PROBE_TIMEOUT,
        mntr: true,
    };
    /// For polling loops: `srvr` only, 300 ms deadline.
    pub const QUICK: Probing = Probing {
        timeout: Duration::from_millis(300),
        mntr: false,
    };
}

/// Probe one node: /proc first (a paused or dead JVM is not asked), then `srvr` (and `mntr`).
async fn node_status(spec: &ClusterSpec, paths: &ClusterPaths, state: &NodeState, id: u32, how: Probing) -> NodeStatus {
    let n = spec.node(id).expect("node in spec");
    let liveness = identify(state, &paths.zoo_cfg(id));
    // srvr first, then mntr only from a serving node: were they sent together, each would count the other in
    // `Connections`; and an unresponsive node should cost one deadline, not two.
    let srvr_probe = match liveness {
        Liveness::Ours { paused: false, .. } => Some(probe::srvr(n.ports.client, how.timeout).await),
        _ => None,
    };
    let mntr = if how.mntr && matches!(srvr_probe, Some(Probe::Serving(_))) {
        probe::mntr(n.ports.client, how.timeout).await
    } else {
        Default::default()
    };
    let (process, pid, probe) = match (state, liveness) {
        (_, Liveness::Ours { pid, paused: true }) => (ProcessState::Paused, Some(pid), None),
        (_, Liveness::Ours { pid, paused: false }) => {
            let p = srvr_probe.expect("probed a running node");
            let process = if p == Probe::Timeout {
                ProcessState::Unresponsive
            } else {
                ProcessState::Running
            };
            (process, Some(pid), Some(p))
        }
        (NodeState::Started { .. }, Liveness::Gone) => (ProcessState::Crashed, None, None),
        (NodeState::Stopped { .. }, Liveness::Gone) => (ProcessState::Stopped, None, None),
    };
    let mut detail = None;
    let (mode, srvr) = match probe {
        Some(Probe::Serving(s)) => (Some(s.mode.clone()), Some(s)),
        Some(Probe::NotServing) => (Some("looking".to_string()), None),
        Some(Probe::Refused) => {
            detail = Some("client port not open yet".to_string());
            (None, None)
        }
        Some(Probe::Timeout) => {
            detail = Some(format!("no answer to srvr within {} ms", how.timeout.as_millis()));
            (None, None)
        }
        Some(Probe::Error { message }) => {
            detail = Some(message);
            (None, None)
        }
        None => (None, None),
    };
    if process == ProcessState::Crashed {
        detail = crash_hint(paths, id);
    }
    NodeStatus {
        id,
        role: n.role,
        process,
        mode,
        pid,
        client_port: n.ports.client,
        quorum_port: n.ports.quorum,
        election_port: n.ports.election,
        admin_port: n.ports.admin,
        zxid: srvr.as_ref().map(|s| format!("{:#x}", s.zxid)),
        epoch: srvr.as_ref().map(|s| s.epoch()),
        counter: srvr.as_ref().map(|s| s.counter()),
        // `Connections` counts the srvr probe's own connection: report the others.
        connections: srvr.as_ref().and_then(|s| s.connections).map(|c| c.saturating_sub(1)),
        znodes: srvr.as_ref().and_then(|s| s.node_count),
        data_dir: paths.data_dir(id).display().to_string(),
        log_file: paths.log_file(id).display().to_string(),
        peer_state: mntr.get("zk_peer_state").cloned(),
        synced_followers: mntr.get("zk_synced_followers").and_then(|v| v.parse().ok()),
        synced_observers: mntr.get("zk_synced_observers").and_then(|v| v.parse().ok()),
        detail,
        zxid_raw: srvr.as_ref().map(|s| s.zxid),
    }
}

/// For a node that died without zkdev stopping it: its last error from the log, if any.
fn crash_hint(paths: &ClusterPaths, id: u32) -> Option<String> {
    let text = std::fs::read_to_string(paths.log_file(id)).unwrap_or_default();
    if let Some(cause) = crate::diagnose::diagnose(&text) {
        return Some(format!("exited without zkdev stopping it: {cause}"));
    }
    let error =
        text.lines().rev().take(100).find(|l| {
            l.contains(" ERROR ") || l.contains("FATAL") || l.contains("Exception") || l.starts_with("Error")
        });
    Some(match error {
        Some(line) => format!("exited without zkdev stopping it; its log says: {}", line.trim()),
        None => "exited without zkdev stopping it and without an error in its log (killed from outside?)".to_string(),
    })
}

pub async fn gather(spec: &ClusterSpec, paths: &ClusterPaths, state: &State) -> ClusterStatus {
    gather_with(spec, paths, state, Probing::QUICK).await
}

pub async fn gather_with(spec: &ClusterSpec, paths: &ClusterPaths, state: &State, how: Probing) -> ClusterStatus {
    let nodes = join_all(spec.nodes.iter().map(|n| {
        let s = state.node(n.id);
        async move { node_status(spec, paths, &s, n.id, how).await }
    }))
    .await;
    let leaders: Vec<&NodeStatus> = nodes.iter().filter(|n| n.is_leader()).collect();
    let (leader, epoch) = match leaders.as_slice() {
        [only] => (Some(only.id), only.epoch),
        _ => (None, None),
    };
    let voters_up = nodes
        .iter()
        .filter(|n| {
            n.role == Role::Participant && matches!(n.process, ProcessState::Running | ProcessState::Unresponsive)
        })
        .count();
    ClusterStatus {
        cluster: spec.name.clone(),
        connect_string: spec.connect_string(),
        leader,
        epoch,
        quorum: Quorum {
            voters: spec.voter_count(),
            voters_up,
            needed: spec.quorum_needed(),
        },
        nodes,
    }
}

/// Poll every `interval` until `done` holds, a node dies, or `timeout` passes. `on_tick` sees every status
/// (progress display). Re-reads the state file each round, so a concurrent command's changes are seen.
pub async fn wait_until(
    spec: &ClusterSpec,
    paths: &ClusterPaths,
    timeout: Duration,
    mut done: impl FnMut(&ClusterStatus) -> bool,
    mut on_tick: impl FnMut(&ClusterStatus),
) -> Result<ClusterStatus, (WaitFailure, ClusterStatus)> {
    let deadline = Instant::now() + timeout;
    let interval = Duration::from_millis(20);
    loop {
        let state = paths.load_state().unwrap_or_default();
        let status = gather_with(spec, paths, &state, Probing::QUICK).await;
        on_tick(&status);
        if done(&status) {
            return Ok(status);
        }
        if crate::interrupt::interrupted() {
            return Err((WaitFailure::Interrupted, status));
        }
        if let Some(dead) = status.nodes.iter().find(|n| n.process == ProcessState::Crashed) {
            return Err((WaitFailure::Crashed(dead.id), status));
        }
        if Instant::now() >= deadline {
            return Err((WaitFailure::Timeout, status));
        }
        tokio::time::sleep(interval).await;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFailure {
    Timeout,
    Crashed(u32),
    /// Ctrl-C (only where the command installed the handler).
    Interrupted,
}

/// The last `n` lines of a node's log, indented, for error messages.
pub fn log_tail(paths: &ClusterPaths, id: u32, n: usize) -> String {
    let path = paths.log_file(id);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    let mut out = format!("  last lines of {}:\n", path.display());
    if lines.is_empty() {
        out.push_str("    (empty)\n");
    }
    for l in &lines[start..] {
        out.push_str("    ");
        out.push_str(l);
        out.push('\n');
    }
    out
}
