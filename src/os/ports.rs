//! Is a port free on a node's address (127.0.0.1, or its own loopback address), and if not, who holds it (from /proc/net/tcp and /proc/*/fd); and which of a
//! cluster's ports the kernel may hand to outgoing connections (its ephemeral range).

/// Who listens on a port, as far as /proc tells (a process of another user may stay anonymous).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: i32,
    pub name: String,
}

use std::net::Ipv4Addr;

/// Could a server bind `address`:`port` now? Asked the way ZooKeeper binds (SO_REUSEADDR), so connections
/// of a just-stopped node lingering in TIME_WAIT do not count as "in use".
pub fn is_free(address: Ipv4Addr, port: u16) -> bool {
    use nix::sys::socket::{bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
    let Ok(fd) = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None) else {
        return false;
    };
    if setsockopt(&fd, sockopt::ReuseAddr, &true).is_err() {
        return false;
    }
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(std::net::SocketAddrV4::new(address, port)),
    )
    .is_ok()
}

/// Is `address` one of this machine's (can anything bind it)? Linux routes all of 127.0.0.0/8 to the
/// loopback interface; other systems only 127.0.0.1 unless aliases are added.
pub fn is_local_address(address: Ipv4Addr) -> bool {
    std::net::TcpListener::bind((address, 0)).is_ok()
}

/// Every TCP port something listens on (IPv4 or IPv6, any address), without connecting. Asked of the
/// kernel's socket diagnostics (netlink `sock_diag`, filtered to LISTEN, as `ss -l` does), which walks only
/// the listening sockets; /proc/net/tcp{,6} (the fallback) lists every socket of the machine and costs
/// a hundred times more when connections are many.
pub fn listening_ports() -> std::collections::BTreeSet<u16> {
    listening_ports_except(|_| false)
}

/// `listening_ports`, leaving out the listeners on IPv4 addresses `skip` names (the link proxies of a
/// cluster with reconfig listen on their nodes' port numbers, at addresses of their own).
pub fn listening_ports_except(skip: fn(Ipv4Addr) -> bool) -> std::collections::BTreeSet<u16> {
    let all = listening_by_diag().unwrap_or_else(|_| listening_by_proc());
    all.into_iter()
        .filter(|(addr, _)| !addr.is_some_and(skip))
        .map(|(_, port)| port)
        .collect()
}

/// Does something listen on `address:port` (or on that port of every address), asked of the kernel without
/// connecting: a connection would reach the server itself, which logs a stranger that says nothing.
pub fn listening_on(address: Ipv4Addr, port: u16) -> bool {
    let all = listening_by_diag().unwrap_or_else(|_| listening_by_proc());
    all.into_iter()
        .any(|(a, p)| p == port && a.is_none_or(|a| a == address || a.is_unspecified()))
}

/// Every listener as (its IPv4 address, None for IPv6; port).
fn listening_by_proc() -> std::collections::BTreeSet<(Option<Ipv4Addr>, u16)> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    let (addr, port) = f.get(1)?.rsplit_once(':')?;
                    let port = u16::from_str_radix(port, 16).ok()?;
                    // IPv4: the address as a host-order hex u32 of network-order bytes (0100007F = 127.0.0.1).
                    let v4 = (addr.len() == 8)
                        .then(|| u32::from_str_radix(addr, 16).ok())
                        .flatten()
                        .map(|a| Ipv4Addr::from(a.to_le_bytes()));
                    (*f.get(3)? == "0A").then_some((v4, port))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// One SOCK_DIAG_BY_FAMILY dump per address family, TCP, LISTEN only; the local port of every answer.
fn listening_by_diag() -> std::io::Result<std::collections::BTreeSet<(Option<Ipv4Addr>, u16)>> {
    use nix::libc;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const TCP_LISTEN: u32 = 10;
    // SAFETY: a plain socket(2) call; the fd is owned (and closed) by `OwnedFd` below.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut ports = std::collections::BTreeSet::new();
    let mut buf = vec![0u8; 64 * 1024];
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        // struct nlmsghdr (16 bytes) + struct inet_diag_req_v2 (56 bytes: family, protocol, ext, pad,
        // states, then a zeroed inet_diag_sockid: no filter on addresses or ports).
        let mut req = [0u8; 16 + 56];
        req[0..4].copy_from_slice(&(16u32 + 56).to_ne_bytes());
        req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        req[6..8].copy_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
        req[8..12].copy_from_slice(&1u32.to_ne_bytes());
        req[16] = family;
        req[17] = libc::IPPROTO_TCP as u8;
        req[20..24].copy_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
        // SAFETY: `req` is a valid buffer of the given length for the duration of the call.
        let sent = unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
        if sent < 0 {
            return Err(std::io::Error::last_os_error());
        }
        'dump: loop {
            // SAFETY: `buf` is a valid, writable buffer of the given length.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let data = &buf[..n as usize];
            let mut off = 0;
            while off + 16 <= data.len() {
                let len = u32::from_ne_bytes(data[off..off + 4].try_into().expect("4 bytes")) as usize;
                let kind = u16::from_ne_bytes(data[off + 4..off + 6].try_into().expect("2 bytes"));
                if len < 16 || off + len > data.len() {
                    break 'dump;
                }
                match kind {
                    NLMSG_DONE => break 'dump,
                    NLMSG_ERROR => return Err(std::io::Error::other("sock_diag refused the request")),
                    _ => {
                        // struct inet_diag_msg: family, state, timer, retrans, then the sockid whose first
                        // fields are the source (local) port, big-endian, the destination port, and the
                        // source address (network order; an IPv4 one in its first 4 bytes).
                        let msg = &data[off + 16..off + len];
                        if msg.len() >= 12 {
                            let addr = (msg[0] == libc::AF_INET as u8)
                                .then(|| Ipv4Addr::new(msg[8], msg[9], msg[10], msg[11]));
                            ports.insert((addr, u16::from_be_bytes([msg[4], msg[5]])));
                        }
                    }
                }
                off += (len + 3) & !3;
            }
        }
    }
    Ok(ports)
}

/// The process listening on `port` (IPv4 or IPv6), if /proc names it.
pub fn owner(port: u16) -> Option<Owner> {
    let inodes: Vec<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| listening_inodes(&text, port))
        .collect();
    owner_of(&inodes)
}

/// What holds a port that cannot be bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A listening socket; its process when /proc names it.
    Listener(Option<Owner>),
    /// No listener: the port is the local end of a connection (an outgoing one, given this port by the kernel).
    Connection {
        /// `ESTABLISHED`, `SYN_SENT`, `CLOSE_WAIT`...
        state: &'static str,
        /// The other end, `address:port`.
        remote: String,
        owner: Option<Owner>,
    },
    /// Only connections that are closing (TIME_WAIT and the like, owned by no process): passes within moments.
    Closing,
}

impl Holder {
    /// Lasts until someone acts (a listener, a live connection), as opposed to connections that are closing.
    /// Worth reporting at once? Closing connections pass within moments, and so does a listener that no
    /// process owns (the sockets of a process still exiting): the port check waits those out first.
    pub fn settled(&self) -> bool {
        !matches!(self, Holder::Closing | Holder::Listener(None))
    }

    /// How a port-in-use message names the holder, after "port P (node N client port) is in use".
    pub fn describe(&self, port: u16, ephemeral: Option<(u16, u16)>) -> String {
        let by = |o: &Option<Owner>| match o {
            Some(o) => format!("pid {} ({})", o.pid, o.name),
            None => "a process /proc does not name (another user's?)".to_string(),
        };
        match self {
            Holder::Listener(Some(o)) => format!(" by pid {} ({})", o.pid, o.name),
            Holder::Listener(None) => " by a listening process /proc does not name (another user's?)".to_string(),
            Holder::Connection { state, remote, owner } => {
                let range = match ephemeral {
                    Some((lo, hi)) if (lo..=hi).contains(&port) => format!(
                        "; the kernel hands the ports of its ephemeral range {lo}-{hi} \
                         (/proc/sys/net/ipv4/ip_local_port_range) to outgoing connections, so a cluster's ports are \
                         safer below {lo}"
                    ),
                    _ => String::new(),
                };
                format!(
                    ", not by a listener: it is the local port of an outgoing connection of {} to {remote} ({state}), \
                     and is free again once that connection closes{range}",
                    by(owner)
                )
            }
            Holder::Closing => {
                " (no process listens on it: connections to it are still closing; retry shortly)".to_string()
            }
        }
    }
}

/// Who holds `port` on `address` (or on every address), from /proc/net/tcp and tcp6: a listener first, then
/// a live connection whose local port it is, then closing connections. None when nothing there has it.
pub fn holder(address: Ipv4Addr, port: u16) -> Option<Holder> {
    let socks: Vec<Sock> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| sockets_on(&text, address, port))
        .collect();
    let listening: Vec<u64> = socks.iter().filter(|s| s.state == "LISTEN").map(|s| s.inode).collect();
    if !listening.is_empty() {
        return Some(Holder::Listener(owner_of(&listening)));
    }
    // A connection still owned by a socket (inode 0 means only the kernel holds it: TIME_WAIT).
    if let Some(c) = socks.iter().find(|s| s.inode != 0) {
        return Some(Holder::Connection {
            state: c.state,
            remote: c.remote.clone(),
            owner: owner_of(&[c.inode]),
        });
    }
    (!socks.is_empty()).then_some(Holder::Closing)
}

/// One row of /proc/net/tcp{,6}.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sock {
    state: &'static str,
    remote: String,
    inode: u64,
}

/// The sockets whose local end is `port` on an address a bind to `address` would clash with (itself, the
/// wildcard, or their IPv6 forms), in a /proc/net/tcp{,6} table.
fn sockets_on(table: &str, address: Ipv4Addr, port: u16) -> Vec<Sock> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local_addr, local_port) = f.get(1)?.rsplit_once(':')?;
            if u16::from_str_radix(local_port, 16).ok()? != port || !clashes_with(local_addr, address) {
                return None;
            }
            Some(Sock {
                state: tcp_state(f.get(3)?),
                remote: decode_addr(f.get(2)?)?,
                inode: f.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// `hex`, a local address as /proc/net/tcp{,6} writes it, is `address` (IPv4 or v4-mapped) or the wildcard.
fn clashes_with(hex: &str, address: Ipv4Addr) -> bool {
    let v4 = format!("{:08X}", u32::from_le_bytes(address.octets()));
    hex == v4
        || hex.strip_prefix("0000000000000000FFFF0000") == Some(v4.as_str())
        || matches!(
            hex,
            "00000000" | "00000000000000000000000000000000" | "0000000000000000FFFF000000000000"
        )
}

fn tcp_state(hex: &str) -> &'static str {
    match hex {
        "01" => "ESTABLISHED",
        "02" => "SYN_SENT",
        "03" => "SYN_RECV",
        "04" => "FIN_WAIT1",
        "05" => "FIN_WAIT2",
        "06" => "TIME_WAIT",
        "07" => "CLOSE",
        "08" => "CLOSE_WAIT",
        "09" => "LAST_ACK",
        "0A" => "LISTEN",
        "0B" => "CLOSING",
        _ => "unknown state",
    }
}

/// `0100007F:0885` -> `127.0.0.1:2181`; IPv6 (four little-endian words) -> `[...]:port`, v4-mapped as IPv4.
fn decode_addr(hex: &str) -> Option<String> {
    let (addr, port) = hex.rsplit_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..addr.len() / 8)
        .map(|i| u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16).map(u32::from_be))
        .collect::<Result<_, _>>()
        .ok()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    let ip = match bytes.len() {
        4 => std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => {
            let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            v6.to_ipv4_mapped()
                .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4)
        }
        _ => return None,
    };
    Some(std::net::SocketAddr::new(ip, port).to_string())
}

/// The system's ephemeral port range (the local ports it gives outgoing connections), from
/// /proc/sys/net/ipv4/ip_local_port_range.
pub fn ephemeral_range() -> Option<(u16, u16)> {
    parse_port_range(&std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?)
}

fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let mut it = text.split_whitespace().map(|s| s.parse::<u16>().ok());
    let (lo, hi) = (it.next()??, it.next()??);
    (lo <= hi).then_some((lo, hi))
}

/// A warning when any of `ports` (port, node, what) falls in the ephemeral range `lo..=hi`: the lowest such
/// port, the range, and the largest --port-offset that keeps every port below it. `offset` is the one in use.
pub fn ephemeral_warning<S: AsRef<str>>(ports: &[(u16, u32, S)], offset: u16, (lo, hi): (u16, u16)) -> Option<String> {
    let (port, id, what) = ports
        .iter()
        .filter(|(p, _, _)| (lo..=hi).contains(p))
        .min_by_key(|(p, _, _)| *p)?;
    let highest = ports.iter().map(|(p, _, _)| u32::from(*p)).max()?;
    let without_offset = highest - u32::from(offset);
    let advice = match u32::from(lo).checked_sub(1 + without_offset) {
        Some(max) => {
            let example = if max >= 10_000 {
                max / 10_000 * 10_000
            } else {
                max / 1000 * 1000
            };
            format!(
                "a --port-offset of at most {max} (e.g. --port-offset {example}) keeps every port of this cluster \
                 below {lo}"
            )
        }
        None => format!("lower the port bases in the profile so that every port stays below {lo}"),
    };
    Some(format!(
        "port {port} (node {id} {} port) is in the system's ephemeral port range {lo}-{hi} \
         (/proc/sys/net/ipv4/ip_local_port_range), from which the kernel takes the local port of every outgoing \
         connection: one can take it at any moment and keep the node from starting; {advice}",
        what.as_ref()
    ))
}

fn owner_of(inodes: &[u64]) -> Option<Owner> {
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                if inode.parse::<u64>().is_ok_and(|i| inodes.contains(&i)) {
                    let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .map(|s| s.trim().to_string())
                        .unwrap_or_else(|_| "?".into());
                    return Some(Owner { pid, name });
                }
            }
        }
    }
    None
}

/// Socket inodes in LISTEN state (0A) on `port` in a /proc/net/tcp{,6} table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit(':').next()?;
            let p = u16::from_str_radix(local_port, 16).ok()?;
            (p == port && *f.get(3)? == "0A").then(|| f.get(9)?.parse().ok())?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

    #[test]
    fn listening_ports_are_seen_by_both_ways_and_closed_ones_are_not() {
        let l = TcpListener::bind((LO, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let by_diag = listening_by_diag().expect("sock_diag answers");
        assert!(by_diag.contains(&(Some(LO), port)));
        assert!(listening_by_proc().contains(&(Some(LO), port)));
        drop(l);
        assert!(!listening_by_diag().unwrap().contains(&(Some(LO), port)));
        // A connected (not listening) socket does not count.
        let l2 = TcpListener::bind((LO, 0)).unwrap();
        let c = std::net::TcpStream::connect(l2.local_addr().unwrap()).unwrap();
        let local = c.local_addr().unwrap().port();
        assert!(!listening_ports().contains(&local));
    }

    #[test]
    fn listeners_on_skipped_addresses_are_left_out() {
        // A port of its own on 127.1.0.1 (a link proxy's kind of address) is seen only when not skipped.
        let link = Ipv4Addr::new(127, 1, 0, 1);
        let l = TcpListener::bind((link, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(listening_ports().contains(&port));
        assert!(!listening_ports_except(|a| a.octets()[..2] == [127, 1]).contains(&port));
        assert!(listening_by_proc().contains(&(Some(link), port)));
    }

    #[test]
    fn a_port_on_another_loopback_address_is_its_own() {
        // 0x0885 = 2181 on 127.0.0.11 (0B00007F) and v4-mapped 127.0.0.12; the wildcard clashes with every address.
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
            0: 0B00007F:0885 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11 1 0000000000000000 100 0 0 10 0\n";
        let eleven = Ipv4Addr::new(127, 0, 0, 11);
        assert_eq!(sockets_on(table, eleven, 2181).len(), 1);
        assert!(sockets_on(table, LO, 2181).is_empty());
        assert!(clashes_with(
            "0000000000000000FFFF00000C00007F",
            Ipv4Addr::new(127, 0, 0, 12)
        ));
        assert!(clashes_with("00000000", eleven));
        assert!(!clashes_with("0100007F", eleven));
        // A listener on 127.0.0.11 leaves 127.0.0.12 free on the same port.
        let l = TcpListener::bind((eleven, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(!is_free(eleven, port));
        assert!(is_free(Ipv4Addr::new(127, 0, 0, 12), port));
        assert!(matches!(holder(eleven, port), Some(Holder::Listener(Some(_)))));
        assert!(is_local_address(eleven));
        // TEST-NET-1: no machine has it.
        assert!(!is_local_address(Ipv4Addr::new(192, 0, 2, 1)));
    }

    #[test]
    fn parses_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
            0: 0100007F:0885 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   \
            1: 0100007F:0885 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listening_inodes(table, 2181), vec![12345]);
        assert!(listening_inodes(table, 2182).is_empty());
    }

    #[test]
    fn an_outgoing_connection_is_told_apart_from_a_listener_and_from_time_wait() {
        // Port 0x8B1F = 35615 is the local end of an established connection to 127.0.0.1:2181 (no listener),
        // 0x8B20 only in TIME_WAIT, 0x8B21 on another address (10.0.0.5): no clash with 127.0.0.1.
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
            0: 0100007F:0885 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   \
            1: 0100007F:8B1F 0100007F:0885 01 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 20 4 30 10 -1\n   \
            2: 0100007F:8B20 0100007F:0885 06 00000000:00000000 03:00000F9F 00000000     0        0 0 3 0000000000000000\n   \
            3: 0500000A:8B21 0100007F:0885 01 00000000:00000000 00:00000000 00000000  1000        0 888 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(
            sockets_on(table, LO, 35615),
            vec![Sock {
                state: "ESTABLISHED",
                remote: "127.0.0.1:2181".into(),
                inode: 777
            }]
        );
        assert_eq!(sockets_on(table, LO, 35616)[0].state, "TIME_WAIT");
        assert_eq!(sockets_on(table, LO, 35616)[0].inode, 0);
        assert!(sockets_on(table, LO, 35617).is_empty());
        assert_eq!(sockets_on(table, LO, 2181)[0].state, "LISTEN");
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
            0: 0000000000000000FFFF00000100007F:8B1F 0000000000000000FFFF00000100007F:0885 01 00000000:00000000 00:00000000 00000000  1000        0 999 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(sockets_on(tcp6, LO, 35615)[0].remote, "127.0.0.1:2181");
        assert_eq!(
            decode_addr("00000000000000000000000001000000:0016").unwrap(),
            "[::1]:22"
        );
    }

    #[test]
    fn holder_names_an_outgoing_connection_on_the_port() {
        use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
        use std::os::fd::AsRawFd;
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let server = l.local_addr().unwrap().port();
        // A client socket bound to a port of our choosing, then connected: that port is held, no one listens.
        let free = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
        bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, port)).unwrap();
        connect(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, server)).unwrap();
        let _accepted = l.accept().unwrap();
        assert!(!is_free(LO, port));
        assert_eq!(owner(port), None, "no listener on {port}");
        let h = holder(LO, port).unwrap();
        let Holder::Connection { state, remote, owner } = &h else {
            panic!("{h:?}")
        };
        assert_eq!(
            (*state, remote.as_str()),
            ("ESTABLISHED", format!("127.0.0.1:{server}").as_str())
        );
        assert_eq!(owner.as_ref().unwrap().pid, std::process::id() as i32);
        let text = h.describe(port, Some((port, port)));
        assert!(
            text.contains("not by a listener: it is the local port of an outgoing connection of pid"),
            "{text}"
        );
        assert!(text.contains(&format!("ephemeral range {port}-{port}")), "{text}");
        assert!(!h.describe(port, Some((1, 2))).contains("ephemeral"));
    }

    #[test]
    fn ephemeral_range_parses_and_warns_with_an_offset_that_fits() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_port_range("garbage"), None);
        let ports = [(32181, 1, "client"), (32881, 1, "quorum"), (33881, 1, "election")];
        let w = ephemeral_warning(&ports, 30000, (32768, 60999)).unwrap();
        assert!(
            w.starts_with("port 32881 (node 1 quorum port) is in the system's ephemeral port range 32768-60999"),
            "{w}"
        );
        // 33881 - 30000 = 3881 without the offset: 32767 - 3881 = 28886 is the most that fits.
        assert!(
            w.contains("a --port-offset of at most 28886 (e.g. --port-offset 20000)"),
            "{w}"
        );
        assert_eq!(ephemeral_warning(&ports, 30000, (40000, 60999)), None);
        // Above the range is fine too.
        assert_eq!(ephemeral_warning(&ports, 30000, (1024, 32000)), None);
        let w = ephemeral_warning(&[(40000, 2, "admin")], 0, (32768, 60999)).unwrap();
        assert!(w.contains("lower the port bases"), "{w}");
    }

    #[test]
    fn a_taken_port_is_found_with_its_owner() {
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(!is_free(LO, port));
        let o = owner(port).unwrap();
        assert_eq!(o.pid, std::process::id() as i32);
        drop(l);
        assert!(is_free(LO, port));
    }

    #[test]
    fn time_wait_connections_do_not_make_a_port_busy() {
        // A server that closes first leaves its side in TIME_WAIT, as a stopped node does.
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (s, _) = l.accept().unwrap();
        drop(s);
        drop(l);
        drop(c);
        assert!(is_free(LO, port));
    }
}

/// The user owning the other end of a loopback TCP connection that this machine's process opened from
/// 127.0.0.1:`peer_port` to our port `our_port`, from /proc/net/tcp (both ends of a loopback connection are
/// listed there, each with its owner's uid). None when the row is not found (gone already, another network
/// namespace).
pub fn loopback_peer_uid(peer_port: u16, our_port: u16) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    peer_uid_in(&table, peer_port, our_port)
}

/// `loopback_peer_uid` on a /proc/net/tcp table given as text.
fn peer_uid_in(table: &str, peer_port: u16, our_port: u16) -> Option<u32> {
    let local = format!("0100007F:{peer_port:04X}");
    let remote_port = format!(":{our_port:04X}");
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() > 7 && f[1] == local && f[2].ends_with(&remote_port)).then(|| f[7].parse().ok())?
    })
}

#[cfg(test)]
mod peer_tests {
    #[test]
    fn the_peer_of_a_loopback_connection_is_found_with_its_uid() {
        let table =
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:4C56 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
   1: 0100007F:4C56 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n\
   2: 0100007F:9C40 0100007F:4C56 01 00000000:00000000 00:00000000 00000000 65534        0 3 1 0 20 4 30 10 -1\n";
        assert_eq!(super::peer_uid_in(table, 0x9C40, 0x4C56), Some(65534));
        assert_eq!(super::peer_uid_in(table, 0x9C41, 0x4C56), None);
    }
}
