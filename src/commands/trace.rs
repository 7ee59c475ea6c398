//! `zkdev trace`: the messages a `--net` cluster's proxies decoded (what the ring holds, or live with
//! --follow), or the story of one write (--write), rendered.

use std::io::Write;
use std::time::Duration;

use super::Ctx;
use crate::cli::TraceArgs;
use crate::engine::trace::{self, WriteOptions, WriteTrace};
use crate::error::Result;
use crate::model::trace::{ms, Filter, Story, TraceEvent};
use crate::os::interrupt;
use crate::output;

pub async fn run(ctx: &Ctx, args: TraceArgs) -> Result<()> {
    let (paths, spec) = ctx.existing()?;
    trace::tappable(&spec)?;
    let sup = ctx.supervisor().await?;
    if let Some(path) = args.write {
        let options = WriteOptions {
            path,
            via: args.via,
            data: args.data.into_bytes(),
            settle: Duration::from_millis(1500),
            timeout: args.timeout,
        };
        let told = trace::write(&sup, &spec, &paths, &options).await?;
        print_story(ctx, &told);
        return Ok(());
    }
    let filter = Filter {
        node: args.node,
        path: args.path,
        kind: args.kind,
    };
    let mut cursor = if args.follow {
        trace::poll(&sup, None).await?.next
    } else {
        1
    };
    if args.follow {
        interrupt::install();
    }
    let mut shown = 0usize;
    loop {
        let page = trace::poll(&sup, Some(cursor)).await?;
        cursor = page.next;
        if page.missed > 0 && !ctx.quiet {
            eprintln!(
                "warning: {} messages left the supervisor's ring before they were read",
                page.missed
            );
        }
        let full = page.events.len() >= trace::PAGE;
        let mut out = std::io::stdout().lock();
        for e in page.events.iter().filter(|e| filter.matches(e)) {
            shown += 1;
            if print(&mut out, ctx.json, e).is_err() {
                return Ok(());
            }
        }
        drop(out);
        if full {
            continue;
        }
        if !args.follow {
            break;
        }
        if interrupt::interrupted() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if interrupt::interrupted() {
            break;
        }
    }
    if !args.follow && shown == 0 && !ctx.json && !ctx.quiet {
        eprintln!(
            "no messages matched (the supervisor keeps the last {})",
            crate::supervisor::tap::RING
        );
    }
    Ok(())
}

/// `20:14:03.123456 UTC`-style time of day of a microsecond timestamp.
fn clock(t_us: u64) -> String {
    let secs = t_us / 1_000_000;
    let day = secs % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        day / 3600,
        day / 60 % 60,
        day % 60,
        t_us % 1_000_000
    )
}

/// One event: NDJSON, or `time  link  message ...` for people.
fn print(out: &mut impl Write, json: bool, e: &TraceEvent) -> std::io::Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string(e).expect("events serialise"))?;
    } else {
        writeln!(out, "{}  {e}", clock(e.t_us))?;
    }
    out.flush()
}

fn print_story(ctx: &Ctx, t: &WriteTrace) {
    if ctx.json {
        output::print_json(t);
        return;
    }
    let s: &Story = &t.story;
    let role = if s.via == s.leader { "the leader" } else { "follower" };
    crate::outln!(
        "{} {} through {role} {} (leader {}): zxid {}{}{}",
        s.op,
        s.path,
        s.via,
        s.leader,
        s.zxid.map_or("not seen".to_string(), |z| z.to_string()),
        s.session.map_or(String::new(), |x| format!(", session 0x{x:x}")),
        s.err.as_ref().map_or(String::new(), |e| format!(", answered {e}")),
    );
    crate::outln!(
        "  {:>10}  {:<22}  {:<14}  {:<13}  took",
        "at",
        "link",
        "message",
        "zxid"
    );
    for step in &s.steps {
        let at = step.at_us.map_or("-".to_string(), ms);
        let link = if step.seen {
            crate::model::trace::link_text(step.from, step.to, step.link)
        } else {
            format!("{} (inside)", step.from)
        };
        let took = step
            .took_us
            .map_or(String::new(), |u| format!("{} after its PROPOSAL", ms(u)));
        let zxid = step.zxid.map_or(String::new(), |z| z.to_string());
        crate::outln!(
            "  {at:>10}  {link:<22}  {:<14}  {zxid:<13}  {took}{}",
            step.what,
            step.note.as_ref().map_or(String::new(), |n| {
                if took.is_empty() {
                    n.clone()
                } else {
                    format!("; {n}")
                }
            })
        );
    }
    for m in &s.missing {
        crate::outln!("missing: {m}");
    }
    for n in &s.notes {
        crate::outln!("{n}");
    }
    if let Some(us) = s.total_us {
        crate::outln!("request to reply: {}", ms(us));
    }
    if let Some(l) = &t.lost {
        eprintln!("warning: {l}");
    }
}
