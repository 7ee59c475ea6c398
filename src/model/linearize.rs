//! A linearizability checker for `chaos --workload register`: is there one order of the recorded operations,
//! consistent with real time (an operation that returned before another was invoked comes first), in which
//! a versioned register (a znode's data and version) gives every answer the clients saw?
//!
//! The search is Wing & Gong's with the pruning Porcupine made practical (Lowe's cache): the history is split
//! per key (a register's history is linearizable on its own, P-compositionality); each key's calls and
//! returns are sorted by time into a doubly linked list; a depth-first search linearizes a pending call
//! whose model step is legal, lifting it (and its return) out of the list, and backtracks when it meets a
//! return whose call is not linearized yet. A set of (linearized operations, model state) already explored
//! cuts repeated work. An operation whose outcome is unknown (the client timed out) returns at +infinity: it
//! may take effect at any point after its call, or never.
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

/// The verdict for a whole history.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub linearizable: bool,
    pub keys: usize,
    pub ops: usize,
    /// The key whose history is not linearizable, the first found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The fewest operations (ids, in call order) found that are not linearizable together, starting
    /// from any state of the register.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub excerpt: Vec<usize>,
}

/// Check `ops` against a register per key that starts at `initial`.
pub fn check(ops: &[Op], initial: Reg) -> Verdict {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let keys = by_key.len();
    for (key, mut part) in by_key {
        part.sort_by_key(|o| (o.call_us, o.id));
        if !linearizable(&part, Some(initial)) {
            let excerpt = shrink(&part, initial);
            return Verdict {
                linearizable: false,
                keys,
                ops: ops.len(),
                key: Some(key.to_string()),
                excerpt,
            };
        }
    }
    Verdict {
        linearizable: true,
        keys,
        ops: ops.len(),
        key: None,
        excerpt: Vec::new(),
    }
}

const NIL: usize = usize::MAX;

/// One key's history: Wing & Gong's search with Lowe's cache, over a dancing-links list of calls and returns.
pub fn linearizable(ops: &[&Op], initial: Option<Reg>) -> bool {
    let n = ops.len();
    if n == 0 {
        return true;
    }
    // Entries 0..n are calls, n..2n returns; entry 2n is the list's head.
    let mut order: Vec<usize> = (0..2 * n).collect();
    let time = |e: usize| -> (u64, u8) {
        if e < n {
            (ops[e].call_us, 0)
        } else {
            // A return at the same time as a call comes after it: the two overlap (the permissive reading).
            (ops[e - n].ret_us.unwrap_or(u64::MAX), 1)
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
    let mut done = vec![0u64; words];
    let mut seen: HashSet<(Vec<u64>, Option<Reg>)> = HashSet::new();
    let mut stack: Vec<(usize, Option<Reg>)> = Vec::new();
    let mut state = initial;
    let mut entry = next[head];
    while next[head] != NIL {
        if entry < n {
            let op = ops[entry];
            if let Some(after) = step(state, op.call, op.ret) {
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
                return false;
            };
            state = s;
            done[e / 64] &= !(1 << (e % 64));
            unlift(&mut next, &mut prev, e);
            entry = next[e];
        }
    }
    true
}

/// A short excerpt that still fails. Each cut only weakens what the history claims, so whatever still fails
/// shows a real violation: cut at a time T (operations invoked later go; one still running at T keeps its
/// call but not its answer: a read goes, a CAS becomes unknown), start later from any state of the register
/// (keeping operations still in flight then), and drop reads and refused CASes one at a time. Nothing else is
/// dropped: dropping a write could make a later read look wrong when it is not.
fn shrink(part: &[&Op], initial: Reg) -> Vec<usize> {
    let cut = |t: u64| -> Vec<Op> {
        let called = part.iter().filter(|o| o.call_us <= t);
        let weakened = called.filter_map(|o| match o.ret_us {
            Some(r) if r > t => match o.call {
                Call::Read => None,
                Call::Cas { .. } => Some(Op {
                    ret_us: None,
                    ret: Ret::Unknown,
                    ..(*o).clone()
                }),
            },
            _ => Some((*o).clone()),
        });
        weakened.collect()
    };
    let fails = |ops: &[Op], from: Option<Reg>| !linearizable(&ops.iter().collect::<Vec<_>>(), from);
    // The earliest cut that fails (a binary search over the calls' times).
    let times: Vec<u64> = part.iter().map(|o| o.call_us).collect();
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
    prefix.sort_by_key(|o| (o.call_us, o.id));
    // The latest start that still fails from any state.
    let window = |start: usize| -> Vec<Op> {
        let from = prefix[start].call_us;
        let in_flight = prefix[..start].iter().filter(|o| o.ret_us.is_none_or(|r| r >= from));
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
            let droppable = keep[i].call == Call::Read || keep[i].ret == Ret::Failed;
            let mut without = keep.clone();
            without.remove(i);
            if droppable && !without.is_empty() && fails(&without, from) {
                keep = without;
            } else {
                i += 1;
            }
        }
    }
    keep.sort_by_key(|o| (o.call_us, o.id));
    keep.iter().map(|o| o.id).collect()
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
        let v = check(&h, ZERO);
        assert!(v.linearizable, "{v:?}");
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
        let v = check(&h, ZERO);
        assert!(!v.linearizable);
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
        let v = check(&h, ZERO);
        assert!(!v.linearizable);
        assert_eq!(v.excerpt, vec![1, 2], "{v:?}");
    }

    #[test]
    fn a_read_of_a_write_that_failed_is_a_violation() {
        let h = vec![
            op(0, 1, 0, Some(10), cas(0, 7), Ret::Failed),
            op(1, 2, 20, Some(30), Call::Read, read(7, 1)),
        ];
        assert!(!check(&h, ZERO).linearizable);
        // The same read is fine when the CAS's outcome is unknown: it may have taken effect.
        let h = vec![
            op(0, 1, 0, None, cas(0, 7), Ret::Unknown),
            op(1, 2, 20, Some(30), Call::Read, read(7, 1)),
        ];
        assert!(check(&h, ZERO).linearizable);
    }

    #[test]
    fn unknown_outcomes_may_apply_late_or_never_but_not_before_their_call() {
        // Never applied: reads keep seeing the old value.
        let never = vec![
            op(0, 1, 0, None, cas(0, 7), Ret::Unknown),
            op(1, 2, 20, Some(30), Call::Read, read(0, 0)),
            op(2, 2, 40, Some(50), Call::Read, read(0, 0)),
        ];
        assert!(check(&never, ZERO).linearizable);
        // Applied long after the client gave up.
        let late = vec![
            op(0, 1, 0, None, cas(0, 7), Ret::Unknown),
            op(1, 2, 20, Some(30), Call::Read, read(0, 0)),
            op(2, 2, 1000, Some(1010), Call::Read, read(7, 1)),
        ];
        assert!(check(&late, ZERO).linearizable);
        // Seen, then unseen: once applied it stays.
        let flicker = vec![
            op(0, 1, 0, None, cas(0, 7), Ret::Unknown),
            op(1, 2, 20, Some(30), Call::Read, read(7, 1)),
            op(2, 2, 40, Some(50), Call::Read, read(0, 0)),
        ];
        assert!(!check(&flicker, ZERO).linearizable);
        // A read that completed before the unknown CAS was invoked cannot see it.
        let before = vec![
            op(0, 2, 0, Some(10), Call::Read, read(7, 1)),
            op(1, 1, 20, None, cas(0, 7), Ret::Unknown),
        ];
        assert!(!check(&before, ZERO).linearizable);
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
        let v = check(&h, ZERO);
        assert!(!v.linearizable);
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
            let v = check(&h, ZERO);
            assert!(v.linearizable, "seed {seed}: {v:?}");
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
        let v = check(&h, ZERO);
        assert!(!v.linearizable);
        // The bad read and a few operations around it, not the whole key's history.
        assert!(v.excerpt.contains(&victim) && v.excerpt.len() <= 6, "{v:?}");
    }

    #[test]
    fn ten_thousand_operations_are_checked_in_well_under_a_second() {
        let h = simulated(42, 10_000, 8, 4);
        let t = std::time::Instant::now();
        let v = check(&h, ZERO);
        let took = t.elapsed();
        assert!(v.linearizable, "{v:?}");
        // Debug builds are several times slower than release; the bound holds for both on a loaded machine.
        assert!(took < std::time::Duration::from_secs(1), "took {took:?}");
    }
}
