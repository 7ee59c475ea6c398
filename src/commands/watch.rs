//! `zkdev watch`: the status table refreshed in place plus a timeline of transitions on a terminal; one
//! line per transition elsewhere; NDJSON events with --json. Ctrl-C ends it.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::Ctx;
use crate::cli::WatchArgs;
use crate::error::{Error, Result};
use crate::model::spec::ClusterSpec;
use crate::model::timeline::{Event, Tracker};
use crate::os::clock;
use crate::os::interrupt;
use crate::os::state::ClusterPaths;
use crate::output;
use crate::supervisor::control::Supervisor;
use crate::supervisor::journal::{self, Tail};

pub async fn run(ctx: &Ctx, args: WatchArgs) -> Result<()> {
    let (paths, spec) = ctx.existing()?;
    if args.interval < Duration::from_millis(10) {
        return Err(Error::usage(format!(
            "--interval {}: give at least 10ms",
            crate::model::span::format(args.interval)
        )));
    }
    interrupt::install();
    follow(ctx, &spec, &paths, args.interval, args.duration).await
}

/// Watch until Ctrl-C (or `duration`): the status view plus the journal as it grows. Shared with `up
/// --foreground`. Holds no lock. Without a supervisor nothing is journalled, so the transitions are then
/// worked out here from the servers' answers.
pub async fn follow(
    ctx: &Ctx,
    spec: &ClusterSpec,
    paths: &ClusterPaths,
    interval: Duration,
    duration: Option<Duration>,
) -> Result<()> {
    let live = !ctx.json && std::io::stdout().is_terminal();
    let last = journal::read_all(paths).last().map_or(0, |e| e.seq);
    let mut tail = Tail::new(paths, last);
    let _ = tail.poll();
    let mut local = if Supervisor::find(paths).await.is_some() {
        None
    } else {
        if !ctx.quiet {
            eprintln!(
                "note: no supervisor runs for cluster `{}`, so nothing is journalled; showing what the servers \
                 answer (`zkdev up` starts a supervisor)",
                spec.name
            );
        }
        Some(Tracker::default())
    };
    if !live && !ctx.json && !ctx.quiet {
        eprint!("{}", super::status::dashboard_hint(paths));
    }
    let mut history: Vec<Event> = Vec::new();
    let started = Instant::now();
    let mut first = true;
    while !interrupt::interrupted() && duration.is_none_or(|d| started.elapsed() < d) {
        let status = super::status::current(paths, spec).await?;
        let mut events = Vec::new();
        if let Some(tracker) = local.as_mut() {
            events = tracker.observe(&status, clock::now());
        } else {
            if first {
                events.extend(Tracker::default().observe(&status, clock::now()));
            }
            events.extend(tail.poll());
        }
        first = false;
        for e in events
            .iter_mut()
            .filter(|e| e.kind == crate::model::timeline::Kind::Initial)
        {
            e.message = format!("watching `{}`: {}", spec.name, e.message);
        }
        let mut out = std::io::stdout().lock();
        let written = if ctx.json {
            events
                .iter()
                .try_for_each(|e| writeln!(out, "{}", serde_json::to_string(e).expect("serialisable")))
        } else if live {
            history.extend(events);
            let keep = history.len().saturating_sub(15);
            history.drain(..keep);
            let mut screen = String::from("\x1b[H\x1b[2J");
            screen.push_str(&output::status_table(&status));
            screen.push_str("\ntimeline (UTC):\n");
            for e in &history {
                screen.push_str(&format!("  {}  {}\n", e.time, e.message));
            }
            screen.push('\n');
            screen.push_str(&super::status::dashboard_hint(paths));
            screen.push_str("Ctrl-C to stop watching\n");
            write!(out, "{screen}")
        } else {
            events
                .iter()
                .try_for_each(|e| writeln!(out, "{}  {}", e.time, e.message))
        };
        if written.and_then(|_| out.flush()).is_err() {
            return Ok(()); // the reader went away
        }
        drop(out);
        tokio::time::sleep(interval).await;
    }
    Ok(())
}
