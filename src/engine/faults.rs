//! Single faults and repairs on a running ensemble, one call each: act on nodes (stop, start, restart,
//! kill, pause, resume) and set a disk fault (link faults, measured, are in [`super::net`]). Each takes
//! its target as the servers name it right now (`leader`, `follower`, an id), goes through the
//! supervisor (which journals it with the caller's cause), and returns what it did. Scenarios run their
//! command steps through these.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::nemesis::Env;
use crate::error::ErrorKind;
use crate::error::{Error, Result};
use crate::model::disk::DiskFault;
use crate::model::fault::{self, Target};
use crate::model::server::Mode;
use crate::model::span::secs;
use crate::model::status::summary_line;
use crate::supervisor::control::{Request, Sig};
use crate::supervisor::replies::{DiskReply, SignalReply, StartReply, StopReply};
use crate::zk::observe::{self, ClusterStatus, ProcessState};

/// What to do to a node's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeAction {
    /// SIGTERM, a grace period, then SIGKILL.
    Stop,
    /// Start the JVM again (with its data).
    Start,
    /// Stop, then start.
    Restart,
    /// SIGKILL, as in a crash.
    Kill,
    /// SIGSTOP: the JVM freezes and answers nothing.
    Pause,
    /// SIGCONT after a pause.
    Resume,
}

impl NodeAction {
    /// The verb, as the command line spells it (`stop`).
    pub fn verb(self) -> &'static str {
        match self {
            NodeAction::Stop => "stop",
            NodeAction::Start => "start",
            NodeAction::Restart => "restart",
            NodeAction::Kill => "kill",
            NodeAction::Pause => "pause",
            NodeAction::Resume => "resume",
        }
    }

    /// Does the action take voters out of the quorum?
    pub fn takes_down(self) -> bool {
        matches!(
            self,
            NodeAction::Stop | NodeAction::Restart | NodeAction::Kill | NodeAction::Pause
        )
    }
}

/// How to act on nodes.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Take voters out even where the others would not keep a quorum.
    pub force: bool,
    /// Wait for the effect: the nodes started serving again (start, restart, resume), or a new leader
    /// (the leader stopped, killed or paused).
    pub wait: bool,
    /// How long to wait for it.
    pub timeout: Duration,
}

impl Default for NodeOptions {
    /// Guarded, waiting up to 30 s.
    fn default() -> Self {
        NodeOptions {
            force: false,
            wait: true,
            timeout: Duration::from_secs(30),
        }
    }
}

/// What happened to one node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeResult {
    /// The node.
    pub id: u32,
    /// The mode the node had before the action (`leader`, `follower`...), if it was serving.
    pub was: Option<Mode>,
    /// What happened: `stopped`, `killed`, `paused`, `resumed`, `started`, `already running`...
    pub outcome: String,
    /// Mode after the action, once it serves again (start, restart, resume).
    pub now: Option<Mode>,
    /// Action begun -> done (stopped, or serving again).
    pub ms: Option<u64>,
}

/// What [`node`] did.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    /// What was done.
    pub action: NodeAction,
    /// The target as given (`leader`, `2`, `all`).
    pub target: String,
    /// Each node the target named.
    pub nodes: Vec<NodeResult>,
    /// After a pause or stop of the leader: the action -> another node leading with a higher epoch.
    pub new_leader: Option<u32>,
    /// The action -> the new leader seen.
    pub new_leader_ms: Option<u64>,
    /// For a paused leader: syncLimit x tickTime, the time followers wait for a silent leader.
    pub expected_detection_ms: Option<u64>,
    /// The leader at the end.
    pub leader: Option<u32>,
    /// Its epoch.
    pub epoch: Option<u32>,
    /// The voters up at the end, of how many, and how many a quorum needs.
    pub quorum_after: QuorumView,
    /// Too few voters left for a quorum (with `force`), or no new leader seen in time.
    pub warning: Option<String>,
    /// The cluster at the end.
    #[serde(skip)]
    pub after: ClusterStatus,
}

/// Voters up, of how many, and how many a quorum needs.
#[derive(Debug, Clone, Serialize)]
pub struct QuorumView {
    /// Voters up.
    pub voters_up: usize,
    /// Voters.
    pub voters: usize,
    /// A quorum.
    pub needed: usize,
}

fn nodes_word(ids: &[u32]) -> String {
    match ids {
        [one] => format!("node {one}"),
        many => format!(
            "nodes {}",
            many.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
        ),
    }
}

impl NodeReport {
    /// `stop node 2; leader 3`.
    pub fn describe(&self) -> String {
        let ids: Vec<u32> = self.nodes.iter().map(|n| n.id).collect();
        let mut s = format!("{} {}", self.action.verb(), nodes_word(&ids));
        if let Some(l) = self.leader {
            s.push_str(&format!("; leader {l}"));
        }
        if let Some(w) = &self.warning {
            s.push_str(&format!("; {w}"));
        }
        s
    }
}

/// Act on the nodes `target` names now, and (with `wait`) see the effect: a new leader when the leader
/// went, the nodes serving again after a start. A take-down decides under the quorum guard's lock on a look
/// taken under it, keeps the lock until its nodes are down (so concurrent take-downs, other commands or the
/// dashboard, count each other), and is refused (unless `force`) where the voters left could not form a
/// quorum.
pub async fn node(env: &Env<'_>, action: NodeAction, target: Target, options: &NodeOptions) -> Result<NodeReport> {
    let timeout = options.timeout;
    let (spec, paths, sup) = (env.spec, env.paths, env.sup);
    // A take-down decides under the quorum guard's lock, on a look taken under it, and keeps the lock until
    // its nodes are down: concurrent ones (other commands, the dashboard) then count each other.
    let quorum_lock = match action.takes_down() {
        true => Some(paths.quorum_lock(super::QUORUM_LOCK_WAIT).await?),
        false => None,
    };
    let before = observe::gather(spec, paths, &paths.load_state()?).await;
    let intent = match action {
        NodeAction::Start => fault::Intent::Start,
        NodeAction::Restart => fault::Intent::Restart,
        _ => fault::Intent::Running,
    };
    let ids = fault::resolve_for(target, &before, intent)?;
    let target = target.to_string();

    let mut warning = None;
    if action.takes_down() {
        // The voters ZooKeeper committed count, also after a `reconfig` made with another client.
        let committed = observe::with_committed_voters(&before, spec, paths);
        let voters_hit: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|id| {
                committed
                    .node(*id)
                    .is_some_and(|n| n.role == crate::model::spec::Role::Participant)
            })
            .collect();
        let what = format!("{} {}", action.verb(), describe(&ids));
        let q = fault::guard(&committed, &voters_hit, &what, options.force)?;
        if !q.holds() {
            warning = Some(format!(
                "{}: no leader can be elected until voters return",
                q.describe().replace("would remain", "remain")
            ));
        }
    }

    let old_leader = before.leader;
    let old_epoch = before.epoch;
    let t0 = Instant::now();
    let mut results = Vec::new();
    let was = |id: u32| before.node(id).and_then(|n| n.mode());
    let ms = |d: Duration| Some(d.as_millis() as u64);

    let within = Duration::from_secs(90);
    match action {
        NodeAction::Stop | NodeAction::Restart => {
            let running: Vec<u32> = ids.iter().copied().filter(|id| is_up(&before, *id)).collect();
            if !running.is_empty() {
                let stop = Request::Stop {
                    ids: running.clone(),
                    grace_ms: 10_000,
                    cause: env.cause.to_string(),
                };
                sup.ask_for::<StopReply>(stop, within).await?;
            }
            for id in &ids {
                let outcome = match (action, running.contains(id)) {
                    (NodeAction::Restart, true) => "restarted",
                    (NodeAction::Restart, false) => "started (was not running)",
                    (_, true) => "stopped",
                    (_, false) => "not running",
                };
                results.push(NodeResult {
                    id: *id,
                    was: was(*id),
                    outcome: outcome.into(),
                    now: None,
                    ms: ms(t0.elapsed()),
                });
            }
        }
        NodeAction::Kill => {
            let kill = Request::Signal {
                ids: ids.clone(),
                signal: Sig::Kill,
                cause: env.cause.to_string(),
            };
            let hit = sup.ask_for::<SignalReply>(kill, within).await?.hit;
            for id in &ids {
                results.push(NodeResult {
                    id: *id,
                    was: was(*id),
                    outcome: (if hit.contains(id) { "killed" } else { "not running" }).into(),
                    now: None,
                    ms: ms(t0.elapsed()),
                });
            }
        }
        NodeAction::Pause | NodeAction::Resume => {
            let mut apply = Vec::new();
            let mut outcomes = Vec::new();
            for id in &ids {
                let n = before.node(*id).expect("resolved ids exist");
                let applies = match action {
                    NodeAction::Pause => !matches!(
                        n.process(),
                        ProcessState::Paused | ProcessState::Stopped | ProcessState::Crashed
                    ),
                    _ => n.process() == ProcessState::Paused,
                };
                if applies {
                    apply.push(*id);
                }
                let not = match (action, n.process()) {
                    (_, ProcessState::Stopped | ProcessState::Crashed) => "not running",
                    (NodeAction::Pause, _) => "already paused",
                    _ => "not paused",
                };
                outcomes.push((*id, applies, not));
            }
            let hit = if apply.is_empty() {
                Vec::new()
            } else {
                let signal = if action == NodeAction::Pause {
                    Sig::Stop
                } else {
                    Sig::Cont
                };
                let req = Request::Signal {
                    ids: apply,
                    signal,
                    cause: env.cause.to_string(),
                };
                sup.ask_for::<SignalReply>(req, within).await?.hit
            };
            for (id, applies, not) in outcomes {
                let outcome = if applies && hit.contains(&id) {
                    if action == NodeAction::Pause {
                        "paused"
                    } else {
                        "resumed"
                    }
                } else if applies {
                    "not running"
                } else {
                    not
                };
                results.push(NodeResult {
                    id,
                    was: was(id),
                    outcome: outcome.into(),
                    now: None,
                    ms: None,
                });
            }
        }
        NodeAction::Start => {}
    }
    // Taken down (stopped, exited, or paused as /proc shows): the next guard sees it.
    drop(quorum_lock);

    // Start (and the second half of restart): the supervisor starts those that do not run.
    if matches!(action, NodeAction::Start | NodeAction::Restart) {
        let start = Request::Start {
            ids: ids.clone(),
            cause: env.cause.to_string(),
        };
        let started = sup.ask_for::<StartReply>(start, within).await?.started;
        if action == NodeAction::Start {
            for id in &ids {
                let outcome = if started.contains(id) {
                    "started"
                } else {
                    "already running"
                };
                results.push(NodeResult {
                    id: *id,
                    was: was(*id),
                    outcome: outcome.into(),
                    now: None,
                    ms: None,
                });
            }
        }
    }

    // Wait for the effect, unless told not to.
    let mut new_leader = None;
    let mut new_leader_ms = None;
    let mut expected_detection_ms = None;
    let leader_paused = action == NodeAction::Pause && old_leader.is_some_and(|l| ids.contains(&l));
    let leader_went =
        matches!(action, NodeAction::Stop | NodeAction::Kill) && old_leader.is_some_and(|l| ids.contains(&l));
    let rejoining = matches!(action, NodeAction::Start | NodeAction::Restart | NodeAction::Resume);
    let mut after = None;
    if options.wait && warning.is_none() {
        if leader_paused || leader_went {
            let old = old_leader.expect("checked");
            if leader_paused {
                expected_detection_ms = Some(u64::from(spec.settings.sync_limit) * u64::from(spec.settings.tick_time));
            }
            let r = observe::wait_until(
                spec,
                paths,
                timeout,
                |s| s.leader.is_some_and(|l| l != old) && s.epoch > old_epoch,
                |_| {},
            )
            .await;
            match r {
                Ok(s) => {
                    new_leader = s.leader;
                    new_leader_ms = ms(t0.elapsed());
                    after = Some(s);
                }
                Err((_, s)) => {
                    warning = Some(format!(
                        "no other node took over as leader within {}; {}",
                        secs(timeout),
                        summary_line(&s)
                    ))
                }
            }
        } else if rejoining {
            let waiting: Vec<u32> = ids.clone();
            let r = observe::wait_until(
                spec,
                paths,
                timeout,
                |s| waiting.iter().all(|id| s.node(*id).is_some_and(|n| n.serving())) && s.leader.is_some(),
                |_| {},
            )
            .await;
            match r {
                Ok(s) => {
                    let elapsed = ms(t0.elapsed());
                    for id in &ids {
                        let now = s.node(*id).and_then(|n| n.mode());
                        if let Some(r) = results.iter_mut().find(|r| r.id == *id) {
                            r.now = now;
                            r.ms = elapsed;
                        } else {
                            results.push(NodeResult {
                                id: *id,
                                was: was(*id),
                                outcome: "restarted".into(),
                                now,
                                ms: elapsed,
                            });
                        }
                    }
                    after = Some(s);
                }
                Err((failure, s)) => {
                    let mut detail = String::new();
                    for id in &ids {
                        if s.node(*id).is_some_and(|n| !n.serving()) {
                            detail.push_str(&observe::log_tail(paths, *id, 10));
                        }
                    }
                    let why = match failure {
                        observe::WaitFailure::Crashed(id) => {
                            // Why, as the supervisor recorded it or the log tells (ZooKeeper refusing its
                            // data, a port taken...).
                            let cause = s.node(id).and_then(|n| n.detail().map(String::from)).or_else(|| {
                                let log = std::fs::read_to_string(paths.log_file(id)).unwrap_or_default();
                                crate::model::diagnose::diagnose(&log)
                            });
                            format!(
                                "node {id} exited while starting{}",
                                cause.map(|c| format!(": {c}")).unwrap_or_default()
                            )
                        }
                        _ => format!("{} did not serve within {}", describe(&ids), secs(timeout)),
                    };
                    let kind = match failure {
                        observe::WaitFailure::Crashed(_) => ErrorKind::Failed,
                        _ => ErrorKind::Timeout,
                    };
                    return Err(Error::from_parts(kind, format!("{why}; {}", summary_line(&s)), detail));
                }
            }
        }
    }
    let after = match after {
        Some(a) => a,
        None => observe::gather(spec, paths, &paths.load_state()?).await,
    };
    let report = NodeReport {
        action,
        target,
        nodes: results,
        new_leader,
        new_leader_ms,
        expected_detection_ms,
        leader: after.leader,
        epoch: after.epoch,
        quorum_after: QuorumView {
            voters_up: after.quorum.voters_up,
            voters: after.quorum.voters,
            needed: after.quorum.needed,
        },
        warning,
        after,
    };
    Ok(report)
}

fn is_up(s: &ClusterStatus, id: u32) -> bool {
    s.node(id)
        .is_some_and(|n| !matches!(n.process(), ProcessState::Stopped | ProcessState::Crashed))
}

fn describe(ids: &[u32]) -> String {
    let list = ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    if ids.len() == 1 {
        format!("node {list}")
    } else {
        format!("nodes {list}")
    }
}

/// Set `fault` (or [`DiskFault::Healthy`] to heal) on the disks of the nodes `target` names now (`all`:
/// every node, running or not). Needs the disk-fault library in the nodes (`zkdev up --disk-faults`).
/// Returns the node ids.
pub async fn disk(env: &Env<'_>, target: Target, fault: DiskFault) -> Result<Vec<u32>> {
    if !env.spec.settings.disk_faults {
        return Err(Error::usage(format!(
            "cluster `{}` was made without disk faults, so its JVMs do not load the disk-fault library; {}",
            env.spec.name,
            env.spec.remake_advice(&["--disk-faults"])
        )));
    }
    let status = observe::gather(env.spec, env.paths, &env.paths.load_state()?).await;
    let ids = match target {
        Target::All => env.spec.ids(),
        t => fault::resolve(t, &status)?,
    };
    let request = Request::Disk {
        ids: ids.clone(),
        fault,
        cause: env.cause.to_string(),
    };
    env.sup.ask_for::<DiskReply>(request, Duration::from_secs(10)).await?;
    Ok(ids)
}
