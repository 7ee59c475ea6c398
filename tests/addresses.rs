//! `up --addresses loopback`: every node on its own loopback address (127.0.0.21..24 here, a base no other
//! test uses) with the standard ports, running the seeds' own demonstration on real servers: 3 voters + 1
//! observer on 2181/2888/3888 (and the AdminServer on 8080), kill the leader, a new one with a higher epoch.

mod common;

use std::time::Duration;

use common::*;

const ADDRESSES: [[u8; 4]; 4] = [[127, 0, 0, 21], [127, 0, 0, 22], [127, 0, 0, 23], [127, 0, 0, 24]];

fn up_args(profile: &str) -> Vec<&str> {
    vec![
        "up",
        "--addresses",
        "loopback",
        "--address-base",
        "127.0.0.20",
        "--nodes",
        "3",
        "--observers",
        "1",
        "--profile",
        profile,
    ]
}

#[test]
fn loopback_addresses_run_the_seeds_demonstration() {
    let c = TestCluster::new(66);
    for a in ADDRESSES {
        assert!(
            srvr_at(a, 2181).is_none(),
            "something already serves on {a:?}:2181; this test needs 127.0.0.21..24 to itself"
        );
    }
    // fast, with the AdminServer on, so that 8080 is on every node's own address too.
    let profile = c.home_path().join("p.toml");
    std::fs::write(&profile, "extends = \"fast\"\n[zookeeper]\nadmin_server = true\n").unwrap();
    let out = c.zkdev(&up_args(profile.to_str().unwrap()));
    assert_ok(&out, "up --addresses loopback");

    // zoo.cfg reads like the tutorials'.
    let cfg = std::fs::read_to_string(c.cluster_dir().join("node2/conf/zoo.cfg")).unwrap();
    for line in [
        "clientPort=2181\n",
        "clientPortAddress=127.0.0.22\n",
        "server.1=127.0.0.21:2888:3888\n",
        "server.4=127.0.0.24:2888:3888:observer",
    ] {
        assert!(cfg.contains(line), "{line:?} not in\n{cfg}");
    }

    // What the servers answer, asked on each node's own address.
    let modes: Vec<String> = ADDRESSES
        .iter()
        .map(|a| srvr_at(*a, 2181).unwrap_or_else(|| panic!("{a:?} does not serve")).mode)
        .collect();
    assert_eq!(modes.iter().filter(|m| *m == "leader").count(), 1, "{modes:?}");
    assert_eq!(modes[3], "observer", "{modes:?}");

    let status = c.status();
    assert_eq!(
        status["connect_string"],
        "127.0.0.21:2181,127.0.0.22:2181,127.0.0.23:2181,127.0.0.24:2181"
    );
    let nodes = status["nodes"].as_array().unwrap();
    let leader = status["leader"].as_u64().expect("a leader") as usize;
    assert_eq!(modes[leader - 1], "leader");
    for (n, a) in nodes.iter().zip(ADDRESSES) {
        let id = n["id"].as_u64().unwrap();
        assert_eq!(n["address"], format!("127.0.0.{}", 20 + id));
        assert_eq!(n["client_port"], 2181);
        assert_eq!(n["quorum_port"], 2888);
        assert_eq!(n["election_port"], 3888);
        assert_eq!(n["admin_port"], 8080);
        assert_eq!(n["mode"].as_str(), Some(modes[id as usize - 1].as_str()));
        // Every socket the node's JVM listens on is on its own address.
        let pid = n["pid"].as_i64().unwrap() as i32;
        let listening = listening_of(pid);
        for port in [2181, 3888, 8080] {
            assert!(
                listening.iter().any(|(_, p)| *p == port),
                "node {id} does not listen on {port}: {listening:?}"
            );
        }
        for (addr, port) in &listening {
            assert!(is_v4(addr, a), "node {id} listens on {addr}:{port}, not on {a:?}");
        }
    }

    let out = c.zkdev(&["env"]);
    assert_ok(&out, "env");
    assert!(
        stdout(&out).contains("ZK_CONNECT_STRING='127.0.0.21:2181,127.0.0.22:2181,127.0.0.23:2181,127.0.0.24:2181'"),
        "{}",
        stdout(&out)
    );
    let out = c.zkdev(&["smoke"]);
    assert_ok(&out, "smoke through the nodes' own addresses");

    // A second such cluster on the same base is refused before anything starts, and told what to do.
    let other = TestCluster::new(67);
    let out = other.zkdev(&up_args("fast"));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("need different address bases"), "{err}");
    assert!(err.contains("--address-base 127.0.0.30"), "{err}");
    assert!(other.jvms().is_empty());

    // Kill the leader: a new one, with a higher epoch, as its server says on its own address.
    let old_epoch = srvr_at(ADDRESSES[leader - 1], 2181).unwrap().epoch();
    let out = c.zkdev(&["kill-leader", "--json"]);
    assert_ok(&out, "kill-leader");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["old_leader"], leader as u64);
    let new_leader = report["new_leader"].as_u64().expect("a new leader") as usize;
    assert_ne!(new_leader, leader);
    let new = poll(Duration::from_secs(10), "the new leader to serve", || {
        srvr_at(ADDRESSES[new_leader - 1], 2181).filter(|s| s.mode == "leader")
    });
    assert!(new.epoch() > old_epoch, "epoch {} after {old_epoch}", new.epoch());
    assert!(srvr_at(ADDRESSES[leader - 1], 2181).is_none(), "the old leader is gone");

    let out = c.zkdev(&["down", "--purge"]);
    assert_ok(&out, "down --purge");
    assert!(c.jvms().is_empty(), "JVMs left: {:?}", c.jvms());
    for a in ADDRESSES {
        assert!(
            std::net::TcpStream::connect_timeout(&(a, 2181).into(), Duration::from_secs(1)).is_err(),
            "{a:?}:2181 still accepts connections"
        );
    }
}
