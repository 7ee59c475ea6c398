//! What the cluster is doing right now: the recorded state, checked against /proc, plus what every server
//! answers, probed concurrently. This is the one structure behind `status`, its JSON, and every wait.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::Serialize;

use crate::model::spec::{ClusterSpec, Role};
use crate::os::process::{self, identify, Liveness};
use crate::os::state::{ClusterPaths, NodeState, State};
use crate::zk::probe::{self, Probe};

/// How long one probe may take before the node counts as unresponsive.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a JVM may run before its client port must be open: initLimit x tickTime (what ZooKeeper
/// itself gives a follower to sync), at least 3 s, so a slow start on a busy machine is not a fault.
fn startup_grace(spec: &ClusterSpec) -> Duration {
    Duration::from_millis(u64::from(spec.settings.init_limit) * u64::from(spec.settings.tick_time))
        .max(Duration::from_secs(3))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
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

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
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
    /// The process is gone: nothing the server said earlier holds any more.
    pub fn gone(&mut self, process: ProcessState) {
        self.process = process;
        self.mode = None;
        self.pid = None;
        self.zxid = None;
        self.zxid_raw = None;
        self.epoch = None;
        self.counter = None;
        self.connections = None;
        self.znodes = None;
        self.peer_state = None;
        self.synced_followers = None;
        self.synced_observers = None;
    }

    /// Keep `mntr`'s fields from an earlier look while the node still serves in the same mode (the
    /// supervisor asks `mntr` only every tenth time).
    pub fn keep_mntr_from(&mut self, prev: &NodeStatus) {
        if prev.serving() && self.serving() && prev.mode == self.mode {
            self.peer_state = self.peer_state.take().or_else(|| prev.peer_state.clone());
            self.synced_followers = self.synced_followers.or(prev.synced_followers);
            self.synced_observers = self.synced_observers.or(prev.synced_observers);
        }
    }

    /// Serving client requests (leader, follower, observer).
    pub fn serving(&self) -> bool {
        self.process == ProcessState::Running && self.zxid_raw.is_some()
    }
    pub fn is_leader(&self) -> bool {
        self.serving() && self.mode.as_deref() == Some("leader")
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Quorum {
    pub voters: usize,
    pub voters_up: usize,
    pub needed: usize,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ClusterStatus {
    pub cluster: String,
    pub connect_string: String,
    pub leader: Option<u32>,
    /// The leader's epoch (high 32 bits of its zxid).
    pub epoch: Option<u32>,
    pub quorum: Quorum,
    pub nodes: Vec<NodeStatus>,
    /// Where this view comes from: `supervisor` (its latest look, `age_ms` old) or `probe` (asked now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_ms: Option<u64>,
    /// The cluster's supervisor: its pid, or null when none runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor: Option<SupervisorView>,
    /// `--net` clusters only: the link rules and proxied connections (`zkdev links --json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SupervisorView {
    pub running: bool,
    pub pid: Option<i32>,
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

    /// After crossing the socket: the raw zxids, which are not serialised, from their hex form.
    pub fn restore_raw(&mut self) {
        for n in &mut self.nodes {
            n.zxid_raw = n
                .zxid
                .as_deref()
                .and_then(|z| u64::from_str_radix(z.trim_start_matches("0x"), 16).ok());
        }
    }

    /// Keep `mntr`'s fields from an earlier look for nodes that still serve in the same mode (the
    /// supervisor asks `mntr` only every tenth round).
    pub fn keep_mntr_from(&mut self, prev: &ClusterStatus) {
        for n in &mut self.nodes {
            if let Some(p) = prev
                .node(n.id)
                .filter(|p| p.serving() && n.serving() && p.mode == n.mode)
            {
                n.peer_state = n.peer_state.take().or_else(|| p.peer_state.clone());
                n.synced_followers = n.synced_followers.or(p.synced_followers);
                n.synced_observers = n.synced_observers.or(p.synced_observers);
            }
        }
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
pub async fn node_status(
    spec: &ClusterSpec,
    paths: &ClusterPaths,
    state: &NodeState,
    id: u32,
    how: Probing,
) -> NodeStatus {
    let n = spec.node(id).expect("node in spec");
    let liveness = identify(state, &paths.ident(spec, id));
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
            let process = match p {
                Probe::Timeout => ProcessState::Unresponsive,
                // Nothing listens on its client port although the JVM has had time to open it: it is not
                // doing its job (or listens elsewhere than cluster.toml says).
                Probe::Refused if state.process().and_then(|(_, t)| process::age(t)) > Some(startup_grace(spec)) => {
                    ProcessState::Unresponsive
                }
                _ => ProcessState::Running,
            };
            (process, Some(pid), Some(p))
        }
        (NodeState::Started { .. } | NodeState::Crashed { .. }, Liveness::Gone) => (ProcessState::Crashed, None, None),
        (NodeState::Stopping { .. } | NodeState::Stopped { .. }, Liveness::Gone) => (ProcessState::Stopped, None, None),
    };
    let mut detail = None;
    let (mode, srvr) = match probe {
        Some(Probe::Serving(s)) => (Some(s.mode.clone()), Some(s)),
        Some(Probe::NotServing) => (Some("looking".to_string()), None),
        Some(Probe::Refused) if process == ProcessState::Unresponsive => {
            detail = Some(format!(
                "nothing listens on client port {} although the JVM started over {} ms ago",
                n.ports.client,
                startup_grace(spec).as_millis()
            ));
            (None, None)
        }
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
        detail = Some(match state {
            // The supervisor saw it end: how (exit status or signal) and the log's last error.
            NodeState::Crashed { how, .. } => how.clone(),
            _ => crash_hint(paths, id),
        });
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

/// The last error line of a node's log (of its last 100 lines), if any.
pub fn last_error(paths: &ClusterPaths, id: u32) -> Option<String> {
    let text = std::fs::read_to_string(paths.log_file(id)).unwrap_or_default();
    text.lines()
        .rev()
        .take(100)
        .find(|l| l.contains(" ERROR ") || l.contains("FATAL") || l.contains("Exception") || l.starts_with("Error"))
        .map(|l| l.trim().to_string())
}

/// For a node that died without zkdev stopping it (and without a supervisor seeing how): why, as far as its
/// log tells.
fn crash_hint(paths: &ClusterPaths, id: u32) -> String {
    let text = std::fs::read_to_string(paths.log_file(id)).unwrap_or_default();
    if let Some(cause) = crate::model::diagnose::diagnose(&text) {
        return format!("exited without zkdev stopping it: {cause}");
    }
    match last_error(paths, id) {
        Some(line) => format!("exited without zkdev stopping it; its log says: {line}"),
        None => "exited without zkdev stopping it and without an error in its log (killed from outside?)".to_string(),
    }
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
    assemble(spec, nodes)
}

/// The ensemble from every node's own status: the one place that finds the leader (exactly one serving
/// node in leader mode) and counts the voters up.
pub fn assemble(spec: &ClusterSpec, nodes: Vec<NodeStatus>) -> ClusterStatus {
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
        connect_string: spec.client_connect_string(),
        leader,
        epoch,
        quorum: Quorum {
            voters: spec.voter_count(),
            voters_up,
            needed: spec.quorum_needed(),
        },
        nodes,
        source: None,
        age_ms: None,
        supervisor: None,
        links: None,
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
        if crate::os::interrupt::interrupted() {
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
