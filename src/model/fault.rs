//! Fault targets and quorum arithmetic: which nodes an action hits (resolved by asking the servers at that
//! moment), and whether the voters left up can still form a quorum. Pure over a `ClusterStatus`.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::model::server::Mode;
use crate::model::spec::Role;
use crate::model::status::{ClusterStatus, ProcessState, Quorum};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Id(u32),
    Leader,
    /// One follower (the lowest id serving as follower).
    Follower,
    /// One observer (the lowest id serving as observer).
    Observer,
    All,
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        match s {
            "leader" => Ok(Target::Leader),
            "follower" => Ok(Target::Follower),
            "observer" => Ok(Target::Observer),
            "all" => Ok(Target::All),
            _ => s.parse::<u32>().map(Target::Id).map_err(|_| {
                format!("`{s}` is not a target: give a node id (1, 2, ...), leader, follower, observer or all")
            }),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Id(i) => write!(f, "node {i}"),
            Target::Leader => f.write_str("leader"),
            Target::Follower => f.write_str("follower"),
            Target::Observer => f.write_str("observer"),
            Target::All => f.write_str("all"),
        }
    }
}

/// What an action needs of the nodes a role names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// stop, kill, pause, resume: a node serving in that role right now.
    Running,
    /// start: the nodes of that role that are not running (a role is fixed by the spec for observers; any
    /// voter that is down may come back as a follower), else one serving in it (already running).
    Start,
    /// restart: the node serving in that role, else (none serves) the nodes of that role that are not running.
    Restart,
}

/// Which nodes a target names right now, for an action that needs a running node (stop, kill, pause).
pub fn resolve(target: Target, status: &ClusterStatus) -> Result<Vec<u32>> {
    resolve_for(target, status, Intent::Running)
}

/// Which nodes a target names right now for an action with `intent`. A role (follower, observer) is what the
/// servers report; for start and restart, a stopped node has no reported role, so the spec's roles stand in:
/// observers are the spec's observer ids, followers the voters that are not running.
pub fn resolve_for(target: Target, status: &ClusterStatus, intent: Intent) -> Result<Vec<u32>> {
    let down = |role: Role| -> Vec<u32> {
        status
            .nodes
            .iter()
            .filter(|n| n.role == role && matches!(n.process(), ProcessState::Stopped | ProcessState::Crashed))
            .map(|n| n.id)
            .collect()
    };
    let by_role = |target: Target| -> Option<Role> {
        match target {
            Target::Follower => Some(Role::Participant),
            Target::Observer => Some(Role::Observer),
            _ => None,
        }
    };
    if let Some(role) = by_role(target).filter(|_| intent != Intent::Running) {
        let stopped = down(role);
        let serving = resolve_running(target, status);
        let picked = match intent {
            Intent::Start if !stopped.is_empty() => Ok(stopped),
            Intent::Restart if serving.is_err() && !stopped.is_empty() => Ok(stopped),
            _ => serving,
        };
        // Observers are fixed by the spec: with none serving and none stopped (all running but not serving
        // yet), start and restart still know which nodes are meant.
        let observers: Vec<u32> = (status.nodes.iter())
            .filter(|n| n.role == Role::Observer)
            .map(|n| n.id)
            .collect();
        return match picked {
            Err(_) if role == Role::Observer && observers.is_empty() => Err(Error::usage(format!(
                "cluster `{}` has no observers (it was made with --observers 0)",
                status.cluster
            ))),
            Err(_) if role == Role::Observer => Ok(observers),
            other => other,
        };
    }
    resolve_running(target, status)
}

fn resolve_running(target: Target, status: &ClusterStatus) -> Result<Vec<u32>> {
    let by_mode = |mode: Mode| -> Option<u32> {
        status
            .nodes
            .iter()
            .find(|n| n.serving() && n.mode() == Some(mode))
            .map(|n| n.id)
    };
    let none = |what: &str| {
        Error::failed(format!(
            "no node serves as {what} right now; see `zkdev status` (nodes that are not running or still electing \
             have no role to pick them by)"
        ))
    };
    match target {
        Target::Id(id) => {
            if status.node(id).is_none() {
                return Err(Error::usage(format!(
                    "cluster `{}` has no node {id}; its {} {}",
                    status.cluster,
                    crate::model::words::noun_for(status.nodes.len(), "node is|nodes are"),
                    crate::model::words::and_list(&status.nodes.iter().map(|n| n.id).collect::<Vec<_>>())
                )));
            }
            Ok(vec![id])
        }
        // The leader as the status found it (exactly one serving node leads), like every other command.
        Target::Leader => status.leader.map(|i| vec![i]).ok_or_else(|| none("leader")),
        Target::Follower => by_mode(Mode::Follower).map(|i| vec![i]).ok_or_else(|| none("follower")),
        Target::Observer => by_mode(Mode::Observer).map(|i| vec![i]).ok_or_else(|| none("observer")),
        Target::All => Ok(status.nodes.iter().map(|n| n.id).collect()),
    }
}

/// Voters whose process counts as up (running, or running but slow to answer).
pub fn voters_up(status: &ClusterStatus) -> Vec<u32> {
    status
        .nodes
        .iter()
        .filter(|n| {
            n.role == Role::Participant && matches!(n.process(), ProcessState::Running | ProcessState::Unresponsive)
        })
        .map(|n| n.id)
        .collect()
}

/// What taking `ids` down would leave of the quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumAfter {
    pub remaining: usize,
    pub voters: usize,
    pub needed: usize,
}

impl QuorumAfter {
    pub fn holds(&self) -> bool {
        self.remaining >= self.needed
    }
    pub fn describe(&self) -> String {
        format!(
            "{} of {} would remain up; a quorum needs {}",
            self.remaining,
            crate::model::words::count(self.voters, "voter"),
            self.needed
        )
    }
}

pub fn quorum_after(status: &ClusterStatus, taking_down: &[u32]) -> QuorumAfter {
    let remaining = voters_up(status).iter().filter(|id| !taking_down.contains(id)).count();
    QuorumAfter {
        remaining,
        voters: status.quorum.voters,
        needed: status.quorum.needed,
    }
}

/// Refuse (unless forced) an action that would leave too few voters; observers never count.
pub fn guard(status: &ClusterStatus, taking_down: &[u32], action: &str, force: bool) -> Result<QuorumAfter> {
    let q = quorum_after(status, taking_down);
    if !q.holds() && !force {
        return Err(Error::quorum_guard(format!(
            "refusing to {action}: {}, so no leader could be elected. Pass --force to do it anyway",
            q.describe()
        )));
    }
    Ok(q)
}

/// The status with the voters ZooKeeper committed (dynamic reconfiguration) instead of the spec's: a node
/// the membership lists takes its role there, one it leaves out (removed by a reconfig, or not added yet)
/// votes for nothing; the quorum is counted over the committed voters. Quorum guards then hold for a
/// membership changed by `reconfig`, whoever asked for it.
pub fn with_membership(status: &ClusterStatus, committed: &crate::model::membership::Membership) -> ClusterStatus {
    let mut s = status.clone();
    for n in &mut s.nodes {
        n.role = committed.role(n.id).unwrap_or(Role::Observer);
    }
    let voters = committed.voters().len();
    s.quorum.voters = voters;
    s.quorum.needed = voters / 2 + 1;
    s.quorum.voters_up = voters_up(&s).len();
    s
}

/// The quorum counted over the voters ZooKeeper committed, the nodes keeping the roles cluster.toml gives
/// them (a node zkdev started that ZooKeeper has not taken in yet, or has let go, votes for nothing). What
/// `status` (headline and `--json`), `wait` and the dashboard show, so they agree with the guard.
pub fn committed_quorum(status: &ClusterStatus, committed: &crate::model::membership::Membership) -> Quorum {
    with_membership(status, committed).quorum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::status::NodeStatus;

    fn node(id: u32, role: Role, process: ProcessState, mode: Option<&str>) -> NodeStatus {
        let mode = mode.map(|m| m.parse::<Mode>().unwrap());
        NodeStatus::fixture(id, role, process, mode, 0x1_0000_0000)
    }

    fn cluster(nodes: Vec<NodeStatus>) -> ClusterStatus {
        let voters = nodes.iter().filter(|n| n.role == Role::Participant).count();
        let mut s = ClusterStatus {
            cluster: "t".into(),
            connect_string: String::new(),
            leader: None,
            epoch: None,
            quorum: Quorum {
                voters,
                voters_up: 0,
                needed: voters / 2 + 1,
            },
            nodes,
            source: None,
            age_ms: None,
            supervisor: None,
            links: None,
        };
        s.quorum.voters_up = voters_up(&s).len();
        if let [only] = s.leaders().as_slice() {
            s.leader = Some(only.id);
        }
        s
    }

    #[test]
    fn guards_count_the_voters_zookeeper_committed() {
        // The spec says 3 voters + observer 4; a reconfig removed 1 and promoted 4.
        let status = three_plus_one();
        let committed = crate::model::membership::Membership::parse(
            "server.2=127.0.0.1:2882:3882:participant\nserver.3=127.0.0.1:2883:3883:participant\n\
             server.4=127.0.0.1:2884:3884:participant\nversion=100000003",
        )
        .unwrap();
        let s = with_membership(&status, &committed);
        assert_eq!((s.quorum.voters, s.quorum.needed, s.quorum.voters_up), (3, 2, 3));
        assert_eq!(s.node(1).unwrap().role, Role::Observer);
        // Stopping node 1 costs no vote now; stopping 2 and 4 leaves 1 of 3.
        assert!(guard(&s, &[1], "stop node 1", false).is_ok());
        assert!(guard(&status, &[2, 4], "stop nodes 2,4", false).is_ok());
        let e = guard(&s, &[2, 4], "stop nodes 2,4", false).unwrap_err().to_string();
        assert!(e.contains("1 of 3 voters would remain up"), "{e}");
        // The headline counts the same voters as the guard, whatever roles cluster.toml still gives.
        let q = committed_quorum(&status, &committed);
        assert_eq!((q.voters, q.needed, q.voters_up), (3, 2, 3));
    }

    #[test]
    fn a_node_zookeeper_has_not_taken_in_is_no_voter() {
        // cluster.toml already lists voter 4 (an `add` interrupted before its reconfig); ZooKeeper has 1,2,3.
        use ProcessState::*;
        let s = cluster(vec![
            node(1, Role::Participant, Running, Some("follower")),
            node(2, Role::Participant, Stopped, None),
            node(3, Role::Participant, Running, Some("leader")),
            node(4, Role::Participant, Running, Some("follower")),
        ]);
        assert_eq!((s.quorum.voters, s.quorum.needed, s.quorum.voters_up), (4, 3, 3));
        let committed = crate::model::membership::Membership::parse(
            "server.1=127.0.0.1:2881:3881:participant\nserver.2=127.0.0.1:2882:3882:participant\n\
             server.3=127.0.0.1:2883:3883:participant\nversion=100000000",
        )
        .unwrap();
        let q = committed_quorum(&s, &committed);
        assert_eq!((q.voters, q.needed, q.voters_up), (3, 2, 2));
        let e = guard(&with_membership(&s, &committed), &[1], "stop node 1", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 of 3 voters would remain up; a quorum needs 2"), "{e}");
        assert!(guard(&with_membership(&s, &committed), &[4], "stop node 4", false).is_ok());
    }

    fn three_plus_one() -> ClusterStatus {
        use ProcessState::Running;
        cluster(vec![
            node(1, Role::Participant, Running, Some("follower")),
            node(2, Role::Participant, Running, Some("follower")),
            node(3, Role::Participant, Running, Some("leader")),
            node(4, Role::Observer, Running, Some("observer")),
        ])
    }

    #[test]
    fn targets_resolve_by_what_servers_say() {
        let s = three_plus_one();
        assert_eq!(resolve(Target::Leader, &s).unwrap(), vec![3]);
        assert_eq!(resolve(Target::Follower, &s).unwrap(), vec![1]);
        assert_eq!(resolve(Target::Observer, &s).unwrap(), vec![4]);
        assert_eq!(resolve(Target::All, &s).unwrap(), vec![1, 2, 3, 4]);
        assert_eq!(resolve(Target::Id(2), &s).unwrap(), vec![2]);
        assert_eq!(resolve(Target::Id(9), &s).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn start_and_restart_find_roles_in_the_spec_when_no_node_serves_in_them() {
        use ProcessState::*;
        // The observer is stopped: nothing serves as observer, but the spec says node 4 is one.
        let s = cluster(vec![
            node(1, Role::Participant, Running, Some("follower")),
            node(2, Role::Participant, Running, Some("follower")),
            node(3, Role::Participant, Running, Some("leader")),
            node(4, Role::Observer, Stopped, None),
        ]);
        assert_eq!(resolve_for(Target::Observer, &s, Intent::Start).unwrap(), vec![4]);
        assert_eq!(resolve_for(Target::Observer, &s, Intent::Restart).unwrap(), vec![4]);
        let err = resolve_for(Target::Observer, &s, Intent::Running)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no node serves as observer right now"), "{err}");
        // Start means the stopped ones even while another node serves in the role.
        let s = cluster(vec![
            node(1, Role::Participant, Stopped, None),
            node(2, Role::Participant, Running, Some("follower")),
            node(3, Role::Participant, Running, Some("leader")),
            node(4, Role::Observer, Running, Some("observer")),
        ]);
        assert_eq!(resolve_for(Target::Follower, &s, Intent::Start).unwrap(), vec![1]);
        assert_eq!(resolve_for(Target::Follower, &s, Intent::Restart).unwrap(), vec![2]);
        assert_eq!(resolve_for(Target::Observer, &s, Intent::Start).unwrap(), vec![4]);
        assert_eq!(resolve_for(Target::Follower, &s, Intent::Running).unwrap(), vec![2]);
        // No quorum: nothing serves as follower; restart and start pick the voters that are down.
        let s = cluster(vec![
            node(1, Role::Participant, Stopped, None),
            node(2, Role::Participant, Crashed, None),
            node(3, Role::Participant, Running, Some("looking")),
        ]);
        assert_eq!(resolve_for(Target::Follower, &s, Intent::Restart).unwrap(), vec![1, 2]);
        let err = resolve_for(Target::Observer, &s, Intent::Start).unwrap_err();
        assert!(err.to_string().contains("has no observers"), "{err}");
        assert!(resolve_for(Target::Leader, &s, Intent::Start).is_err());
    }

    #[test]
    fn targets_parse() {
        assert_eq!("leader".parse::<Target>(), Ok(Target::Leader));
        assert_eq!("3".parse::<Target>(), Ok(Target::Id(3)));
        assert!("lead".parse::<Target>().unwrap_err().contains("not a target"));
    }

    #[test]
    fn observers_never_count_toward_quorum() {
        let s = three_plus_one();
        assert!(guard(&s, &[4], "stop node 4", false).is_ok());
        assert!(guard(&s, &[1], "stop node 1", false).is_ok());
        let err = guard(&s, &[1, 2], "stop", false).unwrap_err().to_string();
        assert!(err.contains("1 of 3 voters would remain up; a quorum needs 2"), "{err}");
        assert!(guard(&s, &[1, 2], "stop", true).is_ok());
    }

    #[test]
    fn paused_and_stopped_voters_are_not_up() {
        use ProcessState::*;
        let s = cluster(vec![
            node(1, Role::Participant, Paused, None),
            node(2, Role::Participant, Running, Some("follower")),
            node(3, Role::Participant, Running, Some("leader")),
        ]);
        let err = guard(&s, &[3], "kill the leader", false).unwrap_err().to_string();
        assert!(err.contains("1 of 3 voters would remain up"), "{err}");
        // With quorum already gone, taking the last voters down still needs --force.
        let s = cluster(vec![
            node(1, Role::Participant, Stopped, None),
            node(2, Role::Participant, Stopped, None),
            node(3, Role::Participant, Running, Some("leader")),
        ]);
        let err = guard(&s, &[3], "kill leader 3", false).unwrap_err().to_string();
        assert!(err.contains("0 of 3 voters would remain up; a quorum needs 2"), "{err}");
    }
}
