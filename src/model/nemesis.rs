//! `verify --nemesis`: which faults a run injects, at what time, against whom, and for how long, drawn from a
//! seed. Pure and deterministic: the same seed, fault kinds, count, duration and node ids give the same plan,
//! so a failing run can be replayed. Targets are named by role or id ("isolate the leader", "pause node 2")
//! and resolved against the servers only when the fault is injected; `commands::nemesis` does that.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::model::rng::Rng;

/// One kind of fault the nemesis may inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// SIGKILL the leader, wait for its successor, start it again.
    Kill,
    /// SIGSTOP a node, hold, SIGCONT.
    Pause,
    /// Cut a node off from every other on quorum and election links, hold, heal.
    Partition,
    /// Stall the quorum link between a node and the leader (open, no bytes move), hold, heal.
    Stall,
    /// Delay both directions of every link between two nodes, hold, heal.
    Delay,
    /// Slow a node's fsync or fill its disk (`zkdev disk`), hold, heal; needs a cluster made with disk faults.
    Disk,
    /// Expire every client session the ensemble has (`zkdev expire-session --all`): the workload's clients
    /// are told Expired and start new sessions.
    Expire,
    /// Cut a node's power (`zkdev disk --power-cut`: SIGKILL, its unsynced writes lost), hold, start it;
    /// needs a cluster made with disk faults. Only when asked for (`--nemesis power-cut`).
    PowerCut,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Kill,
        Kind::Pause,
        Kind::Partition,
        Kind::Stall,
        Kind::Delay,
        Kind::Disk,
        Kind::Expire,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Partition => "partition",
            Kind::Stall => "stall",
            Kind::Delay => "delay",
            Kind::Disk => "disk",
            Kind::Expire => "expire",
            Kind::PowerCut => "power-cut",
        }
    }

    /// Kinds a run injects only when `--nemesis` names them (not in the default set).
    pub const OPT_IN: [Kind; 1] = [Kind::PowerCut];

    /// Needs the disk-fault library in the nodes (`up --disk-faults`).
    pub fn needs_disk_faults(self) -> bool {
        matches!(self, Kind::Disk | Kind::PowerCut)
    }

    /// Needs proxied links (`up --net`).
    pub fn needs_net(self) -> bool {
        matches!(self, Kind::Partition | Kind::Stall | Kind::Delay)
    }

    /// Takes a voter out of the quorum for a while (needs at least 3 voters to keep one).
    pub fn takes_a_voter(self) -> bool {
        !matches!(self, Kind::Delay | Kind::Expire)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .chain(Kind::OPT_IN)
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "`{}` is not a fault kind: give kill, pause, partition, stall, delay, disk, expire or power-cut",
                    s.trim()
                )
            })
    }
}

/// `kill,pause,partition`: the kinds in the order given, each once.
pub fn parse_kinds(text: &str) -> Result<Vec<Kind>, String> {
    let mut kinds = Vec::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let k: Kind = part.parse()?;
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    if kinds.is_empty() {
        return Err(
            "--nemesis needs at least one fault kind: kill, pause, partition, stall, delay, disk, expire or power-cut"
                .into(),
        );
    }
    Ok(kinds)
}

/// Whom a fault hits: the leader at that moment, or a node by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum Who {
    Leader,
    Node(u32),
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Who::Leader => f.write_str("leader"),
            Who::Node(id) => write!(f, "node {id}"),
        }
    }
}

impl From<Who> for String {
    fn from(w: Who) -> String {
        w.to_string()
    }
}

/// One planned fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Planned {
    /// 1-based position in the plan.
    pub n: usize,
    pub kind: Kind,
    /// For kill always the leader; for delay the first end of the link.
    pub target: Who,
    /// Delay only: the other end of the link (a node id other than the first end's, when that is a node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<u32>,
    /// Delay: milliseconds added to every chunk, both ways. Disk: the slow fsync's milliseconds (none: a full
    /// disk).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u32>,
    /// When to inject it, from the start of the writes (later if the previous fault is not healed yet).
    pub at_ms: u64,
    /// How long to hold it before healing (kill: none, the restart follows at once).
    pub hold_ms: u64,
}

impl Planned {
    /// `isolate the leader for 1.6 s`, `pause node 2 for 2.1 s`, `kill the leader, then restart it`.
    pub fn describe(&self) -> String {
        let who = match self.target {
            Who::Leader => "the leader".to_string(),
            Who::Node(id) => format!("node {id}"),
        };
        let hold = format!("{:.1} s", self.hold_ms as f64 / 1000.0);
        match self.kind {
            Kind::Kill => "kill the leader, then restart it".to_string(),
            Kind::Pause => format!("pause {who} for {hold}"),
            Kind::Partition => format!("isolate {who} from the others for {hold}"),
            Kind::Stall => format!("stall the quorum link between {who} and the leader for {hold}"),
            Kind::Delay => format!(
                "delay the links between {who} and node {} by {} ms for {hold}",
                self.peer.unwrap_or(0),
                self.delay_ms.unwrap_or(0)
            ),
            Kind::Disk => match self.delay_ms {
                Some(ms) => format!("slow the fsync of {who} to {ms} ms for {hold}"),
                None => format!("fill the disk of {who} for {hold}"),
            },
            Kind::Expire => "expire the clients' sessions".to_string(),
            Kind::PowerCut => format!("cut the power of {who}, start it again after {hold}"),
        }
    }
}

/// Shortest and longest hold. The longest is above the fast profile's syncLimit x tickTime (2 s), so a
/// paused leader or a stalled link is sometimes noticed by ZooKeeper and sometimes not.
pub const HOLD_MS: (u64, u64) = (800, 3000);
/// Delays drawn for `delay`.
pub const DELAY_MS: (u64, u64) = (50, 400);
/// Slow fsyncs drawn for `disk` (the other half of the disk faults fill the disk instead).
pub const SLOW_FSYNC_MS: (u64, u64) = (100, 600);

/// How many faults fit `duration_ms` when the user gives no count: one per 4 s, at least one.
pub fn default_count(duration_ms: u64) -> usize {
    ((duration_ms / 4000) as usize).max(1)
}

/// The plan: `count` faults spread evenly over `duration_ms`, each in its own slot (injected in the first
/// third of it, held at most half of it), so each can be healed before the next begins.
pub fn plan(seed: u64, kinds: &[Kind], count: usize, duration_ms: u64, ids: &[u32]) -> Vec<Planned> {
    assert!(!kinds.is_empty() && !ids.is_empty());
    let mut rng = Rng::new(seed);
    let slot = duration_ms / count.max(1) as u64;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let kind = rng.pick(kinds);
        // Half of the faults hit the leader, the others a node by id (which may be the leader by then).
        let target = if kind == Kind::Kill || rng.next_u64() % 2 == 0 {
            Who::Leader
        } else {
            Who::Node(rng.pick(ids))
        };
        let at_ms = i as u64 * slot + rng.range(0, slot / 3);
        let hold_ms = if kind == Kind::Kill {
            0
        } else {
            rng.range(
                HOLD_MS.0.min(slot / 2),
                HOLD_MS.1.min(slot / 2).max(HOLD_MS.0.min(slot / 2)),
            )
        };
        let (peer, delay_ms) = if kind == Kind::Delay {
            let others: Vec<u32> = ids.iter().copied().filter(|id| Who::Node(*id) != target).collect();
            let peer = if others.is_empty() {
                None
            } else {
                Some(rng.pick(&others))
            };
            (peer, Some(rng.range(DELAY_MS.0, DELAY_MS.1) as u32))
        } else if kind == Kind::Disk {
            // Half slow the fsync (`delay_ms`), half fill the disk (none).
            let slow = rng.next_u64() % 2 == 0;
            (None, slow.then(|| rng.range(SLOW_FSYNC_MS.0, SLOW_FSYNC_MS.1) as u32))
        } else {
            (None, None)
        };
        out.push(Planned {
            n: i + 1,
            kind,
            target,
            peer,
            delay_ms,
            at_ms,
            hold_ms,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_in_order_once_each_and_bad_names_are_named() {
        assert_eq!(
            parse_kinds("partition,stall,kill,stall").unwrap(),
            vec![Kind::Partition, Kind::Stall, Kind::Kill]
        );
        let err = parse_kinds("kill,crash").unwrap_err();
        assert!(err.contains("`crash`"), "{err}");
        assert!(parse_kinds("").is_err());
        assert!(Kind::Stall.needs_net() && !Kind::Pause.needs_net());
        // Known, so the message can say what the build lacks rather than "not a fault kind".
        assert_eq!(parse_kinds("disk,expire").unwrap(), vec![Kind::Disk, Kind::Expire]);
        assert_eq!(parse_kinds("power-cut").unwrap(), vec![Kind::PowerCut]);
        assert!(!Kind::ALL.contains(&Kind::PowerCut), "power cuts are opt-in");
    }

    #[test]
    fn splitmix64_known_values() {
        // Reference values of splitmix64 seeded with 0 (Vigna's reference implementation).
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn the_same_seed_gives_the_same_plan_and_another_seed_another() {
        let kinds = [Kind::Partition, Kind::Stall, Kind::Kill];
        let a = plan(7, &kinds, 6, 30_000, &[1, 2, 3]);
        assert_eq!(a, plan(7, &kinds, 6, 30_000, &[1, 2, 3]));
        assert_ne!(a, plan(8, &kinds, 6, 30_000, &[1, 2, 3]));
        assert_eq!(a.len(), 6);
        for (i, f) in a.iter().enumerate() {
            assert_eq!(f.n, i + 1);
            assert!(kinds.contains(&f.kind));
            // Inside its own slot, healed (at most half a slot) before the next slot begins.
            let slot = 5_000;
            assert!(
                f.at_ms >= i as u64 * slot && f.at_ms + f.hold_ms <= (i as u64 + 1) * slot,
                "{f:?}"
            );
            if f.kind == Kind::Kill {
                assert_eq!((f.target, f.hold_ms), (Who::Leader, 0));
            } else {
                assert!(f.hold_ms >= HOLD_MS.0, "{f:?}");
            }
        }
    }

    #[test]
    fn delays_name_two_different_nodes_and_describe_reads_as_a_sentence() {
        for seed in 0..50 {
            for f in plan(seed, &[Kind::Delay], 3, 12_000, &[1, 2, 3]) {
                let (peer, ms) = (f.peer.unwrap(), f.delay_ms.unwrap());
                assert_ne!(f.target, Who::Node(peer));
                assert!((DELAY_MS.0..=DELAY_MS.1).contains(&u64::from(ms)));
            }
        }
        let f = Planned {
            n: 1,
            kind: Kind::Partition,
            target: Who::Leader,
            peer: None,
            delay_ms: None,
            at_ms: 100,
            hold_ms: 1600,
        };
        assert_eq!(f.describe(), "isolate the leader from the others for 1.6 s");
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["target"], "leader");
        assert_eq!(json["kind"], "partition");
    }
}
