//! Is a port free on 127.0.0.1, and if not, who holds it (from /proc/net/tcp and /proc/*/fd).

/// Who listens on a port, as far as /proc tells (a process of another user may stay anonymous).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: i32,
    pub name: String,
}

/// Could a server bind 127.0.0.1:`port` now? Asked the way ZooKeeper binds (SO_REUSEADDR), so connections
/// of a just-stopped node lingering in TIME_WAIT do not count as "in use".
pub fn is_free(port: u16) -> bool {
    use nix::sys::socket::{bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
    let Ok(fd) = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None) else {
        return false;
    };
    if setsockopt(&fd, sockopt::ReuseAddr, &true).is_err() {
        return false;
    }
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::new(127, 0, 0, 1, port),
    )
    .is_ok()
}

/// The process listening on `port` (IPv4 or IPv6), if /proc names it.
pub fn owner(port: u16) -> Option<Owner> {
    let inodes: Vec<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| listening_inodes(&text, port))
        .collect();
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

    #[test]
    fn parses_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
            0: 0100007F:0885 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   \
            1: 0100007F:0885 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listening_inodes(table, 2181), vec![12345]);
        assert!(listening_inodes(table, 2182).is_empty());
    }

    #[test]
    fn a_taken_port_is_found_with_its_owner() {
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(!is_free(port));
        let o = owner(port).unwrap();
        assert_eq!(o.pid, std::process::id() as i32);
        drop(l);
        assert!(is_free(port));
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
        assert!(is_free(port));
    }
}
