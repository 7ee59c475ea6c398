//! `zkdev kill-leader`: find the leader by asking the servers, signal it, and time the re-election.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::Serialize;

use super::{seconds, Ctx};
use crate::cli::{KillLeaderArgs, SignalArg};
use crate::error::{Error, Result};
use crate::observe::{self, ClusterStatus, ProcessState};
use crate::output;
use crate::process;
use crate::state::{NodeState, StopReason};

#[derive(Debug, Serialize)]
pub struct KillReport {
    pub old_leader: u32,
    pub old_pid: i32,
    pub old_epoch: u32,
    pub signal: &'static str,
    pub new_leader: Option<u32>,
    pub new_epoch: Option<u32>,
    /// Signal sent -> first surviving node seen not serving (it noticed the leader was gone).
    pub noticed_ms: Option<u64>,
    /// Signal sent -> a new leader serving.
    pub new_leader_ms: Option<u64>,
    /// Signal sent -> every surviving node serving.
    pub all_serving_ms: Option<u64>,
}

pub async fn run(ctx: &Ctx, args: KillLeaderArgs) -> Result<()> {
    let timeout = seconds(args.timeout, "--timeout")?;
    let (paths, spec) = ctx.existing()?;
    let _lock = paths.lock(Duration::from_secs(60))?;
    let mut state = paths.load_state()?;
    let before = observe::gather(&spec, &paths, &state).await;
    let leaders = before.leaders();
    let [leader] = leaders.as_slice() else {
        return Err(Error::failed(format!(
            "cannot kill the leader: {} ({}); see `zkdev status`",
            if leaders.is_empty() {
                "no node leads right now".to_string()
            } else {
                "several nodes claim to lead".to_string()
            },
            output::summary_line(&before)
        )));
    };
    let (old, old_pid, old_epoch) = (
        leader.id,
        leader.pid.expect("a serving node has a pid"),
        leader.epoch.unwrap_or(0),
    );

    let survivors = before.quorum.voters_up - 1;
    let quorum_left = survivors >= before.quorum.needed;
    if !quorum_left && !args.force {
        return Err(Error::failed(format!(
            "refusing to kill leader {old}: {survivors} of {} voters would remain up; a quorum needs {}, so no new \
             leader could be elected. Start voters again with `zkdev up`, or pass --force to do it anyway",
            before.quorum.voters, before.quorum.needed
        )));
    }

    let (sig, sig_name) = match args.signal {
        SignalArg::Kill => (Signal::SIGKILL, "SIGKILL"),
        SignalArg::Term => (Signal::SIGTERM, "SIGTERM"),
    };
    let marker = paths.zoo_cfg(old);
    let node_state = state.node(old);
    let t0 = Instant::now();
    if !process::signal(&node_state, &marker, sig)? {
        return Err(Error::failed(format!(
            "leader {old} (pid {old_pid}) is no longer the JVM zkdev started; nothing was signalled. See `zkdev status`"
        )));
    }
    state.set(
        old,
        NodeState::Stopped {
            reason: StopReason::Killed,
        },
    );
    paths.save_state(&state)?;

    let mut report = KillReport {
        old_leader: old,
        old_pid,
        old_epoch,
        signal: sig_name,
        new_leader: None,
        new_epoch: None,
        noticed_ms: None,
        new_leader_ms: None,
        all_serving_ms: None,
    };

    if !quorum_left {
        process::wait_gone(&node_state, &marker, Duration::from_secs(10));
        print_report(ctx, &report, &before);
        eprintln!(
            "warning: {survivors} of {} voters are up and a quorum needs {}: no leader can be elected until voters \
             return (`zkdev up`)",
            before.quorum.voters, before.quorum.needed
        );
        return Ok(());
    }

    let ms = |d: Duration| d.as_millis() as u64;
    let result = observe::wait_until(
        &spec,
        &paths,
        timeout,
        |s| {
            let elapsed = t0.elapsed();
            let survivors_serving = s.nodes.iter().filter(|n| n.id != old).all(|n| n.serving());
            if report.noticed_ms.is_none() && s.nodes.iter().any(|n| n.id != old && !n.serving()) {
                report.noticed_ms = Some(ms(elapsed));
            }
            let new = s.leader.filter(|l| *l != old && s.epoch > Some(old_epoch));
            if report.new_leader_ms.is_none() && new.is_some() {
                report.new_leader_ms = Some(ms(elapsed));
                report.new_leader = new;
                report.new_epoch = s.epoch;
            }
            if new.is_some() && survivors_serving {
                report.all_serving_ms = Some(ms(elapsed));
                return true;
            }
            false
        },
        |_| {},
    )
    .await;
    process::wait_gone(&node_state, &marker, Duration::from_secs(10));
    match result {
        Ok(after) => {
            print_report(ctx, &report, &after);
            Ok(())
        }
        Err((_, after)) => Err(Error::failed(format!(
            "leader {old} was killed but no new leader with a higher epoch served within {}; {}",
            output::secs(timeout),
            output::summary_line(&after)
        ))),
    }
}

fn print_report(ctx: &Ctx, r: &KillReport, after: &ClusterStatus) {
    if ctx.json {
        output::print_json(r);
        return;
    }
    println!(
        "killed leader {} (pid {}, epoch {}) with {}",
        r.old_leader, r.old_pid, r.old_epoch, r.signal
    );
    let t = |v: Option<u64>| v.map_or("-".to_string(), |ms| format!("{ms} ms"));
    if let (Some(l), Some(e)) = (r.new_leader, r.new_epoch) {
        println!("new leader: {l} (epoch {e})");
        println!("  followers noticed:      {}", t(r.noticed_ms));
        println!("  new leader serving:     {}", t(r.new_leader_ms));
        println!("  all survivors serving:  {}", t(r.all_serving_ms));
    }
    let stopped: Vec<String> = after
        .nodes
        .iter()
        .filter(|n| n.process != ProcessState::Running)
        .map(|n| format!("{} ({})", n.id, n.process.as_str()))
        .collect();
    if !stopped.is_empty() {
        println!("not running: {} — `zkdev up` starts it again", stopped.join(", "));
    }
}
