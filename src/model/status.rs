//! What a cluster's status is made of: each node's process and server state, the quorum, and the whole
//! picture `status` prints and every wait polls. Pure data; `zk::observe` fills it in.

use serde::Serialize;

use crate::model::server::{Mode, Zxid};
use crate::model::spec::Role;

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

/// The one-line summary `status` ends with: the leader and its epoch, voters up against the quorum, the
/// connect string.
pub fn summary_line(s: &ClusterStatus) -> String {
    let leader = match (s.leader, s.epoch) {
        (Some(id), Some(e)) => format!("leader {id} (epoch {e})"),
        (Some(id), None) => format!("leader {id}"),
        (None, _) if s.leaders().len() > 1 => "several nodes claim to lead".to_string(),
        (None, _) => "no leader".to_string(),
    };
    let q = &s.quorum;
    let quorum = if q.voters_up >= q.needed {
        format!("voters up {}/{} (quorum needs {})", q.voters_up, q.voters, q.needed)
    } else {
        format!(
            "voters up {}/{}: NO QUORUM (needs {}; start voters again)",
            q.voters_up, q.voters, q.needed
        )
    };
    format!(
        "cluster {}: {leader}, {quorum}, connect {}",
        s.cluster, s.connect_string
    )
}
