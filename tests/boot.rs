//! The tutorials' first start and their observer, on real servers: `up --one-by-one` elects the voter that
//! completes the first quorum (node 3 of 5) and `explain election` tells that story; `add --observer` on a
//! cluster without dynamic reconfiguration adds the observer the static way (every zoo.cfg, a rolling
//! restart) without ever losing the quorum or an acknowledged write.
//!
//! Slots used in this file: 0, 1.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::Value;
use zookeeper_client as zk;

/// Every node's mode as its own server says it (the harness's `srvr`), once all five answer.
fn modes(c: &TestCluster, ids: &[u64]) -> Vec<String> {
    poll(Duration::from_secs(20), "every node serving", || {
        ids.iter()
            .map(|id| srvr(c.client_port(*id)).map(|s| s.mode))
            .collect::<Option<Vec<_>>>()
    })
}

#[test]
fn one_by_one_elects_the_third_of_five_and_explain_election_tells_how() {
    let c = TestCluster::new(0);
    let out = c.up(&["--nodes", "5", "--one-by-one", "--gap", "500ms"]);
    let progress = stderr(&out);
    eprintln!("{progress}");
    assert!(
        progress.contains("node 2: waiting for node 1 to look for a leader")
            && progress.contains("node 4: waiting for node 3 to serve")
            && progress.contains("node 5: starting")
            && progress.contains("node 4 serving as follower"),
        "a progress line as each node starts, saying what it waited for: {progress}"
    );

    // The servers themselves: node 3 leads, everyone else follows it.
    assert_eq!(
        modes(&c, &[1, 2, 3, 4, 5]),
        ["follower", "follower", "leader", "follower", "follower"]
    );
    let epoch = srvr(c.client_port(3)).unwrap().epoch();
    assert_eq!(epoch, 1, "a first start: epoch 1");

    // explain election --json: 3 won with the votes of 1, 2 and 3; 4 and 5 joined it as followers.
    let e: Value = poll(Duration::from_secs(10), "explain election of epoch 1", || {
        let out = c.zkdev(&["explain", "election", "--json"]);
        out.status.success().then(|| json(&out, "explain election --json"))
    });
    assert_eq!(e["leader"], 3, "{e:#}");
    assert_eq!(e["epoch"], 1, "{e:#}");
    assert_eq!(e["supporters"], serde_json::json!([1, 2, 3]), "{e:#}");
    assert_eq!(e["one_by_one"], true, "{e:#}");
    let steps = e["after_each_start"].as_array().unwrap();
    let started: Vec<u64> = steps.iter().map(|s| s["node"].as_u64().unwrap()).collect();
    assert_eq!(started, [1, 2, 3], "{e:#}");
    assert_eq!(steps[2]["quorum_for"], 3, "{e:#}");
    assert_eq!(steps[2]["votes"], serde_json::json!([[1, 3], [2, 3], [3, 3]]), "{e:#}");
    assert!(steps[1]["quorum_for"].is_null(), "no quorum of two: {e:#}");
    for id in [4, 5] {
        let n = &e["nodes"][id - 1];
        assert_eq!(n["took_part"], false, "{n:#}");
        assert_eq!(n["joined"]["leader"], 3, "node {id} joined node 3: {n:#}");
        assert_eq!(n["joined"]["as_"], "following", "{n:#}");
    }

    let text = stdout(&c.zkdev(&["explain", "election"]));
    eprintln!("{text}");
    assert!(
        text.contains("After node 3 began looking") && text.contains("nodes 1, 2 and 3 vote for node 3"),
        "{text}"
    );
    assert!(text.contains("Nodes 1, 2 and 3 voted for it"), "{text}");
    for id in [4, 5] {
        assert!(
            text.contains(&format!("Node {id} began looking at")) && text.contains("joined as a FOLLOWER of node 3"),
            "{text}"
        );
    }
    assert!(!text.contains("not running or cut off"), "{text}");
    assert!(
        text.contains('×'),
        "repeated notifications collapse into one line with a count: {text}"
    );

    // A second first start of the same cluster is no first start: refused, nothing touched.
    let again = c.zkdev(&["up", "--one-by-one"]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(stderr(&again).contains("exists already"), "{}", stderr(&again));
    assert_eq!(modes(&c, &[3]), ["leader"]);
}

/// A writer creating `/acked/<n>` one after another through `connect` until stopped, reconnecting when the
/// node it talks to restarts; the numbers whose create was acknowledged.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<u64>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(connect: String) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (s, a) = (stop.clone(), acked.clone());
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
                let mut n = 0u64;
                while !s.load(Ordering::Relaxed) {
                    let connecting = zk::Client::connector()
                        .with_session_timeout(Duration::from_secs(6))
                        .connect(&connect);
                    let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(3), connecting).await else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    let _ = client.create("/acked", b"", &opts).await;
                    while !s.load(Ordering::Relaxed) {
                        n += 1;
                        let path = format!("/acked/{n:08}");
                        let create = client.create(&path, b"w", &opts);
                        match tokio::time::timeout(Duration::from_secs(3), create).await {
                            Ok(Ok(_)) => a.lock().unwrap().push(n),
                            _ => break,
                        }
                    }
                }
            });
        });
        Writer {
            stop,
            acked,
            handle: Some(handle),
        }
    }

    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    fn finish(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
        self.acked.lock().unwrap().clone()
    }
}

/// The `/acked` children node `port` holds (after a sync), as numbers.
fn acked_on(port: u16) -> Vec<u64> {
    with_client(&format!("127.0.0.1:{port}"), async |c| {
        let _ = c.sync("/").await;
        match c.list_children("/acked").await {
            Ok(names) => names.iter().filter_map(|n| n.parse().ok()).collect(),
            Err(_) => Vec::new(),
        }
    })
}

/// What a server's client port says to `srvr`, told apart: its process is down (connection refused), it is
/// up but not serving (electing, syncing), or it serves in a mode.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Down,
    NotServing,
    Serving(String),
}

fn seen(port: u16) -> Seen {
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)) else {
        return Seen::Down;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut text = String::new();
    if s.write_all(b"srvr").is_err() || s.read_to_string(&mut text).is_err() {
        return Seen::NotServing;
    }
    match text.lines().find_map(|l| l.strip_prefix("Mode:")) {
        Some(m) => Seen::Serving(m.trim().to_string()),
        None => Seen::NotServing,
    }
}

#[test]
fn add_observer_without_reconfig_restarts_one_node_at_a_time_and_loses_no_write() {
    let c = TestCluster::new(1);
    c.up(&[]);
    let voters: Vec<u16> = (1..=3).map(|id| c.client_port(id)).collect();
    let connect = voters
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let w = Writer::start(connect);
    poll(
        Duration::from_secs(30),
        "the writer's first 20 acknowledged writes",
        || (w.count() >= 20).then_some(()),
    );

    // Watch the voters the whole time: how many are down at once, and every leader seen.
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (watching, voters) = (watching.clone(), voters.clone());
        std::thread::spawn(move || {
            let (mut worst, mut leaders, mut samples) = (0usize, Vec::<u64>::new(), 0usize);
            while watching.load(Ordering::Relaxed) {
                let now: Vec<Seen> = voters.iter().map(|p| seen(*p)).collect();
                worst = worst.max(now.iter().filter(|s| **s == Seen::Down).count());
                for (i, s) in now.iter().enumerate() {
                    if *s == Seen::Serving("leader".into()) && leaders.last() != Some(&(i as u64 + 1)) {
                        leaders.push(i as u64 + 1);
                    }
                }
                samples += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            (worst, leaders, samples)
        })
    };
    let before_add = w.count();
    let out = c.zkdev(&["add", "--observer", "--json"]);
    watching.store(false, Ordering::Relaxed);
    let (worst, leaders, samples) = watcher.join().unwrap();
    let r = json(&out, "add --observer (static)");
    eprintln!("add --observer: {r:#}");
    eprintln!("voters down at once at most: {worst} ({samples} samples); leaders seen in turn: {leaders:?}");

    assert_eq!(r["path"], "static", "{r:#}");
    assert!(r["note"].as_str().unwrap().contains("--reconfig"), "{r:#}");
    assert_eq!(r["nodes"], serde_json::json!([4]), "{r:#}");
    assert!(worst <= 1, "at most one voter down at any moment, saw {worst}");
    assert!(
        samples > 20,
        "the voters were watched during the add ({samples} samples)"
    );
    // The leader restarted once, last: one election, so at most two leaders in turn.
    let restarted = r["restarted"].as_array().unwrap();
    let ids: Vec<u64> = restarted.iter().map(|s| s["id"].as_u64().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, [1, 2, 3], "every voter restarted once: {r:#}");
    let led: Vec<&Value> = restarted.iter().filter(|s| s["was"] == "leader").collect();
    assert_eq!(led.len(), 1, "{r:#}");
    assert_eq!(restarted.last().unwrap()["was"], "leader", "the leader last: {r:#}");
    assert!(leaders.len() <= 2, "one election at most: leaders seen {leaders:?}");

    // Four nodes serving, the 4th as an observer, every voter as leader or follower.
    let modes = modes(&c, &[1, 2, 3, 4]);
    assert_eq!(modes[3], "observer", "{modes:?}");
    assert_eq!(modes.iter().filter(|m| *m == "leader").count(), 1, "{modes:?}");
    assert_eq!(modes.iter().filter(|m| *m == "follower").count(), 2, "{modes:?}");
    for id in 1..=4 {
        let cfg = std::fs::read_to_string(c.cluster_dir().join(format!("node{id}/conf/zoo.cfg"))).unwrap();
        assert!(
            cfg.lines()
                .any(|l| l.starts_with("server.4=") && l.contains(":observer")),
            "node {id}'s zoo.cfg names the observer: {cfg}"
        );
        assert_eq!(cfg.contains("peerType=observer"), id == 4, "node {id}: {cfg}");
    }
    let s = c.status();
    let n4 = &s["nodes"][3];
    assert_eq!(
        (n4["id"].as_u64(), n4["role"].as_str(), n4["mode"].as_str()),
        (Some(4), Some("observer"), Some("observer")),
        "{s:#}"
    );

    // The writer went on through the add and lost nothing: every acknowledged write on every node.
    poll(Duration::from_secs(30), "writes acknowledged after the add", || {
        (w.count() >= before_add + 20).then_some(())
    });
    let acked = w.finish();
    assert!(acked.len() > before_add, "the writer wrote during the add");
    for id in 1..=4 {
        let have: std::collections::BTreeSet<u64> = acked_on(c.client_port(id)).into_iter().collect();
        let missing: Vec<u64> = acked.iter().filter(|n| !have.contains(n)).copied().collect();
        assert!(missing.is_empty(), "node {id} lacks acknowledged writes {missing:?}");
    }
    eprintln!(
        "static add: {} acknowledged writes ({} before the add), all on every node",
        acked.len(),
        before_add
    );
    let journal = c.events();
    assert!(
        journal.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("static add of node 4"))),
        "the journal tells the static add"
    );
}
