//! Port slots for clusters that pick their own ports (`zkdev up --slot auto|N`): slot N is a block of ports
//! (port offset and client-proxy base) that no other slot shares. Pure arithmetic; `os::slots` claims one.
//!
//! Slot N's port offset is `OFFSET_BASE + 10 * N` (N = 0..SLOTS). With the default bases (client 2180,
//! quorum 2880, election 3880, secure client 5180, metrics 7000, admin 8080) and up to
//! `MAX_NODES` nodes, every slot's ports lie in six windows of 700 ports:
//! client 5581-6279, quorum 6281-6979, election 7281-7979, secure client 8581-9279, metrics 10401-11099,
//! admin 11481-12179; the client proxies of a `--net` cluster in slot N take `PROXY_BASE + 10 * N` onwards
//! (27000-27699). All of it lies below 12180 or in 27000-27699: apart from the ports zkdev's own test
//! suite uses (port offsets 10000-10690, proxies 20000-26999), and below the system's ephemeral range
//! (32768 on Linux).

use serde::{Deserialize, Serialize};

/// How many slots there are: 0 to SLOTS - 1.
pub const SLOTS: u16 = 70;
/// The port offset of slot 0.
pub const OFFSET_BASE: u16 = 3400;
/// The first client-proxy port of slot 0 (`--net` clusters).
pub const PROXY_BASE: u16 = 27000;
/// The most nodes a cluster in a slot may have: node ids 1 to 9 stay inside the slot's block of 10.
pub const MAX_NODES: u32 = 9;

/// The slot a cluster was given, recorded in its spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub index: u16,
    pub port_offset: u16,
}

/// What `--slot` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotChoice {
    /// The first free slot.
    Auto,
    /// This slot, or an error.
    Index(u16),
}

impl std::str::FromStr for SlotChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(SlotChoice::Auto);
        }
        match s.parse::<u16>() {
            Ok(n) if n < SLOTS => Ok(SlotChoice::Index(n)),
            _ => Err(format!(
                "`{s}` is not a slot: use `auto` or a number from 0 to {}",
                SLOTS - 1
            )),
        }
    }
}

impl Slot {
    pub fn new(index: u16) -> Slot {
        assert!(index < SLOTS, "slot {index} out of 0..{SLOTS}");
        Slot {
            index,
            port_offset: OFFSET_BASE + 10 * index,
        }
    }

    /// The first client-proxy port of a `--net` cluster in this slot.
    pub fn proxy_base(&self) -> u16 {
        PROXY_BASE + 10 * self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every port of a cluster of `n` nodes at `offset` with the default bases, proxies at `proxy`.
    fn ports(offset: u16, proxy: u16, n: u16) -> Vec<u16> {
        let mut v = Vec::new();
        for id in 1..=n {
            for base in [2180, 2880, 3880, 5180, 7000, 8080] {
                v.push(base + offset + id);
            }
            v.push(proxy + id - 1);
        }
        v
    }

    #[test]
    fn slots_share_no_port_with_each_other_or_the_test_suite() {
        let mut seen = std::collections::BTreeMap::new();
        for i in 0..SLOTS {
            let s = Slot::new(i);
            for p in ports(s.port_offset, s.proxy_base(), MAX_NODES as u16) {
                assert!(p < 32768, "slot {i}: port {p} in the ephemeral range");
                if let Some(other) = seen.insert(p, i) {
                    panic!("port {p} in slots {other} and {i}");
                }
            }
        }
        // The test suite: offsets 10000 + 10 * slot (slots 0..69, up to 9 nodes), proxies 20000 + 100 * slot.
        for t in 0..70u16 {
            for p in ports(10_000 + 10 * t, 20_000 + 100 * t, 9) {
                assert!(
                    !seen.contains_key(&p),
                    "port {p} of test slot {t} is in slot {}",
                    seen[&p]
                );
            }
        }
    }

    #[test]
    fn choices_parse() {
        assert_eq!("auto".parse::<SlotChoice>(), Ok(SlotChoice::Auto));
        assert_eq!("3".parse::<SlotChoice>(), Ok(SlotChoice::Index(3)));
        assert!("70".parse::<SlotChoice>().unwrap_err().contains("0 to 69"));
    }
}
