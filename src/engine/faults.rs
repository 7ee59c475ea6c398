//! Single faults and repairs on a running ensemble, one call each: act on nodes (stop, start, restart,
//! kill, pause, resume), cut a node off on its peer links, heal every link, set a disk fault. Each takes
//! its target as the servers name it right now (`leader`, `follower`, an id), goes through the
//! supervisor (which journals it with the caller's cause), and returns what it did. Scenarios run their
//! command steps through these.

use std::time::Duration;

use serde::Serialize;

use super::nemesis::Env;
use crate::error::{Error, Result};
use crate::model::disk::DiskFault;
use crate::model::fault::{self, Intent, Target};
use crate::model::links;
use crate::os::clock::now_ms;
use crate::supervisor::control::{self, Request, Sig};
use crate::zk::observe::{self, ProcessState};

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

/// What [`node`] did.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    /// What was done.
    pub action: NodeAction,
    /// The nodes the target named.
    pub ids: Vec<u32>,
    /// The leader once the effect was seen (or before, without waiting).
    pub leader: Option<u32>,
    /// Set when the action left too few voters for a quorum (only with `force`).
    pub warning: Option<String>,
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
        let mut s = format!("{} {}", self.action.verb(), nodes_word(&self.ids));
        if let Some(l) = self.leader {
            s.push_str(&format!("; leader {l}"));
        }
        if let Some(w) = &self.warning {
            s.push_str(&format!("; {w}"));
        }
        s
    }
}

/// Act on the nodes `target` names now. A take-down decides under the quorum guard's lock on a look taken
/// under it, and is refused (unless `force`) where the voters left could not form a quorum.
pub async fn node(env: &Env<'_>, action: NodeAction, target: Target, options: &NodeOptions) -> Result<NodeReport> {
    let (spec, paths) = (env.spec, env.paths);
    let quorum_lock = match action.takes_down() {
        true => Some(paths.quorum_lock(super::QUORUM_LOCK_WAIT).await?),
        false => None,
    };
    let before = observe::gather(spec, paths, &paths.load_state()?).await;
    let intent = match action {
        NodeAction::Start => Intent::Start,
        NodeAction::Restart => Intent::Restart,
        _ => Intent::Running,
    };
    let ids = fault::resolve_for(target, &before, intent)?;
    let mut warning = None;
    if action.takes_down() {
        let committed = observe::with_committed_voters(&before, spec, paths);
        let voters_hit: Vec<u32> = (ids.iter().copied())
            .filter(|id| (committed.node(*id)).is_some_and(|n| n.role == crate::model::spec::Role::Participant))
            .collect();
        let what = format!("{} {}", action.verb(), nodes_word(&ids));
        let q = fault::guard(&committed, &voters_hit, &what, options.force)?;
        if !q.holds() {
            warning = Some(q.describe().replace("would remain", "remain"));
        }
    }
    let ask = |req: Request| env.sup.ask(req, Duration::from_secs(90));
    let cause = env.cause.to_string();
    let signal = |ids: Vec<u32>, signal| Request::Signal {
        ids,
        signal,
        cause: cause.clone(),
    };
    let state = |id: u32| before.node(id).map(|n| n.process());
    match action {
        NodeAction::Stop | NodeAction::Restart => {
            let running: Vec<u32> = (ids.iter().copied())
                .filter(|id| matches!(state(*id), Some(ProcessState::Running | ProcessState::Paused)))
                .collect();
            if !running.is_empty() {
                ask(Request::Stop {
                    ids: running,
                    grace_ms: 10_000,
                    cause: cause.clone(),
                })
                .await?;
            }
        }
        NodeAction::Kill => {
            ask(signal(ids.clone(), Sig::Kill)).await?;
        }
        NodeAction::Pause | NodeAction::Resume => {
            let (sig, applies): (Sig, fn(Option<ProcessState>) -> bool) = match action {
                NodeAction::Pause => (Sig::Stop, |p| matches!(p, Some(ProcessState::Running))),
                _ => (Sig::Cont, |p| matches!(p, Some(ProcessState::Paused))),
            };
            let apply: Vec<u32> = ids.iter().copied().filter(|id| applies(state(*id))).collect();
            if !apply.is_empty() {
                ask(signal(apply, sig)).await?;
            }
        }
        NodeAction::Start => {}
    }
    drop(quorum_lock);
    if matches!(action, NodeAction::Start | NodeAction::Restart) {
        let v = ask(Request::Start {
            ids: ids.clone(),
            cause: cause.clone(),
        })
        .await?;
        let _started = control::ids(&v["started"]);
    }
    let mut report = NodeReport {
        action,
        ids: ids.clone(),
        leader: before.leader,
        warning,
    };
    if !options.wait || report.warning.is_some() {
        return Ok(report);
    }
    let old = before.leader;
    let leader_went = action.takes_down() && old.is_some_and(|l| ids.contains(&l));
    let rejoining = matches!(action, NodeAction::Start | NodeAction::Restart | NodeAction::Resume);
    if !(leader_went || rejoining) {
        return Ok(report);
    }
    let done = |s: &observe::ClusterStatus| {
        let new_leader = !leader_went || s.leader.is_some_and(|l| Some(l) != old && s.epoch > before.epoch);
        let serving = !rejoining || ids.iter().all(|id| s.node(*id).is_some_and(|n| n.serving()));
        new_leader && serving
    };
    match observe::wait_until(spec, paths, options.timeout, done, |_| {}).await {
        Ok(s) => {
            report.leader = s.leader;
            Ok(report)
        }
        Err((_, s)) => Err(Error::failed(format!(
            "{} {}: {} not seen within {}; {}",
            action.verb(),
            nodes_word(&ids),
            if rejoining { "serving again" } else { "a new leader" },
            crate::model::span::secs(options.timeout),
            crate::model::status::summary_line(&s)
        ))),
    }
}

/// What [`isolate`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Split {
    /// The nodes cut off.
    pub side: Vec<u32>,
    /// The nodes they can no longer reach.
    pub others: Vec<u32>,
}

impl Split {
    /// `node 3 cut off from nodes 1,2`.
    pub fn describe(&self) -> String {
        format!("{} cut off from {}", nodes_word(&self.side), nodes_word(&self.others))
    }
}

/// Cut the nodes `target` names off from every other node on their quorum and election links (both ways,
/// or with `one_way` only what they send). Needs proxied links (`zkdev up --net`).
pub async fn isolate(env: &Env<'_>, target: Target, one_way: bool) -> Result<Split> {
    if env.spec.net.is_none() {
        return Err(crate::supervisor::links::not_proxied(env.spec));
    }
    let before = observe::gather(env.spec, env.paths, &env.paths.load_state()?).await;
    let side = fault::resolve(target, &before)?;
    let others: Vec<u32> = env.spec.ids().into_iter().filter(|id| !side.contains(id)).collect();
    if side.is_empty() || others.is_empty() {
        return Err(Error::usage(format!(
            "nothing to cut: `{target}` names {} of the cluster's nodes",
            if side.is_empty() { "none" } else { "all" }
        )));
    }
    let split = Split { side, others };
    let request = Request::SetLinks {
        heal_all: false,
        heal_pairs: Vec::new(),
        rules: links::partition(&split.side, &split.others, one_way, env.cause, now_ms()),
        reset: Vec::new(),
        action: "isolate".into(),
        message: format!("isolate: {} on quorum and election links", split.describe()),
        cause: env.cause.to_string(),
    };
    env.sup.ask(request, Duration::from_secs(10)).await?;
    Ok(split)
}

/// End every link fault; with `wait`, until every node serves with one leader (within `timeout`).
pub async fn heal(env: &Env<'_>, wait: Option<Duration>) -> Result<()> {
    if env.spec.net.is_none() {
        return Err(crate::supervisor::links::not_proxied(env.spec));
    }
    let request = Request::SetLinks {
        heal_all: true,
        heal_pairs: Vec::new(),
        rules: Vec::new(),
        reset: Vec::new(),
        action: "heal".into(),
        message: "heal every link".into(),
        cause: env.cause.to_string(),
    };
    env.sup.ask(request, Duration::from_secs(10)).await?;
    match wait {
        None => Ok(()),
        Some(timeout) => super::nemesis::wait_healthy(env, timeout, "after the heal").await,
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
    env.sup.ask(request, Duration::from_secs(10)).await?;
    Ok(ids)
}
