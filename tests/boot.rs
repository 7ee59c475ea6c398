//! The tutorials' first start and their observer, on real servers: `up --one-by-one` elects the voter that
//! completes the first quorum (node 3 of 5) and `explain election` tells that story; `add --observer` on a
//! cluster without dynamic reconfiguration adds the observer the static way (every zoo.cfg, a rolling
//! restart) without ever losing the quorum or an acknowledged write.
//!
//! Slots used in this file: 0, 1.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

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
