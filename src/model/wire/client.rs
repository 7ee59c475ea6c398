//! The client channel (a client and a server, 218x).
//!
//! Every message is an `int length` then the record (ClientCnxn.Packet.createBB; NIOServerCnxn and
//! ClientCnxnSocketNIO read the length first). The first message each way has no header:
//! `ConnectRequest { int protocolVersion; long lastZxidSeen; int timeOut; long sessionId; buffer passwd }`
//! from the client and `ConnectResponse { int protocolVersion; int timeOut; long sessionId; buffer passwd }`
//! back (zookeeper.jute), each followed by `boolean readOnly` unless the peer is older (ClientCnxn,
//! ClientCnxnSocket.readConnectResult). Then a request is `RequestHeader { int xid; int type }` and its body,
//! which starts with `ustring path` for the path-carrying ops ([`Op::request_has_path`]); a reply is
//! `ReplyHeader { int xid; long zxid; int err }` and its body. Special xids (ClientCnxn): -1 a watch event
//! (`WatcherEvent { int type; int state; ustring path }`, its header's zxid -1 from a 3.8 server), -2 a ping,
//! -4 auth, -8 setWatches.
//!
//! A connection whose first four bytes are letters is a four-letter word (`srvr`, `mntr`...;
//! NIOServerCnxn.checkFourLetterWord reads them as the length); the server answers it in text and closes.

use super::jute::{Reader, Short};
use super::{Decode, Op, Parse, Stop, PATH_LIMIT};
use crate::model::server::Zxid;

pub const NOTIFICATION_XID: i32 = -1;
pub const PING_XID: i32 = -2;
pub const AUTH_XID: i32 = -4;
pub const SET_WATCHES_XID: i32 = -8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    ConnectRequest {
        protocol_version: i32,
        last_zxid_seen: Zxid,
        timeout_ms: i32,
        /// 0 for a new session; a session id when the client reconnects.
        session: i64,
        read_only: Option<bool>,
    },
    ConnectResponse {
        protocol_version: i32,
        /// The negotiated timeout; 0 (with session 0) when the server refuses the session (expired).
        timeout_ms: i32,
        session: i64,
        read_only: Option<bool>,
    },
    Request {
        xid: i32,
        op: Op,
        path: Option<String>,
    },
    Reply {
        xid: i32,
        zxid: Zxid,
        err: i32,
    },
    /// A watch event (xid -1). 3.8 servers put zxid -1 in its header (NIOServerCnxn.process,
    /// NettyServerCnxn.process): None then.
    Watch {
        zxid: Option<Zxid>,
        event: i32,
        state: i32,
        path: Option<String>,
    },
    /// The first bytes of a four-letter-word connection (e.g. "srvr").
    FourLetterWord(String),
}

/// KeeperException.Code's name for an error code (3.8), None for one it does not define.
pub fn err_name(code: i32) -> Option<&'static str> {
    Some(match code {
        0 => "OK",
        -1 => "SYSTEMERROR",
        -2 => "RUNTIMEINCONSISTENCY",
        -3 => "DATAINCONSISTENCY",
        -4 => "CONNECTIONLOSS",
        -5 => "MARSHALLINGERROR",
        -6 => "UNIMPLEMENTED",
        -7 => "OPERATIONTIMEOUT",
        -8 => "BADARGUMENTS",
        -12 => "UNKNOWNSESSION",
        -13 => "NEWCONFIGNOQUORUM",
        -14 => "RECONFIGINPROGRESS",
        -100 => "APIERROR",
        -101 => "NONODE",
        -102 => "NOAUTH",
        -103 => "BADVERSION",
        -108 => "NOCHILDRENFOREPHEMERALS",
        -110 => "NODEEXISTS",
        -111 => "NOTEMPTY",
        -112 => "SESSIONEXPIRED",
        -113 => "INVALIDCALLBACK",
        -114 => "INVALIDACL",
        -115 => "AUTHFAILED",
        -118 => "SESSIONMOVED",
        -119 => "NOTREADONLY",
        -120 => "EPHEMERALONLOCALSESSION",
        -121 => "NOWATCHER",
        -122 => "REQUESTTIMEOUT",
        -123 => "RECONFIGDISABLED",
        -124 => "SESSIONCLOSEDREQUIRESASLAUTH",
        -125 => "QUOTAEXCEEDED",
        -127 => "THROTTLEDOP",
        _ => return None,
    })
}

/// Watcher.Event.EventType's name (3.8).
pub fn event_name(event: i32) -> Option<&'static str> {
    Some(match event {
        -1 => "None",
        1 => "NodeCreated",
        2 => "NodeDeleted",
        3 => "NodeDataChanged",
        4 => "NodeChildrenChanged",
        5 => "DataWatchRemoved",
        6 => "ChildWatchRemoved",
        7 => "PersistentWatchRemoved",
        _ => return None,
    })
}

/// Which end sends the direction a decoder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    Client,
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connect,
    Session,
    /// After a four-letter word nothing more is a message.
    Done,
}

/// One direction of a client connection.
#[derive(Debug, Clone)]
pub struct ClientDecoder {
    from: From,
    phase: Phase,
}

impl ClientDecoder {
    pub fn new(from: From) -> ClientDecoder {
        ClientDecoder {
            from,
            phase: Phase::Connect,
        }
    }
}

/// The longest frame a server accepts by default (jute.maxbuffer, 0xfffff) and some room for the headers.
const FRAME_LIMIT: usize = 0xfffff + 1024;

impl Decode for ClientDecoder {
    type Message = ClientMessage;

    fn parse(&mut self, bytes: &[u8]) -> Parse<ClientMessage> {
        if self.phase == Phase::Done {
            return Parse::Stop(Stop::NotMessages(
                "bytes after a four-letter word (the server answers it in text and closes)".into(),
            ));
        }
        let Some(head) = bytes.get(..4) else {
            return Parse::Need(Some(4));
        };
        if head.iter().all(u8::is_ascii_lowercase) && self.phase == Phase::Connect && self.from == From::Client {
            self.phase = Phase::Done;
            return Parse::Message(
                ClientMessage::FourLetterWord(String::from_utf8_lossy(head).into_owned()),
                4,
            );
        }
        let len = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if len < 0 || len as usize > FRAME_LIMIT {
            if head.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
                return Parse::Stop(Stop::NotMessages(format!(
                    "the stream is text ({:?}...), such as a four-letter word's answer, not ZooKeeper frames",
                    String::from_utf8_lossy(head)
                )));
            }
            return Parse::Stop(Stop::Garbage(format!(
                "a frame length of {len} bytes (a server takes at most {FRAME_LIMIT})"
            )));
        }
        let total = 4 + len as usize;
        let Some(body) = bytes.get(4..total) else {
            return Parse::Need(Some(total));
        };
        let whole = |s: Short| match s {
            Short::Need(_) => Short::Bad(format!("a frame of {len} bytes ends inside a field")),
            bad => bad,
        };
        let m = match (self.phase, self.from) {
            (Phase::Connect, From::Client) => connect_request(body),
            (Phase::Connect, From::Server) => connect_response(body),
            (_, From::Client) => request(body),
            (_, From::Server) => reply(body),
        };
        match m.map_err(whole) {
            Ok(m) => {
                self.phase = Phase::Session;
                Parse::Message(m, total)
            }
            Err(e) => e.into(),
        }
    }
}

/// The optional trailing `boolean readOnly`.
fn read_only(r: &mut Reader) -> Result<Option<bool>, Short> {
    if r.remaining() == 0 {
        Ok(None)
    } else {
        r.boolean("readOnly").map(Some)
    }
}

fn connect_request(body: &[u8]) -> Result<ClientMessage, Short> {
    let mut r = Reader::new(body);
    let protocol_version = r.int()?;
    let last_zxid_seen = Zxid(r.long()? as u64);
    let timeout_ms = r.int()?;
    let session = r.long()?;
    r.buffer("ConnectRequest.passwd", body.len())?;
    let read_only = read_only(&mut r)?;
    Ok(ClientMessage::ConnectRequest {
        protocol_version,
        last_zxid_seen,
        timeout_ms,
        session,
        read_only,
    })
}

fn connect_response(body: &[u8]) -> Result<ClientMessage, Short> {
    let mut r = Reader::new(body);
    let protocol_version = r.int()?;
    let timeout_ms = r.int()?;
    let session = r.long()?;
    r.buffer("ConnectResponse.passwd", body.len())?;
    let read_only = read_only(&mut r)?;
    Ok(ClientMessage::ConnectResponse {
        protocol_version,
        timeout_ms,
        session,
        read_only,
    })
}

fn request(body: &[u8]) -> Result<ClientMessage, Short> {
    let mut r = Reader::new(body);
    let xid = r.int()?;
    let op = Op(r.int()?);
    let path = if op.request_has_path() {
        r.ustring("the request's path", PATH_LIMIT)?
    } else {
        None
    };
    Ok(ClientMessage::Request { xid, op, path })
}

fn reply(body: &[u8]) -> Result<ClientMessage, Short> {
    let mut r = Reader::new(body);
    let xid = r.int()?;
    let zxid = Zxid(r.long()? as u64);
    let err = r.int()?;
    if xid == NOTIFICATION_XID {
        let event = r.int()?;
        let state = r.int()?;
        let path = r.ustring("the watch event's path", PATH_LIMIT)?;
        let zxid = (zxid != Zxid(u64::MAX)).then_some(zxid);
        return Ok(ClientMessage::Watch {
            zxid,
            event,
            state,
            path,
        });
    }
    Ok(ClientMessage::Reply { xid, zxid, err })
}

#[cfg(test)]
mod tests {
    use super::super::jute::build::Out;
    use super::super::testing::{messages, split_everywhere};
    use super::super::{Event, Tap, DEFAULT_CAP};
    use super::*;

    fn client(bytes: &[u8]) -> Vec<ClientMessage> {
        messages(split_everywhere(
            || ClientDecoder::new(From::Client),
            bytes,
            DEFAULT_CAP,
        ))
    }

    fn server(bytes: &[u8]) -> Vec<ClientMessage> {
        messages(split_everywhere(
            || ClientDecoder::new(From::Server),
            bytes,
            DEFAULT_CAP,
        ))
    }

    #[test]
    fn a_client_connects_creates_pings_and_closes() {
        let mut s = Out::default()
            .int(0)
            .long(0)
            .int(30_000)
            .long(0)
            .buffer(&[0; 16])
            .boolean(false)
            .framed();
        s.extend(
            Out::default()
                .int(1)
                .int(1)
                .ustring("/x")
                .buffer(b"hello")
                .int(1)
                .int(0)
                .framed(),
        );
        s.extend(Out::default().int(PING_XID).int(11).framed());
        s.extend(Out::default().int(2).int(4).ustring("/x").boolean(true).framed());
        s.extend(Out::default().int(3).int(-11).framed());
        let m = client(&s);
        assert_eq!(
            m[0],
            ClientMessage::ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: Zxid(0),
                timeout_ms: 30_000,
                session: 0,
                read_only: Some(false)
            }
        );
        assert_eq!(
            m[1],
            ClientMessage::Request {
                xid: 1,
                op: Op(1),
                path: Some("/x".into())
            }
        );
        assert_eq!(
            m[2],
            ClientMessage::Request {
                xid: PING_XID,
                op: Op(11),
                path: None
            }
        );
        assert_eq!(
            m[3],
            ClientMessage::Request {
                xid: 2,
                op: Op(4),
                path: Some("/x".into())
            }
        );
        assert!(matches!(&m[4], ClientMessage::Request { op, path: None, .. } if op.to_string() == "closeSession"));
    }

    #[test]
    fn a_server_accepts_replies_and_fires_a_watch() {
        let mut s = Out::default()
            .int(0)
            .int(30_000)
            .long(0x1000_0a5e_0000)
            .buffer(&[1; 16])
            .boolean(false)
            .framed();
        s.extend(Out::default().int(1).long(0x1_0000_0002).int(0).ustring("/x").framed());
        s.extend(Out::default().int(2).long(0x1_0000_0002).int(-101).framed());
        s.extend(
            Out::default()
                .int(NOTIFICATION_XID)
                .long(0x1_0000_0003)
                .int(0)
                .int(2)
                .int(3)
                .ustring("/x")
                .framed(),
        );
        s.extend(
            Out::default()
                .int(NOTIFICATION_XID)
                .long(-1)
                .int(0)
                .int(4)
                .int(3)
                .ustring("/")
                .framed(),
        );
        let m = server(&s);
        assert_eq!(
            m[0],
            ClientMessage::ConnectResponse {
                protocol_version: 0,
                timeout_ms: 30_000,
                session: 0x1000_0a5e_0000,
                read_only: Some(false)
            }
        );
        assert_eq!(
            m[1],
            ClientMessage::Reply {
                xid: 1,
                zxid: Zxid(0x1_0000_0002),
                err: 0
            }
        );
        assert!(matches!(m[2], ClientMessage::Reply { err, .. } if err_name(err) == Some("NONODE")));
        assert_eq!(
            m[3],
            ClientMessage::Watch {
                zxid: Some(Zxid(0x1_0000_0003)),
                event: 2,
                state: 3,
                path: Some("/x".into())
            }
        );
        assert_eq!(
            m[4],
            ClientMessage::Watch {
                zxid: None,
                event: 4,
                state: 3,
                path: Some("/".into())
            }
        );
        assert_eq!(event_name(2), Some("NodeDeleted"));
        // An older server's ConnectResponse has no readOnly.
        let old = Out::default().int(0).int(4000).long(5).buffer(&[0; 16]).framed();
        assert!(matches!(
            server(&old)[0],
            ClientMessage::ConnectResponse { read_only: None, .. }
        ));
    }

    #[test]
    fn a_four_letter_word_is_named_and_its_text_answer_is_not_read_as_frames() {
        let events = split_everywhere(|| ClientDecoder::new(From::Client), b"srvr", DEFAULT_CAP);
        assert_eq!(
            events,
            vec![Event::Message {
                offset: 0,
                len: 4,
                message: ClientMessage::FourLetterWord("srvr".into())
            }]
        );
        let answer = b"Zookeeper version: 3.8.0\nMode: follower\n";
        let events = split_everywhere(|| ClientDecoder::new(From::Server), answer, DEFAULT_CAP);
        assert!(
            matches!(&events[..], [Event::Stopped { offset: 0, why: Stop::NotMessages(w) }] if w.contains("text")),
            "{events:?}"
        );
    }

    #[test]
    fn oversize_frames_negative_lengths_and_short_bodies_stop_the_tap() {
        let connect = Out::default()
            .int(0)
            .long(0)
            .int(30_000)
            .long(0)
            .buffer(&[0; 16])
            .framed();
        let mut s = connect.clone();
        s.extend(
            Out::default()
                .int(1)
                .int(5)
                .ustring("/big")
                .buffer(&vec![7; 5000])
                .int(-1)
                .framed(),
        );
        let events = split_everywhere(|| ClientDecoder::new(From::Client), &s, 1024);
        assert_eq!(events.len(), 2);
        assert!(matches!(
            events[1],
            Event::Stopped { offset, why: Stop::TooLarge { bytes: Some(n), cap: 1024 } } if offset == connect.len() as u64 && n > 5000
        ));
        for bad in [
            Out::default().int(-5).0,
            Out::default().int(0x7f00_0000).0,
            Out::default().int(3).raw(&[0, 0, 0]).0,
            Out::default().int(0).int(30_000).long(0).int(-9).framed(),
        ] {
            let events = Tap::new(ClientDecoder::new(From::Server), DEFAULT_CAP).feed(&bad);
            assert!(
                matches!(
                    &events[..],
                    [Event::Stopped {
                        why: Stop::Garbage(_),
                        ..
                    }]
                ),
                "{bad:?}: {events:?}"
            );
        }
    }
}
