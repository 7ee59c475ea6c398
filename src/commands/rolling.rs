//! `zkdev rolling-restart [--dist VERSION]`: restart the nodes one at a time, followers and observers first
//! and the leader last, each waited for until it serves again, so the quorum never breaks. With --dist the
//! cluster moves to another installed version on the way (a rolling upgrade). A sampler watches the whole
//! time and reports every moment without a serving leader.

use std::time::Duration;

use serde::Serialize;

use super::Ctx;
use crate::cli::RollingArgs;
use crate::dist;
use crate::engine::rolling::{self, RollingEvent, Step, Window};
use crate::error::{Error, Result};
use crate::model::spec::ClusterSpec;
use crate::output;
use crate::zk::observe;

#[derive(Debug, Serialize)]
struct Report {
    from_version: String,
    to_version: String,
    steps: Vec<Step>,
    total_ms: u64,
    /// Every stretch without a serving leader, as sampled every 20 ms.
    leaderless: Vec<Window>,
}

pub async fn run(ctx: &Ctx, args: RollingArgs) -> Result<()> {
    let timeout = args.timeout;
    let (paths, mut spec) = ctx.existing()?;
    let sup = ctx.supervisor().await?;
    let before = observe::gather(&spec, &paths, &paths.load_state()?).await;
    if !before.healthy() {
        return Err(Error::failed(format!(
            "a rolling restart needs a healthy ensemble to start from: {}; `zkdev up` or `zkdev wait` first",
            output::summary_line(&before)
        )));
    }
    let from_version = spec.dist.version.clone();
    if let Some(v) = &args.dist {
        let new = dist::detect(None, Some(&spec.dist.java.to_string_lossy()), Some(v), &ctx.home.root)?;
        // The new installation must run with the same files: render once to catch a version it cannot take.
        let mut next = spec.clone();
        next.dist = new;
        ClusterSpec::build(
            &next.name,
            &next.profile,
            next.settings.clone(),
            next.dist.clone(),
            next.voter_count() as u32,
            next.observer_count() as u32,
        )?;
        spec = next;
        crate::os::state::write_atomic(&paths.spec_file(), spec.to_toml().as_bytes())?;
    }
    let progress = |e: &RollingEvent| {
        if let RollingEvent::Restarting { id, was } = e {
            if !ctx.quiet && !ctx.json {
                eprintln!(
                    "restarting node {id} ({})...",
                    was.map_or("not serving".to_string(), |m| m.to_string())
                );
            }
        }
    };
    let done = rolling::rolling_restart(&sup, &ctx.cause(), &spec, &paths, &spec.ids(), timeout, progress).await?;
    let report = Report {
        from_version,
        to_version: spec.dist.version.clone(),
        steps: done.steps,
        total_ms: done.total_ms,
        leaderless: done.leaderless,
    };
    print_report(ctx, &report);
    Ok(())
}

fn print_report(ctx: &Ctx, r: &Report) {
    if ctx.json {
        output::print_json(r);
        return;
    }
    if r.from_version != r.to_version {
        crate::outln!("rolling upgrade ZooKeeper {} -> {}", r.from_version, r.to_version);
    }
    for s in &r.steps {
        crate::outln!(
            "node {} ({}): serving again as {} after {} ms",
            s.id,
            s.was.map_or("-".to_string(), |m| m.to_string()),
            s.now.map_or("-".to_string(), |m| m.to_string()),
            s.ms
        );
    }
    let without: u64 = r.leaderless.iter().map(|w| w.ms).sum();
    crate::outln!(
        "done in {}; without a serving leader: {} ms in all ({})",
        output::secs(Duration::from_millis(r.total_ms)),
        without,
        if r.leaderless.is_empty() {
            "never".to_string()
        } else {
            r.leaderless
                .iter()
                .map(|w| format!("{} ms while node {} restarted", w.ms, w.during_node))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
}
