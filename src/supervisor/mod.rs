//! The supervisor: one long-lived zkdev process per cluster that owns the nodes. It spawns every node's JVM
//! as its own child and reaps it (so it knows how each one ended and whether zkdev asked), probes every
//! node each `probe_interval_ms`, keeps the latest view, journals everything that happens, and serves the
//! other commands on a Unix socket. Requests that touch nodes are serialised per node; nobody waits for a
//! cluster-wide lock.
//!
//! The ensemble never depends on it: the JVMs live in sessions of their own, so SIGKILL of the supervisor
//! leaves them serving; every command still works from /proc and the servers' answers, and the next one
//! that needs a supervisor starts a new one, which adopts the running JVMs (it polls those instead of
//! reaping them) and journals that it did.

pub mod control;
pub mod journal;
pub mod proxy;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::dist::cds;
use crate::error::{Error, Result};
use crate::model::render;
use crate::model::spec::ClusterSpec;
use crate::model::timeline::{now_ms, Event, Kind, Tracker};
use crate::os::launch;
use crate::os::process::{self, Liveness};
use crate::os::state::{ClusterPaths, Home, NodeState, State, StateRead, StopReason};
use crate::zk::observe::{self, ClusterStatus, NodeStatus, Probing, ProcessState};
use control::{Reply, Request, Sig, WireError};

/// links.json: the link rules of a `--net` cluster, kept on disk so a new supervisor restores them.
pub mod links {
    use crate::error::{Error, Result};
    use crate::model::links::{LinkTable, Rule, LINKS_FORMAT};
    use crate::os::state::ClusterPaths;

    pub fn path(paths: &ClusterPaths) -> std::path::PathBuf {
        paths.root.join("links.json")
    }

    /// The saved rules; a damaged file is noted and treated as "every link healthy".
    pub fn load(paths: &ClusterPaths, notes: &mut Vec<String>) -> LinkTable {
        let p = path(paths);
        let Ok(text) = std::fs::read_to_string(&p) else {
            return LinkTable::default();
        };
        match serde_json::from_str::<LinkTable>(&text) {
            Ok(t) if t.format == LINKS_FORMAT => t,
            _ => {
                notes.push(format!(
                    "{} is not a link table this zkdev reads: every link starts healthy",
                    p.display()
                ));
                LinkTable::default()
            }
        }
    }

    /// Read without noting anything (for `status` when no supervisor answers).
    pub fn read(paths: &ClusterPaths) -> LinkTable {
        load(paths, &mut Vec::new())
    }

    pub fn save(paths: &ClusterPaths, table: &LinkTable) -> Result<()> {
        crate::os::state::write_atomic(
            &path(paths),
            serde_json::to_string_pretty(table).expect("serialises").as_bytes(),
        )
    }

    pub fn describe_rules(rules: &[Rule]) -> String {
        rules
            .iter()
            .map(|r| format!("{} {}", r.flow, r.fault.describe()))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn not_proxied(cluster: &str) -> Error {
        Error::usage(format!(
            "cluster `{cluster}` was made without proxied links: its nodes dial each other directly, so there is no \
             link to break; make one with `zkdev up --net` (or `--profile chaos`), e.g. `zkdev down --purge && zkdev \
             up --net`"
        ))
    }
}
use journal::Journal;

/// Fork: the parent exits at once (the command that started us waits only for that), the child leaves
/// the caller's session and carries on as the supervisor. Call before any thread exists.
pub fn detach() -> Result<()> {
    use nix::unistd::{fork, setsid, ForkResult};
    // SAFETY: called from main before the runtime or any other thread exists.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => std::process::exit(0),
        Ok(ForkResult::Child) => {
            setsid().map_err(|e| Error::failed(format!("setsid: {e}")))?;
            Ok(())
        }
        Err(e) => Err(Error::failed(format!("cannot fork the supervisor: {e}"))),
    }
}

/// What `supervisor.json` records: enough for `down` to find (and, if it hangs, stop) the supervisor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub pid: i32,
    pub start_ticks: u64,
    pub started_at_ms: u64,
}

impl Record {
    pub fn read(paths: &ClusterPaths) -> Option<Record> {
        serde_json::from_str(&std::fs::read_to_string(paths.supervisor_record()).ok()?).ok()
    }

    /// Is the recorded process still this cluster's supervisor (same start time, and `--home H --cluster
    /// NAME supervise` for this cluster on its command line)?
    pub fn alive(&self, paths: &ClusterPaths) -> bool {
        let Some(st) = process::proc_stat(self.pid) else {
            return false;
        };
        if st.start_ticks != self.start_ticks || matches!(st.state, 'Z' | 'X' | 'x') {
            return false;
        }
        let (Some(name), Some(home)) = (
            paths.root.file_name().map(|n| n.to_string_lossy().into_owned()),
            paths
                .root
                .parent()
                .and_then(|p| p.parent())
                .map(|h| h.to_string_lossy().into_owned()),
        ) else {
            return false;
        };
        process::cmdline(self.pid).is_some_and(|argv| {
            let after = |flag: &str| argv.iter().position(|a| a == flag).and_then(|i| argv.get(i + 1));
            argv.iter().any(|a| a == "supervise")
                && after("--home").is_some_and(|h| *h == home)
                && after("--cluster").is_some_and(|c| *c == name)
        })
    }
}

/// A spec with the identities of its nodes.
struct Loaded {
    spec: ClusterSpec,
    idents: BTreeMap<u32, process::Ident>,
}

impl Loaded {
    fn new(paths: &ClusterPaths, spec: ClusterSpec) -> Loaded {
        Loaded {
            idents: paths.idents(&spec).into_iter().collect(),
            spec,
        }
    }
}

struct Sup {
    paths: ClusterPaths,
    /// The spec and every node's identity, made once per (re)load: the probe loops read them 10 times a
    /// second per node.
    spec: Mutex<Arc<Loaded>>,
    state: Mutex<State>,
    /// One lock per node: requests touching a node run one after the other.
    node_locks: BTreeMap<u32, tokio::sync::Mutex<()>>,
    /// Nodes zkdev asked to stop or sent a signal that ends them, with the command that asked.
    intents: Mutex<HashMap<u32, String>>,
    /// Nodes whose JVM is this supervisor's child (reaped); the others were adopted (polled).
    children: Mutex<HashSet<u32>>,
    journal: Mutex<Journal>,
    tracker: Mutex<Tracker>,
    view: Mutex<Option<(ClusterStatus, Instant)>>,
    shutdown: tokio::sync::Notify,
    interval: Duration,
    /// The probe interval once nothing has happened for `QUIET` (never shorter than `interval`).
    idle_interval: Duration,
    /// The last request, event or exit: within `QUIET` of it, every node is probed every `interval`.
    last_activity: Mutex<Instant>,
    /// The link proxies of a `--net` cluster.
    proxies: Option<proxy::Proxies>,
}

/// How long after the last activity the supervisor keeps probing at full rate.
const QUIET: Duration = Duration::from_secs(5);

/// `zkdev supervise`: run until `down` (or SIGTERM). Exits quietly when another supervisor already holds
/// this cluster.
pub async fn run(home: Home, cluster: String) -> Result<()> {
    let paths = home.cluster(&cluster);
    if !paths.exists() {
        return Err(Error::failed(format!(
            "no cluster `{cluster}` in {}",
            home.root.display()
        )));
    }
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(paths.supervisor_lock())
        .map_err(|e| Error::io("cannot open", paths.supervisor_lock(), e))?;
    let _held = match nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(h) => h,
        Err(_) => {
            eprintln!("another supervisor already runs cluster `{cluster}`; leaving it in charge");
            return Ok(());
        }
    };
    let spec = paths.load_spec()?;
    let journal = Journal::open(&paths)?;
    let previous = journal::read_all(&paths)
        .into_iter()
        .rev()
        .find(|e| matches!(e.kind, Kind::SupervisorStarted | Kind::SupervisorStopped));

    let mut notes = Vec::new();
    let mut state = match paths.read_state() {
        Ok(s) => s,
        Err(StateRead::Damaged(why)) => {
            notes.push(format!(
                "{} {why}: rebuilt from the running processes",
                paths.state_file().display()
            ));
            State::default()
        }
        Err(StateRead::Io(e)) => return Err(e),
    };
    state.adopt_orphans(&paths.idents(&spec));
    let interval = Duration::from_millis(u64::from(spec.settings.probe_interval_ms.max(10)));
    let idle_interval = Duration::from_millis(u64::from(spec.settings.idle_probe_interval_ms)).max(interval);
    // Links first: the nodes (running ones too, if this supervisor replaces one that died) need them.
    let proxies = match spec.net {
        Some(_) => {
            let table = links::load(&paths, &mut notes);
            Some(proxy::Proxies::start(&spec, table).await?)
        }
        None => None,
    };
    let sup = Arc::new(Sup {
        proxies,
        node_locks: spec
            .ids()
            .into_iter()
            .map(|id| (id, tokio::sync::Mutex::new(())))
            .collect(),
        paths: paths.clone(),
        spec: Mutex::new(Arc::new(Loaded::new(&paths, spec.clone()))),
        state: Mutex::new(state),
        intents: Mutex::default(),
        children: Mutex::default(),
        journal: Mutex::new(journal),
        tracker: Mutex::default(),
        view: Mutex::default(),
        shutdown: tokio::sync::Notify::new(),
        interval,
        idle_interval,
        last_activity: Mutex::new(Instant::now()),
    });

    // Nodes that run now are adopted; nodes recorded as running that are gone ended while nobody watched.
    let mut adopted = Vec::new();
    let mut ended = Vec::new();
    for (id, ident) in paths.idents(&spec) {
        let s = sup.state.lock().expect("state").node(id);
        match process::identify(&s, &ident) {
            Liveness::Ours { pid, .. } => adopted.push((id, pid)),
            Liveness::Gone => ended.extend(s.process().map(|(pid, _)| (id, pid))),
        }
    }

    let listener = bind(&paths)?;
    let me = std::process::id() as i32;
    let record = Record {
        pid: me,
        start_ticks: process::proc_stat(me).map(|s| s.start_ticks).unwrap_or(0),
        started_at_ms: now_ms(),
    };
    crate::os::state::write_atomic(
        &paths.supervisor_record(),
        serde_json::to_string(&record).expect("serialises").as_bytes(),
    )?;

    let how_last_ended = match previous {
        Some(e) if e.kind == Kind::SupervisorStarted => format!(
            "the previous supervisor (pid {}) died without stopping",
            e.pid.unwrap_or(0)
        ),
        Some(_) => "the previous supervisor stopped cleanly".to_string(),
        None => "first supervisor of this cluster".to_string(),
    };
    let mut ev = Event::new(
        Kind::SupervisorStarted,
        if adopted.is_empty() {
            format!("supervisor started (pid {me}); {how_last_ended}")
        } else {
            format!(
                "supervisor started (pid {me}); {how_last_ended}; adopted running node(s) {}",
                list(&adopted.iter().map(|(id, _)| *id).collect::<Vec<_>>())
            )
        },
    );
    ev.pid = Some(me);
    ev.nodes = adopted.iter().map(|(id, _)| *id).collect();
    ev.detail = Some(how_last_ended);
    sup.record(ev);
    // Journalled after the start, in the order things are learnt.
    for (id, pid) in ended {
        sup.on_exit(id, pid, None, "while no supervisor was running");
    }
    sup.save_state();
    if let Some(p) = &sup.proxies {
        let table = p.table();
        let restored = if table.rules.is_empty() {
            "no link faults".to_string()
        } else {
            format!(
                "link faults restored from links.json: {}",
                links::describe_rules(&table.rules)
            )
        };
        let mut ev = Event::new(
            Kind::Note,
            format!(
                "link proxies listening ({} proxies from port {}); {restored}",
                p.count(),
                spec.net.map(|n| n.port_base).unwrap_or(0)
            ),
        );
        ev.action = Some("links".into());
        sup.record(ev);
    }
    for n in notes {
        sup.record(Event::new(Kind::Note, n));
    }
    for (id, pid) in &adopted {
        let mut ev = Event::new(
            Kind::NodeAdopted,
            format!("node {id} (pid {pid}) adopted: running, started before this supervisor; its exit will be seen by polling"),
        );
        ev.node = Some(*id);
        ev.pid = Some(*pid);
        sup.record(ev);
    }

    tokio::spawn(sup.clone().probe_loop());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::failed(format!("cannot handle SIGTERM: {e}")))?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Error::failed(format!("cannot handle SIGINT: {e}")))?;
    let stopped_by = loop {
        tokio::select! {
            conn = listener.accept() => {
                if let Ok((stream, _)) = conn {
                    tokio::spawn(sup.clone().serve(stream));
                }
            }
            _ = sup.shutdown.notified() => break None,
            _ = term.recv() => break Some("SIGTERM"),
            _ = int.recv() => break Some("SIGINT"),
        }
    };
    if let Some(sig) = stopped_by {
        let mut ev = Event::new(
            Kind::SupervisorStopped,
            format!("supervisor stopped by {sig}; the nodes keep running (the next command starts a new supervisor)"),
        );
        ev.pid = Some(me);
        sup.record(ev);
    }
    let _ = std::fs::remove_file(paths.socket());
    let _ = std::fs::remove_file(paths.supervisor_record());
    Ok(())
}

/// Bind the control socket with owner-only permissions, replacing a stale socket file (never another kind
/// of file).
fn bind(paths: &ClusterPaths) -> Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    let sock = paths.socket();
    if sock.as_os_str().len() > 107 {
        return Err(Error::env(format!(
            "the control socket path {} is longer than the 107 bytes a Unix socket allows; use a shorter --home",
            sock.display()
        )));
    }
    if let Ok(meta) = std::fs::symlink_metadata(&sock) {
        if !meta.file_type().is_socket() {
            return Err(Error::failed(format!(
                "{} exists and is not a socket; remove it and retry",
                sock.display()
            )));
        }
        let _ = std::fs::remove_file(&sock);
    }
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(&sock);
    nix::sys::stat::umask(old);
    bound.map_err(|e| Error::io("cannot listen on", &sock, e))
}

fn list(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn nodes_word(ids: &[u32]) -> String {
    if ids.len() == 1 {
        format!("node {}", ids[0])
    } else {
        format!("nodes {}", list(ids))
    }
}

impl Sup {
    fn record(&self, ev: Event) -> Event {
        self.active();
        self.journal.lock().expect("journal").append(ev)
    }

    /// Something happened: probe at full rate for a while.
    fn active(&self) {
        *self.last_activity.lock().expect("activity") = Instant::now();
    }

    /// The probe interval now: full rate within `QUIET` of the last activity, else the idle one.
    fn current_interval(&self) -> Duration {
        if self.last_activity.lock().expect("activity").elapsed() < QUIET {
            self.interval
        } else {
            self.idle_interval
        }
    }

    fn save_state(&self) {
        let state = self.state.lock().expect("state").clone();
        if let Err(e) = self.paths.save_state(&state) {
            eprintln!("warning: {e}");
        }
    }

    fn loaded(&self) -> Arc<Loaded> {
        self.spec.lock().expect("spec").clone()
    }

    fn spec(&self) -> ClusterSpec {
        self.loaded().spec.clone()
    }

    /// Read cluster.toml again (a rolling upgrade changes the installation); keep the last good one.
    fn reload_spec(&self) -> ClusterSpec {
        if let Ok(s) = self.paths.load_spec() {
            *self.spec.lock().expect("spec") = Arc::new(Loaded::new(&self.paths, s));
        }
        self.spec()
    }

    async fn lock_nodes(&self, ids: &[u32]) -> Result<Vec<tokio::sync::MutexGuard<'_, ()>>> {
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut guards = Vec::new();
        for id in sorted {
            let lock = self
                .node_locks
                .get(&id)
                .ok_or_else(|| Error::usage(format!("the cluster has no node {id}")))?;
            guards.push(lock.lock().await);
        }
        Ok(guards)
    }

    fn action(&self, action: &str, ids: &[u32], signal: Option<&str>, cause: &str) {
        let what = match signal {
            Some(sig) => format!("{action} {} ({sig})", nodes_word(ids)),
            None => format!("{action} {}", nodes_word(ids)),
        };
        let mut ev = Event::new(Kind::Action, format!("{what}, asked by `{cause}`"));
        ev.action = Some(action.to_string());
        ev.nodes = ids.to_vec();
        ev.node = (ids.len() == 1).then(|| ids[0]);
        ev.signal = signal.map(String::from);
        ev.cause = Some(cause.to_string());
        self.record(ev);
    }

    async fn serve(self: Arc<Self>, stream: UnixStream) {
        let (read, mut write) = stream.into_split();
        let mut line = String::new();
        if BufReader::new(read).read_line(&mut line).await.is_err() {
            return;
        }
        let mut shutdown = false;
        let result = match serde_json::from_str::<Request>(&line) {
            Err(e) => Err(Error::usage(format!("not a request this supervisor understands: {e}"))),
            Ok(req) => {
                shutdown = matches!(req, Request::Shutdown { .. });
                self.handle(req).await
            }
        };
        let reply = match &result {
            Ok(data) => Reply {
                ok: true,
                data: data.clone(),
                error: None,
            },
            Err(e) => Reply {
                ok: false,
                data: Value::Null,
                error: Some(WireError::from(e)),
            },
        };
        let mut text = serde_json::to_vec(&reply).expect("replies serialise");
        text.push(b'\n');
        let _ = write.write_all(&text).await;
        let _ = write.shutdown().await;
        if shutdown && result.is_ok() {
            self.shutdown.notify_one();
        }
    }

    fn proxies_or_refuse(&self) -> Result<&proxy::Proxies> {
        self.proxies
            .as_ref()
            .ok_or_else(|| links::not_proxied(&self.spec().name))
    }

    async fn handle(self: &Arc<Self>, req: Request) -> Result<Value> {
        if !matches!(req, Request::Ping | Request::Status) {
            self.active();
        }
        match req {
            Request::Ping => Ok(json!({ "pid": std::process::id() })),
            Request::Status => {
                let view = self.view.lock().expect("view").clone();
                match view {
                    Some((status, at)) => Ok(json!({
                        "status": status,
                        "age_ms": at.elapsed().as_millis() as u64,
                        "interval_ms": self.interval.as_millis() as u64,
                        "idle_interval_ms": self.idle_interval.as_millis() as u64,
                        "pid": std::process::id(),
                    })),
                    None => Err(Error::failed("the supervisor has not looked at the ensemble yet")),
                }
            }
            Request::Start { ids, cause } => self.start(&ids, &cause).await,
            Request::Stop { ids, grace_ms, cause } => {
                let _g = self.lock_nodes(&ids).await?;
                let (stopped, killed) = self
                    .stop_locked(&ids, Duration::from_millis(grace_ms), &cause, StopReason::Stopped)
                    .await?;
                Ok(json!({ "stopped": stopped, "needed_sigkill": killed }))
            }
            Request::Signal { ids, signal, cause } => self.signal(&ids, signal, &cause).await,
            Request::Record { message, cause } => {
                let mut ev = Event::new(Kind::Note, message);
                ev.cause = Some(cause);
                Ok(json!({ "seq": self.record(ev).seq }))
            }
            Request::Links => {
                let p = self.proxies_or_refuse()?;
                Ok(json!({ "rules": p.table().rules, "links": p.live() }))
            }
            Request::SetLinks {
                heal_all,
                heal_pairs,
                rules,
                reset,
                action,
                message,
                cause,
            } => {
                let p = self.proxies_or_refuse()?;
                let mut table = p.table();
                if heal_all {
                    table.heal(None);
                }
                for pair in &heal_pairs {
                    table.heal(Some(*pair));
                }
                table.apply(&rules);
                links::save(&self.paths, &table)?;
                p.update(table.clone(), reset.clone());
                let mut ev = Event::new(Kind::Action, format!("{message}, asked by `{cause}`"));
                ev.action = Some(action);
                ev.cause = Some(cause);
                ev.detail = Some(if table.rules.is_empty() {
                    "every link healthy".to_string()
                } else {
                    format!("links now: {}", links::describe_rules(&table.rules))
                });
                let ev = self.record(ev);
                Ok(json!({ "seq": ev.seq, "mono_ms": ev.mono_ms, "rules": table.rules }))
            }
            Request::Shutdown { grace_ms, cause } => {
                let ids = self.spec().ids();
                let _g = self.lock_nodes(&ids).await?;
                let (stopped, killed) = self
                    .stop_locked(&ids, Duration::from_millis(grace_ms), &cause, StopReason::Stopped)
                    .await?;
                let mut ev = Event::new(
                    Kind::SupervisorStopped,
                    format!("supervisor stopped, asked by `{cause}`"),
                );
                ev.pid = Some(std::process::id() as i32);
                ev.cause = Some(cause);
                self.record(ev);
                Ok(json!({ "stopped": stopped, "needed_sigkill": killed }))
            }
        }
    }

    /// Start the nodes of `ids` that are not running: render, check ports, spawn, record, journal.
    async fn start(self: &Arc<Self>, ids: &[u32], cause: &str) -> Result<Value> {
        let _g = self.lock_nodes(ids).await?;
        let spec = self.reload_spec();
        launch::check_dist_present(&spec)?;
        let (mut to_start, mut running) = (Vec::new(), Vec::new());
        {
            let state = self.state.lock().expect("state");
            for id in ids {
                match process::identify(&state.node(*id), &self.paths.ident(&spec, *id)) {
                    Liveness::Gone => to_start.push(*id),
                    Liveness::Ours { .. } => running.push(*id),
                }
            }
        }
        if to_start.is_empty() {
            return Ok(json!({ "started": [], "running": running }));
        }
        launch::check_ports_free(&spec, &to_start).await?;
        self.action("start", &to_start, None, cause);
        let rendered = render::render(&spec, &self.paths, &cds::plan(&spec, &self.paths, &to_start))?;
        let mut started = Vec::new();
        for id in &to_start {
            let files = rendered.iter().find(|f| f.id == *id).expect("rendered every node");
            let logs = self.paths.logs_dir(*id);
            // zoo.cfg keeps the membership ZooKeeper committed when it rewrote the file (reconfigEnabled).
            let spawned = match crate::os::zoo_cfg::write_node(&self.paths, files)
                .and_then(|_| std::fs::create_dir_all(&logs).map_err(|e| Error::io("cannot create", &logs, e)))
            {
                Ok(()) => process::spawn(&files.argv, &self.paths.node_dir(*id), &self.paths.log_file(*id)).await,
                Err(e) => Err(e),
            };
            match spawned {
                Ok((node_state, child)) => {
                    let pid = node_state.process().map(|p| p.0).unwrap_or(0);
                    self.children.lock().expect("children").insert(*id);
                    self.state.lock().expect("state").set(*id, node_state);
                    self.save_state();
                    let mut ev = Event::new(Kind::NodeStarted, format!("node {id} started (pid {pid})"));
                    ev.node = Some(*id);
                    ev.pid = Some(pid);
                    ev.cause = Some(cause.to_string());
                    self.record(ev);
                    self.reap(*id, pid, child);
                    started.push(*id);
                }
                Err(e) => {
                    if let Err(e2) = self
                        .stop_locked(&started, Duration::from_secs(5), cause, StopReason::Stopped)
                        .await
                    {
                        eprintln!("warning: {e2}");
                    }
                    return Err(e);
                }
            }
        }
        Ok(json!({ "started": started, "running": running }))
    }

    /// Wait for a child's exit and record it.
    fn reap(self: &Arc<Self>, id: u32, pid: i32, mut child: tokio::process::Child) {
        let sup = Arc::downgrade(self);
        tokio::spawn(async move {
            let status = child.wait().await.ok();
            if let Some(sup) = sup.upgrade() {
                sup.on_exit(id, pid, status, "");
            }
        });
    }

    /// Stop (SIGTERM, grace, SIGKILL) the running nodes of `ids`; the caller holds their locks. The intent
    /// is recorded before the first signal, so the exit is journalled as zkdev's doing whatever happens.
    async fn stop_locked(
        &self,
        ids: &[u32],
        grace: Duration,
        cause: &str,
        reason: StopReason,
    ) -> Result<(Vec<u32>, Vec<u32>)> {
        let spec = self.spec();
        let mut targets = Vec::new();
        {
            let mut state = self.state.lock().expect("state");
            for id in ids {
                let s = state.node(*id);
                let ident = self.paths.ident(&spec, *id);
                if matches!(process::identify(&s, &ident), Liveness::Ours { .. }) {
                    self.intents.lock().expect("intents").insert(*id, cause.to_string());
                    state.set(*id, s.stopping(reason));
                    targets.push((*id, s, ident));
                }
            }
        }
        if targets.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        self.save_state();
        let stopped: Vec<u32> = targets.iter().map(|t| t.0).collect();
        self.action("stop", &stopped, Some("SIGTERM"), cause);
        let killed = process::stop_all(&targets, grace).await?;
        self.settle(&targets).await;
        let clean: Vec<u32> = stopped.iter().copied().filter(|id| !killed.contains(id)).collect();
        cds::adopt(&spec, &self.paths, &clean, &killed);
        Ok((stopped, killed))
    }

    /// After the processes of `targets` have exited: wait (briefly) until their exits are recorded; an
    /// adopted node (not our child) is recorded here, since nobody reaps it.
    async fn settle(&self, targets: &[(u32, NodeState, process::Ident)]) {
        let deadline = Instant::now() + Duration::from_secs(2);
        for (id, s, _) in targets {
            let Some((pid, _)) = s.process() else { continue };
            let child = self.children.lock().expect("children").contains(id);
            if !child {
                self.on_exit(*id, pid, None, "");
                continue;
            }
            while Instant::now() < deadline
                && self.state.lock().expect("state").node(*id).process().map(|p| p.0) == Some(pid)
            {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            // Not reaped in time (should not happen): record it anyway.
            self.on_exit(*id, pid, None, "");
        }
    }

    async fn signal(&self, ids: &[u32], sig: Sig, cause: &str) -> Result<Value> {
        let _g = self.lock_nodes(ids).await?;
        let spec = self.spec();
        let name = format!("SIG{:?}", sig).to_uppercase();
        let action = match sig {
            Sig::Kill => "kill",
            Sig::Term => "terminate",
            Sig::Stop => "pause",
            Sig::Cont => "resume",
        };
        let ends = matches!(sig, Sig::Kill | Sig::Term);
        let mut hit = Vec::new();
        let mut targets = Vec::new();
        let live: Vec<u32> = {
            let state = self.state.lock().expect("state");
            ids.iter()
                .copied()
                .filter(|id| {
                    matches!(
                        process::identify(&state.node(*id), &self.paths.ident(&spec, *id)),
                        Liveness::Ours { .. }
                    )
                })
                .collect()
        };
        if !live.is_empty() {
            self.action(action, &live, Some(&name), cause);
        }
        for id in live {
            let ident = self.paths.ident(&spec, id);
            let s = self.state.lock().expect("state").node(id);
            if ends {
                self.intents.lock().expect("intents").insert(id, cause.to_string());
                self.state
                    .lock()
                    .expect("state")
                    .set(id, s.stopping(StopReason::Killed));
                self.save_state();
            }
            if process::signal(&s, &ident, sig.signal())? {
                hit.push(id);
                if ends {
                    targets.push((id, s, ident));
                } else {
                    process::wait_paused(&s, &ident, sig == Sig::Stop).await;
                }
            } else if ends {
                self.intents.lock().expect("intents").remove(&id);
                self.state.lock().expect("state").set(id, s);
            }
        }
        if ends {
            let wait = if sig == Sig::Kill { 10 } else { 60 };
            for (id, s, _) in &targets {
                if !process::wait_gone(s, Duration::from_secs(wait)).await {
                    return Err(Error::failed(format!(
                        "node {id} did not exit {wait} s after {name}; `zkdev kill {id}` sends SIGKILL"
                    )));
                }
            }
            self.settle(&targets).await;
        }
        Ok(json!({ "hit": hit }))
    }

    /// A node's process ended: record how (stopped by zkdev, or crashed with its status) and journal it.
    /// Idempotent: only the first report for a pid counts.
    fn on_exit(&self, id: u32, pid: i32, status: Option<std::process::ExitStatus>, when: &str) {
        let cur = {
            let state = self.state.lock().expect("state");
            state.node(id)
        };
        if cur.process().map(|p| p.0) != Some(pid) {
            return;
        }
        let intent = self.intents.lock().expect("intents").remove(&id);
        let reason = match cur {
            NodeState::Stopping { reason, .. } => Some(reason),
            _ => None,
        };
        let by_zkdev = intent.is_some() || reason.is_some();
        let code = status.and_then(|s| s.code());
        let sig = status.and_then(|s| s.signal()).map(signal_name);
        let how = match (&sig, code) {
            (Some(s), _) => format!("killed by {s}"),
            (None, Some(c)) => format!("exit code {c}"),
            (None, None) => "exit status unknown (not this supervisor's child)".to_string(),
        };
        let when = if when.is_empty() {
            String::new()
        } else {
            format!(" {when}")
        };
        let (message, detail, crash) = if by_zkdev {
            let who = intent.as_deref().map(|c| format!(": `{c}`")).unwrap_or_default();
            (
                format!("node {id} (pid {pid}) exited{when}: {how}, as zkdev asked{who}"),
                None,
                String::new(),
            )
        } else {
            // Why, as far as the exit status and the log tell: a java that exited at once, out of heap,
            // refused JVM options... else the log's last error line.
            let java = self.spec().dist.java.display().to_string();
            let cause = crate::model::diagnose::node_died(
                &self.paths.log_file(id),
                &java,
                status.map(|_| how.replace("exit code", "exit status")),
            );
            let hint = cause.clone().or_else(|| observe::last_error(&self.paths, id));
            let sent = if sig.is_some() { " (not sent by zkdev)" } else { "" };
            let mut crash = format!("crashed{when}: {how}{sent}");
            match (&cause, &hint) {
                // It names the exit status itself.
                (Some(c), _) if c.contains(" exited at once with ") => crash = format!("crashed{when}: {c}"),
                (Some(c), _) => crash.push_str(&format!("; {c}")),
                (None, Some(h)) => crash.push_str(&format!("; its log says: {h}")),
                (None, None) => {}
            }
            (format!("node {id} (pid {pid}) {crash}"), hint, crash)
        };
        {
            let mut state = self.state.lock().expect("state");
            state.set(
                id,
                match reason {
                    Some(r) => NodeState::Stopped { reason: r },
                    None if by_zkdev => NodeState::Stopped {
                        reason: StopReason::Killed,
                    },
                    None => NodeState::Crashed {
                        how: crash,
                        at_ms: now_ms(),
                    },
                },
            );
        }
        self.save_state();
        self.children.lock().expect("children").remove(&id);
        let mut ev = Event::new(Kind::NodeExited, message);
        ev.node = Some(id);
        ev.pid = Some(pid);
        ev.exit_code = code;
        ev.signal = sig;
        ev.by_zkdev = Some(by_zkdev);
        ev.cause = intent;
        ev.detail = detail;
        let at = ev.at_ms;
        self.record(ev);
        let lost = self.tracker.lock().expect("tracker").node_gone(id, at);
        if let Some(lost) = lost {
            self.record(lost);
        }
    }

    /// Look at the ensemble every interval: keep the view, journal transitions, notice adopted nodes'
    /// exits, and leave when the cluster directory is gone (purged behind our back). Every node is asked by
    /// a loop of its own, so a node that is slow to answer (a JVM still starting, a paused or overloaded
    /// one) delays nobody else's observations; the view is put together every interval from each node's
    /// latest answer.
    async fn probe_loop(self: Arc<Self>) {
        let latest: Arc<Mutex<BTreeMap<u32, (NodeStatus, Instant)>>> = Arc::default();
        let fresh = Arc::new(tokio::sync::Notify::new());
        let mut rounds: u64 = 0;
        for id in self.spec().ids() {
            tokio::spawn(self.clone().probe_node(id, latest.clone(), fresh.clone()));
        }
        loop {
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
            let status = observe::assemble(spec, nodes);
            let events = tracker.observe(&status, now_ms());
            drop(tracker);
            for (id, pid) in adopted_exits {
                self.on_exit(id, pid, None, "");
            }
            let now_s = now_ms() / 1000;
            for mut e in events {
                // Starts and exits are journalled by whoever saw them first-hand (spawn, reaper).
                let exit_or_start = e.kind == Kind::Process
                    && [e.from.as_deref(), e.to.as_deref()]
                        .iter()
                        .any(|s| matches!(s, Some("stopped" | "crashed")));
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
                eprintln!("the cluster directory is gone; the supervisor stops");
                self.shutdown.notify_one();
                return;
            }
        }
    }

    /// Ask one node every interval (`mntr` every tenth time, its fields kept in between).
    async fn probe_node(
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

fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}
