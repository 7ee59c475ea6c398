//! What the test integrations (pytest, JUnit) stand on, against real ensembles: `reset` gives a clean
//! ensemble without restarting a running JVM, `up --slot auto` lets concurrent test processes pick ports that
//! never clash, and `up --owner PID` removes a cluster whose owner died, even by SIGKILL.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use zookeeper_client as zk;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(port: u16) -> zk::Client {
    tokio::time::timeout(
        Duration::from_secs(20),
        zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&format!("127.0.0.1:{port}")),
    )
    .await
    .expect("client connects within 20 s")
    .expect("client connects")
}

fn open() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

fn pid_of(status: &Value, id: u64) -> Option<i64> {
    status["nodes"].as_array()?.iter().find(|n| n["id"] == id)?["pid"].as_i64()
}

#[test]
fn reset_deletes_every_znode_closes_every_session_and_heals_every_fault_without_restarting_a_jvm() {
    ensure_faultfs_built();
    let c = TestCluster::new(30);
    let net_base = (20_000 + 100 * 30).to_string();
    c.up(&[
        "--nodes",
        "3",
        "--observers",
        "1",
        "--net",
        "--net-port-base",
        &net_base,
        "--disk-faults",
    ]);
    let ports: Vec<u16> = (1..=4).map(|id| c.client_port(id)).collect();
    let rt = rt();

    // A tree, an ACL-protected subtree only its creator may touch, and three sessions with ephemerals.
    let clients = rt.block_on(async {
        let a = connect(ports[0]).await;
        for i in 0..20 {
            a.create(&format!("/app{i}"), b"x", &open()).await.expect("create");
            for j in 0..3 {
                a.create(&format!("/app{i}/n{j}"), b"y", &open())
                    .await
                    .expect("create child");
            }
        }
        a.create("/deep", b"", &open()).await.unwrap();
        a.create("/deep/a", b"", &open()).await.unwrap();
        a.create("/deep/a/b", b"", &open()).await.unwrap();
        let owner = connect(ports[1]).await;
        owner.auth("digest", b"alice:secret").await.expect("digest auth");
        let mine = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
        owner.create("/secret", b"s", &mine).await.expect("create /secret");
        owner
            .create("/secret/inner", b"s", &mine)
            .await
            .expect("create /secret/inner");
        let mut sessions = vec![a, owner];
        for (i, port) in ports.iter().take(3).enumerate() {
            let s = connect(*port).await;
            let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
            s.create(&format!("/eph{i}"), b"e", &eph).await.expect("ephemeral");
            sessions.push(s);
        }
        sessions
    });
    let session_ids: Vec<String> = clients
        .iter()
        .map(|s| format!("{:#x}", s.session_id().0 as u64))
        .collect();
    // Someone else (nobody) cannot read /secret's children: the ACL is real.
    rt.block_on(async {
        let nobody = connect(ports[2]).await;
        assert!(matches!(nobody.list_children("/secret").await, Err(zk::Error::NoAuth)));
    });

    // Faults: a degraded link, a slow disk, a paused follower, a stopped observer.
    assert_ok(&c.zkdev(&["link", "1", "2", "--delay", "20ms"]), "link 1 2 --delay");
    assert_ok(&c.zkdev(&["disk", "2", "--slow-fsync", "5ms"]), "disk 2 --slow-fsync");
    let (paused, _, _) = c.node_in_mode("follower");
    assert_ok(&c.zkdev(&["pause", &paused.to_string(), "--no-wait"]), "pause follower");
    assert_ok(&c.zkdev(&["stop", "4"]), "stop 4");
    let before = c.status();

    let out = c.zkdev(&["reset", "--json"]);
    let report = json(&out, "zkdev reset --json");
    eprintln!("reset: {report}");
    assert!(report["znodes_deleted"].as_u64().unwrap() >= 20 * 4 + 3 + 2, "{report}");
    assert!(report["sessions_closed"].as_u64().unwrap() >= 5, "{report}");
    let healed: Vec<&str> = report["faults_healed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(healed.iter().any(|h| h.starts_with("link")), "{report}");
    assert!(healed.iter().any(|h| h.starts_with("disk of node 2")), "{report}");
    assert_eq!(report["nodes_resumed"], serde_json::json!([paused]), "{report}");
    assert_eq!(report["nodes_started"], serde_json::json!([4]), "{report}");
    assert!(report["took_ms"].is_u64(), "{report}");

    // Every node, asked by a fresh client after a sync, has ZooKeeper's own znode only.
    rt.block_on(async {
        for port in &ports {
            let fresh = connect(*port).await;
            fresh.sync("/").await.expect("sync");
            let mut root = fresh.list_children("/").await.expect("list /");
            root.sort();
            assert_eq!(
                root,
                vec!["zookeeper".to_string()],
                "node on port {port} still has znodes"
            );
        }
    });
    // No session is left (zkdev's own included), and the old clients' sessions are over.
    let sessions = json(&c.zkdev(&["sessions", "--json"]), "sessions --json");
    for id in &session_ids {
        assert!(
            !sessions["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["id"] == id.as_str()),
            "session {id} survived the reset: {sessions}"
        );
    }
    // Every node serves; the JVMs that were running (paused one included) are the same processes.
    let after = c.status();
    assert_eq!(after["quorum"]["voters_up"], 3, "{after}");
    for n in after["nodes"].as_array().unwrap() {
        assert_eq!(n["process"], "running", "{after}");
        let id = n["id"].as_u64().unwrap();
        if id != 4 {
            assert_eq!(
                pid_of(&before, id),
                pid_of(&after, id),
                "node {id} was restarted: {after}"
            );
        }
    }
    let links = json(&c.zkdev(&["links", "--json"]), "links --json");
    assert_eq!(links["rules"], serde_json::json!([]), "{links}");
    assert!(
        c.events().iter().any(|e| e["action"] == "reset"),
        "the journal has no reset event"
    );
    drop(clients);
}

#[test]
fn four_concurrent_ups_with_slot_auto_all_serve_on_ports_of_their_own() {
    let clusters: Vec<TestCluster> = (0..4).map(|_| TestCluster::new(31)).collect();
    let outputs: Vec<std::process::Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (clusters.iter())
            .map(|c| s.spawn(|| c.zkdev(&["up", "--slot", "auto", "--nodes", "3", "--profile", "fast"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &outputs {
        assert_ok(o, "zkdev up --slot auto");
    }
    let mut slots = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for c in &clusters {
        let s = c.status();
        assert!(s["leader"].is_u64(), "no leader: {s}");
        let index = s["slot"]["index"].as_u64().unwrap_or_else(|| panic!("no slot: {s}"));
        assert!(slots.insert(index), "slot {index} given twice");
        let offset = s["slot"]["port_offset"].as_u64().unwrap();
        for n in s["nodes"].as_array().unwrap() {
            assert_eq!(
                n["client_port"].as_u64().unwrap(),
                2180 + offset + n["id"].as_u64().unwrap()
            );
            // (The fast profile has no admin server: its admin_port is null.)
            for key in ["client_port", "quorum_port", "election_port", "admin_port"] {
                let Some(p) = n[key].as_u64() else { continue };
                assert!(ports.insert(p), "port {p} ({key}) used by two clusters");
                assert!(p < 12_180, "port {p} is among the test suite's ports");
            }
        }
        let env = stdout(&c.zkdev(&["env"]));
        assert!(env.contains(&format!("ZKDEV_SLOT='{index}'")), "{env}");
        assert!(env.contains(&format!("ZKDEV_PORT_OFFSET='{offset}'")), "{env}");
    }
    for c in &clusters {
        assert_ok(&c.zkdev(&["down", "--purge"]), "down --purge");
        assert!(c.jvms().is_empty());
    }
}

#[test]
fn a_cluster_whose_owner_dies_is_stopped_and_removed_and_only_that_one() {
    // A pid that is not running is refused before anything is made.
    let refused = TestCluster::new(32);
    let out = refused.zkdev(&["up", "--owner", "999999999", "--profile", "fast"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--owner 999999999"), "{}", stderr(&out));
    assert!(!refused.cluster_dir().exists());
    drop(refused);

    let mut owner = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .expect("sleep runs");
    let owned = TestCluster::new(32);
    let plain = TestCluster::new(31);
    owned.up(&["--nodes", "3", "--owner", &owner.id().to_string()]);
    plain.up(&["--nodes", "3"]);
    assert_eq!(owned.status()["owner"], owner.id(), "status --json names the owner");
    assert_eq!(plain.status()["owner"], Value::Null);
    let plain_pids = plain.jvms();
    assert_eq!(owned.jvms().len(), 3);

    // SIGKILL, and no wait(): the owner stays a zombie, which is dead all the same.
    signal(owner.id() as i32, nix::sys::signal::Signal::SIGKILL);
    let t0 = Instant::now();
    poll(
        Duration::from_secs(10),
        "the owned cluster's JVMs, supervisor and directory to go",
        || (owned.jvms().is_empty() && owned.supervisors().is_empty() && !owned.cluster_dir().exists()).then_some(()),
    );
    eprintln!(
        "owned cluster gone {} ms after its owner was killed",
        t0.elapsed().as_millis()
    );
    let _ = owner.wait();
    assert_eq!(plain.jvms(), plain_pids, "the cluster without an owner was touched");
    assert!(plain.status()["leader"].is_u64());
}
