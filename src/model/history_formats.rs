//! Histories made elsewhere, read into one shape for `zkdev check`: zkdev's own `history.ndjson` (what
//! `chaos` writes, one JSON record a line), Jepsen's EDN operation maps (`{:process 0, :type :invoke, :f :read,
//! :value nil}`, as Knossos's data files and Jepsen's `history.edn` have them) and Jepsen's log lines
//! (`INFO  jepsen.util - 3 :ok :cas [1 2]`, as Porcupine's test data has them). The format is told from
//! the content when the caller does not name it.
//!
//! Jepsen's formats pair each `:invoke` with the next completion of the same process: `:ok` took effect,
//! `:info` (or no completion at all: a process that crashed) may or may not have. A `:fail` means "did not
//! take place" in an EDN history (as Knossos reads it); in the log lines a failed `:cas` is a refused compare
//! (the register held another value), as Porcupine reads them. Their times are the events' positions in the
//! file; zkdev's are microseconds. Operations of processes that are not numbers (`:nemesis`) are skipped.
//!
//! Pure: the caller reads the file and passes its text.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The formats `zkdev check` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// zkdev's `history.ndjson`.
    Zkdev,
    /// Jepsen's EDN operation maps.
    Edn,
    /// Jepsen's log lines, as Porcupine's test data has them.
    Porcupine,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Zkdev => "zkdev",
            Format::Edn => "edn",
            Format::Porcupine => "porcupine",
        }
    }
}

/// A register's value as a history writes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Nil,
    Int(i64),
    /// A string, keyword or anything else, as written.
    Text(String),
}

impl Value {
    /// `--initial VALUE`: nil (or nothing) is nil, a whole number is a number, anything else is text.
    pub fn parse(s: &str) -> Value {
        let s = s.trim();
        match s {
            "" | "nil" | "null" => Value::Nil,
            _ => s.parse().map_or_else(|_| Value::Text(s.to_string()), Value::Int),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => write!(f, "nil"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Text(t) => write!(f, "{t}"),
        }
    }
}

/// What an operation asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// A read and the value it saw (None: no answer).
    Read {
        saw: Option<Value>,
    },
    Write(Value),
    /// Compare-and-set: set `to` if the register holds `from`.
    Cas {
        from: Value,
        to: Value,
    },
    /// zkdev's register: `sync` + `getData`, and the value and version it saw (None: no answer, or no znode).
    VersionedRead {
        saw: Option<(u64, i32)>,
    },
    /// zkdev's register: `setData(value, expect)`.
    VersionedCas {
        expect: i32,
        value: u64,
    },
    /// Any other operation, by the name the file gives it.
    Other {
        f: String,
    },
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    Ok,
    /// A refused compare-and-set: an answer (the register held another value or version).
    Refused,
    /// zkdev's register: "no node".
    Absent,
    /// Did not take place.
    Failed,
    /// No answer: it may or may not have taken effect.
    Unknown,
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The number the file gives it (zkdev's records' `id`), if any.
    pub id: Option<usize>,
    /// The client or process that ran it.
    pub process: String,
    /// The register it was about ("" when the history has one).
    pub key: String,
    /// When it was invoked and answered: microseconds for zkdev's histories, the event's position for
    /// Jepsen's. None: no answer.
    pub call: u64,
    pub ret: Option<u64>,
    /// The file's line of its invocation (zkdev: of its record) and of its completion.
    pub line: usize,
    pub ret_line: Option<usize>,
    pub act: Act,
    pub end: End,
}

/// A history read from a file.
#[derive(Debug, Clone)]
pub struct History {
    pub format: Format,
    pub entries: Vec<Entry>,
}

impl History {
    /// Are the times microseconds (zkdev), or positions in the file (Jepsen's formats)?
    pub fn timed(&self) -> bool {
        self.format == Format::Zkdev
    }
}

/// Why a file could not be read: the line and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub line: usize,
    pub expected: String,
}

impl Unreadable {
    fn at(line: usize, expected: impl Into<String>) -> Unreadable {
        Unreadable {
            line,
            expected: expected.into(),
        }
    }
}

type Parsed<T> = std::result::Result<T, Unreadable>;

/// The format of `text`, from its first line that is neither blank nor a comment.
pub fn detect(text: &str) -> Parsed<Format> {
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start_matches('\u{feff}').trim();
        if t.is_empty() || t.starts_with(';') {
            continue;
        }
        if t.starts_with("{\"") || t == "{" {
            return Ok(Format::Zkdev);
        }
        if t.contains("jepsen.util") {
            return Ok(Format::Porcupine);
        }
        if t.starts_with('[') || t.starts_with('(') || t.starts_with('{') || t.starts_with('#') {
            return Ok(Format::Edn);
        }
        return Err(Unreadable::at(
            i + 1,
            "the start of a history: zkdev's records (a JSON object a line), Jepsen's EDN operation maps \
             ({:process 0, :type :invoke, ...}) or Jepsen's log lines (INFO jepsen.util - 0 :invoke :read nil)",
        ));
    }
    Err(Unreadable::at(1, "a history, but the file is empty"))
}

/// Read `text` as `format`.
pub fn parse(text: &str, format: Format) -> Parsed<History> {
    let entries = match format {
        Format::Zkdev => parse_zkdev(text)?,
        Format::Edn => parse_edn(text)?,
        Format::Porcupine => parse_log(text)?,
    };
    Ok(History { format, entries })
}

// ---------------------------------------------------------------------------------------------------------
// zkdev's history.ndjson

/// One line of `history.ndjson` (what `engine::workload::Record` writes).
#[derive(Debug, Deserialize)]
struct ZkRecord {
    id: Option<usize>,
    client: u32,
    f: String,
    key: String,
    call_us: u64,
    ret_us: Option<u64>,
    outcome: String,
    #[serde(default)]
    value: String,
    expect: Option<i32>,
    error: Option<String>,
}

fn parse_zkdev(text: &str) -> Parsed<Vec<Entry>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if line.trim() == "{" {
            return Err(Unreadable::at(
                n,
                "one JSON record a line (history.ndjson); chaos's history.json holds the same records as one \
                 object: give its history.ndjson instead",
            ));
        }
        let r: ZkRecord = serde_json::from_str(line).map_err(|e| {
            Unreadable::at(
                n,
                format!(
                    "a history record (a JSON object with client, f, key, call_us, ret_us, outcome, value): {}",
                    e.to_string().replace('`', "")
                ),
            )
        })?;
        let end = match r.outcome.as_str() {
            "ok" => End::Ok,
            "unknown" => End::Unknown,
            "fail" if r.value == "absent" || r.error.as_deref().is_some_and(|e| e.contains("node not exists")) => {
                End::Absent
            }
            "fail" if r.f == "cas" => End::Refused,
            "fail" => End::Failed,
            other => {
                return Err(Unreadable::at(
                    n,
                    format!("an outcome of ok, fail or unknown, found \"{other}\""),
                ))
            }
        };
        let act = match r.f.as_str() {
            "read" if end == End::Ok => {
                let saw = r
                    .value
                    .split_once('@')
                    .and_then(|(v, ver)| Some((v.parse().ok()?, ver.parse().ok()?)));
                match saw {
                    Some(s) => Act::VersionedRead { saw: Some(s) },
                    None => {
                        return Err(Unreadable::at(
                            n,
                            format!("a read's value as VALUE@VERSION (7@3), found \"{}\"", r.value),
                        ))
                    }
                }
            }
            "read" => Act::VersionedRead { saw: None },
            "cas" => {
                let Some(expect) = r.expect else {
                    return Err(Unreadable::at(n, "a cas record with its expected version (\"expect\")"));
                };
                let Ok(value) = r.value.parse() else {
                    return Err(Unreadable::at(
                        n,
                        format!("a cas record's value as a whole number, found \"{}\"", r.value),
                    ));
                };
                Act::VersionedCas { expect, value }
            }
            other => Act::Other { f: other.to_string() },
        };
        out.push(Entry {
            id: r.id,
            process: r.client.to_string(),
            key: r.key,
            call: r.call_us,
            ret: if end == End::Unknown { None } else { r.ret_us },
            line: n,
            ret_line: (end != End::Unknown).then_some(n),
            act,
            end,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------------
// EDN, as much of it as Jepsen's histories use

/// An EDN form.
#[derive(Debug, Clone, PartialEq)]
enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Keyword(String),
    Symbol(String),
    Seq(Vec<(usize, Edn)>),
    Map(Vec<(Edn, Edn)>),
}

impl Edn {
    /// As a register's value.
    fn value(&self) -> Option<Value> {
        Some(match self {
            Edn::Nil => Value::Nil,
            Edn::Int(i) => Value::Int(*i),
            Edn::Str(s) => Value::Text(format!("{s:?}")),
            Edn::Keyword(k) => Value::Text(format!(":{k}")),
            Edn::Symbol(s) => Value::Text(s.clone()),
            Edn::Bool(b) => Value::Text(b.to_string()),
            Edn::Float(x) => Value::Text(x.to_string()),
            Edn::Seq(_) | Edn::Map(_) => return None,
        })
    }

    fn get(&self, key: &str) -> Option<&Edn> {
        let Edn::Map(pairs) = self else { return None };
        pairs
            .iter()
            .find(|(k, _)| matches!(k, Edn::Keyword(x) if x == key))
            .map(|(_, v)| v)
    }
}

struct Reader<'a> {
    s: &'a [u8],
    at: usize,
    line: usize,
}

impl Reader<'_> {
    fn new(s: &str) -> Reader<'_> {
        Reader {
            s: s.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    fn skip_space(&mut self) {
        while let Some(&c) = self.s.get(self.at) {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.at += 1;
                }
                b' ' | b'\t' | b'\r' | b',' => self.at += 1,
                b';' => {
                    while self.s.get(self.at).is_some_and(|&c| c != b'\n') {
                        self.at += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// The next form and the line it starts on; None at the end or before a closing bracket.
    fn form(&mut self) -> Parsed<Option<(usize, Edn)>> {
        self.skip_space();
        let line = self.line;
        let Some(&c) = self.s.get(self.at) else {
            return Ok(None);
        };
        let form = match c {
            b')' | b']' | b'}' => return Ok(None),
            b'(' | b'[' => {
                self.at += 1;
                Edn::Seq(self.items(if c == b'(' { b')' } else { b']' }, line)?)
            }
            b'{' => {
                self.at += 1;
                let items = self.items(b'}', line)?;
                if items.len() % 2 == 1 {
                    return Err(Unreadable::at(line, "a map with a value for every key"));
                }
                let mut pairs = Vec::new();
                let mut it = items.into_iter();
                while let (Some((_, k)), Some((_, v))) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                Edn::Map(pairs)
            }
            b'#' => {
                self.at += 1;
                match self.s.get(self.at) {
                    Some(b'{') => {
                        self.at += 1;
                        Edn::Seq(self.items(b'}', line)?)
                    }
                    Some(b'_') => {
                        // #_ discards the next form.
                        self.at += 1;
                        self.form()?;
                        return self.form();
                    }
                    _ => {
                        // A tagged literal (#inst "...", #jepsen.history.Op{...}): the tag, then its form.
                        self.atom();
                        return self.form();
                    }
                }
            }
            b'"' => self.string(line)?,
            _ => {
                let word = self.atom();
                if word.is_empty() {
                    return Err(Unreadable::at(line, format!("an EDN form, found '{}'", c as char)));
                }
                word_form(&word)
            }
        };
        Ok(Some((line, form)))
    }

    fn items(&mut self, close: u8, opened: usize) -> Parsed<Vec<(usize, Edn)>> {
        let mut out = Vec::new();
        loop {
            if let Some(f) = self.form()? {
                out.push(f);
                continue;
            }
            match self.s.get(self.at) {
                Some(&c) if c == close => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(&c) => {
                    return Err(Unreadable::at(
                        self.line,
                        format!(
                            "'{}' to close what line {opened} opened, found '{}'",
                            close as char, c as char
                        ),
                    ))
                }
                None => {
                    return Err(Unreadable::at(
                        self.line,
                        format!(
                            "'{}' to close what line {opened} opened, found the end of the file",
                            close as char
                        ),
                    ))
                }
            }
        }
    }

    fn atom(&mut self) -> String {
        let start = self.at;
        while let Some(&c) = self.s.get(self.at) {
            if c.is_ascii_whitespace() || b",;()[]{}\"".contains(&c) {
                break;
            }
            self.at += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.at]).into_owned()
    }

    fn string(&mut self, line: usize) -> Parsed<Edn> {
        self.at += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.at) {
            self.at += 1;
            match c {
                b'"' => return Ok(Edn::Str(String::from_utf8_lossy(&out).into_owned())),
                b'\\' => {
                    if let Some(&e) = self.s.get(self.at) {
                        self.at += 1;
                        out.push(match e {
                            b'n' => b'\n',
                            b't' => b'\t',
                            other => other,
                        });
                    }
                }
                b'\n' => {
                    self.line += 1;
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
        Err(Unreadable::at(
            line,
            "a closing '\"' for the string opened here, found the end of the file",
        ))
    }
}

fn word_form(w: &str) -> Edn {
    match w {
        "nil" => Edn::Nil,
        "true" => Edn::Bool(true),
        "false" => Edn::Bool(false),
        _ if w.starts_with(':') => Edn::Keyword(w[1..].to_string()),
        _ => {
            let digits = w.trim_end_matches('N');
            if let Ok(i) = digits.parse() {
                Edn::Int(i)
            } else if let Ok(x) = w.trim_end_matches('M').parse() {
                Edn::Float(x)
            } else {
                Edn::Symbol(w.to_string())
            }
        }
    }
}

/// What one event of a Jepsen history says.
struct Event {
    line: usize,
    process: String,
    kind: String,
    f: String,
    value: Edn,
}

/// Pairs invocations with completions (Jepsen's rules, see the module's note).
struct Pairing {
    out: Vec<Entry>,
    open: HashMap<String, usize>,
    time: u64,
    /// A failed `:cas` is a refused compare (the log lines) rather than "did not take place" (EDN).
    fail_is_refusal: bool,
}

impl Pairing {
    fn new(fail_is_refusal: bool) -> Pairing {
        Pairing {
            out: Vec::new(),
            open: HashMap::new(),
            time: 0,
            fail_is_refusal,
        }
    }

    fn event(&mut self, e: Event) -> Parsed<()> {
        if e.process.parse::<i64>().is_err() {
            return Ok(()); // the nemesis, or another non-client process
        }
        self.time += 1;
        let t = self.time;
        if e.kind == "invoke" {
            if let Some(i) = self.open.remove(&e.process) {
                // Invoked again without a completion: the earlier one's outcome is unknown.
                self.out[i].end = End::Unknown;
            }
            let act = match e.f.as_str() {
                "read" => Act::Read { saw: None },
                "write" => Act::Write(
                    e.value
                        .value()
                        .ok_or_else(|| Unreadable::at(e.line, "a :write's value (a number, string, keyword or nil)"))?,
                ),
                "cas" => cas_value(&e.value).ok_or_else(|| Unreadable::at(e.line, "a :cas's value as [old new]"))?,
                other => Act::Other { f: format!(":{other}") },
            };
            self.open.insert(e.process.clone(), self.out.len());
            self.out.push(Entry {
                id: None,
                process: e.process,
                key: String::new(),
                call: t,
                ret: None,
                line: e.line,
                ret_line: None,
                act,
                end: End::Unknown,
            });
            return Ok(());
        }
        let end = match e.kind.as_str() {
            "ok" => End::Ok,
            "info" => End::Unknown,
            "fail" if self.fail_is_refusal && e.f == "cas" => End::Refused,
            "fail" => End::Failed,
            other => {
                return Err(Unreadable::at(
                    e.line,
                    format!(":type :invoke, :ok, :fail or :info, found :{other}"),
                ))
            }
        };
        let Some(i) = self.open.remove(&e.process) else {
            if end == End::Unknown {
                return Ok(()); // an :info of its own (a process's note), no operation of it open
            }
            return Err(Unreadable::at(
                e.line,
                format!(
                    "an :invoke of process {} before this :{} (none is open)",
                    e.process, e.kind
                ),
            ));
        };
        let entry = &mut self.out[i];
        entry.end = end;
        if end != End::Unknown {
            entry.ret = Some(t);
            entry.ret_line = Some(e.line);
        }
        if let (Act::Read { saw }, End::Ok) = (&mut entry.act, end) {
            *saw = Some(
                e.value
                    .value()
                    .ok_or_else(|| Unreadable::at(e.line, "a :read's value (a number, string, keyword or nil)"))?,
            );
        }
        Ok(())
    }
}

fn cas_value(v: &Edn) -> Option<Act> {
    let Edn::Seq(items) = v else { return None };
    match items.as_slice() {
        [(_, a), (_, b)] => Some(Act::Cas {
            from: a.value()?,
            to: b.value()?,
        }),
        _ => None,
    }
}

fn word(e: Option<&Edn>) -> Option<String> {
    match e? {
        Edn::Keyword(k) => Some(k.clone()),
        Edn::Symbol(s) => Some(s.clone()),
        Edn::Int(i) => Some(i.to_string()),
        Edn::Str(s) => Some(s.clone()),
        _ => None,
    }
}

fn parse_edn(text: &str) -> Parsed<Vec<Entry>> {
    let mut r = Reader::new(text);
    let mut forms = Vec::new();
    while let Some(f) = r.form()? {
        forms.push(f);
    }
    r.skip_space();
    if r.at < r.s.len() {
        return Err(Unreadable::at(
            r.line,
            format!("an EDN form, found a stray '{}'", r.s[r.at] as char),
        ));
    }
    // A vector or list of maps, or the maps one after another.
    let ops = match forms.as_slice() {
        [(_, Edn::Seq(items))] => items.clone(),
        _ => forms,
    };
    if ops.is_empty() {
        return Err(Unreadable::at(r.line, "at least one operation map"));
    }
    let mut pairing = Pairing::new(false);
    for (line, op) in ops {
        let expected = "an operation map {:process P, :type :invoke|:ok|:fail|:info, :f F, :value V}";
        if !matches!(op, Edn::Map(_)) {
            return Err(Unreadable::at(line, expected));
        }
        let (Some(process), Some(kind), Some(f)) = (word(op.get("process")), word(op.get("type")), word(op.get("f")))
        else {
            return Err(Unreadable::at(
                line,
                format!("{expected} (with :process, :type and :f)"),
            ));
        };
        pairing.event(Event {
            line,
            process,
            kind,
            f,
            value: op.get("value").cloned().unwrap_or(Edn::Nil),
        })?;
    }
    Ok(pairing.out)
}

// ---------------------------------------------------------------------------------------------------------
// Jepsen's log lines

fn parse_log(text: &str) -> Parsed<Vec<Entry>> {
    let mut pairing = Pairing::new(true);
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let Some(at) = line.find("jepsen.util") else {
            continue; // another logger's line
        };
        let expected = "a Jepsen operation line: INFO jepsen.util - PROCESS :TYPE :F VALUE";
        let Some((_, rest)) = line[at..].split_once(" - ") else {
            return Err(Unreadable::at(n, expected));
        };
        let mut words = rest.split_whitespace();
        let (Some(process), Some(kind), Some(f)) = (words.next(), words.next(), words.next()) else {
            return Err(Unreadable::at(n, expected));
        };
        let (Some(kind), Some(f)) = (kind.strip_prefix(':'), f.strip_prefix(':')) else {
            return Err(Unreadable::at(n, expected));
        };
        let value_text = words.collect::<Vec<_>>().join(" ");
        let mut r = Reader::new(&value_text);
        let value = match r.form() {
            Ok(Some((_, v))) => v,
            Ok(None) => Edn::Nil,
            Err(e) => return Err(Unreadable::at(n, format!("{expected}; its value: {}", e.expected))),
        };
        pairing.event(Event {
            line: n,
            process: process.to_string(),
            kind: kind.to_string(),
            f: f.to_string(),
            value,
        })?;
    }
    if pairing.out.is_empty() {
        return Err(Unreadable::at(
            text.lines().count().max(1),
            "at least one Jepsen operation line (INFO jepsen.util - 0 :invoke :read nil)",
        ));
    }
    Ok(pairing.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_apart_by_their_first_line() {
        assert_eq!(detect("{\"id\":0}\n"), Ok(Format::Zkdev));
        assert_eq!(detect("; a comment\n[{:process 0}]"), Ok(Format::Edn));
        assert_eq!(detect("{:process 0, :type :invoke}"), Ok(Format::Edn));
        assert_eq!(
            detect("\nINFO  jepsen.util - 0\t:invoke\t:read\tnil\n"),
            Ok(Format::Porcupine)
        );
        assert_eq!(detect("hello\n").unwrap_err().line, 1);
    }

    #[test]
    fn edn_invocations_pair_with_their_completions() {
        let h = parse_edn(
            "[{:process 0, :type :invoke, :f :write, :value 1}\n\
             {:process 1, :type :invoke, :f :read, :value nil}\n\
             {:process :nemesis, :type :info, :f :kill, :value nil}\n\
             {:process 0, :type :ok, :f :write, :value 1}\n\
             {:process 1, :type :ok, :f :read, :value 1} ; seen\n\
             {:process 2 :type :invoke, :f :cas, :value [1 2]}\n\
             {:process 2, :type :info, :f :cas, :value [1 2], :error [:timeout \"x\"]}]",
        )
        .unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!((h[0].call, h[0].ret, h[0].end), (1, Some(3), End::Ok));
        assert_eq!(
            h[1].act,
            Act::Read {
                saw: Some(Value::Int(1))
            }
        );
        assert_eq!((h[1].line, h[1].ret_line), (2, Some(5)));
        assert_eq!(
            (&h[2].act, h[2].end, h[2].ret),
            (
                &Act::Cas {
                    from: Value::Int(1),
                    to: Value::Int(2)
                },
                End::Unknown,
                None
            )
        );
    }

    #[test]
    fn malformed_edn_names_the_line() {
        let e = parse_edn("[{:process 0, :type :invoke, :f :read, :value nil}\n {:process 0 :type}\n]").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        let e = parse_edn("[{:process 0, :type :invoke, :f :read}\n\n").unwrap_err();
        assert!(e.expected.contains("close what line 1 opened"), "{e:?}");
        let e = parse_edn("[{:process 0, :type :invoke, :f :cas, :value 3}]").unwrap_err();
        assert!(e.expected.contains("[old new]"), "{e:?}");
        let e = parse_edn("[{:process 0, :type :ok, :f :read, :value 3}]").unwrap_err();
        assert!(e.expected.contains(":invoke of process 0"), "{e:?}");
    }

    #[test]
    fn log_lines_read_a_failed_cas_as_refused_and_a_timed_out_one_as_unknown() {
        let h = parse_log(
            "INFO  jepsen.util - 0\t:invoke\t:cas\t[1 2]\n\
             INFO  jepsen.util - 1\t:invoke\t:cas\t[3 4]\n\
             DEBUG something else entirely\n\
             INFO  jepsen.util - 0\t:fail\t:cas\t[1 2]\n\
             INFO  jepsen.util - 1\t:info\t:cas\t:timed-out\n\
             INFO  jepsen.util - 2   :invoke :read   nil\n\
             INFO  jepsen.util - 2   :ok     :read   nil\n",
        )
        .unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!((h[0].end, h[0].ret_line), (End::Refused, Some(4)));
        assert_eq!((h[1].end, h[1].ret), (End::Unknown, None));
        assert_eq!(h[2].act, Act::Read { saw: Some(Value::Nil) });
        let e = parse_log("INFO  jepsen.util - 0\t:invoke\n").unwrap_err();
        assert_eq!(e.line, 1);
    }

    #[test]
    fn zkdev_records_become_versioned_operations() {
        let h = parse_zkdev(concat!(
            r#"{"id":0,"client":1,"f":"cas","key":"r0","call_us":10,"ret_us":20,"outcome":"ok","value":"7","expect":0}"#,
            "\n",
            r#"{"id":1,"client":2,"f":"read","key":"r0","call_us":30,"ret_us":40,"outcome":"ok","value":"7@1"}"#,
            "\n",
            r#"{"id":2,"client":2,"f":"cas","key":"r0","call_us":50,"ret_us":60,"outcome":"fail","value":"9","expect":0,"error":"mismatch version"}"#,
            "\n",
            r#"{"id":3,"client":3,"f":"cas","key":"r0","call_us":70,"gave_up_us":2000,"outcome":"unknown","value":"8","expect":1}"#,
        ))
        .unwrap();
        assert_eq!(h[0].act, Act::VersionedCas { expect: 0, value: 7 });
        assert_eq!(h[1].act, Act::VersionedRead { saw: Some((7, 1)) });
        assert_eq!(h[2].end, End::Refused);
        assert_eq!((h[3].end, h[3].ret), (End::Unknown, None));
        let e = parse_zkdev("{\"client\":1}\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.expected.contains("missing field"), "{e:?}");
    }
}
