//! Starting the supervisor: detach, take the cluster's supervisor lock, adopt what runs, bind the control
//! socket, and serve until told to stop.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::net::UnixListener;

use super::cluster::{Loaded, Sup};
use super::journal::{self, Journal};
use super::{links, proxy};
use crate::error::{Error, Result};
use crate::model::timeline::{Action, Event, Kind};
use crate::os::clock::now_ms;
use crate::os::process::{self, Liveness};
use crate::os::state::{ClusterPaths, Home, State, StateRead};

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

/// A line in the supervisor's own log: its stderr is `supervisor.log` (`control::Supervisor::ensure` opens it
/// so). The one place the supervisor writes there; the journal is for events, this for its own troubles.
pub(crate) fn log(line: impl std::fmt::Display) {
    eprintln!("{line}");
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

/// `zkdev supervise`: run until `down` (or SIGTERM). Exits quietly when another supervisor already holds
/// this cluster.
/// Every proxied connection holds two descriptors and every link a listener: with `zkdev add` a `--net`
/// ensemble can outgrow the usual soft limit of 1024, so the supervisor takes what the hard limit allows.
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

pub async fn run(home: Home, cluster: String) -> Result<()> {
    raise_open_files_limit();
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
            log(format_args!(
                "another supervisor already runs cluster `{cluster}`; leaving it in charge"
            ));
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
        // A lock for every id a node can have: `zkdev add` brings nodes the spec did not have at the start.
        node_locks: (1..=255).map(|id| (id, tokio::sync::Mutex::new(()))).collect(),
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
            Liveness::Ours { pid, paused } => adopted.push((id, pid, paused)),
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
                "supervisor started (pid {me}); {how_last_ended}; adopted {}",
                crate::model::words::nodes(&adopted.iter().map(|(id, _, _)| *id).collect::<Vec<_>>())
            )
        },
    );
    ev.pid = Some(me);
    ev.nodes = adopted.iter().map(|(id, _, _)| *id).collect();
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
                "link proxies listening ({}: client proxies from port {}, each peer link at its own \
                 address 127.1.<from>.<to>); {restored}",
                crate::model::words::count(p.count(), "proxy|proxies"),
                spec.net.map(|n| n.port_base).unwrap_or(0)
            ),
        );
        ev.action = Some(Action::Links);
        sup.record(ev);
        for why in p.unbound() {
            let mut ev = Event::new(Kind::Note, format!("link proxy {why}"));
            ev.action = Some(Action::Links);
            sup.record(ev);
        }
    }
    for n in notes {
        sup.record(Event::new(Kind::Note, n));
    }
    for (id, pid, paused) in &adopted {
        let how = if *paused {
            "paused (SIGSTOP; `zkdev resume` continues it)"
        } else {
            "running"
        };
        let mut ev = Event::new(
            Kind::NodeAdopted,
            format!("node {id} (pid {pid}) adopted: {how}, started before this supervisor; its exit will be seen by polling"),
        );
        ev.node = Some(*id);
        ev.pid = Some(*pid);
        sup.record(ev);
    }

    tokio::spawn(sup.clone().probe_loop());
    tokio::spawn(sup.clone().lease_loop());
    super::dashboard::reopen(&sup).await;
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
    super::dashboard::forget(&paths);
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
