//! What zkdev says must be so: `render` on an existing cluster shows that cluster, a scenario that needs
//! what the cluster lacks is refused before any step runs, `wait` and `smoke` treat a node stopped on
//! purpose as such, and a paused node is journalled as paused when a new supervisor adopts it.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// `render` with no flags on an existing 3+1 cluster at an offset prints that cluster's own files: its
/// client ports and its observer line, not a new default cluster's. A scenario that needs disk faults is
/// refused on a cluster made without them before its first step, so no node is stopped.
#[test]
fn render_shows_the_existing_cluster_and_a_scenario_needing_disk_is_refused_before_it_starts() {
    let c = TestCluster::new(39);
    c.up(&["--nodes", "3", "--observers", "1"]);

    let out = c.zkdev(&["render"]);
    assert_ok(&out, "render");
    let text = stdout(&out);
    let client1 = c.offset + 2181;
    assert!(
        text.contains(&format!("clientPort={client1}")),
        "render does not show node 1's clientPort {client1}:\n{text}"
    );
    assert!(
        !text.contains("clientPort=2181\n"),
        "render shows a default cluster:\n{text}"
    );
    let observer_line = format!("server.4=127.0.0.1:{}:{}:observer", c.offset + 2884, c.offset + 3884);
    assert!(text.contains(&observer_line), "no `{observer_line}` in render:\n{text}");
    // What is printed is what the nodes run with.
    let on_disk = std::fs::read_to_string(c.cluster_dir().join("node4/conf/zoo.cfg")).unwrap();
    assert!(
        text.contains(&on_disk),
        "node 4's zoo.cfg on disk is not in render's output:\n{on_disk}"
    );

    // The shipped scenario needs disk faults; this cluster was made without them.
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/slow-disk-leader.toml");
    let t = Instant::now();
    let out = c.zkdev(&["run", scenario]);
    assert_eq!(out.status.code(), Some(2), "run: {}{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("disk"), "{err}");
    assert!(
        err.contains("--disk-faults") && err.contains(&format!("--port-offset {}", c.offset)),
        "the fix keeps the cluster's offset: {err}"
    );
    assert!(!err.contains("step 1"), "a step ran: {err}");
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    let s = c.status();
    for n in s["nodes"].as_array().unwrap() {
        assert_eq!(n["process"], "running", "a node was touched: {s}");
    }
    // The list form says the same.
    let file = c.home_path().join("needs-disk.toml");
    std::fs::write(
        &file,
        "name = \"needs disk\"\nneeds = [\"disk\"]\nsteps = [\"stop 1\", \"disk 1 --slow-fsync 100ms\"]\n",
    )
    .unwrap();
    let out = c.zkdev(&["run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "run: {}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("--disk-faults"), "{}", stderr(&out));
    assert!(
        srvr(c.client_port(1)).is_some(),
        "node 1 was stopped by a refused scenario"
    );
}

/// With one voter stopped on purpose and the quorum serving, `wait` exits 0 and names the stopped node;
/// `smoke` skips it at once. A node that crashed still fails `wait`.
#[test]
fn wait_and_smoke_accept_a_node_stopped_on_purpose() {
    let c = TestCluster::new(59);
    c.up(&["--nodes", "3", "--observers", "1"]);
    assert_ok(&c.zkdev(&["stop", "3"]), "stop 3");

    let out = c.zkdev(&["wait", "--timeout", "5"]);
    assert_ok(&out, "wait with node 3 stopped on purpose");
    let text = stdout(&out);
    assert!(text.contains("node 3 stopped on purpose"), "{text}");

    let t = Instant::now();
    let out = c.zkdev(&["smoke", "--timeout", "5"]);
    let took = t.elapsed();
    assert_ok(&out, "smoke with node 3 stopped");
    let text = stdout(&out);
    assert!(text.contains("node 3 skipped (stopped)"), "{text}");
    assert!(took < Duration::from_secs(3), "smoke took {took:?} with a stopped node");

    // The observer dies without zkdev: that is not on purpose, and `wait` says so.
    let pid = c.status()["nodes"][3]["pid"].as_i64().unwrap() as i32;
    signal(pid, nix::sys::signal::Signal::SIGKILL);
    poll(Duration::from_secs(10), "node 4 seen as crashed", || {
        (c.status()["nodes"][3]["process"] == "crashed").then_some(())
    });
    let out = c.zkdev(&["wait", "--timeout", "3"]);
    assert_eq!(out.status.code(), Some(1), "wait with a crashed node: {}", stdout(&out));
    assert!(stderr(&out).contains("node 4 crashed"), "{}", stderr(&out));
}

/// A node paused while no supervisor ran is journalled as paused when the next supervisor adopts it. On
/// this reconfiguration cluster, `status` says once that ZooKeeper rewrote the nodes' zoo.cfg, not on
/// every call.
#[test]
fn a_paused_node_is_journalled_as_paused_on_adoption() {
    let c = TestCluster::new(60);
    c.up(&["--nodes", "3", "--reconfig"]);
    poll(Duration::from_secs(20), "every zoo.cfg rewritten by ZooKeeper", || {
        let s = c.status();
        s["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["config_rewritten_by_zookeeper"] == true)
            .then_some(())
    });
    let first = stdout(&c.zkdev(&["status"]));
    assert!(first.contains("node 2: zoo.cfg was rewritten by ZooKeeper"), "{first}");
    let second = stdout(&c.zkdev(&["status"]));
    assert!(
        !second.contains("zoo.cfg was rewritten"),
        "said on every call: {second}"
    );
    // render shows the files as they are: ZooKeeper's zoo.cfg and the dynamic file with the servers.
    let render = stdout(&c.zkdev(&["render"]));
    let zoo_cfg = std::fs::read_to_string(c.cluster_dir().join("node2/conf/zoo.cfg")).unwrap();
    assert!(
        render.contains(&zoo_cfg),
        "node 2's zoo.cfg as on disk is not in render:\n{render}"
    );
    assert!(
        render.contains("zoo.cfg.dynamic.") && render.contains(&format!("server.3=127.0.0.1:{}", c.offset + 2883)),
        "{render}"
    );
    assert_ok(&c.zkdev(&["pause", "2"]), "pause 2");
    let sup = c.supervisor_pid().expect("a supervisor");
    signal(sup, nix::sys::signal::Signal::SIGKILL);
    poll(Duration::from_secs(10), "the supervisor gone", || {
        (!pid_alive(sup)).then_some(())
    });
    // Any command that needs the supervisor starts a new one, which adopts the nodes before it resumes 2.
    assert_ok(&c.zkdev(&["resume", "2"]), "resume 2 through a new supervisor");
    let ev = c.events();
    let adopted: Vec<&serde_json::Value> = ev
        .iter()
        .filter(|e| e["kind"] == "node_adopted" && e["node"] == 2)
        .collect();
    assert_eq!(adopted.len(), 1, "{ev:?}");
    let msg = adopted[0]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("paused"), "node 2 adopted as: {msg}");
    assert!(!msg.contains("running"), "node 2 adopted as: {msg}");
}
