//! The ZooKeeper model on real servers: a short `chaos --workload zk` run under partitions, leader kills and
//! session expiries passes it; and a stale read made to happen for sure (the leader's quorum link to one
//! follower delayed, a write acknowledged through the leader, a read without sync through that follower)
//! is valid for the ZooKeeper model and not linearizable for the register check of the same operations.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use zkdev::model::linearize::{self, Call, Decision, Reg, Ret};
use zkdev::model::zkmodel::{self, Outcome, ZkOp, F};
use zookeeper_client as zk;

fn up_net(c: &TestCluster, slot: u16, observers: u32) {
    ensure_faultfs_built();
    let base = (20_000 + slot * 100).to_string();
    let offset = c.offset.to_string();
    let observers = observers.to_string();
    let out = c.zkdev(&[
        "up",
        "--profile",
        "chaos",
        "--port-offset",
        &offset,
        "--nodes",
        "3",
        "--observers",
        &observers,
        "--net-port-base",
        &base,
    ]);
    assert_ok(&out, "up --profile chaos");
}

/// 3 voters and an observer under partitions, leader kills and expiries, 4 clients each starting on its
/// own node: the run passes the ZooKeeper model, and its history file is the zk history it checked (every
/// node served reads without sync, watches fired, sessions moved, ephemerals were made).
#[test]
fn a_short_chaos_run_with_the_zk_workload_passes_the_zookeeper_model() {
    let slot = 56;
    let c = TestCluster::new(slot);
    up_net(&c, slot, 1);
    let dir = c.home_path().join("run");
    let out = c
        .cmd()
        .args([
            "chaos",
            "--json",
            "--out",
            dir.to_str().unwrap(),
            "--workload",
            "zk",
            "--duration",
            "7s",
            "--seed",
            "32",
            "--nemesis",
            "kill,partition,expire",
            "--faults",
            "3",
            "--clients",
            "4",
        ])
        .timeout(Duration::from_secs(120))
        .output()
        .expect("zkdev runs");
    assert_ok(&out, "chaos --workload zk");
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let faults: Vec<&str> = r["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["what"].as_str().unwrap_or(""))
        .collect();
    eprintln!("faults: {faults:?}\ncheck: {}", r["verdict"]["summary"]);
    assert_eq!(r["ok"], true, "{r}");
    // Seed 32 plans a partition of the leader, a leader kill and an expiry of every session.
    assert_eq!(faults.len(), 3, "{r}");
    assert!(faults[0].starts_with("isolated node"), "{faults:?}");
    assert!(faults[1].starts_with("killed leader"), "{faults:?}");
    assert!(faults[2].starts_with("expired"), "{faults:?}");
    let summary = r["verdict"]["summary"].as_str().unwrap();
    assert!(summary.ends_with("against the ZooKeeper model: valid"), "{summary}");

    let text = std::fs::read_to_string(dir.join("history.ndjson")).unwrap();
    let ops = zkmodel::parse(&text).unwrap_or_else(|(line, e)| panic!("history.ndjson:{line}: {e}"));
    assert_eq!(ops.len() as u64, r["ops"]["total"].as_u64().unwrap());
    let v = zkmodel::check(&ops);
    assert!(v.valid, "{:#?}", v.violations);
    let plain_reads_on = |node: u32| {
        ops.iter()
            .filter(|o| o.f == F::Get && !o.sync && o.outcome == Outcome::Ok && o.node == Some(node))
            .count()
    };
    let count = |f: F| ops.iter().filter(|o| o.f == f && o.outcome == Outcome::Ok).count();
    eprintln!(
        "{}; plain reads per node: {:?}; moves {}, expiries seen {}, events {}, ephemerals {}",
        v.summary(),
        (1..=4).map(plain_reads_on).collect::<Vec<_>>(),
        count(F::Move),
        count(F::Expire),
        count(F::Event),
        ops.iter().filter(|o| o.ephemeral && o.outcome == Outcome::Ok).count()
    );
    for node in 1..=4 {
        assert!(plain_reads_on(node) > 0, "node {node} served no read without sync");
    }
    assert!(count(F::Event) > 0 && count(F::Move) > 0 && count(F::Multi) > 0);
    assert!(count(F::Expire) > 0, "no client saw its session expire");
    assert!(ops.iter().any(|o| o.ephemeral && o.outcome == Outcome::Ok));
    assert!(ops.iter().any(|o| o.f == F::Get && o.sync && o.outcome == Outcome::Ok));
}

/// The clock of the stale-read test: microseconds since it started.
struct Clock(Instant);

impl Clock {
    fn us(&self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }
}

fn zk_op(id: u64, session: &str, node: u32, f: F, call_us: u64, ret_us: u64) -> ZkOp {
    let line = serde_json::json!({
        "id": id, "session": session, "node": node, "f": f, "path": "/stale",
        "call_us": call_us, "ret_us": ret_us, "outcome": "ok",
    });
    zkmodel::parse_line(&line.to_string()).unwrap()
}

/// Delay the leader's quorum link to one follower (`zkdev link L F --delay 1s --port quorum --one-way`),
/// write through the leader, read without sync through the follower: the read is stale. ZooKeeper allows
/// it (the reader's session had seen nothing newer), the register's linearizability does not: the two
/// checks disagree exactly there.
#[test]
fn a_stale_read_through_a_lagging_follower_is_valid_for_zookeeper_and_not_linearizable() {
    let slot = 57;
    let c = TestCluster::new(slot);
    up_net(&c, slot, 0);
    let (l, _, lport) = c.node_in_mode("leader");
    let (f, _, fport) = c.node_in_mode("follower");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let connect = |port: u16| {
        rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(20),
                zk::Client::connector()
                    .with_session_timeout(Duration::from_secs(10))
                    .connect(&format!("127.0.0.1:{port}")),
            )
            .await
            .expect("connects within 20 s")
            .expect("connects")
        })
    };
    let (w, r) = (connect(lport), connect(fport));
    let (ws, rs) = (w.session_id().to_string(), r.session_id().to_string());
    let clock = Clock(Instant::now());
    let mut zk_ops: Vec<ZkOp> = Vec::new();
    let mut reg_ops: Vec<linearize::Op> = Vec::new();
    let mut next = 0u64;
    let (l32, f32) = (l as u32, f as u32);

    // The znode, then the follower's session reads it after a sync: it has caught up.
    let t = clock.us();
    let (stat, _) = rt
        .block_on(w.create(
            "/stale",
            b"0",
            &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
        ))
        .unwrap();
    let mut o = zk_op(next, &ws, l32, F::Create, t, clock.us());
    o.value = Some("0".into());
    o.czxid = Some(stat.czxid);
    zk_ops.push(o);
    next += 1;
    let t = clock.us();
    let (data, stat) = rt
        .block_on(async {
            r.sync("/stale").await?;
            r.get_data("/stale").await
        })
        .unwrap();
    assert_eq!(data, b"0");
    let ret = clock.us();
    let mut o = zk_op(next, &rs, f32, F::Get, t, ret);
    o.sync = true;
    o.value = Some("0".into());
    o.version = Some(stat.version);
    o.mzxid = Some(stat.mzxid);
    zk_ops.push(o);
    reg_ops.push(linearize::Op {
        id: next as usize,
        client: 1,
        key: "stale".into(),
        call_us: t,
        ret_us: Some(ret),
        call: Call::Read,
        ret: Ret::Read(Reg { value: 0, version: 0 }),
    });
    next += 1;

    let (ls, fs) = (l.to_string(), f.to_string());
    let out = c.zkdev(&["link", &ls, &fs, "--delay", "1s", "--port", "quorum", "--one-way"]);
    assert_ok(&out, "link --delay");

    // Write through the leader, read through the follower at once, until a read is stale (the first one,
    // as a rule: the follower learns of the write a second after the leader acknowledged it).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stale = None;
    let mut value = 0u64;
    while stale.is_none() {
        assert!(Instant::now() < deadline, "no stale read within 20 s");
        value += 1;
        let t = clock.us();
        let stat = rt
            .block_on(w.set_data("/stale", value.to_string().as_bytes(), None))
            .unwrap();
        let ret = clock.us();
        let mut o = zk_op(next, &ws, l32, F::Set, t, ret);
        o.value = Some(value.to_string());
        o.version = Some(stat.version);
        o.mzxid = Some(stat.mzxid);
        zk_ops.push(o);
        reg_ops.push(linearize::Op {
            id: next as usize,
            client: 0,
            key: "stale".into(),
            call_us: t,
            ret_us: Some(ret),
            call: Call::Cas {
                expect: stat.version - 1,
                value,
            },
            ret: Ret::Ok,
        });
        next += 1;
        let t = clock.us();
        let (data, stat) = rt.block_on(r.get_data("/stale")).unwrap();
        let ret = clock.us();
        let read: u64 = String::from_utf8_lossy(&data).parse().unwrap();
        let mut o = zk_op(next, &rs, f32, F::Get, t, ret);
        o.value = Some(read.to_string());
        o.version = Some(stat.version);
        o.mzxid = Some(stat.mzxid);
        zk_ops.push(o);
        reg_ops.push(linearize::Op {
            id: next as usize,
            client: 1,
            key: "stale".into(),
            call_us: t,
            ret_us: Some(ret),
            call: Call::Read,
            ret: Ret::Read(Reg {
                value: read,
                version: stat.version,
            }),
        });
        if read != value {
            eprintln!(
                "stale read #{next} through follower {f}: {read} (mzxid {}) after {value} was acknowledged through \
                 leader {l}",
                zkmodel::hex(stat.mzxid)
            );
            stale = Some(next);
        }
        next += 1;
    }
    let stale = stale.unwrap();
    assert_ok(&c.zkdev(&["heal"]), "heal");
    // After a sync the follower shows the last write: it was late, not lost.
    let t = clock.us();
    let (data, stat) = rt
        .block_on(async {
            r.sync("/stale").await?;
            r.get_data("/stale").await
        })
        .unwrap();
    assert_eq!(data, value.to_string().as_bytes());
    let mut o = zk_op(next, &rs, f32, F::Get, t, clock.us());
    o.sync = true;
    o.value = Some(value.to_string());
    o.version = Some(stat.version);
    o.mzxid = Some(stat.mzxid);
    zk_ops.push(o);

    let v = zkmodel::check(&zk_ops);
    eprintln!("ZooKeeper model: {}", v.summary());
    assert!(v.valid, "{:#?}", v.violations);
    let lin = linearize::check(&reg_ops, Reg { value: 0, version: 0 }, linearize::Budget::default());
    eprintln!(
        "register check: {:?}, excerpt {:?}, {}",
        lin.decision,
        lin.excerpt,
        lin.reason.clone().unwrap_or_default()
    );
    assert_eq!(lin.decision, Decision::NotLinearizable);
    assert!(lin.excerpt.contains(&(stale as usize)), "{:?}", lin.excerpt);

    // The same stale read after a sync is a violation for the ZooKeeper model too.
    let mut synced = zk_ops.clone();
    let o = synced.iter_mut().find(|o| o.id == stale).unwrap();
    o.sync = true;
    let v = zkmodel::check(&synced);
    assert!(!v.valid);
    assert_eq!(
        v.violations[0].guarantee,
        zkmodel::Guarantee::SyncRead,
        "{:#?}",
        v.violations
    );
}
