//! The one run loop of `verify`, `chaos` and scenarios: with the load already running, inject each planned
//! fault (or leader kill) at its time, heal it, wait out the run's duration, and stop early on Ctrl-C or a
//! fault that fails. It emits an [`Event`] as each fault is healed and returns an [`Outcome`]; the caller
//! renders both, stops its load, restores what an interrupted run left down ([`restore`]) and checks.

use std::time::{Duration, Instant};

use super::kill_leader::{self, KillLeader, KillReport, Signal};
use super::nemesis::{self, Env, Injected};
use crate::error::{Error, Result};
use crate::model::nemesis::Planned;
use crate::os::interrupt;
use crate::zk::observe;

/// What a run injects while its load runs.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    /// Seeded faults, one at a time, each at its planned time and healed before the next.
    pub faults: Vec<Planned>,
    /// Leader kills (each restarted), spread evenly over the duration (after the faults, if any).
    pub leader_kills: u32,
}

/// Something that happened during a run, as it happened.
#[derive(Debug)]
pub enum Event<'a> {
    /// A planned fault was injected, held and healed, and every node serves again.
    FaultHealed {
        /// The fault as planned.
        fault: &'a Planned,
        /// What was done, when, and how long it took.
        injected: &'a Injected,
    },
    /// Leader kill number `n` (1-based) was made, and the old leader rejoined.
    LeaderKilled {
        /// Which kill (1-based).
        n: u32,
        /// How the re-election went.
        report: &'a KillReport,
    },
}

/// What stopped a run early.
#[derive(Debug)]
pub enum Failure {
    /// A planned fault could not be injected, healed, or recovered from.
    Fault {
        /// The fault that failed.
        fault: Planned,
        /// Why.
        error: Error,
    },
    /// A leader kill could not be made (or the ensemble did not recover from it).
    LeaderKill {
        /// Which kill (1-based).
        n: u32,
        /// Why.
        error: Error,
    },
}

/// How a run went: what was injected, whether it was cut short, and why.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The faults injected (and healed), in order.
    pub injected: Vec<Injected>,
    /// The leader kills made, in order.
    pub kills: Vec<KillReport>,
    /// Set when a fault failed; the run stopped there.
    pub failure: Option<Failure>,
    /// Ctrl-C ended the run (see [`restore`]).
    pub interrupted: bool,
}

/// Inject `schedule` starting from `t0` (the load's start), then wait until `duration` has passed since
/// `t0`. `on_event` sees each fault as it is healed. Returns early on Ctrl-C or at the first fault that
/// fails (both are in the [`Outcome`], not errors); an error is an environment problem (state unreadable).
pub async fn run(
    env: &Env<'_>,
    schedule: &Schedule,
    duration: Duration,
    t0: Instant,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Outcome> {
    let mut out = Outcome::default();
    for f in &schedule.faults {
        if interrupt::interrupted() {
            break;
        }
        match nemesis::inject(env, f, t0).await {
            Ok(i) => {
                on_event(Event::FaultHealed { fault: f, injected: &i });
                out.injected.push(i);
            }
            Err(_) if interrupt::interrupted() => break,
            Err(error) => {
                out.failure = Some(Failure::Fault {
                    fault: f.clone(),
                    error,
                });
                break;
            }
        }
    }
    let kills = if out.failure.is_some() {
        0
    } else {
        schedule.leader_kills
    };
    for n in 1..=kills {
        let at = duration.mul_f64(f64::from(n) / f64::from(kills + 1));
        while t0.elapsed() < at && !interrupt::interrupted() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if interrupt::interrupted() {
            break;
        }
        // kill-leader's own guard would suggest --force, which a run does not have.
        let now = observe::gather(env.spec, env.paths, &env.paths.load_state()?).await;
        if let Some(q) = now
            .leader
            .map(|l| crate::model::fault::quorum_after(&now, &[l]))
            .filter(|q| !q.holds())
        {
            let down = not_coming_back(&now).unwrap_or_else(|| "`zkdev status` shows which voters are down".into());
            let error = Error::failed(format!(
                "kill {n} was not made: {}, so no new leader could be elected; {down}",
                q.describe()
            ));
            out.failure = Some(Failure::LeaderKill { n, error });
            break;
        }
        let options = KillLeader {
            signal: Signal::Kill,
            restart: true,
            timeout: Duration::from_secs(60),
            ..KillLeader::default()
        };
        match kill_leader::kill_leader(env.sup, env.cause, env.spec, env.paths, &options).await {
            Ok((report, _)) => {
                on_event(Event::LeaderKilled { n, report: &report });
                out.kills.push(report);
            }
            Err(error) => {
                out.failure = Some(Failure::LeaderKill { n, error });
                break;
            }
        }
    }
    while t0.elapsed() < duration && !interrupt::interrupted() && out.failure.is_none() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out.interrupted = interrupt::interrupted();
    Ok(out)
}

/// Every node serving with one leader (within 30 s), or an error that says what keeps it from serving;
/// `who` names the caller in the message (`chaos needs every node serving, but ...`).
pub async fn ready(
    spec: &crate::model::spec::ClusterSpec,
    paths: &crate::os::state::ClusterPaths,
    who: &str,
) -> Result<()> {
    let now = observe::gather(spec, paths, &paths.load_state()?).await;
    if let Some(why) = not_coming_back(&now) {
        return Err(Error::failed(format!("{who} needs every node serving, but {why}")));
    }
    match observe::wait_until(spec, paths, Duration::from_secs(30), |s| s.healthy(), |_| {}).await {
        Ok(_) => Ok(()),
        Err((_, s)) => Err(Error::failed(format!(
            "{who} needs a healthy ensemble to start: {}; `zkdev wait` waits for a leader",
            crate::model::status::summary_line(&s)
        ))),
    }
}

/// What [`restore`] did.
#[derive(Debug, Default)]
pub struct Restored {
    /// The nodes started again.
    pub started: Vec<u32>,
    /// Something that did not work out, for the caller to pass on.
    pub warning: Option<String>,
}

/// Start again the nodes that are down after an interrupted run (verify only ever stops leaders it kills).
pub async fn restore(
    cause: &str,
    sup: &crate::supervisor::control::Supervisor,
    spec: &crate::model::spec::ClusterSpec,
    paths: &crate::os::state::ClusterPaths,
) -> Restored {
    let Ok(state) = paths.load_state() else {
        return Restored::default();
    };
    let now = observe::gather(spec, paths, &state).await;
    let down: Vec<u32> = now
        .nodes
        .iter()
        .filter(|n| {
            matches!(
                n.process(),
                observe::ProcessState::Stopped | observe::ProcessState::Crashed
            )
        })
        .map(|n| n.id)
        .collect();
    if down.is_empty() {
        return Restored::default();
    }
    let req = crate::supervisor::control::Request::Start {
        ids: down.clone(),
        cause: cause.to_string(),
    };
    match sup
        .ask_for::<crate::supervisor::replies::StartReply>(req, Duration::from_secs(60))
        .await
    {
        Ok(_) => {
            // Not observe::wait_until: it ends on the very Ctrl-C being handled here.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while std::time::Instant::now() < deadline {
                let healthy = match paths.load_state() {
                    Ok(state) => observe::gather(spec, paths, &state).await.healthy(),
                    Err(_) => false,
                };
                if healthy {
                    return Restored {
                        started: down,
                        warning: None,
                    };
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Restored {
                started: down,
                warning: Some(
                    "restarted the nodes this run had stopped, but the ensemble did not serve within 30 s".into(),
                ),
            }
        }
        Err(e) => Restored {
            started: Vec::new(),
            warning: Some(format!("could not restart the nodes this run had stopped: {e}")),
        },
    }
}

/// Nodes that waiting will not bring back: paused ones (until `zkdev resume`) and stopped or crashed ones
/// (until started): which, and what brings them back.
pub fn not_coming_back(status: &observe::ClusterStatus) -> Option<String> {
    use observe::ProcessState::{Crashed, Paused, Stopped};
    let ids = |states: &[observe::ProcessState]| -> Vec<String> {
        (status.nodes.iter())
            .filter(|n| states.contains(&n.process()))
            .map(|n| n.id.to_string())
            .collect()
    };
    // (who, the target that names them, the pronoun)
    let name = |ids: &[String], what: &str| match ids {
        [one] => (format!("node {one} is {what}"), one.clone(), "it"),
        many => (
            format!("nodes {} are {what}", many.join(",")),
            "all".to_string(),
            "them",
        ),
    };
    let mut problems = Vec::new();
    let paused = ids(&[Paused]);
    if !paused.is_empty() {
        let (which, target, _) = name(&paused, "paused (SIGSTOP)");
        problems.push(format!(
            "{which} and will not serve until resumed: `zkdev resume {target}`"
        ));
    }
    let down = ids(&[Stopped, Crashed]);
    if !down.is_empty() {
        let (which, target, them) = name(&down, "not running");
        problems.push(format!(
            "{which}: `zkdev start {target}` (or `zkdev up`) starts {them} again"
        ));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}
