//! `zkdev check FILE`: check a history made elsewhere against a register model; needs no cluster. Reads the
//! file, hands its text to `model::history_formats` and `model::check`, and renders the verdict, the
//! excerpt and (on a violation) its picture. The hidden `gen-history` writes the benchmark's histories.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::cli::{CheckArgs, GenHistoryArgs};
use crate::error::{Error, Result};
use crate::model::check::{self, Finding, ModelKind, Shown};
use crate::model::history_formats::{self, Format, History};
use crate::model::linearize::{Budget, Decision};
use crate::model::simulate;
use crate::model::svg;
use crate::model::zkmodel::{self, ZkOp};
use crate::output;

/// What `--json` prints (stable: scripts parse it).
#[derive(Debug, Serialize)]
struct Report {
    file: String,
    /// valid, violation, inconclusive
    verdict: &'static str,
    model: ModelKind,
    format: Format,
    /// The format was told from the content (no --format).
    format_detected: bool,
    /// Operations in the file.
    ops: usize,
    /// Operations the model checked (reads without an answer and operations that did not take place say
    /// nothing).
    checked: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The smallest excerpt found that still fails, in call order.
    excerpt: Vec<Shown>,
    check_ms: f64,
    /// The picture written, if one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    picture: Option<String>,
}

pub fn run(a: &CheckArgs) -> Result<()> {
    let file = a.file.display().to_string();
    let bytes = std::fs::read(&a.file).map_err(|e| Error::usage(format!("{file}: cannot read the history: {e}")))?;
    let text = String::from_utf8_lossy(&bytes);
    let zk = match a.model.map(ModelKind::from) {
        Some(m) => m == ModelKind::Zk,
        None => a.format.is_none_or(|f| Format::from(f) == Format::Zkdev) && zkmodel::looks_like(&text),
    };
    if zk {
        return run_zk(a, &file, &text);
    }
    let unreadable =
        |u: history_formats::Unreadable| Error::usage(format!("{file}:{}: expected {}", u.line, u.expected));
    let (format, detected) = match a.format {
        Some(f) => (f.into(), false),
        None => (history_formats::detect(&text).map_err(unreadable)?, true),
    };
    let h = history_formats::parse(&text, format).map_err(unreadable)?;
    let model = a.model.map_or(ModelKind::for_format(format), Into::into);
    let t = Instant::now();
    let found = check::check(&h, model, a.initial.as_deref(), Budget::default()).map_err(|m| match m.line {
        Some(line) => Error::usage(format!("{file}:{line}: {}", m.message)),
        None => Error::usage(m.message),
    })?;
    let check_ms = (t.elapsed().as_secs_f64() * 1e5).round() / 100.0;
    let verdict = match found.decision {
        Decision::Linearizable => "valid",
        Decision::NotLinearizable => "violation",
        Decision::TooLarge => "inconclusive",
    };
    let mut report = Report {
        file: file.clone(),
        verdict,
        model,
        format,
        format_detected: detected,
        ops: h.entries.len(),
        checked: found.checked,
        key: found.key.clone(),
        reason: found.reason.clone(),
        excerpt: found.excerpt.iter().map(|&i| check::shown(&h, i)).collect(),
        check_ms,
        picture: None,
    };
    let picture = a
        .svg
        .as_deref()
        .map(|p| (p, false))
        .or(a.html.as_deref().map(|p| (p, true)));
    if let (Some((path, html)), Decision::NotLinearizable) = (picture, found.decision) {
        draw(&h, &report, path, html)?;
        report.picture = Some(path.display().to_string());
    }
    if a.out.json {
        output::print_json(&report);
    } else {
        print_text(&h, &report, &found, picture.is_some());
    }
    match found.decision {
        Decision::Linearizable => Ok(()),
        Decision::NotLinearizable => Err(Error::check_failed(format!(
            "{file}: not linearizable as the {} model ({} in the excerpt)",
            model.name(),
            crate::model::words::count(report.excerpt.len(), "operation")
        ))),
        Decision::TooLarge => Err(Error::inconclusive(format!(
            "{file}: too large to check within {}; no violation was found, none was ruled out",
            found.budget
        ))),
    }
}

/// What `--json` prints for the ZooKeeper model.
#[derive(Debug, Serialize)]
struct ZkReport<'a> {
    file: &'a str,
    /// valid or violation
    verdict: &'static str,
    model: ModelKind,
    format: Format,
    format_detected: bool,
    #[serde(flatten)]
    verdict_detail: &'a zkmodel::ZkVerdict,
    /// Each violation's excerpt, one line per operation (session, node, zxids), in the order of `violations`.
    excerpts: Vec<Vec<String>>,
    check_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    picture: Option<String>,
}

/// `zkdev check --model zk`: a zk history checked against ZooKeeper's own model.
fn run_zk(a: &CheckArgs, file: &str, text: &str) -> Result<()> {
    let format = match a.format {
        Some(f) => Some(Format::from(f)),
        None => history_formats::detect(text).ok(),
    };
    if let Some(f) = format.filter(|f| *f != Format::Zkdev) {
        return Err(Error::usage(format!(
            "{file}: the zk model reads zkdev's ZooKeeper history (`chaos --workload zk`), not the {} format: \
             check a register history with --model cas or --model register",
            f.name()
        )));
    }
    if a.initial.is_some() {
        return Err(Error::usage(
            "--initial is a register's initial value; the zk model starts from an empty tree: leave it out",
        ));
    }
    let ops = zkmodel::parse(text).map_err(|(line, e)| Error::usage(format!("{file}:{line}: {e}")))?;
    let t = Instant::now();
    let v = zkmodel::check(&ops);
    let check_ms = (t.elapsed().as_secs_f64() * 1e5).round() / 100.0;
    let mut report = ZkReport {
        file,
        verdict: if v.valid { "valid" } else { "violation" },
        model: ModelKind::Zk,
        format: Format::Zkdev,
        format_detected: a.format.is_none(),
        verdict_detail: &v,
        excerpts: v.violations.iter().map(|x| zkmodel::excerpt_lines(&ops, x)).collect(),
        check_ms,
        picture: None,
    };
    let picture = a
        .svg
        .as_deref()
        .map(|p| (p, false))
        .or(a.html.as_deref().map(|p| (p, true)));
    if let (Some((path, html)), Some(first)) = (picture, v.violations.first()) {
        draw_zk(file, &ops, first, path, html)?;
        report.picture = Some(path.display().to_string());
    }
    if a.out.json {
        output::print_json(&report);
    } else {
        crate::outln!("{file}: {} (checked in {check_ms} ms)", v.summary());
        for (x, lines) in v.violations.iter().zip(&report.excerpts) {
            crate::outln!("{}: {}", x.name, x.message);
            if let Some(cause) = &x.cause {
                crate::outln!("likely cause: {cause}");
            }
            for l in lines {
                crate::outln!("  {l}");
            }
        }
        if picture.is_some() && v.valid {
            crate::outln!("no violation, so no picture was drawn");
        }
        if let Some(p) = &report.picture {
            crate::outln!("picture: {p}");
        }
    }
    match v.violations.first() {
        None => Ok(()),
        Some(x) => Err(Error::check_failed(format!(
            "{file}: breaks ZooKeeper's guarantees ({}; {} in all)",
            x.name,
            crate::model::words::count(v.violations.len(), "violation")
        ))),
    }
}

/// The first violation's excerpt on a time line per session.
fn draw_zk(file: &str, ops: &[ZkOp], x: &zkmodel::Violation, path: &Path, html: bool) -> Result<()> {
    let shown: Vec<&ZkOp> = ops.iter().filter(|o| x.excerpt.contains(&o.id)).collect();
    let mut sessions: Vec<&str> = shown.iter().map(|o| o.session.as_str()).collect();
    sessions.sort_unstable();
    sessions.dedup();
    let rows: Vec<String> = sessions.iter().map(|s| format!("session {s}")).collect();
    let steps: Vec<svg::Step> = shown
        .iter()
        .map(|o| svg::Step {
            row: sessions.iter().position(|s| *s == o.session).unwrap_or(0),
            start: o.call_us,
            end: o.ret_us,
            outcome: match o.outcome {
                zkmodel::Outcome::Ok => 'o',
                zkmodel::Outcome::Fail => 'f',
                zkmodel::Outcome::Unknown => 'u',
            },
            label: format!("#{} {} {}", o.id, o.f.as_str(), o.path),
            title: zkmodel::describe(o),
        })
        .collect();
    let title = format!("{file}: {} ({})", x.name, x.message);
    let time = |t: u64| format!("{:.3} s", t as f64 / 1e6);
    let picture = svg::excerpt(&title, &rows, &steps, &time);
    let text = if html {
        let table: String = shown
            .iter()
            .map(|o| format!("<tr><td>{}</td></tr>\n", escape(&zkmodel::describe(o))))
            .collect();
        html_page(&title, "", &picture, "", &table)
    } else {
        picture
    };
    std::fs::write(path, text).map_err(|e| Error::io("cannot write", path, e))
}

fn print_text(h: &History, r: &Report, found: &Finding, asked_picture: bool) {
    crate::outln!(
        "{}: {} ({} format{}), {} model: {} (checked in {} ms)",
        r.file,
        crate::model::words::count(r.ops, "operation"),
        r.format.name(),
        if r.format_detected {
            ", told from the content"
        } else {
            ""
        },
        r.model.name(),
        match found.decision {
            Decision::Linearizable => "linearizable",
            Decision::NotLinearizable => "NOT linearizable",
            Decision::TooLarge => "inconclusive (too large)",
        },
        r.check_ms
    );
    if found.decision != Decision::NotLinearizable {
        if asked_picture {
            crate::outln!("no violation, so no picture was drawn");
        }
        return;
    }
    if let Some(reason) = &r.reason {
        crate::outln!("{reason}");
    }
    crate::outln!(
        "the {} below cannot be linearized together{}:",
        crate::model::words::count(r.excerpt.len(), "operation"),
        r.key.as_deref().map_or(String::new(), |k| format!(" (register {k})"))
    );
    let rows: Vec<[String; 3]> = r
        .excerpt
        .iter()
        .map(|s| {
            let who = if r.format == Format::Zkdev {
                format!("client {}", s.process)
            } else {
                format!("process {}", s.process)
            };
            let what = if s.key.is_empty() || r.key.is_some() {
                format!("{} -> {}", s.op, s.result)
            } else {
                format!("{}: {} -> {}", s.key, s.op, s.result)
            };
            [who, check::when(h, s), what]
        })
        .collect();
    let w0 = rows.iter().map(|c| c[0].len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|c| c[1].len()).max().unwrap_or(0);
    for [who, when, what] in rows {
        crate::outln!("  {who:<w0$}  {when:<w1$}  {what}");
    }
    if let Some(p) = &r.picture {
        crate::outln!("picture: {p}");
    }
}

/// The excerpt on a time line per process, as an SVG or a self-contained HTML page.
fn draw(h: &History, r: &Report, path: &Path, html: bool) -> Result<()> {
    let mut procs: Vec<&str> = r.excerpt.iter().map(|s| s.process.as_str()).collect();
    procs.sort_by_key(|p| (p.parse::<i64>().unwrap_or(i64::MAX), p.to_string()));
    procs.dedup();
    let who = if h.timed() { "client" } else { "process" };
    let rows: Vec<String> = procs.iter().map(|p| format!("{who} {p}")).collect();
    let mut lines: HashMap<u64, usize> = HashMap::new();
    let steps: Vec<svg::Step> = r
        .excerpt
        .iter()
        .map(|s| {
            lines.insert(s.call, s.line);
            if let (Some(t), Some(l)) = (s.ret, s.ret_line) {
                lines.insert(t, l);
            }
            svg::Step {
                row: procs.iter().position(|p| *p == s.process).unwrap_or(0),
                start: s.call,
                end: s.ret,
                outcome: match s.result.as_str() {
                    "unknown" => 'u',
                    "refused" => 'r',
                    "failed" | "no znode" => 'f',
                    _ => 'o',
                },
                label: if s.op == "read" {
                    format!("read -> {}", s.result)
                } else {
                    format!("{} -> {}", s.op, s.result)
                },
                title: format!("{who} {}, {}", s.process, check::when(h, s)),
            }
        })
        .collect();
    let timed = h.timed();
    let time = move |t: u64| {
        if timed {
            format!("{:.3} s", t as f64 / 1e6)
        } else {
            lines.get(&t).map_or(String::new(), |l| format!("line {l}"))
        }
    };
    let title = format!(
        "{}: not linearizable as the {} model ({} format)",
        r.file,
        r.model.name(),
        r.format.name()
    );
    let picture = svg::excerpt(&title, &rows, &steps, &time);
    let text = if html {
        let mut table = String::new();
        for s in &r.excerpt {
            table.push_str(&format!(
                "<tr><td>{who} {}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(&s.process),
                escape(&check::when(h, s)),
                escape(&s.op),
                escape(&s.result)
            ));
        }
        let reason = r
            .reason
            .as_deref()
            .unwrap_or("These operations cannot be linearized together.");
        html_page(
            &title,
            &format!("<p>{}</p>\n", escape(reason)),
            &picture,
            &format!("<tr><th>{who}</th><th>when</th><th>operation</th><th>answer</th></tr>"),
            &table,
        )
    } else {
        picture
    };
    std::fs::write(path, text).map_err(|e| Error::io("cannot write", path, e))
}

/// A self-contained page: the title, an introduction (HTML), the picture, and a table (its head and rows, HTML).
fn html_page(title: &str, intro: &str, picture: &str, head: &str, rows: &str) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>body{{font-family:sans-serif;margin:2em}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}</style></head>\n\
         <body><h1>{t}</h1>\n{intro}{picture}<table>{head}\n{rows}</table>\n</body></html>\n",
        t = escape(title),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `zkdev gen-history`: a generated register history on stdout.
pub fn generate(a: &GenHistoryArgs) -> Result<()> {
    let shape = simulate::Shape {
        ops: a.ops,
        clients: a.clients,
        keys: a.keys,
        unknown_percent: a.unknown_percent,
        seed: a.seed,
        tamper: a.tamper,
    };
    if a.zk {
        let mut text = String::new();
        for o in simulate::zk_history(shape) {
            text.push_str(&serde_json::to_string(&o).expect("a ZkOp serializes"));
            text.push('\n');
        }
        crate::out!("{text}");
    } else {
        crate::out!("{}", simulate::register_history(shape));
    }
    Ok(())
}
