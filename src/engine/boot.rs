//! A new ensemble started one node at a time, as the tutorials do it by hand: the voters in id order, each
//! once the one before it has its election port open (it is looking and can be heard) and a gap has passed;
//! once enough voters run for a quorum, the next one starts only when the one before it serves, so that the
//! first election is decided by the first quorum of voters (node 3 of 5 wins with the votes of 1, 2 and 3)
//! and every later node joins the leader it finds. Observers start last, the same way.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::server::Mode;
use crate::model::spec::{ClusterSpec, Role};
use crate::os::state::ClusterPaths;
use crate::supervisor::control::{Request, Supervisor};
use crate::supervisor::replies::StartReply;
use crate::zk::observe::{self, WaitFailure};

/// How to start one by one.
#[derive(Debug, Clone, Copy)]
pub struct OneByOne {
    /// Waited after the node before is ready (its election port open, or serving), before the next starts.
    pub gap: Duration,
    /// How long one node may take to open its election port, or to serve.
    pub timeout: Duration,
}

/// What a node waited for before it started.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Waited {
    /// The first node: nothing.
    Nothing,
    /// The node before it was looking: its election port was open.
    ElectionPort {
        /// The node before.
        node: u32,
        /// Its election port.
        port: u16,
    },
    /// A quorum of voters ran already: the node before it served (as leader, follower, ...).
    Serving {
        /// The node before.
        node: u32,
        /// What it served as (leader, follower, observer), once it did.
        mode: Option<Mode>,
    },
}

/// What the one-by-one start does, as it does it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum BootEvent {
    /// About to wait for `waiting` before starting node `next`.
    Waiting {
        /// The node that starts next.
        next: u32,
        /// What it waits for.
        waiting: Waited,
    },
    /// Node `id` is being started, after `waited` and the gap.
    Starting {
        /// The node.
        id: u32,
        /// Voter or observer.
        role: Role,
        /// Its place among the voters (1-based), for a voter.
        voter: Option<usize>,
        /// The voters of the ensemble.
        voters: usize,
        /// How many of them make a quorum.
        quorum: usize,
        /// What it waited for.
        waited: Waited,
        /// Since the first node started.
        at_ms: u64,
    },
}

/// The nodes started, in order.
#[derive(Debug, Clone, Serialize)]
pub struct BootReport {
    /// The nodes this start started (not those running already), in order.
    pub started: Vec<u32>,
    /// Every step, as `on_event` saw it.
    pub events: Vec<BootEvent>,
}

/// Start every node of `spec` that is not running, one at a time (see the module's comment). `on_event`
/// sees each step as it happens (a command prints progress from it). Stops at the first node that does not
/// open its election port or serve within the timeout, or that exits: the error names it and what it
/// waited for; the nodes started until then keep running (the caller decides what to stop).
pub async fn start_one_by_one(
    sup: &Supervisor,
    cause: &str,
    spec: &ClusterSpec,
    paths: &ClusterPaths,
    how: OneByOne,
    mut on_event: impl FnMut(&BootEvent),
) -> Result<BootReport> {
    let order: Vec<(u32, Role)> = (spec.voters().map(|n| (n.id, n.role)))
        .chain(
            spec.nodes
                .iter()
                .filter(|n| n.role != Role::Participant)
                .map(|n| (n.id, n.role)),
        )
        .collect();
    let voters = spec.voter_count();
    let quorum = spec.quorum_needed();
    let t0 = Instant::now();
    let mut report = BootReport {
        started: Vec::new(),
        events: Vec::new(),
    };
    let mut emit = |report: &mut BootReport, e: BootEvent| {
        on_event(&e);
        report.events.push(e);
    };
    let mut voters_started = 0usize;
    let mut previous: Option<u32> = None;
    for (id, role) in order {
        let waited = match previous {
            None => Waited::Nothing,
            Some(prev) => {
                let waiting = if voters_started >= quorum {
                    Waited::Serving { node: prev, mode: None }
                } else {
                    let node = spec.node(prev).expect("a node of the spec");
                    Waited::ElectionPort {
                        node: prev,
                        port: node.ports.election,
                    }
                };
                emit(
                    &mut report,
                    BootEvent::Waiting {
                        next: id,
                        waiting: waiting.clone(),
                    },
                );
                let waited = wait_for(spec, paths, &waiting, how.timeout).await?;
                tokio::time::sleep(how.gap).await;
                waited
            }
        };
        if role == Role::Participant {
            voters_started += 1;
        }
        emit(
            &mut report,
            BootEvent::Starting {
                id,
                role,
                voter: (role == Role::Participant).then_some(voters_started),
                voters,
                quorum,
                waited,
                at_ms: t0.elapsed().as_millis() as u64,
            },
        );
        let reply = sup
            .ask_for::<StartReply>(
                Request::Start {
                    ids: vec![id],
                    cause: cause.to_string(),
                },
                Duration::from_secs(120),
            )
            .await?;
        report.started.extend(reply.started);
        previous = Some(id);
    }
    Ok(report)
}

/// A condition on the ensemble's status.
type Done = Box<dyn Fn(&observe::ClusterStatus) -> bool + Send>;

/// Wait until `what` holds; what it found (the mode the node served in).
async fn wait_for(spec: &ClusterSpec, paths: &ClusterPaths, what: &Waited, timeout: Duration) -> Result<Waited> {
    let (id, done): (u32, Done) = match what {
        Waited::Nothing => return Ok(Waited::Nothing),
        Waited::ElectionPort { node, port } => {
            let address = spec.node(*node).expect("a node of the spec").address;
            let port = *port;
            (*node, Box::new(move |_| crate::os::ports::listening_on(address, port)))
        }
        Waited::Serving { node, .. } => {
            let node = *node;
            (
                node,
                Box::new(move |s| s.leader.is_some() && s.node(node).is_some_and(|n| n.serving())),
            )
        }
    };
    match observe::wait_until(spec, paths, timeout, done, |_| {}).await {
        Ok(status) => Ok(match what {
            Waited::Serving { node, .. } => Waited::Serving {
                node: *node,
                mode: status.node(*node).and_then(|n| n.mode()),
            },
            other => other.clone(),
        }),
        Err((failure, status)) => {
            let waiting = match what {
                Waited::ElectionPort { port, .. } => format!("to open its election port {port}"),
                _ => "to serve".to_string(),
            };
            let tail = observe::log_tail(paths, id, 10);
            Err(match failure {
                WaitFailure::Crashed(dead) => Error::failed_with(
                    format!("node {dead} exited while node {id} was waited for {waiting}"),
                    tail,
                ),
                WaitFailure::Interrupted => {
                    Error::failed(format!("interrupted while node {id} was waited for {waiting}"))
                }
                WaitFailure::Timeout => Error::timeout_with(
                    format!(
                        "node {id} did not {} within {} (--timeout), so the next node was not started: {}",
                        waiting.trim_start_matches("to "),
                        crate::model::span::secs(timeout),
                        crate::model::status::summary_line(&status)
                    ),
                    tail,
                ),
            })
        }
    }
}
