//! `zkdev trace`: the messages a `--net` cluster's proxies decoded as a side tap ([`TraceEvent`], kept in a
//! bounded [`TraceRing`]), the filters `trace` applies, and the story of one write told from them
//! ([`story`]). Pure: the supervisor stamps the times, the proxies feed the bytes.

use std::collections::VecDeque;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::links::{Endpoint, Port};
use super::server::Zxid;
use super::wire::client::{err_name, event_name, ClientMessage};
use super::wire::election::ElectionMessage;
use super::wire::quorum::{Detail, QuorumMessage};

/// One decoded message as it crossed a link, or a connection the tap gave up on (`msg` "GAVE UP").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// Position in the supervisor's ring (a cursor for the next poll).
    pub seq: u64,
    /// When the proxy forwarded the message's last byte: microseconds since the Unix epoch.
    pub t_us: u64,
    /// Who sent it and who received it.
    pub from: Endpoint,
    pub to: Endpoint,
    /// The link's kind: quorum, election or client.
    pub link: Port,
    /// The proxied connection it crossed (numbered by the supervisor).
    pub conn: u64,
    /// PROPOSAL, ACK, COMMIT... on quorum links; `notification`/`header` on election links;
    /// `connect`, `connected`, `request`, `reply`, `watch` on client links; `GAVE UP`.
    pub msg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zxid: Option<Zxid>,
    /// The operation (setData, create...) of a request, a REQUEST or a transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A client request's xid (the server's cxid in REQUEST and transactions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xid: Option<i32>,
    /// A session id, written as ZooKeeper prints it (`0x1000a2b3c0000`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_session")]
    pub session: Option<i64>,
    /// A reply's error code's name (`OK`, `NONODE`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub err: Option<String>,
    /// Bytes the message took on the wire.
    pub size: usize,
    /// What else it says (a vote, why the tap gave up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The fields a decoded message fills in (the rest is the link's and the clock's).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    pub msg: String,
    pub zxid: Option<Zxid>,
    pub op: Option<String>,
    pub path: Option<String>,
    pub xid: Option<i32>,
    pub session: Option<i64>,
    pub err: Option<String>,
    pub note: Option<String>,
}

impl Decoded {
    fn named(msg: &str) -> Decoded {
        Decoded {
            msg: msg.to_string(),
            ..Decoded::default()
        }
    }
}

pub fn quorum(m: &QuorumMessage) -> Decoded {
    let p = match m {
        QuorumMessage::Packet(p) => p,
        QuorumMessage::Snapshot(s) => {
            let mut d = Decoded::named("SNAPSHOT");
            d.note = Some(format!(
                "{} znodes, {} sessions, {} bytes streamed after SNAP",
                s.znodes, s.sessions, s.bytes
            ));
            return d;
        }
    };
    let mut d = Decoded::named(p.kind.name());
    // REQUEST and a leader's PING carry no zxid of their own (-1 / the last one).
    d.zxid = Some(p.zxid).filter(|z| z.0 != u64::MAX);
    match &p.detail {
        Detail::Txn(t) | Detail::ActivateTxn { txn: t, .. } => {
            d.zxid = Some(t.zxid);
            d.op = Some(t.op.to_string());
            d.path = t.path.clone();
            d.xid = Some(t.cxid);
            d.session = Some(t.session);
        }
        Detail::Request {
            session,
            cxid,
            op,
            path,
        } => {
            d.zxid = None;
            d.op = Some(op.to_string());
            d.path = path.clone();
            d.xid = Some(*cxid);
            d.session = Some(*session);
        }
        Detail::LearnerInfo { sid, .. } => d.note = Some(format!("server id {sid}")),
        Detail::Unreadable(why) => d.note = Some(why.clone()),
        _ => {}
    }
    d
}

pub fn election(m: &ElectionMessage) -> Decoded {
    match m {
        ElectionMessage::Header { sid, .. } => {
            let mut d = Decoded::named("header");
            d.note = Some(format!("server id {sid}"));
            d
        }
        ElectionMessage::Notification(n) => {
            let mut d = Decoded::named("notification");
            d.zxid = Some(n.zxid);
            d.note = Some(format!(
                "{}, votes for {} (round {}, epoch {})",
                n.state.name(),
                n.leader,
                n.election_epoch,
                n.peer_epoch
            ));
            d
        }
        ElectionMessage::Unreadable { why, .. } => {
            let mut d = Decoded::named("unreadable");
            d.note = Some(why.clone());
            d
        }
    }
}

pub fn client(m: &ClientMessage) -> Decoded {
    match m {
        ClientMessage::ConnectRequest { session, .. } => {
            let mut d = Decoded::named("connect");
            d.session = Some(*session).filter(|s| *s != 0);
            d
        }
        ClientMessage::ConnectResponse {
            session, timeout_ms, ..
        } => {
            let mut d = Decoded::named("connected");
            d.session = Some(*session);
            d.note = Some(format!("session timeout {timeout_ms} ms"));
            d
        }
        ClientMessage::Request { xid, op, path } => {
            let mut d = Decoded::named("request");
            d.op = Some(op.to_string());
            d.path = path.clone();
            d.xid = Some(*xid);
            d
        }
        ClientMessage::Reply { xid, zxid, err } => {
            let mut d = Decoded::named("reply");
            d.xid = Some(*xid);
            d.zxid = Some(*zxid).filter(|z| z.0 != u64::MAX);
            d.err = Some(
                err_name(*err)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("error {err}")),
            );
            d
        }
        ClientMessage::Watch { zxid, event, path, .. } => {
            let mut d = Decoded::named("watch");
            d.zxid = *zxid;
            d.path = path.clone();
            d.note = event_name(*event).map(str::to_string);
            d
        }
        ClientMessage::FourLetterWord(w) => {
            let mut d = Decoded::named("4lw");
            d.note = Some(w.clone());
            d
        }
    }
}

/// The supervisor's recent trace events: at most `cap`, the oldest leaving first; and what the tap lost.
#[derive(Debug, Clone)]
pub struct TraceRing {
    cap: usize,
    events: VecDeque<TraceEvent>,
    next_seq: u64,
    /// Chunks of bytes the tap could not take in time (its queue was full): each made it give up a connection.
    pub dropped_chunks: u64,
    /// Connections (one direction each) the tap stopped reading.
    pub gave_up: u64,
}

/// What a poll of the ring answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracePage {
    pub events: Vec<TraceEvent>,
    /// The cursor of the next poll.
    pub next: u64,
    /// Events after the asked cursor that had already left the ring.
    pub missed: u64,
    pub dropped_chunks: u64,
    pub gave_up: u64,
}

impl TraceRing {
    pub fn new(cap: usize) -> TraceRing {
        TraceRing {
            cap: cap.max(1),
            events: VecDeque::new(),
            next_seq: 1,
            dropped_chunks: 0,
            gave_up: 0,
        }
    }

    /// Keep an event (its `seq` is set here); the oldest leaves when the ring is full.
    pub fn push(&mut self, mut ev: TraceEvent) {
        ev.seq = self.next_seq;
        self.next_seq += 1;
        if ev.msg == GAVE_UP {
            self.gave_up += 1;
        }
        if self.events.len() == self.cap {
            self.events.pop_front();
        }
        self.events.push_back(ev);
    }

    /// The cursor that shows only what comes after now.
    pub fn head(&self) -> u64 {
        self.next_seq
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Events from `cursor` on (at most `max`).
    pub fn since(&self, cursor: u64, max: usize) -> TracePage {
        let oldest = self.events.front().map_or(self.next_seq, |e| e.seq);
        let missed = oldest.saturating_sub(cursor.max(1));
        let events: Vec<TraceEvent> = (self.events.iter())
            .filter(|e| e.seq >= cursor)
            .take(max)
            .cloned()
            .collect();
        let next = events.last().map_or(self.next_seq, |e| e.seq + 1);
        TracePage {
            events,
            next,
            missed,
            dropped_chunks: self.dropped_chunks,
            gave_up: self.gave_up,
        }
    }
}

pub const GAVE_UP: &str = "GAVE UP";

/// What earlier messages said, to name the operation and path of those that do not carry them: an ACK,
/// COMMIT or a learner's reply to a zxid whose PROPOSAL (or INFORM) was seen, a client reply to a request
/// of the same connection and xid. Bounded: the last `cap` of each.
#[derive(Debug, Clone)]
pub struct Recall {
    cap: usize,
    by_zxid: VecDeque<(Zxid, Option<String>, Option<String>)>,
    by_xid: VecDeque<(u64, i32, Option<String>, Option<String>)>,
}

impl Recall {
    pub fn new(cap: usize) -> Recall {
        Recall {
            cap: cap.max(1),
            by_zxid: VecDeque::new(),
            by_xid: VecDeque::new(),
        }
    }

    /// Learn from `e` and fill in what it lacks.
    pub fn fill(&mut self, e: &mut TraceEvent) {
        match (e.link, e.msg.as_str()) {
            (Port::Quorum, "PROPOSAL" | "INFORM" | "INFORMANDACTIVATE") => {
                if let Some(z) = e.zxid {
                    if !self.by_zxid.iter().any(|(k, ..)| *k == z) {
                        push_bounded(&mut self.by_zxid, (z, e.op.clone(), e.path.clone()), self.cap);
                    }
                }
            }
            (Port::Quorum, "ACK" | "COMMIT" | "COMMITANDACTIVATE") => {
                if let Some((_, op, path)) = e.zxid.and_then(|z| self.by_zxid.iter().rev().find(|(k, ..)| *k == z)) {
                    e.op = op.clone();
                    e.path = path.clone();
                }
            }
            (Port::Client, "request") => {
                if let Some(x) = e.xid.filter(|x| *x >= 0) {
                    push_bounded(&mut self.by_xid, (e.conn, x, e.op.clone(), e.path.clone()), self.cap);
                }
            }
            (Port::Client, "reply") => {
                let found = (self.by_xid.iter().rev()).find(|(c, x, ..)| *c == e.conn && Some(*x) == e.xid);
                if let Some((_, _, op, path)) = found {
                    e.op = op.clone();
                    e.path = path.clone();
                }
            }
            _ => {}
        }
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, item: T, cap: usize) {
    if q.len() == cap {
        q.pop_front();
    }
    q.push_back(item);
}

/// Session ids as hex strings on the wire and in `--json`.
mod hex_session {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(id) => s.serialize_str(&format!("0x{id:x}")),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            u64::from_str_radix(t.trim_start_matches("0x"), 16)
                .map(|u| u as i64)
                .map_err(|_| serde::de::Error::custom(format!("`{t}` is not a session id (0x and hex digits)")))
        })
        .transpose()
    }
}

/// `trace`'s filters: every one given must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub node: Option<u32>,
    pub path: Option<String>,
    /// A message type (PROPOSAL, notification, reply) or an operation (setData), any case.
    pub kind: Option<String>,
}

impl Filter {
    pub fn matches(&self, e: &TraceEvent) -> bool {
        let node_ok = self
            .node
            .is_none_or(|n| e.from == Endpoint::Node(n) || e.to == Endpoint::Node(n));
        let path_ok = self.path.as_ref().is_none_or(|p| {
            e.path
                .as_deref()
                .is_some_and(|q| q == p || q.strip_prefix(p.as_str()).is_some_and(|rest| rest.starts_with('/')))
        });
        let kind_ok = self.kind.as_ref().is_none_or(|k| {
            e.msg.eq_ignore_ascii_case(k) || e.op.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(k))
        });
        node_ok && path_ok && kind_ok
    }
}

/// `client -> 2 (client)`, `2 -> 1 (quorum)`
pub fn link_text(from: Endpoint, to: Endpoint, link: Port) -> String {
    format!("{from} -> {to} ({})", link.as_str())
}

impl TraceEvent {
    /// `2 -> 1 (quorum)`
    pub fn link_name(&self) -> String {
        link_text(self.from, self.to, self.link)
    }
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<24} {}", link_text(self.from, self.to, self.link), self.msg)?;
        if let Some(op) = &self.op {
            write!(f, " {op}")?;
        }
        if let Some(p) = &self.path {
            write!(f, " {p}")?;
        }
        if let Some(z) = self.zxid {
            write!(f, " zxid {z}")?;
        }
        if let Some(x) = self.xid {
            write!(f, " xid {x}")?;
        }
        if let Some(s) = self.session {
            write!(f, " session 0x{s:x}")?;
        }
        if let Some(e) = &self.err {
            write!(f, " {e}")?;
        }
        write!(f, " ({} B)", self.size)?;
        if let Some(n) = &self.note {
            write!(f, ": {n}")?;
        }
        Ok(())
    }
}

/// The roles of the ensemble when the write was made.
#[derive(Debug, Clone)]
pub struct Roles {
    pub leader: u32,
    pub followers: Vec<u32>,
    pub observers: Vec<u32>,
}

/// One step of a write's story.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// `client request`, `REQUEST`, `PROPOSAL`, `ACK`, `COMMIT`, `INFORM`, `reply`.
    pub what: String,
    pub from: Endpoint,
    pub to: Endpoint,
    pub link: Port,
    /// Microseconds since the client's request crossed its link (None: implied, not seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_us: Option<u64>,
    /// For an ACK: microseconds since the PROPOSAL to that node crossed its link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zxid: Option<Zxid>,
    /// Seen on the wire (false: implied, such as the leader's own ACK).
    pub seen: bool,
    pub size: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The whole story of one write, in the order its messages crossed their links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Story {
    pub op: String,
    pub path: String,
    pub via: u32,
    pub leader: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zxid: Option<Zxid>,
    /// A session id, written as ZooKeeper prints it (`0x1000a2b3c0000`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_session")]
    pub session: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub err: Option<String>,
    pub steps: Vec<Step>,
    /// What should have crossed a link and did not (a follower's ACK whose link is stalled).
    pub missing: Vec<String>,
    /// The voters whose ACKs made the commit (the leader's own, implied, first).
    pub committed_by: Vec<u32>,
    /// From the client's request to its reply, as the proxies saw them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_us: Option<u64>,
    pub notes: Vec<String>,
}

impl Story {
    /// Has the story every message a healthy ensemble sends for a write?
    pub fn complete(&self) -> bool {
        self.missing.is_empty() && self.steps.iter().any(|s| s.what == "reply")
    }
}

/// Tell the story of the write of `op` on `path` sent to node `via` from `events` (in any order).
/// The client request is the last one matching (the one `trace --write` made); everything else is found
/// by its session and xid (REQUEST, PROPOSAL), then by its zxid (ACK, COMMIT, INFORM).
pub fn story(events: &[TraceEvent], via: u32, path: &str, roles: &Roles) -> Option<Story> {
    let mut evs: Vec<&TraceEvent> = events.iter().collect();
    evs.sort_by_key(|e| (e.t_us, e.seq));
    let is_write = |e: &&&TraceEvent| {
        e.link == Port::Client
            && e.to == Endpoint::Node(via)
            && e.msg == "request"
            && e.path.as_deref() == Some(path)
            && matches!(
                e.op.as_deref(),
                Some("create" | "create2" | "setData" | "delete" | "createTTL")
            )
    };
    let req = *evs.iter().rfind(is_write)?;
    let xid = req.xid?;
    let node = Endpoint::Node(via);
    let on_conn = |e: &&&TraceEvent| e.link == Port::Client && e.conn == req.conn;
    let session = (evs.iter())
        .filter(on_conn)
        .find(|e| e.msg == "connected")
        .and_then(|e| e.session);
    let reply = (evs.iter())
        .filter(on_conn)
        .find(|e| e.msg == "reply" && e.xid == Some(xid) && e.from == node && e.t_us >= req.t_us)
        .copied();
    let leader = Endpoint::Node(roles.leader);
    let same_request = |e: &&&TraceEvent| e.xid == Some(xid) && (session.is_none() || e.session == session);
    let request = (evs.iter())
        .filter(|e| e.link == Port::Quorum && e.msg == "REQUEST" && e.from == node && e.to == leader)
        .find(same_request)
        .copied();
    let proposals: Vec<&TraceEvent> = (evs.iter())
        .filter(|e| e.link == Port::Quorum && e.msg == "PROPOSAL" && e.from == leader)
        .filter(same_request)
        .copied()
        .collect();
    let zxid = proposals
        .first()
        .and_then(|p| p.zxid)
        .or_else(|| reply.and_then(|r| r.zxid));
    let t0 = req.t_us;
    let step = |what: &str, e: &TraceEvent| Step {
        what: what.to_string(),
        from: e.from,
        to: e.to,
        link: e.link,
        at_us: Some(e.t_us.saturating_sub(t0)),
        took_us: None,
        zxid: e.zxid,
        seen: true,
        size: e.size,
        note: None,
    };
    let mut steps = vec![step("client request", req)];
    steps[0].note = Some(format!("{} {path}, xid {xid}", req.op.clone().unwrap_or_default()));
    let mut missing = Vec::new();
    let mut notes = Vec::new();
    if via != roles.leader {
        match request {
            Some(r) => {
                let mut s = step("REQUEST", r);
                s.note = Some(format!(
                    "{} {path} forwarded to the leader",
                    r.op.clone().unwrap_or_default()
                ));
                steps.push(s);
            }
            None => missing.push(format!("REQUEST {via} -> {} (quorum): not seen", roles.leader)),
        }
    }
    let by_zxid = |msg: &str, from: Endpoint, to: Endpoint| {
        (evs.iter())
            .find(|e| e.link == Port::Quorum && e.msg == msg && e.from == from && e.to == to && e.zxid == zxid)
            .copied()
    };
    let mut acks = Vec::new();
    for f in &roles.followers {
        let fe = Endpoint::Node(*f);
        let proposal = proposals.iter().find(|p| p.to == fe).copied();
        match proposal {
            Some(p) => steps.push(step("PROPOSAL", p)),
            None => missing.push(format!(
                "PROPOSAL {} -> {f} (quorum): not seen (the link did not carry it)",
                roles.leader
            )),
        }
        match by_zxid("ACK", fe, leader).filter(|_| zxid.is_some()) {
            Some(a) => {
                let mut s = step("ACK", a);
                s.took_us = proposal.map(|p| a.t_us.saturating_sub(p.t_us));
                acks.push((a.t_us, *f));
                steps.push(s);
            }
            None => missing.push(format!(
                "ACK {f} -> {} (quorum): missing, never crossed its link",
                roles.leader
            )),
        }
    }
    steps.push(Step {
        what: "ACK".into(),
        from: leader,
        to: leader,
        link: Port::Quorum,
        at_us: None,
        took_us: None,
        zxid,
        seen: false,
        size: 0,
        note: Some("the leader's own ACK is internal: implied, not seen".into()),
    });
    let mut first_commit = None;
    for f in &roles.followers {
        match by_zxid("COMMIT", leader, Endpoint::Node(*f)).filter(|_| zxid.is_some()) {
            Some(c) => {
                first_commit = Some(first_commit.map_or(c.t_us, |t: u64| t.min(c.t_us)));
                steps.push(step("COMMIT", c));
            }
            None => missing.push(format!("COMMIT {} -> {f} (quorum): not seen", roles.leader)),
        }
    }
    for o in &roles.observers {
        match by_zxid("INFORM", leader, Endpoint::Node(*o)).filter(|_| zxid.is_some()) {
            Some(i) => {
                first_commit = Some(first_commit.map_or(i.t_us, |t: u64| t.min(i.t_us)));
                steps.push(step("INFORM", i));
            }
            None => missing.push(format!("INFORM {} -> {o} (quorum): not seen", roles.leader)),
        }
    }
    if let Some(r) = reply {
        steps.push(step("reply", r));
    } else {
        missing.push(format!("reply {via} -> client (client): not seen"));
    }
    // The commit: the leader's own ACK and the followers' that came before the first COMMIT or INFORM.
    let mut committed_by = vec![roles.leader];
    let commit_at = first_commit.or(reply.map(|r| r.t_us));
    acks.sort();
    committed_by.extend(
        (acks.iter())
            .filter(|(t, _)| commit_at.is_none_or(|c| *t <= c))
            .map(|(_, f)| *f),
    );
    let voters = roles.followers.len() + 1;
    let quorum = voters / 2 + 1;
    let acked: Vec<u32> = acks.iter().map(|(_, f)| *f).collect();
    let silent: Vec<u32> = roles.followers.iter().copied().filter(|f| !acked.contains(f)).collect();
    if !silent.is_empty() && commit_at.is_some() {
        notes.push(format!(
            "the ACK of {} never came: the commit was made by the ACKs of {} ({} of {voters} voters, the leader's own \
             implied; a quorum is {quorum})",
            words_list(&silent, "node", "nodes"),
            words_list(&committed_by, "node", "nodes"),
            committed_by.len()
        ));
    } else {
        notes.push(format!(
            "committed: the leader held the ACKs of {} when it sent the first COMMIT ({} of {voters} voters, its own \
             implied; a quorum is {quorum})",
            words_list(&committed_by, "node", "nodes"),
            committed_by.len()
        ));
    }
    steps.sort_by_key(|s| (s.at_us.unwrap_or(u64::MAX), order(&s.what)));
    // The implied ACK goes just before the first COMMIT.
    if let Some(i) = steps.iter().position(|s| !s.seen) {
        let implied = steps.remove(i);
        let at = steps
            .iter()
            .position(|s| s.what == "COMMIT" || s.what == "INFORM" || s.what == "reply")
            .unwrap_or(steps.len());
        steps.insert(at, implied);
    }
    Some(Story {
        op: req.op.clone().unwrap_or_default(),
        path: path.to_string(),
        via,
        leader: roles.leader,
        zxid,
        session,
        err: reply.and_then(|r| r.err.clone()),
        steps,
        missing,
        committed_by,
        total_us: reply.map(|r| r.t_us.saturating_sub(t0)),
        notes,
    })
}

/// After each missing message, the fault of the link flow it would have crossed, if any (`; that flow has
/// a link fault: stall`).
pub fn name_faults(missing: &mut [String], rules: &[super::links::Rule]) {
    for m in missing.iter_mut() {
        let fault = rules.iter().find(|r| {
            let flow = link_text(r.flow.from, r.flow.to, r.flow.port);
            m.split_once(' ').is_some_and(|(_, rest)| rest.starts_with(&flow))
        });
        if let Some(r) = fault {
            m.push_str(&format!("; that flow has a link fault: {}", r.fault.describe()));
        }
    }
}

fn order(what: &str) -> u8 {
    match what {
        "client request" => 0,
        "REQUEST" => 1,
        "PROPOSAL" => 2,
        "ACK" => 3,
        "COMMIT" => 4,
        "INFORM" => 5,
        _ => 6,
    }
}

/// `node 2`, `nodes 1, 2`
fn words_list(ids: &[u32], one: &str, many: &str) -> String {
    let list = ids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    if ids.len() == 1 {
        format!("{one} {list}")
    } else {
        format!("{many} {list}")
    }
}

/// `1.234 ms`
pub fn ms(us: u64) -> String {
    format!("{}.{:03} ms", us / 1000, us % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t_us: u64, from: Endpoint, to: Endpoint, link: Port, msg: &str) -> TraceEvent {
        TraceEvent {
            seq: 0,
            t_us,
            from,
            to,
            link,
            conn: 1,
            msg: msg.into(),
            zxid: None,
            op: None,
            path: None,
            xid: None,
            session: None,
            err: None,
            size: 10,
            note: None,
        }
    }

    #[test]
    fn a_full_ring_drops_its_oldest_and_a_poll_says_how_many_it_missed() {
        let mut r = TraceRing::new(3);
        for t in 0..5 {
            r.push(ev(t, Endpoint::Node(1), Endpoint::Node(2), Port::Quorum, "PING"));
        }
        assert_eq!(r.len(), 3);
        let page = r.since(1, 100);
        assert_eq!(page.events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(page.missed, 2);
        assert_eq!(page.next, 6);
        let later = r.since(page.next, 100);
        assert!(later.events.is_empty());
        assert_eq!((later.missed, later.next), (0, 6));
        // A cursor at the head shows only what comes later.
        let head = r.head();
        r.push(ev(9, Endpoint::Node(1), Endpoint::Node(2), Port::Quorum, GAVE_UP));
        let page = r.since(head, 100);
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.gave_up, 1);
        // At most `max` at a time, the cursor resuming after the last given.
        let page = r.since(1, 2);
        assert_eq!(page.events.len(), 2);
        assert_eq!(page.next, page.events[1].seq + 1);
    }

    #[test]
    fn acks_commits_and_replies_are_named_after_what_they_answer() {
        let mut recall = Recall::new(2);
        let (n, c) = (Endpoint::Node, Endpoint::Clients);
        let mut p = ev(1, n(1), n(2), Port::Quorum, "PROPOSAL");
        (p.zxid, p.op, p.path) = (Some(Zxid(5)), Some("setData".into()), Some("/a".into()));
        recall.fill(&mut p);
        let mut ack = ev(2, n(2), n(1), Port::Quorum, "ACK");
        ack.zxid = Some(Zxid(5));
        recall.fill(&mut ack);
        assert_eq!((ack.op.as_deref(), ack.path.as_deref()), (Some("setData"), Some("/a")));
        let mut req = ev(3, c, n(2), Port::Client, "request");
        (req.xid, req.op, req.path) = (Some(4), Some("create".into()), Some("/b".into()));
        recall.fill(&mut req);
        let mut reply = ev(4, n(2), c, Port::Client, "reply");
        reply.xid = Some(4);
        recall.fill(&mut reply);
        assert_eq!(reply.path.as_deref(), Some("/b"));
        // Bounded: older zxids are forgotten.
        for z in 6..9 {
            let mut p = ev(5, n(1), n(2), Port::Quorum, "PROPOSAL");
            p.zxid = Some(Zxid(z));
            recall.fill(&mut p);
        }
        let mut late = ev(9, n(1), n(2), Port::Quorum, "COMMIT");
        late.zxid = Some(Zxid(5));
        recall.fill(&mut late);
        assert_eq!(late.path, None);
    }

    #[test]
    fn filters_by_node_path_prefix_and_type() {
        let mut e = ev(0, Endpoint::Node(2), Endpoint::Node(1), Port::Quorum, "REQUEST");
        e.op = Some("setData".into());
        e.path = Some("/app/x".into());
        let f = |node, path: Option<&str>, kind: Option<&str>| Filter {
            node,
            path: path.map(str::to_string),
            kind: kind.map(str::to_string),
        };
        assert!(f(Some(1), None, None).matches(&e));
        assert!(!f(Some(3), None, None).matches(&e));
        assert!(f(None, Some("/app"), None).matches(&e));
        assert!(!f(None, Some("/ap"), None).matches(&e));
        assert!(f(None, None, Some("request")).matches(&e));
        assert!(f(None, None, Some("setdata")).matches(&e));
        assert!(!f(None, None, Some("ACK")).matches(&e));
    }

    /// The events of a write of /w through follower 2 (leader 1, followers 2 and 3, observer 4), with
    /// follower 3's ACK left out when `stalled`.
    fn write_events(stalled: bool) -> Vec<TraceEvent> {
        let (c, n) = (Endpoint::Clients, Endpoint::Node);
        let z = Some(Zxid(0x1_0000_0005));
        let mut v = Vec::new();
        let mut connected = ev(1, n(2), c, Port::Client, "connected");
        connected.conn = 7;
        connected.session = Some(0x55);
        v.push(connected);
        let mut req = ev(10, c, n(2), Port::Client, "request");
        (req.conn, req.op, req.path, req.xid) = (7, Some("setData".into()), Some("/w".into()), Some(1));
        v.push(req);
        let mut fwd = ev(20, n(2), n(1), Port::Quorum, "REQUEST");
        (fwd.session, fwd.xid, fwd.op) = (Some(0x55), Some(1), Some("setData".into()));
        v.push(fwd);
        for (t, f) in [(30, 2), (31, 3)] {
            let mut p = ev(t, n(1), n(f), Port::Quorum, "PROPOSAL");
            (p.session, p.xid, p.zxid) = (Some(0x55), Some(1), z);
            v.push(p);
        }
        let mut a = ev(50, n(2), n(1), Port::Quorum, "ACK");
        a.zxid = z;
        v.push(a);
        if !stalled {
            let mut a = ev(55, n(3), n(1), Port::Quorum, "ACK");
            a.zxid = z;
            v.push(a);
        }
        for (t, f, m) in [(60, 2, "COMMIT"), (61, 3, "COMMIT"), (62, 4, "INFORM")] {
            let mut e = ev(t, n(1), n(f), Port::Quorum, m);
            e.zxid = z;
            v.push(e);
        }
        let mut r = ev(70, n(2), c, Port::Client, "reply");
        (r.conn, r.xid, r.zxid, r.err) = (7, Some(1), z, Some("OK".into()));
        v.push(r);
        v.reverse(); // any order in
        v
    }

    fn roles() -> Roles {
        Roles {
            leader: 1,
            followers: vec![2, 3],
            observers: vec![4],
        }
    }

    #[test]
    fn a_write_through_a_follower_is_told_in_order_with_one_zxid() {
        let s = story(&write_events(false), 2, "/w", &roles()).unwrap();
        let whats: Vec<&str> = s.steps.iter().map(|s| s.what.as_str()).collect();
        assert_eq!(
            whats,
            vec![
                "client request",
                "REQUEST",
                "PROPOSAL",
                "PROPOSAL",
                "ACK",
                "ACK",
                "ACK",
                "COMMIT",
                "COMMIT",
                "INFORM",
                "reply"
            ]
        );
        assert_eq!(s.zxid, Some(Zxid(0x1_0000_0005)));
        assert!(s.missing.is_empty(), "{:?}", s.missing);
        assert!(s.complete());
        assert_eq!(s.committed_by, vec![1, 2, 3]);
        let implied = s.steps.iter().find(|s| !s.seen).unwrap();
        assert!(implied.note.as_deref().unwrap().contains("implied"));
        let ack2 = s
            .steps
            .iter()
            .find(|s| s.what == "ACK" && s.from == Endpoint::Node(2))
            .unwrap();
        assert_eq!(ack2.took_us, Some(20));
        assert_eq!(s.total_us, Some(60));
        assert_eq!(s.session, Some(0x55));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["session"], "0x55");
        assert_eq!(serde_json::from_value::<Story>(json).unwrap(), s);
    }

    #[test]
    fn a_missing_ack_is_named_and_the_commit_credited_to_the_others() {
        let s = story(&write_events(true), 2, "/w", &roles()).unwrap();
        assert_eq!(s.missing.len(), 1, "{:?}", s.missing);
        assert!(s.missing[0].starts_with("ACK 3 -> 1"), "{:?}", s.missing);
        assert_eq!(s.committed_by, vec![1, 2]);
        assert!(s.notes[0].contains("ACK of node 3 never came"), "{:?}", s.notes);
        assert!(!s.complete());
    }
}
