//! `zkdev wait`: exit 0 once every node serves with one leader; otherwise exit 1 and say why.

use std::time::Instant;

use super::{seconds, Ctx};
use crate::cli::WaitArgs;
use crate::error::{Error, Result};
use crate::output;
use crate::zk::observe::{ProcessState, WaitFailure};

pub async fn run(ctx: &Ctx, args: WaitArgs) -> Result<()> {
    let timeout = seconds(args.timeout, "--timeout")?;
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
            // A paused node never comes back by waiting: name the command that brings it back.
            let paused: Vec<String> = s
                .nodes
                .iter()
                .filter(|n| n.process() == ProcessState::Paused)
                .map(|n| n.id.to_string())
                .collect();
            if !paused.is_empty() {
                let target = if paused.len() == 1 {
                    paused[0].clone()
                } else {
                    "all".to_string()
                };
                why.push_str(&format!(
                    "; node(s) {} paused (SIGSTOP) and will not serve until resumed: `zkdev resume {target}`",
                    paused.join(",")
                ));
            }
            if q.voters_up < q.needed {
                let fix = if paused.is_empty() {
                    "start voters with `zkdev up` or `zkdev start ID`"
                } else {
                    "resume or start voters"
                };
                why.push_str(&format!(
                    "; only {} of {} voters are up and a quorum needs {}: {fix}",
                    q.voters_up, q.voters, q.needed
                ));
            } else if matches!(failure, WaitFailure::Crashed(_)) {
                why.push_str("; `zkdev up` starts it again");
            }
            Err(Error::failed(why))
        }
    }
}
