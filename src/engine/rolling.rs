//! A rolling restart: nodes restarted one at a time, followers and observers first and the leader last (so
//! one election at most), each waited for until the ensemble serves again with every node, so the quorum
//! never breaks. A sampler watches the whole time and records every stretch without a serving leader.
//! `zkdev rolling-restart` (with or without a new version) and the static `zkdev add --observer` share it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::server::Mode;
use crate::model::spec::ClusterSpec;
use crate::os::state::ClusterPaths;
use crate::supervisor::control::{Request, Supervisor};
use crate::supervisor::replies::{StartReply, StopReply};
use crate::zk::observe::{self, Probing};

/// One node restarted.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The node.
    pub id: u32,
    /// Its mode before.
    pub was: Option<Mode>,
    /// Its mode once the ensemble served again.
    pub now: Option<Mode>,
    /// Stop began -> serving again.
    pub ms: u64,
}

/// A stretch without a serving leader.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// The node being restarted when the stretch began.
    pub during_node: u32,
    /// How long it lasted.
    pub ms: u64,
}

/// What a rolling restart did.
#[derive(Debug, Clone, Serialize)]
pub struct Restarted {
    /// The leader when it began (restarted last).
    pub leader_before: u32,
    /// Each node, in the order restarted.
    pub steps: Vec<Step>,
    /// The whole restart.
    pub total_ms: u64,
    /// Every stretch without a serving leader, as sampled every 20 ms.
    pub leaderless: Vec<Window>,
}

/// What a rolling restart is doing, as it does it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RollingEvent {
    /// Node `id` (serving as `was`) is being stopped and started again.
    Restarting {
        /// The node.
        id: u32,
        /// Its mode before.
        was: Option<Mode>,
    },
    /// The ensemble serves again after the restart of a node.
    Done(Step),
}

/// Restart the nodes `ids` of `spec` one at a time, the one leading now last; after each, wait up to
/// `timeout` until every node of `spec` serves with one leader. The ensemble must serve with one leader to
/// begin with. Stops at the first node that does not serve again (the error names it, with its log's end).
pub async fn rolling_restart(
    sup: &Supervisor,
    cause: &str,
    spec: &ClusterSpec,
    paths: &ClusterPaths,
    ids: &[u32],
    timeout: Duration,
    mut on_event: impl FnMut(&RollingEvent),
) -> Result<Restarted> {
    let before = observe::gather(spec, paths, &paths.load_state()?).await;
    let Some(leader) = before.leader.filter(|_| before.healthy()) else {
        return Err(Error::failed(format!(
            "a rolling restart needs a healthy ensemble to start from: {}; `zkdev up` or `zkdev wait` first",
            crate::model::status::summary_line(&before)
        )));
    };
    let mut order: Vec<u32> = ids.iter().copied().filter(|id| *id != leader).collect();
    if ids.contains(&leader) {
        order.push(leader);
    }
    let Some(first) = order.first().copied() else {
        return Ok(Restarted {
            leader_before: leader,
            steps: Vec::new(),
            total_ms: 0,
            leaderless: Vec::new(),
        });
    };
    let current = Arc::new(AtomicU32::new(first));
    let (sampler, stop_sampling, windows) = spawn_sampler(spec.clone(), paths.clone(), current.clone());
    let t0 = Instant::now();
    let mut steps = Vec::new();
    let mut failure = None;
    for id in &order {
        current.store(*id, Ordering::SeqCst);
        let t = Instant::now();
        let was = observe::gather(spec, paths, &paths.load_state()?)
            .await
            .node(*id)
            .and_then(|n| n.mode());
        on_event(&RollingEvent::Restarting { id: *id, was });
        if let Err(e) = restart(sup, cause, *id).await {
            failure = Some(e);
            break;
        }
        match observe::wait_until(spec, paths, timeout, |s| s.healthy(), |_| {}).await {
            Ok(s) => {
                let step = Step {
                    id: *id,
                    was,
                    now: s.node(*id).and_then(|n| n.mode()),
                    ms: t.elapsed().as_millis() as u64,
                };
                on_event(&RollingEvent::Done(step.clone()));
                steps.push(step);
            }
            Err((_, s)) => {
                failure = Some(Error::timeout_with(
                    format!(
                        "node {id} did not serve again within {}; stopped the rolling restart there: {}",
                        crate::model::span::secs(timeout),
                        crate::model::status::summary_line(&s)
                    ),
                    observe::log_tail(paths, *id, 10),
                ));
                break;
            }
        }
    }
    stop_sampling.store(true, Ordering::SeqCst);
    let _ = sampler.await;
    if let Some(e) = failure {
        return Err(e);
    }
    let leaderless = windows.lock().expect("sampler done").clone();
    Ok(Restarted {
        leader_before: leader,
        steps,
        total_ms: t0.elapsed().as_millis() as u64,
        leaderless,
    })
}

/// Stop node `id` (10 s grace) and start it again: its files are rendered anew from cluster.toml.
async fn restart(sup: &Supervisor, cause: &str, id: u32) -> Result<()> {
    let within = Duration::from_secs(90);
    let stop = Request::Stop {
        ids: vec![id],
        grace_ms: 10_000,
        cause: cause.to_string(),
    };
    sup.ask_for::<StopReply>(stop, within).await?;
    let start = Request::Start {
        ids: vec![id],
        cause: cause.to_string(),
    };
    sup.ask_for::<StartReply>(start, within).await?;
    Ok(())
}

type Windows = Arc<Mutex<Vec<Window>>>;

/// Sample every 20 ms; record each stretch during which no node served as the single leader.
fn spawn_sampler(
    spec: ClusterSpec,
    paths: ClusterPaths,
    current: Arc<AtomicU32>,
) -> (tokio::task::JoinHandle<()>, Arc<AtomicBool>, Windows) {
    let stop = Arc::new(AtomicBool::new(false));
    let windows: Windows = Arc::default();
    let (s2, w2) = (stop.clone(), windows.clone());
    let handle = tokio::spawn(async move {
        let mut since: Option<(Instant, u32)> = None;
        let close = |since: (Instant, u32)| Window {
            during_node: since.1,
            ms: since.0.elapsed().as_millis() as u64,
        };
        while !s2.load(Ordering::SeqCst) {
            let state = paths.load_state().unwrap_or_default();
            // A generous deadline: a leader slow to answer on a loaded machine still leads.
            let how = Probing {
                timeout: Duration::from_secs(1),
                mntr: false,
            };
            let status = observe::gather_with(&spec, &paths, &state, how).await;
            match (status.leader.is_some(), since) {
                (false, None) => since = Some((Instant::now(), current.load(Ordering::SeqCst))),
                (true, Some(s)) => {
                    w2.lock().expect("windows").push(close(s));
                    since = None;
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(s) = since {
            w2.lock().expect("windows").push(close(s));
        }
    });
    (handle, stop, windows)
}
