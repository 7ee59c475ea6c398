//! `zkdev events`: the journal as a timeline for people, NDJSON for scripts; `--follow` keeps printing.

use std::io::Write;
use std::time::Duration;

use super::Ctx;
use crate::cli::EventsArgs;
use crate::error::{Error, Result};
use crate::model::timeline::Event;
use crate::os::clock::now_ms;
use crate::os::interrupt;
use crate::supervisor::journal::{self, Tail};

/// Which events `--since` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    All,
    /// After this sequence number.
    Seq(u64),
    /// At or after this wall time (ms since the epoch).
    At(u64),
}

impl Since {
    pub fn parse(text: &str, now: u64) -> Result<Since> {
        let t = text.trim();
        if let Ok(n) = t.parse::<u64>() {
            return Ok(Since::Seq(n));
        }
        match crate::model::span::parse(t, crate::model::span::Bare::Refused) {
            Ok(ago) => Ok(Since::At(now.saturating_sub(ago.as_millis() as u64))),
            Err(_) => Err(Error::usage(format!(
                "--since {text}: give a sequence number (e.g. 42) or a duration ago (e.g. 250ms, 30s, 5m, 1h, 1d)"
            ))),
        }
    }

    pub fn keeps(self, e: &Event) -> bool {
        match self {
            Since::All => true,
            Since::Seq(n) => e.seq > n,
            Since::At(t) => e.at_ms >= t,
        }
    }
}

pub async fn run(ctx: &Ctx, args: EventsArgs) -> Result<()> {
    let (paths, _spec) = ctx.existing()?;
    let since = match &args.since {
        Some(s) => Since::parse(s, now_ms())?,
        None => Since::All,
    };
    let all = journal::read_all(&paths);
    let last = all.last().map_or(0, |e| e.seq);
    let shown: Vec<&Event> = all.iter().filter(|e| since.keeps(e)).collect();
    let mut out = std::io::stdout().lock();
    for e in &shown {
        if print(&mut out, ctx.json, e).is_err() {
            return Ok(());
        }
    }
    if !args.follow {
        if shown.is_empty() && !ctx.json && !ctx.quiet {
            eprintln!(
                "no events{} in {}",
                if args.since.is_some() { " in that range" } else { "" },
                paths.journal().display()
            );
        }
        return Ok(());
    }
    drop(out);
    interrupt::install();
    let mut tail = Tail::new(&paths, last);
    // Read the current file up to its end first, so only events after `last` are printed.
    let _ = tail.poll();
    while !interrupt::interrupted() {
        for e in tail.poll() {
            let mut out = std::io::stdout().lock();
            if print(&mut out, ctx.json, &e).is_err() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// One event: NDJSON, or `seq  time  message` for people.
pub fn print(out: &mut impl Write, json: bool, e: &Event) -> std::io::Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string(e).expect("events serialise"))?;
    } else {
        writeln!(out, "{:>5}  {}  {}", e.seq, e.time, e.message)?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_seq_or_a_duration() {
        assert_eq!(Since::parse("42", 100_000).unwrap(), Since::Seq(42));
        assert_eq!(Since::parse("30s", 100_000).unwrap(), Since::At(70_000));
        assert_eq!(Since::parse("250ms", 1000).unwrap(), Since::At(750));
        assert_eq!(Since::parse("1h", 10).unwrap(), Since::At(0));
        let e = Since::parse("yesterday", 0).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--since yesterday"));
    }
}
