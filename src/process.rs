//! The only place that starts and signals processes.
//!
//! Each node is `java` exec'd directly (no shell in between) in a process group of its own, with its output
//! appended to the node's log. Before any signal the pid is identified again from /proc: same start time
//! as recorded and our zoo.cfg path on its command line. A pid that fails that check is never signalled.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::state::NodeState;

/// What /proc says of a pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// R, S, D, T (stopped), t, Z (zombie), X ...
    pub state: char,
    pub pgrp: i32,
    pub start_ticks: u64,
}

pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

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

/// Is the process recorded in `state` still the JVM we started for the node whose zoo.cfg is `marker`?
pub fn identify(state: &NodeState, marker: &Path) -> Liveness {
    let NodeState::Started { pid, start_ticks, .. } = *state else {
        return Liveness::Gone;
    };
    let Some(stat) = proc_stat(pid) else {
        return Liveness::Gone;
    };
    if stat.start_ticks != start_ticks || matches!(stat.state, 'Z' | 'X' | 'x') {
        return Liveness::Gone;
    }
    let marker = marker.to_string_lossy();
    let ours = cmdline(pid).is_some_and(|argv| argv.iter().any(|a| *a == marker));
    if !ours {
        return Liveness::Gone;
    }
    Liveness::Ours {
        pid,
        paused: matches!(stat.state, 'T' | 't'),
    }
}

/// Has the recorded process really exited (no /proc entry, a zombie, or the pid reused)? Stricter than
/// `identify(..) == Gone`: a JVM in the middle of exiting has already lost its command line but still
/// holds its ports for a moment.
pub fn exited(state: &NodeState) -> bool {
    let NodeState::Started { pid, start_ticks, .. } = *state else {
        return true;
    };
    match proc_stat(pid) {
        None => true,
        Some(st) => st.start_ticks != start_ticks || matches!(st.state, 'Z' | 'X' | 'x'),
    }
}

/// Find JVMs that run one of `markers` (a node's zoo.cfg path, as an exact argument) but that zkdev has no
/// record of: a zkdev killed between spawning a node and writing its pid leaves one. Scans /proc once.
pub fn find_by_marker(markers: &[(u32, std::path::PathBuf)]) -> Vec<(u32, NodeState)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Some(argv) = cmdline(pid) else { continue };
        if !argv
            .iter()
            .any(|a| a == "org.apache.zookeeper.server.quorum.QuorumPeerMain")
        {
            continue;
        }
        for (id, marker) in markers {
            let m = marker.to_string_lossy();
            if argv.iter().any(|a| *a == m) {
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

/// Start one node: `argv[0]` exec'd directly in its own process group, output appended to `log_file`.
pub fn spawn(argv: &[String], cwd: &Path, log_file: &Path) -> Result<NodeState> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)
        .map_err(|e| Error::io("cannot open log", log_file, e))?;
    let log2 = log.try_clone().map_err(|e| Error::io("cannot open log", log_file, e))?;
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(|e| Error::env(format!("cannot start `{}`: {e}", argv[0])))?;
    let pid = child.id() as i32;
    wait_for_exec(pid);
    // The child is reaped by whoever outlives it; dropping the handle neither waits nor kills.
    drop(child);
    let start_ticks = proc_stat(pid)
        .map(|s| s.start_ticks)
        .ok_or_else(|| Error::failed(format!("`{}` exited at once; see {}", argv[0], log_file.display())))?;
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(NodeState::Started {
        pid,
        start_ticks,
        started_at,
    })
}

/// How a process this zkdev run spawned ended, once it has: `exit status N` or `signal SIGX`. Collects its
/// exit status, which only the parent can; None while it runs, or for a process this run did not start.
pub fn reap(state: &NodeState) -> Option<String> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let NodeState::Started { pid, .. } = *state else {
        return None;
    };
    match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Some(format!("exit status {code}")),
        Ok(WaitStatus::Signaled(_, sig, _)) => Some(format!("signal {sig}")),
        _ => None,
    }
}

/// `spawn` returns once the kernel has committed to the exec, but the new program's arguments appear in
/// /proc/PID/cmdline a moment later; identify would see an empty command line until then.
fn wait_for_exec(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && cmdline(pid).is_some_and(|a| a.is_empty()) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Send `sig` to a node's JVM (its whole process group when it leads one) after identifying it again.
/// Returns false when the process is no longer ours (nothing was signalled).
pub fn signal(state: &NodeState, marker: &Path, sig: Signal) -> Result<bool> {
    let Liveness::Ours { pid, .. } = identify(state, marker) else {
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
/// wait for it to go. `nodes` are (state, marker). Returns the ones that needed SIGKILL.
pub fn stop_all(nodes: &[(u32, NodeState, &Path)], grace: Duration) -> Result<Vec<u32>> {
    let mut live: Vec<&(u32, NodeState, &Path)> = Vec::new();
    for n in nodes {
        // A paused JVM cannot act on SIGTERM: resume it first.
        if signal(&n.1, n.2, Signal::SIGTERM)? {
            let _ = signal(&n.1, n.2, Signal::SIGCONT);
            live.push(n);
        }
    }
    let gone = |n: &&(u32, NodeState, &Path)| exited(&n.1);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !live.iter().all(gone) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut killed = Vec::new();
    for n in live.iter().filter(|n| !gone(n)) {
        if signal(&n.1, n.2, Signal::SIGKILL)? {
            killed.push(n.0);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !live.iter().all(gone) {
        std::thread::sleep(Duration::from_millis(10));
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
pub fn wait_gone(state: &NodeState, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if exited(state) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Wait (up to 1 s) until /proc shows the process paused (`true`) or running again (`false`).
pub fn wait_paused(state: &NodeState, marker: &Path, paused: bool) {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        match identify(state, marker) {
            Liveness::Ours { paused: p, .. } if p == paused => return,
            Liveness::Gone => return,
            _ => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_process_is_never_ours() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        wait_for_exec(pid);
        let stat = proc_stat(pid).unwrap();
        let state = NodeState::Started {
            pid,
            start_ticks: stat.start_ticks,
            started_at: 0,
        };
        // Same pid and start time, but no zoo.cfg of ours on its command line.
        assert_eq!(identify(&state, Path::new("/x/node1/conf/zoo.cfg")), Liveness::Gone);
        assert!(!signal(&state, Path::new("/x/node1/conf/zoo.cfg"), Signal::SIGKILL).unwrap());
        assert!(child.try_wait().unwrap().is_none(), "sleep was signalled");
        // A wrong start time is not ours either, even with the right marker.
        let wrong = NodeState::Started {
            pid,
            start_ticks: stat.start_ticks + 1,
            started_at: 0,
        };
        assert_eq!(identify(&wrong, Path::new("30")), Liveness::Gone);
        assert!(matches!(
            identify(&state, Path::new("30")),
            Liveness::Ours { paused: false, .. }
        ));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
