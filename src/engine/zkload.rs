//! `--workload zk`: clients that use ZooKeeper as applications do, checked against ZooKeeper's own model
//! (`model::zkmodel`) instead of linearizability. Each client's session is connected to ONE node's client
//! port (followers and observers alike, client i starting on node i mod N), so its plain reads are served by
//! that node, stale or not. It does setData on a few shared znodes, `getData` without `sync` (sometimes
//! registering a data watch), `sync` + `getData`, `getChildren` of a directory of ephemerals (sometimes with
//! a child watch), ephemeral creates, persistent creates and deletes, multis (a setData and a create, one
//! zxid), and moves its session to the next node now and then, and whenever its node stops answering.
//!
//! Every operation is recorded as a `model::zkmodel::ZkOp` with the zxids ZooKeeper gave (the stat's
//! `czxid`/`mzxid`/`pzxid`; the client library does not expose the reply header's zxid) and the node that
//! served it. Watch events are recorded where the session saw them: the library hands events and replies
//! over in the order they came on the wire, so events are collected before each operation, and an event
//! found right after a read's reply is placed before that read only when the read already shows the
//! change the watch saw coming (otherwise after it).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use futures::FutureExt;
use zookeeper_client as zkc;

use super::record::{ClientLog, Outcome as RecOutcome, Record};
use crate::model::rng::Rng;
use crate::model::spec::ClusterSpec;
use crate::model::zkmodel::{Outcome, SubOp, Watch, ZkOp, F};

/// No answer within this long: the outcome is unknown.
const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// The shared znodes the clients set and read.
pub const KEYS: usize = 4;

/// Each node's client address for the workload: its own client port, or its client proxy on a `--net`
/// cluster (unless `direct`).
pub fn node_addresses(spec: &ClusterSpec, direct: bool) -> Vec<(u32, String)> {
    spec.nodes
        .iter()
        .map(|n| match spec.client_proxy(n.id).filter(|_| !direct) {
            Some(p) => (n.id, format!("127.0.0.1:{p}")),
            None => (n.id, n.client_addr().to_string()),
        })
        .collect()
}

/// The znodes the workload needs under `base`.
pub async fn prepare(c: &zkc::Client, base: &str) -> crate::error::Result<()> {
    for k in 0..KEYS {
        crate::zk::client::ensure(c, &format!("{base}/k{k}")).await?;
    }
    crate::zk::client::ensure(c, &format!("{base}/eph")).await?;
    crate::zk::client::ensure(c, &format!("{base}/tmp")).await
}

type EventFuture = Pin<Box<dyn Future<Output = zkc::WatchedEvent> + Send>>;

struct Pending {
    reg: u64,
    path: String,
    kind: Watch,
    saw: i64,
    fut: EventFuture,
}

struct Conn {
    client: zkc::Client,
    session: String,
    node: u32,
}

pub(super) struct ZkClient {
    pub id: u32,
    pub nodes: Vec<(u32, String)>,
    pub base: String,
    pub t0: Instant,
    pub stop: Arc<AtomicBool>,
    pub every: Option<Duration>,
    pub ids: Arc<AtomicUsize>,
    pub journal: Option<mpsc::Sender<String>>,
}

fn us(t0: Instant) -> u64 {
    t0.elapsed().as_micros() as u64
}

async fn timed<T>(
    f: impl Future<Output = std::result::Result<T, zkc::Error>>,
) -> Option<std::result::Result<T, zkc::Error>> {
    tokio::time::timeout(OP_TIMEOUT, f).await.ok()
}

/// What an error says about the operation and the session.
enum Said {
    /// A definite refusal: it did not take effect.
    Refused,
    /// No answer: may have taken effect; the node may be gone (move the session).
    Unknown,
    /// The session expired.
    Expired,
}

fn said(e: &Option<zkc::Error>) -> Said {
    match e {
        Some(zkc::Error::SessionExpired) => Said::Expired,
        Some(zkc::Error::NoNode | zkc::Error::NodeExists | zkc::Error::BadVersion | zkc::Error::NotEmpty) => {
            Said::Refused
        }
        _ => Said::Unknown,
    }
}

impl ZkClient {
    fn new_op(&self, conn: &Conn, f: F, path: &str, call_us: u64) -> ZkOp {
        ZkOp {
            node: Some(conn.node),
            ..ZkOp::new(0, conn.session.clone(), f, path, call_us)
        }
    }

    /// Give the operation its id (the run's next), keep it, and append it to the history file.
    fn push(&self, log: &mut ClientLog, mut op: ZkOp) -> u64 {
        op.id = self.ids.fetch_add(1, Ordering::SeqCst) as u64;
        let id = op.id;
        if let Some(tx) = &self.journal {
            if let Ok(line) = serde_json::to_string(&op) {
                let _ = tx.send(line); // the writer reports its own failure
            }
        }
        log.records.push(record_of(self.id, &self.base, &op));
        log.zk.push(op);
        id
    }

    async fn open(&self, at: usize, log: &mut ClientLog) -> Option<Conn> {
        let (node, addr) = &self.nodes[at];
        let call_us = us(self.t0);
        let connector = zkc::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .with_connection_timeout(OP_TIMEOUT)
            .with_detached();
        let client = tokio::time::timeout(OP_TIMEOUT, connector.connect(addr))
            .await
            .ok()?
            .ok()?;
        let conn = Conn {
            session: client.session_id().to_string(),
            client,
            node: *node,
        };
        let mut op = self.new_op(&conn, F::Open, "", call_us);
        op.outcome = Outcome::Ok;
        op.ret_us = Some(us(self.t0));
        self.push(log, op);
        Some(conn)
    }

    /// The same session on another node; None when the session is gone (expired: recorded).
    async fn move_to(&self, conn: Conn, at: usize, log: &mut ClientLog) -> Result<Conn, Conn> {
        let (node, addr) = &self.nodes[at];
        let call_us = us(self.t0);
        let mut op = self.new_op(&conn, F::Move, "", call_us);
        op.node = Some(*node);
        let session = conn.session.clone();
        let info = conn.client.clone().into_session();
        let connector = zkc::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .with_connection_timeout(OP_TIMEOUT)
            .with_detached()
            .with_session(info);
        // The client library hands the new server the last zxid the session had seen when it first connected,
        // not the newest: a `sync` first brings the new node up to date, as a careful client does, so the
        // session's reads after the move are its node's doing, not the library's.
        let attempt = async {
            let client = connector.connect(addr).await?;
            client.sync("/").await?;
            Ok::<_, zkc::Error>(client)
        };
        match tokio::time::timeout(OP_TIMEOUT, attempt).await {
            Ok(Ok(client)) => {
                drop(conn);
                op.outcome = Outcome::Ok;
                op.ret_us = Some(us(self.t0));
                self.push(log, op);
                Ok(Conn {
                    client,
                    session,
                    node: *node,
                })
            }
            Ok(Err(zkc::Error::SessionExpired)) => {
                op.outcome = Outcome::Fail;
                op.ret_us = Some(us(self.t0));
                op.error = Some(zkc::Error::SessionExpired.to_string());
                self.push(log, op);
                let mut e = self.new_op(&conn, F::Expire, "", us(self.t0));
                e.outcome = Outcome::Ok;
                e.ret_us = Some(e.call_us);
                self.push(log, e);
                Err(conn)
            }
            other => {
                op.outcome = Outcome::Fail;
                op.ret_us = Some(us(self.t0));
                op.error = Some(match other {
                    Ok(Err(e)) => e.to_string(),
                    _ => "no session within 2 s".into(),
                });
                self.push(log, op);
                Err(conn)
            }
        }
    }

    /// Record the events that have arrived (those `place` says go now), drop their registrations.
    fn events(&self, conn: &Conn, pending: &mut Vec<Pending>, log: &mut ClientLog, now: impl Fn(&Pending) -> bool) {
        let mut i = 0;
        while i < pending.len() {
            if !now(&pending[i]) {
                i += 1;
                continue;
            }
            match (&mut pending[i].fut).now_or_never() {
                None => i += 1,
                Some(ev) => {
                    let p = pending.swap_remove(i);
                    if ev.event_type == zkc::EventType::Session {
                        continue; // the session's state, not the znode's: the watch is gone
                    }
                    let mut op = self.new_op(conn, F::Event, &p.path, us(self.t0));
                    op.outcome = Outcome::Ok;
                    op.ret_us = Some(op.call_us);
                    op.reg = Some(p.reg);
                    op.zxid = Some(ev.zxid);
                    op.event = Some(
                        match ev.event_type {
                            zkc::EventType::NodeCreated => "created",
                            zkc::EventType::NodeDeleted => "deleted",
                            zkc::EventType::NodeDataChanged => "changed",
                            _ => "children",
                        }
                        .into(),
                    );
                    self.push(log, op);
                }
            }
        }
    }

    pub async fn run(self) -> ClientLog {
        let mut log = ClientLog::default();
        let mut rng = Rng::new(crate::os::random::u64());
        let mut at = self.id as usize % self.nodes.len();
        let mut conn: Option<Conn> = None;
        let mut pending: Vec<Pending> = Vec::new();
        let mut mine: Vec<String> = Vec::new();
        let mut tmp: Vec<String> = Vec::new();
        let mut n: u64 = 0;
        let mut tick = self.every.map(tokio::time::interval);
        if let Some(t) = tick.as_mut() {
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        while !self.stop.load(Ordering::SeqCst) {
            if let Some(t) = tick.as_mut() {
                t.tick().await;
            }
            let Some(c) = conn.take() else {
                pending.clear();
                mine.clear();
                conn = self.open(at, &mut log).await;
                if conn.is_none() {
                    at = (at + 1) % self.nodes.len();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            };
            self.events(&c, &mut pending, &mut log, |_| true);
            n += 1;
            let roll = rng.range(0, 99);
            let said = if roll < 3 && self.nodes.len() > 1 {
                // Move the session to the next node.
                at = (at + 1) % self.nodes.len();
                pending.clear();
                match self.move_to(c, at, &mut log).await {
                    Ok(moved) => conn = Some(moved),
                    Err(_) => mine.clear(),
                }
                continue;
            } else if roll < 28 {
                let k = rng.range(0, KEYS as u64 - 1);
                self.set(&c, k, n, &mut log).await
            } else if roll < 58 {
                let k = rng.range(0, KEYS as u64 - 1);
                let watch = pending.len() < 4 && rng.range(0, 2) == 0;
                self.get(&c, k, false, watch, &mut pending, &mut log).await
            } else if roll < 68 {
                let k = rng.range(0, KEYS as u64 - 1);
                self.get(&c, k, true, false, &mut pending, &mut log).await
            } else if roll < 78 {
                let watch = pending.len() < 4 && rng.range(0, 2) == 0;
                let sync = rng.range(0, 3) == 0;
                self.children(&c, sync, watch, &mut pending, &mut log).await
            } else if roll < 85 && mine.len() < 3 {
                let path = format!("{}/eph/c{}-{n}", self.base, self.id);
                let s = self.create(&c, &path, true, n, &mut log).await;
                if matches!(s, Some(Said::Refused) | None) {
                    mine.push(path);
                }
                s
            } else if roll < 92 || tmp.is_empty() {
                if rng.range(0, 1) == 0 {
                    let path = format!("{}/tmp/c{}-{n}", self.base, self.id);
                    let s = self.create(&c, &path, false, n, &mut log).await;
                    if s.is_none() {
                        tmp.push(path);
                    }
                    s
                } else {
                    let k = rng.range(0, KEYS as u64 - 1);
                    let path = format!("{}/tmp/c{}-m{n}", self.base, self.id);
                    let s = self.multi(&c, k, &path, n, &mut log).await;
                    if s.is_none() {
                        tmp.push(path);
                    }
                    s
                }
            } else {
                let path = tmp.remove(0);
                self.delete(&c, &path, &mut log).await
            };
            match said {
                Some(Said::Expired) => {
                    let mut e = self.new_op(&c, F::Expire, "", us(self.t0));
                    e.outcome = Outcome::Ok;
                    e.ret_us = Some(e.call_us);
                    self.push(&mut log, e);
                }
                Some(Said::Unknown) => {
                    // The node may be gone: take the session to the next one.
                    at = (at + 1) % self.nodes.len();
                    pending.clear();
                    match self.move_to(c, at, &mut log).await {
                        Ok(moved) => conn = Some(moved),
                        Err(_) => mine.clear(),
                    }
                }
                _ => conn = Some(c),
            }
        }
        if let Some(c) = conn {
            self.close(c).await;
        }
        log
    }

    /// End the session (it is detached, so dropping the client alone would leave it open).
    async fn close(&self, c: Conn) {
        let addr = self
            .nodes
            .iter()
            .find(|(id, _)| *id == c.node)
            .map_or(self.nodes[0].1.clone(), |(_, a)| a.clone());
        let info = c.client.into_session();
        let connector = zkc::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .with_connection_timeout(OP_TIMEOUT)
            .with_session(info);
        if let Ok(Ok(client)) = tokio::time::timeout(OP_TIMEOUT, connector.connect(&addr)).await {
            drop(client);
        }
    }

    fn key(&self, k: u64) -> String {
        format!("{}/k{k}", self.base)
    }

    /// Fill in how an operation without success ended: the outcome, the error, what it says.
    fn failed(op: &mut ZkOp, e: Option<zkc::Error>, ret_us: u64) -> Said {
        let s = said(&e);
        match s {
            Said::Refused => {
                op.outcome = Outcome::Fail;
                op.ret_us = Some(ret_us);
            }
            _ => op.outcome = Outcome::Unknown,
        }
        op.error = Some(e.map_or("no answer within 2 s".to_string(), |e| e.to_string()));
        s
    }

    async fn set(&self, c: &Conn, k: u64, n: u64, log: &mut ClientLog) -> Option<Said> {
        let path = self.key(k);
        let value = format!("c{}-{n}", self.id);
        let mut op = self.new_op(c, F::Set, &path, us(self.t0));
        op.value = Some(value.clone());
        let answer = timed(c.client.set_data(&path, value.as_bytes(), None)).await;
        let ret_us = us(self.t0);
        let s = match answer {
            Some(Ok(stat)) => {
                op.outcome = Outcome::Ok;
                op.ret_us = Some(ret_us);
                op.mzxid = Some(stat.mzxid);
                op.version = Some(stat.version);
                None
            }
            other => Some(Self::failed(&mut op, other.and_then(Result::err), ret_us)),
        };
        self.push(log, op);
        s
    }

    async fn get(
        &self,
        c: &Conn,
        k: u64,
        sync: bool,
        watch: bool,
        pending: &mut Vec<Pending>,
        log: &mut ClientLog,
    ) -> Option<Said> {
        let path = self.key(k);
        let watch = watch && !pending.iter().any(|p| p.path == path && p.kind == Watch::Data);
        let mut op = self.new_op(c, F::Get, &path, us(self.t0));
        op.sync = sync;
        let answer = timed(async {
            if sync {
                c.client.sync(&path).await?;
            }
            if watch {
                let (d, s, w) = c.client.get_and_watch_data(&path).await?;
                Ok((d, s, Some(w)))
            } else {
                let (d, s) = c.client.get_data(&path).await?;
                Ok((d, s, None))
            }
        })
        .await;
        let ret_us = us(self.t0);
        match answer {
            Some(Ok((data, stat, w))) => {
                op.outcome = Outcome::Ok;
                op.ret_us = Some(ret_us);
                op.value = Some(String::from_utf8_lossy(&data).into_owned());
                op.version = Some(stat.version);
                op.mzxid = Some(stat.mzxid);
                op.czxid = Some(stat.czxid);
                self.read_done(c, op, stat.mzxid, Watch::Data, w, pending, log);
                None
            }
            Some(Err(zkc::Error::NoNode)) => {
                op.outcome = Outcome::Ok;
                op.ret_us = Some(ret_us);
                op.absent = true;
                self.push(log, op);
                None
            }
            other => {
                let s = Self::failed(&mut op, other.and_then(Result::err), ret_us);
                if op.outcome == Outcome::Unknown {
                    op.outcome = Outcome::Fail; // a read without an answer changed nothing
                    op.ret_us = Some(ret_us);
                }
                self.push(log, op);
                Some(s)
            }
        }
    }

    /// Record a read that was answered: the events that came with it, in their place, and its watch.
    #[expect(
        clippy::too_many_arguments,
        reason = "the read, its watch and the session's pending watches"
    )]
    fn read_done(
        &self,
        c: &Conn,
        mut op: ZkOp,
        shown: i64,
        kind: Watch,
        watcher: Option<zkc::OneshotWatcher>,
        pending: &mut Vec<Pending>,
        log: &mut ClientLog,
    ) {
        let path = op.path.clone();
        // Events that already show in this read go before it; the others after it.
        self.events(c, pending, log, |p| p.path == path && p.kind == kind && shown > p.saw);
        if watcher.is_some() {
            op.watch = Some(kind);
        }
        let id = self.push(log, op);
        self.events(c, pending, log, |_| true);
        if let Some(w) = watcher {
            pending.push(Pending {
                reg: id,
                path,
                kind,
                saw: shown,
                fut: Box::pin(w.changed()),
            });
        }
    }

    async fn children(
        &self,
        c: &Conn,
        sync: bool,
        watch: bool,
        pending: &mut Vec<Pending>,
        log: &mut ClientLog,
    ) -> Option<Said> {
        let path = format!("{}/eph", self.base);
        let watch = watch && !pending.iter().any(|p| p.path == path && p.kind == Watch::Child);
        let mut op = self.new_op(c, F::Children, &path, us(self.t0));
        op.sync = sync;
        let answer = timed(async {
            if sync {
                c.client.sync(&path).await?;
            }
            if watch {
                let (l, s, w) = c.client.get_and_watch_children(&path).await?;
                Ok((l, s, Some(w)))
            } else {
                let (l, s) = c.client.get_children(&path).await?;
                Ok((l, s, None))
            }
        })
        .await;
        let ret_us = us(self.t0);
        match answer {
            Some(Ok((mut list, stat, w))) => {
                list.sort();
                op.outcome = Outcome::Ok;
                op.ret_us = Some(ret_us);
                op.children = Some(list);
                op.pzxid = Some(stat.pzxid);
                self.read_done(c, op, stat.pzxid, Watch::Child, w, pending, log);
                None
            }
            other => {
                let s = Self::failed(&mut op, other.and_then(Result::err), ret_us);
                op.outcome = Outcome::Fail;
                op.ret_us = Some(ret_us);
                self.push(log, op);
                Some(s)
            }
        }
    }

    async fn create(&self, c: &Conn, path: &str, ephemeral: bool, n: u64, log: &mut ClientLog) -> Option<Said> {
        let value = format!("c{}-{n}", self.id);
        let mut op = self.new_op(c, F::Create, path, us(self.t0));
        op.value = Some(value.clone());
        op.ephemeral = ephemeral;
        let mode = if ephemeral {
            zkc::CreateMode::Ephemeral
        } else {
            zkc::CreateMode::Persistent
        };
        let answer = timed(
            c.client
                .create(path, value.as_bytes(), &mode.with_acls(zkc::Acls::anyone_all())),
        )
        .await;
        let ret_us = us(self.t0);
        let s = match answer {
            Some(Ok((stat, _))) => {
                op.outcome = Outcome::Ok;
                op.ret_us = Some(ret_us);
                op.czxid = (stat.czxid > 0).then_some(stat.czxid);
                None
            }
            other => Some(Self::failed(&mut op, other.and_then(Result::err), ret_us)),
        };
        self.push(log, op);
        s
    }

    async fn delete(&self, c: &Conn, path: &str, log: &mut ClientLog) -> Option<Said> {
        let mut op = self.new_op(c, F::Delete, path, us(self.t0));
        let answer = timed(c.client.delete(path, None)).await;
        let ret_us = us(self.t0);
        let s = match answer {
            Some(Ok(())) => {
                op.outcome = Outcome::Ok;
                op.ret_us = Some(ret_us);
                None
            }
            other => Some(Self::failed(&mut op, other.and_then(Result::err), ret_us)),
        };
        self.push(log, op);
        s
    }

    /// One transaction: set a shared znode and create a persistent one.
    async fn multi(&self, c: &Conn, k: u64, path: &str, n: u64, log: &mut ClientLog) -> Option<Said> {
        let key = self.key(k);
        let value = format!("c{}-{n}", self.id);
        let mut op = self.new_op(c, F::Multi, &key, us(self.t0));
        let mut w = c.client.new_multi_writer();
        let built = w.add_set_data(&key, value.as_bytes(), None).and_then(|()| {
            w.add_create(
                path,
                value.as_bytes(),
                &zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all()),
            )
        });
        if built.is_err() {
            return None;
        }
        let answer = tokio::time::timeout(OP_TIMEOUT, w.commit()).await.ok();
        let ret_us = us(self.t0);
        let mut set = SubOp {
            f: F::Set,
            path: key.clone(),
            value: Some(value.clone()),
            version: None,
            ephemeral: false,
        };
        let create = SubOp {
            f: F::Create,
            path: path.to_string(),
            value: Some(value),
            version: None,
            ephemeral: false,
        };
        let s = match answer {
            Some(Ok(results)) => {
                op.outcome = Outcome::Ok;
                op.ret_us = Some(ret_us);
                for r in results {
                    match r {
                        zkc::MultiWriteResult::SetData { stat } => {
                            op.mzxid = Some(stat.mzxid);
                            set.version = Some(stat.version);
                        }
                        zkc::MultiWriteResult::Create { stat, .. } if stat.czxid > 0 => op.czxid = Some(stat.czxid),
                        _ => {}
                    }
                }
                None
            }
            Some(Err(zkc::MultiWriteError::OperationFailed { source, .. })) => {
                Some(Self::failed(&mut op, Some(source), ret_us))
            }
            Some(Err(zkc::MultiWriteError::RequestFailed { source })) => {
                Some(Self::failed(&mut op, Some(source), ret_us))
            }
            None => Some(Self::failed(&mut op, None, ret_us)),
        };
        op.ops = vec![set, create];
        self.push(log, op);
        s
    }
}

/// The run's record of an operation (for the counts, the timeline and the excerpt).
fn record_of(client: u32, base: &str, o: &ZkOp) -> Record {
    let short = o.path.strip_prefix(base).unwrap_or(&o.path).trim_start_matches('/');
    let mut value = String::new();
    if o.sync {
        value += "after sync ";
    }
    if let Some(v) = &o.value {
        value += &format!("{v} ");
    }
    if o.absent {
        value += "no node ";
    }
    if let Some(l) = &o.children {
        value += &format!("[{}] ", l.len());
    }
    for (name, z) in [
        ("czxid", o.czxid),
        ("mzxid", o.mzxid),
        ("pzxid", o.pzxid),
        ("zxid", o.zxid),
    ] {
        if let Some(z) = z {
            value += &format!("{name}={} ", crate::model::zkmodel::hex(z));
        }
    }
    value += &format!("session {} node {}", o.session, o.node.unwrap_or(0));
    Record {
        id: o.id as usize,
        client,
        f: if o.sync { "sync+getData" } else { o.f.as_str() },
        key: short.to_string(),
        call_us: o.call_us,
        ret_us: o.ret_us,
        gave_up_us: None,
        outcome: match o.outcome {
            Outcome::Ok => RecOutcome::Ok,
            Outcome::Fail => RecOutcome::Fail,
            Outcome::Unknown => RecOutcome::Unknown,
        },
        value,
        expect: None,
        error: o.error.clone(),
    }
}
