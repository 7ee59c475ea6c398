//! Tables and JSON, drawn from the same structs. Data goes to stdout; progress to stderr.

use std::fmt::Display;
use std::io::IsTerminal;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use crate::model::status::ClusterStatus;

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

/// Whether stdout takes colour: `--color`, else NO_COLOR, CLICOLOR_FORCE and whether it is a terminal, as
/// anstream decides (the choice is set once in `commands::run`).
pub fn color_stdout() -> bool {
    anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never
}

/// Left-aligned columns separated by two spaces; no trailing blanks.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    styled_table(header, rows, |_, _| None)
}

/// `table` with some body cells styled by `style(column, text)`. Cells are padded by their plain width and
/// the padding stays outside the escape codes, so the columns line up with or without styling.
fn styled_table(header: &[&str], rows: &[Vec<String>], style: impl Fn(usize, &str) -> Option<Style>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String], style: &dyn Fn(usize, &str) -> Option<Style>| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            match style(i, c) {
                Some(st) => s.push_str(&format!("{st}{c}{st:#}")),
                None => s.push_str(c),
            }
            if i + 1 < cells.len() {
                let pad = widths[i].saturating_sub(c.chars().count());
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.trim_end().to_string()
    };
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut out = line(&header, &|_, _| None);
    out.push('\n');
    for r in rows {
        out.push_str(&line(r, &style));
        out.push('\n');
    }
    out
}

/// The status table, coloured when stdout takes colour.
pub fn status_table(s: &ClusterStatus) -> String {
    status_table_in(s, color_stdout())
}

/// The status table; with `color`, a leader's MODE and a crashed or unresponsive PROCESS stand out.
fn status_table_in(s: &ClusterStatus, color: bool) -> String {
    // Nodes on their own loopback addresses (`--addresses loopback`) all use the same ports: say where each is.
    let own_addresses = s.nodes.iter().any(|n| n.address != std::net::Ipv4Addr::LOCALHOST);
    let rows: Vec<Vec<String>> = s
        .nodes
        .iter()
        .map(|n| {
            let a = n.answer();
            let mut row = vec![
                n.id.to_string(),
                n.role.as_str().to_string(),
                n.process().as_str().to_string(),
                opt(&n.mode()),
                opt(&n.pid()),
            ];
            if own_addresses {
                row.push(n.address.to_string());
            }
            row.extend([
                n.client_port.to_string(),
                n.quorum_port.to_string(),
                n.election_port.to_string(),
                opt(&n.admin_port),
                opt(&n.zxid()),
                opt(&n.zxid().map(|z| z.epoch())),
                opt(&n.zxid().map(|z| z.counter())),
                opt(&a.and_then(|a| a.connections)),
                opt(&a.and_then(|a| a.znodes)),
            ]);
            row
        })
        .collect();
    let mut header = vec!["ID", "ROLE", "PROCESS", "MODE", "PID"];
    if own_addresses {
        header.push("ADDRESS");
    }
    header.extend([
        "CLIENT", "QUORUM", "ELECTION", "ADMIN", "ZXID", "EPOCH", "COUNTER", "CONNS", "ZNODES",
    ]);
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (process, mode) = (column("PROCESS"), column("MODE"));
    let mut out = styled_table(&header, &rows, |i, text| {
        if !color {
            return None;
        }
        match text {
            "leader" if Some(i) == mode => Some(AnsiColor::Green.on_default().bold()),
            "crashed" | "unresponsive" if Some(i) == process => Some(AnsiColor::Red.on_default().bold()),
            _ => None,
        }
    });
    out.push_str(&summary_line(s));
    out.push('\n');
    for n in &s.nodes {
        if let Some(a) = n.answer().filter(|a| a.peer_state.is_some()) {
            let mut line = format!("  node {}: {}", n.id, a.peer_state.as_deref().unwrap_or_default());
            if let (Some(f), Some(o)) = (a.synced_followers, a.synced_observers) {
                line.push_str(&format!("; synced followers {f}, synced observers {o}"));
            }
            out.push_str(&line);
            out.push('\n');
        }
        if let Some(d) = n.detail() {
            out.push_str(&format!("  node {}: {d}\n", n.id));
        }
    }
    out
}

pub fn summary_line(s: &ClusterStatus) -> String {
    crate::model::status::summary_line(s)
}

/// Whether stderr is a person's terminal (progress bars only then).
pub fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// Seconds with millisecond precision, for people.
pub fn secs(d: std::time::Duration) -> String {
    crate::model::span::secs(d)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A leader, a follower, a crashed node, an unresponsive one and a paused observer.
    fn status() -> ClusterStatus {
        let node = |id: u32, role: &str, process: &str, mode: Option<&str>, pid: Option<i32>| {
            let serving = mode.is_some();
            serde_json::json!({
                "id": id, "role": role, "process": process, "mode": mode, "pid": pid,
                "client_port": 2180 + id, "quorum_port": 2880 + id, "election_port": 3880 + id,
                "admin_port": null,
                "zxid": serving.then_some("0x300000002"), "epoch": serving.then_some(3),
                "counter": serving.then_some(2), "connections": serving.then_some(1), "znodes": serving.then_some(5),
                "data_dir": format!("/h/node{id}/data"), "log_file": format!("/h/node{id}/zookeeper.log"),
                "peer_state": (mode == Some("leader")).then_some("leading - broadcast"),
                "synced_followers": (mode == Some("leader")).then_some(1),
                "synced_observers": (mode == Some("leader")).then_some(0),
                "detail": (process == "crashed").then_some("exited with status 1: java.net.BindException"),
            })
        };
        let s: ClusterStatus = serde_json::from_value(serde_json::json!({
            "cluster": "default",
            "connect_string": "127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183,127.0.0.1:2184,127.0.0.1:2185",
            "leader": 1, "epoch": 3,
            "quorum": {"voters": 4, "voters_up": 3, "needed": 3},
            "nodes": [
                node(1, "participant", "running", Some("leader"), Some(4101)),
                node(2, "participant", "running", Some("follower"), Some(4102)),
                node(3, "participant", "crashed", None, None),
                node(4, "participant", "unresponsive", None, Some(4104)),
                node(5, "observer", "paused", None, Some(4105)),
            ],
        }))
        .unwrap();
        s
    }

    /// The table as it was before colour existed: colour off must keep it byte for byte.
    const PLAIN: &str = "\
ID  ROLE         PROCESS       MODE      PID   CLIENT  QUORUM  ELECTION  ADMIN  ZXID         EPOCH  COUNTER  CONNS  ZNODES
1   participant  running       leader    4101  2181    2881    3881      -      0x300000002  3      2        1      5
2   participant  running       follower  4102  2182    2882    3882      -      0x300000002  3      2        1      5
3   participant  crashed       -         -     2183    2883    3883      -      -            -      -        -      -
4   participant  unresponsive  -         4104  2184    2884    3884      -      -            -      -        -      -
5   observer     paused        -         4105  2185    2885    3885      -      -            -      -        -      -
cluster default: leader 1 (epoch 3), voters up 3/4 (quorum needs 3), connect 127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183,127.0.0.1:2184,127.0.0.1:2185
  node 1: leading - broadcast; synced followers 1, synced observers 0
  node 3: exited with status 1: java.net.BindException
";

    #[test]
    fn without_colour_the_status_table_is_unchanged() {
        assert_eq!(status_table_in(&status(), false), PLAIN);
    }

    #[test]
    fn with_colour_the_leader_and_trouble_stand_out_and_the_columns_still_line_up() {
        let coloured = status_table_in(&status(), true);
        assert_eq!(anstream::adapter::strip_str(&coloured).to_string(), PLAIN);
        let green = AnsiColor::Green.on_default().bold();
        let red = AnsiColor::Red.on_default().bold();
        let lines: Vec<&str> = coloured.lines().collect();
        assert!(lines[1].contains(&format!("{green}leader{green:#}")), "{}", lines[1]);
        assert!(lines[3].contains(&format!("{red}crashed{red:#}")), "{}", lines[3]);
        assert!(lines[4].contains(&format!("{red}unresponsive{red:#}")), "{}", lines[4]);
        // Nothing else: the header, a follower, a paused node and the summary stay plain.
        for i in [0, 2, 5, 6, 7, 8] {
            assert!(!lines[i].contains('\x1b'), "{}", lines[i]);
        }
        assert_eq!(
            coloured.matches("\x1b[0m").count(),
            3,
            "three styled cells:\n{coloured}"
        );
    }

    #[test]
    fn nodes_on_their_own_addresses_get_an_address_column() {
        let mut s = status();
        for n in &mut s.nodes {
            n.address = std::net::Ipv4Addr::new(127, 0, 0, 10 + n.id as u8);
        }
        let table = status_table_in(&s, false);
        let mut lines = table.lines();
        assert!(lines
            .next()
            .unwrap()
            .starts_with("ID  ROLE         PROCESS       MODE      PID   ADDRESS     CLIENT"));
        assert!(lines.next().unwrap().contains(" 127.0.0.11  2181 "), "{table}");
        // On 127.0.0.1 (the default) there is no such column: see `without_colour_the_status_table_is_unchanged`.
        assert!(!status_table_in(&status(), false).contains("ADDRESS"));
    }
}
