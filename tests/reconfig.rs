//! `reconfigEnabled = true`: ZooKeeper rewrites each node's zoo.cfg (its servers move to a dynamic file).
//! zkdev sees it, says so, and every later start keeps the membership ZooKeeper committed.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use common::*;

/// The membership a server reports (`conf`: its `server.N=` lines), or None when it does not answer.
fn membership(port: u16) -> Option<BTreeSet<String>> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"conf").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let servers: BTreeSet<String> = text
        .lines()
        .filter(|l| l.starts_with("server."))
        .map(|l| l.trim().to_string())
        .collect();
    (!servers.is_empty()).then_some(servers)
}

/// The dynamic file node `id`'s zoo.cfg names, if it names one that exists.
fn dynamic_file(c: &TestCluster, id: u64) -> Option<PathBuf> {
    let cfg = std::fs::read_to_string(c.cluster_dir().join(format!("node{id}/conf/zoo.cfg"))).ok()?;
    let path = cfg.lines().find_map(|l| l.strip_prefix("dynamicConfigFile="))?;
    let path = PathBuf::from(path.trim());
    path.is_file().then_some(path)
}

/// `reconfig ARGS` with Debian's zkCli through node 1 (skipACL is on). Its answer may be a ConnectionLoss
/// when the change moves the leader: the caller polls the servers for the outcome.
fn reconfig(c: &TestCluster, args: &[&str]) {
    let out = std::process::Command::new("/usr/share/zookeeper/bin/zkCli.sh")
        .args(["-server", &format!("127.0.0.1:{}", c.client_port(1)), "reconfig"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("zkCli.sh runs");
    eprintln!("zkCli reconfig {args:?}: {}", String::from_utf8_lossy(&out.stdout));
}

/// Every node serves, one of them leads, and each reports `expected` as its membership.
fn serving_with(c: &TestCluster, expected: &BTreeSet<String>, what: &str) {
    poll(Duration::from_secs(30), what, || {
        let modes: Vec<String> = (1..=3)
            .map(|id| srvr(c.client_port(id)).map(|s| s.mode))
            .collect::<Option<_>>()?;
        let leaders = modes.iter().filter(|m| *m == "leader").count();
        let same = (1..=3).all(|id| membership(c.client_port(id)).as_ref() == Some(expected));
        (leaders == 1 && same).then_some(())
    });
}

#[test]
fn a_zoo_cfg_zookeeper_rewrote_is_reported_and_its_membership_survives_restarts() {
    let c = TestCluster::new(16);
    let profile = c.home_path().join("reconfig.toml");
    std::fs::write(
        &profile,
        "extends = \"fast\"\n[zookeeper.extra]\nreconfigEnabled = \"true\"\nskipACL = \"yes\"\n",
    )
    .unwrap();
    let profile = profile.to_string_lossy().into_owned();
    let offset = c.offset.to_string();
    assert_ok(
        &c.zkdev(&["up", "--profile", &profile, "--port-offset", &offset]),
        "up with reconfigEnabled",
    );

    // ZooKeeper moves the servers into zoo.cfg.dynamic.<version> and points zoo.cfg at it.
    poll(Duration::from_secs(20), "every zoo.cfg rewritten by ZooKeeper", || {
        (1..=3).all(|id| dynamic_file(&c, id).is_some()).then_some(())
    });
    let before = poll(Duration::from_secs(20), "node 1's membership", || {
        membership(c.client_port(1))
    });
    assert_eq!(before.len(), 3, "{before:?}");
    serving_with(&c, &before, "all three serving with one membership");

    let status = c.status();
    for n in status["nodes"].as_array().unwrap() {
        assert_eq!(n["config_rewritten_by_zookeeper"], true, "{n}");
        let dynamic = n["dynamic_config_file"].as_str().unwrap();
        assert!(dynamic.contains("zoo.cfg.dynamic."), "{n}");
    }
    let text = stdout(&c.zkdev(&["status"]));
    assert!(text.contains("node 2: zoo.cfg was rewritten by ZooKeeper"), "{text}");
    // Said once: the next status does not repeat it (the JSON above always carries it).
    let again = stdout(&c.zkdev(&["status"]));
    assert!(
        !again.contains("zoo.cfg was rewritten by ZooKeeper"),
        "said again: {again}"
    );

    // render names the file on disk as different; export renders from cluster.toml, servers included.
    let out = c.zkdev(&["render", "--profile", &profile, "--port-offset", &offset]);
    assert_ok(&out, "render");
    assert!(
        stderr(&out).contains("node 1's zoo.cfg on disk") && stderr(&out).contains("ZooKeeper rewrote it"),
        "{}",
        stderr(&out)
    );
    let out = c.zkdev(&["export", "compose"]);
    assert_ok(&out, "export compose");
    assert!(stdout(&out).contains("server.3="), "{}", stdout(&out));

    // A restart keeps ZooKeeper's membership: zkdev writes its settings pointing at the dynamic file.
    assert_ok(&c.zkdev(&["restart", "1"]), "restart 1");
    serving_with(
        &c,
        &before,
        "the ensemble serving with the same membership after restart 1",
    );
    let cfg = std::fs::read_to_string(c.cluster_dir().join("node1/conf/zoo.cfg")).unwrap();
    assert!(!cfg.contains("\nserver."), "{cfg}");
    assert!(dynamic_file(&c, 1).is_some(), "{cfg}");

    let out = c.zkdev(&["rolling-restart"]);
    assert_ok(&out, "rolling-restart");
    serving_with(
        &c,
        &before,
        "the ensemble serving with the same membership after rolling-restart",
    );
    for id in 1..=3 {
        assert!(
            dynamic_file(&c, id).is_some(),
            "node {id} lost its dynamic configuration"
        );
    }

    // A real reconfig: node 3 removed. A restart of the removed node starts it as a joiner (ZooKeeper's own
    // dynamic file would make it exit: "My id 3 not in the peer list"); a full down/up keeps the committed
    // membership instead of putting the profile's back.
    reconfig(&c, &["-remove", "3"]);
    let two: BTreeSet<String> = before.iter().filter(|l| !l.starts_with("server.3=")).cloned().collect();
    serving_with(&c, &two, "the membership without node 3");
    assert_ok(&c.zkdev(&["restart", "3"]), "restart 3 (removed by the reconfig)");
    serving_with(&c, &two, "node 3 following without a vote after its restart");
    let text = stdout(&c.zkdev(&["status"]));
    assert!(text.contains("node 3 is not in it (removed by a reconfig)"), "{text}");
    assert_ok(&c.zkdev(&["down"]), "down");
    assert_ok(&c.zkdev(&["up"]), "up again");
    serving_with(&c, &two, "the committed membership after down and up");

    // verify --tls on a cluster without TLS is refused, naming the remedy.
    let out = c.zkdev(&["verify", "--tls", "--kills", "0", "--duration", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("was made without TLS"), "{}", stderr(&out));
}
