//! The quorum channel (a follower's or observer's connection to the leader, 288x).
//!
//! Both directions are a stream of `QuorumPacket { int type; long zxid; buffer data; vector<Id> authinfo }`
//! (zookeeper.jute, module org.apache.zookeeper.server.quorum; `Id` is `{ ustring scheme; ustring id }`),
//! written back to back by a BinaryOutputArchive (Learner.writePacket, LearnerHandler's `oa.writeRecord`): no
//! frame length, the record delimits itself. The one exception: after a SNAP packet the leader writes its
//! whole database straight into the stream (LearnerHandler.run: `serializeSnapshot(oa)` then the string
//! "BenWasHere"), which [`QuorumDecoder`] walks through without holding it (see [`Snapshot`]).
//!
//! What `data` holds per type (3.8):
//! - PROPOSAL and INFORM: a TxnHeader `{ long clientId; int cxid; long zxid; long time; int type }` then the
//!   transaction, whose record starts with `ustring path` for create/delete/setData/... (zookeeper.jute,
//!   module org.apache.zookeeper.txn; Leader.propose -> SerializeUtils.serializeRequest; Leader.inform).
//! - INFORMANDACTIVATE: a long (the designated leader), then a PROPOSAL's data (Leader.buildInformAndActivePacket);
//!   COMMITANDACTIVATE: that long alone (Leader.commitAndActivate).
//! - REQUEST (a write a learner forwards): `long sessionId; int cxid; int type` then the client's request
//!   body, which starts with `ustring path` for path-carrying ops (Learner.request, DataOutputStream).
//! - FOLLOWERINFO / OBSERVERINFO: LearnerInfo `{ long serverid; int protocolVersion; long configVersion }`,
//!   shorter from older servers (LearnerHandler reads 8, 12 or 20 bytes).
//! - LEADERINFO: `int` the leader's protocol version (0x10000); ACKEPOCH: `int` the learner's current epoch,
//!   -1 when it has none (Learner.registerWithLeader).
//! - NEWLEADER: the leader's configuration as text (LearnerHandler: getQuorumVerifierBytes).
//! - PING from a learner: its sessions as (long id, int timeout) pairs (Learner.ping); from the leader: nothing.
//! - REVALIDATE: `long sessionId; int timeout` to the leader, `long sessionId; boolean valid` back.

use super::jute::{Reader, Short};
use super::{Decode, Op, Parse, PATH_LIMIT};
use crate::model::server::Zxid;

/// Leader.java's packet types (3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    Request = 1,
    Proposal = 2,
    Ack = 3,
    Commit = 4,
    Ping = 5,
    Revalidate = 6,
    Sync = 7,
    Inform = 8,
    CommitAndActivate = 9,
    NewLeader = 10,
    FollowerInfo = 11,
    UpToDate = 12,
    Diff = 13,
    Trunc = 14,
    Snap = 15,
    ObserverInfo = 16,
    LeaderInfo = 17,
    AckEpoch = 18,
    InformAndActivate = 19,
}

impl PacketType {
    pub fn from_code(code: i32) -> Option<PacketType> {
        use PacketType::*;
        Some(match code {
            1 => Request,
            2 => Proposal,
            3 => Ack,
            4 => Commit,
            5 => Ping,
            6 => Revalidate,
            7 => Sync,
            8 => Inform,
            9 => CommitAndActivate,
            10 => NewLeader,
            11 => FollowerInfo,
            12 => UpToDate,
            13 => Diff,
            14 => Trunc,
            15 => Snap,
            16 => ObserverInfo,
            17 => LeaderInfo,
            18 => AckEpoch,
            19 => InformAndActivate,
            _ => return None,
        })
    }

    /// The name ZooKeeper's logs use (Leader.getPacketType / LearnerHandler.packetToString).
    pub fn name(self) -> &'static str {
        use PacketType::*;
        match self {
            Request => "REQUEST",
            Proposal => "PROPOSAL",
            Ack => "ACK",
            Commit => "COMMIT",
            Ping => "PING",
            Revalidate => "REVALIDATE",
            Sync => "SYNC",
            Inform => "INFORM",
            CommitAndActivate => "COMMITANDACTIVATE",
            NewLeader => "NEWLEADER",
            FollowerInfo => "FOLLOWERINFO",
            UpToDate => "UPTODATE",
            Diff => "DIFF",
            Trunc => "TRUNC",
            Snap => "SNAP",
            ObserverInfo => "OBSERVERINFO",
            LeaderInfo => "LEADERINFO",
            AckEpoch => "ACKEPOCH",
            InformAndActivate => "INFORMANDACTIVATE",
        }
    }
}

/// A transaction as a PROPOSAL or INFORM carries it: its TxnHeader and, for the ops that have one, the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub session: i64,
    pub cxid: i32,
    pub zxid: Zxid,
    /// Milliseconds since the epoch, the leader's clock.
    pub time: i64,
    pub op: Op,
    pub path: Option<String>,
}

/// What a packet's `data` says, by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    None,
    Txn(Txn),
    /// INFORMANDACTIVATE: the designated leader and the reconfig transaction.
    ActivateTxn {
        leader: i64,
        txn: Txn,
    },
    /// COMMITANDACTIVATE: the designated leader.
    Activate {
        leader: i64,
    },
    Request {
        session: i64,
        cxid: i32,
        op: Op,
        path: Option<String>,
    },
    LearnerInfo {
        sid: i64,
        protocol_version: Option<i32>,
        config_version: Option<i64>,
    },
    /// LEADERINFO
    ProtocolVersion(i32),
    /// ACKEPOCH: the learner's current epoch, None for -1 (it has none).
    CurrentEpoch(Option<i32>),
    /// NEWLEADER: the configuration text.
    Config(String),
    /// A learner's PING: how many sessions it reports as touched.
    TouchedSessions(usize),
    RevalidateAsk {
        session: i64,
        timeout_ms: i32,
    },
    RevalidateAnswer {
        session: i64,
        valid: bool,
    },
    /// The data does not have the layout its type says (why); the stream itself is still in step.
    Unreadable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub kind: PacketType,
    pub zxid: Zxid,
    /// Length of `data`, None when null.
    pub data_len: Option<usize>,
    pub detail: Detail,
    /// `authinfo`'s (scheme, id) pairs.
    pub auth: Vec<(String, String)>,
}

/// What the quorum channel carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumMessage {
    Packet(Packet),
    /// The end of the database a leader streamed after SNAP: how much it held.
    Snapshot(Snapshot),
}

/// The database a leader streams after SNAP (SerializeUtils.serializeSnapshot: `int count` then count x
/// `{ long id; int timeout }` sessions; DataTree.serialize: the ACL cache (ReferenceCountedACLCache.serialize:
/// `int map` then per entry `long; vector<ACL>`, an ACL being `{ int perms; Id id }`), then per znode
/// `ustring path` and a DataNode `{ buffer data; long acl; StatPersisted stat }` (StatPersisted: 6 longs and 3
/// ints, 60 bytes), ended by the path "/"; then the string "BenWasHere").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub sessions: u64,
    pub acl_lists: u64,
    pub znodes: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone)]
enum Phase {
    Packets,
    /// Inside a streamed snapshot, at this step.
    Snap(SnapStep, Snapshot),
}

#[derive(Debug, Clone, Copy)]
enum SnapStep {
    SessionCount,
    Sessions(u64),
    AclCount,
    /// ACL lists left; ACLs left in the current list.
    Acls(u64, u64),
    Node,
    /// Bytes of a znode's data left to pass over, then its acl and stat.
    NodeData(u64),
    Signature,
}

/// StatPersisted: czxid, mzxid, ctime, mtime (longs), version, cversion, aversion (ints), ephemeralOwner, pzxid.
const STAT_PERSISTED: usize = 6 * 8 + 3 * 4;
/// Sanity bounds for counts in the stream (far above any real ensemble, far below garbage).
const AUTH_LIMIT: i32 = 1024;

/// One direction of a quorum connection.
#[derive(Debug, Clone)]
pub struct QuorumDecoder {
    phase: Phase,
}

impl Default for QuorumDecoder {
    fn default() -> Self {
        QuorumDecoder { phase: Phase::Packets }
    }
}

impl QuorumDecoder {
    pub fn new() -> QuorumDecoder {
        QuorumDecoder::default()
    }
}

impl Decode for QuorumDecoder {
    type Message = QuorumMessage;

    fn parse(&mut self, bytes: &[u8]) -> Parse<QuorumMessage> {
        match &mut self.phase {
            Phase::Packets => match packet(bytes) {
                Ok((p, n)) => {
                    if p.kind == PacketType::Snap {
                        self.phase = Phase::Snap(SnapStep::SessionCount, Snapshot::default());
                    }
                    Parse::Message(QuorumMessage::Packet(p), n)
                }
                Err(e) => e.into(),
            },
            Phase::Snap(step, snap) => match snap_step(step, snap, bytes) {
                Ok(SnapOut::Skipped(n)) => {
                    snap.bytes += n as u64;
                    Parse::Skip(n)
                }
                Ok(SnapOut::Done(n)) => {
                    snap.bytes += n as u64;
                    let done = std::mem::take(snap);
                    self.phase = Phase::Packets;
                    Parse::Message(QuorumMessage::Snapshot(done), n)
                }
                Err(e) => e.into(),
            },
        }
    }
}

enum SnapOut {
    Skipped(usize),
    Done(usize),
}

fn snap_step(step: &mut SnapStep, snap: &mut Snapshot, bytes: &[u8]) -> Result<SnapOut, Short> {
    let mut r = Reader::new(bytes);
    let count = |n: i32, what: &str| -> Result<u64, Short> {
        u64::try_from(n).map_err(|_| Short::Bad(format!("the snapshot after SNAP has {n} {what}")))
    };
    match *step {
        SnapStep::SessionCount => {
            let n = count(r.int()?, "sessions")?;
            *step = if n == 0 {
                SnapStep::AclCount
            } else {
                SnapStep::Sessions(n)
            };
        }
        SnapStep::Sessions(left) => {
            // 12 bytes a session; pass over as many whole ones as are here.
            let here = (bytes.len() / 12) as u64;
            if here == 0 {
                return Err(Short::Need(12));
            }
            let k = here.min(left);
            r.take(k as usize * 12)?;
            snap.sessions += k;
            *step = if k == left {
                SnapStep::AclCount
            } else {
                SnapStep::Sessions(left - k)
            };
        }
        SnapStep::AclCount => {
            let n = count(r.int()?, "ACL lists")?;
            *step = if n == 0 { SnapStep::Node } else { SnapStep::Acls(n, 0) };
        }
        SnapStep::Acls(lists, 0) => {
            r.long()?;
            let n = r.int()?;
            let n = if n == -1 { 0 } else { count(n, "ACLs in a list")? };
            snap.acl_lists += 1;
            *step = match (n, lists - 1) {
                (0, 0) => SnapStep::Node,
                (0, more) => SnapStep::Acls(more, 0),
                (n, _) => SnapStep::Acls(lists, n),
            };
        }
        SnapStep::Acls(lists, acls) => {
            r.int()?;
            r.ustring("an ACL's scheme", PATH_LIMIT)?;
            r.ustring("an ACL's id", PATH_LIMIT)?;
            *step = match (acls - 1, lists - 1) {
                (0, 0) => SnapStep::Node,
                (0, more) => SnapStep::Acls(more, 0),
                (left, _) => SnapStep::Acls(lists, left),
            };
        }
        SnapStep::Node => {
            let path = r.ustring("a znode's path", PATH_LIMIT)?;
            if path.as_deref() == Some("/") {
                *step = SnapStep::Signature;
            } else {
                let len = r.int()?;
                if len < -1 {
                    return Err(Short::Bad(format!(
                        "a znode's data in the snapshot has a length of {len} bytes"
                    )));
                }
                snap.znodes += 1;
                *step = SnapStep::NodeData(len.max(0) as u64);
            }
        }
        SnapStep::NodeData(0) => {
            r.long()?;
            r.take(STAT_PERSISTED)?;
            *step = SnapStep::Node;
        }
        SnapStep::NodeData(left) => {
            // Passed over as it comes: a znode's data is never held.
            if bytes.is_empty() {
                return Err(Short::Need(1));
            }
            let k = (bytes.len() as u64).min(left);
            *step = SnapStep::NodeData(left - k);
            return Ok(SnapOut::Skipped(k as usize));
        }
        SnapStep::Signature => {
            let sig = r.ustring("the snapshot's signature", 64)?;
            if sig.as_deref() != Some("BenWasHere") {
                return Err(Short::Bad(format!(
                    "the snapshot after SNAP ends with {sig:?} where LearnerHandler writes \"BenWasHere\""
                )));
            }
            return Ok(SnapOut::Done(r.pos()));
        }
    }
    Ok(SnapOut::Skipped(r.pos()))
}

fn packet(bytes: &[u8]) -> Result<(Packet, usize), Short> {
    let mut r = Reader::new(bytes);
    let code = r.int()?;
    let kind = PacketType::from_code(code).ok_or_else(|| {
        Short::Bad(format!(
            "a QuorumPacket of type {code}, which Leader.java (3.8) does not define (types are 1 to 19)"
        ))
    })?;
    let zxid = Zxid(r.long()? as u64);
    let data = r.buffer("QuorumPacket.data", usize::MAX)?;
    let n = r.int()?;
    if !(-1..=AUTH_LIMIT).contains(&n) {
        return Err(Short::Bad(format!("QuorumPacket.authinfo has {n} entries")));
    }
    let mut auth = Vec::new();
    for _ in 0..n.max(0) {
        let scheme = r.ustring("an authinfo scheme", PATH_LIMIT)?.unwrap_or_default();
        let id = r.ustring("an authinfo id", PATH_LIMIT)?.unwrap_or_default();
        auth.push((scheme, id));
    }
    let detail = match data {
        Some(d) => detail(kind, d).unwrap_or_else(|why| Detail::Unreadable(format!("{}: {why}", kind.name()))),
        None => Detail::None,
    };
    Ok((
        Packet {
            kind,
            zxid,
            data_len: data.map(<[u8]>::len),
            detail,
            auth,
        },
        r.pos(),
    ))
}

/// The data of a complete packet, by type; Err says what did not fit.
fn detail(kind: PacketType, data: &[u8]) -> Result<Detail, String> {
    use PacketType::*;
    let mut r = Reader::new(data);
    let short = |s: Short| match s {
        Short::Need(n) => format!("its {} bytes of data end inside a field (needs {n})", data.len()),
        Short::Bad(why) => why,
    };
    let d = match kind {
        Proposal | Inform => Detail::Txn(txn(&mut r).map_err(short)?),
        InformAndActivate => {
            let leader = r.long().map_err(short)?;
            Detail::ActivateTxn {
                leader,
                txn: txn(&mut r).map_err(short)?,
            }
        }
        CommitAndActivate => Detail::Activate {
            leader: r.long().map_err(short)?,
        },
        Request => {
            let session = r.long().map_err(short)?;
            let cxid = r.int().map_err(short)?;
            let op = Op(r.int().map_err(short)?);
            let path = if op.request_has_path() && r.remaining() > 0 {
                r.ustring("the request's path", PATH_LIMIT).map_err(short)?
            } else {
                None
            };
            Detail::Request {
                session,
                cxid,
                op,
                path,
            }
        }
        FollowerInfo | ObserverInfo => {
            let sid = r.long().map_err(short)?;
            let protocol_version = if r.remaining() >= 4 {
                Some(r.int().map_err(short)?)
            } else {
                None
            };
            let config_version = if r.remaining() >= 8 {
                Some(r.long().map_err(short)?)
            } else {
                None
            };
            Detail::LearnerInfo {
                sid,
                protocol_version,
                config_version,
            }
        }
        LeaderInfo => Detail::ProtocolVersion(r.int().map_err(short)?),
        AckEpoch => {
            let e = r.int().map_err(short)?;
            Detail::CurrentEpoch((e != -1).then_some(e))
        }
        NewLeader => Detail::Config(String::from_utf8_lossy(data).into_owned()),
        Ping if data.is_empty() => Detail::None,
        Ping if data.len() % 12 == 0 => Detail::TouchedSessions(data.len() / 12),
        Revalidate if data.len() == 12 => Detail::RevalidateAsk {
            session: r.long().map_err(short)?,
            timeout_ms: r.int().map_err(short)?,
        },
        Revalidate if data.len() == 9 => Detail::RevalidateAnswer {
            session: r.long().map_err(short)?,
            valid: r.boolean("REVALIDATE's answer").map_err(short)?,
        },
        Ping | Revalidate => return Err(format!("{} bytes of data, which fits no layout of it", data.len())),
        _ => Detail::None,
    };
    Ok(d)
}

/// A TxnHeader and, for the ops that carry one, the path at the start of the transaction record.
fn txn(r: &mut Reader) -> Result<Txn, Short> {
    let session = r.long()?;
    let cxid = r.int()?;
    let zxid = Zxid(r.long()? as u64);
    let time = r.long()?;
    let op = Op(r.int()?);
    let path = if op.txn_has_path() {
        r.ustring("the transaction's path", PATH_LIMIT)?
    } else {
        None
    };
    Ok(Txn {
        session,
        cxid,
        zxid,
        time,
        op,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::super::jute::build::Out;
    use super::super::testing::{messages, split_everywhere};
    use super::super::{Event, Stop, Tap, DEFAULT_CAP};
    use super::*;

    fn qp(kind: i32, zxid: i64, data: Option<&[u8]>) -> Vec<u8> {
        let o = Out::default().int(kind).long(zxid);
        let o = match data {
            Some(d) => o.buffer(d),
            None => o.int(-1),
        };
        o.int(-1).0
    }

    fn txn_bytes(op: i32, zxid: i64, path: &str) -> Vec<u8> {
        Out::default()
            .long(0x1000_0a5e_0000)
            .int(7)
            .long(zxid)
            .long(1_700_000_000_000)
            .int(op)
            .ustring(path)
            .buffer(b"hello")
            .0
    }

    fn packets(bytes: &[u8]) -> Vec<Packet> {
        messages(split_everywhere(QuorumDecoder::new, bytes, DEFAULT_CAP))
            .into_iter()
            .map(|m| match m {
                QuorumMessage::Packet(p) => p,
                other => panic!("not a packet: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn every_packet_type_of_leader_java_is_named_and_round_trips() {
        for code in 1..=19 {
            let k = PacketType::from_code(code).unwrap();
            assert_eq!(k as i32, code);
        }
        assert_eq!(PacketType::from_code(0), None);
        assert_eq!(PacketType::from_code(20), None);
        assert_eq!(PacketType::Snap.name(), "SNAP");
        assert_eq!(PacketType::InformAndActivate.name(), "INFORMANDACTIVATE");
    }

    #[test]
    fn a_proposal_ack_commit_round_decodes_with_its_txn_header_and_path() {
        let zxid = 0x1_0000_0002;
        let mut s = qp(2, zxid, Some(&txn_bytes(1, zxid, "/x")));
        s.extend(qp(3, zxid, None));
        s.extend(qp(4, zxid, None));
        let p = packets(&s);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].kind, PacketType::Proposal);
        assert_eq!(p[0].zxid, Zxid(zxid as u64));
        let Detail::Txn(t) = &p[0].detail else {
            panic!("{:?}", p[0])
        };
        assert_eq!(
            (t.session, t.cxid, t.zxid, t.op, t.path.as_deref()),
            (0x1000_0a5e_0000, 7, Zxid(zxid as u64), Op(1), Some("/x"))
        );
        assert_eq!(t.time, 1_700_000_000_000);
        assert_eq!((p[1].kind, p[2].kind), (PacketType::Ack, PacketType::Commit));
        assert_eq!(p[1].data_len, None);
    }

    #[test]
    fn set_data_delete_and_session_txns_carry_their_paths_or_none() {
        let mut s = qp(2, 3, Some(&txn_bytes(5, 3, "/a")));
        s.extend(qp(8, 4, Some(&txn_bytes(2, 4, "/b"))));
        // createSession: CreateSessionTxn { int timeOut }, no path.
        let cs = Out::default().long(9).int(0).long(5).long(0).int(-10).int(30_000).0;
        s.extend(qp(2, 5, Some(&cs)));
        let p = packets(&s);
        let path = |p: &Packet| match &p.detail {
            Detail::Txn(t) => (t.op.to_string(), t.path.clone()),
            d => panic!("{d:?}"),
        };
        assert_eq!(path(&p[0]), ("setData".into(), Some("/a".into())));
        assert_eq!(p[1].kind, PacketType::Inform);
        assert_eq!(path(&p[1]), ("delete".into(), Some("/b".into())));
        assert_eq!(path(&p[2]), ("createSession".into(), None));
    }

    #[test]
    fn handshake_packets_decode_their_data() {
        let li = Out::default().long(2).int(0x10000).long(0x1_0000_0000).0;
        let mut s = qp(11, 0, Some(&li));
        s.extend(qp(17, 0x2_0000_0000, Some(&Out::default().int(0x10000).0)));
        s.extend(qp(18, 0x1_0000_0003, Some(&Out::default().int(1).0)));
        s.extend(qp(18, 0, Some(&Out::default().int(-1).0)));
        s.extend(qp(13, 0x1_0000_0003, None));
        s.extend(qp(
            10,
            0x2_0000_0000,
            Some(b"server.1=127.0.0.1:2881:3881:participant\nversion=100000000"),
        ));
        s.extend(qp(12, 0, None));
        // An older learner's 12-byte LearnerInfo (no configVersion).
        s.extend(qp(16, 0, Some(&Out::default().long(4).int(0x10000).0)));
        let p = packets(&s);
        assert_eq!(
            p[0].detail,
            Detail::LearnerInfo {
                sid: 2,
                protocol_version: Some(0x10000),
                config_version: Some(0x1_0000_0000)
            }
        );
        assert_eq!(p[1].detail, Detail::ProtocolVersion(0x10000));
        assert_eq!(p[2].detail, Detail::CurrentEpoch(Some(1)));
        assert_eq!(p[3].detail, Detail::CurrentEpoch(None));
        assert_eq!(p[4].kind, PacketType::Diff);
        assert!(matches!(&p[5].detail, Detail::Config(c) if c.starts_with("server.1=")));
        assert_eq!(p[6].kind, PacketType::UpToDate);
        assert_eq!(
            p[7].detail,
            Detail::LearnerInfo {
                sid: 4,
                protocol_version: Some(0x10000),
                config_version: None
            }
        );
    }

    #[test]
    fn requests_pings_revalidations_and_activations() {
        let create = Out::default().ustring("/req").buffer(b"v").int(0).int(0).0;
        let req = Out::default().long(0x77).int(3).int(1).raw(&create).0;
        let mut s = qp(1, -1, Some(&req));
        let close = Out::default().long(0x77).int(4).int(-11).0;
        s.extend(qp(1, -1, Some(&close)));
        s.extend(qp(5, 0x1_0000_0002, None));
        s.extend(qp(
            5,
            0x1_0000_0002,
            Some(&Out::default().long(0x77).int(30_000).long(0x78).int(4000).0),
        ));
        s.extend(qp(6, -1, Some(&Out::default().long(0x77).int(30_000).0)));
        s.extend(qp(6, -1, Some(&Out::default().long(0x77).boolean(true).0)));
        s.extend(qp(9, 0x1_0000_0009, Some(&Out::default().long(3).0)));
        let mut ia = Out::default().long(3).0;
        ia.extend(txn_bytes(16, 9, ""));
        s.extend(qp(19, 0x1_0000_0009, Some(&ia)));
        s.extend(qp(7, 0x1_0000_0009, None));
        let p = packets(&s);
        assert_eq!(
            p[0].detail,
            Detail::Request {
                session: 0x77,
                cxid: 3,
                op: Op(1),
                path: Some("/req".into())
            }
        );
        assert_eq!(
            p[1].detail,
            Detail::Request {
                session: 0x77,
                cxid: 4,
                op: Op(-11),
                path: None
            }
        );
        assert_eq!(p[2].detail, Detail::None);
        assert_eq!(p[3].detail, Detail::TouchedSessions(2));
        assert_eq!(
            p[4].detail,
            Detail::RevalidateAsk {
                session: 0x77,
                timeout_ms: 30_000
            }
        );
        assert_eq!(
            p[5].detail,
            Detail::RevalidateAnswer {
                session: 0x77,
                valid: true
            }
        );
        assert_eq!(p[6].detail, Detail::Activate { leader: 3 });
        assert!(matches!(&p[7].detail, Detail::ActivateTxn { leader: 3, txn } if txn.op.to_string() == "reconfig"));
        assert_eq!(p[8].kind, PacketType::Sync);
    }

    #[test]
    fn authinfo_is_read_and_a_short_data_is_unreadable_not_fatal() {
        let mut s = Out::default()
            .int(3)
            .long(1)
            .int(-1)
            .int(1)
            .ustring("digest")
            .ustring("u:p")
            .0;
        s.extend(qp(2, 2, Some(&[0, 1, 2])));
        s.extend(qp(4, 2, None));
        let p = packets(&s);
        assert_eq!(p[0].auth, vec![("digest".to_string(), "u:p".to_string())]);
        assert!(
            matches!(&p[1].detail, Detail::Unreadable(w) if w.starts_with("PROPOSAL")),
            "{:?}",
            p[1]
        );
        assert_eq!(p[2].kind, PacketType::Commit);
    }

    /// SNAP, then the leader's database as LearnerHandler streams it, then NEWLEADER.
    fn snap_stream(big: usize) -> Vec<u8> {
        let mut s = qp(15, 0x1_0000_0005, None);
        let stat = [0u8; STAT_PERSISTED];
        let db = Out::default()
            .int(2)
            .long(0x100)
            .int(30_000)
            .long(0x101)
            .int(4_000)
            // ACL cache: one list of one ACL (world:anyone, all perms).
            .int(1)
            .long(1)
            .int(1)
            .int(31)
            .ustring("world")
            .ustring("anyone")
            // root "", /zookeeper, /big, then the end marker "/".
            .ustring("")
            .buffer(b"")
            .long(-1)
            .raw(&stat)
            .ustring("/zookeeper")
            .int(-1)
            .long(-1)
            .raw(&stat)
            .ustring("/big")
            .buffer(&vec![0xab; big])
            .long(1)
            .raw(&stat)
            .ustring("/")
            .ustring("BenWasHere")
            .0;
        s.extend(db);
        s.extend(qp(10, 0x2_0000_0000, Some(b"version=0")));
        s
    }

    #[test]
    fn a_snap_sync_is_walked_through_and_packets_resume_after_it() {
        let s = snap_stream(300);
        let m = messages(split_everywhere(QuorumDecoder::new, &s, 4096));
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(matches!(&m[0], QuorumMessage::Packet(p) if p.kind == PacketType::Snap));
        let QuorumMessage::Snapshot(snap) = &m[1] else {
            panic!("{m:?}")
        };
        assert_eq!((snap.sessions, snap.acl_lists, snap.znodes), (2, 1, 3));
        assert_eq!(
            snap.bytes as usize,
            s.len() - qp(15, 0, None).len() - qp(10, 0, Some(b"version=0")).len()
        );
        assert!(matches!(&m[2], QuorumMessage::Packet(p) if p.kind == PacketType::NewLeader));
    }

    #[test]
    fn a_znode_larger_than_the_cap_inside_a_snapshot_is_passed_over_without_holding_it() {
        let s = snap_stream(100_000);
        let mut tap = Tap::new(QuorumDecoder::new(), 512);
        let mut got = Vec::new();
        for c in s.chunks(1000) {
            got.extend(tap.feed(c));
            assert!(tap.held() <= 512);
        }
        let m = messages(got);
        assert_eq!(m.len(), 3);
        assert!(matches!(&m[1], QuorumMessage::Snapshot(s) if s.znodes == 3));
    }

    #[test]
    fn a_bad_signature_after_a_snapshot_stops_the_tap() {
        let mut s = snap_stream(1);
        let at = s.len() - qp(10, 0, Some(b"version=0")).len() - 3;
        s[at] = b'X';
        let events = Tap::new(QuorumDecoder::new(), DEFAULT_CAP).feed(&s);
        assert!(
            matches!(events.last(), Some(Event::Stopped { why: Stop::Garbage(w), .. }) if w.contains("BenWasHere")),
            "{events:?}"
        );
    }

    #[test]
    fn a_packet_larger_than_the_cap_stops_the_tap_at_its_offset() {
        let mut s = qp(4, 1, None);
        let first = s.len();
        s.extend(qp(2, 2, Some(&vec![0; 10_000])));
        s.extend(qp(4, 2, None));
        let events = split_everywhere(QuorumDecoder::new, &s, 1024);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(
            events[1],
            Event::Stopped {
                offset: first as u64,
                why: Stop::TooLarge {
                    bytes: Some(16 + 10_000),
                    cap: 1024
                }
            }
        );
    }

    #[test]
    fn garbage_stops_the_tap_with_what_it_found() {
        let events = split_everywhere(QuorumDecoder::new, b"GET / HTTP/1.1\r\n\r\n", DEFAULT_CAP);
        let [Event::Stopped {
            offset: 0,
            why: Stop::Garbage(w),
        }] = events.as_slice()
        else {
            panic!("{events:?}")
        };
        assert!(w.contains("Leader.java"), "{w}");
        // A negative data length.
        let bad = Out::default().int(2).long(1).int(-5).0;
        let events = Tap::new(QuorumDecoder::new(), DEFAULT_CAP).feed(&bad);
        assert!(
            matches!(&events[..], [Event::Stopped { why: Stop::Garbage(w), .. }] if w.contains("-5")),
            "{events:?}"
        );
        // Nothing after a stop.
        let mut tap = Tap::new(QuorumDecoder::new(), DEFAULT_CAP);
        tap.feed(&bad);
        assert!(tap.stopped());
        assert_eq!(tap.feed(&qp(4, 1, None)), vec![]);
    }
}
