//! The book's command reference is generated from the clap definitions in src/cli.rs, the same ones `--help`
//! prints; these tests fail when the checked-in file is stale, when it lacks a command that `--help` lists,
//! and when a link in the book or the README points nowhere. No ZooKeeper is needed.
//!
//! Regenerate the reference after changing src/cli.rs with the one command in `REGENERATE`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use assert_cmd::Command;

const REFERENCE: &str = "docs/src/reference/cli.md";
const REGENERATE: &str = "ZKDEV_REGENERATE_REFERENCE=1 cargo test --test reference";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The reference as src/cli.rs defines it now.
fn generated() -> String {
    let options = clap_markdown::MarkdownOptions::new()
        .title("Command-line reference".to_string())
        .show_footer(false);
    let body = clap_markdown::help_markdown_custom::<zkdev::cli::Cli>(&options);
    format!(
        "<!-- Generated from src/cli.rs (the --help text); do not edit by hand. Regenerate with:\n     \
         {REGENERATE} -->\n\n{}\n",
        body.trim_end()
    )
}

#[test]
fn the_checked_in_reference_is_the_generated_one() {
    let path = root().join(REFERENCE);
    let fresh = generated();
    if std::env::var_os("ZKDEV_REGENERATE_REFERENCE").is_some() {
        std::fs::write(&path, &fresh).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("wrote {REFERENCE}");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != fresh {
        let (line, old, new) = current
            .lines()
            .chain(std::iter::repeat(""))
            .zip(fresh.lines().chain(std::iter::repeat("")))
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| (i + 1, a, b))
            .unwrap_or((0, "", ""));
        panic!(
            "{REFERENCE} is stale: src/cli.rs (the --help text) changed since it was generated.\n\
             first difference at line {line}:\n  checked in: {old}\n  generated:  {new}\n\
             regenerate it with: {REGENERATE}"
        );
    }
}

/// Runs the built binary: `zkdev ARGS --help`.
fn help(args: &[&str]) -> String {
    let out = Command::cargo_bin("zkdev")
        .expect("binary built")
        .args(args)
        .arg("--help")
        .env("COLUMNS", "100")
        .output()
        .expect("zkdev runs");
    assert!(out.status.success(), "zkdev {} --help failed", args.join(" "));
    String::from_utf8(out.stdout).expect("utf-8 help")
}

/// The subcommands a `--help` lists under `Commands:` (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Walks `--help` of the real binary, command by command: every command it lists has its section in the
/// checked-in reference, with the same description and every long flag `--help` shows.
#[test]
fn the_reference_matches_help_for_every_command() {
    let reference = std::fs::read_to_string(root().join(REFERENCE)).expect("the reference is checked in");
    let flat = squash(&reference);
    let mut todo: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    while let Some(path) = todo.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&args);
        let name = std::iter::once("zkdev")
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        let section = format!("## `{name}`");
        assert!(
            path.is_empty() || reference.contains(&section),
            "`{name} --help` exists but {REFERENCE} has no section `{section}`; regenerate it with: {REGENERATE}"
        );
        // The first paragraph of --help is the command's description.
        let about = squash(&text.split("\n\n").next().unwrap_or_default().replace("\n", " "));
        assert!(
            flat.contains(&about),
            "{REFERENCE} lacks the description `{name} --help` prints (`{about}`); regenerate it with: {REGENERATE}"
        );
        // Every option line (`  -c, --cluster <NAME>  ...`) names a flag the reference documents too.
        let options = text
            .lines()
            .filter(|l| l.starts_with("  -") || (l.starts_with("      --") && !l.starts_with("       ")));
        for line in options {
            let Some(flag) = line.split([' ', ',', '=', '[', '<']).find(|w| w.starts_with("--")) else {
                continue;
            };
            if flag != "--help" && flag != "--version" {
                assert!(
                    reference.contains(&format!("`{flag}")),
                    "`{name} --help` shows {flag}, {REFERENCE} does not; regenerate it with: {REGENERATE}"
                );
            }
        }
        for sub in subcommands(&text) {
            let mut next = path.clone();
            next.push(sub);
            todo.push(next);
        }
        seen += 1;
    }
    assert!(
        seen > 30,
        "walked only {seen} commands: did the `Commands:` format of --help change?"
    );
}

/// mdBook's id for a heading: its text lower-cased, spaces to `-`, anything but letters, digits, `-` and `_`
/// dropped (GitHub does the same for the README).
fn heading_id(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                Some(c.to_ascii_lowercase())
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// The ids of a Markdown file's headings (outside code blocks), with mdBook's `-1`, `-2` for repeats.
fn heading_ids(text: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut fence = false;
    for line in text.lines() {
        if line.starts_with("```") {
            fence = !fence;
        }
        if fence || !line.starts_with('#') {
            continue;
        }
        let id = heading_id(line.trim_start_matches('#').trim());
        let n = counts.entry(id.clone()).or_default();
        ids.insert(if *n == 0 { id.clone() } else { format!("{id}-{n}") });
        *n += 1;
    }
    ids
}

/// Every `](target)` of a Markdown file outside code blocks and inline code.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut fence = false;
    for (n, line) in text.lines().enumerate() {
        if line.starts_with("```") {
            fence = !fence;
        }
        if fence {
            continue;
        }
        // Drop inline code spans, which may hold `](` as text.
        let plain: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = plain.as_str();
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            if let Some(end) = rest.find(')') {
                found.push((n + 1, rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
    }
    found
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable docs") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// mdBook 0.4 builds a book with a broken link without a word, so this test is the link check: every
/// relative link in docs/src and the README names a file that exists and, with `#id`, a heading in it.
#[test]
fn every_link_in_the_book_and_the_readme_resolves() {
    let mut files = vec![root().join("README.md")];
    markdown_files(&root().join("docs/src"), &mut files);
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable markdown");
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let dest = if path.is_empty() {
                file.clone()
            } else {
                file.parent().expect("a parent").join(path)
            };
            let shown = file.strip_prefix(root()).unwrap_or(file).display().to_string();
            if !dest.exists() {
                broken.push(format!("{shown}:{line}: {target}: no such file"));
                continue;
            }
            if let Some(anchor) = anchor {
                let ids = heading_ids(&std::fs::read_to_string(&dest).unwrap_or_default());
                if !ids.contains(anchor) {
                    broken.push(format!("{shown}:{line}: {target}: no heading with that id"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// Every chapter in docs/src is in SUMMARY.md (mdBook would not build it otherwise, and a page nobody can
/// reach is a page lost).
#[test]
fn every_chapter_is_in_the_summary() {
    let src = root().join("docs/src");
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).expect("SUMMARY.md");
    let listed: BTreeSet<String> = links(&summary).into_iter().map(|(_, t)| t).collect();
    let mut files = Vec::new();
    markdown_files(&src, &mut files);
    for file in files {
        let rel = file
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if rel != "SUMMARY.md" {
            assert!(listed.contains(&rel), "docs/src/{rel} is not in docs/src/SUMMARY.md");
        }
    }
}
