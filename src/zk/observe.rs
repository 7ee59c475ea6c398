//! What the cluster is doing right now: the recorded state, checked against /proc, plus what every server
//! answers, probed concurrently. This is the one structure behind `status`, its JSON, and every wait.

use std::time::{Duration, Instant};

use futures::future::join_all;

use crate::model::server::Zxid;
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

pub use crate::model::status::{
    ClusterStatus, Health, NodeStatus, ProcessState, Quorum, Server, Serving, SupervisorView,
};

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
