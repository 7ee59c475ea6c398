//! `zkdev wait`: exit 0 once every node serves with one leader; otherwise exit 1 and say why.

use std::time::Instant;

use super::{seconds, Ctx};
use crate::cli::WaitArgs;
use crate::error::{Error, Result};
use crate::output;
use crate::zk::observe::WaitFailure;

pub async fn run(ctx: &Ctx, args: WaitArgs) -> Result<()> {
    let timeout = seconds(args.timeout, "--timeout")?;
    let (paths, spec) = ctx.existing()?;
    let t0 = Instant::now();
    let r = super::wait_healthy(ctx, &spec, &paths, timeout, t0).await;
    match r {
        Ok(s) => {
            if ctx.json {
                output::print_json(&s);
            } else if !ctx.quiet {
                crate::outln!(
                    "serving after {}: {}",
                    output::secs(t0.elapsed()),
                    output::summary_line(&s)
                );
            }
            Ok(())
        }
        Err((failure, s)) => {
            let q = &s.quorum;
            let mut why = match failure {
                WaitFailure::Crashed(id) => format!("node {id} crashed"),
                _ => format!("not serving with one leader after {}", output::secs(timeout)),
            };
            let stuck: Vec<String> = s
                .not_serving()
                .iter()
                .map(|n| {
                    format!(
                        "{} {}",
                        n.id,
                        n.mode()
                            .map_or_else(|| n.process().as_str().to_string(), |m| m.to_string())
                    )
                })
                .collect();
            if !stuck.is_empty() {
                why.push_str(&format!("; not serving: {}", stuck.join(", ")));
            }
            if q.voters_up < q.needed {
                why.push_str(&format!(
                    "; only {} of {} voters are up and a quorum needs {}: start voters with `zkdev up` or `zkdev start ID`",
                    q.voters_up, q.voters, q.needed
                ));
            } else if matches!(failure, WaitFailure::Crashed(_)) {
                why.push_str("; `zkdev up` starts it again");
            }
            Err(Error::failed(why))
        }
    }
}
