//! Client sessions as the servers see them (`cons`, `dump`), and ending one for real from outside the client.
//!
//! Ending a session: ZooKeeper 3.x derives a session's password from its id and a fixed secret
//! (`ZooKeeperServer.generatePasswd`: `new java.util.Random(id ^ 0xB3415C00L).nextBytes(16 bytes)`). Knowing the
//! id, zkdev can connect with that session (the server checks nothing else), then close it: the ensemble
//! commits a `closeSession`, deletes the session's ephemeral znodes on every node, fires their watches, and
//! drops the original client's connection; when that client reconnects it is told SESSION_EXPIRED. This is what
//! Curator's `KillSession` test helper did, done to a real ensemble over the plain client port.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `ZooKeeperServer.superSecret`, unchanged from 3.3 to 3.9.
const SUPER_SECRET: i64 = 0xB341_5C00;
/// jute's opcode for closeSession.
const OP_CLOSE_SESSION: i32 = -11;

/// The 16-byte password the servers expect with session `id`.
pub fn password(id: i64) -> [u8; 16] {
    let mut rng = JavaRandom::new(id ^ SUPER_SECRET);
    let mut out = [0u8; 16];
    rng.next_bytes(&mut out);
    out
}

/// `java.util.Random`: the 48-bit linear congruential generator, bit for bit.
struct JavaRandom {
    seed: u64,
}

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;

    fn new(seed: i64) -> JavaRandom {
        JavaRandom {
            seed: (seed as u64 ^ Self::MULTIPLIER) & Self::MASK,
        }
    }

    fn next_int(&mut self) -> i32 {
        self.seed = (self.seed.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        (self.seed >> 16) as u32 as i32
    }

    fn next_bytes(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(4) {
            let mut rnd = self.next_int();
            for b in chunk {
                *b = rnd as u8;
                rnd >>= 8;
            }
        }
    }
}

/// The myid of the server that created a session: the top byte of its id (`SessionTrackerImpl.initializeNextSessionId`).
pub fn creator(id: i64) -> u32 {
    (id as u64 >> 56) as u32
}

/// One client connection a server reports in `cons`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Connection {
    /// `127.0.0.1:41920`.
    pub client: String,
    pub session: i64,
    /// The negotiated session timeout, milliseconds.
    pub timeout_ms: Option<u64>,
    /// The last operation (`PING`, `CREA`, `GETD`...).
    pub last_op: Option<String>,
}

/// The connections in a `cons` answer that have a session (the `cons` connection itself has none yet).
pub fn parse_cons(text: &str) -> Vec<Connection> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        let Some(open) = line.find('(') else { continue };
        let client = line[..open]
            .trim_start_matches('/')
            .split('[')
            .next()
            .unwrap_or("")
            .to_string();
        let fields: BTreeMap<&str, &str> = line[open + 1..]
            .trim_end_matches(')')
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let Some(session) = fields.get("sid").and_then(|s| parse_id(s)) else {
            continue;
        };
        out.push(Connection {
            client,
            session,
            timeout_ms: fields.get("to").and_then(|t| t.parse().ok()),
            last_op: fields.get("lop").map(|s| s.to_string()),
        });
    }
    out
}

/// `0x1000a2b3c4d0000` (or without `0x`) as a session id.
pub fn parse_id(text: &str) -> Option<i64> {
    let hex = text.trim().trim_start_matches("0x").trim_start_matches("0X");
    u64::from_str_radix(hex, 16).ok().map(|v| v as i64)
}

/// A session id as ZooKeeper prints it: `0x100007f3a2b0000`.
pub fn hex(id: i64) -> String {
    format!("{:#x}", id as u64)
}

/// The ephemeral znodes per session in a `dump` answer ("Sessions with Ephemerals"), which every server
/// has (the data tree is replicated).
pub fn parse_dump_ephemerals(text: &str) -> BTreeMap<i64, Vec<String>> {
    let mut out: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut inside = false;
    let mut current = None;
    for line in text.lines() {
        if line.starts_with("Sessions with Ephemerals") {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        if line.starts_with("Connections with Ephemerals") {
            break;
        }
        let t = line.trim();
        if t.starts_with('/') {
            if let Some(id) = current {
                out.entry(id).or_default().push(t.to_string());
            }
        } else if let Some(id) = t.strip_suffix(':').and_then(parse_id) {
            current = Some(id);
            out.entry(id).or_default();
        }
    }
    out
}

/// What closing a session did.
#[derive(Debug, Clone, Serialize)]
pub struct Closed {
    /// The server zkdev connected through.
    pub via: String,
    /// The zxid of the committed closeSession.
    pub zxid: i64,
}

/// Why a session could not be closed.
#[derive(Debug)]
pub enum CloseError {
    /// The server refused to reattach: the session is gone already (or the password is not the derived one).
    Unknown,
    Io(std::io::Error),
    Server(i32),
}

impl std::fmt::Display for CloseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseError::Unknown => write!(f, "the server does not know this session (expired or closed already)"),
            CloseError::Io(e) => write!(f, "{e}"),
            CloseError::Server(code) => write!(f, "the server answered closeSession with error {code}"),
        }
    }
}

impl From<std::io::Error> for CloseError {
    fn from(e: std::io::Error) -> Self {
        CloseError::Io(e)
    }
}

/// Attach to session `id` through `addr` with its derived password, then close it: the servers end the
/// session as if its owner had closed it. Raw jute on the wire: the client library keeps passwords private.
pub async fn close(addr: SocketAddrV4, id: i64, timeout_ms: u32, within: Duration) -> Result<Closed, CloseError> {
    match tokio::time::timeout(within, close_inner(addr, id, timeout_ms)).await {
        Ok(r) => r,
        Err(_) => Err(CloseError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer from {addr} within {} ms", within.as_millis()),
        ))),
    }
}

async fn close_inner(addr: SocketAddrV4, id: i64, timeout_ms: u32) -> Result<Closed, CloseError> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut req = Vec::with_capacity(64);
    req.extend_from_slice(&0i32.to_be_bytes()); // protocolVersion
    req.extend_from_slice(&0i64.to_be_bytes()); // lastZxidSeen: 0, so no server refuses as being behind us
    req.extend_from_slice(&(timeout_ms as i32).to_be_bytes());
    req.extend_from_slice(&id.to_be_bytes());
    let pass = password(id);
    req.extend_from_slice(&(pass.len() as i32).to_be_bytes());
    req.extend_from_slice(&pass);
    req.push(0); // readOnly: false
    send(&mut stream, &req).await?;
    let resp = receive(&mut stream).await?;
    // protocolVersion(4) timeOut(4) sessionId(8) ...: an invalid session is answered with timeout 0, id 0.
    if resp.len() < 16 {
        return Err(CloseError::Unknown);
    }
    let negotiated = i32::from_be_bytes(resp[4..8].try_into().expect("4 bytes"));
    let got = i64::from_be_bytes(resp[8..16].try_into().expect("8 bytes"));
    if negotiated <= 0 || got != id {
        return Err(CloseError::Unknown);
    }
    let mut close = Vec::with_capacity(8);
    close.extend_from_slice(&1i32.to_be_bytes()); // xid
    close.extend_from_slice(&OP_CLOSE_SESSION.to_be_bytes());
    send(&mut stream, &close).await?;
    // Replies until ours: xid(4) zxid(8) err(4). Watch notifications (xid -1) may come first.
    loop {
        let r = receive(&mut stream).await?;
        if r.len() < 16 {
            return Err(CloseError::Io(std::io::Error::other("short reply to closeSession")));
        }
        let xid = i32::from_be_bytes(r[0..4].try_into().expect("4 bytes"));
        if xid != 1 {
            continue;
        }
        let zxid = i64::from_be_bytes(r[4..12].try_into().expect("8 bytes"));
        let err = i32::from_be_bytes(r[12..16].try_into().expect("4 bytes"));
        if err != 0 {
            return Err(CloseError::Server(err));
        }
        return Ok(Closed {
            via: addr.to_string(),
            zxid,
        });
    }
}

async fn send(stream: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    stream.write_all(&frame).await
}

async fn receive(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = i32::from_be_bytes(len);
    if !(0..=1 << 20).contains(&len) {
        return Err(std::io::Error::other(format!(
            "a reply of {len} bytes is not ZooKeeper's"
        )));
    }
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_random_matches_the_jdk() {
        // new java.util.Random(42).nextInt() x3, and nextBytes of 6 from a fresh Random(0).
        let mut r = JavaRandom::new(42);
        assert_eq!(
            [r.next_int(), r.next_int(), r.next_int()],
            [-1170105035, 234785527, -1360544799]
        );
        let mut b = [0u8; 6];
        JavaRandom::new(0).next_bytes(&mut b);
        assert_eq!(b.map(|x| x as i8), [96, -76, 32, -69, 56, 81]);
    }

    #[test]
    fn the_creator_is_the_top_byte() {
        assert_eq!(creator(parse_id("0x300012f4b6c0000").unwrap()), 3);
        assert_eq!(creator(parse_id("0x100012f4b6c0001").unwrap()), 1);
        assert_eq!(hex(parse_id("0x200000a1b2c0000").unwrap()), "0x200000a1b2c0000");
    }

    #[test]
    fn cons_lists_connections_with_sessions() {
        let text = " /127.0.0.1:41920[1](queued=0,recved=5,sent=5,sid=0x100009a7c6d0000,lop=CREA,est=1700000000000,\
                    to=4000,lcxid=0x1,lzxid=0x100000002,lresp=123,llat=1,minlat=0,avglat=0.5,maxlat=1)\n \
                    /127.0.0.1:41934[0](queued=0,recved=1,sent=0)\n\n";
        let c = parse_cons(text);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].client, "127.0.0.1:41920");
        assert_eq!(hex(c[0].session), "0x100009a7c6d0000");
        assert_eq!(c[0].timeout_ms, Some(4000));
        assert_eq!(c[0].last_op.as_deref(), Some("CREA"));
    }

    #[test]
    fn dump_gives_ephemerals_per_session() {
        let text = "SessionTracker dump:\nSession Sets (2)/(1):\n0 expire at Thu:\n\t0x100009a7c6d0000\n\
                    ephemeral nodes dump:\nSessions with Ephemerals (2):\n0x100009a7c6d0000:\n\t/lock/a\n\t/eph\n\
                    0x200009a7c6d0001:\n\t/other\nConnections with Ephemerals (1):\n0x100009a7c6d0000:\n\t/eph\n";
        let e = parse_dump_ephemerals(text);
        assert_eq!(e[&parse_id("0x100009a7c6d0000").unwrap()], vec!["/lock/a", "/eph"]);
        assert_eq!(e[&parse_id("0x200009a7c6d0001").unwrap()], vec!["/other"]);
        assert_eq!(e.len(), 2);
    }
}
