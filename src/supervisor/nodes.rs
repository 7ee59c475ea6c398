//! Starting, stopping and signalling nodes, reaping them, and recording how each one ended.

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cluster::Sup;
use super::control::Sig;
use super::replies::{SignalReply, StartReply};
use crate::dist::cds;
use crate::error::{Error, Result};
use crate::model::render;
use crate::model::timeline::{Action, Event, Kind};
use crate::os::clock::now_ms;
use crate::os::launch;
use crate::os::process::{self, Liveness};
use crate::os::state::{NodeState, StopReason};
use crate::zk::observe::{self};

impl Sup {
    /// Start the nodes of `ids` that are not running: render, check ports, spawn, record, journal.
    pub(super) async fn start(self: &Arc<Self>, ids: &[u32], cause: &str) -> Result<StartReply> {
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
            return Ok(StartReply {
                started: Vec::new(),
                running,
            });
        }
        launch::check_ports_free(&spec, &to_start).await?;
        self.action(Action::Start, &to_start, None, cause);
        let rendered = render::render(&spec, &self.paths, &cds::plan(&spec, &self.paths, &to_start))?;
        let mut started = Vec::new();
        for id in &to_start {
            let files = rendered.iter().find(|f| f.id == *id).expect("rendered every node");
            let logs = self.paths.logs_dir(*id);
            // zoo.cfg keeps the membership ZooKeeper committed when it rewrote the file (reconfigEnabled).
            let spawned = match crate::os::zoo_cfg::write_node(&self.paths, files)
                .and_then(|_| std::fs::create_dir_all(&logs).map_err(|e| Error::io("cannot create", &logs, e)))
                .and_then(|_| self.prepare_disk(*id))
                .and_then(|_| self.node_env(*id))
            {
                Ok(env) => {
                    process::spawn(&files.argv, &env, &self.paths.node_dir(*id), &self.paths.log_file(*id)).await
                }
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
                        super::start::log(format_args!("warning: {e2}"));
                    }
                    return Err(e);
                }
            }
        }
        Ok(StartReply { started, running })
    }

    /// Wait for a child's exit and record it.
    pub(super) fn reap(self: &Arc<Self>, id: u32, pid: i32, mut child: tokio::process::Child) {
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
    pub(super) async fn stop_locked(
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
        self.action(Action::Stop, &stopped, Some("SIGTERM"), cause);
        let killed = process::stop_all(&targets, grace).await?;
        self.settle(&targets).await;
        let clean: Vec<u32> = stopped.iter().copied().filter(|id| !killed.contains(id)).collect();
        cds::adopt(&spec, &self.paths, &clean, &killed);
        Ok((stopped, killed))
    }

    /// After the processes of `targets` have exited: wait (briefly) until their exits are recorded; an
    /// adopted node (not our child) is recorded here, since nobody reaps it.
    pub(super) async fn settle(&self, targets: &[(u32, NodeState, process::Ident)]) {
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

    pub(super) async fn signal(&self, ids: &[u32], sig: Sig, cause: &str) -> Result<SignalReply> {
        let _g = self.lock_nodes(ids).await?;
        self.signal_locked(ids, sig, cause).await
    }

    /// `signal`, the caller holding the nodes' locks.
    pub(super) async fn signal_locked(&self, ids: &[u32], sig: Sig, cause: &str) -> Result<SignalReply> {
        let spec = self.spec();
        let name = format!("SIG{:?}", sig).to_uppercase();
        let action = match sig {
            Sig::Kill => Action::Kill,
            Sig::Term => Action::Terminate,
            Sig::Stop => Action::Pause,
            Sig::Cont => Action::Resume,
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
        Ok(SignalReply { hit })
    }

    /// A node's process ended: record how (stopped by zkdev, or crashed with its status) and journal it.
    /// Idempotent: only the first report for a pid counts.
    pub(super) fn on_exit(&self, id: u32, pid: i32, status: Option<std::process::ExitStatus>, when: &str) {
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
            let log_text = std::fs::read_to_string(self.paths.log_file(id)).unwrap_or_default();
            let cause = crate::model::diagnose::node_died(
                &log_text,
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
        let at = crate::model::timeline::Stamp {
            at_ms: ev.at_ms,
            mono_ms: ev.mono_ms,
        };
        self.record(ev);
        let lost = self.tracker.lock().expect("tracker").node_gone(id, at);
        if let Some(lost) = lost {
            self.record(lost);
        }
    }
}

pub(super) fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}
