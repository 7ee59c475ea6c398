//! Reading ZooKeeper's own wire traffic as a side tap: the three channels zkdev's `--net` proxies carry, the
//! quorum channel (a learner and its leader, 288x: [`quorum`]), the election channel (two voters, 388x:
//! [`election`]) and the client channel (a client and a server, 218x: [`client`]).
//!
//! Pure: a [`Tap`] is fed the bytes of one direction of one connection in whatever chunks they arrived
//! (split anywhere) and returns the messages they complete. It holds at most `cap` bytes: a message that
//! would need more (a huge znode, a SNAP's snapshot) makes it stop on that connection and say why, as does a
//! byte sequence that is not the layout it knows (garbage, or a protocol version it cannot read). A stopped
//! tap ignores the rest of its connection; the traffic itself is never touched.
//!
//! Every layout names where it comes from in ZooKeeper 3.8's sources (zookeeper.jute, Leader.java,
//! Learner.java, LearnerHandler.java, QuorumCnxManager.java, FastLeaderElection.java, ClientCnxn.java,
//! ZooDefs.java).

pub mod client;
pub mod election;
pub mod jute;
pub mod quorum;

use std::fmt;

use jute::Short;

/// What a channel's decoder made of the bytes at the front of its buffer.
#[derive(Debug)]
pub enum Parse<M> {
    /// A message, and how many bytes it took.
    Message(M, usize),
    /// Bytes that belong to no message of interest (e.g. a snapshot's body), consumed without one.
    Skip(usize),
    /// Not enough bytes yet: this many from the front are needed, when known.
    Need(Option<usize>),
    /// The connection cannot be read any further.
    Stop(Stop),
}

impl<M> From<Short> for Parse<M> {
    fn from(s: Short) -> Parse<M> {
        match s {
            Short::Need(n) => Parse::Need(Some(n)),
            Short::Bad(why) => Parse::Stop(Stop::Garbage(why)),
        }
    }
}

/// One direction of one connection's decoder: its state (e.g. "the handshake is done") changes only when it
/// returns a message or a skip.
pub trait Decode {
    type Message;
    fn parse(&mut self, bytes: &[u8]) -> Parse<Self::Message>;
}

/// Why a tap stopped reading its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// A message longer than the tap may hold (at least this long, when the layout tells it up front).
    TooLarge { bytes: Option<usize>, cap: usize },
    /// The bytes are not the layout this decoder reads (what it found).
    Garbage(String),
    /// A protocol or message version this decoder does not know.
    Version(String),
    /// What follows is not messages at all (what it is).
    NotMessages(String),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::TooLarge { bytes: Some(bytes), cap } => write!(
                f,
                "a message of at least {bytes} bytes is larger than the {cap} bytes this tap holds; it stops reading this connection"
            ),
            Stop::TooLarge { bytes: None, cap } => write!(
                f,
                "a message is larger than the {cap} bytes this tap holds; it stops reading this connection"
            ),
            Stop::Garbage(what) => write!(f, "not the layout this tap reads: {what}; it stops reading this connection"),
            Stop::Version(what) => write!(f, "{what}; this tap cannot read it and stops reading this connection"),
            Stop::NotMessages(what) => write!(f, "{what}; this tap stops reading this connection"),
        }
    }
}

/// What feeding a tap produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<M> {
    /// A message, with the offset of its first byte in this direction of the connection and its length.
    Message { offset: u64, len: usize, message: M },
    /// The tap stopped at this offset; it reports nothing more for this connection.
    Stopped { offset: u64, why: Stop },
}

/// The default bound: ZooKeeper's own `jute.maxbuffer` (0xfffff bytes) plus room for the headers around it.
pub const DEFAULT_CAP: usize = 1 << 20 | 4096;

/// One direction of one connection, read as a side tap with bounded memory.
pub struct Tap<D: Decode> {
    decoder: D,
    buf: Vec<u8>,
    cap: usize,
    /// Offset of `buf[0]` in the direction's byte stream.
    offset: u64,
    stopped: bool,
}

impl<D: Decode> Tap<D> {
    pub fn new(decoder: D, cap: usize) -> Tap<D> {
        Tap {
            decoder,
            buf: Vec::new(),
            cap,
            offset: 0,
            stopped: false,
        }
    }

    /// Has the tap given up on its connection?
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Bytes held right now (never more than the cap).
    pub fn held(&self) -> usize {
        self.buf.len()
    }

    /// The next bytes of this direction; returns the messages they complete, in order.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Vec<Event<D::Message>> {
        let mut out = Vec::new();
        while !self.stopped && !chunk.is_empty() {
            let room = self.cap - self.buf.len();
            let n = room.min(chunk.len());
            self.buf.extend_from_slice(&chunk[..n]);
            chunk = &chunk[n..];
            self.drain(&mut out);
            if !self.stopped && self.buf.len() >= self.cap && !chunk.is_empty() {
                self.stop(
                    &mut out,
                    Stop::TooLarge {
                        bytes: None,
                        cap: self.cap,
                    },
                );
            }
        }
        out
    }

    fn drain(&mut self, out: &mut Vec<Event<D::Message>>) {
        let mut start = 0;
        // No message is ever made of no bytes.
        while !self.stopped && start < self.buf.len() {
            match self.decoder.parse(&self.buf[start..]) {
                Parse::Message(message, n) => {
                    out.push(Event::Message {
                        offset: self.offset + start as u64,
                        len: n,
                        message,
                    });
                    start += n;
                }
                Parse::Skip(n) => start += n,
                Parse::Need(Some(n)) if n > self.cap => {
                    self.offset += start as u64;
                    self.buf.drain(..start);
                    start = 0;
                    self.stop(
                        out,
                        Stop::TooLarge {
                            bytes: Some(n),
                            cap: self.cap,
                        },
                    );
                }
                Parse::Need(_) => break,
                Parse::Stop(why) => {
                    self.offset += start as u64;
                    self.buf.drain(..start);
                    start = 0;
                    self.stop(out, why);
                }
            }
        }
        self.offset += start as u64;
        self.buf.drain(..start);
    }

    fn stop(&mut self, out: &mut Vec<Event<D::Message>>, why: Stop) {
        out.push(Event::Stopped {
            offset: self.offset,
            why,
        });
        self.stopped = true;
        self.buf = Vec::new();
    }
}

/// A ZooKeeper operation code (ZooDefs.OpCode), as it appears in a RequestHeader, a TxnHeader or a REQUEST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op(pub i32);

impl Op {
    /// ZooDefs.OpCode's name for it (3.8), or None for a code 3.8 does not define.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "notification",
            1 => "create",
            2 => "delete",
            3 => "exists",
            4 => "getData",
            5 => "setData",
            6 => "getACL",
            7 => "setACL",
            8 => "getChildren",
            9 => "sync",
            11 => "ping",
            12 => "getChildren2",
            13 => "check",
            14 => "multi",
            15 => "create2",
            16 => "reconfig",
            17 => "checkWatches",
            18 => "removeWatches",
            19 => "createContainer",
            20 => "deleteContainer",
            21 => "createTTL",
            22 => "multiRead",
            100 => "auth",
            101 => "setWatches",
            102 => "sasl",
            103 => "getEphemerals",
            104 => "getAllChildrenNumber",
            105 => "setWatches2",
            106 => "addWatch",
            107 => "whoAmI",
            -10 => "createSession",
            -11 => "closeSession",
            -1 => "error",
            _ => return None,
        })
    }

    /// Does a client request of this type start its body with the znode path (zookeeper.jute's
    /// CreateRequest, DeleteRequest, ExistsRequest, GetDataRequest, SetDataRequest, GetACLRequest,
    /// SetACLRequest, GetChildrenRequest, GetChildren2Request, SyncRequest, CheckVersionRequest,
    /// CreateTTLRequest, RemoveWatchesRequest, GetEphemeralsRequest, GetAllChildrenNumberRequest,
    /// AddWatchRequest, CheckWatchesRequest: `ustring path` first)?
    pub fn request_has_path(self) -> bool {
        matches!(self.0, 1..=9 | 12 | 13 | 15 | 17..=21 | 103 | 104 | 106)
    }

    /// Does a transaction of this type start with the znode path (CreateTxn, DeleteTxn, SetDataTxn,
    /// SetACLTxn, CheckVersionTxn, CreateTTLTxn, CreateContainerTxn: `ustring path` first)?
    pub fn txn_has_path(self) -> bool {
        matches!(self.0, 1 | 2 | 5 | 7 | 13 | 15 | 19 | 20 | 21)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "op {}", self.0),
        }
    }
}

/// The longest znode path the decoders accept (ZooKeeper's own limit is jute.maxbuffer).
pub const PATH_LIMIT: usize = 1 << 20;

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Feed `bytes` split at every offset (two chunks), and as single bytes; every way must give `whole`'s events
    /// (with a fresh decoder from `make` each time). Returns the events of feeding it at once.
    pub fn split_everywhere<D: Decode>(make: impl Fn() -> D, bytes: &[u8], cap: usize) -> Vec<Event<D::Message>>
    where
        D::Message: PartialEq + fmt::Debug + Clone,
    {
        let whole = Tap::new(make(), cap).feed(bytes);
        for at in 0..=bytes.len() {
            let mut tap = Tap::new(make(), cap);
            let mut got = tap.feed(&bytes[..at]);
            got.extend(tap.feed(&bytes[at..]));
            assert_eq!(got, whole, "split at byte {at} of {}", bytes.len());
            assert!(tap.held() <= cap);
        }
        let mut tap = Tap::new(make(), cap);
        let mut got = Vec::new();
        for b in bytes {
            got.extend(tap.feed(std::slice::from_ref(b)));
            assert!(tap.held() <= cap);
        }
        assert_eq!(got, whole, "fed byte by byte");
        whole
    }

    /// The messages of a tap's events, panicking on a stop.
    pub fn messages<M: fmt::Debug>(events: Vec<Event<M>>) -> Vec<M> {
        events
            .into_iter()
            .map(|e| match e {
                Event::Message { message, .. } => message,
                Event::Stopped { why, offset } => panic!("stopped at {offset}: {why}"),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::client::{ClientDecoder, From};
    use super::election::ElectionDecoder;
    use super::quorum::QuorumDecoder;
    use super::*;
    use crate::model::rng::Rng;

    /// Random bytes in random chunks: never a panic, never more held than the cap, and once stopped, silent.
    fn garbage<D: Decode>(make: impl Fn() -> D)
    where
        D::Message: fmt::Debug,
    {
        let mut rng = Rng::new(28);
        for round in 0..300 {
            let cap = rng.range(16, 4096) as usize;
            let mut tap = Tap::new(make(), cap);
            let mut stops = 0;
            for _ in 0..rng.range(1, 40) {
                let chunk: Vec<u8> = (0..rng.range(0, 700)).map(|_| rng.next_u64() as u8).collect();
                for e in tap.feed(&chunk) {
                    if let Event::Stopped { why, .. } = e {
                        stops += 1;
                        assert!(!why.to_string().is_empty());
                    }
                }
                assert!(tap.held() <= cap, "round {round}: {} held, cap {cap}", tap.held());
            }
            assert!(stops <= 1, "round {round}: stopped {stops} times");
        }
    }

    #[test]
    fn garbage_in_random_chunks_never_panics_or_grows_past_the_cap() {
        garbage(QuorumDecoder::new);
        garbage(ElectionDecoder::from_dialler);
        garbage(ElectionDecoder::from_acceptor);
        garbage(|| ClientDecoder::new(From::Client));
        garbage(|| ClientDecoder::new(From::Server));
    }

    #[test]
    fn stops_say_what_and_that_reading_ends() {
        let s = Stop::TooLarge {
            bytes: Some(5000),
            cap: 1024,
        }
        .to_string();
        assert!(
            s.contains("5000") && s.contains("1024") && s.contains("stops reading"),
            "{s}"
        );
        assert!(Stop::TooLarge { bytes: None, cap: 1024 }.to_string().contains("1024"));
        assert_eq!(Op(1).to_string(), "create");
        assert_eq!(Op(999).to_string(), "op 999");
    }
}
