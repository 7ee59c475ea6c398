//! Asking a server what it is doing: the four-letter words over TCP (send the word, read to EOF), each with a
//! deadline, since a SIGSTOPped JVM accepts the connection (the kernel does) but never answers.

use std::net::SocketAddrV4;
use std::time::Duration;

use serde::Serialize;

use crate::model::server::{Mode, Zxid};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one `srvr` probe found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Probe {
    /// The server answered `srvr` and is serving.
    Serving(Srvr),
    /// Up but not serving: electing (LOOKING) or syncing with a new leader.
    NotServing,
    /// Nothing listens on the port (not started yet, or gone).
    Refused,
    /// Connected, but no complete answer within the deadline (paused, overloaded).
    Timeout,
    /// Anything else: an empty or unexpected reply, a reset.
    Error { message: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Srvr {
    pub version: String,
    pub mode: Mode,
    pub zxid: Zxid,
    pub connections: Option<u64>,
    pub node_count: Option<u64>,
}

pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// Send a four-letter word to a node's client address and read the reply until EOF, all within `timeout`.
pub async fn four_letter(addr: SocketAddrV4, word: &str, timeout: Duration) -> std::io::Result<String> {
    let work = async {
        let mut stream = TcpStream::connect(addr).await?;
        // Close with a reset once the answer is read: the server has closed its side already, and a FIN
        // would leave its socket in TIME_WAIT for a minute. At ten probes a second per node those pile up
        // by the thousand in /proc/net/tcp, which every /proc reader (port checks, the proxies' listener
        // watch) then has to wade through.
        // (tokio deprecates set_linger because a non-zero linger blocks on drop; zero never does.)
        let _ = nix::sys::socket::setsockopt(
            &std::os::fd::AsFd::as_fd(&stream),
            nix::sys::socket::sockopt::Linger,
            &nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            },
        );
        stream.write_all(word.as_bytes()).await?;
        let mut buf = Vec::with_capacity(512);
        stream.read_to_end(&mut buf).await?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in time")),
    }
}

pub async fn srvr(addr: SocketAddrV4, timeout: Duration) -> Probe {
    match four_letter(addr, "srvr", timeout).await {
        Ok(text) => parse_srvr(&text),
        Err(e) => match e.kind() {
            std::io::ErrorKind::ConnectionRefused => Probe::Refused,
            std::io::ErrorKind::TimedOut => Probe::Timeout,
            _ => Probe::Error { message: e.to_string() },
        },
    }
}

/// `mntr` as key -> value; empty when the server does not answer or does not allow it.
pub async fn mntr(addr: SocketAddrV4, timeout: Duration) -> std::collections::BTreeMap<String, String> {
    match four_letter(addr, "mntr", timeout).await {
        Ok(text) => parse_mntr(&text),
        Err(_) => Default::default(),
    }
}

pub fn parse_mntr(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

pub fn parse_srvr(text: &str) -> Probe {
    if text.contains(NOT_SERVING) {
        return Probe::NotServing;
    }
    let mut version = None;
    let mut mode = None;
    let mut zxid = None;
    let mut connections = None;
    let mut node_count = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "Zookeeper version" => version = Some(value.split(',').next().unwrap_or(value).to_string()),
            "Mode" => mode = value.parse::<Mode>().ok(),
            "Zxid" => zxid = value.parse::<Zxid>().ok(),
            "Connections" => connections = value.parse().ok(),
            "Node count" => node_count = value.parse().ok(),
            _ => {}
        }
    }
    match (mode, zxid) {
        (Some(mode), Some(zxid)) => Probe::Serving(Srvr {
            version: version.unwrap_or_default(),
            mode,
            zxid,
            connections,
            node_count,
        }),
        _ if text.trim().is_empty() => Probe::Error {
            message: "empty reply".into(),
        },
        _ => Probe::Error {
            message: format!("unexpected reply: {}", text.lines().next().unwrap_or("").trim()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LEADER: &str =
        "Zookeeper version: 3.8.0-debian, built on 2024-12-29 17:54 UTC\nLatency min/avg/max: 0/0.0/0\n\
Received: 1\nSent: 0\nConnections: 1\nOutstanding: 0\nZxid: 0x100000003\nMode: leader\nNode count: 5\n\
Proposal sizes last/min/max: -1/-1/-1\n";

    #[test]
    fn parses_a_leader() {
        let Probe::Serving(s) = parse_srvr(LEADER) else {
            panic!("not parsed")
        };
        assert_eq!(s.mode, Mode::Leader);
        assert_eq!(s.zxid, Zxid(0x1_0000_0003));
        assert_eq!((s.zxid.epoch(), s.zxid.counter()), (1, 3));
        assert_eq!(s.connections, Some(1));
        assert_eq!(s.node_count, Some(5));
        assert_eq!(s.version, "3.8.0-debian");
    }

    #[test]
    fn parses_mntr() {
        let m = parse_mntr("zk_version\t3.8.0\nzk_peer_state\tleading - broadcast\nzk_synced_followers\t2\n");
        assert_eq!(m["zk_peer_state"], "leading - broadcast");
        assert_eq!(m["zk_synced_followers"], "2");
        assert!(parse_mntr("mntr is not executed because it is not in the whitelist.").is_empty());
    }

    #[test]
    fn not_serving_and_garbage() {
        assert_eq!(parse_srvr(&format!("{NOT_SERVING}\n")), Probe::NotServing);
        assert!(matches!(parse_srvr(""), Probe::Error { .. }));
        assert!(matches!(parse_srvr("hello"), Probe::Error { .. }));
    }

    #[tokio::test]
    async fn a_silent_server_times_out_and_a_closed_port_is_refused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = SocketAddrV4::new(Ipv4Addr::LOCALHOST, listener.local_addr().unwrap().port());
        // Accepts (the backlog does) but never answers, like a SIGSTOPped JVM.
        let started = std::time::Instant::now();
        assert_eq!(srvr(port, Duration::from_millis(150)).await, Probe::Timeout);
        assert!(started.elapsed() < Duration::from_secs(1));
        drop(listener);
        assert_eq!(srvr(port, Duration::from_millis(150)).await, Probe::Refused);
    }
}
