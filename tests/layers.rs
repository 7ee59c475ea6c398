//! The layering of `src/`, checked on the sources: every violation is reported as `file:line: what`.
//!
//! Bottom to top: `error` (a leaf), `model` (pure: no I/O, no clock), then `os`, with `zk` and `dist` above
//! it, then `supervisor`, then `engine` (what a command or a Rust test does to an ensemble), then
//! `commands`; `output` (rendering helpers) and `cli` (the only code that names clap, mapping its value
//! enums onto model and engine types) are used by `commands`. Nothing below `commands` prints or exits, but for the
//! supervisor's fork (the parent exits) and its own log file. `engine` and `commands` read no field out of an
//! untyped JSON value (`v["leader"]`: supervisor replies and status are typed) and never run zkdev's own binary
//! again (`current_exe`: a scenario step is an engine call; only the supervisor's spawn starts zkdev). Test
//! code (`#[cfg(test)]` items) is not checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each part of `src/` may import from the crate.
fn allowed(unit: &str) -> Option<&'static [&'static str]> {
    Some(match unit {
        "error" => &[],
        "model" => &["error"],
        "os" => &["model", "error"],
        "zk" | "dist" => &["model", "os", "error"],
        "supervisor" => &["model", "os", "zk", "dist", "error"],
        "engine" => &["model", "os", "zk", "dist", "supervisor", "error"],
        "output" => &["model", "error"],
        "cli" => &["model", "engine", "error"],
        "commands" => &[
            "model",
            "os",
            "zk",
            "dist",
            "supervisor",
            "engine",
            "output",
            "cli",
            "error",
        ],
        // The crate root and the binary see everything.
        "lib" | "main" => return None,
        _ => &[],
    })
}

/// The parts that must not print to stdout/stderr nor exit the process.
const QUIET: &[&str] = &["error", "model", "os", "zk", "dist", "supervisor", "engine"];
const PRINTS: &[&str] = &[
    "eprintln!",
    "println!",
    "eprint!",
    "print!",
    "dbg!",
    "process::exit",
    "io::stdout()",
    "io::stderr()",
];
/// The allowed exceptions: (file, text on the line, why).
const PRINT_EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "supervisor/start.rs",
        "std::process::exit(0)",
        "the fork's parent exits; the child is the supervisor",
    ),
    (
        "supervisor/start.rs",
        "eprintln!(\"{line}\")",
        "the supervisor's stderr is its own log file",
    ),
];
/// What pure code must not do: files, clocks, the environment, processes, sockets, async I/O.
const IMPURE: &[&str] = &[
    "std::fs",
    "fs::",
    "File::",
    "OpenOptions",
    "SystemTime::now",
    "Instant::now",
    "clock_gettime",
    "std::env",
    "env::var",
    "std::process",
    "Command::new",
    "TcpStream",
    "UdpSocket",
    "TcpListener",
    "tokio::",
    "nix::",
    "/dev/",
    "std::io::stdin",
];

/// Which layer a file under `src/` belongs to: its folder, or the file's own name at the top.
fn unit_of(rel: &Path) -> String {
    let mut parts = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned());
    let first = parts.next().unwrap_or_default();
    if parts.next().is_some() {
        first
    } else {
        first.trim_end_matches(".rs").to_string()
    }
}

/// The source's code lines (1-based), with comments, string and char literals blanked and `#[cfg(test)]`
/// items dropped.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_block_comment = false;
    // Dropping a test item: (braces open, whether its body has started).
    let mut skipping: Option<(i32, bool)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = blank(raw, &mut in_block_comment);
        if skipping.is_none() && line.trim_start().starts_with("#[cfg(test)]") {
            skipping = Some((0, false));
        }
        if let Some((depth, started)) = skipping.as_mut() {
            for c in line.chars() {
                match c {
                    '{' => {
                        *depth += 1;
                        *started = true;
                    }
                    '}' => *depth -= 1,
                    _ => {}
                }
            }
            let ended_without_body = !*started && line.trim_end().ends_with(';');
            if (*started && *depth <= 0) || ended_without_body {
                skipping = None;
            }
            continue;
        }
        out.push((i + 1, line));
    }
    out
}

/// `raw` with comments and the insides of string and char literals replaced by spaces.
fn blank(raw: &str, in_block_comment: &mut bool) -> String {
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if *in_block_comment {
            if c == '*' && next == Some('/') {
                *in_block_comment = false;
                i += 1;
            }
            i += 1;
            continue;
        }
        match c {
            '/' if next == Some('/') => break,
            '/' if next == Some('*') => {
                *in_block_comment = true;
                i += 2;
                continue;
            }
            '"' => {
                // Keep the quotes, blank the contents (a string may hold `{`, `//` or `crate::`).
                out.push('"');
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    out.push(' ');
                    i += 1;
                }
                out.push('"');
            }
            // A char literal ('{', '\n'), not a lifetime ('a).
            '\'' if chars.get(i + 2) == Some(&'\'') => {
                out.push_str("' '");
                i += 2;
            }
            '\'' if next == Some('\\') => {
                out.push('\'');
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                out.push('\'');
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Every `crate::X` the code names (also each X of `use crate::{X, Y::..}`), with its line.
fn imports(lines: &[(usize, String)]) -> Vec<(usize, String)> {
    let mut text = String::new();
    let mut line_of = Vec::new();
    for (n, l) in lines {
        for _ in 0..=l.len() {
            line_of.push(*n);
        }
        text.push_str(l);
        text.push('\n');
    }
    let bytes = text.as_bytes();
    let ident_at = |mut i: usize| {
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        (text[start..i].to_string(), i)
    };
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("crate::") {
        let at = from + at;
        from = at + "crate::".len();
        // `zkdev_crate::` or `some_crate::` is not ours.
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        if bytes.get(from) == Some(&b'{') {
            // A group: the first identifier of each top-level item.
            let mut depth = 0;
            let mut i = from + 1;
            let mut item_start = true;
            while i < bytes.len() {
                match bytes[i] {
                    b'{' => depth += 1,
                    b'}' if depth == 0 => break,
                    b'}' => depth -= 1,
                    b',' if depth == 0 => item_start = true,
                    b if item_start && (b.is_ascii_alphabetic() || b == b'_') => {
                        let (name, _) = ident_at(i);
                        found.push((line_of[i], name));
                        item_start = false;
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            let (name, _) = ident_at(from);
            found.push((line_of[at], name));
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every violation in the sources under `src`, as `file:line: what`, and the import counts per layer.
fn check(src: &Path) -> (Vec<String>, BTreeMap<(String, String), usize>) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let units: BTreeSet<String> = files.iter().map(|f| unit_of(f.strip_prefix(src).unwrap())).collect();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut first_edge: BTreeMap<(String, String), String> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(src).unwrap();
        let shown = format!("src/{}", rel.display());
        let unit = unit_of(rel);
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("cannot read {shown}: {e}"));
        let lines = code_lines(&text);
        for (n, target) in imports(&lines) {
            if target == unit || !units.contains(&target) {
                continue;
            }
            *edges.entry((unit.clone(), target.clone())).or_default() += 1;
            first_edge
                .entry((unit.clone(), target.clone()))
                .or_insert(format!("{shown}:{n}"));
            if let Some(ok) = allowed(&unit) {
                if !ok.contains(&target.as_str()) {
                    problems.push(format!(
                        "{shown}:{n}: `{unit}` imports `crate::{target}` (it may import: {ok:?})"
                    ));
                }
            }
        }
        let clap_ok = matches!(rel.to_str(), Some("cli.rs" | "main.rs"));
        for (n, line) in &lines {
            if !clap_ok && (line.contains("clap::") || line.contains("clap_complete::") || line.contains("use clap")) {
                problems.push(format!("{shown}:{n}: names clap outside cli.rs: `{}`", line.trim()));
            }
            if QUIET.contains(&unit.as_str()) {
                let excepted = PRINT_EXCEPTIONS
                    .iter()
                    .any(|(f, needle, _)| rel.ends_with(f) && raw_line(&text, *n).contains(needle));
                if let Some(p) = PRINTS.iter().find(|p| has_word(line, p)).filter(|_| !excepted) {
                    problems.push(format!(
                        "{shown}:{n}: `{unit}` prints or exits (`{p}`); return it instead"
                    ));
                }
            }
            if matches!(unit.as_str(), "commands" | "engine") {
                // A supervisor reply or a status read as an untyped JSON value (`v["leader"]`): read a type.
                if untyped_lookup(line) {
                    problems.push(format!(
                        "{shown}:{n}: `{unit}` looks a field up in an untyped JSON value: `{}`; read a typed reply \
                         (`ask_for::<R>`) or struct instead",
                        line.trim()
                    ));
                }
                // zkdev run again as a child process: call the engine in process (only the supervisor's spawn
                // may start zkdev's own binary).
                if has_word(line, "current_exe") {
                    problems.push(format!(
                        "{shown}:{n}: `{unit}` finds zkdev's own binary (`current_exe`), to run it again: call the \
                         engine instead"
                    ));
                }
            }
            if unit == "model" {
                if let Some(p) = IMPURE.iter().find(|p| has_word(line, p)) {
                    problems.push(format!("{shown}:{n}: model is pure but uses `{p}`: `{}`", line.trim()));
                }
            }
        }
    }
    for ((a, b), at) in &first_edge {
        if a < b && first_edge.contains_key(&(b.clone(), a.clone())) {
            let back = &first_edge[&(b.clone(), a.clone())];
            problems.push(format!("{at}: `{a}` and `{b}` import each other (and {back})"));
        }
    }
    (problems, edges)
}

/// `x["key"]`, `x[0]["key"]`, `f()["key"]`: an index by a string literal (strings are blanked, quotes kept),
/// not an array literal (`&["a", "b"]`, `vec!["a"]`).
fn untyped_lookup(line: &str) -> bool {
    line.match_indices("[\"").any(|(i, _)| {
        line[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | ']' | ')'))
    })
}

/// `line` holds `word`, not as the start of a longer name (`process::exit`, not `process::exited`).
fn has_word(line: &str, word: &str) -> bool {
    line.match_indices(word).any(|(i, _)| {
        let after = line[i + word.len()..].chars().next();
        !word.ends_with(|c: char| c.is_alphanumeric()) || !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

fn raw_line(text: &str, n: usize) -> &str {
    text.lines().nth(n - 1).unwrap_or("")
}

#[test]
fn the_layers_hold() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (problems, edges) = check(&src);
    let counts: Vec<String> = edges.iter().map(|((a, b), n)| format!("{a} -> {b}: {n}")).collect();
    assert!(
        problems.is_empty(),
        "{} layering violation(s):\n{}\n\nimports per layer:\n{}",
        problems.len(),
        problems.join("\n"),
        counts.join("\n")
    );
}

/// The checker itself finds what it must (a checker that cannot fail checks nothing).
#[test]
fn the_checker_reports_each_kind_of_violation() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |rel: &str, text: &str| {
        let p = src.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "model/a.rs",
        "use crate::{error::Result, os::state};\n// crate::zk in a comment is fine\nfn f() { let s = \"crate::dist\"; \
         std::fs::read(\"x\"); }\n#[cfg(test)]\nmod tests {\n    use crate::os::x;\n    fn g() { println!(\"{}\", '{'); }\n}\n",
    );
    write(
        "os/b.rs",
        "use crate::model::a;\nfn f() { eprintln!(\"hi\"); }\nfn g(s: &S) -> bool { process::exited(s) }\n",
    );
    write("os/c.rs", "#[derive(clap::ValueEnum)]\nenum E { A }\n");
    write(
        "supervisor/start.rs",
        "fn d() { std::process::exit(0) }\nfn log(line: &str) { eprintln!(\"{line}\"); }\n",
    );
    write("error.rs", "");
    write("zk/d.rs", "use crate::dist::x;\n");
    write(
        "commands/f.rs",
        "fn f(v: &Value) -> bool { v[\"ok\"] == true && v[\"nodes\"][0][\"id\"] == 1 }\nfn g() -> [&'static str; 2] { let _ = vec![\"x\"]; [\"a\", \"b\"] }\nfn h() { let t = output::table(&[\"A\"], &[]); }\n",
    );
    write(
        "engine/g.rs",
        "fn run() { let exe = std::env::current_exe(); Command::new(exe).arg(\"wait\"); }\n",
    );
    write("dist/e.rs", "use crate::zk::y;\n");
    let (problems, _) = check(src);
    let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
    assert!(has("src/model/a.rs:1: `model` imports `crate::os`"), "{problems:#?}");
    assert!(
        has("src/model/a.rs:3: model is pure but uses `std::fs`"),
        "{problems:#?}"
    );
    assert!(
        has("src/os/b.rs:2: `os` prints or exits (`eprintln!`)"),
        "{problems:#?}"
    );
    assert!(has("src/os/c.rs:1: names clap outside cli.rs"), "{problems:#?}");
    assert!(has("`dist` and `zk` import each other"), "{problems:#?}");
    assert!(has("src/zk/d.rs:1: `zk` imports `crate::dist`"), "{problems:#?}");
    // Not reported: comments, strings, test code, `crate::error`, and the supervisor's two exceptions.
    assert!(!has("src/model/a.rs:2"), "{problems:#?}");
    assert!(
        !problems
            .iter()
            .any(|p| p.contains("src/model/a.rs:6") || p.contains("src/model/a.rs:7")),
        "{problems:#?}"
    );
    assert!(
        !problems.iter().any(|p| p.contains("supervisor/start.rs")),
        "{problems:#?}"
    );
    assert!(!has("crate::error"), "{problems:#?}");
    assert!(has("`model` and `os` import each other"), "{problems:#?}");
    assert!(
        has("src/commands/f.rs:1: `commands` looks a field up in an untyped JSON value"),
        "{problems:#?}"
    );
    assert!(
        !has("src/commands/f.rs:2") && !has("src/commands/f.rs:3"),
        "{problems:#?}"
    );
    assert!(
        has("src/engine/g.rs:1: `engine` finds zkdev's own binary (`current_exe`)"),
        "{problems:#?}"
    );
    assert_eq!(problems.len(), 10, "{problems:#?}");
}
