//! `zkdev wait`: exit 0 once every node serves with one leader, or every node but those stopped on purpose
//! (the leader's quorum serves); otherwise exit 1 and say why.

use std::time::Instant;

use super::Ctx;
use crate::cli::WaitArgs;
use crate::error::{Error, Result};
use crate::model::words;
use crate::output;
use crate::zk::observe::{ProcessState, WaitFailure};

pub async fn run(ctx: &Ctx, args: WaitArgs) -> Result<()> {
    let timeout = args.timeout;
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
    let r = crate::zk::observe::wait_until(
        &spec,
        &paths,
        timeout,
        |s| s.serving_except_stopped().is_some(),
        |s| progress.show(s, t0.elapsed()),
    )
    .await;
    progress.finish();
    match r {
        Ok(s) => {
            if ctx.json {
                output::print_json(&s);
            } else if !ctx.quiet {
                let stopped = s.serving_except_stopped().unwrap_or_default();
                let note = if stopped.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({} stopped on purpose; `zkdev start {}` brings {} back)",
                        words::nodes(&stopped),
                        if stopped.len() == 1 {
                            stopped[0].to_string()
                        } else {
                            "all".into()
                        },
                        if stopped.len() == 1 { "it" } else { "them" }
                    )
                };
                crate::outln!(
                    "serving after {}: {}{note}",
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
                        "node {} ({})",
                        n.id,
                        n.mode()
                            .map_or_else(|| n.process().as_str().to_string(), |m| m.to_string())
                    )
                })
                .collect();
            if !stuck.is_empty() {
                why.push_str(&format!("; not serving: {}", words::and_list(&stuck)));
            }
            // A paused node never comes back by waiting: name the command that brings it back.
            let paused: Vec<u32> = s
                .nodes
                .iter()
                .filter(|n| n.process() == ProcessState::Paused)
                .map(|n| n.id)
                .collect();
            if !paused.is_empty() {
                let target = if paused.len() == 1 {
                    paused[0].to_string()
                } else {
                    "all".to_string()
                };
                why.push_str(&format!(
                    "; {} paused (SIGSTOP) and will not serve until resumed: `zkdev resume {target}`",
                    words::nodes(&paused)
                ));
            }
            if q.voters_up < q.needed {
                let fix = if paused.is_empty() {
                    "start voters with `zkdev up` or `zkdev start ID`"
                } else {
                    "resume or start voters"
                };
                why.push_str(&format!(
                    "; only {} of {} {} up and a quorum needs {}: {fix}",
                    q.voters_up,
                    words::count(q.voters, "voter"),
                    if q.voters_up == 1 { "is" } else { "are" },
                    q.needed
                ));
            } else if matches!(failure, WaitFailure::Crashed(_)) {
                why.push_str("; `zkdev up` starts it again");
            }
            Err(match failure {
                WaitFailure::Crashed(_) => Error::failed(why),
                _ => Error::timeout(why),
            })
        }
    }
}
