//! `zkdev logs [ID] [-f] [-n N]`: one node's log, or every node's merged in time order with a node prefix.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use super::Ctx;
use crate::cli::LogsArgs;
use crate::error::{Error, Result};
use crate::os::interrupt;

/// One log line with the timestamp it belongs to (continuation lines inherit the previous one).
struct Line {
    ts: String,
    node: u32,
    text: String,
}

/// `2026-11-22 18:37:41,576 ...` -> the timestamp, sortable as text.
fn timestamp(line: &str) -> Option<&str> {
    let ts = line.get(..23)?;
    let b = ts.as_bytes();
    let ok = b[4] == b'-' && b[10] == b' ' && b[13] == b':' && b[0].is_ascii_digit() && b[22].is_ascii_digit();
    ok.then_some(ts)
}

fn parse(node: u32, text: &str) -> Vec<Line> {
    let mut ts = String::new();
    text.lines()
        .map(|l| {
            if let Some(t) = timestamp(l) {
                ts = t.to_string();
            }
            Line {
                ts: ts.clone(),
                node,
                text: l.to_string(),
            }
        })
        .collect()
}

/// Every node's lines merged by timestamp; a node's own lines keep their order.
fn merge(mut per_node: Vec<Vec<Line>>) -> Vec<Line> {
    let mut all: Vec<Line> = per_node.drain(..).flatten().collect();
    all.sort_by(|a, b| a.ts.cmp(&b.ts)); // stable
    all
}

/// Merged lines get a `nodeN |` prefix, in the node's colour when stdout takes colour. The log text itself
/// is written as it is.
struct Painter {
    color: bool,
    single: bool,
}

impl Painter {
    fn line(&self, l: &Line) -> String {
        if self.single {
            return l.text.clone();
        }
        use anstyle::AnsiColor::*;
        const COLORS: [anstyle::AnsiColor; 6] = [Cyan, Yellow, Magenta, Green, Blue, Red];
        if self.color {
            let c = COLORS[(l.node as usize - 1) % COLORS.len()].on_default();
            format!("{c}node{} |{c:#} {}", l.node, l.text)
        } else {
            format!("node{} | {}", l.node, l.text)
        }
    }
}

pub async fn run(ctx: &Ctx, args: LogsArgs) -> Result<()> {
    let (paths, spec) = ctx.existing()?;
    let ids: Vec<u32> = match args.id {
        Some(id) if spec.node(id).is_none() => {
            return Err(Error::usage(format!(
                "cluster `{}` has no node {id}; its {} {}",
                spec.name,
                crate::model::words::noun_for(spec.nodes.len(), "node is|nodes are"),
                crate::model::words::and_list(&spec.ids())
            )))
        }
        Some(id) => vec![id],
        None => spec.nodes.iter().map(|n| n.id).collect(),
    };
    let painter = Painter {
        color: crate::output::color_stdout(),
        single: ids.len() == 1,
    };
    let mut offsets = Vec::new();
    let mut per_node = Vec::new();
    for id in &ids {
        let path = paths.log_file(*id);
        let text = std::fs::read(&path).unwrap_or_default();
        offsets.push(text.len() as u64);
        per_node.push(parse(*id, &String::from_utf8_lossy(&text)));
    }
    let merged = merge(per_node);
    let mut out = std::io::stdout().lock();
    for l in &merged[merged.len().saturating_sub(args.lines)..] {
        if writeln!(out, "{}", painter.line(l)).is_err() {
            return Ok(()); // reader went away (| head)
        }
    }
    drop(out);
    if !args.follow {
        return Ok(());
    }
    interrupt::install();
    let mut partial: Vec<String> = vec![String::new(); ids.len()];
    while !interrupt::interrupted() {
        let mut fresh = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let path = paths.log_file(*id);
            let Ok(mut f) = std::fs::File::open(&path) else {
                continue;
            };
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len < offsets[i] {
                offsets[i] = 0; // truncated or replaced
            }
            if len == offsets[i] {
                continue;
            }
            let mut buf = Vec::new();
            if f.seek(SeekFrom::Start(offsets[i])).is_ok() && f.read_to_end(&mut buf).is_ok() {
                offsets[i] += buf.len() as u64;
                partial[i].push_str(&String::from_utf8_lossy(&buf));
                if let Some(cut) = partial[i].rfind('\n') {
                    let complete: String = partial[i].drain(..=cut).collect();
                    fresh.push(parse(*id, &complete));
                }
            }
        }
        let mut out = std::io::stdout().lock();
        for l in merge(fresh) {
            if writeln!(out, "{}", painter.line(&l)).is_err() {
                return Ok(());
            }
        }
        let _ = out.flush();
        drop(out);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_lines_carry_the_node_prefix_in_its_colour() {
        let line = |node| Line {
            ts: String::new(),
            node,
            text: "INFO x".into(),
        };
        let painter = |color, single| Painter { color, single };
        assert_eq!(painter(true, false).line(&line(1)), "\x1b[36mnode1 |\x1b[0m INFO x");
        assert_eq!(painter(true, false).line(&line(8)), "\x1b[33mnode8 |\x1b[0m INFO x");
        assert_eq!(painter(false, false).line(&line(1)), "node1 | INFO x");
        assert_eq!(painter(true, true).line(&line(1)), "INFO x");
    }

    #[test]
    fn merges_by_time_and_keeps_continuations_with_their_line() {
        let a = parse(
            1,
            "2026-01-01 10:00:00,100 [myid:1] INFO a1\n\tat stack\n2026-01-01 10:00:00,300 [myid:1] INFO a2\n",
        );
        let b = parse(2, "2026-01-01 10:00:00,200 [myid:2] INFO b1\n");
        let m: Vec<String> = merge(vec![a, b])
            .into_iter()
            .map(|l| format!("{}:{}", l.node, l.text))
            .collect();
        assert_eq!(
            m,
            vec![
                "1:2026-01-01 10:00:00,100 [myid:1] INFO a1",
                "1:\tat stack",
                "2:2026-01-01 10:00:00,200 [myid:2] INFO b1",
                "1:2026-01-01 10:00:00,300 [myid:1] INFO a2",
            ]
        );
    }
}
