//! Looking at the ensemble: one probe loop per node, the view put together from their latest answers,
//! transitions journalled.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cluster::Sup;
use crate::model::timeline::{Kind, NodeState as Seen};
use crate::os::clock::now_ms;
use crate::os::process;
use crate::os::state::NodeState;
use crate::zk::observe::{self, NodeStatus, Probing, ProcessState};

impl Sup {
    /// Look at the ensemble every interval: keep the view, journal transitions, notice adopted nodes'
    /// exits, and leave when the cluster directory is gone (purged behind our back). Every node is asked by
    /// a loop of its own, so a node that is slow to answer (a JVM still starting, a paused or overloaded
    /// one) delays nobody else's observations; the view is put together every interval from each node's
    /// latest answer.
    pub(super) async fn probe_loop(self: Arc<Self>) {
        let latest: Arc<Mutex<BTreeMap<u32, (NodeStatus, Instant)>>> = Arc::default();
        let fresh = Arc::new(tokio::sync::Notify::new());
        let mut rounds: u64 = 0;
        // Nodes with a probe loop of their own; a loop ends when its node leaves the spec (`zkdev remove`).
        let mut probed = std::collections::BTreeSet::new();
        loop {
            let ids = self.loaded().spec.ids();
            for id in &ids {
                if probed.insert(*id) {
                    tokio::spawn(self.clone().probe_node(*id, latest.clone(), fresh.clone()));
                }
            }
            probed.retain(|id| ids.contains(id));
            // Put the view together as soon as any node has answered anew (so a change is journalled
            // within one probe interval of happening), and at least every interval.
            let _ = tokio::time::timeout(self.current_interval(), fresh.notified()).await;
            let loaded = self.loaded();
            let spec = &loaded.spec;
            // The view is as old as its oldest answer.
            let (nodes, taken): (Vec<NodeStatus>, Vec<Instant>) = {
                let latest = latest.lock().expect("latest");
                spec.ids().iter().filter_map(|id| latest.get(id).cloned()).unzip()
            };
            let taken = taken.into_iter().min().unwrap_or_else(Instant::now);
            if nodes.len() != spec.nodes.len() {
                continue; // not every node has been asked yet
            }
            // The tracker stays locked from the snapshot of the state to the end of its observation, so a
            // reaper's `node_gone` lands either wholly before (and the view shows the node gone) or wholly
            // after (and the leader is lost after this view): never a stale leader "elected" again.
            let mut tracker = self.tracker.lock().expect("tracker");
            // Children first: a node started in between is a child by the time its pid is in the state.
            let children = self.children.lock().expect("children").clone();
            let state = self.state.lock().expect("state").clone();
            let mut nodes = nodes;
            let mut adopted_exits = Vec::new();
            for n in &mut nodes {
                let s = state.node(n.id);
                let recorded = s.process().map(|(pid, _)| pid);
                match (n.pid(), recorded) {
                    // The probe saw a process that is no longer the recorded one: it was reaped (or
                    // replaced) since. Gone now, whatever it answered a moment before it went.
                    (Some(seen), now) if now != Some(seen) => {
                        let crashed = matches!(s, NodeState::Crashed { .. });
                        n.gone(crashed.then(|| match &s {
                            NodeState::Crashed { how, .. } => how.clone(),
                            _ => String::new(),
                        }));
                    }
                    // Recorded as running, but the probe found it gone: an adopted node (nobody reaps it)
                    // has exited, once /proc confirms it (a probe from before a start also looks like this).
                    (None, Some(pid))
                        if !children.contains(&n.id)
                            && matches!(n.process(), ProcessState::Crashed | ProcessState::Stopped)
                            && process::exited(&s) =>
                    {
                        adopted_exits.push((n.id, pid));
                    }
                    _ => {}
                }
            }
            let mut status = observe::assemble(spec, nodes);
            observe::count_committed_voters(&mut status, spec, &self.paths);
            let events = tracker.observe(&status, crate::os::clock::now());
            drop(tracker);
            for (id, pid) in adopted_exits {
                self.on_exit(id, pid, None, "");
            }
            let now_s = now_ms() / 1000;
            for mut e in events {
                // Starts and exits are journalled by whoever saw them first-hand (spawn, reaper).
                let exit_or_start = e.kind == Kind::Process
                    && [e.from, e.to]
                        .iter()
                        .any(|s| matches!(s, Some(Seen::Process(ProcessState::Stopped | ProcessState::Crashed))));
                // A JVM that is still starting is slow to answer on two busy cores: not worth a line.
                let starting = e.kind == Kind::Process
                    && e.node.is_some_and(|id| {
                        matches!(state.node(id), NodeState::Started { started_at, .. } if now_s.saturating_sub(started_at) < 10)
                    });
                if e.kind == Kind::Initial {
                    e.message = format!("first look: {}", e.message);
                }
                if !exit_or_start && !starting {
                    self.record(e);
                }
            }
            *self.view.lock().expect("view") = Some((status, taken));
            rounds += 1;
            if rounds % 10 == 0 && !self.paths.root.exists() {
                super::start::log("the cluster directory is gone; the supervisor stops");
                self.shutdown.notify_one();
                return;
            }
        }
    }

    /// Ask one node every interval (`mntr` every tenth time, its fields kept in between).
    pub(super) async fn probe_node(
        self: Arc<Self>,
        id: u32,
        latest: Arc<Mutex<BTreeMap<u32, (NodeStatus, Instant)>>>,
        fresh: Arc<tokio::sync::Notify>,
    ) {
        let mut round: u64 = 0;
        loop {
            let started = Instant::now();
            let loaded = self.loaded();
            let (spec, Some(ident)) = (&loaded.spec, loaded.idents.get(&id)) else {
                latest.lock().expect("latest").remove(&id);
                return;
            };
            let node_state = self.state.lock().expect("state").node(id);
            let how = Probing {
                timeout: Duration::from_millis(300),
                mntr: round % 10 == 0,
            };
            let mut n = observe::node_status(spec, &self.paths, &node_state, id, ident, how).await;
            let changed = {
                let mut latest = latest.lock().expect("latest");
                if !how.mntr {
                    if let Some((prev, _)) = latest.get(&id) {
                        n.keep_mntr_from(prev);
                    }
                }
                let changed = latest
                    .get(&id)
                    .is_none_or(|(p, _)| (p.process(), p.mode(), p.zxid()) != (n.process(), n.mode(), n.zxid()));
                latest.insert(id, (n, Instant::now()));
                changed
            };
            if changed {
                fresh.notify_one();
            }
            round += 1;
            tokio::time::sleep(self.current_interval().saturating_sub(started.elapsed())).await;
        }
    }
}
