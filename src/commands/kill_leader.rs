//! `zkdev kill-leader`: the engine's leader kill with the command line's options, its report rendered.

use super::Ctx;
use crate::cli::KillLeaderArgs;
use crate::engine::kill_leader::{self, KillLeader, KillReport};
use crate::error::Result;
use crate::output;
use crate::zk::observe::{ClusterStatus, ProcessState};

pub async fn run(ctx: &Ctx, args: KillLeaderArgs) -> Result<()> {
    let timeout = args.timeout;
    let (paths, spec) = ctx.existing()?;
    let sup = ctx.supervisor().await?;
    let options = KillLeader {
        signal: args.signal.into(),
        force: args.force,
        restart: args.restart,
        timeout,
    };
    let (report, after) = kill_leader::kill_leader(&sup, &ctx.cause(), &spec, &paths, &options).await?;
    print_report(ctx, &report, &after);
    if !report.quorum_left {
        eprintln!(
            "warning: {} of {} {} up and a quorum needs {}: no leader can be elected until voters return \
             (`zkdev up`)",
            after.quorum.voters_up,
            crate::model::words::count(after.quorum.voters, "voter"),
            if after.quorum.voters_up == 1 { "is" } else { "are" },
            after.quorum.needed
        );
    }
    Ok(())
}

fn print_report(ctx: &Ctx, r: &KillReport, after: &ClusterStatus) {
    if ctx.json {
        output::print_json(r);
        return;
    }
    crate::outln!(
        "killed leader {} (pid {}, epoch {}) with {}",
        r.old_leader,
        r.old_pid,
        r.old_epoch,
        r.signal
    );
    let t = |v: Option<u64>| v.map_or("not seen".to_string(), |ms| format!("{ms} ms"));
    if let (Some(l), Some(e)) = (r.new_leader, r.new_epoch) {
        crate::outln!("new leader: {l} (epoch {e})");
        crate::outln!("  followers noticed:      {}", t(r.noticed_ms));
        crate::outln!(
            "  new leader serving:     {}   (no writes possible until then)",
            t(r.new_leader_ms)
        );
        crate::outln!("  all survivors serving:  {}", t(r.all_serving_ms));
    }
    if let (Some(ms), Some(mode)) = (r.rejoin_ms, &r.rejoined_as) {
        crate::outln!("restarted node {}: serving again as {mode} after {ms} ms", r.old_leader);
    }
    let down: Vec<String> = after
        .nodes
        .iter()
        .filter(|n| n.process() != ProcessState::Running)
        .map(|n| format!("{} ({})", n.id, n.process().as_str()))
        .collect();
    if !down.is_empty() {
        crate::outln!("not running: {} — `zkdev up` starts it again", down.join(", "));
    }
}
