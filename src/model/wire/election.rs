//! The election channel (two voters' FastLeaderElection link, 388x).
//!
//! The side that dials first sends a header (QuorumCnxManager.startConnection / handleConnection, 3.5+):
//! `long protocolVersion` (PROTOCOL_VERSION_V1 = -65536: one address; V2 = -65535: several, `|`-separated),
//! `long sid`, `int length` (1 to 2048, QuorumCnxManager.maxBuffer) and its election address as
//! "host:port" text (InitialMessage.parse). A 3.4 server sends only its sid (a long >= 0).
//! Then both directions carry notifications, each behind an `int length` (1 to 512 KiB, PACKETMAXSIZE;
//! SendWorker.send / RecvWorker.run). A notification (FastLeaderElection.buildMsg, read back in
//! Messenger.WorkerReceiver.run) is `int state; long leader; long zxid; long electionEpoch; long peerEpoch;
//! int version; int configLength; config bytes`, where 3.8 writes version 2 (Notification.CURRENTVERSION).
//! It reads older peers' layouts by their length: 28 bytes (no peerEpoch: it is the zxid's epoch), 40 bytes
//! (peerEpoch, and the version is taken as 0 whatever the last int says), and version 1 (no config). The state
//! is QuorumPeer.ServerState's ordinal: 0 LOOKING, 1 FOLLOWING, 2 LEADING, 3 OBSERVING. A notification whose
//! body does not fit is dropped by ZooKeeper (logged); here it is reported as unreadable and reading goes on.

use super::jute::{Reader, Short};
use super::{Decode, Parse, Stop};
use crate::model::server::Zxid;

pub const PROTOCOL_VERSION_V1: i64 = -65536;
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// QuorumCnxManager.maxBuffer: the longest address text in a header.
const MAX_ADDRESS: usize = 2048;
/// QuorumCnxManager.PACKETMAXSIZE.
const PACKET_MAX: usize = 512 * 1024;
/// The notification version 3.8 writes (FastLeaderElection.Notification.CURRENTVERSION).
pub const NOTIFICATION_VERSION: i32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    Looking,
    Following,
    Leading,
    Observing,
}

impl PeerState {
    pub fn name(self) -> &'static str {
        match self {
            PeerState::Looking => "LOOKING",
            PeerState::Following => "FOLLOWING",
            PeerState::Leading => "LEADING",
            PeerState::Observing => "OBSERVING",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub state: PeerState,
    /// The proposed leader's sid.
    pub leader: i64,
    /// The proposed leader's last zxid.
    pub zxid: Zxid,
    /// The sender's election round (logical clock).
    pub election_epoch: i64,
    /// The proposed leader's epoch.
    pub peer_epoch: i64,
    /// 0 for the 28- and 40-byte layouts.
    pub version: i32,
    /// The sender's configuration text (version 2).
    pub config: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElectionMessage {
    /// The dialler's header: its protocol version (None for a 3.4 server, which sends only its sid), sid
    /// and advertised election address(es).
    Header {
        protocol: Option<i64>,
        sid: i64,
        addresses: Vec<String>,
    },
    Notification(Notification),
    /// A frame whose body fits no notification layout (its length, why); the stream is still in step.
    Unreadable {
        bytes: usize,
        why: String,
    },
}

/// One direction of an election connection.
#[derive(Debug, Clone)]
pub struct ElectionDecoder {
    expect_header: bool,
}

impl ElectionDecoder {
    /// The direction from the side that dialled: a header, then notifications.
    pub fn from_dialler() -> ElectionDecoder {
        ElectionDecoder { expect_header: true }
    }

    /// The direction from the side that accepted: notifications only.
    pub fn from_acceptor() -> ElectionDecoder {
        ElectionDecoder { expect_header: false }
    }
}

impl Decode for ElectionDecoder {
    type Message = ElectionMessage;

    fn parse(&mut self, bytes: &[u8]) -> Parse<ElectionMessage> {
        let r = if self.expect_header {
            header(bytes)
        } else {
            notification_frame(bytes)
        };
        match r {
            Ok((m, n)) => {
                self.expect_header = false;
                Parse::Message(m, n)
            }
            Err(Bad::Short(s)) => s.into(),
            Err(Bad::Version(why)) => Parse::Stop(Stop::Version(why)),
        }
    }
}

enum Bad {
    Short(Short),
    Version(String),
}

impl From<Short> for Bad {
    fn from(s: Short) -> Bad {
        Bad::Short(s)
    }
}

fn header(bytes: &[u8]) -> Result<(ElectionMessage, usize), Bad> {
    let mut r = Reader::new(bytes);
    let first = r.long()?;
    if first >= 0 {
        return Ok((
            ElectionMessage::Header {
                protocol: None,
                sid: first,
                addresses: vec![],
            },
            r.pos(),
        ));
    }
    if first != PROTOCOL_VERSION_V1 && first != PROTOCOL_VERSION_V2 {
        return Err(Bad::Version(format!(
            "the election connection's header names protocol version {first}, where QuorumCnxManager (3.8) knows \
             {PROTOCOL_VERSION_V1} and {PROTOCOL_VERSION_V2}"
        )));
    }
    let sid = r.long()?;
    let len = r.int()?;
    if len <= 0 || len as usize > MAX_ADDRESS {
        return Err(Short::Bad(format!(
            "the election header of server {sid} gives its address a length of {len} bytes (1 to {MAX_ADDRESS})"
        ))
        .into());
    }
    let text = std::str::from_utf8(r.take(len as usize)?)
        .map_err(|_| Short::Bad(format!("the election address of server {sid} is not UTF-8 text")))?;
    let addresses = text.split('|').map(str::to_string).collect();
    Ok((
        ElectionMessage::Header {
            protocol: Some(first),
            sid,
            addresses,
        },
        r.pos(),
    ))
}

fn notification_frame(bytes: &[u8]) -> Result<(ElectionMessage, usize), Bad> {
    let mut r = Reader::new(bytes);
    let len = r.int()?;
    if len <= 0 || len as usize > PACKET_MAX {
        return Err(Short::Bad(format!("an election message length of {len} bytes (1 to {PACKET_MAX})")).into());
    }
    let body = r.take(len as usize)?;
    let m = match notification(body) {
        Ok(n) => ElectionMessage::Notification(n),
        Err(Bad::Short(Short::Bad(why))) => ElectionMessage::Unreadable { bytes: body.len(), why },
        Err(Bad::Short(Short::Need(_))) => ElectionMessage::Unreadable {
            bytes: body.len(),
            why: format!("a notification of {} bytes ends inside a field", body.len()),
        },
        Err(v) => return Err(v),
    };
    Ok((m, r.pos()))
}

fn notification(body: &[u8]) -> Result<Notification, Bad> {
    let cap = body.len();
    if cap < 28 {
        return Err(Short::Bad(format!(
            "a notification of {cap} bytes (FastLeaderElection reads at least 28)"
        ))
        .into());
    }
    let mut r = Reader::new(body);
    let inside = |s: Short| match s {
        Short::Need(_) => Bad::Short(Short::Bad(format!("a notification of {cap} bytes ends inside a field"))),
        other => Bad::Short(other),
    };
    let state = match r.int().map_err(inside)? {
        0 => PeerState::Looking,
        1 => PeerState::Following,
        2 => PeerState::Leading,
        3 => PeerState::Observing,
        s => {
            return Err(Short::Bad(format!(
                "a notification with state {s} (QuorumPeer.ServerState has 0 to 3)"
            ))
            .into())
        }
    };
    let leader = r.long().map_err(inside)?;
    let zxid = Zxid(r.long().map_err(inside)? as u64);
    let election_epoch = r.long().map_err(inside)?;
    let mut n = Notification {
        state,
        leader,
        zxid,
        election_epoch,
        peer_epoch: zxid.epoch() as i64,
        version: 0,
        config: None,
    };
    if cap == 28 {
        return Ok(n);
    }
    n.peer_epoch = r.long().map_err(inside)?;
    if cap == 40 {
        return Ok(n);
    }
    n.version = r.int().map_err(inside)?;
    match n.version {
        1 => {}
        2 => {
            let len = r.int().map_err(inside)?;
            if len < 0 || len as usize > r.remaining() {
                return Err(Short::Bad(format!(
                    "a notification of {cap} bytes says its configuration has {len} bytes"
                ))
                .into());
            }
            let text = r.take(len as usize).map_err(inside)?;
            n.config = Some(String::from_utf8_lossy(text).into_owned());
        }
        v => {
            return Err(Bad::Version(format!(
                "a notification of version {v}, where FastLeaderElection (3.8) writes {NOTIFICATION_VERSION} and reads 1 and 2"
            )))
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::super::jute::build::Out;
    use super::super::testing::{messages, split_everywhere};
    use super::super::{Event, Tap, DEFAULT_CAP};
    use super::*;

    fn header_v1(sid: i64, addr: &str) -> Vec<u8> {
        Out::default().long(PROTOCOL_VERSION_V1).long(sid).ustring(addr).0
    }

    fn note(state: i32, leader: i64, zxid: i64, round: i64, epoch: i64, config: &str) -> Vec<u8> {
        Out::default()
            .int(state)
            .long(leader)
            .long(zxid)
            .long(round)
            .long(epoch)
            .int(2)
            .ustring(config)
            .framed()
    }

    #[test]
    fn a_dialler_sends_its_header_then_votes() {
        let mut s = header_v1(1, "127.0.0.1:13881");
        s.extend(note(
            0,
            3,
            0x1_0000_0004,
            2,
            1,
            "server.1=127.0.0.1:12881:13881:participant\nversion=0",
        ));
        s.extend(note(1, 3, 0x2_0000_0000, 2, 2, ""));
        let m = messages(split_everywhere(ElectionDecoder::from_dialler, &s, DEFAULT_CAP));
        assert_eq!(
            m[0],
            ElectionMessage::Header {
                protocol: Some(PROTOCOL_VERSION_V1),
                sid: 1,
                addresses: vec!["127.0.0.1:13881".into()]
            }
        );
        let ElectionMessage::Notification(n) = &m[1] else {
            panic!("{m:?}")
        };
        assert_eq!(
            (n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch, n.version),
            (PeerState::Looking, 3, Zxid(0x1_0000_0004), 2, 1, 2)
        );
        assert!(n.config.as_deref().unwrap().starts_with("server.1="));
        let ElectionMessage::Notification(n) = &m[2] else {
            panic!("{m:?}")
        };
        assert_eq!((n.state.name(), n.config.as_deref()), ("FOLLOWING", Some("")));
    }

    #[test]
    fn headers_of_other_versions_and_older_notification_layouts() {
        // V2: several addresses; 3.4: the sid alone.
        let v2 = Out::default().long(PROTOCOL_VERSION_V2).long(2).ustring("a:1|b:2").0;
        let m = messages(split_everywhere(ElectionDecoder::from_dialler, &v2, DEFAULT_CAP));
        assert!(
            matches!(&m[0], ElectionMessage::Header { protocol: Some(-65535), sid: 2, addresses } if addresses.len() == 2)
        );
        let old = Out::default().long(5).0;
        let m = messages(split_everywhere(ElectionDecoder::from_dialler, &old, DEFAULT_CAP));
        assert_eq!(
            m[0],
            ElectionMessage::Header {
                protocol: None,
                sid: 5,
                addresses: vec![]
            }
        );
        // From the acceptor: 28-, 40-byte and version-1 notifications.
        let n28 = Out::default().int(2).long(3).long(0x5_0000_0001).long(7).framed();
        let n40 = Out::default()
            .int(2)
            .long(3)
            .long(0x5_0000_0001)
            .long(7)
            .long(4)
            .int(1)
            .framed();
        let v1 = Out::default()
            .int(3)
            .long(3)
            .long(0x5_0000_0001)
            .long(7)
            .long(4)
            .int(1)
            .int(0)
            .framed();
        let s = [n28, n40, v1].concat();
        let m = messages(split_everywhere(ElectionDecoder::from_acceptor, &s, DEFAULT_CAP));
        let got: Vec<(i64, i32, Option<String>)> = m
            .iter()
            .map(|m| match m {
                ElectionMessage::Notification(n) => (n.peer_epoch, n.version, n.config.clone()),
                h => panic!("{h:?}"),
            })
            .collect();
        assert_eq!(got, vec![(5, 0, None), (4, 0, None), (4, 1, None)]);
    }

    #[test]
    fn an_unknown_protocol_or_notification_version_is_named() {
        let events = split_everywhere(
            ElectionDecoder::from_dialler,
            &Out::default().long(-65534).0,
            DEFAULT_CAP,
        );
        assert!(
            matches!(&events[..], [Event::Stopped { offset: 0, why: Stop::Version(w) }] if w.contains("-65534")),
            "{events:?}"
        );
        let v3 = Out::default()
            .int(0)
            .long(1)
            .long(1)
            .long(1)
            .long(1)
            .int(3)
            .int(0)
            .framed();
        let mut s = note(0, 1, 1, 1, 1, "");
        let first = s.len() as u64;
        s.extend(v3);
        let events = split_everywhere(ElectionDecoder::from_acceptor, &s, DEFAULT_CAP);
        assert!(matches!(&events[0], Event::Message { .. }));
        assert!(
            matches!(&events[1], Event::Stopped { offset, why: Stop::Version(w) } if *offset == first && w.contains("version 3")),
            "{events:?}"
        );
        assert!(Stop::Version("x".into()).to_string().contains("cannot read"));
    }

    #[test]
    fn bad_lengths_and_short_bodies_are_garbage_and_oversize_frames_stop_the_tap() {
        for bad in [
            Out::default().int(0).0,
            Out::default().int(-3).0,
            Out::default().int(600 * 1024).0,
        ] {
            let events = Tap::new(ElectionDecoder::from_acceptor(), DEFAULT_CAP).feed(&bad);
            assert!(
                matches!(
                    &events[..],
                    [Event::Stopped {
                        why: Stop::Garbage(_),
                        ..
                    }]
                ),
                "{events:?}"
            );
        }
        // A whole frame whose body fits no notification: reported, and the next one is still read.
        let mut s = Out::default().int(1).long(1).long(1).framed();
        s.extend(Out::default().int(9).long(1).long(1).long(1).long(1).framed());
        s.extend(
            Out::default()
                .int(0)
                .long(1)
                .long(1)
                .long(1)
                .long(1)
                .int(2)
                .int(1)
                .framed(),
        );
        s.extend(note(0, 1, 1, 1, 1, ""));
        let m = messages(split_everywhere(ElectionDecoder::from_acceptor, &s, DEFAULT_CAP));
        assert!(
            matches!(&m[0], ElectionMessage::Unreadable { bytes: 20, why } if why.contains("28")),
            "{m:?}"
        );
        assert!(
            matches!(&m[1], ElectionMessage::Unreadable { why, .. } if why.contains("state 9")),
            "{m:?}"
        );
        assert!(
            matches!(&m[2], ElectionMessage::Unreadable { why, .. } if why.contains("configuration")),
            "{m:?}"
        );
        assert!(matches!(&m[3], ElectionMessage::Notification(_)));
        let bad_header = Out::default().long(PROTOCOL_VERSION_V1).long(1).int(5000).0;
        let events = Tap::new(ElectionDecoder::from_dialler(), DEFAULT_CAP).feed(&bad_header);
        assert!(matches!(&events[..], [Event::Stopped { why: Stop::Garbage(w), .. }] if w.contains("5000")));
        let big = note(0, 1, 1, 1, 1, &"x".repeat(300));
        let events = split_everywhere(ElectionDecoder::from_acceptor, &big, 128);
        assert!(matches!(
            &events[..],
            [Event::Stopped {
                why: Stop::TooLarge {
                    bytes: Some(_),
                    cap: 128
                },
                ..
            }]
        ));
    }
}
