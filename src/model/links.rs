//! Proxied links, as data: which directed flow of bytes suffers which fault, how a partition or a degraded
//! link becomes a set of rules, and the one thing of ZooKeeper's peer protocol a proxy must understand (the
//! initial message on the election port). Pure; the copy loops that apply it live in `supervisor::proxy`.
//!
//! A *connection* is dialled by one endpoint to another's port (node 1 dials node 2's quorum port through
//! the proxy that node 1's zoo.cfg names for node 2). A *flow* is one direction of bytes on such
//! connections: `from -> to` on `port`. The bytes node 1 sends on the connection it dialled to node 2 are
//! flow 1->2; the answers are flow 2->1 (on the same port kind). A fault is set per flow, so a one-way cut
//! is a rule on one flow and a partition is rules on both.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Version of `links.json`.
pub const LINKS_FORMAT: u32 = 1;

/// Which listening port a connection goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Port {
    Quorum,
    Election,
    Client,
}

impl Port {
    pub fn as_str(self) -> &'static str {
        match self {
            Port::Quorum => "quorum",
            Port::Election => "election",
            Port::Client => "client",
        }
    }
}

/// One end of a link: a node, or the applications' clients (everything that dials a node's client proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Endpoint {
    Node(u32),
    Clients,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Node(id) => write!(f, "{id}"),
            Endpoint::Clients => f.write_str("client"),
        }
    }
}

impl From<Endpoint> for String {
    fn from(e: Endpoint) -> String {
        e.to_string()
    }
}

impl TryFrom<String> for Endpoint {
    type Error = String;
    fn try_from(s: String) -> Result<Endpoint, String> {
        s.parse()
    }
}

impl FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Endpoint, String> {
        match s {
            "client" | "clients" => Ok(Endpoint::Clients),
            _ => s
                .parse::<u32>()
                .ok()
                .filter(|id| *id > 0)
                .map(Endpoint::Node)
                .ok_or_else(|| format!("`{s}` is not a link end: give a node id or `client`")),
        }
    }
}

/// One direction of bytes: from `from` to `to`, on connections to `port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Flow {
    pub from: Endpoint,
    pub to: Endpoint,
    pub port: Port,
}

impl Flow {
    pub fn new(from: Endpoint, to: Endpoint, port: Port) -> Flow {
        Flow { from, to, port }
    }
    pub fn reverse(self) -> Flow {
        Flow::new(self.to, self.from, self.port)
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{} {}", self.from, self.to, self.port.as_str())
    }
}

/// What happens to the bytes of one flow. The default is a healthy flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// No bytes pass. When both directions of a connection are cut, the proxy resets it (and every new
    /// connection on it at once); a one-way cut holds the bytes of its direction, as a network that drops
    /// one direction's packets would (TCP retransmits until the link heals or a side gives up).
    #[serde(default, skip_serializing_if = "is_false")]
    pub cut: bool,
    /// The connection stays open and moves no bytes in this direction.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stall: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delay_ms: u32,
    /// Added to the delay, uniformly 0..=jitter_ms; order is kept (a TCP stream cannot reorder).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub jitter_ms: u32,
    /// Per cent of chunks that are "lost": TCP cannot lose bytes, so a lost chunk arrives one
    /// retransmission timeout (200 ms, Linux's minimum RTO) late, and everything behind it waits.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub loss_pct: u32,
    /// Bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<u64>,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// Retransmission time a "lost" chunk costs.
pub const LOSS_PENALTY_MS: u64 = 200;

impl Fault {
    pub const CUT: Fault = Fault {
        cut: true,
        stall: false,
        delay_ms: 0,
        jitter_ms: 0,
        loss_pct: 0,
        bandwidth: None,
    };

    pub fn is_ok(&self) -> bool {
        *self == Fault::default()
    }

    /// Bytes do not move in this direction (cut or stalled).
    pub fn holds(&self) -> bool {
        self.cut || self.stall
    }

    /// `cut`, `stall`, `delay 200ms+-50ms`, `loss 10%`, `64 KiB/s`, joined; `ok` for a healthy flow.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.cut {
            parts.push("cut".to_string());
        }
        if self.stall {
            parts.push("stall".to_string());
        }
        if self.delay_ms > 0 || self.jitter_ms > 0 {
            let j = if self.jitter_ms > 0 {
                format!("+-{}ms", self.jitter_ms)
            } else {
                String::new()
            };
            parts.push(format!("delay {}ms{j}", self.delay_ms));
        }
        if self.loss_pct > 0 {
            parts.push(format!("loss {}%", self.loss_pct));
        }
        if let Some(b) = self.bandwidth {
            parts.push(format!("{} B/s", b));
        }
        if parts.is_empty() {
            "ok".into()
        } else {
            parts.join(", ")
        }
    }

    /// How long a chunk read now waits before it is passed on, given two random numbers in 0..1000.
    pub fn hold_ms(&self, r_jitter: u32, r_loss: u32) -> u64 {
        let mut ms = u64::from(self.delay_ms);
        if self.jitter_ms > 0 {
            ms += u64::from(self.jitter_ms) * u64::from(r_jitter % 1001) / 1000;
        }
        if self.loss_pct > 0 && r_loss % 1000 < self.loss_pct * 10 {
            ms += LOSS_PENALTY_MS;
        }
        ms
    }
}

/// One rule: a flow and its fault, with who set it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(flatten)]
    pub flow: Flow,
    pub fault: Fault,
    #[serde(default)]
    pub since_ms: u64,
    #[serde(default)]
    pub cause: String,
}

/// Every flow that is not healthy (`links.json` in the cluster directory: faults outlive a supervisor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkTable {
    pub format: u32,
    pub rules: Vec<Rule>,
}

impl Default for LinkTable {
    fn default() -> LinkTable {
        LinkTable {
            format: LINKS_FORMAT,
            rules: Vec::new(),
        }
    }
}

impl LinkTable {
    pub fn fault(&self, flow: Flow) -> Fault {
        self.rules
            .iter()
            .find(|r| r.flow == flow)
            .map(|r| r.fault)
            .unwrap_or_default()
    }

    /// Set (or, with a healthy fault, clear) the rule of each flow.
    pub fn apply(&mut self, rules: &[Rule]) {
        for r in rules {
            self.rules.retain(|old| old.flow != r.flow);
            if !r.fault.is_ok() {
                self.rules.push(r.clone());
            }
        }
        self.rules.sort_by_key(|r| r.flow);
    }

    /// Clear every rule between `a` and `b` (both directions, every port); `None`: every rule.
    pub fn heal(&mut self, pair: Option<(Endpoint, Endpoint)>) -> usize {
        let before = self.rules.len();
        match pair {
            None => self.rules.clear(),
            Some((a, b)) => self
                .rules
                .retain(|r| !((r.flow.from == a && r.flow.to == b) || (r.flow.from == b && r.flow.to == a))),
        }
        before - self.rules.len()
    }

    /// A connection dialled to `port` is reset when both its directions are cut.
    pub fn resets(&self, dialler: Endpoint, target: Endpoint, port: Port) -> bool {
        self.fault(Flow::new(dialler, target, port)).cut && self.fault(Flow::new(target, dialler, port)).cut
    }
}

/// The rules of a partition: `side` cut off from `others`, on the quorum and election ports, in both
/// directions or (one-way) only for the bytes `side` sends.
pub fn partition(side: &[u32], others: &[u32], one_way: bool, cause: &str, now_ms: u64) -> Vec<Rule> {
    let mut rules = Vec::new();
    for a in side {
        for b in others.iter().filter(|b| !side.contains(b)) {
            for port in [Port::Quorum, Port::Election] {
                let out = Flow::new(Endpoint::Node(*a), Endpoint::Node(*b), port);
                let mut flows = vec![out];
                if !one_way {
                    flows.push(out.reverse());
                }
                for flow in flows {
                    rules.push(Rule {
                        flow,
                        fault: Fault::CUT,
                        since_ms: now_ms,
                        cause: cause.to_string(),
                    });
                }
            }
        }
    }
    rules
}

/// The rules for `link A B`: `fault` on the flows between `a` and `b` on `ports`, A to B only when one-way.
pub fn link(
    a: Endpoint,
    b: Endpoint,
    ports: &[Port],
    fault: Fault,
    one_way: bool,
    cause: &str,
    now_ms: u64,
) -> Vec<Rule> {
    let mut rules = Vec::new();
    for port in ports {
        let out = Flow::new(a, b, *port);
        let mut flows = vec![out];
        if !one_way {
            flows.push(out.reverse());
        }
        for flow in flows {
            rules.push(Rule {
                flow,
                fault,
                since_ms: now_ms,
                cause: cause.to_string(),
            });
        }
    }
    rules
}

// ---- ZooKeeper's initial message on the election port (QuorumCnxManager, 3.5+) ----
//
// `startConnection` writes: protocol version (long, -65536 = V1 or -65535 = V2), its own sid (long), then
// an int length and that many bytes of its own election address, "host:port" (V2: "h1:p1|h2:p2|...").
// `handleConnection` on the receiver reads it; when the dialler's sid is lower than its own it closes the
// connection and dials back with `connectOne(sid, electionAddr)`, *to the address in the message*. A
// version >= 0 is a 3.4-style message (just the sid): the receiver then dials back from its own config.
// `InitialMessage.parse` refuses a length <= 0 or > 2048 and reads the address with a single `read`, so the
// rewritten message must go out in one write.

pub const PROTOCOL_V1: i64 = -65536;
pub const PROTOCOL_V2: i64 = -65535;
/// QuorumCnxManager.maxBuffer.
pub const MAX_ADDRESS_LEN: i32 = 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initial {
    /// Not enough bytes yet to decide.
    NeedMore,
    /// A 3.4-style message (or something this proxy does not know): pass the bytes on unchanged.
    PassThrough,
    /// The message, rewritten to advertise `addr`; `consumed` bytes of the input were the original.
    Rewritten {
        bytes: Vec<u8>,
        consumed: usize,
        sid: i64,
        advertised: String,
    },
}

/// Rewrite the first message a node sends on an election connection so that the address it advertises
/// for dial-backs is `addr` (the proxy of the reverse link) instead of its own election port.
pub fn rewrite_initial(buf: &[u8], addr: &str) -> Initial {
    let long = |at: usize| {
        buf.get(at..at + 8)
            .map(|b| i64::from_be_bytes(b.try_into().expect("8 bytes")))
    };
    let Some(version) = long(0) else {
        return Initial::NeedMore;
    };
    if version != PROTOCOL_V1 && version != PROTOCOL_V2 {
        return Initial::PassThrough;
    }
    let Some(sid) = long(8) else {
        return Initial::NeedMore;
    };
    let Some(len) = buf
        .get(16..20)
        .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
    else {
        return Initial::NeedMore;
    };
    if len <= 0 || len > MAX_ADDRESS_LEN {
        return Initial::PassThrough; // ZooKeeper refuses it itself
    }
    let end = 20 + len as usize;
    let Some(old) = buf.get(20..end) else {
        return Initial::NeedMore;
    };
    let mut bytes = Vec::with_capacity(20 + addr.len());
    bytes.extend_from_slice(&version.to_be_bytes());
    bytes.extend_from_slice(&sid.to_be_bytes());
    bytes.extend_from_slice(&(addr.len() as i32).to_be_bytes());
    bytes.extend_from_slice(addr.as_bytes());
    Initial::Rewritten {
        bytes,
        consumed: end,
        sid,
        advertised: String::from_utf8_lossy(old).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `startConnection` writes (DataOutputStream: big-endian).
    fn initial(version: i64, sid: i64, addr: &str) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&version.to_be_bytes());
        v.extend_from_slice(&sid.to_be_bytes());
        v.extend_from_slice(&(addr.len() as i32).to_be_bytes());
        v.extend_from_slice(addr.as_bytes());
        v
    }

    #[test]
    fn v1_message_advertises_the_proxy() {
        let mut msg = initial(PROTOCOL_V1, 1, "127.0.0.1:13881");
        // The first notification follows in the same segment: it must be left alone.
        msg.extend_from_slice(&[0, 0, 0, 40, 1, 2, 3]);
        let Initial::Rewritten {
            bytes,
            consumed,
            sid,
            advertised,
        } = rewrite_initial(&msg, "127.0.0.1:20012")
        else {
            panic!("not rewritten")
        };
        assert_eq!(sid, 1);
        assert_eq!(advertised, "127.0.0.1:13881");
        assert_eq!(consumed, msg.len() - 7);
        assert_eq!(bytes, initial(PROTOCOL_V1, 1, "127.0.0.1:20012"));
        // The exact bytes ZooKeeper 3.8 reads: -65536 as a long, the sid, the length 15.
        assert_eq!(&bytes[..8], &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]);
        assert_eq!(&bytes[16..20], &[0, 0, 0, 15]);
    }

    #[test]
    fn v2_multi_address_becomes_one_address() {
        let msg = initial(PROTOCOL_V2, 7, "10.0.0.1:3888|10.0.0.2:3888");
        match rewrite_initial(&msg, "127.0.0.1:20100") {
            Initial::Rewritten { bytes, consumed, .. } => {
                assert_eq!(consumed, msg.len());
                assert_eq!(bytes, initial(PROTOCOL_V2, 7, "127.0.0.1:20100"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn partial_messages_wait_for_more() {
        let msg = initial(PROTOCOL_V1, 2, "127.0.0.1:3882");
        for cut in [0, 5, 8, 12, 16, 19, 20, msg.len() - 1] {
            assert_eq!(rewrite_initial(&msg[..cut], "x:1"), Initial::NeedMore, "at {cut}");
        }
    }

    #[test]
    fn old_protocol_and_garbage_pass_through() {
        // 3.4: the first long is the sid itself.
        assert_eq!(rewrite_initial(&3i64.to_be_bytes(), "x:1"), Initial::PassThrough);
        let mut bad = initial(PROTOCOL_V1, 2, "");
        bad[16..20].copy_from_slice(&4096i32.to_be_bytes());
        assert_eq!(rewrite_initial(&bad, "x:1"), Initial::PassThrough);
        assert_eq!(rewrite_initial(&(-5i64).to_be_bytes(), "x:1"), Initial::PassThrough);
    }

    #[test]
    fn partition_cuts_both_ports_both_ways_or_one() {
        let rules = partition(&[1], &[1, 2, 3], false, "t", 0);
        assert_eq!(rules.len(), 8); // 2 peers x 2 ports x 2 directions
        let mut t = LinkTable::default();
        t.apply(&rules);
        let n = Endpoint::Node;
        assert!(t.resets(n(1), n(2), Port::Quorum));
        assert!(t.resets(n(3), n(1), Port::Election));
        assert!(!t.resets(n(2), n(3), Port::Election));
        let one = partition(&[1], &[2, 3], true, "t", 0);
        assert_eq!(one.len(), 4);
        let mut t = LinkTable::default();
        t.apply(&one);
        assert!(t.fault(Flow::new(n(1), n(2), Port::Quorum)).cut);
        assert!(!t.fault(Flow::new(n(2), n(1), Port::Quorum)).cut);
        assert!(!t.resets(n(1), n(2), Port::Quorum));
    }

    #[test]
    fn heal_clears_a_pair_or_everything_and_ok_clears_a_rule() {
        let n = Endpoint::Node;
        let mut t = LinkTable::default();
        t.apply(&partition(&[1], &[2, 3], false, "t", 0));
        assert_eq!(t.heal(Some((n(2), n(1)))), 4);
        assert_eq!(t.rules.len(), 4);
        t.apply(&link(n(1), n(3), &[Port::Quorum], Fault::default(), false, "t", 0));
        assert_eq!(t.rules.len(), 2);
        assert_eq!(t.heal(None), 2);
    }

    #[test]
    fn hold_time_adds_jitter_and_loss() {
        let f = Fault {
            delay_ms: 200,
            jitter_ms: 50,
            loss_pct: 10,
            ..Fault::default()
        };
        assert_eq!(f.hold_ms(0, 999), 200);
        assert_eq!(f.hold_ms(1000, 999), 250);
        assert_eq!(f.hold_ms(500, 50), 225 + LOSS_PENALTY_MS);
        assert_eq!(f.describe(), "delay 200ms+-50ms, loss 10%");
        assert_eq!(Fault::default().describe(), "ok");
    }

    #[test]
    fn endpoints_read_and_write_as_text() {
        assert_eq!("client".parse::<Endpoint>().unwrap(), Endpoint::Clients);
        assert_eq!("3".parse::<Endpoint>().unwrap(), Endpoint::Node(3));
        assert!("0".parse::<Endpoint>().is_err());
        let r = Rule {
            flow: Flow::new(Endpoint::Clients, Endpoint::Node(2), Port::Client),
            fault: Fault::CUT,
            since_ms: 1,
            cause: "c".into(),
        };
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["from"], "client");
        assert_eq!(j["to"], "2");
        assert_eq!(serde_json::from_value::<Rule>(j).unwrap(), r);
    }
}
