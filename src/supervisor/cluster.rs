//! The supervisor's own state of the cluster (`Sup`) and the small operations every part uses: the
//! journal, activity, the state file, the spec, per-node locks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::journal::Journal;
use super::proxy;
use crate::error::{Error, Result};
use crate::model::spec::ClusterSpec;
use crate::model::timeline::{Action, Event, Kind, Tracker};
use crate::os::process;
use crate::os::state::{ClusterPaths, State};
use crate::zk::observe::ClusterStatus;

/// A spec with the identities of its nodes.
pub(super) struct Loaded {
    pub(super) spec: ClusterSpec,
    pub(super) idents: BTreeMap<u32, process::Ident>,
}

impl Loaded {
    pub(super) fn new(paths: &ClusterPaths, spec: ClusterSpec) -> Loaded {
        Loaded {
            idents: paths.idents(&spec).into_iter().collect(),
            spec,
        }
    }
}

pub(super) struct Sup {
    pub(super) paths: ClusterPaths,
    /// The spec and every node's identity, made once per (re)load: the probe loops read them 10 times a
    /// second per node.
    pub(super) spec: Mutex<Arc<Loaded>>,
    pub(super) state: Mutex<State>,
    /// One lock per node: requests touching a node run one after the other.
    pub(super) node_locks: BTreeMap<u32, tokio::sync::Mutex<()>>,
    /// Nodes zkdev asked to stop or sent a signal that ends them, with the command that asked.
    pub(super) intents: Mutex<HashMap<u32, String>>,
    /// Nodes whose JVM is this supervisor's child (reaped); the others were adopted (polled).
    pub(super) children: Mutex<HashSet<u32>>,
    pub(super) journal: Mutex<Journal>,
    pub(super) tracker: Mutex<Tracker>,
    pub(super) view: Mutex<Option<(ClusterStatus, Instant)>>,
    pub(super) shutdown: tokio::sync::Notify,
    pub(super) interval: Duration,
    /// The probe interval once nothing has happened for `QUIET` (never shorter than `interval`).
    pub(super) idle_interval: Duration,
    /// The last request, event or exit: within `QUIET` of it, every node is probed every `interval`.
    pub(super) last_activity: Mutex<Instant>,
    /// The link proxies of a `--net` cluster.
    pub(super) proxies: Option<proxy::Proxies>,
}

/// How long after the last activity the supervisor keeps probing at full rate.
pub(super) const QUIET: Duration = Duration::from_secs(5);

pub(super) fn list(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

pub(super) fn nodes_word(ids: &[u32]) -> String {
    if ids.len() == 1 {
        format!("node {}", ids[0])
    } else {
        format!("nodes {}", list(ids))
    }
}

impl Sup {
    pub(super) fn record(&self, ev: Event) -> Event {
        self.active();
        self.journal.lock().expect("journal").append(ev)
    }

    /// Something happened: probe at full rate for a while.
    pub(super) fn active(&self) {
        *self.last_activity.lock().expect("activity") = Instant::now();
    }

    /// The probe interval now: full rate within `QUIET` of the last activity, else the idle one.
    pub(super) fn current_interval(&self) -> Duration {
        if self.last_activity.lock().expect("activity").elapsed() < QUIET {
            self.interval
        } else {
            self.idle_interval
        }
    }

    pub(super) fn save_state(&self) {
        let state = self.state.lock().expect("state").clone();
        if let Err(e) = self.paths.save_state(&state) {
            super::start::log(format_args!("warning: {e}"));
        }
    }

    pub(super) fn loaded(&self) -> Arc<Loaded> {
        self.spec.lock().expect("spec").clone()
    }

    pub(super) fn spec(&self) -> ClusterSpec {
        self.loaded().spec.clone()
    }

    /// Read cluster.toml again (a rolling upgrade changes the installation, `zkdev add`/`remove` the nodes);
    /// keep the last good one. The link proxies follow the nodes.
    pub(super) fn reload_spec(&self) -> ClusterSpec {
        if let Ok(s) = self.paths.load_spec() {
            *self.spec.lock().expect("spec") = Arc::new(Loaded::new(&self.paths, s));
        }
        let spec = self.spec();
        if let Some(p) = &self.proxies {
            for note in p.sync(&spec) {
                let mut ev = Event::new(Kind::Note, note);
                ev.action = Some(Action::Links);
                self.record(ev);
            }
            // The faults of a node the ensemble no longer has go with it: a node added later with its id
            // must not inherit them.
            let mut table = p.table();
            let member = |e: &crate::model::links::Endpoint| match e {
                crate::model::links::Endpoint::Node(id) => spec.node(*id).is_some(),
                _ => true,
            };
            let before = table.rules.len();
            table.rules.retain(|r| member(&r.flow.from) && member(&r.flow.to));
            if table.rules.len() < before {
                let dropped = before - table.rules.len();
                if let Err(e) = super::links::save(&self.paths, &table) {
                    self.record(Event::new(Kind::Note, format!("cannot save links.json: {e}")));
                }
                p.update(table, Vec::new());
                let mut ev = Event::new(
                    Kind::Note,
                    format!(
                        "{} of nodes no longer in the ensemble dropped",
                        crate::model::words::count(dropped, "link fault rule")
                    ),
                );
                ev.action = Some(Action::Links);
                self.record(ev);
            }
        }
        spec
    }

    /// Drop from the state the nodes `spec` no longer names (removed by a reconfig) whose process is gone.
    pub(super) fn forget_nodes_not_in(&self, spec: &ClusterSpec) -> Vec<u32> {
        let mut forgotten = Vec::new();
        {
            let mut state = self.state.lock().expect("state");
            let gone: Vec<u32> = (state.nodes.iter())
                .filter(|(id, s)| spec.node(**id).is_none() && s.process().is_none_or(|_| process::exited(s)))
                .map(|(id, _)| *id)
                .collect();
            for id in gone {
                state.nodes.remove(&id);
                self.children.lock().expect("children").remove(&id);
                forgotten.push(id);
            }
        }
        if !forgotten.is_empty() {
            self.save_state();
        }
        forgotten
    }

    pub(super) async fn lock_nodes(&self, ids: &[u32]) -> Result<Vec<tokio::sync::MutexGuard<'_, ()>>> {
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut known = self.spec().ids();
        if sorted.iter().any(|id| !known.contains(id)) {
            // A node `zkdev add` has just put in cluster.toml.
            known = self.reload_spec().ids();
        }
        let mut guards = Vec::new();
        for id in sorted {
            let lock = (self.node_locks.get(&id))
                .filter(|_| known.contains(&id))
                .ok_or_else(|| Error::usage(format!("the cluster has no node {id}")))?;
            guards.push(lock.lock().await);
        }
        Ok(guards)
    }

    pub(super) fn action(&self, action: Action, ids: &[u32], signal: Option<&str>, cause: &str) {
        let what = match signal {
            Some(sig) => format!("{action} {} ({sig})", nodes_word(ids)),
            None => format!("{action} {}", nodes_word(ids)),
        };
        let mut ev = Event::new(Kind::Action, format!("{what}, asked by `{cause}`"));
        ev.action = Some(action);
        ev.nodes = ids.to_vec();
        ev.node = (ids.len() == 1).then(|| ids[0]);
        ev.signal = signal.map(String::from);
        ev.cause = Some(cause.to_string());
        self.record(ev);
    }
}
