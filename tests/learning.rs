//! Small truths a learner runs into, on a real ensemble: a one-shot `zkdev cli ID -- CMD` closes its session
//! when the command returns (so `create -e` leaves nothing behind), and `explain zxid` reads a plain number as
//! decimal and `0x...` as hex. And the wire decoder (`zkdev::model::wire`) reads what real servers send on the
//! client, election and quorum channels: this test speaks each protocol to the servers itself (as a client, as
//! a non-voting election peer, as an observer joining the leader) and decodes their answers.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use zkdev::model::wire::client::{ClientDecoder, ClientMessage, From};
use zkdev::model::wire::election::{ElectionDecoder, ElectionMessage, PeerState};
use zkdev::model::wire::quorum::{Detail, PacketType, QuorumDecoder, QuorumMessage};
use zkdev::model::wire::{Decode, Event, Tap, DEFAULT_CAP};

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
fn a_one_shot_cli_closes_its_session_explain_zxid_reads_decimal_and_the_wire_decoder_reads_real_servers() {
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

    // The same servers, read on the wire (one cluster per test slot).
    the_wire_decoder_reads_real_servers_on_all_three_channels(&c);
}

/// Big-endian fields, as jute and DataOutputStream write them.
#[derive(Default)]
struct Out(Vec<u8>);

impl Out {
    fn int(mut self, v: i32) -> Out {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn long(mut self, v: i64) -> Out {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn byte(mut self, v: u8) -> Out {
        self.0.push(v);
        self
    }
    fn buffer(self, b: &[u8]) -> Out {
        let mut o = self.int(b.len() as i32);
        o.0.extend_from_slice(b);
        o
    }
    /// Behind an int length.
    fn framed(self) -> Vec<u8> {
        Out::default().buffer(&self.0).0
    }
}

/// Read from `s` into `tap` until `want` accepts a message, which is returned (`seen` gets all); panics
/// with what was decoded when the tap stops, the peer closes or `timeout` passes.
fn read_until<D: Decode>(
    s: &mut TcpStream,
    tap: &mut Tap<D>,
    seen: &mut Vec<D::Message>,
    timeout: Duration,
    what: &str,
    want: impl Fn(&D::Message) -> bool,
) -> D::Message
where
    D::Message: std::fmt::Debug + Clone,
{
    let deadline = Instant::now() + timeout;
    let from = seen.len();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(m) = seen[from..].iter().find(|m| want(m)) {
            return m.clone();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{what}: not within {timeout:?}; decoded: {seen:#?}");
        s.set_read_timeout(Some(left.min(Duration::from_millis(500)))).unwrap();
        let n = match s.read(&mut buf) {
            Ok(0) => panic!("{what}: the server closed the connection; decoded: {seen:#?}"),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => panic!("{what}: {e}; decoded: {seen:#?}"),
        };
        for e in tap.feed(&buf[..n]) {
            match e {
                Event::Message { message, .. } => seen.push(message),
                Event::Stopped { why, offset } => {
                    panic!("{what}: the decoder stopped at byte {offset}: {why}; decoded: {seen:#?}")
                }
            }
        }
    }
}

/// The wire decoder against the servers of `c` (3 voters, serving), on the client, election and quorum channels.
fn the_wire_decoder_reads_real_servers_on_all_three_channels(c: &TestCluster) {
    let (leader, _, _) = c.node_in_mode("leader");
    let status = c.status();
    let port = |id: u64, key: &str| -> u16 {
        let n = status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap();
        n[key].as_u64().unwrap() as u16
    };
    let t = Duration::from_secs(20);
    let connect = |p: u16| TcpStream::connect_timeout(&([127, 0, 0, 1], p).into(), Duration::from_secs(5)).unwrap();

    // Client channel, on node 2: connect, exists /w with a watch, another client creates /w, close.
    let mut cl = connect(port(2, "client_port"));
    let mut tap = Tap::new(ClientDecoder::new(From::Server), DEFAULT_CAP);
    let mut seen = Vec::new();
    cl.write_all(
        &Out::default()
            .int(0)
            .long(0)
            .int(10_000)
            .long(0)
            .buffer(&[0; 16])
            .byte(0)
            .framed(),
    )
    .unwrap();
    let m = read_until(&mut cl, &mut tap, &mut seen, t, "ConnectResponse", |m| {
        matches!(m, ClientMessage::ConnectResponse { .. })
    });
    let ClientMessage::ConnectResponse {
        timeout_ms,
        session,
        read_only,
        ..
    } = &m
    else {
        panic!("{seen:?}")
    };
    assert_eq!((*timeout_ms, *read_only), (10_000, Some(false)), "{seen:?}");
    assert_eq!(session >> 56, 2, "a session node 2 created: {session:#x}");
    let exists = Out::default().int(1).int(3).buffer(b"/w").byte(1).framed();
    cl.write_all(&exists).unwrap();
    let m = read_until(&mut cl, &mut tap, &mut seen, t, "exists /w", |m| {
        matches!(m, ClientMessage::Reply { xid: 1, .. })
    });
    let ClientMessage::Reply {
        err: -101,
        zxid: exists_zxid,
        ..
    } = m
    else {
        panic!("NONODE: {seen:?}")
    };
    assert_ok(&c.zkdev(&["cli", "1", "--", "create", "/w"]), "cli 1 -- create /w");
    let m = read_until(&mut cl, &mut tap, &mut seen, t, "the watch on /w", |m| {
        matches!(m, ClientMessage::Watch { .. })
    });
    let ClientMessage::Watch {
        zxid,
        event,
        state,
        path,
    } = &m
    else {
        panic!("{seen:?}")
    };
    // NodeCreated, SyncConnected; a 3.8 server sends -1 as the event's zxid.
    assert_eq!(
        (*zxid, *event, *state, path.as_deref()),
        (None, 1, 3, Some("/w")),
        "{seen:?}"
    );
    cl.write_all(&Out::default().int(2).int(-11).framed()).unwrap();
    let m = read_until(&mut cl, &mut tap, &mut seen, t, "closeSession", |m| {
        matches!(m, ClientMessage::Reply { xid: 2, .. })
    });
    let ClientMessage::Reply {
        err: 0, zxid: closed, ..
    } = m
    else {
        panic!("{seen:?}")
    };

    // Election channel: a peer with a higher sid than any voter (so the node keeps the connection) and the
    // 40-byte notification of an old server; the node answers a non-voter with its current vote (3.8 layout).
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let mut el = connect(port(follower, "election_port"));
    el.write_all(&Out::default().long(-65536).long(99).buffer(b"127.0.0.1:1").0)
        .unwrap();
    el.write_all(&Out::default().int(0).long(99).long(0).long(1).long(0).int(1).framed())
        .unwrap();
    let mut tap = Tap::new(ElectionDecoder::from_acceptor(), DEFAULT_CAP);
    let mut votes = Vec::new();
    let m = read_until(&mut el, &mut tap, &mut votes, t, "the follower's vote", |m| {
        matches!(m, ElectionMessage::Notification(_))
    });
    let ElectionMessage::Notification(n) = &m else {
        panic!("{votes:?}")
    };
    assert_eq!((n.state, n.leader), (PeerState::Following, leader as i64), "{n:?}");
    assert_eq!(n.version, 2, "{n:?}");
    assert_eq!(n.peer_epoch, c.status()["nodes"][0]["epoch"].as_i64().unwrap(), "{n:?}");
    let config = n.config.as_deref().unwrap_or_default();
    assert!(config.contains("server.1=") && config.contains("server.3="), "{config}");
    drop(el);

    // Quorum channel: join the leader as an observer the way Learner.registerWithLeader does (OBSERVERINFO,
    // LEADERINFO, ACKEPOCH with the last zxid we claim), up to NEWLEADER.
    let packet = |kind: i32, zxid: i64, data: Option<&[u8]>| {
        let o = Out::default().int(kind).long(zxid);
        let o = match data {
            Some(d) => o.buffer(d),
            None => o.int(-1),
        };
        o.int(-1).0
    };
    let is = |k: PacketType| move |m: &QuorumMessage| matches!(m, QuorumMessage::Packet(p) if p.kind == k);
    let kinds = |got: &[QuorumMessage]| -> Vec<String> {
        got.iter()
            .map(|m| match m {
                QuorumMessage::Packet(p) => p.kind.name().to_string(),
                QuorumMessage::Snapshot(s) => format!("snapshot({} znodes)", s.znodes),
            })
            .collect()
    };
    let join = |sid: i64, last_zxid: i64| {
        let mut q = connect(port(leader, "quorum_port"));
        let mut tap = Tap::new(QuorumDecoder::new(), DEFAULT_CAP);
        let mut got: Vec<QuorumMessage> = Vec::new();
        let info = Out::default().long(sid).int(0x10000).long(0).0;
        q.write_all(&packet(16, 0, Some(&info))).unwrap();
        let m = read_until(&mut q, &mut tap, &mut got, t, "LEADERINFO", is(PacketType::LeaderInfo));
        let QuorumMessage::Packet(li) = &m else {
            panic!("{got:?}")
        };
        assert_eq!(li.detail, Detail::ProtocolVersion(0x10000), "{li:?}");
        q.write_all(&packet(
            18,
            last_zxid,
            Some(&Out::default().int(li.zxid.epoch() as i32).0),
        ))
        .unwrap();
        let m = read_until(&mut q, &mut tap, &mut got, t, "NEWLEADER", is(PacketType::NewLeader));
        (q, tap, got, m)
    };

    // Claiming the zxid of the exists above: the leader sends DIFF and replays its committed log since then,
    // a PROPOSAL (with the transaction's path) and a COMMIT per write.
    let (_, _, got, _) = join(98, exists_zxid.0 as i64);
    assert!(got.iter().any(is(PacketType::Diff)), "{:?}", kinds(&got));
    let w = got.iter().find_map(|m| match m {
        QuorumMessage::Packet(p) => match &p.detail {
            Detail::Txn(t) if t.path.as_deref() == Some("/w") => Some((p.zxid, t.clone())),
            _ => None,
        },
        _ => None,
    });
    let (created, txn) = w.unwrap_or_else(|| panic!("no PROPOSAL of /w in {:?}", kinds(&got)));
    assert_eq!((txn.zxid, txn.op.to_string()), (created, "create".into()), "{txn:?}");
    assert!(
        exists_zxid < created && created < closed,
        "/w was created between the exists and the close: {txn:?}"
    );
    assert!(
        got.iter()
            .any(|m| matches!(m, QuorumMessage::Packet(p) if p.kind == PacketType::Commit && p.zxid == created)),
        "{:?}",
        kinds(&got)
    );
    let diff_kinds = kinds(&got);

    // Claiming nothing (zxid 0): the leader syncs us by DIFF from its log or by SNAP, streaming its database.
    let (mut q, mut tap, mut got, m) = join(99, 0);
    let kinds = kinds(&got);
    if !got.iter().any(is(PacketType::Diff)) {
        assert!(got.iter().any(is(PacketType::Snap)), "DIFF or SNAP: {kinds:?}");
        assert!(
            got.iter()
                .any(|m| matches!(m, QuorumMessage::Snapshot(s) if s.znodes >= 4)),
            "the snapshot after SNAP is walked through: {kinds:?}"
        );
    }
    let QuorumMessage::Packet(nl) = &m else {
        panic!("{kinds:?}")
    };
    assert!(
        matches!(&nl.detail, Detail::Config(c) if c.contains("server.1=")),
        "{nl:?}"
    );
    q.write_all(&packet(3, nl.zxid.0 as i64, None)).unwrap();
    read_until(&mut q, &mut tap, &mut got, t, "UPTODATE", is(PacketType::UpToDate));
    // Writes now reach the observer as INFORMs carrying the whole transaction: zkCli's createSession, its
    // create /after, its closeSession.
    assert_ok(
        &c.zkdev(&["cli", "2", "--", "create", "/after"]),
        "cli 2 -- create /after",
    );
    let informed = |m: &QuorumMessage, op: &str| matches!(m, QuorumMessage::Packet(p) if p.kind == PacketType::Inform && matches!(&p.detail, Detail::Txn(t) if t.op.to_string() == op));
    read_until(&mut q, &mut tap, &mut got, t, "INFORM of closeSession", |m| {
        informed(m, "closeSession")
    });
    assert!(got.iter().any(|m| informed(m, "createSession")), "{got:?}");
    let m = got
        .iter()
        .find(|m| informed(m, "create"))
        .unwrap_or_else(|| panic!("no INFORM of a create: {got:?}"))
        .clone();
    let QuorumMessage::Packet(inf) = &m else { panic!() };
    let Detail::Txn(txn) = &inf.detail else {
        panic!("{inf:?}")
    };
    assert_eq!(
        (txn.path.as_deref(), txn.zxid, txn.op.to_string()),
        (Some("/after"), inf.zxid, "create".into())
    );
    assert!(txn.zxid > closed, "{txn:?}");
    eprintln!(
        "joining the leader as observers: {diff_kinds:?}; {kinds:?}, UPTODATE, INFORM of /after at {}",
        inf.zxid
    );
}
