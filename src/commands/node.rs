//! `zkdev stop|start|restart|kill|pause|resume TARGET`: one fault or repair on nodes picked by id or by the
//! role the servers report right now, guarded by quorum arithmetic, timed (the engine's
//! [`crate::engine::faults::node`]), and reported.

use super::Ctx;
use crate::cli::NodeArgs;
use crate::engine::faults::{self, NodeOptions, NodeReport};
use crate::engine::nemesis::Env;
use crate::error::Result;
use crate::output;

pub use crate::engine::faults::NodeAction as Action;

pub async fn run(ctx: &Ctx, action: Action, args: NodeArgs) -> Result<()> {
    let (paths, spec) = ctx.existing()?;
    let sup = ctx.supervisor().await?;
    let cause = ctx.cause();
    let env = Env {
        sup: &sup,
        cause: &cause,
        spec: &spec,
        paths: &paths,
        force: false,
    };
    let options = NodeOptions {
        force: args.force,
        wait: !args.no_wait,
        timeout: args.timeout,
    };
    let report = faults::node(&env, action, args.target, &options).await?;
    if ctx.json {
        output::print_json(&report);
    } else {
        crate::out!("{}", text(&report));
    }
    Ok(())
}

/// A node report as `zkdev stop|start|...` prints it.
pub(super) fn text(r: &NodeReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for n in &r.nodes {
        let was = n.was.map(|m| format!(" (was {m})")).unwrap_or_default();
        let mut line = format!("node {}{was}: {}", n.id, n.outcome);
        if let Some(now) = &n.now {
            line.push_str(&format!(", serving as {now}"));
        }
        if let Some(ms) = n.ms {
            line.push_str(&format!(" after {ms} ms"));
        }
        let _ = writeln!(out, "{line}");
    }
    if let (Some(l), Some(ms)) = (r.new_leader, r.new_leader_ms) {
        let epoch = r.epoch.map(|e| format!(" (epoch {e})")).unwrap_or_default();
        let _ = writeln!(out, "new leader: {l}{epoch} after {ms} ms");
        if let Some(expected) = r.expected_detection_ms {
            let _ = writeln!(
                out,
                "  a paused leader still holds its connections: followers notice only after syncLimit x tickTime = {expected} ms"
            );
        }
    }
    if let Some(w) = &r.warning {
        let _ = writeln!(out, "warning: {w}");
    }
    let _ = writeln!(out, "{}", output::summary_line(&r.after));
    out
}
