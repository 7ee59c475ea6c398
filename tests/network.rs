//! Network faults on real servers with proxied links (`up --net`, fast profile): isolating the leader, a
//! partition with no majority, a delayed and a stalled quorum link, a client cut from its node, and `verify
//! --nemesis` (seeded random faults, replayed from the seed). Every claim is checked against what the
//! servers answer (`srvr`, `cons`) or what a real client sees.
//!
//! Ports: slots 20..=27 (offset 10000 + slot*10 for the nodes); the client proxies of slot s use the block
//! from 20000 + s*100 (one port per node; the peer links' proxies listen at 127.1.x.y), clear of every
//! slot's node ports (12181..19100) and below the ephemeral range.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use zookeeper_client as zk;

fn net_base(slot: u16) -> u16 {
    20_000 + slot * 100
}

fn up_net(c: &TestCluster, slot: u16, nodes: u32) {
    let base = net_base(slot).to_string();
    let n = nodes.to_string();
    c.up(&["--nodes", &n, "--net", "--net-port-base", &base]);
}

fn client_port(c: &TestCluster, id: u16) -> u16 {
    2180 + id + c.offset
}

fn modes(c: &TestCluster, n: u16) -> Vec<Option<String>> {
    (1..=n).map(|i| srvr(client_port(c, i)).map(|s| s.mode)).collect()
}

fn leader(c: &TestCluster, n: u16) -> (u16, Srvr) {
    poll(Duration::from_secs(30), "one leader", || {
        (1..=n).find_map(|i| srvr(client_port(c, i)).filter(|s| s.mode == "leader").map(|s| (i, s)))
    })
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn acl() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

/// The four-letter word `word` answered by 127.0.0.1:port.
fn four(port: u16, word: &str) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(word.as_bytes());
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text
}

fn ok_json(c: &TestCluster, args: &[&str]) -> Value {
    let out = c.zkdev(args);
    assert_ok(&out, &args.join(" "));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?} --json: {e}: {}", stdout(&out)))
}

/// `isolate leader` on 3 voters: the two others elect a new leader with a higher epoch while the old one,
/// cut off on quorum *and* election links, stays LOOKING (it cannot even take part in an election, so the
/// dial-back trap is closed); a write through the old leader is not acknowledged; after `heal` the old
/// leader rejoins as a follower and every node reports the same zxid.
#[test]
fn isolate_leader_then_heal() {
    let slot = 20;
    let c = TestCluster::new(slot);
    up_net(&c, slot, 3);
    let (old, before) = leader(&c, 3);

    let r = ok_json(&c, &["isolate", "leader", "--json"]);
    eprintln!("isolate report: {r}");
    assert_eq!(r["old_leader"], old as u64);
    let new = r["new_leader"].as_u64().expect("a new leader on the majority side") as u16;
    assert_ne!(new, old);
    assert!(r["new_epoch"].as_u64().unwrap() > before.epoch(), "{r}");
    // What the servers say: the new leader has a higher epoch, the old leader is LOOKING (no srvr answer).
    let s = srvr(client_port(&c, new)).expect("new leader answers");
    assert_eq!(s.mode, "leader");
    assert!(s.epoch() > before.epoch());
    // It stays LOOKING: with its election links cut it can neither win nor learn the result.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_eq!(
            srvr(client_port(&c, old)),
            None,
            "the isolated node served: {:?}",
            modes(&c, 3)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(four(client_port(&c, old), "srvr").contains("not currently serving"));

    // A write through the old leader's client port is not acknowledged; one through the majority is.
    let rt = rt();
    let old_port = client_port(&c, old);
    let refused = rt.block_on(async {
        let attempt = async {
            let client = zk::Client::connector()
                .with_session_timeout(Duration::from_secs(4))
                .with_connection_timeout(Duration::from_secs(2))
                .connect(&format!("127.0.0.1:{old_port}"))
                .await?;
            client.create("/isolated-write", b"x", &acl()).await.map(|_| ())
        };
        tokio::time::timeout(Duration::from_secs(4), attempt).await
    });
    assert!(
        !matches!(refused, Ok(Ok(()))),
        "a write through the isolated old leader was acknowledged"
    );
    let majority = format!("127.0.0.1:{}", client_port(&c, new));
    rt.block_on(async {
        let client = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&majority)
            .await
            .expect("client on the majority side");
        client
            .create("/majority-write", b"y", &acl())
            .await
            .expect("write acknowledged by the majority");
    });

    let h = ok_json(&c, &["heal", "--json"]);
    eprintln!("heal report: {h}");
    // Followers still on their last zxid after the heal is ordinary: a note, never a warning.
    assert!(h["warning"].is_null(), "heal warned: {h}");
    assert!(
        !h["one_zxid_ms"].is_null() || h["note"].as_str().is_some_and(|n| n.contains("(normal)")),
        "{h}"
    );
    let rejoined = poll(
        Duration::from_secs(30),
        "every node on one zxid, old leader following",
        || {
            let all: Vec<Srvr> = (1..=3).filter_map(|i| srvr(client_port(&c, i))).collect();
            (all.len() == 3 && all.iter().all(|s| s.zxid == all[0].zxid)).then_some(all)
        },
    );
    assert_eq!(rejoined[(old - 1) as usize].mode, "follower");
    assert_eq!(rejoined[(new - 1) as usize].mode, "leader");
    // The write made while it was cut off never happened.
    let isolated_write_exists = rt.block_on(async {
        let client = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&format!("127.0.0.1:{old_port}"))
            .await
            .unwrap();
        client.check_stat("/isolated-write").await.unwrap().is_some()
    });
    assert!(!isolated_write_exists);

    // Every change is in the journal with the command that asked.
    let events = c.events();
    for action in ["isolate", "heal"] {
        assert!(
            events
                .iter()
                .any(|e| e["kind"] == "action" && e["action"] == action && e["cause"].as_str().is_some()),
            "no `{action}` action in the journal"
        );
    }
    // `status --json` gains a links section (healthy again: no rules).
    let st = c.status();
    assert_eq!(st["links"]["proxied"], true);
    assert_eq!(st["links"]["rules"].as_array().map(Vec::len), Some(0));
}

/// 1 | 1 | 1: no side has a majority, every voter stays LOOKING, and `wait` says why. A cluster made
/// without --net answers a network fault with how to get one.
#[test]
fn partition_without_majority_leaves_every_voter_looking() {
    let slot = 21;
    let c = TestCluster::new(slot);
    up_net(&c, slot, 3);
    let out = c.zkdev(&["partition", "1", "--no-wait"]);
    assert_ok(&out, "partition 1");
    let out = c.zkdev(&["partition", "2", "--from", "3", "--json"]);
    assert_ok(&out, "partition 2 --from 3");
    poll(Duration::from_secs(15), "every voter LOOKING", || {
        (1..=3)
            .all(|i| four(client_port(&c, i), "srvr").contains("not currently serving"))
            .then_some(())
    });
    // And it stays so.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert_eq!(modes(&c, 3), vec![None, None, None]);
        std::thread::sleep(Duration::from_millis(100));
    }
    let links = ok_json(&c, &["links", "--json"]);
    assert_eq!(links["rules"].as_array().unwrap().len(), 12, "{links}");
    let w = c.zkdev(&["wait", "--timeout", "2"]);
    assert!(!w.status.success());
    let why = stderr(&w);
    eprintln!("wait says: {why}");
    assert!(
        why.contains("looking") || why.contains("LOOKING") || why.contains("not serving"),
        "{why}"
    );
    let h = ok_json(&c, &["heal", "--json"]);
    assert!(h["all_serving_ms"].as_u64().is_some(), "{h}");

    // A cluster without proxied links refuses, and says how to get one.
    let plain = TestCluster::new(22);
    plain.up(&["--nodes", "1"]);
    let out = plain.zkdev(&["isolate", "leader"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--net"), "{}", stderr(&out));
}

/// `link --delay 300ms` on the leader's quorum links: writes are still acknowledged, each taking at least
/// 300 ms as a real client measures it.
#[test]
fn delayed_quorum_links_slow_every_write() {
    let slot = 23;
    let c = TestCluster::new(slot);
    up_net(&c, slot, 3);
    let (l, _) = leader(&c, 3);
    for f in (1..=3u16).filter(|i| *i != l) {
        let (ls, fs) = (l.to_string(), f.to_string());
        let out = c.zkdev(&["link", &ls, &fs, "--delay", "300ms", "--port", "quorum"]);
        assert_ok(&out, "link --delay");
    }
    let port = client_port(&c, l);
    let took = rt().block_on(async {
        let client = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&format!("127.0.0.1:{port}"))
            .await
            .unwrap();
        let mut took = Vec::new();
        for i in 0..3 {
            let t = Instant::now();
            client
                .create(&format!("/slow-{i}"), b"x", &acl())
                .await
                .expect("acknowledged");
            took.push(t.elapsed());
        }
        took
    });
    eprintln!("write latencies with 300 ms on the leader's quorum links: {took:?}");
    assert!(took.iter().all(|d| *d >= Duration::from_millis(300)), "{took:?}");
    assert!(took.iter().all(|d| *d < Duration::from_secs(5)), "{took:?}");
}

/// `--stall` on a follower's quorum link: the connection stays open and moves nothing; ZooKeeper drops
/// the follower after about syncLimit x tickTime (fast profile: 10 x 200 ms = 2 s). The measured time is
/// printed.
#[test]
fn stalled_follower_link_is_dropped_after_sync_limit() {
    let slot = 24;
    let c = TestCluster::new(slot);
    up_net(&c, slot, 3);
    let (l, _) = leader(&c, 3);
    let f = (1..=3u16).find(|i| *i != l).unwrap();
    let (fs, ls) = (f.to_string(), l.to_string());
    let t = Instant::now();
    let out = c.zkdev(&["link", &fs, &ls, "--stall", "--port", "quorum"]);
    assert_ok(&out, "link --stall");
    poll(
        Duration::from_secs(15),
        "the stalled follower to stop following",
        || (srvr(client_port(&c, f)).map(|s| s.mode) != Some("follower".into())).then_some(()),
    );
    let dropped = t.elapsed();
    eprintln!("stalled follower {f} dropped after {dropped:?} (syncLimit x tickTime = 2000 ms)");
    assert!(
        dropped >= Duration::from_millis(1500),
        "{dropped:?}: too early for a stall"
    );
    assert!(dropped < Duration::from_secs(8), "{dropped:?}");
    // The leader kept its quorum with the other follower.
    assert_eq!(srvr(client_port(&c, l)).map(|s| s.mode), Some("leader".into()));
    let _ = c.zkdev(&["heal"]);
    poll(Duration::from_secs(30), "the follower back", || {
        (srvr(client_port(&c, f)).map(|s| s.mode) == Some("follower".into())).then_some(())
    });
}

/// A client cut from its node (`link client ID --cut`) reconnects to another node within its session
/// timeout and keeps its session.
#[test]
fn client_cut_from_its_node_keeps_its_session() {
    let slot = 25;
    let c = TestCluster::new(slot);
    up_net(&c, slot, 3);
    let env = ok_json(&c, &["env", "--json"]);
    let connect = env["ZK_CONNECT_STRING"].as_str().unwrap().to_string();
    assert!(connect.contains(&net_base(slot).to_string()), "{connect}");
    let where_is = |sid: &str| -> Option<u16> { (1..=3).find(|i| four(client_port(&c, *i), "cons").contains(sid)) };
    let rt = rt();
    rt.block_on(async {
        let client = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&connect)
            .await
            .unwrap();
        let sid = format!("sid={}", client.session_id());
        let first = poll(Duration::from_secs(5), "the node serving our session", || {
            where_is(&sid)
        });
        let out = c.zkdev(&["link", "client", &first.to_string(), "--cut"]);
        assert_ok(&out, "link client --cut");
        let t = Instant::now();
        // A request in flight when the link is cut fails (ConnectionLoss: its outcome unknown), as
        // ZooKeeper specifies; the client reconnects elsewhere and a retry goes through on the same session
        // (NodeExists: the first attempt had landed).
        loop {
            match client.create("/after-cut", b"z", &acl()).await {
                Ok(_) | Err(zk::Error::NodeExists) => break,
                // ConnectionLoss, or the broken pipe of the cut connection: retry; an expired session fails.
                Err(e) if !matches!(e, zk::Error::SessionExpired) && t.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("a write after the cut, on the same session: {e:?}"),
            }
        }
        let second = poll(Duration::from_secs(10), "the session on another node", || {
            where_is(&sid).filter(|n| *n != first)
        });
        eprintln!(
            "session {sid} moved from node {first} to node {second} in {:?}",
            t.elapsed()
        );
        assert!(t.elapsed() < Duration::from_secs(10));
        assert_eq!(format!("sid={}", client.session_id()), sid);
    });
}

/// The plan part of each injected fault (what, whom, when, how long as planned): what the same seed must
/// reproduce. The measured times and the nodes a role resolved to may differ between runs.
fn fault_plan(report: &Value) -> Vec<Value> {
    let faults = report["nemesis"]["faults"].as_array().expect("nemesis.faults");
    faults
        .iter()
        .map(|f| {
            serde_json::json!({
                "n": f["n"], "kind": f["kind"], "target": f["target"], "peer": f["peer"],
                "delay_ms": f["delay_ms"], "at_ms": f["at_ms"], "hold_ms": f["hold_ms"],
            })
        })
        .collect()
}

/// `verify --nemesis partition,stall,kill --seed 7`, twice on one `--net` cluster: no acknowledged write is
/// lost on any node (verify asks each node alone), every planned fault is injected and journalled with
/// verify as the cause, and the second run injects the same faults in the same order.
fn nemesis_twice(slot: u16, duration: &str, faults: Option<&str>) {
    let c = TestCluster::new(slot);
    up_net(&c, slot, 3);
    let mut args = vec![
        "verify",
        "--nemesis",
        "partition,stall,kill",
        "--seed",
        "7",
        "--duration",
        duration,
        "--json",
    ];
    if let Some(n) = faults {
        args.extend(["--faults", n]);
    }
    let mut plans = Vec::new();
    for run in 1..=2 {
        let r = ok_json(&c, &args);
        eprintln!("nemesis run {run}: {}", r["nemesis"]);
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["lost"], 0, "{r}");
        assert_eq!(r["duplicated"], 0, "{r}");
        assert_eq!(r["out_of_order"], 0, "{r}");
        let acked = r["acknowledged"].as_u64().unwrap();
        assert!(acked > 0, "{r}");
        for n in r["nodes"].as_array().unwrap() {
            assert_eq!(n["present"].as_u64(), Some(acked), "node {n}");
            assert_eq!(n["missing"], 0, "node {n}");
        }
        let nem = &r["nemesis"];
        assert_eq!(nem["seed"], 7);
        assert_eq!(nem["kinds"], serde_json::json!(["partition", "stall", "kill"]));
        let injected = nem["faults"].as_array().unwrap();
        assert_eq!(
            injected.len() as u64,
            nem["planned"].as_u64().unwrap(),
            "every planned fault injected"
        );
        for f in injected {
            assert!(
                ["partition", "stall", "kill"].contains(&f["kind"].as_str().unwrap()),
                "{f}"
            );
            assert!(f["recovered_ms"].as_u64().is_some(), "{f}");
        }
        let kills = injected.iter().filter(|f| f["kind"] == "kill").count();
        assert_eq!(r["kills"].as_array().unwrap().len(), kills, "{r}");
        plans.push(fault_plan(&r));
    }
    assert_eq!(
        plans[0], plans[1],
        "the same seed must inject the same faults in the same order"
    );

    // Every fault went through the supervisor and is in the journal with verify's command line as cause.
    let by_verify = c
        .events()
        .into_iter()
        .filter(|e| e["kind"] == "action" && e["cause"].as_str().is_some_and(|c| c.contains("verify --nemesis")))
        .count();
    // Each fault is at least two actions (cut and heal, stop signal and start).
    assert!(
        by_verify >= 2 * plans[0].len(),
        "{by_verify} actions journalled for {:?}",
        plans[0]
    );

    // What the servers say afterwards: every node serves, one leader.
    let (l, _) = leader(&c, 3);
    poll(Duration::from_secs(30), "every node serving", || {
        let m = modes(&c, 3);
        m.iter().all(|m| m.is_some()).then_some(())
    });
    eprintln!("after the nemesis: leader {l}, modes {:?}", modes(&c, 3));
}

/// The short version for the default suite: 3 faults in 10 s, twice.
#[test]
fn nemesis_loses_no_acknowledged_write_and_replays_from_its_seed() {
    nemesis_twice(26, "10", Some("3"));
}

/// The version: 30 s twice (one fault per 4 s). Too long for the default suite on a 2-core machine;
/// `scripts/test` runs it when CI=true, by hand: `cargo test --test network -- --ignored --test-threads 1`.
#[test]
#[ignore = "two 30 s runs; scripts/test runs it with CI=true"]
fn nemesis_for_30_seconds_twice_replays_from_its_seed() {
    nemesis_twice(27, "30", None);
}

/// A nemesis with network faults on a cluster without proxied links is refused before anything starts,
/// saying how to make one.
#[test]
fn nemesis_network_faults_need_a_net_cluster() {
    let slot = 27; // shared with the ignored test, which never runs beside it (`--ignored` runs only those)
    let c = TestCluster::new(slot);
    c.up(&["--nodes", "3"]);
    let out = c.zkdev(&["verify", "--nemesis", "kill,stall", "--seed", "1", "--duration", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("--nemesis stall needs proxied links"), "{err}");
    // The remedy keeps the cluster's shape, profile and offset.
    assert!(
        err.contains(&format!(
            "up --nodes 3 --profile fast --port-offset {} --net`",
            c.offset
        )),
        "{err}"
    );
    // Nothing was done: no action in the journal from verify.
    assert!(c
        .events()
        .iter()
        .all(|e| !e["cause"].as_str().is_some_and(|c| c.contains("verify"))));
}
