//! Tables and JSON, drawn from the same structs. Data goes to stdout; progress to stderr.

use std::fmt::Display;
use std::io::IsTerminal;

use serde::Serialize;

use crate::observe::ClusterStatus;

/// `println!` that does not panic when stdout is gone (`zkdev status | head -1`): the output is lost, the
/// command still finishes what it was doing (stopping nodes, saving state).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` without the panic, as `outln!`.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// Print `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) {
    crate::outln!("{}", serde_json::to_string_pretty(value).expect("serialisable"));
}

fn opt<T: Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), ToString::to_string)
}

/// Left-aligned columns separated by two spaces; no trailing blanks.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.clone()));
        out.push('\n');
    }
    out
}

pub fn status_table(s: &ClusterStatus) -> String {
    let rows: Vec<Vec<String>> = s
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.id.to_string(),
                n.role.as_str().to_string(),
                n.process.as_str().to_string(),
                opt(&n.mode),
                opt(&n.pid),
                n.client_port.to_string(),
                n.quorum_port.to_string(),
                n.election_port.to_string(),
                opt(&n.admin_port),
                opt(&n.zxid),
                opt(&n.epoch),
                opt(&n.counter),
                opt(&n.connections),
                opt(&n.znodes),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "ID", "ROLE", "PROCESS", "MODE", "PID", "CLIENT", "QUORUM", "ELECTION", "ADMIN", "ZXID", "EPOCH",
            "COUNTER", "CONNS", "ZNODES",
        ],
        &rows,
    );
    out.push_str(&summary_line(s));
    out.push('\n');
    for n in &s.nodes {
        if let Some(peer) = &n.peer_state {
            let mut line = format!("  node {}: {peer}", n.id);
            if let (Some(f), Some(o)) = (n.synced_followers, n.synced_observers) {
                line.push_str(&format!("; synced followers {f}, synced observers {o}"));
            }
            out.push_str(&line);
            out.push('\n');
        }
        if let Some(d) = &n.detail {
            out.push_str(&format!("  node {}: {d}\n", n.id));
        }
    }
    out
}

pub fn summary_line(s: &ClusterStatus) -> String {
    let leader = match (s.leader, s.epoch) {
        (Some(id), Some(e)) => format!("leader {id} (epoch {e})"),
        (Some(id), None) => format!("leader {id}"),
        (None, _) if s.leaders().len() > 1 => "several nodes claim to lead".to_string(),
        (None, _) => "no leader".to_string(),
    };
    let q = &s.quorum;
    let quorum = if q.voters_up >= q.needed {
        format!("voters up {}/{} (quorum needs {})", q.voters_up, q.voters, q.needed)
    } else {
        format!(
            "voters up {}/{}: NO QUORUM (needs {}; start voters again)",
            q.voters_up, q.voters, q.needed
        )
    };
    format!(
        "cluster {}: {leader}, {quorum}, connect {}",
        s.cluster, s.connect_string
    )
}

/// Whether stderr is a person's terminal (progress bars only then).
pub fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// Seconds with millisecond precision, for people.
pub fn secs(d: std::time::Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// A spinner on stderr while waiting (only on a terminal, and not with --quiet/--json).
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn new(silent: bool) -> Progress {
        let bar = (!silent && stderr_is_tty()).then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.enable_steady_tick(std::time::Duration::from_millis(100));
            b
        });
        Progress { bar }
    }

    pub fn message(&self, text: String) {
        if let Some(b) = &self.bar {
            b.set_message(text);
        }
    }

    /// "waiting for the ensemble: 3/4 serving, leader 3 (1.20 s)"
    pub fn show(&self, s: &ClusterStatus, elapsed: std::time::Duration) {
        if self.bar.is_some() {
            let serving = s.nodes.iter().filter(|n| n.serving()).count();
            let leader = s.leader.map_or("none yet".to_string(), |l| l.to_string());
            self.message(format!(
                "waiting for the ensemble: {serving}/{} serving, leader {leader} ({})",
                s.nodes.len(),
                secs(elapsed)
            ));
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
