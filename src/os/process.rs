//! The only place that starts and signals processes.
//!
//! Each node is `java` exec'd directly (no shell in between) in a process group of its own, with its output
//! appended to the node's log. Before any signal the pid is identified again from /proc: same start time
//! as recorded and our zoo.cfg path on its command line. A pid that fails that check is never signalled.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::os::state::NodeState;

/// What /proc says of a pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// R, S, D, T (stopped), t, Z (zombie), X ...
    pub state: char,
    pub pgrp: i32,
    pub start_ticks: u64,
}

pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    // procfs parses /proc/PID/stat (the command name, field 2, may hold spaces and parentheses).
    let st = procfs::process::Process::new(pid).ok()?.stat().ok()?;
    Some(ProcStat {
        state: st.state,
        pgrp: st.pgrp,
        start_ticks: st.starttime,
    })
}

/// How long ago a process started, from its start time in clock ticks since boot and /proc/uptime.
pub fn age(start_ticks: u64) -> Option<Duration> {
    use procfs::Current as _;
    let uptime = procfs::Uptime::current().ok()?.uptime;
    let hz = procfs::ticks_per_second() as f64;
    Some(Duration::from_secs_f64((uptime - start_ticks as f64 / hz).max(0.0)))
}

/// The command line of `pid`, each argument read leniently (procfs's own `cmdline` refuses an argument
/// that is not UTF-8, which would make a process unidentifiable rather than merely oddly named).
pub fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
    )
}

/// Whether a recorded process is still ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Our JVM, alive. `paused` when SIGSTOPped (state T).
    Ours { pid: i32, paused: bool },
    /// The pid is gone, a zombie, or now belongs to some other process: never signal it.
    Gone,
}

/// The main class every node runs.
pub const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// What makes a process provably one node's JVM: its executable is the cluster's java, its main class (the
/// first argument after the JVM's options, not merely any argument) is QuorumPeerMain, and it carries the
/// node's token `-Dzkdev.node=<cluster uid>/<id>` exactly. A cluster made before tokens existed (empty uid)
/// is matched by its zoo.cfg path instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub token: Option<String>,
    pub zoo_cfg: PathBuf,
    /// The cluster's java, symbolic links resolved; None when the spec is unreadable (then any `java`).
    pub java: Option<PathBuf>,
}

impl Ident {
    pub fn new(uid: &str, id: u32, zoo_cfg: PathBuf, java: Option<&Path>) -> Ident {
        Ident {
            token: (!uid.is_empty()).then(|| token_arg(uid, id)),
            zoo_cfg,
            java: java.map(canonical_java),
        }
    }

    /// What this identity is proven for, as a cache key.
    fn key(&self) -> String {
        self.token
            .clone()
            .unwrap_or_else(|| self.zoo_cfg.to_string_lossy().into_owned())
    }

    /// Does this command line and executable belong to the node?
    pub fn matches(&self, argv: &[String], exe: Option<&Path>) -> bool {
        if main_class(argv) != Some(MAIN_CLASS) {
            return false;
        }
        let marked = match &self.token {
            Some(t) => argv.iter().any(|a| a == t),
            None => {
                let m = self.zoo_cfg.to_string_lossy();
                argv.iter().any(|a| *a == m)
            }
        };
        let Some(exe) = exe else { return false };
        let exe_ok = match &self.java {
            Some(java) => exe == java,
            None => exe.file_name().is_some_and(|n| n == "java"),
        };
        marked && exe_ok
    }

    /// Is `pid` (alive) this node's JVM?
    pub fn is(&self, pid: i32) -> bool {
        let (Some(argv), exe) = (cmdline(pid), exe(pid)) else {
            return false;
        };
        self.matches(&argv, exe.as_deref())
    }
}

/// The java binary with its links resolved, remembered per path (the probe loops ask every 100 ms).
fn canonical_java(java: &Path) -> PathBuf {
    static SEEN: Mutex<BTreeMap<PathBuf, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut seen = SEEN.lock().expect("java paths");
    seen.entry(java.to_path_buf())
        .or_insert_with(|| java.canonicalize().unwrap_or_else(|_| java.to_path_buf()))
        .clone()
}

/// (pid, start time) pairs already proven to be a node's JVM, with what they were proven for. A process
/// keeps its pid and start time for life and a JVM does not exec another program, so `identify` need not
/// read the command line and executable again every probe. `signal` never trusts this: it proves afresh.
static PROVEN: Mutex<BTreeMap<(i32, u64), String>> = Mutex::new(BTreeMap::new());

pub use crate::model::render::token_arg;

/// The class a `java` command line runs: the first argument that is neither an option nor an option's value.
pub fn main_class(argv: &[String]) -> Option<&str> {
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-cp" | "-classpath" | "--class-path" | "-p" | "--module-path" | "--add-modules" => {
                it.next();
            }
            s if s.starts_with('-') => {}
            s => return Some(s),
        }
    }
    None
}

/// The executable of `pid` (/proc/PID/exe), without the " (deleted)" the kernel adds to a replaced file.
pub fn exe(pid: i32) -> Option<PathBuf> {
    let p = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let s = p.to_string_lossy();
    Some(match s.strip_suffix(" (deleted)") {
        Some(base) => PathBuf::from(base),
        None => p,
    })
}

/// Is the process recorded in `state` still the JVM we started for the node `ident` describes? For
/// looking; a pid proven once is not re-read (see `PROVEN`).
pub fn identify(state: &NodeState, ident: &Ident) -> Liveness {
    identify_with(state, ident, true)
}

/// The same, proving the identity afresh from /proc: before any signal.
pub fn identify_strictly(state: &NodeState, ident: &Ident) -> Liveness {
    identify_with(state, ident, false)
}

fn identify_with(state: &NodeState, ident: &Ident, cached: bool) -> Liveness {
    let Some((pid, start_ticks)) = state.process() else {
        return Liveness::Gone;
    };
    let Some(stat) = proc_stat(pid) else {
        return Liveness::Gone;
    };
    if stat.start_ticks != start_ticks || matches!(stat.state, 'Z' | 'X' | 'x') {
        return Liveness::Gone;
    }
    let key = ident.key();
    let proven = cached
        && PROVEN
            .lock()
            .expect("proven pids")
            .get(&(pid, start_ticks))
            .is_some_and(|k| *k == key);
    if !proven {
        if !ident.is(pid) {
            return Liveness::Gone;
        }
        let mut p = PROVEN.lock().expect("proven pids");
        if p.len() > 4096 {
            p.clear();
        }
        p.insert((pid, start_ticks), key);
    }
    Liveness::Ours {
        pid,
        paused: matches!(stat.state, 'T' | 't'),
    }
}

/// Has the recorded process really exited (no /proc entry, a zombie, or the pid reused)? Stricter than
/// `identify(..) == Gone`: a JVM in the middle of exiting has already lost its command line but still
/// holds its ports for a moment.
///
/// A zombie counts only once no thread of it is left: a multi-threaded JVM's main thread can be a zombie
/// while its other threads are still exiting and still hold its sockets (the next start would then find
/// its ports taken by a listener no process owns).
pub fn exited(state: &NodeState) -> bool {
    let Some((pid, start_ticks)) = state.process() else {
        return true;
    };
    match proc_stat(pid) {
        None => true,
        Some(st) if st.start_ticks != start_ticks => true,
        Some(st) if matches!(st.state, 'Z' | 'X' | 'x') => live_threads(pid) == 0,
        Some(_) => false,
    }
}

/// Threads of `pid` that are not zombies themselves (from /proc/PID/task).
fn live_threads(pid: i32) -> usize {
    let Ok(tasks) = procfs::process::Process::new(pid).and_then(|p| p.tasks()) else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| t.stat().is_ok_and(|st| !matches!(st.state, 'Z' | 'X' | 'x')))
        .count()
}

/// Find the JVMs of `idents` that run but that zkdev has no record of (a zkdev killed between spawning a
/// node and writing its pid, or a damaged state file). Scans /proc once; only provable matches count.
pub fn find_unrecorded(idents: &[(u32, Ident)]) -> Vec<(u32, NodeState)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Some(argv) = cmdline(pid) else { continue };
        if main_class(&argv) != Some(MAIN_CLASS) {
            continue;
        }
        let exe = exe(pid);
        for (id, ident) in idents {
            if ident.matches(&argv, exe.as_deref()) {
                if let Some(st) = proc_stat(pid).filter(|st| !matches!(st.state, 'Z' | 'X' | 'x')) {
                    found.push((
                        *id,
                        NodeState::Started {
                            pid,
                            start_ticks: st.start_ticks,
                            started_at: 0,
                        },
                    ));
                }
            }
        }
    }
    found
}

/// Processes (other than this one) that use anything under `dir`: their command line names it or the
/// cluster's `uid`, their working directory is under it, or they hold a file under it open. Before a purge.
pub fn users_of(dir: &Path, uid: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let dir_s = dir.to_string_lossy().into_owned();
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me || proc_stat(pid).is_none_or(|s| matches!(s.state, 'Z' | 'X' | 'x')) {
            continue;
        }
        // `dir` itself or a path under it (node1 is not node10).
        let names_dir = |a: &str| a.ends_with(&dir_s) || a.contains(&format!("{dir_s}/"));
        let by_argv = cmdline(pid).is_some_and(|argv| {
            argv.iter()
                .any(|a| names_dir(a) || (!uid.is_empty() && a.contains(uid)))
        });
        let under = |p: PathBuf| p.starts_with(dir);
        let by_cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(under);
        let by_fd = || {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|fds| fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(under)))
                .unwrap_or(false)
        };
        if by_argv || by_cwd || by_fd() {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "?".into());
            out.push((pid, name));
        }
    }
    out
}

/// Start one node: `argv[0]` exec'd directly in a session (and process group) of its own, output appended
/// to `log_file`. Its own session keeps it out of the way of the supervisor's: when the supervisor dies the
/// node's group is not orphaned in the supervisor's session, so a paused node is not sent SIGHUP.
/// `env` is added to the inherited environment (the disk-fault library's preload).
/// Returns the state to record and the child handle, through which the caller reaps it.
pub async fn spawn(
    argv: &[String],
    env: &[(String, String)],
    cwd: &Path,
    log_file: &Path,
) -> Result<(NodeState, tokio::process::Child)> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)
        .map_err(|e| Error::io("cannot open log", log_file, e))?;
    let log2 = log.try_clone().map_err(|e| Error::io("cannot open log", log_file, e))?;
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .kill_on_drop(false);
    // SAFETY: setsid is async-signal-safe and touches nothing of the parent's.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    let child = cmd
        .spawn()
        .map_err(|e| Error::env(format!("cannot start `{}`: {e}", argv[0])))?;
    let pid = child
        .id()
        .map(|p| p as i32)
        .ok_or_else(|| Error::failed(format!("`{}` exited at once; see {}", argv[0], log_file.display())))?;
    wait_for_exec(pid).await;
    let start_ticks = proc_stat(pid)
        .map(|s| s.start_ticks)
        .ok_or_else(|| Error::failed(format!("`{}` exited at once; see {}", argv[0], log_file.display())))?;
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok((
        NodeState::Started {
            pid,
            start_ticks,
            started_at,
        },
        child,
    ))
}

/// `spawn` returns once the kernel has committed to the exec, but the new program's arguments appear in
/// /proc/PID/cmdline a moment later; identify would see an empty command line until then.
async fn wait_for_exec(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && cmdline(pid).is_some_and(|a| a.is_empty() || a[0].ends_with("zkdev")) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Send `sig` to a node's JVM (its whole process group when it leads one) after identifying it again.
/// Returns false when the process is no longer ours (nothing was signalled).
pub fn signal(state: &NodeState, ident: &Ident, sig: Signal) -> Result<bool> {
    let Liveness::Ours { pid, .. } = identify_strictly(state, ident) else {
        return Ok(false);
    };
    let leads_group = proc_stat(pid).is_some_and(|s| s.pgrp == pid);
    let res = if leads_group {
        killpg(Pid::from_raw(pid), sig)
    } else {
        kill(Pid::from_raw(pid), sig)
    };
    match res {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(e) => Err(Error::failed(format!("cannot send {sig} to pid {pid}: {e}"))),
    }
}

/// Stop processes gracefully: SIGCONT + SIGTERM to each, wait up to `grace`, then SIGKILL what is left and
/// wait for it to go. Returns the ids that needed SIGKILL. The one place that stops node processes.
pub async fn stop_all(nodes: &[(u32, NodeState, Ident)], grace: Duration) -> Result<Vec<u32>> {
    let mut live: Vec<&(u32, NodeState, Ident)> = Vec::new();
    for n in nodes {
        if signal(&n.1, &n.2, Signal::SIGTERM)? {
            // A paused JVM cannot act on SIGTERM: resume it too.
            let _ = signal(&n.1, &n.2, Signal::SIGCONT);
            live.push(n);
        }
    }
    let gone = |n: &&(u32, NodeState, Ident)| exited(&n.1);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !live.iter().all(gone) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut killed = Vec::new();
    for n in live.iter().filter(|n| !gone(n)) {
        if signal(&n.1, &n.2, Signal::SIGKILL)? {
            killed.push(n.0);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !live.iter().all(gone) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if let Some(n) = live.iter().find(|n| !gone(n)) {
        return Err(Error::failed(format!(
            "node {} did not exit 10 s after SIGKILL; check it with `ps -p` and the kernel log",
            n.0
        )));
    }
    Ok(killed)
}

/// Wait until the process has exited (or is a zombie), up to `timeout`.
pub async fn wait_gone(state: &NodeState, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if exited(state) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Wait (up to 1 s) until /proc shows the process paused (`true`) or running again (`false`).
pub async fn wait_paused(state: &NodeState, ident: &Ident, paused: bool) {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        match identify(state, ident) {
            Liveness::Ours { paused: p, .. } if p == paused => return,
            Liveness::Gone => return,
            _ => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn only_the_jvm_zkdev_would_start_matches() {
        let ident = Ident {
            token: Some(token_arg("c0ffee", 1)),
            zoo_cfg: PathBuf::from("/h/clusters/default/node1/conf/zoo.cfg"),
            java: Some(PathBuf::from("/usr/lib/jvm/bin/java")),
        };
        let java = Some(Path::new("/usr/lib/jvm/bin/java"));
        let real = argv(
            "/usr/bin/java -Dzkdev.node=c0ffee/1 -Xmx32m -cp /a.jar:/b.jar \
             org.apache.zookeeper.server.quorum.QuorumPeerMain /h/clusters/default/node1/conf/zoo.cfg",
        );
        assert!(ident.matches(&real, java));
        // The impostor: the main class and the zoo.cfg path appear, but as a script's arguments.
        let python = argv(
            "python3 -c import_time org.apache.zookeeper.server.quorum.QuorumPeerMain \
             /h/clusters/default/node1/conf/zoo.cfg -Dzkdev.node=c0ffee/1",
        );
        assert!(!ident.matches(&python, Some(Path::new("/usr/bin/python3.11"))));
        assert!(!ident.matches(&python, java), "main class is `import_time`");
        // Right command line, wrong executable; another node's token; another cluster's token.
        assert!(!ident.matches(&real, Some(Path::new("/tmp/java"))));
        assert!(!ident.matches(&real, None));
        let other = real.join(" ").replace("c0ffee/1", "c0ffee/2");
        assert!(!ident.matches(&argv(&other), java));
        let prefix = real.join(" ").replace("c0ffee/1", "c0ffee/10");
        assert!(!ident.matches(&argv(&prefix), java));
        assert_eq!(main_class(&real), Some(MAIN_CLASS));
    }

    #[tokio::test]
    async fn a_foreign_process_is_never_ours() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        wait_for_exec(pid).await;
        let stat = proc_stat(pid).unwrap();
        let state = NodeState::Started {
            pid,
            start_ticks: stat.start_ticks,
            started_at: 0,
        };
        let ident = Ident::new("u", 1, PathBuf::from("/x/node1/conf/zoo.cfg"), None);
        assert_eq!(identify(&state, &ident), Liveness::Gone);
        assert!(!signal(&state, &ident, Signal::SIGKILL).unwrap());
        assert!(child.try_wait().unwrap().is_none(), "sleep was signalled");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_zombie_main_thread_with_live_threads_has_not_exited() {
        // The main thread leaves (pthread_exit) while another sleeps on: the process shows as a zombie but
        // still runs, as a JVM's can while it exits.
        let mut child = std::process::Command::new("python3")
            .args([
                "-c",
                "import threading,time,ctypes; threading.Thread(target=time.sleep,args=(2,)).start(); \
                 ctypes.CDLL(None).pthread_exit(None)",
            ])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let state = |s: u64| NodeState::Started {
            pid,
            start_ticks: s,
            started_at: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let ticks = loop {
            if let Some(st) = proc_stat(pid).filter(|st| st.state == 'Z') {
                break st.start_ticks;
            }
            assert!(Instant::now() < deadline, "the main thread never became a zombie");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(!exited(&state(ticks)), "a thread still runs");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !exited(&state(ticks)) {
            assert!(Instant::now() < deadline, "never exited");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait().unwrap();
    }
}
