//! The ZooKeeper model: a checker for what ZooKeeper itself promises, beside the register's
//! linearizability (`model::linearize`). A history is a list of operations by sessions (creates, setData,
//! deletes, multis, reads with or without a `sync` before them, watch events, session opens, moves, closes
//! and expiries), each with its invocation and completion time, its outcome, the node that served it and the
//! zxids ZooKeeper gave (the reply's, and the stat's `czxid`/`mzxid`/`pzxid`). The guarantees:
//!
//! - **writes in zxid order**: every acknowledged write has a zxid of its own (a multi's parts share one),
//!   the zxid order agrees with real time (a write acknowledged before another was invoked has the smaller
//!   zxid) and with each session's issue order, and what a read shows at a zxid is what the write with that
//!   zxid wrote;
//! - **no acknowledged write lost**: a read that had to see an acknowledged write (after a `sync`, or in the
//!   writer's own session) shows it or a later state, and some read shows it at all;
//! - **reads never go back in time for a session**: each read returns the state at some zxid no older than
//!   what its session has already seen (its own writes, earlier reads, watch events), across reconnects to
//!   other nodes;
//! - **sync then read**: the read sees every write acknowledged before the `sync` was issued (not strictly
//!   linearizable across a leader change, ZOOKEEPER-1675: a violation there is reported with that cause);
//! - **watches**: a registration fires at most once; the event comes before the session can read the change
//!   it announces; once the session has seen the event, its later reads are at least as new as the change.
//!   ZooKeeper 3.8 sends node events with zxid -1, so the change is inferred: the first change of the watched
//!   znode after the state the registering read saw;
//! - **ephemerals** vanish exactly when their session is closed or expires: never while the session still
//!   works, never still there after a `sync` the client issued once it knew its session ended.
//!
//! The check stays near-linear because zxids fix the order: each read's state is an interval of zxids (from
//! the `mzxid` it saw to the next known change of that znode), each session carries the lowest zxid it may
//! still read at, and `sync` reads carry the highest zxid acknowledged before them (a prefix maximum). What
//! the history leaves open (a delete whose zxid no answer gave, a write whose outcome is unknown) only widens
//! those intervals, so a violation reported is one no order of the open parts explains: no search is needed.
//!
//! Pure: no clock, no I/O. `parse_line` reads one line of zkdev's zk history (NDJSON), `check` decides.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum F {
    /// `create` (persistent, ephemeral, sequential: see `ephemeral` and the path created).
    Create,
    /// `setData`.
    Set,
    /// `delete`.
    Delete,
    /// `multi`: its parts in `ops`, one zxid for all.
    Multi,
    /// A multi's version check (only inside `ops`).
    Check,
    /// `getData` (with `sync: true`, `sync` then `getData`).
    Get,
    /// `exists`.
    Exists,
    /// `getChildren`.
    Children,
    /// A watch event received (`reg`: the operation that registered the watch).
    Event,
    /// A session opened on `node`.
    Open,
    /// The session moved to `node` (same session id, another server).
    Move,
    /// The client closed its session.
    Close,
    /// The client learned its session expired.
    Expire,
}

impl F {
    fn is_write(self) -> bool {
        matches!(self, F::Create | F::Set | F::Delete | F::Multi)
    }
    fn is_read(self) -> bool {
        matches!(self, F::Get | F::Exists | F::Children)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            F::Create => "create",
            F::Set => "setData",
            F::Delete => "delete",
            F::Multi => "multi",
            F::Check => "check",
            F::Get => "getData",
            F::Exists => "exists",
            F::Children => "getChildren",
            F::Event => "event",
            F::Open => "open",
            F::Move => "move",
            F::Close => "close",
            F::Expire => "expired",
        }
    }
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Took effect (a read: answered, "no node" included, see `absent`).
    Ok,
    /// Did not take effect.
    Fail,
    /// No answer: may or may not have taken effect.
    Unknown,
}

/// Which watch a read registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Watch {
    /// getData/exists: fires on the znode's change, creation or deletion.
    Data,
    /// getChildren: fires when a child is created or deleted.
    Child,
}

/// A part of a multi.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubOp {
    pub f: F,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// setData: the version made; check: the version expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ephemeral: bool,
}

/// One operation of a ZooKeeper history (one line of zkdev's zk history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZkOp {
    /// Unique; within a session, the order of the ids is the order the session saw things in.
    pub id: u64,
    /// The session (its id in hex, or any name unique in the history).
    pub session: String,
    pub f: F,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Microseconds on one clock for the whole history. For a read with `sync`: when the sync was issued.
    pub call_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret_us: Option<u64>,
    pub outcome: Outcome,
    /// The node that served it (reads, writes: the node the session was connected to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u32>,
    /// The reply's zxid when the client knows it; an event's zxid (-1 when the server gave none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zxid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub czxid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mzxid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pzxid: Option<i64>,
    /// The data version made (setData) or read (getData).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    /// The data written or read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// getChildren: the names listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<String>>,
    /// A read answered "no node".
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub absent: bool,
    /// create: an ephemeral znode.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ephemeral: bool,
    /// A read issued after a `sync` of the same session (`call_us` is the sync's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sync: bool,
    /// The watch the read registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<Watch>,
    /// event: the id of the read that registered the watch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reg: Option<u64>,
    /// event: created, deleted, changed, children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// multi: its parts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ops: Vec<SubOp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ZkOp {
    /// An operation invoked at `call_us` with nothing known of it yet: no answer (`Unknown`), no node, no
    /// zxids, no data. Callers fill in what they learn.
    pub fn new(id: u64, session: impl Into<String>, f: F, path: impl Into<String>, call_us: u64) -> ZkOp {
        ZkOp {
            id,
            session: session.into(),
            f,
            path: path.into(),
            call_us,
            ret_us: None,
            outcome: Outcome::Unknown,
            node: None,
            zxid: None,
            czxid: None,
            mzxid: None,
            pzxid: None,
            version: None,
            value: None,
            children: None,
            absent: false,
            ephemeral: false,
            sync: false,
            watch: None,
            reg: None,
            event: None,
            ops: Vec::new(),
            error: None,
        }
    }
}

/// Read one line of a zk history.
pub fn parse_line(line: &str) -> Result<ZkOp, String> {
    serde_json::from_str(line.trim()).map_err(|e| {
        // serde counts lines within the one line it was given: say the column only.
        let what = e.to_string();
        let what = what.split(" at line ").next().unwrap_or(&what).to_string();
        format!(
            "not an operation of a ZooKeeper history: {what} (column {})",
            e.column()
        )
    })
}

/// Whether a text looks like a zk history: its first line is an operation with a `session` (a register
/// history names a `client`).
pub fn looks_like(text: &str) -> bool {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| parse_line(l).is_ok())
}

/// Read a whole zk history (blank lines skipped); an error names the line (1-based).
pub fn parse(text: &str) -> Result<Vec<ZkOp>, (usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_line(l).map_err(|e| (i + 1, e)))
        .collect()
}

/// The guarantee a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Guarantee {
    WriteOrder,
    LostWrite,
    SessionFifo,
    MonotonicReads,
    SyncRead,
    WatchOnce,
    WatchBeforeData,
    WatchThenNewer,
    Ephemeral,
}

impl Guarantee {
    pub fn name(self) -> &'static str {
        match self {
            Guarantee::WriteOrder => "writes linearizable in zxid order",
            Guarantee::LostWrite => "no acknowledged write lost",
            Guarantee::SessionFifo => "per-session FIFO order",
            Guarantee::MonotonicReads => "a session's reads never go back in time",
            Guarantee::SyncRead => "sync then read sees every write acknowledged before the sync",
            Guarantee::WatchOnce => "a watch fires at most once per registration",
            Guarantee::WatchBeforeData => "a watch event comes before the change it announces can be read",
            Guarantee::WatchThenNewer => "after a watch event, reads are at least as new as its change",
            Guarantee::Ephemeral => "ephemerals vanish exactly when their session ends",
        }
    }
}

/// One broken guarantee.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    pub guarantee: Guarantee,
    /// The guarantee's name, for readers of the JSON.
    pub name: &'static str,
    /// What happened, in a sentence, with sessions, nodes and zxids.
    pub message: String,
    /// The likely cause, when one is known (ZOOKEEPER-1675 for a stale sync+read next to a leader change).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The fewest operations (ids, in id order) that still show it.
    pub excerpt: Vec<u64>,
}

/// The verdict on a history.
#[derive(Debug, Clone, Serialize)]
pub struct ZkVerdict {
    pub valid: bool,
    pub ops: usize,
    pub sessions: usize,
    pub writes: usize,
    pub reads: usize,
    pub events: usize,
    /// Every violation found (the first ten), the most basic guarantee first.
    pub violations: Vec<Violation>,
}

impl ZkVerdict {
    /// One line: what was checked, what was found.
    pub fn summary(&self) -> String {
        format!(
            "{} operations by {} sessions ({} writes, {} reads, {} watch events) against the ZooKeeper model: {}",
            self.ops,
            self.sessions,
            self.writes,
            self.reads,
            self.events,
            if self.valid {
                "valid".to_string()
            } else {
                format!(
                    "{} violation(s), first: {}",
                    self.violations.len(),
                    self.violations[0].name
                )
            }
        )
    }
}

/// A zxid as ZooKeeper writes it.
pub fn hex(z: i64) -> String {
    format!("0x{z:x}")
}

fn epoch(z: i64) -> i64 {
    z >> 32
}

/// One line of an excerpt: the operation with its session, node and zxids.
pub fn describe(o: &ZkOp) -> String {
    let mut s = format!("#{} session {} ", o.id, o.session);
    if let Some(n) = o.node {
        s += &format!("node {n} ");
    }
    if o.sync {
        s += "sync+";
    }
    s += o.f.as_str();
    if !o.path.is_empty() {
        s += &format!(" {}", o.path);
    }
    if o.ephemeral {
        s += " (ephemeral)";
    }
    if let Some(w) = o.watch {
        s += &format!(" watch={}", if w == Watch::Data { "data" } else { "child" });
    }
    if let Some(r) = o.reg {
        s += &format!(" for #{r}");
    }
    if let Some(e) = &o.event {
        s += &format!(" {e}");
    }
    for p in &o.ops {
        s += &format!(" [{} {}]", p.f.as_str(), p.path);
    }
    s += &format!(
        " -> {}",
        match o.outcome {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        }
    );
    if o.absent {
        s += " no node";
    }
    if let Some(v) = &o.value {
        s += &format!(" {v:?}");
    }
    if let Some(v) = o.version {
        s += &format!(" v{v}");
    }
    if let Some(c) = &o.children {
        s += &format!(" [{}]", c.join(","));
    }
    for (name, z) in [
        ("zxid", o.zxid),
        ("czxid", o.czxid),
        ("mzxid", o.mzxid),
        ("pzxid", o.pzxid),
    ] {
        if let Some(z) = z {
            s += &format!(" {name}={}", if z < 0 { z.to_string() } else { hex(z) });
        }
    }
    s += &format!(
        " [{}..{}] us",
        o.call_us,
        o.ret_us.map_or("?".to_string(), |t| t.to_string())
    );
    s
}

/// A known state of a znode at a zxid, and the operation that showed it.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Present {
        value: Option<String>,
        version: Option<i32>,
    },
    Absent,
}

#[derive(Debug, Clone)]
struct Known {
    state: State,
    /// The operation that wrote or showed it.
    by: u64,
    /// Shown by an acknowledged write (not only by a read).
    written: bool,
}

/// A write's effect on one znode.
#[derive(Debug, Clone)]
struct Effect {
    op: u64,
    path: String,
    zxid: Option<i64>,
    state: State,
    acked: bool,
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "",
    }
}

fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

struct Model<'a> {
    ops: &'a [ZkOp],
    by_id: HashMap<u64, usize>,
    /// Per znode: its known states by zxid.
    chains: HashMap<&'a str, BTreeMap<i64, Known>>,
    /// Per parent: the zxids its children changed at (known), and the operation.
    child_changes: HashMap<&'a str, BTreeMap<i64, u64>>,
    /// Znodes some write touched without a zxid known (deletes, unknown outcomes): their chains have gaps.
    open: HashSet<&'a str>,
    /// Acknowledged writes with a zxid, by completion time: (ret_us, zxid, op), and the prefix maximum.
    acked: Vec<(u64, i64, u64)>,
    prefix_max: Vec<(i64, u64)>,
    violations: Vec<Violation>,
    seen: HashSet<(Guarantee, Vec<u64>)>,
    /// Per registering read: the events delivered for it.
    events_of: HashMap<u64, Vec<u64>>,
}

/// Check a ZooKeeper history against the ZooKeeper model.
pub fn check(ops: &[ZkOp]) -> ZkVerdict {
    let mut m = Model {
        ops,
        by_id: ops.iter().enumerate().map(|(i, o)| (o.id, i)).collect(),
        chains: HashMap::new(),
        child_changes: HashMap::new(),
        open: HashSet::new(),
        acked: Vec::new(),
        prefix_max: Vec::new(),
        violations: Vec::new(),
        seen: HashSet::new(),
        events_of: HashMap::new(),
    };
    for o in ops.iter().filter(|o| o.f == F::Event) {
        if let Some(reg) = o.reg {
            m.events_of.entry(reg).or_default().push(o.id);
        }
    }
    let effects = m.effects();
    m.write_order(&effects);
    m.build_chains(&effects);
    m.sessions();
    m.ephemerals();
    m.violations.sort_by_key(|v| v.guarantee as u8);
    m.violations.truncate(10);
    let sessions: HashSet<&str> = ops.iter().map(|o| o.session.as_str()).collect();
    ZkVerdict {
        valid: m.violations.is_empty(),
        ops: ops.len(),
        sessions: sessions.len(),
        writes: ops.iter().filter(|o| o.f.is_write()).count(),
        reads: ops.iter().filter(|o| o.f.is_read()).count(),
        events: ops.iter().filter(|o| o.f == F::Event).count(),
        violations: m.violations,
    }
}

impl<'a> Model<'a> {
    fn op(&self, id: u64) -> Option<&'a ZkOp> {
        self.by_id.get(&id).map(|&i| &self.ops[i])
    }

    fn report(&mut self, guarantee: Guarantee, message: String, cause: Option<String>, mut excerpt: Vec<u64>) {
        excerpt.sort_unstable();
        excerpt.dedup();
        if !self.seen.insert((guarantee, excerpt.clone())) || self.violations.len() >= 100 {
            return;
        }
        self.violations.push(Violation {
            guarantee,
            name: guarantee.name(),
            message,
            cause,
            excerpt,
        });
    }

    /// Every write's effect on each znode it touched (a multi: one per part, one zxid).
    fn effects(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        for o in self.ops.iter().filter(|o| o.f.is_write() && o.outcome != Outcome::Fail) {
            let acked = o.outcome == Outcome::Ok;
            let z = |own: Option<i64>| if acked { own.or(o.zxid) } else { None };
            let present = |value: &Option<String>, version| State::Present {
                value: value.clone(),
                version,
            };
            match o.f {
                F::Create => out.push(Effect {
                    op: o.id,
                    path: o.path.clone(),
                    zxid: z(o.czxid),
                    state: present(&o.value, Some(0)),
                    acked,
                }),
                F::Set => out.push(Effect {
                    op: o.id,
                    path: o.path.clone(),
                    zxid: z(o.mzxid),
                    state: present(&o.value, o.version),
                    acked,
                }),
                F::Delete => out.push(Effect {
                    op: o.id,
                    path: o.path.clone(),
                    zxid: z(None),
                    state: State::Absent,
                    acked,
                }),
                F::Multi => {
                    for p in o.ops.iter().filter(|p| p.f != F::Check) {
                        out.push(Effect {
                            op: o.id,
                            path: p.path.clone(),
                            zxid: z(o.mzxid.or(o.czxid)),
                            state: match p.f {
                                F::Delete => State::Absent,
                                F::Create => present(&p.value, Some(0)),
                                _ => present(&p.value, p.version),
                            },
                            acked,
                        })
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// No two writes with one zxid; zxid order agrees with real time and with each session's order.
    fn write_order(&mut self, effects: &[Effect]) {
        let mut by_zxid: HashMap<i64, u64> = HashMap::new();
        let mut writes: Vec<(i64, u64)> = Vec::new();
        for e in effects {
            let Some(z) = e.zxid else { continue };
            match by_zxid.get(&z) {
                Some(&other) if other != e.op => {
                    let msg = format!(
                        "two writes got the same zxid {}: #{other} and #{}; every write has a zxid of its own",
                        hex(z),
                        e.op
                    );
                    self.report(Guarantee::WriteOrder, msg, None, vec![other, e.op]);
                }
                Some(_) => {}
                None => {
                    by_zxid.insert(z, e.op);
                    writes.push((z, e.op));
                }
            }
        }
        // Real time: a write acknowledged before another was invoked has the smaller zxid.
        let mut by_ret: Vec<(u64, i64, u64)> = writes
            .iter()
            .filter_map(|&(z, id)| Some((self.op(id)?.ret_us?, z, id)))
            .collect();
        by_ret.sort_unstable();
        let mut by_call: Vec<(u64, i64, u64)> = writes
            .iter()
            .filter_map(|&(z, id)| Some((self.op(id)?.call_us, z, id)))
            .collect();
        by_call.sort_unstable();
        let mut i = 0;
        let mut best: Option<(i64, u64)> = None;
        for &(call, z, id) in &by_call {
            while i < by_ret.len() && by_ret[i].0 < call {
                if best.is_none_or(|b| by_ret[i].1 > b.0) {
                    best = Some((by_ret[i].1, by_ret[i].2));
                }
                i += 1;
            }
            if let Some((bz, bid)) = best.filter(|b| b.0 > z) {
                let msg = format!(
                    "write #{bid} (zxid {}) was acknowledged before write #{id} was invoked, yet #{id} got the \
                     older zxid {}",
                    hex(bz),
                    hex(z)
                );
                self.report(Guarantee::WriteOrder, msg, None, vec![bid, id]);
            }
        }
        self.acked = by_ret;
        let mut max: Option<(i64, u64)> = None;
        self.prefix_max = self
            .acked
            .iter()
            .map(|&(_, z, id)| {
                if max.is_none_or(|m| z > m.0) {
                    max = Some((z, id));
                }
                max.expect("set above")
            })
            .collect();
    }

    /// The known states of each znode, from writes and from what reads showed; a read that shows at a zxid
    /// something other than the write with that zxid wrote means that write was lost.
    fn build_chains(&mut self, effects: &[Effect]) {
        for e in effects {
            let path: &'a str = &self.ops[self.by_id[&e.op]].path;
            let path = if path == e.path {
                path
            } else {
                let o = &self.ops[self.by_id[&e.op]];
                o.ops
                    .iter()
                    .find(|p| p.path == e.path)
                    .map_or(path, |p| p.path.as_str())
            };
            match e.zxid {
                Some(z) => {
                    self.chains.entry(path).or_default().insert(
                        z,
                        Known {
                            state: e.state.clone(),
                            by: e.op,
                            written: e.acked,
                        },
                    );
                    if matches!(e.state, State::Absent) || self.op(e.op).is_some_and(|o| o.f != F::Set) {
                        self.child_changes.entry(parent(path)).or_default().insert(z, e.op);
                    }
                }
                None => {
                    self.open.insert(path);
                    self.open.insert(parent(path));
                }
            }
            // An ephemeral's removal (its session's end) has no zxid any answer gives.
            if self.op(e.op).is_some_and(|o| o.ephemeral) {
                self.open.insert(parent(path));
            }
        }
        for o in self
            .ops
            .iter()
            .filter(|o| o.f == F::Get && o.outcome == Outcome::Ok && !o.absent)
        {
            let Some(m) = o.mzxid else { continue };
            let shown = State::Present {
                value: o.value.clone(),
                version: o.version,
            };
            let chain = self.chains.entry(o.path.as_str()).or_default();
            match chain.get(&m) {
                None => {
                    chain.insert(
                        m,
                        Known {
                            state: shown,
                            by: o.id,
                            written: false,
                        },
                    );
                }
                Some(k) if !same(&k.state, &shown) => {
                    let (by, written) = (k.by, k.written);
                    let msg = format!(
                        "read #{} of {} shows {} at mzxid {}, but {} #{by} made {} at that zxid{}",
                        o.id,
                        o.path,
                        show(&shown),
                        hex(m),
                        if written { "the acknowledged write" } else { "read" },
                        show(&k.state),
                        if written { ": that write was lost" } else { "" }
                    );
                    let g = if written {
                        Guarantee::LostWrite
                    } else {
                        Guarantee::WriteOrder
                    };
                    self.report(g, msg, None, vec![by, o.id]);
                }
                Some(k) => {
                    let (by, written) = (k.by, k.written);
                    let late = self
                        .op(by)
                        .filter(|w| written && o.ret_us.is_some_and(|t| w.call_us > t));
                    if let Some(w) = late {
                        let msg = format!(
                            "read #{} of {} (answered at {} us) shows the write #{by} at zxid {}, which was only \
                             invoked at {} us",
                            o.id,
                            o.path,
                            o.ret_us.unwrap_or_default(),
                            hex(m),
                            w.call_us
                        );
                        self.report(Guarantee::WriteOrder, msg, None, vec![by, o.id]);
                    }
                }
            }
        }
    }

    /// The zxids of a read's state: [lo, hi) (hi None: up to now), and the change that ends it.
    fn interval(&self, o: &ZkOp) -> Option<(i64, Option<(i64, u64)>)> {
        if o.outcome != Outcome::Ok || o.absent {
            return None;
        }
        let (lo, next) = match o.f {
            F::Get | F::Exists => {
                let m = o.mzxid?;
                let next = self
                    .chains
                    .get(o.path.as_str())
                    .and_then(|c| c.range(m + 1..).next())
                    .map(|(z, k)| (*z, k.by));
                (m, next)
            }
            F::Children => {
                let p = o.pzxid?;
                let next = self
                    .child_changes
                    .get(o.path.as_str())
                    .and_then(|c| c.range(p + 1..).next())
                    .map(|(z, by)| (*z, *by));
                (p, next)
            }
            _ => return None,
        };
        Some((o.zxid.map_or(lo, |z| z.max(lo)), next))
    }

    /// The highest zxid acknowledged before `t`, and its write.
    fn acked_before(&self, t: u64) -> Option<(i64, u64)> {
        let n = self.acked.partition_point(|a| a.0 < t);
        (n > 0).then(|| self.prefix_max[n - 1])
    }

    /// Whether some read anywhere showed `path` at `z` or later.
    fn ever_seen_from(&self, path: &str, z: i64) -> bool {
        self.chains.get(path).is_some_and(|c| {
            c.range(z..)
                .any(|(_, k)| !k.written || self.op(k.by).is_some_and(|o| o.f.is_read()))
        }) || self
            .ops
            .iter()
            .any(|o| o.path == path && o.f.is_read() && o.mzxid.is_some_and(|m| m >= z))
    }

    /// Per session, in its order: FIFO, reads never older than what it saw, sync reads, watches.
    fn sessions(&mut self) {
        let mut by_session: BTreeMap<&'a str, Vec<&'a ZkOp>> = BTreeMap::new();
        for o in self.ops {
            by_session.entry(o.session.as_str()).or_default().push(o);
        }
        for (_, mut list) in by_session {
            list.sort_by_key(|o| o.id);
            self.session(&list);
        }
    }

    fn session(&mut self, list: &[&'a ZkOp]) {
        // The lowest zxid the session may still read at, and the operation that set it.
        let mut floor: Option<(i64, u64)> = None;
        let mut last_write: Option<(i64, u64)> = None;
        // Pending watch registrations: reg id -> (path, kind, the zxid of the state it saw, events so far).
        let mut regs: HashMap<u64, (&'a str, Watch, i64, u32)> = HashMap::new();
        // Registrations that fired: the first event of each.
        let mut fired: HashMap<u64, u64> = HashMap::new();
        // Events seen: path -> (the state the registration saw, event id), for reads after them.
        let mut announced: HashMap<(&'a str, Watch), (i64, u64)> = HashMap::new();
        for &o in list {
            match o.f {
                f if f.is_write() && o.outcome == Outcome::Ok => {
                    // A create's zxid is its czxid; a setData's is its mzxid (its czxid is the create's).
                    let z = match o.f {
                        F::Create => o.czxid.or(o.mzxid),
                        F::Set => o.mzxid,
                        _ => None,
                    }
                    .or(o.zxid);
                    if let Some(z) = z {
                        if let Some((fz, fid)) = last_write.filter(|w| w.0 >= z) {
                            let msg = format!(
                                "session {}: write #{} got zxid {} after its earlier write #{fid} got {}",
                                o.session,
                                o.id,
                                hex(z),
                                hex(fz)
                            );
                            self.report(Guarantee::SessionFifo, msg, None, vec![fid, o.id]);
                        } else if let Some((fz, fid)) = floor.filter(|f| f.0 > z) {
                            let msg = format!(
                                "session {}: write #{} got zxid {}, older than {} it had already seen (#{fid})",
                                o.session,
                                o.id,
                                hex(z),
                                hex(fz)
                            );
                            self.report(Guarantee::SessionFifo, msg, None, vec![fid, o.id]);
                        }
                        last_write = Some((z, o.id));
                        raise(&mut floor, (z, o.id));
                    }
                }
                f if f.is_read() && o.outcome == Outcome::Ok => {
                    self.read(o, &mut floor, &mut regs, &announced);
                }
                F::Event => {
                    let Some(reg) = o.reg else { continue };
                    if let Some(first) = fired.get(&reg) {
                        let path = o.path.as_str();
                        let msg = format!(
                            "session {}: the watch registered by #{reg} on {path} fired twice (#{first}, #{})",
                            o.session, o.id
                        );
                        self.report(Guarantee::WatchOnce, msg, None, vec![reg, *first, o.id]);
                        continue;
                    }
                    let Some((path, kind, saw, _)) = regs.remove(&reg) else {
                        let msg = format!(
                            "session {}: event #{} for registration #{reg}, which registered no watch of this session",
                            o.session, o.id
                        );
                        self.report(Guarantee::WatchOnce, msg, None, vec![reg, o.id]);
                        continue;
                    };
                    fired.insert(reg, o.id);
                    // The change it announces: its zxid when given, else the first known change after the
                    // state the registration saw (when no change of unknown zxid may come first).
                    let change = match o.zxid.filter(|z| *z >= 0) {
                        Some(z) => Some((z, o.id)),
                        None => {
                            let next = match kind {
                                Watch::Data => self
                                    .chains
                                    .get(path)
                                    .and_then(|c| c.range(saw + 1..).next())
                                    .map(|(z, k)| (*z, k.by)),
                                Watch::Child => self
                                    .child_changes
                                    .get(path)
                                    .and_then(|c| c.range(saw + 1..).next())
                                    .map(|(z, b)| (*z, *b)),
                            };
                            next.filter(|_| !self.open.contains(path))
                        }
                    };
                    raise(&mut floor, (change.map_or(saw + 1, |c| c.0), o.id));
                    announced.insert((path, kind), (saw, o.id));
                }
                F::Close | F::Expire => regs.clear(),
                F::Move => regs.clear(),
                _ => {}
            }
            if o.f.is_read() && o.outcome == Outcome::Ok {
                if let Some(w) = o.watch {
                    let saw = match w {
                        Watch::Data => o.mzxid,
                        Watch::Child => o.pzxid,
                    };
                    // A watch on an absent znode: the state seen is "before its creation", the session's floor.
                    let saw = saw.unwrap_or(floor.map_or(0, |f| f.0));
                    regs.insert(o.id, (o.path.as_str(), w, saw, 0));
                }
            }
        }
    }

    fn read(
        &mut self,
        o: &'a ZkOp,
        floor: &mut Option<(i64, u64)>,
        regs: &mut HashMap<u64, (&'a str, Watch, i64, u32)>,
        announced: &HashMap<(&'a str, Watch), (i64, u64)>,
    ) {
        let kind = if o.f == F::Children { Watch::Child } else { Watch::Data };
        // A pending watch of this session on this znode: the read must not show the change first.
        for (&reg, &(path, w, saw, fired)) in regs.iter() {
            if path != o.path || w != kind || fired > 0 || reg == o.id {
                continue;
            }
            let shown = match kind {
                Watch::Data => o.mzxid,
                Watch::Child => o.pzxid,
            };
            if let Some(s) = shown.filter(|s| *s > saw) {
                // Only a violation if the event does come later in this session.
                let later = self
                    .events_of
                    .get(&reg)
                    .into_iter()
                    .flatten()
                    .filter_map(|id| self.op(*id))
                    .find(|e| e.session == o.session && e.id > o.id);
                if let Some(e) = later {
                    let msg = format!(
                        "session {}: read #{} (node {}) showed {} changed at zxid {} before the event #{} of the \
                         watch registered by #{reg} (which saw {}) was delivered",
                        o.session,
                        o.id,
                        node(o),
                        path,
                        hex(s),
                        e.id,
                        hex(saw)
                    );
                    self.report(Guarantee::WatchBeforeData, msg, None, vec![reg, o.id, e.id]);
                }
            }
        }
        // The lowest zxid this read may be at: the session's floor, and with sync every acknowledged write.
        let global = if o.sync { self.acked_before(o.call_us) } else { None };
        let required = match (*floor, global) {
            (Some(f), Some(g)) => Some(if g.0 > f.0 { (g, true) } else { (f, false) }),
            (Some(f), None) => Some((f, false)),
            (None, Some(g)) => Some((g, true)),
            (None, None) => None,
        };
        let mut stale = false;
        if let (Some(((rz, rid), by_sync)), Some((lo, Some((hi, hid))))) = (required, self.interval(o)) {
            if rz >= hi {
                stale = true;
                let after_event = !by_sync && self.op(rid).is_some_and(|e| e.f == F::Event);
                let what = if o.f == F::Children { "children of " } else { "" };
                let sentence = format!(
                    "read #{} (session {}, node {}) of {what}{} returned the state at zxid {}, which the change #{hid} \
                     at zxid {} replaced, but it had to be at zxid {} or later ({} #{rid})",
                    o.id,
                    o.session,
                    node(o),
                    o.path,
                    hex(lo),
                    hex(hi),
                    hex(rz),
                    if by_sync {
                        "acknowledged before its sync was issued:"
                    } else if after_event {
                        "announced to its session by the watch event"
                    } else {
                        "seen by its session already:"
                    }
                );
                let hid_is_ack = self.op(hid).is_some_and(|w| w.f.is_write() && w.outcome == Outcome::Ok);
                let lost = o.f != F::Children && hid_is_ack && !self.ever_seen_from(&o.path, hi);
                let excerpt = vec![rid, hid, o.id];
                if lost {
                    let msg = format!("{sentence}; no read ever showed write #{hid}: it was lost");
                    self.report(Guarantee::LostWrite, msg, None, excerpt);
                } else if by_sync {
                    let epochs: HashSet<i64> = [epoch(lo), epoch(hi), epoch(rz)].into();
                    let cause = (epochs.len() > 1).then(|| {
                        format!(
                            "a leader change lies next to it (epochs {}): ZOOKEEPER-1675, sync is not strictly \
                             linearizable across a change of leader",
                            {
                                let mut e: Vec<i64> = epochs.into_iter().collect();
                                e.sort_unstable();
                                e.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ")
                            }
                        )
                    });
                    self.report(Guarantee::SyncRead, sentence, cause, excerpt);
                } else if after_event {
                    self.report(Guarantee::WatchThenNewer, sentence, None, excerpt);
                } else {
                    self.report(Guarantee::MonotonicReads, sentence, None, excerpt);
                }
            }
        }
        if !stale {
            // After an event on this znode: not the state the registration saw.
            if let Some(&(saw, ev)) = announced.get(&(o.path.as_str(), kind)) {
                let shown = match kind {
                    Watch::Data => o.mzxid,
                    Watch::Child => o.pzxid,
                };
                if shown == Some(saw) && !o.absent {
                    let msg = format!(
                        "session {}: read #{} (node {}) of {} after watch event #{ev} still shows the state at zxid {} \
                         the event announced a change of",
                        o.session,
                        o.id,
                        node(o),
                        o.path,
                        hex(saw)
                    );
                    self.report(Guarantee::WatchThenNewer, msg, None, vec![ev, o.id]);
                }
            }
        }
        if let Some((lo, _)) = self.interval(o) {
            raise(floor, (lo, o.id));
        }
        // A sync read of a znode absent: every create acknowledged before the sync and not deleted since.
        if o.absent && o.sync {
            self.absent_after_sync(o);
        }
    }

    fn absent_after_sync(&mut self, o: &'a ZkOp) {
        let Some(chain) = self.chains.get(o.path.as_str()) else {
            return;
        };
        let Some((g, _)) = self.acked_before(o.call_us) else {
            return;
        };
        let Some((z, k)) = chain.range(..=g).next_back() else {
            return;
        };
        let (z, by) = (*z, k.by);
        // An ephemeral whose owner still works is the ephemerals' check.
        if !k.written || matches!(k.state, State::Absent) || self.op(k.by).is_some_and(|c| c.ephemeral) {
            return;
        }
        let end = o.ret_us.unwrap_or(u64::MAX);
        // A delete that may come after it, or the end of its owner's session (an ephemeral), explains it.
        let deleted = self.ops.iter().any(|d| {
            d.call_us < end
                && ((d.f == F::Delete && d.path == o.path)
                    || (d.f == F::Multi && d.ops.iter().any(|p| p.path == o.path && p.f == F::Delete)))
                && d.czxid.or(d.zxid).is_none_or(|dz| dz > z)
        });
        let owner_ended = self.op(by).filter(|c| c.ephemeral).is_some_and(|c| {
            self.ops
                .iter()
                .any(|e| e.session == c.session && ended(e) && e.call_us < end)
        });
        if deleted || owner_ended {
            return;
        }
        let msg = format!(
            "sync+read #{} (session {}, node {}) found no {} although #{by} created it at zxid {} and it was \
             acknowledged before the sync was issued",
            o.id,
            o.session,
            node(o),
            o.path,
            hex(z)
        );
        let g = if self.ever_seen_from(&o.path, z) {
            Guarantee::SyncRead
        } else {
            Guarantee::LostWrite
        };
        self.report(g, msg, None, vec![by, o.id]);
    }

    /// Ephemerals: gone while their session still works, or still there after it ended.
    fn ephemerals(&mut self) {
        // Per session: its acknowledged operations (its end excepted) by invocation time, and its end.
        let mut working: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
        let mut ends: HashMap<&str, (u64, u64)> = HashMap::new();
        for o in self.ops {
            if ended(o) {
                let e = (o.ret_us.unwrap_or(o.call_us), o.id);
                let at = ends.entry(o.session.as_str()).or_insert(e);
                *at = (*at).min(e);
            } else if o.outcome == Outcome::Ok && o.f != F::Event {
                // A watch event is no sign of life: closing a session deletes its ephemerals, which fires the
                // session's own watches on them before its connection is dropped.
                working.entry(o.session.as_str()).or_default().push((o.call_us, o.id));
            }
        }
        for list in working.values_mut() {
            list.sort_unstable();
        }
        let deleted: HashSet<&str> = self
            .ops
            .iter()
            .filter(|d| d.outcome != Outcome::Fail)
            .flat_map(|d| {
                let own = (d.f == F::Delete).then_some(d.path.as_str());
                let parts = d.ops.iter().filter(|p| p.f == F::Delete).map(|p| p.path.as_str());
                own.into_iter().chain(parts)
            })
            .collect();
        let creates: Vec<&ZkOp> = self
            .ops
            .iter()
            .filter(|o| o.f == F::Create && o.ephemeral && o.outcome == Outcome::Ok && o.czxid.is_some())
            .collect();
        if creates.is_empty() {
            return;
        }
        let mut reads_of: HashMap<&str, Vec<&ZkOp>> = HashMap::new();
        for o in self.ops.iter().filter(|o| o.f.is_read() && o.outcome == Outcome::Ok) {
            reads_of.entry(o.path.as_str()).or_default().push(o);
        }
        for c in creates {
            let cz = c.czxid.expect("filtered");
            let own = working.get(c.session.as_str()).map_or(&[][..], |v| v.as_slice());
            // The session worked after t: the first acknowledged operation of it invoked after t.
            let alive_after = |t: u64| {
                let i = own.partition_point(|w| w.0 <= t);
                own.get(i).map(|w| w.1)
            };
            let end = ends.get(c.session.as_str()).copied();
            let deletes = deleted.contains(c.path.as_str());
            let mut found: Vec<(Guarantee, String, Vec<u64>)> = Vec::new();
            for r in reads_of.get(c.path.as_str()).into_iter().flatten() {
                let ret = r.ret_us.unwrap_or(u64::MAX);
                if r.absent && !deletes {
                    // It had to be at or after the create: the creating session itself, or a sync after the ack.
                    let after_create =
                        (r.session == c.session && r.id > c.id) || (r.sync && c.ret_us.is_some_and(|t| t < r.call_us));
                    if let Some(a) = alive_after(ret).filter(|_| after_create) {
                        found.push((
                            Guarantee::Ephemeral,
                            format!(
                                "read #{} (session {}, node {}) found no {} (ephemeral of session {}, created at zxid {}), \
                                 yet its session still worked afterwards (#{})",
                                r.id,
                                r.session,
                                node(r),
                                c.path,
                                c.session,
                                hex(cz),
                                a
                            ),
                            vec![c.id, r.id, a],
                        ));
                    }
                }
                if !r.absent && r.sync && r.mzxid.is_some_and(|m| m >= cz) {
                    if let Some((_, eid)) = end.filter(|(t, _)| *t < r.call_us) {
                        found.push((
                            Guarantee::Ephemeral,
                            format!(
                                "sync+read #{} (session {}, node {}) still found {} (ephemeral of session {}), though \
                                 that session had ended (#{eid}) before the sync was issued",
                                r.id,
                                r.session,
                                node(r),
                                c.path,
                                c.session
                            ),
                            vec![c.id, eid, r.id],
                        ));
                    }
                }
            }
            // Children listings of the parent that lack it, at a pzxid at or past its creation.
            let (dir, leaf) = (parent(&c.path), name(&c.path));
            for r in reads_of.get(dir).into_iter().flatten() {
                let (Some(list), Some(p)) = (&r.children, r.pzxid) else {
                    continue;
                };
                if p < cz || deletes || list.iter().any(|n| n == leaf) {
                    continue;
                }
                if let Some(a) = alive_after(r.ret_us.unwrap_or(u64::MAX)) {
                    found.push((
                        Guarantee::Ephemeral,
                        format!(
                            "children read #{} (session {}, node {}) of {dir} at pzxid {} lacks {leaf} (ephemeral of \
                             session {}, created at zxid {}), yet that session still worked afterwards (#{})",
                            r.id,
                            r.session,
                            node(r),
                            hex(p),
                            c.session,
                            hex(cz),
                            a
                        ),
                        vec![c.id, r.id, a],
                    ));
                }
            }
            for (g, msg, ex) in found {
                self.report(g, msg, None, ex);
            }
        }
    }
}

fn ended(e: &ZkOp) -> bool {
    matches!(e.f, F::Close | F::Expire) && e.outcome == Outcome::Ok
}

fn node(o: &ZkOp) -> String {
    o.node.map_or("?".to_string(), |n| n.to_string())
}

fn raise(floor: &mut Option<(i64, u64)>, to: (i64, u64)) {
    if floor.is_none_or(|f| to.0 > f.0) {
        *floor = Some(to);
    }
}

/// Two views of one state agree (a part either side did not record is not a difference).
fn same(a: &State, b: &State) -> bool {
    match (a, b) {
        (State::Absent, State::Absent) => true,
        (State::Present { value: va, version: na }, State::Present { value: vb, version: nb }) => {
            (va.is_none() || vb.is_none() || va == vb) && (na.is_none() || nb.is_none() || na == nb)
        }
        _ => false,
    }
}

fn show(s: &State) -> String {
    match s {
        State::Absent => "no znode".into(),
        State::Present { value, version } => format!(
            "{}{}",
            value.as_deref().map_or("data".to_string(), |v| format!("{v:?}")),
            version.map_or(String::new(), |v| format!(" v{v}"))
        ),
    }
}

/// The excerpt of a violation, one line per operation (with its session, node and zxids).
pub fn excerpt_lines(ops: &[ZkOp], v: &Violation) -> Vec<String> {
    let by_id: HashMap<u64, &ZkOp> = ops.iter().map(|o| (o.id, o)).collect();
    v.excerpt
        .iter()
        .filter_map(|id| by_id.get(id))
        .map(|o| describe(o))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const E1: i64 = 1 << 32;
    const E2: i64 = 2 << 32;

    /// An acknowledged operation invoked at 10*id us, answered 5 us later.
    fn op(id: u64, session: &str, f: F, path: &str) -> ZkOp {
        ZkOp {
            ret_us: Some(id * 10 + 5),
            outcome: Outcome::Ok,
            node: Some(1),
            ..ZkOp::new(id, session, f, path, id * 10)
        }
    }

    fn set(id: u64, s: &str, path: &str, value: &str, version: i32, z: i64) -> ZkOp {
        ZkOp {
            value: Some(value.into()),
            version: Some(version),
            mzxid: Some(z),
            ..op(id, s, F::Set, path)
        }
    }

    fn create(id: u64, s: &str, path: &str, value: &str, z: i64) -> ZkOp {
        ZkOp {
            value: Some(value.into()),
            czxid: Some(z),
            ..op(id, s, F::Create, path)
        }
    }

    fn get(id: u64, s: &str, node: u32, path: &str, value: &str, version: i32, m: i64) -> ZkOp {
        ZkOp {
            node: Some(node),
            value: Some(value.into()),
            version: Some(version),
            mzxid: Some(m),
            ..op(id, s, F::Get, path)
        }
    }

    fn event(id: u64, s: &str, path: &str, reg: u64) -> ZkOp {
        ZkOp {
            reg: Some(reg),
            zxid: Some(-1),
            event: Some("changed".into()),
            ..op(id, s, F::Event, path)
        }
    }

    /// Two sessions on a znode /a: writes through the leader, reads through a lagging follower (stale but
    /// allowed), a sync read, a data watch whose event comes with zxid -1, a move, an ephemeral, a close.
    fn valid() -> Vec<ZkOp> {
        vec![
            op(0, "A", F::Open, ""),
            op(1, "B", F::Open, ""),
            create(2, "A", "/a", "0", E1 + 1),
            set(3, "A", "/a", "1", 1, E1 + 2),
            // B reads through node 3, still at the create: stale, allowed (B saw nothing newer).
            ZkOp {
                watch: Some(Watch::Data),
                ..get(4, "B", 3, "/a", "0", 0, E1 + 1)
            },
            set(5, "A", "/a", "2", 2, E1 + 3),
            event(6, "B", "/a", 4),
            // After the event: at least as new as the change it announced (zxid E1+2).
            get(7, "B", 3, "/a", "1", 1, E1 + 2),
            ZkOp {
                sync: true,
                ..get(8, "B", 3, "/a", "2", 2, E1 + 3)
            },
            create(9, "A", "/e", "mine", E1 + 4),
            ZkOp {
                node: Some(2),
                ..op(10, "A", F::Move, "")
            },
            get(11, "A", 2, "/a", "2", 2, E1 + 3),
            ZkOp {
                sync: true,
                ..get(12, "B", 2, "/e", "mine", 0, E1 + 4)
            },
            op(13, "A", F::Close, ""),
            ZkOp {
                sync: true,
                absent: true,
                ..op(14, "B", F::Get, "/e")
            },
        ]
        .into_iter()
        .map(|mut o| {
            if o.id == 9 {
                o.ephemeral = true;
            }
            o
        })
        .collect()
    }

    fn only(v: &ZkVerdict) -> &Violation {
        assert!(!v.valid, "expected a violation: {}", v.summary());
        &v.violations[0]
    }

    #[test]
    fn a_valid_history_passes_with_stale_reads_watches_moves_and_ephemerals() {
        let v = check(&valid());
        assert!(v.valid, "{:#?}", v.violations);
        assert_eq!(v.sessions, 2);
        assert_eq!(v.events, 1);
        assert!(v.summary().ends_with("valid"), "{}", v.summary());
    }

    #[test]
    fn a_read_going_back_in_time_for_one_session_is_caught() {
        let mut h = valid();
        // B, after reading version 1 (zxid E1+2), reads version 0 again through another node.
        h.push(get(15, "B", 1, "/a", "0", 0, E1 + 1));
        let v = check(&h);
        let x = only(&v);
        assert_eq!(x.guarantee, Guarantee::MonotonicReads, "{x:#?}");
        assert_eq!(x.name, "a session's reads never go back in time");
        // The read that set the floor (the sync read #12 of /e at E1+4), the change that replaced E1+1, the stale read.
        assert_eq!(x.excerpt, vec![3, 12, 15]);
        assert!(x.message.contains("session B, node 1"), "{}", x.message);
        assert!(x.message.contains("0x100000001"), "{}", x.message);
        let lines = excerpt_lines(&h, x);
        assert!(
            lines[2].starts_with("#15 session B node 1 getData /a -> ok \"0\" v0 mzxid=0x100000001"),
            "{lines:?}"
        );
    }

    #[test]
    fn a_lost_acknowledged_write_is_caught() {
        let mut h = valid();
        // A acknowledged setData v3 at E1+5, and a sync read later shows v2 at E1+3: no read ever showed v3.
        h.push(set(20, "A2", "/a", "3", 3, E1 + 5));
        h.push(ZkOp {
            sync: true,
            ..get(21, "C", 1, "/a", "2", 2, E1 + 3)
        });
        let v = check(&h);
        let x = only(&v);
        assert_eq!(x.guarantee, Guarantee::LostWrite, "{x:#?}");
        assert!(x.message.contains("it was lost"), "{}", x.message);
        assert_eq!(x.excerpt, vec![20, 21]);
    }

    #[test]
    fn a_write_shown_differently_at_its_zxid_is_a_lost_write() {
        let mut h = valid();
        h.push(get(30, "C", 2, "/a", "other", 2, E1 + 3));
        let x = only(&check(&h)).clone();
        assert_eq!(x.guarantee, Guarantee::LostWrite, "{x:#?}");
        assert_eq!(x.excerpt, vec![5, 30]);
    }

    #[test]
    fn a_watch_delivered_after_the_data_it_announces_was_read_is_caught() {
        let mut h = valid();
        // B reads version 1 (E1+2) before the event #6 of its watch (registered at E1+1) arrives.
        let early = get(5, "B", 3, "/a", "1", 1, E1 + 2);
        h.retain(|o| o.id != 5);
        h.push(ZkOp {
            call_us: 40,
            ret_us: Some(45),
            ..set(55, "A", "/a", "2", 2, E1 + 3)
        });
        h.push(early);
        let v = check(&h);
        let x = v
            .violations
            .iter()
            .find(|x| x.guarantee == Guarantee::WatchBeforeData)
            .unwrap_or_else(|| panic!("{:#?}", v.violations));
        assert_eq!(x.excerpt, vec![4, 5, 6]);
        assert!(x.message.contains("before the event #6"), "{}", x.message);
    }

    #[test]
    fn a_read_after_a_watch_event_that_shows_the_old_state_is_caught() {
        let mut h = valid();
        h.retain(|o| o.id != 7 && o.id != 8);
        h.push(get(7, "B", 3, "/a", "0", 0, E1 + 1));
        let x = only(&check(&h)).clone();
        assert_eq!(x.guarantee, Guarantee::WatchThenNewer, "{x:#?}");
        // The event, the change it announced (inferred: the event came with zxid -1), the read.
        assert_eq!(x.excerpt, vec![3, 6, 7]);
        assert!(
            x.message.contains("announced to its session by the watch event #6"),
            "{}",
            x.message
        );
    }

    #[test]
    fn a_watch_fired_twice_is_caught() {
        let mut h = valid();
        h.push(ZkOp {
            id: 16,
            ..event(16, "B", "/a", 4)
        });
        let x = only(&check(&h)).clone();
        assert_eq!(x.guarantee, Guarantee::WatchOnce, "{x:#?}");
        assert_eq!(x.excerpt, vec![4, 6, 16]);
        assert!(x.message.contains("fired twice"), "{}", x.message);
    }

    #[test]
    fn an_ephemeral_gone_before_its_session_ended_is_caught() {
        let mut h = valid();
        // A sync read finds /e gone while its session A still writes afterwards (#13 closes later).
        h.retain(|o| o.id != 12);
        h.push(ZkOp {
            sync: true,
            absent: true,
            ..op(12, "B", F::Get, "/e")
        });
        h.push(ZkOp {
            call_us: 126,
            ret_us: Some(128),
            ..set(99, "A", "/a", "3", 3, E1 + 6)
        });
        let v = check(&h);
        let x = v
            .violations
            .iter()
            .find(|x| x.guarantee == Guarantee::Ephemeral)
            .unwrap_or_else(|| panic!("{:#?}", v.violations));
        assert_eq!(x.name, "ephemerals vanish exactly when their session ends");
        assert_eq!(x.excerpt, vec![9, 12, 99]);
    }

    /// A session ended without its client learning it (expired from outside at the end of a run): its
    /// ephemeral is gone, and the deletion fires the session's own watch on it. That event is not the session
    /// working after the ephemeral vanished (a chaos run with expiries once reported it so).
    #[test]
    fn a_watch_event_after_a_session_ended_unrecorded_is_no_sign_of_life() {
        let mut h: Vec<ZkOp> = valid().into_iter().filter(|o| o.id != 13).collect();
        h.retain(|o| o.id != 11);
        h.push(ZkOp {
            watch: Some(Watch::Data),
            ..get(11, "A", 2, "/e", "mine", 0, E1 + 4)
        });
        h.push(ZkOp {
            event: Some("deleted".into()),
            call_us: 150,
            ret_us: Some(150),
            ..event(15, "A", "/e", 11)
        });
        let v = check(&h);
        assert!(
            v.violations.iter().all(|x| x.guarantee != Guarantee::Ephemeral),
            "{:#?}",
            v.violations
        );
    }

    #[test]
    fn an_ephemeral_still_there_after_its_session_closed_is_caught() {
        let mut h = valid();
        h.retain(|o| o.id != 14);
        h.push(ZkOp {
            sync: true,
            ..get(14, "B", 1, "/e", "mine", 0, E1 + 4)
        });
        let x = only(&check(&h)).clone();
        assert_eq!(x.guarantee, Guarantee::Ephemeral, "{x:#?}");
        assert_eq!(x.excerpt, vec![9, 13, 14]);
    }

    #[test]
    fn a_sync_read_missing_an_acknowledged_write_is_caught_and_a_leader_change_names_zookeeper_1675() {
        let mut h = valid();
        // A new leader (epoch 2) acknowledges a write; C's sync+read through node 2 still shows epoch 1's state;
        // a later read shows the write, so it was not lost: the sync read was stale.
        h.push(set(40, "A2", "/a", "3", 3, E2 + 1));
        h.push(ZkOp {
            sync: true,
            ..get(41, "C", 2, "/a", "2", 2, E1 + 3)
        });
        h.push(get(42, "D", 1, "/a", "3", 3, E2 + 1));
        let v = check(&h);
        let x = only(&v);
        assert_eq!(x.guarantee, Guarantee::SyncRead, "{x:#?}");
        assert_eq!(x.excerpt, vec![40, 41]);
        assert!(x.cause.as_deref().unwrap_or("").contains("ZOOKEEPER-1675"), "{x:#?}");
        // Without the sync, the same read is a stale read ZooKeeper allows.
        let plain: Vec<ZkOp> = h
            .into_iter()
            .map(|mut o| {
                if o.id == 41 {
                    o.sync = false;
                }
                o
            })
            .collect();
        assert!(check(&plain).valid);
    }

    #[test]
    fn two_writes_with_one_zxid_or_against_real_time_break_the_write_order() {
        let mut h = valid();
        h.push(set(50, "C", "/b", "x", 1, E1 + 2));
        let x = only(&check(&h)).clone();
        assert_eq!(x.guarantee, Guarantee::WriteOrder);
        assert_eq!(x.excerpt, vec![3, 50]);
        let mut h = valid();
        h.push(create(50, "C", "/b", "x", E1));
        let v = check(&h);
        assert!(
            v.violations
                .iter()
                .any(|x| x.guarantee == Guarantee::WriteOrder && x.excerpt.contains(&50)),
            "{:#?}",
            v.violations
        );
    }

    #[test]
    fn a_session_whose_later_write_got_a_lower_zxid_breaks_fifo() {
        let mut h = valid();
        h.push(ZkOp {
            call_us: 1,
            ret_us: Some(2),
            ..set(60, "F", "/f", "1", 1, E1 + 20)
        });
        h.push(ZkOp {
            call_us: 3,
            ret_us: Some(4),
            ..set(61, "F", "/g", "1", 1, E1 + 19)
        });
        let v = check(&h);
        assert!(
            v.violations
                .iter()
                .any(|x| x.guarantee == Guarantee::SessionFifo && x.excerpt == vec![60, 61]),
            "{:#?}",
            v.violations
        );
    }

    #[test]
    fn lines_round_trip_and_a_bad_line_is_named() {
        for o in valid() {
            let line = serde_json::to_string(&o).unwrap();
            assert_eq!(parse_line(&line).unwrap(), o);
        }
        let text =
            "{\"id\":1,\"session\":\"0x1\",\"f\":\"get\",\"path\":\"/a\",\"call_us\":1,\"outcome\":\"ok\"}\n\n{\"id\":2}\n";
        let (line, e) = parse(text).unwrap_err();
        assert_eq!(line, 3);
        assert!(e.contains("missing field `session`"), "{e}");
        assert!(parse_line("{\"id\":1,\"session\":\"s\",\"f\":\"frob\",\"call_us\":1,\"outcome\":\"ok\"}").is_err());
    }

    /// 100,000 operations by 10 sessions on 20 znodes, 5 % of the writes with unknown outcome, reads stale by
    /// a few writes (`model::simulate::zk_history`, the benchmark's): valid; tampered, the one read that goes
    /// back in time is caught. Prints the time (asserting none).
    #[test]
    fn a_large_generated_history_is_checked_near_linearly() {
        let shape = crate::model::simulate::Shape {
            ops: 100_000,
            clients: 10,
            keys: 1,
            unknown_percent: 5,
            seed: 7,
            tamper: false,
        };
        let h = crate::model::simulate::zk_history(shape);
        let bad = check(&crate::model::simulate::zk_history(crate::model::simulate::Shape {
            tamper: true,
            ..shape
        }));
        assert!(!bad.valid);
        assert_eq!(bad.violations.len(), 1, "{:#?}", bad.violations);
        assert_eq!(bad.violations[0].guarantee, Guarantee::MonotonicReads);
        let t = std::time::Instant::now();
        let v = check(&h);
        eprintln!(
            "zkmodel: {} operations, {} sessions checked in {:.1} ms: {}",
            v.ops,
            v.sessions,
            t.elapsed().as_secs_f64() * 1e3,
            v.summary()
        );
        assert!(v.valid, "{:#?}", &v.violations[..v.violations.len().min(2)]);
    }
}
