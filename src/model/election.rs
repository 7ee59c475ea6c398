//! An election explained, from what the servers log at INFO: FastLeaderElection's `New election` and
//! `Notification:` lines (every vote a node receives, its own included), the `LEADING`/`FOLLOWING`/
//! `OBSERVING` decision, and the new leader's `Have quorum of supporters ... zxid: 0x500000000` (which
//! names the epoch it starts). The journal adds why there was an election and how long no leader served.
//!
//! The rule every voter applies (FastLeaderElection.totalOrderPredicate): a vote for candidate B beats a
//! vote for A when B's epoch is higher, or the epochs are equal and B's zxid is higher, or both are equal
//! and B's id is higher. Log timestamps are compared as text: every node logs in the same format and zone.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::server::Zxid;
use crate::model::spec::{ClusterSpec, Role};
use crate::model::timeline::{Event, Kind};

/// A candidate as votes name it: (epoch, zxid, id), compared in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub epoch: u32,
    pub zxid: Zxid,
    pub id: u32,
}

impl Candidate {
    pub fn key(&self) -> (u32, u64, u32) {
        (self.epoch, self.zxid.0, self.id)
    }

    /// Why `self` beats `other` (or does not), in words.
    pub fn why_over(&self, other: &Candidate) -> String {
        match self.key().cmp(&other.key()) {
            Ordering::Equal => "the same candidate".into(),
            Ordering::Less => format!("node {} is not greater than node {}", self.id, other.id),
            Ordering::Greater if self.epoch != other.epoch => {
                format!("a higher epoch ({} > {})", self.epoch, other.epoch)
            }
            Ordering::Greater if self.zxid != other.zxid => format!(
                "the same epoch {} and a higher zxid ({} > {})",
                self.epoch, self.zxid, other.zxid
            ),
            Ordering::Greater => format!(
                "the same epoch {} and zxid {}, and a higher id ({} > {})",
                self.epoch, self.zxid, self.id, other.id
            ),
        }
    }
}

impl std::fmt::Display for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(epoch {}, zxid {}, id {})", self.epoch, self.zxid, self.id)
    }
}

/// One `Notification:` line: a vote `receiver` got from `sender`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// The receiver's log timestamp (`2026-12-01 01:03:57,027`).
    pub at: String,
    pub receiver: u32,
    pub sender: u32,
    /// LOOKING (still electing), FOLLOWING, LEADING, OBSERVING (telling a latecomer who leads).
    pub sender_state: String,
    pub round: u64,
    pub vote: Candidate,
}

/// What one log says, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    NewElection {
        at: String,
        zxid: Zxid,
    },
    Notification(Notification),
    Decided {
        at: String,
        as_: String,
    },
    Took {
        ms: u64,
    },
    Term {
        at: String,
        zxid: Zxid,
        supporters: Vec<u32>,
    },
}

/// The lines of one node's log that tell about elections.
pub fn parse_log(node: u32, text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    for l in text.lines() {
        let Some(at) = l.get(..23).filter(|t| t.as_bytes().get(4) == Some(&b'-')) else {
            continue;
        };
        let at = at.to_string();
        let fle = l.contains("FastLeaderElection");
        if let Some(rest) = after(l, "New election.").filter(|_| fle) {
            if let Some(z) = after(rest, "proposed zxid=").and_then(|z| z.trim().parse().ok()) {
                out.push(Line::NewElection { at, zxid: z });
            }
        } else if let Some(rest) = after(l, "Notification:").filter(|_| fle) {
            if let Some(n) = parse_notification(node, &at, rest) {
                out.push(Line::Notification(n));
            }
        } else if let Some(rest) = after(l, "QuorumPeer - ") {
            let word = rest.trim();
            if matches!(word, "LEADING" | "FOLLOWING" | "OBSERVING") {
                out.push(Line::Decided {
                    at,
                    as_: word.to_ascii_lowercase(),
                });
            }
        } else if let Some(rest) = after(l, "LEADER ELECTION TOOK - ") {
            if let Some(ms) = rest.split_whitespace().next().and_then(|m| m.parse().ok()) {
                out.push(Line::Took { ms });
            }
        } else if let Some(rest) = after(l, "Have quorum of supporters, sids: ") {
            let (sids, tail) = rest.split_once(';').unwrap_or((rest, ""));
            // `[[1, 2],[1, 2]]` with reconfigEnabled: one list per quorum verifier (the old and the next
            // configuration); each supporter once.
            let mut supporters: Vec<u32> = sids
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|d| d.parse().ok())
                .collect();
            supporters.sort();
            supporters.dedup();
            if let Some(z) = after(tail, "zxid: ").and_then(|z| z.trim().parse().ok()) {
                out.push(Line::Term {
                    at,
                    zxid: z,
                    supporters,
                });
            }
        }
    }
    out
}

fn after<'a>(s: &'a str, marker: &str) -> Option<&'a str> {
    s.find(marker).map(|i| &s[i + marker.len()..])
}

/// `my state:LOOKING; n.sid:1, n.state:LOOKING, n.leader:1, n.round:0x1, n.peerEpoch:0x0, n.zxid:0x0, ...`
/// (3.6+), or the older `2 (message format version), 1 (n.leader), 0x0 (n.zxid), ...`.
fn parse_notification(receiver: u32, at: &str, rest: &str) -> Option<Notification> {
    let mut fields = BTreeMap::new();
    for part in rest.split([',', ';']) {
        let part = part.trim();
        if let Some((k, v)) = part.split_once(':') {
            fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        } else if let Some((v, k)) = part.split_once(" (") {
            fields.insert(
                k.trim_end_matches(')').trim().to_ascii_lowercase(),
                v.trim().to_string(),
            );
        }
    }
    let hex = |k: &str| {
        let v = fields.get(k)?;
        u64::from_str_radix(v.trim_start_matches("0x"), 16).ok()
    };
    let dec = |k: &str| fields.get(k)?.parse::<u32>().ok();
    Some(Notification {
        at: at.to_string(),
        receiver,
        sender: dec("n.sid")?,
        sender_state: fields.get("n.state")?.clone(),
        round: hex("n.round")?,
        vote: Candidate {
            epoch: hex("n.peerepoch")? as u32,
            zxid: Zxid(hex("n.zxid")?),
            id: dec("n.leader")?,
        },
    })
}

/// One node's part in the election.
#[derive(Debug, Clone, Serialize)]
pub struct NodePart {
    pub node: u32,
    pub role: Role,
    /// Took part: ran `New election` in this election's window.
    pub took_part: bool,
    pub started_at: Option<String>,
    pub decided_at: Option<String>,
    /// leading | following | observing.
    pub decided: Option<String>,
    /// What the server itself says the election took (`LEADER ELECTION TOOK - N MS`).
    pub took_ms: Option<u64>,
    /// Its own votes in order (what it proposed first, then each change), as it sent them.
    pub votes: Vec<Candidate>,
    /// Every vote it received, in order.
    pub heard: Vec<Notification>,
    /// The same, each distinct notification once with how many times it came (a looking node repeats its
    /// vote every notification interval until something changes).
    pub heard_repeated: Vec<Repeated>,
    /// A node that began looking only after the quorum had formed (started later, as `up --one-by-one` does
    /// it): whom it found leading and joined. Such a node did not take part in the vote.
    pub joined: Option<Joined>,
}

/// A node that came after the election and joined its leader.
#[derive(Debug, Clone, Serialize)]
pub struct Joined {
    /// The leader it joined.
    pub leader: u32,
    /// following | observing.
    pub as_: String,
    pub looked_at: String,
    pub decided_at: Option<String>,
    /// The nodes that told it who leads (answering as LEADING or FOLLOWING), and their states.
    pub told_by: Vec<(u32, String)>,
}

/// Identical notifications a node received, collapsed: the first and last time, and the count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Repeated {
    pub first_at: String,
    pub last_at: String,
    pub receiver: u32,
    pub sender: u32,
    pub sender_state: String,
    pub round: u64,
    pub vote: Candidate,
    pub count: usize,
}

/// Collapse `heard` into one entry per distinct (sender, its state, round, vote), in the order each first
/// came.
pub fn collapse(heard: &[Notification]) -> Vec<Repeated> {
    let mut out: Vec<Repeated> = Vec::new();
    for n in heard {
        let same = |r: &&mut Repeated| {
            r.sender == n.sender && r.sender_state == n.sender_state && r.round == n.round && r.vote == n.vote
        };
        if let Some(r) = out.iter_mut().find(|r| same(r)) {
            r.count += 1;
            r.last_at = n.at.clone();
            continue;
        }
        out.push(Repeated {
            first_at: n.at.clone(),
            last_at: n.at.clone(),
            receiver: n.receiver,
            sender: n.sender,
            sender_state: n.sender_state.clone(),
            round: n.round,
            vote: n.vote,
            count: 1,
        });
    }
    out
}

/// The votes once they settled after one more voter began looking (before the next one did).
#[derive(Debug, Clone, Serialize)]
pub struct AfterStart {
    /// The voter that began looking.
    pub node: u32,
    pub at: String,
    /// Every looking voter's vote then, as (voter, the candidate it voted for), by voter.
    pub votes: Vec<(u32, u32)>,
    /// The candidate a quorum voted for by then, if one did.
    pub quorum_for: Option<u32>,
}

/// A voter changing its vote, and why the new candidate is greater.
#[derive(Debug, Clone, Serialize)]
pub struct Switch {
    pub node: u32,
    pub from: Candidate,
    pub to: Candidate,
    pub why: String,
    /// Does the change follow the rule (the new candidate greater than the old)?
    pub follows_rule: bool,
}

/// What the journal says about this election.
#[derive(Debug, Clone, Serialize)]
pub struct FromJournal {
    /// The last action before the leader was lost (`kill node 3 (SIGKILL), asked by ...`).
    pub trigger: Option<String>,
    /// Every action since the previous leader was elected, in order (`isolate ...`, `kill ...`, `heal ...`).
    pub actions: Vec<String>,
    pub elected_time: String,
    pub leaderless_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub epoch: u32,
    pub leader: u32,
    /// The election's round (FastLeaderElection's logical clock), as the winner counted it.
    pub round: Option<u64>,
    pub elected_at: String,
    pub supporters: Vec<u32>,
    pub voters: usize,
    pub quorum: usize,
    /// Each participating voter's first vote: itself.
    pub candidates: Vec<Candidate>,
    /// The greatest candidate by (epoch, zxid, id): the rule's winner.
    pub greatest: Option<Candidate>,
    pub switches: Vec<Switch>,
    /// The votes after each voter began looking, in the order they did.
    pub after_each_start: Vec<AfterStart>,
    /// Did the voters begin looking far enough apart for the votes to settle in between (started one by one)?
    pub one_by_one: bool,
    pub nodes: Vec<NodePart>,
    pub journal: Option<FromJournal>,
    /// The explanation in sentences.
    pub story: Vec<String>,
}

/// Explain the election that started epoch `epoch` (the last one when None), from each node's log text
/// (`os::state::ClusterPaths::log_texts` reads them; a node without one counts as an empty log).
pub fn explain(
    spec: &ClusterSpec,
    log_texts: &BTreeMap<u32, String>,
    journal: &[Event],
    epoch: Option<u32>,
) -> Result<Explanation> {
    let logs: Vec<(u32, Role, Vec<Line>)> = spec
        .nodes
        .iter()
        .map(|n| {
            (
                n.id,
                n.role,
                parse_log(n.id, log_texts.get(&n.id).map_or("", String::as_str)),
            )
        })
        .collect();
    analyse(&logs, journal, epoch)
}

/// The pure part: from the parsed logs (node, role, lines) and the journal.
pub fn analyse(logs: &[(u32, Role, Vec<Line>)], journal: &[Event], epoch: Option<u32>) -> Result<Explanation> {
    let mut terms: Vec<(String, u32, Zxid, Vec<u32>)> = logs
        .iter()
        .flat_map(|(id, _, lines)| {
            lines.iter().filter_map(move |l| match l {
                Line::Term { at, zxid, supporters } => Some((at.clone(), *id, *zxid, supporters.clone())),
                _ => None,
            })
        })
        .collect();
    terms.sort_by(|a, b| a.0.cmp(&b.0));
    let pick = match epoch {
        Some(e) => terms.iter().rposition(|t| t.2.epoch() == e).ok_or_else(|| {
            let known: Vec<String> = terms.iter().map(|t| t.2.epoch().to_string()).collect();
            Error::usage(format!(
                "no election of epoch {e} in the nodes' logs (epochs there: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ))
        })?,
        None => terms.len().checked_sub(1).ok_or_else(|| {
            Error::failed(
                "no election in the nodes' logs yet (a leader logs `Have quorum of supporters` once elected; is the \
                 ensemble up? `zkdev status`)",
            )
        })?,
    };
    let (term_at, leader, term_zxid, supporters) = terms[pick].clone();
    let prev_at = pick.checked_sub(1).map(|i| terms[i].0.clone());
    let next_at = terms.get(pick + 1).map(|t| t.0.clone());
    let voters = logs.iter().filter(|(_, r, _)| *r == Role::Participant).count();
    let quorum = voters / 2 + 1;

    let mut nodes = Vec::new();
    for (id, role, lines) in logs {
        nodes.push(node_part(*id, *role, lines, prev_at.as_deref(), &term_at));
    }
    for (n, (_, _, lines)) in nodes.iter_mut().zip(logs) {
        if !n.took_part {
            *n = joiner(n.clone(), lines, &term_at, next_at.as_deref(), leader);
        }
    }
    let after_each_start = after_each_start(&nodes, quorum);
    let one_by_one = after_each_start.len() > 1
        && after_each_start.windows(2).all(|w| {
            millis(&w[1].at)
                .zip(millis(&w[0].at))
                .is_some_and(|(b, a)| b >= a + SETTLED_MS)
        });
    let round = nodes.iter().find(|n| n.node == leader).and_then(|n| {
        n.heard
            .iter()
            .filter(|h| h.sender_state == "LOOKING")
            .map(|h| h.round)
            .max()
    });

    let candidates: Vec<Candidate> = nodes
        .iter()
        .filter(|n| n.role == Role::Participant && n.took_part)
        .filter_map(|n| n.votes.first().copied().filter(|c| c.id == n.node))
        .collect();
    let greatest = candidates.iter().max_by_key(|c| c.key()).copied();
    let mut switches = Vec::new();
    for n in &nodes {
        for w in n.votes.windows(2) {
            switches.push(Switch {
                node: n.node,
                from: w[0],
                to: w[1],
                why: w[1].why_over(&w[0]),
                follows_rule: w[1].key() > w[0].key(),
            });
        }
    }
    let journal = from_journal(journal, term_zxid.epoch());
    let mut e = Explanation {
        epoch: term_zxid.epoch(),
        leader,
        round,
        elected_at: term_at,
        supporters,
        voters,
        quorum,
        candidates,
        greatest,
        switches,
        after_each_start,
        one_by_one,
        nodes,
        journal,
        story: Vec::new(),
    };
    e.story = story(&e);
    Ok(e)
}

fn node_part(id: u32, role: Role, lines: &[Line], prev_at: Option<&str>, term_at: &str) -> NodePart {
    // The node's last `New election` after the previous leader's start and before this one's.
    let start = lines.iter().rposition(|l| match l {
        Line::NewElection { at, .. } => prev_at.is_none_or(|p| at.as_str() > p) && at.as_str() <= term_at,
        _ => false,
    });
    let mut part = NodePart {
        node: id,
        role,
        took_part: start.is_some(),
        started_at: None,
        decided_at: None,
        decided: None,
        took_ms: None,
        votes: Vec::new(),
        heard: Vec::new(),
        heard_repeated: Vec::new(),
        joined: None,
    };
    let Some(start) = start else {
        return part;
    };
    follow(&mut part, lines, start);
    part
}

/// Fill `part` from the node's lines after its `New election` at `start`: its votes, what it heard, what
/// it decided.
fn follow(part: &mut NodePart, lines: &[Line], start: usize) {
    let id = part.node;
    if let Line::NewElection { at, .. } = &lines[start] {
        part.started_at = Some(at.clone());
    }
    for l in &lines[start + 1..] {
        match l {
            Line::Notification(n) => {
                if n.sender == id && part.votes.last() != Some(&n.vote) {
                    part.votes.push(n.vote);
                }
                part.heard.push(n.clone());
            }
            Line::Decided { at, as_ } => {
                part.decided_at = Some(at.clone());
                part.decided = Some(as_.clone());
            }
            Line::Took { ms } if part.decided.is_some() => {
                part.took_ms = Some(*ms);
                break;
            }
            Line::NewElection { .. } | Line::Term { .. } => break,
            Line::Took { .. } => {}
        }
        if part.decided.is_some() && part.took_ms.is_some() {
            break;
        }
    }
    part.heard_repeated = collapse(&part.heard);
}

/// A node that took no part: did it begin looking after the quorum formed (at `term_at`, before the next
/// election's at `next_at`) and join `leader`?
fn joiner(mut part: NodePart, lines: &[Line], term_at: &str, next_at: Option<&str>, leader: u32) -> NodePart {
    // Its last `New election` in that stretch: a node may begin again at once (with reconfigEnabled it
    // does when it learns the committed configuration's version).
    let start = lines.iter().rposition(|l| match l {
        Line::NewElection { at, .. } => at.as_str() > term_at && next_at.is_none_or(|n| at.as_str() < n),
        _ => false,
    });
    let Some(start) = start else {
        return part;
    };
    follow(&mut part, lines, start);
    let Some(as_) = part.decided.clone().filter(|d| d != "leading") else {
        return part;
    };
    let mut told_by: Vec<(u32, String)> = Vec::new();
    for h in &part.heard {
        if h.sender_state != "LOOKING" && h.vote.id == leader && !told_by.iter().any(|t| t.0 == h.sender) {
            told_by.push((h.sender, h.sender_state.to_ascii_lowercase()));
        }
    }
    told_by.sort();
    part.joined = Some(Joined {
        leader,
        as_,
        looked_at: part.started_at.clone().unwrap_or_default(),
        decided_at: part.decided_at.clone(),
        told_by,
    });
    part
}

/// Votes younger than this after a start count as settled (FastLeaderElection's finalize wait is 200 ms).
const SETTLED_MS: u64 = 500;

/// A log timestamp (`2026-12-01 01:03:57,027`) as milliseconds since 1970 (UTC or not: only differences
/// are used).
fn millis(at: &str) -> Option<u64> {
    let num = |r: std::ops::Range<usize>| at.get(r)?.parse::<u64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, min, sec, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    // Days from the civil date (Howard Hinnant's algorithm), for dates after 1970.
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some((((days * 24 + h) * 60 + min) * 60 + sec) * 1000 + ms)
}

/// The votes after each participating voter began looking: each started voter's last own vote before the
/// next one began (its first vote, for itself, when it had sent none yet).
fn after_each_start(nodes: &[NodePart], quorum: usize) -> Vec<AfterStart> {
    let mut starts: Vec<(&str, u32)> = (nodes.iter())
        .filter(|n| n.role == Role::Participant && n.took_part)
        .filter_map(|n| Some((n.started_at.as_deref()?, n.node)))
        .collect();
    starts.sort();
    let mut out = Vec::new();
    for (i, (at, node)) in starts.iter().enumerate() {
        let until = starts.get(i + 1).map(|s| s.0);
        let mut votes = Vec::new();
        for (_, voter) in &starts[..=i] {
            let n = nodes.iter().find(|n| n.node == *voter).expect("a started node");
            let last = (n.heard.iter())
                .filter(|h| h.sender == *voter && h.sender_state == "LOOKING")
                .rfind(|h| until.is_none_or(|u| h.at.as_str() < u))
                .map_or(*voter, |h| h.vote.id);
            votes.push((*voter, last));
        }
        votes.sort();
        let quorum_for = votes
            .iter()
            .map(|v| v.1)
            .find(|c| votes.iter().filter(|v| v.1 == *c).count() >= quorum);
        out.push(AfterStart {
            node: *node,
            at: at.to_string(),
            votes,
            quorum_for,
        });
    }
    out
}

/// The journal's view: the leader elected at `epoch`, how long none served, and the last action before.
fn from_journal(journal: &[Event], epoch: u32) -> Option<FromJournal> {
    let i = journal
        .iter()
        .rposition(|e| e.kind == Kind::LeaderElected && e.epoch == Some(epoch))?;
    let elected = &journal[i];
    let lost = journal[..i].iter().rposition(|e| e.kind == Kind::LeaderLost);
    let trigger = lost.and_then(|l| {
        journal[..=l]
            .iter()
            .rev()
            .take_while(|e| !matches!(e.kind, Kind::LeaderElected | Kind::Initial))
            .find(|e| e.kind == Kind::Action)
            .map(|e| e.message.clone())
    });
    let since = journal[..i]
        .iter()
        .rposition(|e| matches!(e.kind, Kind::LeaderElected | Kind::Initial))
        .map_or(0, |p| p + 1);
    let actions = journal[since..i]
        .iter()
        .filter(|e| e.kind == Kind::Action)
        .map(|e| e.message.clone())
        .collect();
    Some(FromJournal {
        trigger,
        actions,
        elected_time: elected.time.clone(),
        leaderless_ms: elected.leaderless_ms,
    })
}

/// "nodes 1 and 2" -> "Nodes 1 and 2", to start a sentence.
fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
}

fn clock(at: &str) -> &str {
    at.get(11..23).unwrap_or(at)
}

/// "After node 2 began looking (01:03:57,021): nodes 1 and 2 vote for node 2; 2 of 5 voters, 3 needed."
fn after_start_line(a: &AfterStart, e: &Explanation) -> String {
    let mut candidates: Vec<u32> = a.votes.iter().map(|v| v.1).collect();
    candidates.sort();
    candidates.dedup();
    candidates.sort_by_key(|c| std::cmp::Reverse(a.votes.iter().filter(|v| v.1 == *c).count()));
    let groups: Vec<String> = candidates
        .iter()
        .map(|c| {
            let by: Vec<u32> = a.votes.iter().filter(|v| v.1 == *c).map(|v| v.0).collect();
            if by == [*c] {
                format!("node {c} votes for itself")
            } else {
                format!(
                    "{} vote{} for node {c}",
                    crate::model::words::nodes(&by),
                    if by.len() == 1 { "s" } else { "" }
                )
            }
        })
        .collect();
    let tally = match a.quorum_for {
        Some(c) => format!(
            "{} of {} votes for node {c}: a quorum, node {c} leads",
            a.votes.iter().filter(|v| v.1 == c).count(),
            e.voters
        ),
        None => format!(
            "{} looking, no quorum ({} needed)",
            crate::model::words::count(a.votes.len(), "voter"),
            e.quorum
        ),
    };
    format!(
        "After node {} began looking ({}): {}; {tally}.",
        a.node,
        clock(&a.at),
        groups.join(", ")
    )
}

fn story(e: &Explanation) -> Vec<String> {
    let mut s = Vec::new();
    let led_at = e
        .nodes
        .iter()
        .find(|n| n.node == e.leader)
        .and_then(|n| n.decided_at.as_deref())
        .unwrap_or(&e.elected_at);
    s.push(format!(
        "Election of epoch {}{}: node {} won; it was leading at {} and had a quorum at {} (the nodes' logs).",
        e.epoch,
        e.round.map(|r| format!(" (election round {r:#x})")).unwrap_or_default(),
        e.leader,
        clock(led_at),
        clock(&e.elected_at)
    ));
    if let Some(j) = &e.journal {
        let mut why = match &j.trigger {
            Some(t) => format!("Why: {t}."),
            None => "Why: the ensemble had no leader (a start, or a leader lost without a zkdev action).".into(),
        };
        if j.actions.len() > 1 {
            why.push_str(&format!(
                " Everything zkdev did since the previous leader: {}.",
                j.actions.join("; then ")
            ));
        }
        if let Some(ms) = j.leaderless_ms {
            why.push_str(&format!(
                " No leader served for {ms} ms (the journal, elected at {}).",
                j.elected_time
            ));
        }
        s.push(why);
    }
    s.push(
        "The rule: each looking voter first votes for itself, proposing (epoch, zxid, id): the last epoch it \
         accepted, the last transaction it logged, its id. When it hears a vote for a greater candidate (a higher \
         epoch; or the same epoch and a higher zxid; or both the same and a higher id) it switches to that \
         candidate and tells the others. The candidate a quorum votes for is elected."
            .into(),
    );
    let absent: Vec<u32> = e
        .nodes
        .iter()
        .filter(|n| n.role == Role::Participant && !n.took_part && n.joined.is_none())
        .map(|n| n.node)
        .collect();
    let later: Vec<u32> = (e.nodes.iter())
        .filter(|n| n.role == Role::Participant && n.joined.is_some())
        .map(|n| n.node)
        .collect();
    let proposals: Vec<String> = e
        .candidates
        .iter()
        .map(|c| format!("node {} proposed {c}", c.id))
        .collect();
    s.push(format!(
        "Candidates ({} of {} took part{}{}): {}.",
        e.candidates.len(),
        crate::model::words::count(e.voters, "voter"),
        if absent.is_empty() {
            String::new()
        } else {
            format!(
                "; {} did not: not running or cut off",
                crate::model::words::nodes(&absent)
            )
        },
        if later.is_empty() {
            String::new()
        } else {
            format!(
                "; {} began looking only after the quorum had formed",
                crate::model::words::nodes(&later)
            )
        },
        proposals.join("; ")
    ));
    if e.one_by_one {
        for a in &e.after_each_start {
            s.push(after_start_line(a, e));
        }
    }
    for w in e.switches.iter().filter(|_| !e.one_by_one) {
        let who = |c: &Candidate| {
            if c.id == w.node {
                "itself".to_string()
            } else {
                format!("node {}", c.id)
            }
        };
        s.push(format!(
            "Node {} switched its vote from {} to {}: {}{}.",
            w.node,
            who(&w.from),
            who(&w.to),
            w.why,
            if w.follows_rule { "" } else { " (against the rule!)" }
        ));
    }
    if let Some(g) = e.greatest {
        let others: Vec<String> = e
            .candidates
            .iter()
            .filter(|c| c.id != g.id)
            .map(|c| format!("over node {}: {}", c.id, g.why_over(c)))
            .collect();
        if g.id == e.leader {
            s.push(format!(
                "Node {} won because its {g} is the greatest{}. {} voted for it: a quorum ({} of {}).",
                g.id,
                if others.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", others.join("; "))
                },
                capitalised(&crate::model::words::nodes(&e.supporters)),
                e.quorum,
                crate::model::words::count(e.voters, "voter")
            ));
        } else {
            s.push(format!(
                "Node {} won though node {} proposed the greatest {g}: node {} was not heard by a quorum in time.",
                e.leader, g.id, g.id
            ));
        }
    }
    for n in &e.nodes {
        let Some(j) = &n.joined else { continue };
        let told: Vec<String> = (j.told_by.iter())
            .map(|(id, state)| format!("node {id} ({state})"))
            .collect();
        let kind = if n.role == Role::Observer { "Observer" } else { "Node" };
        s.push(format!(
            "{kind} {} began looking at {}, after the quorum had formed: {} answered that node {} leads, so it \
             joined as {} of node {} at {}{}.",
            n.node,
            clock(&j.looked_at),
            if told.is_empty() {
                "the others".to_string()
            } else {
                crate::model::words::and_list(&told)
            },
            j.leader,
            if j.as_ == "observing" {
                "an OBSERVER"
            } else {
                "a FOLLOWER"
            },
            j.leader,
            j.decided_at.as_deref().map_or("?", clock),
            if n.role == Role::Participant && n.node > j.leader {
                " (its higher id does not matter: a voter that finds a leader serving follows it, it does not \
                 start a new vote)"
            } else {
                ""
            }
        ));
    }
    let max_epoch = e.candidates.iter().map(|c| c.epoch).max().unwrap_or(0);
    s.push(format!(
        "As leader, node {} began epoch {} (one more than the highest epoch the voters had accepted, {}): every \
         transaction it commits has a zxid 0x{:x}xxxxxxxx, from 0x{:x}00000001 on; a follower shows its old zxid \
         until the first write.",
        e.leader, e.epoch, max_epoch, e.epoch, e.epoch
    ));
    for n in e.nodes.iter().filter(|n| n.role == Role::Observer && n.took_part) {
        s.push(format!(
            "Observer {} does not vote: it asks the voters who leads (while still looking, they answer with the \
             leader they had) and {}.",
            n.node,
            match &n.decided {
                Some(_) => "observes once they answer as the new leader and its followers",
                None => "had not found the leader by the end of its log",
            }
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG2: &str = "\
2026-12-01 01:03:57,021 [myid:2] INFO  [QuorumPeer[myid=2](plain=127.0.0.1:24182)(secure=disabled)] FastLeaderElection - New election. My id = 2, proposed zxid=0x0
2026-12-01 01:03:57,027 [myid:2] INFO  [WorkerReceiver[myid=2]] FastLeaderElection - Notification: my state:LOOKING; n.sid:1, n.state:LOOKING, n.leader:1, n.round:0x2, n.peerEpoch:0x1, n.zxid:0x0, message format version:0x2, n.config version:0x0
2026-12-01 01:03:57,031 [myid:2] INFO  [WorkerReceiver[myid=2]] FastLeaderElection - Notification: my state:LOOKING; n.sid:2, n.state:LOOKING, n.leader:2, n.round:0x2, n.peerEpoch:0x1, n.zxid:0x0, message format version:0x2, n.config version:0x0
2026-12-01 01:03:57,052 [myid:2] INFO  [WorkerReceiver[myid=2]] FastLeaderElection - Notification: my state:LOOKING; n.sid:1, n.state:LOOKING, n.leader:2, n.round:0x2, n.peerEpoch:0x1, n.zxid:0x0, message format version:0x2, n.config version:0x0
2026-12-01 01:03:57,254 [myid:2] INFO  [QuorumPeer[myid=2](plain=127.0.0.1:24182)(secure=disabled)] QuorumPeer - LEADING
2026-12-01 01:03:57,263 [myid:2] INFO  [QuorumPeer[myid=2](plain=127.0.0.1:24182)(secure=disabled)] Leader - LEADING - LEADER ELECTION TOOK - 241 MS
2026-12-01 01:03:57,375 [myid:2] INFO  [QuorumPeer[myid=2](plain=127.0.0.1:24182)(secure=disabled)] Leader - Have quorum of supporters, sids: [[1, 2]]; starting up and setting last processed zxid: 0x200000000
";
    const LOG1: &str = "\
2026-12-01 01:03:57,020 [myid:1] INFO  [QuorumPeer[myid=1](plain=127.0.0.1:24181)(secure=disabled)] FastLeaderElection - New election. My id = 1, proposed zxid=0x0
2026-12-01 01:03:57,022 [myid:1] INFO  [WorkerReceiver[myid=1]] FastLeaderElection - Notification: my state:LOOKING; n.sid:1, n.state:LOOKING, n.leader:1, n.round:0x2, n.peerEpoch:0x1, n.zxid:0x0, message format version:0x2, n.config version:0x0
2026-12-01 01:03:57,033 [myid:1] INFO  [WorkerReceiver[myid=1]] FastLeaderElection - Notification: my state:LOOKING; n.sid:2, n.state:LOOKING, n.leader:2, n.round:0x2, n.peerEpoch:0x1, n.zxid:0x0, message format version:0x2, n.config version:0x0
2026-12-01 01:03:57,050 [myid:1] INFO  [WorkerReceiver[myid=1]] FastLeaderElection - Notification: my state:LOOKING; n.sid:1, n.state:LOOKING, n.leader:2, n.round:0x2, n.peerEpoch:0x1, n.zxid:0x0, message format version:0x2, n.config version:0x0
2026-12-01 01:03:57,250 [myid:1] INFO  [QuorumPeer[myid=1](plain=127.0.0.1:24181)(secure=disabled)] QuorumPeer - FOLLOWING
2026-12-01 01:03:57,260 [myid:1] INFO  [QuorumPeer[myid=1](plain=127.0.0.1:24181)(secure=disabled)] Learner - FOLLOWING - LEADER ELECTION TOOK - 230 MS
";

    #[test]
    fn a_real_election_reads_as_votes_and_a_reason() {
        let logs = vec![
            (1, Role::Participant, parse_log(1, LOG1)),
            (2, Role::Participant, parse_log(2, LOG2)),
            (3, Role::Participant, Vec::new()),
        ];
        let e = analyse(&logs, &[], None).unwrap();
        assert_eq!((e.leader, e.epoch, e.round), (2, 2, Some(2)));
        assert_eq!(e.supporters, [1, 2]);
        assert_eq!(e.candidates.iter().map(|c| c.id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(e.greatest.map(|g| g.id), Some(2));
        assert_eq!(e.switches.len(), 1);
        assert!(e.switches[0].follows_rule);
        assert!(e.switches[0].why.contains("higher id (2 > 1)"), "{}", e.switches[0].why);
        let n1 = &e.nodes[0];
        assert_eq!((n1.decided.as_deref(), n1.took_ms), (Some("following"), Some(230)));
        assert!(!e.nodes[2].took_part);
        assert!(e.story.iter().any(|l| l.contains("began epoch 2")), "{:#?}", e.story);
        assert!(analyse(&logs, &[], Some(7)).is_err());
    }

    /// Logs of a real `up --nodes 5 --one-by-one --profile fast` (ZooKeeper 3.8.0), cut to the election's lines.
    fn one_by_one() -> Vec<(u32, Role, Vec<Line>)> {
        let texts = [
            include_str!("fixtures/one_by_one/node1.log"),
            include_str!("fixtures/one_by_one/node2.log"),
            include_str!("fixtures/one_by_one/node3.log"),
            include_str!("fixtures/one_by_one/node4.log"),
            include_str!("fixtures/one_by_one/node5.log"),
        ];
        (1..=5)
            .map(|id| (id, Role::Participant, parse_log(id, texts[id as usize - 1])))
            .collect()
    }

    #[test]
    fn a_first_start_one_by_one_is_the_tutorials_story() {
        let e = analyse(&one_by_one(), &[], None).unwrap();
        for l in &e.story {
            println!("{l}");
        }
        assert_eq!((e.leader, e.epoch), (3, 1));
        assert_eq!(e.supporters, [1, 2, 3]);
        assert!(e.one_by_one);
        // Who voted for whom after each start.
        type Votes = Vec<(u32, u32)>;
        let steps: Vec<(u32, Votes, Option<u32>)> = (e.after_each_start.iter())
            .map(|a| (a.node, a.votes.clone(), a.quorum_for))
            .collect();
        assert_eq!(
            steps,
            [
                (1, vec![(1, 1)], None),
                (2, vec![(1, 2), (2, 2)], None),
                (3, vec![(1, 3), (2, 3), (3, 3)], Some(3)),
            ]
        );
        // 4 and 5 came later and followed 3: they did not vote, and they are not "absent".
        for id in [4, 5] {
            let n = &e.nodes[id - 1];
            assert!(!n.took_part);
            let j = n.joined.as_ref().unwrap_or_else(|| panic!("node {id} joined: {n:#?}"));
            assert_eq!((j.leader, j.as_.as_str()), (3, "following"));
            assert!(j.told_by.contains(&(3, "leading".into())), "{j:?}");
        }
        let text = e.story.join("\n");
        assert!(!text.contains("not running or cut off"), "{text}");
        assert!(text.contains("After node 2 began looking"), "{text}");
        assert!(
            text.contains("nodes 1, 2 and 3 vote for node 3; 3 of 5 votes for node 3: a quorum"),
            "{text}"
        );
        assert!(
            text.contains("Node 4 began looking") && text.contains("joined as a FOLLOWER of node 3"),
            "{text}"
        );
        assert!(text.contains("Node 5 began looking"), "{text}");
        // Node 1 repeated its vote for node 2 while it waited for a third voter: one line with a count.
        let n1 = &e.nodes[0];
        let repeated = (n1.heard_repeated.iter())
            .find(|r| r.sender == 1 && r.vote.id == 2)
            .expect("node 1's vote for 2");
        assert!(repeated.count > 3, "{repeated:?}");
        assert_eq!(n1.heard_repeated.iter().map(|r| r.count).sum::<usize>(), n1.heard.len());
        assert!(n1.heard_repeated.len() < n1.heard.len() / 2);
    }

    #[test]
    fn with_reconfig_the_later_voter_and_the_observer_join_too() {
        // A real `up --nodes 3 --observers 1 --one-by-one --reconfig`: node 2 wins with 1 and 2; node 3 and
        // observer 4 begin looking twice (reconfigEnabled restarts the election on the committed config).
        let texts = [
            include_str!("fixtures/reconfig_observer/node1.log"),
            include_str!("fixtures/reconfig_observer/node2.log"),
            include_str!("fixtures/reconfig_observer/node3.log"),
            include_str!("fixtures/reconfig_observer/node4.log"),
        ];
        let role = |id| if id == 4 { Role::Observer } else { Role::Participant };
        let logs: Vec<_> = (1..=4u32)
            .map(|id| (id, role(id), parse_log(id, texts[id as usize - 1])))
            .collect();
        let e = analyse(&logs, &[], None).unwrap();
        assert_eq!((e.leader, e.epoch), (2, 1));
        assert_eq!(
            e.supporters,
            [1, 2],
            "each supporter once, not once per quorum verifier"
        );
        let joined: Vec<(u32, String)> = (e.nodes.iter())
            .filter_map(|n| n.joined.as_ref().map(|j| (n.node, format!("{} {}", j.as_, j.leader))))
            .collect();
        assert_eq!(joined, [(3, "following 2".into()), (4, "observing 2".into())]);
        let text = e.story.join("\n");
        assert!(
            text.contains("Observer 4 began looking") && text.contains("as an OBSERVER of node 2"),
            "{text}"
        );
        assert!(!text.contains("not running or cut off"), "{text}");
    }

    #[test]
    fn an_election_all_at_once_keeps_its_short_story() {
        let logs = vec![
            (1, Role::Participant, parse_log(1, LOG1)),
            (2, Role::Participant, parse_log(2, LOG2)),
        ];
        let e = analyse(&logs, &[], None).unwrap();
        assert!(!e.one_by_one);
        assert!(!e.story.iter().any(|l| l.starts_with("After node")), "{:#?}", e.story);
        assert!(e.nodes.iter().all(|n| n.joined.is_none()));
    }

    #[test]
    fn log_times_subtract() {
        assert_eq!(
            millis("2026-12-02 00:00:01,500").unwrap() - millis("2026-12-01 23:59:59,900").unwrap(),
            1600
        );
        assert_eq!(millis("1970-01-01 00:00:00,007"), Some(7));
        assert_eq!(millis("garbage"), None);
    }

    #[test]
    fn the_order_is_epoch_then_zxid_then_id() {
        let c = |epoch, zxid, id| Candidate {
            epoch,
            zxid: Zxid(zxid),
            id,
        };
        assert!(c(2, 0, 1).key() > c(1, 0x1_0000_0005, 3).key());
        assert!(c(1, 6, 1).key() > c(1, 5, 3).key());
        assert!(c(1, 5, 3).key() > c(1, 5, 2).key());
        assert!(c(2, 0, 1).why_over(&c(1, 9, 3)).contains("higher epoch"));
        assert!(c(1, 6, 1).why_over(&c(1, 5, 3)).contains("higher zxid"));
    }

    #[test]
    fn the_older_notification_format_parses_too() {
        let line = "2020-01-01 00:00:00,000 [myid:1] - INFO  [WorkerReceiver[myid=1]:FastLeaderElection@595] - Notification: 2 (message format version), 3 (n.leader), 0x100000002 (n.zxid), 0x2 (n.round), LOOKING (n.state), 2 (n.sid), 0x1 (n.peerEPoch), LOOKING (my state)0 (n.config version)";
        let parsed = parse_log(1, line);
        let [Line::Notification(n)] = parsed.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!(
            (n.sender, n.vote.id, n.vote.zxid, n.vote.epoch, n.round),
            (2, 3, Zxid(0x1_0000_0002), 1, 2)
        );
    }
}
