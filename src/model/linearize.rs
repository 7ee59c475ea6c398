//! A linearizability checker for `chaos --workload register`: is there one order of the recorded operations,
//! consistent with real time (an operation that returned before another was invoked comes first), in which
//! a versioned register (a znode's data and version) gives every answer the clients saw?
//!
//! The history is split per key (a register's history is linearizable on its own, P-compositionality).
//! Each key is first checked by its versions: ZooKeeper numbers a znode's versions 1, 2, 3..., every
//! acknowledged CAS names the version it made and every read the version it saw, so the order of the writes
//! is known and only has to be fitted to real time. That check is linear after a sort, and it decides almost
//! every history: it either builds a linearization (each operation at the earliest point its interval and
//! the version order allow) or finds two operations, or one, that no order can explain. Only where a refused
//! CAS cannot be placed that way does it fall back to a general search: Wing & Gong's with Lowe's cache of
//! explored states (as Porcupine does), metered by a `Budget` of steps and bytes; past the budget the answer
//! is "too large", never an unbounded search.
//!
//! The register is never deleted by the workload: an operation answered "no znode" shows it vanished.
//!
//! Pure: no clock, no I/O. `check` takes the recorded operations and returns the verdict, and on a
//! violation the smallest excerpt it could find that still shows it.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

/// A register's state: a znode's data (a value id the workload chose) and its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reg {
    pub value: u64,
    pub version: i32,
}

/// What a client asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "lowercase")]
pub enum Call {
    /// `sync` + `getData`.
    Read,
    /// `setData(value, expected version)`.
    Cas { expect: i32, value: u64 },
}

/// What it was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Ret {
    /// A read's answer.
    Read(Reg),
    /// "No node": the znode was not there. A definite answer (a CAS so answered did not apply), and one the
    /// register never gives, as nothing deletes it.
    Absent,
    /// The CAS was acknowledged.
    Ok,
    /// The CAS was refused (bad version): it did not take effect.
    Failed,
    /// No answer (timeout, connection loss): it may or may not have taken effect.
    Unknown,
}

/// One operation: invoked at `call_us`, completed at `ret_us` (None when the outcome is unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub id: usize,
    pub client: u32,
    pub key: String,
    pub call_us: u64,
    pub ret_us: Option<u64>,
    pub call: Call,
    pub ret: Ret,
}

/// The register's model. `None` is "any state" (used when an excerpt starts in the middle of a history).
fn step(state: Option<Reg>, call: Call, ret: Ret) -> Option<Option<Reg>> {
    match (call, ret, state) {
        (_, Ret::Absent, _) => None, // the register is never deleted
        (Call::Read, Ret::Read(r), None) => Some(Some(r)),
        (Call::Read, Ret::Read(r), Some(s)) => (s == r).then_some(Some(s)),
        (Call::Read, _, s) => Some(s), // a read without an answer constrains nothing
        (Call::Cas { expect, value }, Ret::Ok, s) => s.is_none_or(|s| s.version == expect).then_some(Some(Reg {
            value,
            version: expect + 1,
        })),
        (Call::Cas { expect, .. }, Ret::Failed, s) => s.is_none_or(|s| s.version != expect).then_some(s),
        // Linearized here, an unknown CAS took effect if the version matched; "never took effect" is the
        // same as linearizing it at the end, which the search also tries.
        (Call::Cas { expect, value }, Ret::Unknown, Some(s)) if s.version == expect => Some(Some(Reg {
            value,
            version: expect + 1,
        })),
        (Call::Cas { .. }, _, s) => Some(s),
    }
}

/// An operation the general search can place: its interval, and what it does to a model's state. The
/// versioned register below is one model; `model::cas_register` is another.
pub trait Operation: Clone {
    /// The model's state.
    type State: Copy + Eq + std::hash::Hash;
    /// Its number in the history (what an excerpt names).
    fn id(&self) -> usize;
    fn call_us(&self) -> u64;
    /// None: no answer came; it may take effect at any point after its call, or never.
    fn ret_us(&self) -> Option<u64>;
    /// Linearized in `state` (`None`: any state, as when an excerpt starts in the middle of a history): the
    /// state after it (`Some(None)`: still any), or `None` when its answer cannot be given there.
    fn apply(&self, state: Option<Self::State>) -> Option<Option<Self::State>>;
    /// The same operation cut short while it ran: its answer not known. `None` when it then says nothing
    /// (a read), so an excerpt leaves it out.
    fn unanswered(&self) -> Option<Self>;
    /// It changes nothing whatever its answer (a read, a refused write): an excerpt may leave it out without
    /// making a later operation look wrong.
    fn droppable(&self) -> bool;
}

impl Operation for Op {
    type State = Reg;
    fn id(&self) -> usize {
        self.id
    }
    fn call_us(&self) -> u64 {
        self.call_us
    }
    fn ret_us(&self) -> Option<u64> {
        self.ret_us
    }
    fn apply(&self, state: Option<Reg>) -> Option<Option<Reg>> {
        step(state, self.call, self.ret)
    }
    fn unanswered(&self) -> Option<Op> {
        match self.call {
            Call::Read => None,
            Call::Cas { .. } => Some(Op {
                ret_us: None,
                ret: Ret::Unknown,
                ..self.clone()
            }),
        }
    }
    fn droppable(&self) -> bool {
        self.call == Call::Read || self.ret == Ret::Failed
    }
}

/// How much work a check may do before it gives up with "too large": search steps (each a few
/// microseconds at most) and bytes of explored states. The version-ordered check is not metered: it is
/// linear after a sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Budget {
    pub steps: u64,
    pub bytes: usize,
}

impl Default for Budget {
    /// About half a minute of search at most, and 256 MiB of explored states.
    fn default() -> Self {
        Budget {
            steps: 20_000_000,
            bytes: 256 << 20,
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} million search steps and {} MiB",
            self.steps / 1_000_000,
            self.bytes >> 20
        )
    }
}

/// What is left of a budget, shared by every search of one check.
struct Meter {
    steps_left: u64,
    bytes: usize,
}

impl Meter {
    fn new(budget: Budget) -> Meter {
        Meter {
            steps_left: budget.steps,
            bytes: budget.bytes,
        }
    }
}

/// Check one history (one register's) by the general search alone, from `initial`, within `budget`: the
/// decision and, on a violation, the smallest excerpt found that still fails (ids, in call order). For
/// models without versions to order the writes (`model::cas_register`).
pub fn check_by_search<O: Operation>(ops: &[O], initial: O::State, budget: Budget) -> (Decision, Vec<usize>) {
    let mut part: Vec<&O> = ops.iter().collect();
    part.sort_by_key(|o| (o.call_us(), o.id()));
    let mut meter = Meter::new(budget);
    match search(&part, Some(initial), &mut meter) {
        Search::Yes => (Decision::Linearizable, Vec::new()),
        Search::TooLarge => (Decision::TooLarge, Vec::new()),
        Search::No => (Decision::NotLinearizable, shrink(&part, initial, &mut meter)),
    }
}

/// What a check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Linearizable,
    NotLinearizable,
    /// The budget ran out before the search could decide.
    TooLarge,
}

/// The verdict for a whole history.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub decision: Decision,
    pub keys: usize,
    pub ops: usize,
    /// The key whose history is not linearizable (the first found), or the first too large to check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// What is wrong with that key's history, in a sentence (when the version check could say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The fewest operations (ids, in call order) found that are not linearizable together, starting
    /// from any state of the register.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub excerpt: Vec<usize>,
    /// The budget the check had.
    pub budget: Budget,
}

impl Verdict {
    pub fn linearizable(&self) -> bool {
        self.decision == Decision::Linearizable
    }
}

/// Check `ops` against a register per key that starts at `initial`, within `budget`.
pub fn check(ops: &[Op], initial: Reg, budget: Budget) -> Verdict {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let keys = by_key.len();
    let mut meter = Meter::new(budget);
    let mut verdict = Verdict {
        decision: Decision::Linearizable,
        keys,
        ops: ops.len(),
        key: None,
        reason: None,
        excerpt: Vec::new(),
        budget,
    };
    for (key, mut part) in by_key {
        part.sort_by_key(|o| (o.call_us, o.id));
        let (decision, reason, excerpt) = match by_versions(&part, initial) {
            Found::Linearizable => continue,
            Found::Violation { reason, excerpt } => (Decision::NotLinearizable, Some(reason), excerpt),
            Found::Unsure => match search(&part, Some(initial), &mut meter) {
                Search::Yes => continue,
                Search::No => (Decision::NotLinearizable, None, shrink(&part, initial, &mut meter)),
                Search::TooLarge => {
                    // Another key may still show a violation, which says more than "too large".
                    if verdict.decision == Decision::Linearizable {
                        verdict.decision = Decision::TooLarge;
                        verdict.key = Some(key.to_string());
                        verdict.excerpt.clear();
                    }
                    continue;
                }
            },
        };
        verdict.decision = decision;
        verdict.key = Some(key.to_string());
        verdict.reason = reason;
        verdict.excerpt = excerpt;
        return verdict;
    }
    verdict
}

/// What the version-ordered check found for one key.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    Linearizable,
    Violation {
        reason: String,
        excerpt: Vec<usize>,
    },
    /// A refused CAS it could not place: the general search decides.
    Unsure,
}

fn end(o: &Op) -> u64 {
    o.ret_us.unwrap_or(u64::MAX)
}

fn violation(ops: &[&Op], mut at: Vec<usize>, reason: String) -> Found {
    at.sort_unstable();
    at.dedup();
    Found::Violation {
        reason,
        excerpt: at.iter().map(|&i| ops[i].id).collect(),
    }
}

fn shown(o: &Op) -> String {
    match (o.call, o.ret) {
        (Call::Cas { expect, value }, _) => format!("#{} (CAS of {value} on version {expect})", o.id),
        (Call::Read, Ret::Read(r)) => format!("#{} (read {}@{})", o.id, r.value, r.version),
        (Call::Read, _) => format!("#{} (read)", o.id),
    }
}

/// One key's history (sorted by call time), checked by its versions. Versions only grow, one per write, so
/// the writes' order is the versions' order: version v+1 was made by the acknowledged CAS on version v, or
/// (unacknowledged) by the CAS whose value a read saw at v+1, or by some CAS on version v whose outcome is
/// unknown (the earliest invoked fits whenever any does). Then every operation is placed at the earliest
/// point its interval and that order allow: the writer of each version, then the reads of it. A point past
/// an operation's return is a violation between it and the operation whose invocation forced the point.
fn by_versions(ops: &[&Op], initial: Reg) -> Found {
    let v0 = initial.version;
    if let Some(i) = ops.iter().position(|o| o.ret == Ret::Absent) {
        let o = ops[i];
        let mut at = vec![i];
        // The last acknowledged operation before it, which found the znode there.
        let before = (0..i)
            .filter(|&j| matches!(ops[j].ret, Ret::Ok | Ret::Read(_)) && end(ops[j]) < o.call_us)
            .max_by_key(|&j| end(ops[j]));
        at.extend(before);
        let what = match o.call {
            Call::Read => format!("the read #{}", o.id),
            Call::Cas { expect, value } => format!("the CAS #{} of {value} on version {expect}", o.id),
        };
        return violation(
            ops,
            at,
            format!(
                "it vanished: {what} was answered \"no znode\" at {:.3} s, but no client of the workload deletes it",
                end(o) as f64 / 1e6
            ),
        );
    }
    // The writer of each version above the initial one.
    let mut writer: BTreeMap<i32, usize> = BTreeMap::new();
    for (i, o) in ops.iter().enumerate() {
        if let (Call::Cas { expect, .. }, Ret::Ok) = (o.call, o.ret) {
            if let Some(j) = writer.insert(expect + 1, i) {
                return violation(
                    ops,
                    vec![j, i],
                    format!(
                        "two acknowledged CASes, {} and {}, both made version {}: one write was lost",
                        shown(ops[j]),
                        shown(o),
                        expect + 1
                    ),
                );
            }
        }
    }
    let value_of = |o: &Op| match o.call {
        Call::Cas { value, .. } => value,
        Call::Read => u64::MAX,
    };
    let unknown_cas = |expect: i32| {
        (0..ops.len()).filter(move |&k| {
            ops[k].ret == Ret::Unknown && matches!(ops[k].call, Call::Cas { expect: e, .. } if e == expect)
        })
    };
    let mut reads: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for (i, o) in ops.iter().enumerate() {
        let Ret::Read(r) = o.ret else { continue };
        let never = || {
            format!(
                "the read {} saw a value no client wrote at that version (written behind the workload's back?)",
                shown(o)
            )
        };
        if r.version < v0 || (r.version == v0 && r.value != initial.value) {
            return violation(ops, vec![i], never());
        }
        if r.version > v0 {
            match writer.get(&r.version) {
                Some(&w) if value_of(ops[w]) != r.value => {
                    return violation(
                        ops,
                        vec![w, i],
                        format!(
                            "the read {} saw another value at version {} than the acknowledged CAS {} wrote",
                            shown(o),
                            r.version,
                            shown(ops[w])
                        ),
                    )
                }
                Some(_) => {}
                None => match unknown_cas(r.version - 1).find(|&k| value_of(ops[k]) == r.value) {
                    Some(k) => {
                        writer.insert(r.version, k);
                    }
                    None => return violation(ops, vec![i], never()),
                },
            }
        }
        reads.entry(r.version).or_default().push(i);
    }
    // Every version up to the highest one known to exist has a writer.
    let exists = |o: &Op| match (o.call, o.ret) {
        (_, Ret::Read(r)) => Some(r.version),
        (Call::Cas { expect, .. }, Ret::Ok) => Some(expect + 1),
        _ => None,
    };
    let top = ops.iter().filter_map(|o| exists(o)).max().unwrap_or(v0).max(v0);
    for v in v0 + 1..=top {
        if writer.contains_key(&v) {
            continue;
        }
        match unknown_cas(v - 1).min_by_key(|&k| (ops[k].call_us, k)) {
            Some(k) => {
                writer.insert(v, k);
            }
            None => {
                let seen = (0..ops.len())
                    .find(|&j| exists(ops[j]).is_some_and(|x| x > v))
                    .unwrap_or(0);
                return violation(
                    ops,
                    vec![seen],
                    format!(
                        "{} shows version {v} existed, but no client's CAS could have made it (written behind the workload's back?)",
                        shown(ops[seen])
                    ),
                );
            }
        }
    }
    // The earliest points: `t` is the latest point so far and `by` the operation whose invocation set it.
    let (mut t, mut by): (u64, Option<usize>) = (0, None);
    let mut point: BTreeMap<i32, u64> = BTreeMap::new();
    let late = |by: Option<usize>, i: usize, what: &str| {
        let mut at = vec![i];
        at.extend(by);
        let after = by.map_or(String::new(), |b| format!(" after {} was invoked", shown(ops[b])));
        violation(
            ops,
            at,
            format!("{} returned before it could take effect{after}: {what}", shown(ops[i])),
        )
    };
    for v in v0..=top {
        if v > v0 {
            let w = writer[&v];
            if ops[w].call_us > t {
                (t, by) = (ops[w].call_us, Some(w));
            }
            if t > end(ops[w]) {
                return late(by, w, "a write was lost or a read was stale");
            }
        }
        point.insert(v, t);
        let (at_write, by_write) = (t, by);
        for &r in reads.get(&v).into_iter().flatten() {
            let p = at_write.max(ops[r].call_us);
            if p > end(ops[r]) {
                let why = if by_write == writer.get(&v).copied() {
                    "it saw a value before the write of it was invoked"
                } else {
                    "a stale read"
                };
                return late(by_write, r, why);
            }
            if p > t {
                (t, by) = (p, Some(r));
            }
        }
    }
    // Refused CASes: at a point where the version was not the one they expected.
    let writers: HashSet<usize> = writer.values().copied().collect();
    for o in ops.iter().filter(|o| o.ret == Ret::Failed) {
        let Call::Cas { expect: e, .. } = o.call else { continue };
        let fits = e < v0
            || e > top
            || point.get(&(e + 1)).is_some_and(|&p| p <= end(o))
            || (e > v0 && point.get(&e).is_some_and(|&p| o.call_us <= p))
            || (e == top
                && unknown_cas(top)
                    .filter(|k| !writers.contains(k))
                    .any(|k| ops[k].call_us.max(t) <= end(o)));
        if !fits {
            return Found::Unsure;
        }
    }
    Found::Linearizable
}

const NIL: usize = usize::MAX;

/// What a search found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Search {
    Yes,
    No,
    TooLarge,
}

/// One key's history: Wing & Gong's search with Lowe's cache, over a dancing-links list of calls and returns,
/// drawing its steps and bytes from `meter`.
fn search<O: Operation>(ops: &[&O], initial: Option<O::State>, meter: &mut Meter) -> Search {
    let n = ops.len();
    if n == 0 {
        return Search::Yes;
    }
    // Entries 0..n are calls, n..2n returns; entry 2n is the list's head.
    let mut order: Vec<usize> = (0..2 * n).collect();
    let time = |e: usize| -> (u64, u8) {
        if e < n {
            (ops[e].call_us(), 0)
        } else {
            // A return at the same time as a call comes after it: the two overlap (the permissive reading).
            (ops[e - n].ret_us().unwrap_or(u64::MAX), 1)
        }
    };
    order.sort_by_key(|e| time(*e));
    let head = 2 * n;
    let mut next = vec![NIL; 2 * n + 1];
    let mut prev = vec![NIL; 2 * n + 1];
    let mut last = head;
    for &e in &order {
        next[last] = e;
        prev[e] = last;
        last = e;
    }
    let lift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, e: usize| {
        for x in [e, e + n] {
            next[prev[x]] = next[x];
            if next[x] != NIL {
                prev[next[x]] = prev[x];
            }
        }
    };
    let unlift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, e: usize| {
        for x in [e + n, e] {
            next[prev[x]] = x;
            if next[x] != NIL {
                prev[next[x]] = x;
            }
        }
    };
    let words = n.div_ceil(64);
    // What one explored state costs: its bitset, the register, the set's own overhead.
    let per_state = words * 8 + std::mem::size_of::<(Vec<u64>, Option<O::State>)>() + 16;
    let mut done = vec![0u64; words];
    let mut seen: HashSet<(Vec<u64>, Option<O::State>)> = HashSet::new();
    let mut stack: Vec<(usize, Option<O::State>)> = Vec::new();
    let mut state = initial;
    let mut entry = next[head];
    while next[head] != NIL {
        if meter.steps_left == 0 || seen.len().saturating_mul(per_state) > meter.bytes {
            return Search::TooLarge;
        }
        meter.steps_left -= 1;
        if entry < n {
            let op = ops[entry];
            if let Some(after) = op.apply(state) {
                done[entry / 64] |= 1 << (entry % 64);
                if seen.insert((done.clone(), after)) {
                    stack.push((entry, state));
                    state = after;
                    lift(&mut next, &mut prev, entry);
                    entry = next[head];
                    continue;
                }
                done[entry / 64] &= !(1 << (entry % 64));
            }
            entry = next[entry];
        } else {
            // A return whose call is not linearized: undo the last choice and try the next candidate.
            let Some((e, s)) = stack.pop() else {
                return Search::No;
            };
            state = s;
            done[e / 64] &= !(1 << (e % 64));
            unlift(&mut next, &mut prev, e);
            entry = next[e];
        }
    }
    Search::Yes
}

/// A short excerpt that still fails. Each cut only weakens what the history claims, so whatever still fails
/// shows a real violation: cut at a time T (operations invoked later go; one still running at T keeps its
/// call but not its answer: a read goes, a CAS becomes unknown), start later from any state of the register
/// (keeping operations still in flight then), and drop reads and refused CASes one at a time. Nothing else is
/// dropped: dropping a write could make a later read look wrong when it is not. Every search draws on the
/// check's budget; one that runs out counts as "does not fail", so the excerpt only stays longer.
fn shrink<O: Operation>(part: &[&O], initial: O::State, meter: &mut Meter) -> Vec<usize> {
    let cut = |t: u64| -> Vec<O> {
        let called = part.iter().filter(|o| o.call_us() <= t);
        let weakened = called.filter_map(|o| match o.ret_us() {
            Some(r) if r > t => o.unanswered(),
            _ => Some((*o).clone()),
        });
        weakened.collect()
    };
    let mut fails =
        |ops: &[O], from: Option<O::State>| search(&ops.iter().collect::<Vec<_>>(), from, meter) == Search::No;
    // The earliest cut that fails (a binary search over the calls' times).
    let times: Vec<u64> = part.iter().map(|o| o.call_us()).collect();
    let (mut lo, mut hi) = (0, times.len() - 1);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fails(&cut(times[mid]), Some(initial)) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let prefix = cut(times[hi]);
    let mut prefix = if fails(&prefix, Some(initial)) {
        prefix
    } else {
        part.iter().map(|o| (*o).clone()).collect()
    };
    prefix.sort_by_key(|o| (o.call_us(), o.id()));
    // The latest start that still fails from any state.
    let window = |start: usize| -> Vec<O> {
        let from = prefix[start].call_us();
        let in_flight = prefix[..start].iter().filter(|o| o.ret_us().is_none_or(|r| r >= from));
        in_flight.chain(&prefix[start..]).cloned().collect()
    };
    let (mut lo, mut hi) = (0, prefix.len() - 1);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fails(&window(mid), None) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let (mut keep, from) = if fails(&window(lo), None) {
        (window(lo), None)
    } else {
        (prefix, Some(initial))
    };
    if keep.len() <= 400 {
        let mut i = 0;
        while i < keep.len() {
            let droppable = keep[i].droppable();
            let mut without = keep.clone();
            without.remove(i);
            if droppable && !without.is_empty() && fails(&without, from) {
                keep = without;
            } else {
                i += 1;
            }
        }
    }
    keep.sort_by_key(|o| (o.call_us(), o.id()));
    keep.iter().map(|o| o.id()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rng::Rng;

    const ZERO: Reg = Reg { value: 0, version: 0 };

    fn op(id: usize, client: u32, call_us: u64, ret_us: Option<u64>, call: Call, ret: Ret) -> Op {
        Op {
            id,
            client,
            key: "k".into(),
            call_us,
            ret_us,
            call,
            ret,
        }
    }

    fn cas(expect: i32, value: u64) -> Call {
        Call::Cas { expect, value }
    }

    fn read(value: u64, version: i32) -> Ret {
        Ret::Read(Reg { value, version })
    }

    #[test]
    fn sequential_and_overlapping_histories_are_accepted() {
        let h = vec![
            op(0, 1, 0, Some(10), cas(0, 7), Ret::Ok),
            op(1, 2, 20, Some(30), Call::Read, read(7, 1)),
            // Two overlapping CASes on version 1: one wins, the other is refused.
            op(2, 1, 40, Some(60), cas(1, 8), Ret::Failed),
            op(3, 2, 45, Some(55), cas(1, 9), Ret::Ok),
            // A read overlapping a CAS may see either side of it.
            op(4, 3, 70, Some(90), Call::Read, read(9, 2)),
            op(5, 1, 75, Some(95), cas(2, 10), Ret::Ok),
            op(6, 2, 80, Some(85), Call::Read, read(10, 3)),
        ];
        let v = check(&h, ZERO, Budget::default());
        assert!(v.linearizable(), "{v:?}");
        assert_eq!((v.keys, v.ops), (1, 7));
    }

    #[test]
    fn a_stale_read_after_an_acknowledged_write_is_a_violation() {
        let h = vec![
            op(0, 1, 0, Some(10), cas(0, 7), Ret::Ok),
            op(1, 2, 20, Some(30), cas(1, 8), Ret::Ok),
            op(2, 3, 40, Some(50), Call::Read, read(7, 1)),
            op(3, 3, 60, Some(70), Call::Read, read(8, 2)),
        ];
        let v = check(&h, ZERO, Budget::default());
        assert!(!v.linearizable());
        assert_eq!(v.key.as_deref(), Some("k"));
        // The acknowledged CAS and the stale read after it; the rest is not needed to show it.
        assert_eq!(v.excerpt, vec![1, 2], "{v:?}");
    }

    #[test]
    fn a_lost_acknowledged_cas_is_a_violation() {
        // The CAS to version 2 was acknowledged, yet a later read sees version 1 and a later CAS on version 1
        // succeeds: the write was lost.
        let h = vec![
            op(0, 1, 0, Some(10), cas(0, 7), Ret::Ok),
            op(1, 1, 20, Some(30), cas(1, 8), Ret::Ok),
            op(2, 2, 40, Some(50), cas(1, 9), Ret::Ok),
            op(3, 2, 60, Some(70), Call::Read, read(9, 2)),
        ];
        let v = check(&h, ZERO, Budget::default());
        assert!(!v.linearizable());
        assert_eq!(v.excerpt, vec![1, 2], "{v:?}");
    }

    #[test]
    fn a_read_of_a_write_that_failed_is_a_violation() {
        let h = vec![
            op(0, 1, 0, Some(10), cas(0, 7), Ret::Failed),
            op(1, 2, 20, Some(30), Call::Read, read(7, 1)),
        ];
        assert!(!check(&h, ZERO, Budget::default()).linearizable());
        // The same read is fine when the CAS's outcome is unknown: it may have taken effect.
        let h = vec![
            op(0, 1, 0, None, cas(0, 7), Ret::Unknown),
            op(1, 2, 20, Some(30), Call::Read, read(7, 1)),
        ];
        assert!(check(&h, ZERO, Budget::default()).linearizable());
    }

    #[test]
    fn unknown_outcomes_may_apply_late_or_never_but_not_before_their_call() {
        // Never applied: reads keep seeing the old value.
        let never = vec![
            op(0, 1, 0, None, cas(0, 7), Ret::Unknown),
            op(1, 2, 20, Some(30), Call::Read, read(0, 0)),
            op(2, 2, 40, Some(50), Call::Read, read(0, 0)),
        ];
        assert!(check(&never, ZERO, Budget::default()).linearizable());
        // Applied long after the client gave up.
        let late = vec![
            op(0, 1, 0, None, cas(0, 7), Ret::Unknown),
            op(1, 2, 20, Some(30), Call::Read, read(0, 0)),
            op(2, 2, 1000, Some(1010), Call::Read, read(7, 1)),
        ];
        assert!(check(&late, ZERO, Budget::default()).linearizable());
        // Seen, then unseen: once applied it stays.
        let flicker = vec![
            op(0, 1, 0, None, cas(0, 7), Ret::Unknown),
            op(1, 2, 20, Some(30), Call::Read, read(7, 1)),
            op(2, 2, 40, Some(50), Call::Read, read(0, 0)),
        ];
        assert!(!check(&flicker, ZERO, Budget::default()).linearizable());
        // A read that completed before the unknown CAS was invoked cannot see it.
        let before = vec![
            op(0, 2, 0, Some(10), Call::Read, read(7, 1)),
            op(1, 1, 20, None, cas(0, 7), Ret::Unknown),
        ];
        assert!(!check(&before, ZERO, Budget::default()).linearizable());
    }

    #[test]
    fn keys_are_checked_apart_and_the_failing_one_is_named() {
        let mut h = vec![
            op(0, 1, 0, Some(10), cas(0, 7), Ret::Ok),
            op(1, 2, 20, Some(30), Call::Read, read(7, 1)),
        ];
        let mut other = op(2, 3, 40, Some(50), Call::Read, read(7, 1));
        other.key = "j".into();
        h.push(other);
        let v = check(&h, ZERO, Budget::default());
        assert!(!v.linearizable());
        assert_eq!((v.keys, v.key.as_deref(), v.excerpt.clone()), (2, Some("j"), vec![2]));
    }

    /// A linearizable history of `n` operations by `clients` clients on `keys` registers: each operation
    /// takes effect at a point inside its interval, in the order of those points; some CASes time out.
    fn simulated(seed: u64, n: usize, clients: u32, keys: usize) -> Vec<Op> {
        let mut rng = Rng::new(seed);
        let mut free_at = vec![0u64; clients as usize];
        // (point, client, key, call, ret) built first, answers filled in point order.
        let mut planned = Vec::new();
        for i in 0..n {
            let c = rng.range(0, u64::from(clients) - 1) as usize;
            let call_us = free_at[c] + rng.range(0, 300);
            let len = rng.range(100, 3000);
            let point = call_us + rng.range(0, len);
            let unknown = rng.range(0, 50) == 0;
            free_at[c] = call_us + len + 1;
            let key = rng.range(0, keys as u64 - 1) as usize;
            let is_read = rng.range(0, 1) == 0 && !unknown;
            planned.push((point, i, c, key, call_us, call_us + len, is_read, unknown));
        }
        planned.sort_by_key(|p| p.0);
        let mut regs = vec![ZERO; keys];
        let mut ops = Vec::new();
        for (_, i, c, key, call_us, ret_us, is_read, unknown) in planned {
            let r = &mut regs[key];
            let (call, ret) = if is_read {
                (Call::Read, Ret::Read(*r))
            } else {
                // Usually the current version (a client that just read), sometimes a stale one.
                let expect = if rng.range(0, 3) == 0 {
                    (r.version - 1).max(0)
                } else {
                    r.version
                };
                let value = i as u64 + 1;
                let applied = expect == r.version && !(unknown && rng.range(0, 1) == 0);
                if applied {
                    *r = Reg {
                        value,
                        version: expect + 1,
                    };
                }
                let ret = if unknown {
                    Ret::Unknown
                } else if applied {
                    Ret::Ok
                } else {
                    Ret::Failed
                };
                (Call::Cas { expect, value }, ret)
            };
            ops.push(Op {
                id: i,
                client: c as u32,
                key: format!("r{key}"),
                call_us,
                ret_us: (!unknown).then_some(ret_us),
                call,
                ret,
            });
        }
        ops.sort_by_key(|o| o.id);
        ops
    }

    #[test]
    fn simulated_histories_are_linearizable_and_a_tampered_one_is_not() {
        for seed in 0..20 {
            let h = simulated(seed, 400, 5, 3);
            let v = check(&h, ZERO, Budget::default());
            assert!(v.linearizable(), "seed {seed}: {v:?}");
            // Decided by the versions alone, without the search.
            let mut part: Vec<&Op> = h.iter().filter(|o| o.key == "r0").collect();
            part.sort_by_key(|o| (o.call_us, o.id));
            assert_eq!(by_versions(&part, ZERO), Found::Linearizable, "seed {seed}");
        }
        // Change one acknowledged read's answer to a value nobody wrote.
        let mut h = simulated(3, 400, 5, 3);
        let victim = h
            .iter()
            .position(|o| matches!(o.ret, Ret::Read(r) if r.version > 2))
            .unwrap();
        if let Ret::Read(r) = &mut h[victim].ret {
            r.value = 999_999;
        }
        let v = check(&h, ZERO, Budget::default());
        assert!(!v.linearizable());
        // The bad read and a few operations around it, not the whole key's history.
        assert!(v.excerpt.contains(&victim) && v.excerpt.len() <= 6, "{v:?}");
    }

    #[test]
    fn ten_thousand_operations_are_decided() {
        // Decided without the search (how fast is the benchmark's business, not a timed test's).
        let h = simulated(42, 10_000, 8, 4);
        let v = check(&h, ZERO, Budget::default());
        assert!(v.linearizable(), "{v:?}");
    }

    #[test]
    fn a_read_answered_no_node_after_the_register_was_written_is_a_violation() {
        let h = vec![
            op(0, 1, 0, Some(10), cas(0, 7), Ret::Ok),
            op(1, 2, 20, Some(30), Call::Read, read(7, 1)),
            op(2, 3, 40, Some(50), Call::Read, Ret::Absent),
            op(3, 3, 60, Some(70), Call::Read, Ret::Absent),
        ];
        let v = check(&h, ZERO, Budget::default());
        assert_eq!(v.decision, Decision::NotLinearizable, "{v:?}");
        assert!(v.reason.as_deref().unwrap().contains("no znode"), "{v:?}");
        // The first read that found nothing and the last answer before it that found the register.
        assert_eq!(v.excerpt, vec![1, 2], "{v:?}");
        // A CAS answered "no node" did not apply, and says the same.
        let h = vec![
            op(0, 1, 0, Some(10), cas(0, 7), Ret::Ok),
            op(1, 2, 20, Some(30), cas(1, 8), Ret::Absent),
        ];
        let v = check(&h, ZERO, Budget::default());
        assert_eq!(
            (v.decision, v.excerpt.clone()),
            (Decision::NotLinearizable, vec![0, 1]),
            "{v:?}"
        );
        // Also the general search never accepts an absent answer.
        let part: Vec<&Op> = h.iter().collect();
        let mut meter = Meter {
            steps_left: 1000,
            bytes: 1 << 20,
        };
        assert_eq!(search(&part, Some(ZERO), &mut meter), Search::No);
    }

    #[test]
    fn versions_nobody_wrote_are_violations() {
        // Set behind the workload's back: a value no CAS wrote.
        let h = vec![
            op(0, 1, 0, Some(10), cas(0, 7), Ret::Ok),
            op(1, 2, 20, Some(30), Call::Read, read(424242, 2)),
        ];
        let v = check(&h, ZERO, Budget::default());
        assert_eq!(
            (v.decision, v.excerpt.clone()),
            (Decision::NotLinearizable, vec![1]),
            "{v:?}"
        );
        // An acknowledged CAS on version 2, but nothing could have made version 2.
        let h = vec![
            op(0, 1, 0, Some(10), cas(0, 7), Ret::Ok),
            op(1, 2, 20, Some(30), cas(2, 9), Ret::Ok),
        ];
        let v = check(&h, ZERO, Budget::default());
        assert_eq!(v.decision, Decision::NotLinearizable, "{v:?}");
        assert!(v.reason.unwrap().contains("version 2 existed"));
        // ... unless a CAS on version 1 whose outcome is unknown made it.
        let h = vec![
            op(0, 1, 0, Some(10), cas(0, 7), Ret::Ok),
            op(1, 3, 12, None, cas(1, 8), Ret::Unknown),
            op(2, 2, 20, Some(30), cas(2, 9), Ret::Ok),
            op(3, 2, 40, Some(50), Call::Read, read(9, 3)),
        ];
        assert!(check(&h, ZERO, Budget::default()).linearizable());
        // A read that saw another value at a version than the acknowledged CAS wrote.
        let h = vec![
            op(0, 1, 0, Some(10), cas(0, 7), Ret::Ok),
            op(1, 3, 5, None, cas(0, 8), Ret::Unknown),
            op(2, 2, 20, Some(30), Call::Read, read(8, 1)),
        ];
        let v = check(&h, ZERO, Budget::default());
        assert_eq!(
            (v.decision, v.excerpt.clone()),
            (Decision::NotLinearizable, vec![0, 2]),
            "{v:?}"
        );
    }

    #[test]
    fn a_refused_cas_the_versions_cannot_place_is_decided_by_the_search() {
        // Refused while version 0 still held (before the write took effect): linearizable.
        let h = vec![
            op(0, 1, 0, Some(100), cas(0, 7), Ret::Ok),
            op(1, 2, 10, Some(20), cas(1, 8), Ret::Failed),
        ];
        let part: Vec<&Op> = h.iter().collect();
        assert_eq!(by_versions(&part, ZERO), Found::Unsure);
        assert!(check(&h, ZERO, Budget::default()).linearizable());
        // Refused on version 1 after version 1 was there for good: not.
        let h = vec![
            op(0, 1, 0, Some(10), cas(0, 7), Ret::Ok),
            op(1, 2, 20, Some(30), cas(1, 8), Ret::Failed),
        ];
        let v = check(&h, ZERO, Budget::default());
        assert_eq!(
            (v.decision, v.excerpt.clone()),
            (Decision::NotLinearizable, vec![0, 1]),
            "{v:?}"
        );
    }

    /// Hundreds of CASes with unknown outcomes, all overlapping, and a refused CAS that sends the key to the
    /// search: every subset of the unknowns is a state of its own.
    fn adversarial(unknowns: usize) -> Vec<Op> {
        let mut h = vec![
            op(0, 1, 0, Some(10), cas(0, 7), Ret::Ok),
            op(1, 2, 20, Some(30), Call::Read, read(7, 1)),
        ];
        for i in 0..unknowns {
            h.push(op(
                2 + i,
                3 + i as u32,
                15,
                None,
                cas(5 + i as i32, 100 + i as u64),
                Ret::Unknown,
            ));
        }
        h.push(op(2 + unknowns, 2, 40, Some(50), cas(1, 9), Ret::Failed));
        h
    }

    #[test]
    fn a_huge_adversarial_history_is_too_large_within_its_budget() {
        let h = adversarial(300);
        for budget in [
            // Out of steps first.
            Budget {
                steps: 2_000_000,
                bytes: 1 << 30,
            },
            // Out of memory first.
            Budget {
                steps: u64::MAX,
                bytes: 16 << 20,
            },
        ] {
            let t = std::time::Instant::now();
            let v = check(&h, ZERO, budget);
            let took = t.elapsed();
            assert_eq!((v.decision, v.key.as_deref()), (Decision::TooLarge, Some("k")), "{v:?}");
            assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
        }
        // The same shape, small, is decided: the refused CAS on version 1 after version 1 held is a violation.
        let v = check(&adversarial(3), ZERO, Budget::default());
        assert_eq!(v.decision, Decision::NotLinearizable, "{v:?}");
    }

    #[test]
    fn a_violation_on_one_key_outranks_another_too_large() {
        let mut h = adversarial(300);
        let mut bad = op(9999, 1, 0, Some(5), Call::Read, read(1, 1));
        bad.key = "z".into();
        h.push(bad);
        let budget = Budget {
            steps: 100_000,
            bytes: 1 << 30,
        };
        let v = check(&h, ZERO, budget);
        assert_eq!(
            (v.decision, v.key.as_deref()),
            (Decision::NotLinearizable, Some("z")),
            "{v:?}"
        );
    }

    #[test]
    fn sixty_four_clients_on_sixteen_keys_are_decided_by_versions() {
        // Decided, not "too large": the versions order it without the search (its speed is the benchmark's
        // `chaos64` figure, not a timed test).
        let h = simulated(7, 200_000, 64, 16);
        let v = check(&h, ZERO, Budget::default());
        assert!(v.linearizable(), "{v:?}");
    }
}
