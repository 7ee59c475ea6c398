//! What the cluster is doing right now: the recorded state, checked against /proc, plus what every server
//! answers, probed concurrently. This is the one structure behind `status`, its JSON, and every wait.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::Serialize;

use crate::model::server::{Mode, Zxid};
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

/// A node's health: each state carries only what it has.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    /// Not running, as zkdev left it (stopped, or never started).
    Stopped,
    /// Gone without zkdev stopping it: how (exit status or signal, the log's telling line).
    Crashed { detail: String },
    /// SIGSTOPped: the process is there but is not asked (it would never answer).
    Paused { pid: i32 },
    /// Runs but does not do its job: no answer in time, or no client port long after it started.
    Unresponsive { pid: i32, detail: String },
    /// Runs; what its server says.
    Running { pid: i32, server: Server },
}

/// What a running node's server says.
#[derive(Debug, Clone, PartialEq)]
pub enum Server {
    /// No usable answer yet: the client port is not open (a JVM still starting), or the reply was odd.
    Starting {
        detail: String,
    },
    /// Up but not serving: electing, or syncing with a new leader.
    Looking,
    Serving(Serving),
}

/// A serving server's answer to `srvr` (and `mntr`, when asked).
#[derive(Debug, Clone, PartialEq)]
pub struct Serving {
    pub mode: Mode,
    pub zxid: Zxid,
    /// Client connections other than zkdev's own probe.
    pub connections: Option<u64>,
    pub znodes: Option<u64>,
    /// From `mntr` (3.6+): e.g. `following - broadcast`.
    pub peer_state: Option<String>,
    /// Leader only, from `mntr`.
    pub synced_followers: Option<u64>,
    pub synced_observers: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(into = "NodeRecord", try_from = "NodeRecord")]
pub struct NodeStatus {
    pub id: u32,
    pub role: Role,
    /// Where every port of the node listens: 127.0.0.1, or its own address with `--addresses loopback`.
    pub address: std::net::Ipv4Addr,
    pub client_port: u16,
    pub quorum_port: u16,
    pub election_port: u16,
    pub admin_port: Option<u16>,
    pub data_dir: String,
    pub log_file: String,
    pub health: Health,
}

/// A node in `status --json`, the stable contract: flat, every field present, null where it cannot be known.
#[derive(Serialize, serde::Deserialize)]
struct NodeRecord {
    id: u32,
    role: Role,
    process: ProcessState,
    /// leader | follower | observer | standalone | read-only | looking; null when not running.
    mode: Option<Mode>,
    pid: Option<i32>,
    #[serde(default = "crate::model::spec::localhost")]
    address: std::net::Ipv4Addr,
    client_port: u16,
    quorum_port: u16,
    election_port: u16,
    admin_port: Option<u16>,
    zxid: Option<Zxid>,
    epoch: Option<u32>,
    counter: Option<u32>,
    connections: Option<u64>,
    znodes: Option<u64>,
    data_dir: String,
    log_file: String,
    peer_state: Option<String>,
    synced_followers: Option<u64>,
    synced_observers: Option<u64>,
    /// Why a node is not serving, when zkdev can tell.
    detail: Option<String>,
}

impl From<NodeStatus> for NodeRecord {
    fn from(n: NodeStatus) -> NodeRecord {
        let serving = n.answer().cloned();
        NodeRecord {
            id: n.id,
            role: n.role,
            process: n.process(),
            mode: n.mode(),
            pid: n.pid(),
            address: n.address,
            client_port: n.client_port,
            quorum_port: n.quorum_port,
            election_port: n.election_port,
            admin_port: n.admin_port,
            zxid: serving.as_ref().map(|s| s.zxid),
            epoch: serving.as_ref().map(|s| s.zxid.epoch()),
            counter: serving.as_ref().map(|s| s.zxid.counter()),
            connections: serving.as_ref().and_then(|s| s.connections),
            znodes: serving.as_ref().and_then(|s| s.znodes),
            detail: n.detail().map(String::from),
            data_dir: n.data_dir,
            log_file: n.log_file,
            peer_state: serving.as_ref().and_then(|s| s.peer_state.clone()),
            synced_followers: serving.as_ref().and_then(|s| s.synced_followers),
            synced_observers: serving.and_then(|s| s.synced_observers),
        }
    }
}

impl TryFrom<NodeRecord> for NodeStatus {
    type Error = String;
    fn try_from(r: NodeRecord) -> Result<NodeStatus, String> {
        let pid = || {
            r.pid
                .ok_or_else(|| format!("node {}: {} without a pid", r.id, r.process.as_str()))
        };
        let detail = r.detail.clone().unwrap_or_default();
        let health = match r.process {
            ProcessState::Stopped => Health::Stopped,
            ProcessState::Crashed => Health::Crashed { detail },
            ProcessState::Paused => Health::Paused { pid: pid()? },
            ProcessState::Unresponsive => Health::Unresponsive { pid: pid()?, detail },
            ProcessState::Running => Health::Running {
                pid: pid()?,
                server: match (r.mode, r.zxid) {
                    (Some(Mode::Looking), _) => Server::Looking,
                    (Some(mode), Some(zxid)) => Server::Serving(Serving {
                        mode,
                        zxid,
                        connections: r.connections,
                        znodes: r.znodes,
                        peer_state: r.peer_state,
                        synced_followers: r.synced_followers,
                        synced_observers: r.synced_observers,
                    }),
                    _ => Server::Starting { detail },
                },
            },
        };
        Ok(NodeStatus {
            id: r.id,
            role: r.role,
            address: r.address,
            client_port: r.client_port,
            quorum_port: r.quorum_port,
            election_port: r.election_port,
            admin_port: r.admin_port,
            data_dir: r.data_dir,
            log_file: r.log_file,
            health,
        })
    }
}

impl NodeStatus {
    pub fn process(&self) -> ProcessState {
        match self.health {
            Health::Stopped => ProcessState::Stopped,
            Health::Crashed { .. } => ProcessState::Crashed,
            Health::Paused { .. } => ProcessState::Paused,
            Health::Unresponsive { .. } => ProcessState::Unresponsive,
            Health::Running { .. } => ProcessState::Running,
        }
    }

    pub fn pid(&self) -> Option<i32> {
        match self.health {
            Health::Paused { pid } | Health::Unresponsive { pid, .. } | Health::Running { pid, .. } => Some(pid),
            Health::Stopped | Health::Crashed { .. } => None,
        }
    }

    /// The server's mode: `Looking` while it elects; None when it does not run or has not answered.
    pub fn mode(&self) -> Option<Mode> {
        match &self.health {
            Health::Running {
                server: Server::Looking,
                ..
            } => Some(Mode::Looking),
            Health::Running {
                server: Server::Serving(s),
                ..
            } => Some(s.mode),
            _ => None,
        }
    }

    /// The server's answer, when it serves client requests (leader, follower, observer...).
    pub fn answer(&self) -> Option<&Serving> {
        match &self.health {
            Health::Running {
                server: Server::Serving(s),
                ..
            } => Some(s),
            _ => None,
        }
    }

    pub fn serving(&self) -> bool {
        self.answer().is_some()
    }

    pub fn is_leader(&self) -> bool {
        self.answer().is_some_and(|s| s.mode == Mode::Leader)
    }

    pub fn zxid(&self) -> Option<Zxid> {
        self.answer().map(|s| s.zxid)
    }

    /// Why the node does not serve, when zkdev can tell.
    pub fn detail(&self) -> Option<&str> {
        match &self.health {
            Health::Crashed { detail }
            | Health::Unresponsive { detail, .. }
            | Health::Running {
                server: Server::Starting { detail },
                ..
            } => Some(detail.as_str()).filter(|d| !d.is_empty()),
            _ => None,
        }
    }

    /// The process is gone: nothing the server said earlier holds any more.
    pub fn gone(&mut self, crashed: Option<String>) {
        self.health = match crashed {
            Some(detail) => Health::Crashed { detail },
            None => Health::Stopped,
        };
    }

    /// Keep `mntr`'s fields from an earlier look while the node still serves in the same mode (the
    /// supervisor asks `mntr` only every tenth time).
    pub fn keep_mntr_from(&mut self, prev: &NodeStatus) {
        let Some(p) = prev.answer().cloned() else { return };
        if let Health::Running {
            server: Server::Serving(s),
            ..
        } = &mut self.health
        {
            if s.mode == p.mode {
                s.peer_state = s.peer_state.take().or(p.peer_state);
                s.synced_followers = s.synced_followers.or(p.synced_followers);
                s.synced_observers = s.synced_observers.or(p.synced_observers);
            }
        }
    }
}

#[cfg(test)]
impl NodeStatus {
    /// A node for unit tests: running with `mode` serves at `zxid` (Looking: electing; None: no answer).
    pub fn fixture(id: u32, role: Role, process: ProcessState, mode: Option<Mode>, zxid: u64) -> NodeStatus {
        let pid = 100 + id as i32;
        let health = match process {
            ProcessState::Stopped => Health::Stopped,
            ProcessState::Crashed => Health::Crashed { detail: String::new() },
            ProcessState::Paused => Health::Paused { pid },
            ProcessState::Unresponsive => Health::Unresponsive {
                pid,
                detail: String::new(),
            },
            ProcessState::Running => Health::Running {
                pid,
                server: match mode {
                    Some(Mode::Looking) => Server::Looking,
                    Some(mode) => Server::Serving(Serving {
                        mode,
                        zxid: Zxid(zxid),
                        connections: None,
                        znodes: None,
                        peer_state: None,
                        synced_followers: None,
                        synced_observers: None,
                    }),
                    None => Server::Starting { detail: String::new() },
                },
            },
        };
        NodeStatus {
            id,
            role,
            address: std::net::Ipv4Addr::LOCALHOST,
            client_port: 2180 + id as u16,
            quorum_port: 2880 + id as u16,
            election_port: 3880 + id as u16,
            admin_port: None,
            data_dir: String::new(),
            log_file: String::new(),
            health,
        }
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

    /// One participant leader, and every node that does not serve was stopped by zkdev on purpose (not
    /// crashed, paused or stuck): the ids of those stopped nodes (empty when every node serves), or None.
    pub fn serving_except_stopped(&self) -> Option<Vec<u32>> {
        let leaders = self.leaders();
        if leaders.len() != 1 || leaders[0].role != Role::Participant {
            return None;
        }
        let mut stopped = Vec::new();
        for n in &self.nodes {
            if n.serving() {
                continue;
            }
            if n.process() != ProcessState::Stopped {
                return None;
            }
            stopped.push(n.id);
        }
        Some(stopped)
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
pub async fn node_status(
    spec: &ClusterSpec,
    paths: &ClusterPaths,
    state: &NodeState,
    id: u32,
    ident: &process::Ident,
    how: Probing,
) -> NodeStatus {
    let n = spec.node(id).expect("node in spec");
    let liveness = identify(state, ident);
    // srvr first, then mntr only from a serving node: were they sent together, each would count the other in
    // `Connections`; and an unresponsive node should cost one deadline, not two.
    let srvr_probe = match liveness {
        Liveness::Ours { paused: false, .. } => Some(probe::srvr(n.client_addr(), how.timeout).await),
        _ => None,
    };
    let mntr = if how.mntr && matches!(srvr_probe, Some(Probe::Serving(_))) {
        probe::mntr(n.client_addr(), how.timeout).await
    } else {
        Default::default()
    };
    let health = match (state, liveness) {
        (_, Liveness::Ours { pid, paused: true }) => Health::Paused { pid },
        (_, Liveness::Ours { pid, paused: false }) => match srvr_probe.expect("probed a running node") {
            Probe::Serving(srvr) => Health::Running {
                pid,
                server: Server::Serving(Serving {
                    mode: srvr.mode,
                    zxid: srvr.zxid,
                    // `Connections` counts the srvr probe's own connection: report the others.
                    connections: srvr.connections.map(|c| c.saturating_sub(1)),
                    znodes: srvr.node_count,
                    peer_state: mntr.get("zk_peer_state").cloned(),
                    synced_followers: mntr.get("zk_synced_followers").and_then(|v| v.parse().ok()),
                    synced_observers: mntr.get("zk_synced_observers").and_then(|v| v.parse().ok()),
                }),
            },
            Probe::NotServing => Health::Running {
                pid,
                server: Server::Looking,
            },
            Probe::Timeout => Health::Unresponsive {
                pid,
                detail: format!("no answer to srvr within {} ms", how.timeout.as_millis()),
            },
            // Nothing listens on its client port although the JVM has had time to open it: it is not doing
            // its job (or listens elsewhere than cluster.toml says).
            Probe::Refused if state.process().and_then(|(_, t)| process::age(t)) > Some(startup_grace(spec)) => {
                Health::Unresponsive {
                    pid,
                    detail: format!(
                        "nothing listens on client port {} although the JVM started over {} ms ago",
                        n.ports.client,
                        startup_grace(spec).as_millis()
                    ),
                }
            }
            Probe::Refused => Health::Running {
                pid,
                server: Server::Starting {
                    detail: "client port not open yet".to_string(),
                },
            },
            Probe::Error { message } => Health::Running {
                pid,
                server: Server::Starting { detail: message },
            },
        },
        (NodeState::Started { .. } | NodeState::Crashed { .. }, Liveness::Gone) => Health::Crashed {
            detail: match state {
                // The supervisor saw it end: how (exit status or signal) and what its log says.
                NodeState::Crashed { how, .. } => how.clone(),
                _ => crash_hint(paths, id),
            },
        },
        (NodeState::Stopping { .. } | NodeState::Stopped { .. }, Liveness::Gone) => Health::Stopped,
    };
    NodeStatus {
        id,
        role: n.role,
        address: n.address,
        client_port: n.ports.client,
        quorum_port: n.ports.quorum,
        election_port: n.ports.election,
        admin_port: n.ports.admin,
        data_dir: paths.data_dir(id).display().to_string(),
        log_file: paths.log_file(id).display().to_string(),
        health,
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
        let ident = paths.ident(spec, n.id);
        async move { node_status(spec, paths, &s, n.id, &ident, how).await }
    }))
    .await;
    let mut status = assemble(spec, nodes);
    count_committed_voters(&mut status, spec, paths);
    status
}

/// Count the quorum over the voters ZooKeeper committed (its dynamic configuration on disk), when it keeps
/// one: cluster.toml can name a voter ZooKeeper has not taken in yet (an interrupted `add`) or has let go.
pub fn count_committed_voters(status: &mut ClusterStatus, spec: &ClusterSpec, paths: &ClusterPaths) {
    if let Some(m) = crate::os::zoo_cfg::committed_membership(paths, &spec.ids()) {
        status.quorum = crate::model::fault::committed_quorum(status, &m);
    }
}

/// The ensemble from every node's own status: the one place that finds the leader (exactly one serving
/// node in leader mode) and counts the voters up.
pub fn assemble(spec: &ClusterSpec, nodes: Vec<NodeStatus>) -> ClusterStatus {
    let leaders: Vec<&NodeStatus> = nodes.iter().filter(|n| n.is_leader()).collect();
    let (leader, epoch) = match leaders.as_slice() {
        [only] => (Some(only.id), only.zxid().map(Zxid::epoch)),
        _ => (None, None),
    };
    let voters_up = nodes
        .iter()
        .filter(|n| {
            n.role == Role::Participant && matches!(n.process(), ProcessState::Running | ProcessState::Unresponsive)
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

/// `status` with the voters ZooKeeper committed, when a reconfiguration changed them (see
/// `fault::with_membership`); as it is otherwise.
pub fn with_committed_voters(status: &ClusterStatus, spec: &ClusterSpec, paths: &ClusterPaths) -> ClusterStatus {
    match crate::os::zoo_cfg::committed_membership(paths, &spec.ids()) {
        Some(m) => crate::model::fault::with_membership(status, &m),
        None => status.clone(),
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
        if let Some(dead) = status.nodes.iter().find(|n| n.process() == ProcessState::Crashed) {
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
