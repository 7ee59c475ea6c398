//! `zkdev check`'s pure part: a history read by `history_formats`, checked against the model asked for, and
//! the operations of a violation's excerpt described for a person (and for `--json` and the picture).
//!
//! Each model is one arm of `check`: it turns the history's entries into its own operations (or says which
//! entry it cannot take, and why) and runs its checker.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::cas_register::{CasCall, CasEnd, CasOp, Values};
use super::history_formats::{Act, End, Entry, Format, History, Value};
use super::linearize::{self, Budget, Call, Decision, Reg, Ret};

/// The models `zkdev check` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Knossos's and Porcupine's compare-and-set register: read, write, cas [old new].
    Cas,
    /// zkdev's versioned register (a znode's data and version: sync + getData, setData on a version).
    Register,
    /// ZooKeeper's own model (`model::zkmodel`): zkdev's zk history (`chaos --workload zk`), one operation
    /// per line with its session, node and zxids.
    Zk,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Cas => "cas",
            ModelKind::Register => "register",
            ModelKind::Zk => "zk",
        }
    }

    /// The model a format's histories are usually of.
    pub fn for_format(f: Format) -> ModelKind {
        match f {
            Format::Zkdev => ModelKind::Register,
            Format::Edn | Format::Porcupine => ModelKind::Cas,
        }
    }
}

/// What the check found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub decision: Decision,
    /// The operations the model checked (reads without an answer and operations that did not take place say
    /// nothing and are left out).
    pub checked: usize,
    /// The register whose history failed (when the history has several).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// What is wrong, in a sentence, when the checker could say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The fewest operations found that still fail together (indices into the history's entries).
    pub excerpt: Vec<usize>,
    pub budget: Budget,
}

/// A history the model cannot take: the entry's line (None: the initial value) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misfit {
    pub line: Option<usize>,
    pub message: String,
}

/// Check `h` against `model`, from `initial` (the register's first value: nil for the cas register, `0@0`
/// for zkdev's, when None), within `budget`.
pub fn check(h: &History, model: ModelKind, initial: Option<&str>, budget: Budget) -> Result<Finding, Misfit> {
    match model {
        ModelKind::Cas => check_cas(h, initial, budget),
        ModelKind::Register => check_register(h, initial, budget),
        // A zk history is not a register history: it is read whole by `model::zkmodel` (see `zkdev check`).
        ModelKind::Zk => Err(Misfit {
            line: None,
            message: "the zk model reads zkdev's ZooKeeper history (`chaos --workload zk`), one operation per line \
                      with its session and zxids; this file is a register history: check it with --model cas or \
                      --model register"
                .into(),
        }),
    }
}

fn check_cas(h: &History, initial: Option<&str>, budget: Budget) -> Result<Finding, Misfit> {
    let mut values = Values::default();
    let first = values.id(&initial.map_or(Value::Nil, Value::parse));
    let mut by_key: BTreeMap<&str, Vec<CasOp>> = BTreeMap::new();
    for (id, e) in h.entries.iter().enumerate() {
        let call = match (&e.act, e.end) {
            (_, End::Failed) | (Act::Read { saw: None }, _) => continue,
            (Act::Read { saw: Some(v) }, _) => CasCall::Read(values.id(v)),
            (Act::Write(v), _) => CasCall::Write(values.id(v)),
            (Act::Cas { from, to }, _) => CasCall::Cas(values.id(from), values.id(to)),
            (Act::VersionedRead { .. } | Act::VersionedCas { .. }, _) => {
                return Err(Misfit {
                    line: Some(e.line),
                    message: "this is zkdev's versioned register (reads and CASes on a version), which the cas \
                              model does not know: check it with --model register"
                        .into(),
                })
            }
            (Act::Other { f }, _) => return Err(not_of(e, f, "the cas register (read, write, cas)")),
        };
        let end = match e.end {
            End::Ok => CasEnd::Ok,
            End::Refused => CasEnd::Refused,
            End::Unknown | End::Absent | End::Failed => CasEnd::Unknown,
        };
        by_key.entry(&e.key).or_default().push(CasOp {
            id,
            call_us: e.call,
            ret_us: if end == CasEnd::Unknown { None } else { e.ret },
            call,
            end,
        });
    }
    let checked = by_key.values().map(Vec::len).sum();
    let mut finding = Finding {
        decision: Decision::Linearizable,
        checked,
        key: None,
        reason: None,
        excerpt: Vec::new(),
        budget,
    };
    for (key, ops) in by_key {
        match linearize::check_by_search(&ops, first, budget) {
            (Decision::Linearizable, _) => {}
            (Decision::TooLarge, _) => {
                if finding.decision == Decision::Linearizable {
                    finding.decision = Decision::TooLarge;
                    finding.key = Some(key.to_string()).filter(|k| !k.is_empty());
                }
            }
            (Decision::NotLinearizable, excerpt) => {
                finding.decision = Decision::NotLinearizable;
                finding.key = Some(key.to_string()).filter(|k| !k.is_empty());
                finding.excerpt = excerpt;
                return Ok(finding);
            }
        }
    }
    Ok(finding)
}

fn not_of(e: &Entry, f: &str, model: &str) -> Misfit {
    Misfit {
        line: Some(e.line),
        message: format!("{f} is not an operation of {model}"),
    }
}

/// `--initial` for zkdev's register: `VALUE@VERSION`, or `VALUE` (version 0).
fn register_initial(initial: Option<&str>) -> Result<Reg, Misfit> {
    let Some(s) = initial else {
        return Ok(Reg { value: 0, version: 0 });
    };
    let (v, ver) = s.split_once('@').unwrap_or((s, "0"));
    match (v.trim().parse(), ver.trim().parse()) {
        (Ok(value), Ok(version)) => Ok(Reg { value, version }),
        _ => Err(Misfit {
            line: None,
            message: format!(
                "--initial {s}: zkdev's register starts at VALUE@VERSION (whole numbers, e.g. 0@0), or VALUE alone \
                 (version 0)"
            ),
        }),
    }
}

fn check_register(h: &History, initial: Option<&str>, budget: Budget) -> Result<Finding, Misfit> {
    let first = register_initial(initial)?;
    // The records' own numbers name them in the checker's sentences, when they are numbered once each.
    let mut index: HashMap<usize, usize> = HashMap::new();
    for (i, e) in h.entries.iter().enumerate() {
        match e.id {
            Some(id) if index.insert(id, i).is_none() => {}
            _ => {
                index = (0..h.entries.len()).map(|i| (i, i)).collect();
                break;
            }
        }
    }
    let number: HashMap<usize, usize> = index.iter().map(|(&id, &i)| (i, id)).collect();
    let mut ops = Vec::new();
    for (id, e) in h.entries.iter().enumerate() {
        let (call, ret) = match (&e.act, e.end) {
            (
                Act::VersionedRead {
                    saw: Some((value, version)),
                },
                End::Ok,
            ) => (
                Call::Read,
                Ret::Read(Reg {
                    value: *value,
                    version: *version,
                }),
            ),
            (Act::VersionedRead { .. }, End::Absent) => (Call::Read, Ret::Absent),
            (Act::VersionedRead { .. }, _) | (Act::VersionedCas { .. }, End::Failed) => continue,
            (Act::VersionedCas { expect, value }, end) => (
                Call::Cas {
                    expect: *expect,
                    value: *value,
                },
                match end {
                    End::Ok => Ret::Ok,
                    End::Refused => Ret::Failed,
                    End::Absent => Ret::Absent,
                    End::Unknown | End::Failed => Ret::Unknown,
                },
            ),
            (Act::Read { .. } | Act::Write(_) | Act::Cas { .. }, _) => {
                return Err(Misfit {
                    line: Some(e.line),
                    message: "this operation has no version, which zkdev's register model needs (a read's \
                              VALUE@VERSION, a CAS's expected version): check it with --model cas"
                        .into(),
                })
            }
            (Act::Other { f }, _) => {
                return Err(not_of(
                    e,
                    &format!("{f} (of another workload)"),
                    "zkdev's register (read, cas); chaos checks the sequential and queue workloads on the live \
                     ensemble",
                ))
            }
        };
        ops.push(linearize::Op {
            id: number[&id],
            client: e.process.parse().unwrap_or(u32::MAX),
            key: e.key.clone(),
            call_us: e.call,
            ret_us: if ret == Ret::Unknown { None } else { e.ret },
            call,
            ret,
        });
    }
    let v = linearize::check(&ops, first, budget);
    Ok(Finding {
        decision: v.decision,
        checked: ops.len(),
        key: v.key,
        reason: v.reason,
        excerpt: v.excerpt.iter().map(|n| index[n]).collect(),
        budget,
    })
}

/// One operation of an excerpt, for a person and for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    pub process: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// What was asked: `read`, `write 3`, `cas [1 2]`, `cas 7 on version 2`.
    pub op: String,
    /// What came back: a read's value, ok, refused, no znode, failed, unknown.
    pub result: String,
    /// The file's lines of its invocation and completion.
    pub line: usize,
    pub ret_line: Option<usize>,
    /// Microseconds (zkdev's histories), or the event's position in the file (Jepsen's).
    pub call: u64,
    pub ret: Option<u64>,
}

/// Describe entry `i` of `h`.
pub fn shown(h: &History, i: usize) -> Shown {
    let e = &h.entries[i];
    let end = match e.end {
        End::Ok => "ok",
        End::Refused => "refused",
        End::Absent => "no znode",
        End::Failed => "failed",
        End::Unknown => "unknown",
    };
    let (op, result) = match &e.act {
        Act::Read { saw: Some(v) } => ("read".to_string(), v.to_string()),
        Act::VersionedRead { saw: Some((v, ver)) } => ("read".to_string(), format!("{v}@{ver}")),
        Act::Read { saw: None } | Act::VersionedRead { saw: None } => ("read".to_string(), end.to_string()),
        Act::Write(v) => (format!("write {v}"), end.to_string()),
        Act::Cas { from, to } => (format!("cas [{from} {to}]"), end.to_string()),
        Act::VersionedCas { expect, value } => (format!("cas {value} on version {expect}"), end.to_string()),
        Act::Other { f } => (f.clone(), end.to_string()),
    };
    Shown {
        process: e.process.clone(),
        key: e.key.clone(),
        op,
        result,
        line: e.line,
        ret_line: e.ret_line,
        call: e.call,
        ret: e.ret,
    }
}

/// When an operation ran, as a person reads it: seconds for zkdev's histories, lines for Jepsen's.
pub fn when(h: &History, s: &Shown) -> String {
    if h.timed() {
        match s.ret {
            Some(r) => format!("{:.3}-{:.3} s", s.call as f64 / 1e6, r as f64 / 1e6),
            None => format!("{:.3} s-(no answer)", s.call as f64 / 1e6),
        }
    } else {
        match s.ret_line {
            Some(r) => format!("lines {}-{r}", s.line),
            None => format!("line {}-(no answer)", s.line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::history_formats::parse;

    #[test]
    fn knossos_style_history_with_a_crashed_write() {
        let text = "[{:process 0, :type :invoke, :f :write, :value 1}\n\
                    {:process 0, :type :info, :f :write, :value 1}\n\
                    {:process 1, :type :invoke, :f :read, :value nil}\n\
                    {:process 1, :type :ok, :f :read, :value nil}\n\
                    {:process 2, :type :invoke, :f :read, :value nil}\n\
                    {:process 2, :type :ok, :f :read, :value 1}]";
        let h = parse(text, Format::Edn).unwrap();
        let f = check(&h, ModelKind::Cas, None, Budget::default()).unwrap();
        assert_eq!(f.decision, Decision::Linearizable, "{f:?}");
        // Starting at 1, the read of nil after the write can't be.
        let f = check(&h, ModelKind::Cas, Some("5"), Budget::default()).unwrap();
        assert_eq!(f.decision, Decision::NotLinearizable, "{f:?}");
        assert!(f.excerpt.contains(&1), "{f:?}");
        assert_eq!(shown(&h, 1).process, "1");
        // The register model refuses it, naming the line.
        let m = check(&h, ModelKind::Register, None, Budget::default()).unwrap_err();
        assert_eq!(m.line, Some(1));
    }
}
