//! Dynamic reconfiguration on a cluster with proxied links (`up --net --reconfig`): the server string zkdev
//! gives `reconfig` for a new node names a host every member resolves to its own proxy of the link, so the
//! committed configuration keeps the new node's traffic going through the proxies, and a network fault on
//! it is real. Checked by asking the servers (`conf`, `srvr`) and by the sockets the new JVM holds.
//!
//! Ports: slot 37 (node ports 10370 + ..., client proxies from 23700).

mod common;

use std::time::{Duration, Instant};

use common::*;

const SLOT: u16 = 37;

/// Live proxied connections per (dialler, target, port kind), from `zkdev links --json`.
fn live_links(c: &TestCluster) -> Vec<(String, String, String, u64)> {
    let v = json(&c.zkdev(&["links", "--json"]), "zkdev links");
    (v["links"].as_array().into_iter().flatten())
        .map(|l| {
            (
                l["dialler"].as_str().unwrap_or_default().to_string(),
                l["target"].as_str().unwrap_or_default().to_string(),
                l["port"].as_str().unwrap_or_default().to_string(),
                l["connections"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Remote ends (/proc's hex address, port) of the established TCP connections `pid` holds.
fn remotes_of(pid: i32) -> Vec<(String, u16)> {
    let inodes: Vec<String> = (std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten())
    .filter_map(|fd| std::fs::read_link(fd.path()).ok())
    .filter_map(|t| {
        let t = t.to_string_lossy().into_owned();
        t.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string)
    })
    .collect();
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table).unwrap_or_default().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == "01" && inodes.iter().any(|i| i == f[9]) {
                let (addr, port) = f[2].rsplit_once(':').unwrap();
                out.push((addr.to_string(), u16::from_str_radix(port, 16).unwrap()));
            }
        }
    }
    out
}

#[test]
fn an_added_node_talks_through_the_proxies_and_a_cut_is_real() {
    let c = TestCluster::new(SLOT);
    let base = (20_000 + SLOT * 100).to_string();
    c.up(&["--nodes", "3", "--net", "--net-port-base", &base, "--reconfig"]);
    let q = |id: u64| 2880 + id as u16 + c.offset;
    let e = |id: u64| 3880 + id as u16 + c.offset;

    let added = json(&c.zkdev(&["add", "--json"]), "zkdev add");
    assert_eq!(added["nodes"], serde_json::json!([4]), "{added}");

    // Every member committed the same configuration, and it names hosts, not 127.0.0.1: node 4's line is
    // its real ports at `zkdev-node-4`, which each member resolves to its own proxy of the link to it.
    let line4 = format!(
        "zkdev-node-4:{}:{}:participant;127.0.0.1:{}",
        q(4),
        e(4),
        c.client_port(4)
    );
    let (version, servers) = poll(Duration::from_secs(20), "every member on the new configuration", || {
        let confs: Vec<_> = (1..=4).map(|id| conf(c.client_port(id))).collect::<Option<_>>()?;
        (confs.iter().all(|x| *x == confs[0]) && confs[0].1.len() == 4).then(|| confs[0].clone())
    });
    assert_eq!(version, added["version_after"].as_str().unwrap(), "{added}");
    assert!(servers.contains(&(4, line4.clone())), "{servers:?} lacks {line4}");
    for (id, line) in &servers {
        assert!(line.starts_with(&format!("zkdev-node-{id}:")), "server.{id}={line}");
    }

    // Traffic flows through the proxies: node 4 follows over a proxied quorum connection, and its JVM holds
    // no connection to a peer's real quorum or election port, only to its link addresses 127.1.4.x.
    let status = c.status();
    let leader = status["leader"].as_u64().expect("a leader");
    poll(
        Duration::from_secs(10),
        "node 4's quorum connection in `zkdev links`",
        || {
            live_links(&c)
                .iter()
                .any(|(d, t, p, n)| *d == "4" && *t == leader.to_string() && p == "quorum" && *n >= 1)
                .then_some(())
        },
    );
    let pid4 = (status["nodes"].as_array().unwrap().iter())
        .find(|n| n["id"] == 4)
        .and_then(|n| n["pid"].as_i64())
        .expect("node 4's pid") as i32;
    let peer_ports: Vec<u16> = [1, 2, 3].iter().flat_map(|id| [q(*id), e(*id)]).collect();
    let remotes = remotes_of(pid4);
    assert!(
        (remotes.iter()).any(|(a, p)| *p == q(leader) && (1..=3).any(|t| is_v4(a, [127, 1, 4, t]))),
        "node 4 (pid {pid4}) has no connection to the leader's quorum port through 127.1.4.{leader}: {remotes:?}"
    );
    assert!(
        !(remotes.iter()).any(|(a, p)| peer_ports.contains(p) && is_loopback_v4(a)),
        "node 4 dials a peer directly, around the proxies: {remotes:?}"
    );

    // Isolating it is real: it stops serving (LOOKING, alone), the others go on; healing brings it back.
    assert_ok(&c.zkdev(&["isolate", "4"]), "zkdev isolate 4");
    poll(Duration::from_secs(15), "node 4 cut off and not serving", || {
        let others = (1..=3).all(|id| srvr(c.client_port(id)).is_some());
        (srvr(c.client_port(4)).is_none() && others).then_some(())
    });
    assert_ok(&c.zkdev(&["heal"]), "zkdev heal");
    poll(Duration::from_secs(15), "node 4 serving again after heal", || {
        srvr(c.client_port(4)).filter(|s| s.mode == "follower" || s.mode == "leader")
    });

    // A fault on one of its links is left on when it goes: it must go with it (a node added later with id 4
    // must not inherit it).
    assert_ok(
        &c.zkdev(&["link", "4", "1", "--delay", "20ms"]),
        "zkdev link 4 1 --delay 20ms",
    );
    let rules = json(&c.zkdev(&["links", "--json"]), "zkdev links")["rules"].clone();
    assert!(rules.as_array().is_some_and(|r| !r.is_empty()), "{rules}");

    // Removed: out of every member's configuration, its proxies and its link faults gone.
    let removed = json(&c.zkdev(&["remove", "4", "--json"]), "zkdev remove 4");
    let rules = json(&c.zkdev(&["links", "--json"]), "zkdev links")["rules"].clone();
    assert_eq!(rules, serde_json::json!([]), "node 4's link fault outlived it");
    assert_eq!(removed["members_after"], "voters 1,2,3", "{removed}");
    for id in 1..=3 {
        let (_, servers) = conf(c.client_port(id)).expect("conf");
        assert!(servers.iter().all(|(s, _)| *s != 4), "node {id}: {servers:?}");
    }
    let links = live_links(&c);
    assert!(
        links.iter().all(|(d, t, _, _)| d != "4" && t != "4") && links.len() == 3 * 2 * 2 + 3,
        "{links:?}"
    );
}

fn sigkill(pid: i32) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    poll(Duration::from_secs(5), "the killed process gone", || {
        (!pid_alive(pid)).then_some(())
    });
}

/// Every node answers `srvr` as leader or follower, with one leader.
fn serving(c: &TestCluster, n: u64) -> Option<()> {
    let modes: Vec<String> = (1..=n)
        .map(|id| srvr(c.client_port(id)).map(|s| s.mode))
        .collect::<Option<_>>()?;
    let ok = modes.iter().all(|m| m == "leader" || m == "follower");
    (ok && modes.iter().filter(|m| *m == "leader").count() == 1).then_some(())
}

/// SIGKILL of the supervisor while `add` runs (the new node's JVM just started): every peer link goes down
/// with it, and `add` brings a supervisor back (which restores the links) instead of waiting out its timeout,
/// so the new node syncs and `add` finishes. Then a supervisor restarted while node 2's client-proxy port is
/// taken by another program still starts: the peer links come up, the ensemble serves, `status` names the
/// proxy that could not listen, and that proxy listens once the port is free.
#[test]
fn a_supervisor_killed_during_add_comes_back_and_a_taken_proxy_port_does_not_stop_the_next() {
    let slot = 27;
    let c = TestCluster::new(slot);
    let base = 20_000 + slot * 100;
    c.up(&[
        "--nodes",
        "3",
        "--net",
        "--net-port-base",
        &base.to_string(),
        "--reconfig",
    ]);
    let sup = c.supervisor_pid().expect("a supervisor after up");

    let mut cmd = c.cmd();
    cmd.args(["add", "--json"]).timeout(Duration::from_secs(120));
    let started = Instant::now();
    let run = std::thread::spawn(move || cmd.output().expect("zkdev runs"));
    poll(Duration::from_secs(30), "node 4's JVM started by add", || {
        (c.jvms().len() == 4).then_some(())
    });
    sigkill(sup);
    let out = run.join().expect("the add thread");
    let took = started.elapsed();
    let added = json(&out, "zkdev add after its supervisor was killed");
    assert_eq!(added["nodes"], serde_json::json!([4]), "{added}");
    assert!(took < Duration::from_secs(40), "add took {took:?}:\n{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("supervisor (pid {sup})")),
        "add did not say its supervisor was replaced:\n{}",
        stderr(&out)
    );
    let sup2 = c.supervisor_pid().expect("a supervisor runs again");
    assert_ne!(sup2, sup);
    poll(Duration::from_secs(20), "4 nodes serving", || serving(&c, 4));

    // Node 2's client-proxy port taken while no supervisor runs.
    sigkill(sup2);
    let port = base + 1;
    let squatter = poll(Duration::from_secs(10), "the client-proxy port free to take", || {
        std::net::TcpListener::bind(("127.0.0.1", port)).ok()
    });
    let status = c.zkdev(&["status", "--json"]);
    poll(
        Duration::from_secs(30),
        "4 nodes serving through the peer links",
        || serving(&c, 4),
    );
    assert!(c.supervisor_pid().is_some(), "no supervisor runs:\n{}", stderr(&status));
    let v = json(&c.zkdev(&["status", "--json"]), "zkdev status --json");
    let unbound = v["links"]["unbound"].as_array().cloned().unwrap_or_default();
    assert!(
        unbound
            .iter()
            .any(|u| u.to_string().contains(&format!("127.0.0.1:{port}"))),
        "status does not name the proxy that could not listen: {}",
        v["links"]
    );
    let text = stdout(&c.zkdev(&["status"]));
    assert!(text.contains("could not listen"), "{text}");
    let journal = c.events();
    assert!(
        journal.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("127.0.0.1:{port}")) && m.contains("could not listen"))),
        "the journal does not name the proxy that could not listen"
    );
    drop(squatter);
    poll(
        Duration::from_secs(10),
        "node 2 serving through its client proxy",
        || srvr(port),
    );
}
