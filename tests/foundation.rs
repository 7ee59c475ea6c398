//! The main path on real ZooKeeper servers: up, status, kill-leader, down, up again, down --purge.
//! One cluster serves every step, in order, because each step starts from what the previous one left.

mod common;

use common::*;
use zookeeper_client as zk;

fn ports(status: &serde_json::Value) -> Vec<(u64, u16)> {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_u64().unwrap(), n["client_port"].as_u64().unwrap() as u16))
        .collect()
}

#[test]
fn up_status_kill_leader_down_and_up_again_on_real_servers() {
    let c = TestCluster::new(0);
    c.up(&["--nodes", "3", "--observers", "1"]);

    // --- the servers themselves: one leader among 1-3, 4 observes, everyone serves.
    let status = c.status();
    let by_node: Vec<(u64, Srvr)> = ports(&status)
        .into_iter()
        .map(|(id, port)| {
            (
                id,
                srvr(port).unwrap_or_else(|| panic!("node {id} does not serve on {port}")),
            )
        })
        .collect();
    let leaders: Vec<u64> = by_node
        .iter()
        .filter(|(_, s)| s.mode == "leader")
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(leaders.len(), 1, "exactly one leader: {by_node:?}");
    assert!((1..=3).contains(&leaders[0]));
    assert_eq!(by_node[3].1.mode, "observer");
    for (id, s) in &by_node[..3] {
        assert!(s.mode == "leader" || s.mode == "follower", "node {id}: {s:?}");
    }

    // --- status --json agrees with the servers, node by node.
    let status = c.status();
    assert_eq!(status["cluster"], c.name.as_str());
    assert_eq!(status["leader"].as_u64(), Some(leaders[0]));
    assert_eq!(status["quorum"]["voters"], 3);
    assert_eq!(status["quorum"]["voters_up"], 3);
    assert_eq!(status["quorum"]["needed"], 2);
    for n in status["nodes"].as_array().unwrap() {
        let id = n["id"].as_u64().unwrap();
        let truth = srvr(n["client_port"].as_u64().unwrap() as u16).unwrap();
        assert_eq!(n["process"], "running", "node {id}");
        assert_eq!(n["mode"].as_str(), Some(truth.mode.as_str()), "node {id} mode");
        assert_eq!(
            n["zxid"].as_str(),
            Some(format!("{:#x}", truth.zxid).as_str()),
            "node {id} zxid"
        );
        assert_eq!(n["epoch"].as_u64(), Some(truth.epoch()), "node {id} epoch");
        assert_eq!(n["role"], if id == 4 { "observer" } else { "participant" });
        assert!(pid_alive(n["pid"].as_i64().unwrap() as i32));
    }
    let connect = status["connect_string"].as_str().unwrap().to_string();

    // --- every listening socket of every node is on 127.0.0.1, and the cluster's ports are among them.
    for n in status["nodes"].as_array().unwrap() {
        let pid = n["pid"].as_i64().unwrap() as i32;
        let listening = listening_of(pid);
        for key in ["client_port", "quorum_port", "election_port", "admin_port"] {
            let Some(port) = n[key].as_u64().map(|p| p as u16) else {
                assert_eq!(key, "admin_port", "{key} missing");
                continue; // the fast profile runs without an AdminServer
            };
            if key == "quorum_port" && n["mode"] != "leader" {
                continue; // only the leader listens on the quorum port
            }
            assert!(
                listening.iter().any(|(_, p)| *p == port),
                "node {} {key} {port} not listening: {listening:?}",
                n["id"]
            );
        }
        for (addr, port) in &listening {
            assert!(
                is_loopback_v4(addr),
                "node {} listens on {addr}:{port}, not 127.0.0.1",
                n["id"]
            );
        }
    }

    // --- a znode written through a real client.
    with_client(&connect, async |client: zk::Client| {
        let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        client
            .create("/zkdev-foundation", b"kept", &opts)
            .await
            .expect("create znode");
    });

    // --- kill-leader: the old pid is gone, another participant leads with a higher epoch.
    let old_leader = leaders[0];
    let old = &status["nodes"][(old_leader - 1) as usize];
    let old_pid = old["pid"].as_i64().unwrap() as i32;
    let old_epoch = srvr(old["client_port"].as_u64().unwrap() as u16).unwrap().epoch();
    let out = c.zkdev(&["kill-leader", "--json"]);
    assert_ok(&out, "kill-leader");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["old_leader"].as_u64(), Some(old_leader));
    let new_leader = report["new_leader"].as_u64().expect("a new leader");
    assert_ne!(new_leader, old_leader);
    assert!((1..=3).contains(&new_leader));
    assert!(report["new_leader_ms"].as_u64().is_some());
    assert!(!pid_alive(old_pid), "old leader pid {old_pid} still runs");
    let new_port = status["nodes"][(new_leader - 1) as usize]["client_port"]
        .as_u64()
        .unwrap() as u16;
    let truth = srvr(new_port).expect("new leader serves");
    assert_eq!(truth.mode, "leader");
    assert!(
        truth.epoch() > old_epoch,
        "epoch {} not above {old_epoch}",
        truth.epoch()
    );
    assert_eq!(report["new_epoch"].as_u64(), Some(truth.epoch()));
    let after = c.status();
    assert_eq!(after["nodes"][(old_leader - 1) as usize]["process"], "stopped");

    // --- down: no JVM of the cluster is left, and the ports are closed.
    let out = c.zkdev(&["down"]);
    assert_ok(&out, "down");
    assert!(c.jvms().is_empty(), "JVMs left after down: {:?}", c.jvms());
    for (id, port) in ports(&status) {
        assert!(srvr(port).is_none(), "node {id} still answers on {port}");
    }
    assert!(
        c.cluster_dir().join("node1/data/version-2").is_dir(),
        "data kept after down"
    );
    // The fast profile's class-data-sharing archive was recorded by node 1 and adopted into the cache.
    let archives: Vec<_> = std::fs::read_dir(c.home_path().join("cds"))
        .expect("cds cache")
        .flatten()
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    assert!(!c.cluster_dir().join("node1/cds-recording.jsa").exists());

    // --- up again (no flags): the same cluster with its data.
    let out = c.zkdev(&["up"]);
    assert_ok(&out, "up again");
    let data = with_client(&connect, async |client: zk::Client| {
        client.sync("/zkdev-foundation").await.unwrap();
        client
            .get_data("/zkdev-foundation")
            .await
            .expect("znode survived down/up")
            .0
    });
    assert_eq!(data, b"kept");
    let again = c.status();
    for n in again["nodes"].as_array().unwrap() {
        let cmd = std::fs::read(format!("/proc/{}/cmdline", n["pid"])).unwrap();
        assert!(
            String::from_utf8_lossy(&cmd).contains("-XX:SharedArchiveFile="),
            "node {} maps no archive",
            n["id"]
        );
        let log = std::fs::read_to_string(n["log_file"].as_str().unwrap()).unwrap();
        assert!(
            !log.contains("[cds]"),
            "node {}: the JVM complained about the archive",
            n["id"]
        );
    }
    let leaders: Vec<_> = again["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["mode"] == "leader")
        .collect();
    assert_eq!(leaders.len(), 1);

    // --- asked for another shape, up refuses and names how to proceed.
    let out = c.zkdev(&["up", "--nodes", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--nodes 5 (it has 3)"), "{}", stderr(&out));
    assert!(stderr(&out).contains("zkdev down --purge"));

    // --- down --purge: nothing runs, the directory is gone; a second purge is a no-op.
    let out = c.zkdev(&["down", "--purge"]);
    assert_ok(&out, "down --purge");
    assert!(c.jvms().is_empty());
    assert!(!c.cluster_dir().exists());
    assert!(c.home_path().exists(), "the home itself is not zkdev's to remove");
    let out = c.zkdev(&["down", "--purge"]);
    assert_ok(&out, "second down --purge");
    assert!(stdout(&out).contains("nothing to do"));
}
