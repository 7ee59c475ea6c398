//! `zkdev trace --write` on real servers (3 voters + 1 observer, `--net`, fast profile): the story of one
//! write through a follower, in order and with one zxid, checked against what the servers answer (the
//! znode's mzxid read by this test's own client, the leader's `srvr`); then with one follower's quorum
//! link stalled, its ACK is missing and the commit is credited to the others.
//!
//! Ports: slot 60 (offset 10000 + slot*10 for the nodes; client proxies from 20000 + slot*100).

mod common;

use common::*;
use serde_json::Value;

fn net_base(slot: u16) -> u16 {
    20_000 + slot * 100
}

fn client_port(c: &TestCluster, id: u64) -> u16 {
    2180 + id as u16 + c.offset
}

fn trace_write(c: &TestCluster, path: &str, via: u64) -> Value {
    let via = via.to_string();
    let out = c.zkdev(&["trace", "--write", path, "--via", &via, "--json"]);
    assert_ok(&out, "trace --write");
    json(&out, "trace --write --json")["story"].clone()
}

/// Each step's (what, from, to).
fn steps(story: &Value) -> Vec<(String, String, String)> {
    (story["steps"].as_array().expect("steps").iter())
        .map(|s| {
            (
                s["what"].as_str().unwrap().to_string(),
                s["from"].as_str().unwrap().to_string(),
                s["to"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Where the step (what, from, to) is in the story, and when it crossed its link.
fn at(story: &Value, what: &str, from: u64, to: &str) -> Option<(usize, u64)> {
    let from = if from == 0 {
        "client".to_string()
    } else {
        from.to_string()
    };
    (story["steps"].as_array().unwrap().iter().enumerate()).find_map(|(i, s)| {
        (s["what"] == what && s["from"] == from.as_str() && s["to"] == to && s["seen"] == true)
            .then(|| (i, s["at_us"].as_u64().unwrap()))
    })
}

/// The znode's mzxid as the servers answer it to this test's own client.
fn mzxid(c: &TestCluster, id: u64, path: &str) -> u64 {
    let connect = format!("127.0.0.1:{}", client_port(c, id));
    with_client(&connect, async |client| {
        client.sync(path).await.expect("sync");
        let (_, stat) = client.get_data(path).await.expect("the traced znode exists");
        stat.mzxid as u64
    })
}

fn hex(z: u64) -> String {
    format!("0x{z:x}")
}

#[test]
fn trace_write_through_a_follower_tells_the_whole_story_and_a_stalled_ack_is_missing() {
    let slot = 60;
    let c = TestCluster::new(slot);
    let base = net_base(slot).to_string();
    c.up(&["--nodes", "3", "--observers", "1", "--net", "--net-port-base", &base]);
    let (leader, _, _) = c.node_in_mode("leader");
    let mut followers: Vec<u64> = (1..=3u64).filter(|id| *id != leader).collect();
    followers.sort();
    let (f1, f2) = (followers[0], followers[1]);
    assert_eq!(srvr(client_port(&c, 4)).expect("the observer serves").mode, "observer");
    let l = leader.to_string();

    // Healthy: the whole story through follower f1, in order, with one zxid.
    let story = trace_write(&c, "/traced", f1);
    eprintln!("healthy story: {story:#}");
    let zxid = story["zxid"].as_str().expect("a zxid").to_string();
    assert_eq!(story["leader"], leader);
    assert_eq!(story["missing"], Value::Array(vec![]), "{:?}", steps(&story));
    let request = at(&story, "client request", 0, &f1.to_string()).expect("the client request at the follower");
    let forwarded = at(&story, "REQUEST", f1, &l).expect("REQUEST follower -> leader");
    let reply = at(&story, "reply", f1, "client").expect("the reply to the client");
    assert!(request.0 < forwarded.0 && request.1 <= forwarded.1);
    let inform = at(&story, "INFORM", leader, "4").expect("INFORM to the observer");
    for f in [f1, f2] {
        let proposal = at(&story, "PROPOSAL", leader, &f.to_string()).unwrap_or_else(|| panic!("PROPOSAL to {f}"));
        let ack = at(&story, "ACK", f, &l).unwrap_or_else(|| panic!("ACK from {f}"));
        let commit = at(&story, "COMMIT", leader, &f.to_string()).unwrap_or_else(|| panic!("COMMIT to {f}"));
        assert!(forwarded.1 <= proposal.1, "REQUEST before PROPOSAL to {f}");
        assert!(
            proposal.1 <= ack.1 && proposal.0 < ack.0,
            "PROPOSAL to {f} before its ACK"
        );
        assert!(
            proposal.1 <= commit.1 && proposal.0 < commit.0,
            "PROPOSAL to {f} before its COMMIT"
        );
    }
    // The commit needs a follower's ACK: the first COMMIT, the INFORM and the reply come after one.
    let first_ack = [f1, f2]
        .iter()
        .map(|f| at(&story, "ACK", *f, &l).unwrap().1)
        .min()
        .unwrap();
    let first_commit = [f1, f2]
        .iter()
        .map(|f| at(&story, "COMMIT", leader, &f.to_string()).unwrap().1)
        .min()
        .unwrap();
    assert!(first_ack <= first_commit && first_ack <= inform.1 && first_commit <= reply.1);
    let implied: Vec<&Value> = (story["steps"].as_array().unwrap().iter())
        .filter(|s| s["seen"] == false)
        .collect();
    assert_eq!(implied.len(), 1, "the leader's own ACK, implied");
    assert!(implied[0]["note"].as_str().unwrap().contains("implied, not seen"));
    for s in story["steps"].as_array().unwrap() {
        if s["what"] != "client request" && s["what"] != "REQUEST" {
            assert_eq!(s["zxid"].as_str(), Some(zxid.as_str()), "one zxid: {s}");
        }
    }
    // What the servers answer: the znode's mzxid, and the leader's last zxid (no write since).
    assert_eq!(hex(mzxid(&c, leader, "/traced")), zxid);
    let leader_zxid = srvr(client_port(&c, leader)).expect("the leader answers").zxid;
    assert!(leader_zxid >= u64::from_str_radix(zxid.trim_start_matches("0x"), 16).unwrap());

    // f2's quorum link stalled: no ACK from it, the commit made by the leader and f1.
    let f2s = f2.to_string();
    let out = c.zkdev(&["link", "leader", &f2s, "--stall", "--port", "quorum"]);
    assert_ok(&out, "link --stall");
    let story = trace_write(&c, "/traced", f1);
    eprintln!("stalled story: {story:#}");
    let zxid = story["zxid"].as_str().expect("a zxid").to_string();
    assert!(at(&story, "ACK", f2, &l).is_none(), "no ACK crossed the stalled link");
    assert!(at(&story, "ACK", f1, &l).is_some());
    assert!(at(&story, "COMMIT", leader, &f1.to_string()).is_some());
    assert!(at(&story, "INFORM", leader, "4").is_some());
    assert!(at(&story, "reply", f1, "client").is_some());
    let missing: Vec<&str> = (story["missing"].as_array().unwrap().iter())
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        missing.iter().any(|m| m.starts_with(&format!("ACK {f2} -> {leader}"))),
        "{missing:?}"
    );
    assert_eq!(story["committed_by"], serde_json::json!([leader, f1]));
    let notes = story["notes"].to_string();
    assert!(notes.contains(&format!("ACK of node {f2} never came")), "{notes}");
    assert_eq!(hex(mzxid(&c, f1, "/traced")), zxid);

    // The text form says the same.
    let out = c.zkdev(&["trace", "--write", "/traced", "--via", &f1.to_string()]);
    assert_ok(&out, "trace --write");
    let text = stdout(&out);
    eprintln!("{text}");
    assert!(
        text.contains(&format!("missing: ACK {f2} -> {leader} (quorum)")),
        "{text}"
    );
    assert!(
        text.contains("link fault: stall"),
        "the missing ACK's link fault is named: {text}"
    );
    assert!(text.contains("implied, not seen"), "{text}");
}

#[test]
fn trace_is_refused_without_net_with_the_fix() {
    let c = TestCluster::new(61);
    c.up(&["--nodes", "1"]);
    let out = c.zkdev(&["trace", "--write", "/x"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("without proxied links") && err.contains("--net"), "{err}");
}
