//! `zkdev wait`: exit 0 once every node serves with one leader, or every node but those stopped on purpose
//! (the leader's quorum serves); otherwise exit 1 and say why (the engine's [`crate::engine::wait`]).

use std::time::Instant;

use super::Ctx;
use crate::cli::WaitArgs;
use crate::engine::wait;
use crate::error::Result;
use crate::output;

pub async fn run(ctx: &Ctx, args: WaitArgs) -> Result<()> {
    let (paths, spec) = ctx.existing()?;
    let t0 = Instant::now();
    // A --net cluster's links live in its supervisor: one that died is brought back (and watched while this
    // waits), or the ensemble could not serve again however long this waited.
    let _sup = match spec.net {
        Some(_) => match ctx.supervisor().await {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("warning: every link is down with the supervisor, and a new one did not start: {e}");
                None
            }
        },
        None => None,
    };
    let progress = output::Progress::new(ctx.quiet || ctx.json);
    let r = wait::serving(&spec, &paths, args.timeout, |s| progress.show(s, t0.elapsed())).await;
    progress.finish();
    let s = r?;
    if ctx.json {
        output::print_json(&s);
    } else if !ctx.quiet {
        crate::outln!("{}", wait::serving_line(&s, t0.elapsed()));
    }
    Ok(())
}
