//! Generated histories of zkdev's versioned register, for the benchmark and tests: C clients, each doing one
//! operation at a time, each operation taking effect at a point inside its interval (so the history is
//! linearizable), half reads and half CASes on the version the client last saw (sometimes an older one),
//! some CASes left without an answer (applied or not). Written as `chaos` writes `history.ndjson`.

use serde_json::json;

use super::rng::Rng;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub ops: usize,
    pub clients: u32,
    pub keys: usize,
    /// Per cent of operations without an answer (all of them CASes).
    pub unknown_percent: u32,
    pub seed: u64,
    /// Change one acknowledged read's answer to a value nobody wrote (a violation).
    pub tamper: bool,
}

/// The history as `history.ndjson` text, in completion order.
pub fn register_history(shape: Shape) -> String {
    let mut rng = Rng::new(shape.seed);
    let clients = shape.clients.max(1) as usize;
    let keys = shape.keys.max(1);
    let mut free_at = vec![0u64; clients];
    struct Planned {
        point: u64,
        client: usize,
        key: usize,
        call: u64,
        ret: u64,
        read: bool,
        unknown: bool,
    }
    let mut planned = Vec::with_capacity(shape.ops);
    for _ in 0..shape.ops {
        let client = rng.range(0, clients as u64 - 1) as usize;
        let call = free_at[client] + rng.range(0, 300);
        let len = rng.range(100, 3000);
        let unknown = rng.range(0, 99) < u64::from(shape.unknown_percent);
        free_at[client] = call + len + 1;
        planned.push(Planned {
            point: call + rng.range(0, len),
            client,
            key: rng.range(0, keys as u64 - 1) as usize,
            call,
            ret: call + len,
            read: !unknown && rng.range(0, 1) == 0,
            unknown,
        });
    }
    planned.sort_by_key(|p| p.point);
    // (value, version) per key; what each client last saw of each key.
    let mut regs = vec![(0u64, 0i32); keys];
    let mut seen = vec![vec![0i32; keys]; clients];
    let mut lines: Vec<(u64, serde_json::Value)> = Vec::with_capacity(shape.ops);
    let mut tampered = !shape.tamper;
    for (n, p) in planned.iter().enumerate() {
        let reg = &mut regs[p.key];
        let key = format!("r{}", p.key);
        if p.read {
            seen[p.client][p.key] = reg.1;
            let mut value = reg.0;
            if !tampered && reg.1 > 2 && n > shape.ops / 2 {
                value = 999_999_999;
                tampered = true;
            }
            lines.push((
                p.ret,
                json!({"client": p.client, "f": "read", "key": key, "call_us": p.call, "ret_us": p.ret,
                       "outcome": "ok", "value": format!("{value}@{}", reg.1)}),
            ));
            continue;
        }
        let expect = if rng.range(0, 3) == 0 {
            (seen[p.client][p.key] - 1).max(0)
        } else {
            seen[p.client][p.key]
        };
        let value = (p.client as u64 + 1) << 32 | n as u64;
        let applied = expect == reg.1 && !(p.unknown && rng.range(0, 1) == 0);
        if applied {
            *reg = (value, expect + 1);
        }
        let line = if p.unknown {
            json!({"client": p.client, "f": "cas", "key": key, "call_us": p.call, "gave_up_us": p.call + 2_000_000,
                   "outcome": "unknown", "value": value.to_string(), "expect": expect,
                   "error": "no answer within 2 s"})
        } else if applied {
            seen[p.client][p.key] = expect + 1;
            json!({"client": p.client, "f": "cas", "key": key, "call_us": p.call, "ret_us": p.ret,
                   "outcome": "ok", "value": value.to_string(), "expect": expect})
        } else {
            seen[p.client][p.key] = reg.1;
            json!({"client": p.client, "f": "cas", "key": key, "call_us": p.call, "ret_us": p.ret,
                   "outcome": "fail", "value": value.to_string(), "expect": expect, "error": "mismatch version"})
        };
        lines.push((if p.unknown { p.call + 2_000_000 } else { p.ret }, line));
    }
    lines.sort_by_key(|l| l.0);
    let mut out = String::new();
    for (id, (_, mut l)) in lines.into_iter().enumerate() {
        l["id"] = json!(id);
        out.push_str(&l.to_string());
        out.push('\n');
    }
    out
}

/// A generated history of the ZooKeeper model (`chaos --workload zk`'s format), for the benchmark and tests:
/// `clients` sessions on `keys` znodes (20 when `keys` is 1, as the register's default is), 30 % setData with
/// `unknown_percent` of them left without an answer, the rest plain reads (no sync) up to two versions stale
/// but never older than what their session has seen. Valid; with `tamper`, one read late in the history goes
/// back in time for its session (a violation).
pub fn zk_history(shape: Shape) -> Vec<super::zkmodel::ZkOp> {
    use super::zkmodel::{Outcome, ZkOp, F};
    let mut rng = Rng::new(shape.seed);
    let clients = shape.clients.max(1) as usize;
    let keys = if shape.keys <= 1 { 20 } else { shape.keys };
    let op = |id: u64, session: String, f: F, path: String| ZkOp {
        ret_us: Some(id * 10 + 5),
        outcome: Outcome::Ok,
        node: Some(1),
        ..ZkOp::new(id, session, f, path, id * 10)
    };
    let mut h: Vec<ZkOp> = Vec::with_capacity(shape.ops.max(keys));
    // Per znode: the zxid of each version.
    let mut versions: Vec<Vec<i64>> = vec![Vec::new(); keys];
    let mut z: i64 = 1 << 32;
    let mut floor = vec![0i64; clients];
    for (k, chain) in versions.iter_mut().enumerate() {
        z += 1;
        chain.push(z);
        let mut o = op(h.len() as u64, "setup".into(), F::Create, format!("/k{k}"));
        o.value = Some("0".into());
        o.czxid = Some(z);
        h.push(o);
    }
    // With `tamper`: the first read after 90 % of the history that can go back in time for its session does.
    let mut tamper_at = shape.tamper.then_some(shape.ops * 9 / 10);
    while h.len() < shape.ops {
        let id = h.len() as u64;
        let s = rng.range(0, clients as u64 - 1) as usize;
        let k = rng.range(0, keys as u64 - 1) as usize;
        let mut o = op(id, format!("s{s}"), F::Set, format!("/k{k}"));
        o.node = Some((s % 5) as u32 + 1);
        if rng.range(0, 99) < 30 {
            z += 1;
            let v = versions[k].len() as i32;
            o.value = Some(v.to_string());
            o.version = Some(v);
            if rng.range(0, 99) < u64::from(shape.unknown_percent) {
                o.outcome = Outcome::Unknown;
                o.ret_us = None;
            } else {
                o.mzxid = Some(z);
                floor[s] = floor[s].max(z);
            }
            versions[k].push(z);
        } else {
            let vs = &versions[k];
            let newest = vs.len() - 1;
            let mut i = newest.saturating_sub(rng.range(0, 2) as usize);
            while i < newest && vs[i + 1] <= floor[s] {
                i += 1;
            }
            let older = vs.iter().rposition(|&v| v < floor[s]).filter(|&j| j < i);
            match (tamper_at, older) {
                (Some(t), Some(j)) if h.len() >= t && vs[j + 1] <= floor[s] => {
                    // A version the session has seen replaced: back in time.
                    i = j;
                    tamper_at = None;
                }
                _ => floor[s] = floor[s].max(vs[i]),
            }
            o.f = F::Get;
            o.value = Some(i.to_string());
            o.version = Some(i as i32);
            o.mzxid = Some(vs[i]);
        }
        h.push(o);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::check::{check, ModelKind};
    use crate::model::history_formats::{parse, Format};
    use crate::model::linearize::{Budget, Decision};

    #[test]
    fn generated_histories_are_linearizable_unless_tampered_with() {
        let mut shape = Shape {
            ops: 3000,
            clients: 10,
            keys: 1,
            unknown_percent: 5,
            seed: 3,
            tamper: false,
        };
        let h = parse(&register_history(shape), Format::Zkdev).unwrap();
        assert_eq!(h.entries.len(), 3000);
        let f = check(&h, ModelKind::Register, None, Budget::default()).unwrap();
        assert_eq!(f.decision, Decision::Linearizable, "{f:?}");
        shape.tamper = true;
        let h = parse(&register_history(shape), Format::Zkdev).unwrap();
        let f = check(&h, ModelKind::Register, None, Budget::default()).unwrap();
        assert_eq!(f.decision, Decision::NotLinearizable, "{f:?}");
    }
}
