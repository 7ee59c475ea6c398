//! A chaos run (and a violation's excerpt, `excerpt`) drawn as an SVG a person opens in a browser: one row per client with every operation as a
//! bar from invocation to completion (green ok, red failed, orange unknown: drawn to the end of the run),
//! one row per fault from injection to heal, and the unavailability windows shaded across all rows. Pure:
//! the caller writes the string to a file.

use std::fmt::Write as _;

/// One operation: its row (client), its span, and how it ended: 'o' ok, 'r' refused (a CAS on a stale
/// version: an answer, not an error), 'f' failed, 'u' unknown (drawn until the client stopped waiting).
pub struct Span {
    pub row: u32,
    pub start_us: u64,
    pub end_us: Option<u64>,
    pub outcome: char,
    /// Shown when the pointer rests on the bar.
    pub title: String,
}

/// One fault, from injection to heal.
pub struct Bar {
    pub label: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

const LEFT: f64 = 110.0;
const WIDTH: f64 = 1200.0;
const ROW: f64 = 18.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The timeline of a run of `duration_ms` with `clients` rows of operations.
pub fn timeline(
    title: &str,
    duration_ms: u64,
    clients: u32,
    ops: &[Span],
    faults: &[Bar],
    gaps: &[(u64, u64)],
) -> String {
    let total_us = (duration_ms.max(1) * 1000) as f64;
    let x = |us: u64| LEFT + (us as f64 / total_us).min(1.0) * WIDTH;
    let fault_top = 40.0 + f64::from(clients) * ROW + 10.0;
    let height = fault_top + faults.len() as f64 * ROW + 40.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="11">"#,
        LEFT + WIDTH + 20.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="10" y="16" font-size="13">{}</text>"#, escape(title));
    for (a, b) in gaps {
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="24" width="{:.1}" height="{:.1}" fill="#ddd"><title>unavailable {a}-{b} ms</title></rect>"##,
            x(a * 1000),
            (x(b * 1000) - x(a * 1000)).max(1.0),
            height - 50.0
        );
    }
    // Seconds along the top.
    let step = (duration_ms / 10_000).max(1) * 1000;
    for t in (0..=duration_ms).step_by(step as usize) {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="26" y2="{1:.1}" stroke="#eee"/><text x="{0:.1}" y="34" fill="#666">{2} s</text>"##,
            x(t * 1000),
            height - 26.0,
            t / 1000
        );
    }
    for c in 0..clients {
        let _ = writeln!(
            s,
            r#"<text x="10" y="{:.1}">client {c}</text>"#,
            40.0 + f64::from(c) * ROW + 12.0
        );
    }
    // Successful operations that touch within half a pixel on a row are drawn as one bar (a run has
    // thousands); failed and unknown ones are drawn each with its own tooltip.
    let mut ok_runs: Vec<(u32, f64, f64, usize)> = Vec::new();
    let mut sorted: Vec<&Span> = ops.iter().collect();
    sorted.sort_by_key(|o| (o.row, o.start_us));
    for op in sorted {
        let y = 40.0 + f64::from(op.row) * ROW + 3.0;
        let (color, end) = match op.outcome {
            'o' => ("#2a2", op.end_us.unwrap_or(op.start_us)),
            'r' => ("#9bd", op.end_us.unwrap_or(op.start_us)),
            'f' => ("#d22", op.end_us.unwrap_or(op.start_us)),
            _ => ("#f90", op.end_us.unwrap_or(duration_ms * 1000)),
        };
        let (x0, x1) = (x(op.start_us), x(end).max(x(op.start_us) + 0.6));
        if op.outcome == 'o' {
            match ok_runs.last_mut() {
                Some((row, _, to, n)) if *row == op.row && x0 <= *to + 0.5 && x1 >= *to => {
                    *to = to.max(x1);
                    *n += 1;
                }
                _ => ok_runs.push((op.row, x0, x1, 1)),
            }
            continue;
        }
        let _ = writeln!(
            s,
            r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="12" fill="{color}"><title>{}</title></rect>"#,
            x1 - x0,
            escape(&op.title)
        );
    }
    for (row, x0, x1, n) in ok_runs {
        let y = 40.0 + f64::from(row) * ROW + 3.0;
        let _ = writeln!(
            s,
            r##"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="12" fill="#2a2" opacity="0.85"><title>{n} ok</title></rect>"##,
            x1 - x0
        );
    }
    for (i, f) in faults.iter().enumerate() {
        let y = fault_top + i as f64 * ROW;
        // A label that would run off the right edge goes to the left of its bar.
        let (label_x, anchor) = if x(f.end_ms * 1000) > LEFT + WIDTH * 0.7 {
            (x(f.start_ms * 1000) - 4.0, "end")
        } else {
            (x(f.end_ms * 1000) + 4.0, "start")
        };
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="14" fill="#639" opacity="0.8"><title>{}</title></rect><text x="{label_x:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"##,
            x(f.start_ms * 1000),
            (x(f.end_ms * 1000) - x(f.start_ms * 1000)).max(2.0),
            escape(&f.label),
            y + 11.0,
            escape(&f.label)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="10" y="{:.1}" fill="#444">green: ok, blue: CAS refused (stale version), red: failed, orange: no answer (unknown, until the client gave up), purple: a fault from injection to heal, grey: no operation completed</text>"##,
        height - 8.0
    );
    s.push_str("</svg>\n");
    s
}

/// One operation of a violation's excerpt: its row (process), its span, how it ended ('o' ok, 'r' refused,
/// 'f' failed, 'u' no answer: drawn to the right edge), the text on its bar and the tooltip.
pub struct Step {
    pub row: usize,
    pub start: u64,
    pub end: Option<u64>,
    pub outcome: char,
    pub label: String,
    pub title: String,
}

/// A violation's excerpt drawn as Porcupine's visualizer draws a history: one row per process (`rows`), each
/// operation a labelled bar from its invocation to its answer. The times are spread evenly in their order
/// (what matters is which operation came before which), each column marked with `time(t)` below.
pub fn excerpt(title: &str, rows: &[String], steps: &[Step], time: &dyn Fn(u64) -> String) -> String {
    const COL: f64 = 90.0;
    const LANE: f64 = 30.0;
    let mut times: Vec<u64> = steps.iter().flat_map(|s| [Some(s.start), s.end]).flatten().collect();
    times.sort_unstable();
    times.dedup();
    let rank = |t: u64| times.binary_search(&t).unwrap_or(0) as f64;
    let x = |r: f64| LEFT + 20.0 + r * COL;
    let right = x(times.len() as f64);
    let top = 44.0;
    let axis = top + rows.len() as f64 * LANE + 8.0;
    let height = axis + 46.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{:.0}" height="{height:.0}" font-family="sans-serif" font-size="11">"#,
        // Wide enough for the legend and the title.
        (right + 40.0).max(880.0).max(title.len() as f64 * 7.0 + 20.0)
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="10" y="18" font-size="13">{}</text>"#, escape(title));
    for (i, t) in times.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{top:.1}" y2="{axis:.1}" stroke="#eee"/><text x="{0:.1}" y="{1:.1}" fill="#666" text-anchor="middle">{2}</text>"##,
            x(i as f64),
            axis + 14.0,
            escape(&time(*t))
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="10" y="{:.1}">{}</text>"#,
            top + i as f64 * LANE + 19.0,
            escape(r)
        );
    }
    for st in steps {
        let y = top + st.row as f64 * LANE + 4.0;
        let x0 = x(rank(st.start));
        let x1 = st.end.map_or(right + 20.0, |e| x(rank(e)).max(x0 + 8.0));
        let color = match st.outcome {
            'o' => "#2a2",
            'r' => "#9bd",
            'f' => "#d22",
            _ => "#f90",
        };
        let dash = if st.end.is_none() {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r##"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="22" rx="3" fill="{color}" fill-opacity="0.35" stroke="{color}"{dash}><title>{}</title></rect><text x="{:.1}" y="{:.1}">{}</text>"##,
            x1 - x0,
            escape(&st.title),
            x0 + 4.0,
            y + 15.0,
            escape(&st.label)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="10" y="{:.1}" fill="#444">each bar: an operation from its invocation to its answer; green ok, blue refused, red failed, orange dashed: no answer (may take effect at any later point, or never)</text>"##,
        height - 8.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_operations_faults_and_gaps_and_escapes_text() {
        let ops = [
            Span {
                row: 0,
                start_us: 0,
                end_us: Some(500_000),
                outcome: 'o',
                title: "read r0 -> 7@1".into(),
            },
            Span {
                row: 1,
                start_us: 1_000_000,
                end_us: None,
                outcome: 'u',
                title: "cas <x>".into(),
            },
        ];
        let faults = [Bar {
            label: "isolate node 3 (leader)".into(),
            start_ms: 1000,
            end_ms: 2000,
        }];
        let svg = timeline("run & seed 7", 4000, 2, &ops, &faults, &[(1200, 1800)]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("run &amp; seed 7") && svg.contains("cas &lt;x&gt;"));
        assert_eq!(svg.matches("#2a2").count(), 1, "{svg}");
        assert_eq!(svg.matches("fill=\"#f90\"").count(), 1);
        assert!(svg.contains("isolate node 3 (leader)") && svg.contains("unavailable 1200-1800 ms"));
    }

    #[test]
    fn an_excerpt_has_a_labelled_bar_per_operation_on_its_process_row() {
        let steps = [
            Step {
                row: 0,
                start: 10,
                end: Some(40),
                outcome: 'o',
                label: "write 4".into(),
                title: "lines 10-40".into(),
            },
            Step {
                row: 1,
                start: 20,
                end: None,
                outcome: 'u',
                label: "cas [1 <2>]".into(),
                title: "no answer".into(),
            },
        ];
        let svg = excerpt(
            "not linearizable",
            &["process 0".into(), "process 1".into()],
            &steps,
            &|t| format!("line {t}"),
        );
        assert!(svg.contains(">write 4<") && svg.contains("cas [1 &lt;2&gt;]"), "{svg}");
        assert!(svg.contains("process 1") && svg.contains("line 40") && svg.contains("stroke-dasharray"));
        assert_eq!(svg.matches("<rect x=").count(), 2);
    }
}
