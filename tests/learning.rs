//! Small truths a learner runs into, on a real ensemble: a one-shot `zkdev cli ID -- CMD` closes its session
//! when the command returns (so `create -e` leaves nothing behind), and `explain zxid` reads a plain number as
//! decimal and `0x...` as hex.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// A four-letter word's answer from 127.0.0.1:port (empty when the node does not answer).
fn four_letter(port: u16, word: &str) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = s.write_all(word.as_bytes());
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text
}

#[test]
fn a_one_shot_cli_closes_its_session_and_explain_zxid_reads_decimal() {
    let c = TestCluster::new(62);
    c.up(&["--nodes", "3"]);

    // zkCli asks for a 30 s session (its default -timeout); the fast profile allows up to 60 s. Without a
    // close, the ephemeral would outlive the command by those 30 s.
    let out = c.zkdev(&["cli", "1", "--", "create", "-e", "/x", "hello"]);
    assert_ok(&out, "zkdev cli 1 -- create -e /x hello");
    let returned = Instant::now();
    // zkCli's own output is kept (it prints "Created" on stderr).
    assert!(stderr(&out).contains("Created /x"), "{}", stderr(&out));

    // The servers know no session any more: none connected (`sessions`), none holding an ephemeral (`dump`
    // on the leader, which owns the session tracker).
    let sessions = json(&c.zkdev(&["sessions", "--json"]), "zkdev sessions --json");
    assert_eq!(
        sessions["sessions"],
        serde_json::json!([]),
        "no session is left: {sessions}"
    );
    let (_, _, leader_port) = c.node_in_mode("leader");
    let dump = poll(
        Duration::from_secs(5),
        "the leader's dump lists no ephemeral /x",
        || {
            let d = four_letter(leader_port, "dump");
            (d.contains("Sessions with Ephemerals") && !d.contains("/x")).then_some(d)
        },
    );
    assert!(dump.contains("Sessions with Ephemerals (0)"), "{dump}");

    // Another node agrees: /x is gone, seen through zkCli on node 2, long before a 30 s session could expire.
    let gone = poll(Duration::from_secs(10), "/x is gone when read through node 2", || {
        let out = c.zkdev(&["cli", "2", "--", "stat", "/x"]);
        let text = format!("{}{}", stdout(&out), stderr(&out));
        text.contains("Node does not exist").then_some(text)
    });
    assert!(
        returned.elapsed() < Duration::from_secs(20),
        "/x went away by the session's close, not its expiry: {gone}"
    );

    // explain zxid: a plain number is decimal, 0x is hex; both name the same zxid.
    let dec = json(
        &c.zkdev(&["explain", "zxid", "4294967323", "--json"]),
        "explain zxid 4294967323",
    );
    assert_eq!(dec["zxid"], "0x10000001b", "{dec}");
    assert_eq!(dec["epoch"], 1, "{dec}");
    assert_eq!(dec["counter"], 27, "{dec}");
    let hex = json(
        &c.zkdev(&["explain", "zxid", "0x10000001b", "--json"]),
        "explain zxid 0x10000001b",
    );
    assert_eq!(hex["zxid"], "0x10000001b", "{hex}");
    // Hex digits without 0x are neither: refused with the fix.
    let out = c.zkdev(&["explain", "zxid", "10000001b"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("0x10000001b"),
        "the fix is named: {}",
        stderr(&out)
    );
}
