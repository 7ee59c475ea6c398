//! `zkdev stop|start|restart|kill|pause|resume TARGET`: one fault or repair on nodes picked by id or by the
//! role the servers report right now, guarded by quorum arithmetic, timed, and reported.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::Ctx;
use crate::cli::NodeArgs;
use crate::error::{Error, ErrorKind, Result};
use crate::model::fault;
use crate::model::server::Mode;
use crate::output;
use crate::supervisor::control::{Request, Sig};
use crate::supervisor::replies::{SignalReply, StartReply, StopReply};
use crate::zk::observe::{self, ClusterStatus, ProcessState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Stop,
    Start,
    Restart,
    Kill,
    Pause,
    Resume,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Stop => "stop",
            Action::Start => "start",
            Action::Restart => "restart",
            Action::Kill => "kill",
            Action::Pause => "pause",
            Action::Resume => "resume",
        }
    }
    /// Does the action take voters out of the quorum?
    fn takes_down(self) -> bool {
        matches!(self, Action::Stop | Action::Restart | Action::Kill | Action::Pause)
    }
}

#[derive(Debug, Serialize)]
struct NodeResult {
    id: u32,
    /// The mode the node had before the action (`leader`, `follower`...), if it was serving.
    was: Option<Mode>,
    /// What happened: `stopped`, `killed`, `paused`, `resumed`, `started`, `already running`...
    outcome: String,
    /// Mode after the action, once it serves again (start, restart, resume).
    now: Option<Mode>,
    /// Action begun -> done (stopped, or serving again).
    ms: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Report {
    action: Action,
    target: String,
    nodes: Vec<NodeResult>,
    /// After a pause or stop of the leader: the action -> another node leading with a higher epoch.
    new_leader: Option<u32>,
    new_leader_ms: Option<u64>,
    /// For a paused leader: syncLimit x tickTime, the time followers wait for a silent leader.
    expected_detection_ms: Option<u64>,
    leader: Option<u32>,
    epoch: Option<u32>,
    quorum_after: QuorumView,
    warning: Option<String>,
}

#[derive(Debug, Serialize)]
struct QuorumView {
    voters_up: usize,
    voters: usize,
    needed: usize,
}

/// How long a take-down waits for another one to finish (a stop's grace is 10 s).
pub const QUORUM_LOCK_WAIT: Duration = Duration::from_secs(60);

pub async fn run(ctx: &Ctx, action: Action, args: NodeArgs) -> Result<()> {
    let timeout = args.timeout;
    let (paths, spec) = ctx.existing()?;
    let sup = ctx.supervisor().await?;
    // A take-down decides under the quorum guard's lock, on a look taken under it, and keeps the lock until
    // its nodes are down: concurrent ones (other commands, the dashboard) then count each other.
    let quorum_lock = match action.takes_down() {
        true => Some(paths.quorum_lock(QUORUM_LOCK_WAIT).await?),
        false => None,
    };
    let before = observe::gather(&spec, &paths, &paths.load_state()?).await;
    let intent = match action {
        Action::Start => fault::Intent::Start,
        Action::Restart => fault::Intent::Restart,
        _ => fault::Intent::Running,
    };
    let ids = fault::resolve_for(args.target, &before, intent)?;
    let target = args.target.to_string();

    let mut warning = None;
    if action.takes_down() {
        // The voters ZooKeeper committed count, also after a `reconfig` made with another client.
        let committed = observe::with_committed_voters(&before, &spec, &paths);
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
        let q = fault::guard(&committed, &voters_hit, &what, args.force)?;
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
        Action::Stop | Action::Restart => {
            let running: Vec<u32> = ids.iter().copied().filter(|id| is_up(&before, *id)).collect();
            if !running.is_empty() {
                let stop = Request::Stop {
                    ids: running.clone(),
                    grace_ms: 10_000,
                    cause: ctx.cause(),
                };
                sup.ask_for::<StopReply>(stop, within).await?;
            }
            for id in &ids {
                let outcome = match (action, running.contains(id)) {
                    (Action::Restart, true) => "restarted",
                    (Action::Restart, false) => "started (was not running)",
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
        Action::Kill => {
            let kill = Request::Signal {
                ids: ids.clone(),
                signal: Sig::Kill,
                cause: ctx.cause(),
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
        Action::Pause | Action::Resume => {
            let mut apply = Vec::new();
            let mut outcomes = Vec::new();
            for id in &ids {
                let n = before.node(*id).expect("resolved ids exist");
                let applies = match action {
                    Action::Pause => !matches!(
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
                    (Action::Pause, _) => "already paused",
                    _ => "not paused",
                };
                outcomes.push((*id, applies, not));
            }
            let hit = if apply.is_empty() {
                Vec::new()
            } else {
                let signal = if action == Action::Pause { Sig::Stop } else { Sig::Cont };
                let req = Request::Signal {
                    ids: apply,
                    signal,
                    cause: ctx.cause(),
                };
                sup.ask_for::<SignalReply>(req, within).await?.hit
            };
            for (id, applies, not) in outcomes {
                let outcome = if applies && hit.contains(&id) {
                    if action == Action::Pause {
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
        Action::Start => {}
    }
    // Taken down (stopped, exited, or paused as /proc shows): the next guard sees it.
    drop(quorum_lock);

    // Start (and the second half of restart): the supervisor starts those that do not run.
    if matches!(action, Action::Start | Action::Restart) {
        let start = Request::Start {
            ids: ids.clone(),
            cause: ctx.cause(),
        };
        let started = sup.ask_for::<StartReply>(start, within).await?.started;
        if action == Action::Start {
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
    let leader_paused = action == Action::Pause && old_leader.is_some_and(|l| ids.contains(&l));
    let leader_went = matches!(action, Action::Stop | Action::Kill) && old_leader.is_some_and(|l| ids.contains(&l));
    let rejoining = matches!(action, Action::Start | Action::Restart | Action::Resume);
    let mut after = None;
    if !args.no_wait && warning.is_none() {
        if leader_paused || leader_went {
            let old = old_leader.expect("checked");
            if leader_paused {
                expected_detection_ms = Some(u64::from(spec.settings.sync_limit) * u64::from(spec.settings.tick_time));
            }
            let r = observe::wait_until(
                &spec,
                &paths,
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
                        output::secs(timeout),
                        output::summary_line(&s)
                    ))
                }
            }
        } else if rejoining {
            let waiting: Vec<u32> = ids.clone();
            let r = observe::wait_until(
                &spec,
                &paths,
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
                            detail.push_str(&observe::log_tail(&paths, *id, 10));
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
                        _ => format!("{} did not serve within {}", describe(&ids), output::secs(timeout)),
                    };
                    let kind = match failure {
                        observe::WaitFailure::Crashed(_) => ErrorKind::Failed,
                        _ => ErrorKind::Timeout,
                    };
                    return Err(Error::from_parts(
                        kind,
                        format!("{why}; {}", output::summary_line(&s)),
                        detail,
                    ));
                }
            }
        }
    }
    let after = match after {
        Some(a) => a,
        None => observe::gather(&spec, &paths, &paths.load_state()?).await,
    };
    let report = Report {
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
    };
    print_report(ctx, &report, &after);
    Ok(())
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

fn print_report(ctx: &Ctx, r: &Report, after: &ClusterStatus) {
    if ctx.json {
        output::print_json(r);
        return;
    }
    for n in &r.nodes {
        let was = n.was.map(|m| format!(" (was {m})")).unwrap_or_default();
        let mut line = format!("node {}{was}: {}", n.id, n.outcome);
        if let Some(now) = &n.now {
            line.push_str(&format!(", serving as {now}"));
        }
        if let Some(ms) = n.ms {
            line.push_str(&format!(" after {ms} ms"));
        }
        crate::outln!("{line}");
    }
    if let (Some(l), Some(ms)) = (r.new_leader, r.new_leader_ms) {
        let epoch = r.epoch.map(|e| format!(" (epoch {e})")).unwrap_or_default();
        crate::outln!("new leader: {l}{epoch} after {ms} ms");
        if let Some(expected) = r.expected_detection_ms {
            crate::outln!(
                "  a paused leader still holds its connections: followers notice only after syncLimit x tickTime = {expected} ms"
            );
        }
    }
    if let Some(w) = &r.warning {
        crate::outln!("warning: {w}");
    }
    crate::outln!("{}", output::summary_line(after));
}
