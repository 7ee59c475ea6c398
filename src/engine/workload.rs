//! The workloads of `chaos` and `run`: C real clients, each with its own session, do operations through the
//! connect string until told to stop, and every operation is recorded with its invocation and completion
//! time and its outcome (ok, failed, or unknown when no answer came). Then the history is checked:
//! - register: versioned `setData` (compare-and-set) and `sync`+`getData` on a few znodes, checked for
//!   linearizability (`model::linearize`); one register per 4 clients, at least 3;
//! - sequential: sequential creates, checked on every node as `verify` checks them (present once, with their
//!   data), plus each client's acknowledged creates in its issue order;
//! - queue: producers enqueue sequential znodes, consumers take the lowest and delete it; no acknowledged item
//!   may be lost or delivered twice;
//! - zk: sessions on every node doing reads without sync, sync reads, watches, ephemerals, multis and moves
//!   (`engine::zkload`), checked against ZooKeeper's own model (`model::zkmodel`), not linearizability.
//!
//! Each operation is appended to the run's `history.ndjson` as it completes (a thread writes them), so a run
//! whose check is killed or runs out of memory still leaves its history on disk.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use serde::Serialize;
use zookeeper_client as zkc;

pub(super) use super::record::ClientLog;
pub use super::record::{Outcome, Record};
use crate::error::{Error, Result};
use crate::model::linearize::{self, Call, Decision, Reg, Ret};
use crate::model::rng::Rng;
use crate::model::spec::ClusterSpec;
pub use crate::model::workload::Kind;
use crate::model::zkmodel::{self, ZkOp};
use crate::zk::client as zk;

/// Where the workloads' znodes live.
pub const ROOT: &str = "/zkdev-chaos";
/// The registers of the register workload: one per 4 clients, at least 3. Few clients per register keep
/// each register's history easy to check.
pub fn keys_for(clients: u32) -> usize {
    (clients as usize).div_ceil(4).max(3)
}
/// No answer within this long: the outcome is unknown.
const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// A workload under way.
pub struct Running {
    /// The workload running.
    pub kind: Kind,
    /// The znode under which it works.
    pub base: String,
    /// How many clients.
    pub clients: u32,
    t0: Instant,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<ClientLog>>,
    journal: Option<Journal>,
}

/// The thread that appends each completed operation to `history.ndjson`, one JSON object a line.
struct Journal {
    tx: mpsc::Sender<String>,
    thread: std::thread::JoinHandle<std::result::Result<(), String>>,
}

impl Journal {
    fn open(path: &Path) -> Result<Journal> {
        let file = std::fs::File::create(path).map_err(|e| Error::io("cannot create", path, e))?;
        let (tx, rx) = mpsc::channel::<String>();
        let shown = path.display().to_string();
        let thread = std::thread::spawn(move || {
            let mut w = std::io::BufWriter::new(file);
            let put = |line: &String, w: &mut std::io::BufWriter<std::fs::File>| -> std::io::Result<()> {
                w.write_all(line.as_bytes())?;
                w.write_all(b"\n")
            };
            let fail = |e: std::io::Error| format!("cannot append to {shown}: {e}");
            while let Ok(r) = rx.recv() {
                put(&r, &mut w).map_err(fail)?;
                while let Ok(r) = rx.try_recv() {
                    put(&r, &mut w).map_err(fail)?;
                }
                w.flush().map_err(fail)?;
            }
            w.flush().map_err(fail)
        });
        Ok(Journal { tx, thread })
    }
}

/// The history of a stopped workload.
#[derive(Debug, Serialize)]
pub struct History {
    /// The workload that ran.
    pub kind: Kind,
    /// The znode under which it worked.
    pub base: String,
    /// How many clients.
    pub clients: u32,
    /// How long it ran.
    pub duration_ms: u64,
    /// In the order the operations completed (`id`).
    pub records: Vec<Record>,
    /// The register operations, for the linearizability checker.
    #[serde(skip)]
    pub register: Vec<linearize::Op>,
    /// The zk workload's operations, for the ZooKeeper model (also the lines of history.ndjson).
    #[serde(skip)]
    pub zk: Vec<ZkOp>,
    /// Why `history.ndjson` could not be written to the end, if it could not.
    #[serde(skip)]
    pub journal_error: Option<String>,
}

impl History {
    /// The record with this id.
    pub fn record(&self, id: usize) -> Option<&Record> {
        self.records
            .binary_search_by_key(&id, |r| r.id)
            .ok()
            .map(|i| &self.records[i])
    }
}

fn us(t0: Instant) -> u64 {
    t0.elapsed().as_micros() as u64
}

async fn connect(to: &str) -> Result<zkc::Client> {
    zk::connect(to, Duration::from_secs(10), OP_TIMEOUT).await
}

async fn timed<T>(
    f: impl std::future::Future<Output = std::result::Result<T, zkc::Error>>,
) -> Option<std::result::Result<T, zkc::Error>> {
    tokio::time::timeout(OP_TIMEOUT, f).await.ok()
}

/// How to run a workload.
#[derive(Debug, Clone)]
pub struct Load<'a> {
    /// Which workload.
    pub kind: Kind,
    /// How many clients, each with its own session.
    pub clients: u32,
    /// Operations per second per client (0: as fast as each can).
    pub rate: u32,
    /// Connect to the nodes' own client ports, around a `--net` cluster's client proxies.
    pub direct: bool,
    /// Append every operation to this file as it completes.
    pub history: Option<&'a Path>,
}

/// Make the workload's znodes and start its clients, connected as `ClusterSpec::workload_connect_string`
/// says.
pub async fn start(spec: &ClusterSpec, load: &Load<'_>) -> Result<Running> {
    let Load {
        kind,
        clients,
        rate,
        direct,
        history,
    } = *load;
    let journal = history.map(Journal::open).transpose()?;
    let keys = keys_for(clients);
    let connect_to = spec.workload_connect_string(direct);
    let setup = connect(&connect_to).await?;
    zk::ensure(&setup, ROOT).await?;
    let base = format!("{ROOT}/{}-{}", kind.as_str(), crate::os::clock::now_ms());
    zk::ensure(&setup, &base).await?;
    match kind {
        Kind::Register => {
            for k in 0..keys {
                setup
                    .create(&format!("{base}/r{k}"), b"0", &zk::open_acl())
                    .await
                    .map_err(|e| Error::failed(format!("cannot create {base}/r{k}: {e}")))?;
            }
        }
        Kind::Queue => zk::ensure(&setup, &format!("{base}/q")).await?,
        Kind::Zk => super::zkload::prepare(&setup, &base).await?,
        Kind::Sequential => {}
    }
    drop(setup);
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let every = (rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(rate)));
    let ids = Arc::new(AtomicUsize::new(0));
    let nodes = super::zkload::node_addresses(spec, direct);
    let tasks = (0..clients)
        .map(|c| {
            if kind == Kind::Zk {
                let client = super::zkload::ZkClient {
                    id: c,
                    nodes: nodes.clone(),
                    base: base.clone(),
                    t0,
                    stop: stop.clone(),
                    every,
                    ids: ids.clone(),
                    journal: journal.as_ref().map(|j| j.tx.clone()),
                };
                return tokio::spawn(client.run());
            }
            let client = Worker {
                id: c,
                kind,
                consumer: kind == Kind::Queue && c % 2 == 1,
                connect: connect_to.clone(),
                base: base.clone(),
                t0,
                stop: stop.clone(),
                every,
                keys,
                ids: ids.clone(),
                journal: journal.as_ref().map(|j| j.tx.clone()),
            };
            tokio::spawn(client.run())
        })
        .collect();
    Ok(Running {
        kind,
        base,
        clients,
        t0,
        stop,
        tasks,
        journal,
    })
}

impl Running {
    /// Time since the workload started.
    pub fn elapsed(&self) -> Duration {
        self.t0.elapsed()
    }

    /// Stop every client (each finishes or abandons its operation in flight) and merge their histories.
    pub async fn stop(self) -> History {
        self.stop.store(true, Ordering::SeqCst);
        let duration_ms = self.t0.elapsed().as_millis() as u64;
        let mut records = Vec::new();
        let mut register = Vec::new();
        let mut zk = Vec::new();
        for t in self.tasks {
            if let Ok(log) = t.await {
                records.extend(log.records);
                register.extend(log.register);
                zk.extend(log.zk);
            }
        }
        zk.sort_by_key(|o: &ZkOp| o.id);
        // Ids were given in completion order, across clients: the same in the records, history.ndjson and
        // the checker's operations.
        records.sort_by_key(|r| r.id);
        let journal_error = match self.journal {
            Some(Journal { tx, thread }) => {
                drop(tx);
                match tokio::task::spawn_blocking(move || thread.join()).await {
                    Ok(Ok(Ok(()))) => None,
                    Ok(Ok(Err(e))) => Some(e),
                    _ => Some("the thread writing history.ndjson died".into()),
                }
            }
            None => None,
        };
        History {
            kind: self.kind,
            base: self.base,
            clients: self.clients,
            duration_ms,
            records,
            register,
            zk,
            journal_error,
        }
    }
}

struct Worker {
    id: u32,
    kind: Kind,
    consumer: bool,
    connect: String,
    base: String,
    t0: Instant,
    stop: Arc<AtomicBool>,
    every: Option<Duration>,
    keys: usize,
    /// The next operation's id, shared by every client.
    ids: Arc<AtomicUsize>,
    journal: Option<mpsc::Sender<String>>,
}

impl Worker {
    async fn run(self) -> ClientLog {
        let mut log = ClientLog::default();
        let mut rng = Rng::new(crate::os::random::u64());
        let mut session: Option<zkc::Client> = None;
        // The version this client last saw of each register (-1: unknown, read it first).
        let mut seen = vec![0i32; self.keys];
        let mut n: u64 = 0;
        let mut tick = self.every.map(tokio::time::interval);
        if let Some(t) = tick.as_mut() {
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        while !self.stop.load(Ordering::SeqCst) {
            if let Some(t) = tick.as_mut() {
                t.tick().await;
            }
            if session.is_none() {
                match connect(&self.connect).await {
                    Ok(c) => session = Some(c),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
            }
            let c = session.as_ref().expect("connected above");
            n += 1;
            let before = log.records.len();
            let lost = match self.kind {
                Kind::Register => self.register_op(c, &mut rng, &mut seen, n, &mut log).await,
                Kind::Sequential => {
                    self.create_op(c, "create", &format!("{}/w-", self.base), n, &mut log)
                        .await
                }
                Kind::Queue if !self.consumer => {
                    self.create_op(c, "enqueue", &format!("{}/q/item-", self.base), n, &mut log)
                        .await
                }
                Kind::Queue => self.dequeue_op(c, &mut log).await,
                Kind::Zk => unreachable!("the zk workload runs its own clients (zkload::ZkClient)"),
            };
            if let Some(r) = log.records.last_mut().filter(|r| r.outcome == Outcome::Unknown) {
                r.gave_up_us.get_or_insert(us(self.t0));
            }
            if let Some(tx) = &self.journal {
                for r in &log.records[before..] {
                    if let Ok(line) = serde_json::to_string(r) {
                        let _ = tx.send(line); // the writer reports its own failure
                    }
                }
            }
            if lost {
                session = None;
            }
        }
        log
    }

    /// A new record; its index in this client's log (its `id` is the run's).
    fn record(&self, log: &mut ClientLog, f: &'static str, key: &str, call_us: u64) -> usize {
        let at = log.records.len();
        let id = self.ids.fetch_add(1, Ordering::SeqCst);
        log.records.push(Record {
            id,
            client: self.id,
            f,
            key: key.to_string(),
            call_us,
            ret_us: None,
            gave_up_us: None,
            outcome: Outcome::Unknown,
            value: String::new(),
            expect: None,
            error: None,
        });
        at
    }

    /// Half reads (sync + getData), half CASes on the version this client saw last. True when the session
    /// is gone.
    async fn register_op(&self, c: &zkc::Client, rng: &mut Rng, seen: &mut [i32], n: u64, log: &mut ClientLog) -> bool {
        let k = rng.range(0, self.keys as u64 - 1) as usize;
        let key = format!("r{k}");
        let path = format!("{}/{key}", self.base);
        // A client whose CAS was refused reads before it tries that register again.
        let read = seen[k] < 0 || rng.range(0, 1) == 0;
        let call_us = us(self.t0);
        if read {
            let answer = timed(async {
                c.sync(&path).await?;
                c.get_data(&path).await
            })
            .await;
            let ret_us = us(self.t0);
            let at = self.record(log, "read", &key, call_us);
            let r = &mut log.records[at];
            let id = r.id;
            match answer {
                Some(Ok((data, stat))) => {
                    let value = String::from_utf8_lossy(&data).parse::<u64>().unwrap_or(u64::MAX);
                    seen[k] = stat.version;
                    r.ret_us = Some(ret_us);
                    r.outcome = Outcome::Ok;
                    r.value = format!("{value}@{}", stat.version);
                    log.register.push(linearize::Op {
                        id,
                        client: self.id,
                        key,
                        call_us,
                        ret_us: Some(ret_us),
                        call: Call::Read,
                        ret: Ret::Read(Reg {
                            value,
                            version: stat.version,
                        }),
                    });
                    false
                }
                // "No node" is an answer: the register is not there.
                Some(Err(zkc::Error::NoNode)) => {
                    seen[k] = -1;
                    r.ret_us = Some(ret_us);
                    r.outcome = Outcome::Fail;
                    r.value = "absent".into();
                    r.error = Some(zkc::Error::NoNode.to_string());
                    log.register.push(linearize::Op {
                        id,
                        client: self.id,
                        key,
                        call_us,
                        ret_us: Some(ret_us),
                        call: Call::Read,
                        ret: Ret::Absent,
                    });
                    false
                }
                // A read without an answer constrains nothing: recorded, not checked.
                Some(Err(e)) => {
                    r.ret_us = Some(ret_us);
                    r.outcome = Outcome::Fail;
                    r.error = Some(e.to_string());
                    session_lost(&e)
                }
                None => {
                    r.error = Some("no answer within 2 s".into());
                    false
                }
            }
        } else {
            // Values are unique: the client in the high bits, its count below.
            let value = (u64::from(self.id) + 1) << 32 | n;
            let expect = seen[k];
            let answer = timed(c.set_data(&path, value.to_string().as_bytes(), Some(expect))).await;
            let ret_us = us(self.t0);
            let at = self.record(log, "cas", &key, call_us);
            let r = &mut log.records[at];
            let id = r.id;
            r.value = value.to_string();
            r.expect = Some(expect);
            let (ret, lost) = match answer {
                Some(Ok(stat)) => {
                    seen[k] = stat.version;
                    r.outcome = Outcome::Ok;
                    r.ret_us = Some(ret_us);
                    (Ret::Ok, false)
                }
                Some(Err(zkc::Error::BadVersion)) => {
                    seen[k] = -1;
                    r.outcome = Outcome::Fail;
                    r.ret_us = Some(ret_us);
                    r.error = Some(zkc::Error::BadVersion.to_string());
                    (Ret::Failed, false)
                }
                // A definite answer too: it did not apply, and the register is not there.
                Some(Err(zkc::Error::NoNode)) => {
                    seen[k] = -1;
                    r.outcome = Outcome::Fail;
                    r.ret_us = Some(ret_us);
                    r.error = Some(zkc::Error::NoNode.to_string());
                    (Ret::Absent, false)
                }
                // Connection loss, expiry, no answer: the request may have been applied.
                other => (Ret::Unknown, left_unknown(r, other.and_then(Result::err))),
            };
            log.register.push(linearize::Op {
                id,
                client: self.id,
                key,
                call_us,
                ret_us: (ret != Ret::Unknown).then_some(ret_us),
                call: Call::Cas { expect, value },
                ret,
            });
            lost
        }
    }

    /// A sequential create whose data names the client and its count.
    async fn create_op(&self, c: &zkc::Client, f: &'static str, prefix: &str, n: u64, log: &mut ClientLog) -> bool {
        let data = format!("c{}-{n}", self.id);
        let call_us = us(self.t0);
        let mode = zkc::CreateMode::PersistentSequential.with_acls(zkc::Acls::anyone_all());
        let answer = timed(c.create(prefix, data.as_bytes(), &mode)).await;
        let ret_us = us(self.t0);
        let at = self.record(log, f, &data, call_us);
        let r = &mut log.records[at];
        match answer {
            Some(Ok((_, seq))) => {
                r.outcome = Outcome::Ok;
                r.ret_us = Some(ret_us);
                r.value = seq.to_string();
                false
            }
            other => left_unknown(r, other.and_then(Result::err)),
        }
    }

    /// Take the lowest item: read it, delete it; a delete that succeeds delivers it.
    async fn dequeue_op(&self, c: &zkc::Client, log: &mut ClientLog) -> bool {
        let q = format!("{}/q", self.base);
        let Some(Ok(mut items)) = timed(c.list_children(&q)).await else {
            return false;
        };
        items.sort();
        let Some(item) = items.into_iter().next() else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            return false;
        };
        let path = format!("{q}/{item}");
        let Some(Ok((data, _))) = timed(c.get_data(&path)).await else {
            return false;
        };
        let data = String::from_utf8_lossy(&data).into_owned();
        let call_us = us(self.t0);
        let answer = timed(c.delete(&path, None)).await;
        let ret_us = us(self.t0);
        let at = self.record(log, "dequeue", &data, call_us);
        let r = &mut log.records[at];
        r.value = item;
        match answer {
            Some(Ok(())) => {
                r.outcome = Outcome::Ok;
                r.ret_us = Some(ret_us);
                false
            }
            // Another consumer took it first.
            Some(Err(zkc::Error::NoNode)) => {
                r.outcome = Outcome::Fail;
                r.ret_us = Some(ret_us);
                false
            }
            other => left_unknown(r, other.and_then(Result::err)),
        }
    }
}

/// An operation without a definite answer (the connection went, the session expired, or no answer within
/// 2 s): its outcome stays unknown, as it may have been applied. True when the client needs a new session.
fn left_unknown(r: &mut Record, error: Option<zkc::Error>) -> bool {
    match error {
        Some(e) => {
            r.error = Some(e.to_string());
            session_lost(&e)
        }
        None => {
            r.error = Some("no answer within 2 s".into());
            false
        }
    }
}

fn session_lost(e: &zkc::Error) -> bool {
    matches!(
        e,
        zkc::Error::SessionExpired | zkc::Error::ClientClosed | zkc::Error::ConnectionLoss
    )
}

/// What the check found.
#[derive(Debug, Serialize)]
pub struct Verdict {
    /// No violation found.
    pub ok: bool,
    /// One line: what was checked and found.
    pub summary: String,
    /// The problems, each a sentence.
    pub problems: Vec<String>,
    /// The smallest excerpt of the history that shows the first problem (record ids).
    pub excerpt: Vec<usize>,
    /// How long the check took.
    pub check_ms: f64,
    /// Set when the check could not decide: why (the history was too large for the checker's budget).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inconclusive: Option<String>,
}

/// Check a history as its workload promises.
pub async fn check(spec: &ClusterSpec, h: &History) -> Result<Verdict> {
    let t = Instant::now();
    let mut v = match h.kind {
        Kind::Register => check_register(h),
        Kind::Sequential => check_sequential(spec, h).await?,
        Kind::Queue => check_queue(spec, h).await?,
        Kind::Zk => check_zk(h),
    };
    v.check_ms = (t.elapsed().as_secs_f64() * 1e5).round() / 100.0;
    Ok(v)
}

fn check_register(h: &History) -> Verdict {
    let r = linearize::check(&h.register, Reg { value: 0, version: 0 }, linearize::Budget::default());
    let unknown = h.register.iter().filter(|o| o.ret == Ret::Unknown).count();
    let key = r.key.clone().unwrap_or_default();
    let too_large = format!("inconclusive: too large to check within {}", r.budget);
    let summary = format!(
        "{} on {} ({unknown} with unknown outcome): {}",
        crate::model::words::count(r.ops, "operation"),
        crate::model::words::count(r.keys, "register"),
        match r.decision {
            Decision::Linearizable => "linearizable",
            Decision::NotLinearizable => "NOT linearizable",
            Decision::TooLarge => &too_large,
        }
    );
    let problems = match (r.decision, &r.reason) {
        (Decision::Linearizable, _) => Vec::new(),
        (Decision::NotLinearizable, Some(reason)) => vec![format!("register {key}: {reason}")],
        (Decision::NotLinearizable, None) => vec![format!(
            "register {key}: no order of its operations consistent with real time explains every answer; \
             the {} below cannot be linearized together",
            crate::model::words::count(r.excerpt.len(), "operation")
        )],
        (Decision::TooLarge, _) => vec![format!(
            "register {key}: its history is too large to check within {}; no violation was found, none was ruled out",
            r.budget
        )],
    };
    Verdict {
        ok: r.linearizable(),
        inconclusive: (r.decision == Decision::TooLarge).then_some(too_large),
        summary,
        problems,
        excerpt: r.excerpt,
        check_ms: 0.0,
    }
}

/// The zk workload's history against ZooKeeper's own model.
fn check_zk(h: &History) -> Verdict {
    let v = zkmodel::check(&h.zk);
    let mut problems = Vec::new();
    for x in v.violations.iter().take(3) {
        problems.push(format!("{}: {}", x.name, x.message));
        if let Some(cause) = &x.cause {
            problems.push(format!("likely cause: {cause}"));
        }
        problems.extend(zkmodel::excerpt_lines(&h.zk, x).into_iter().map(|l| format!("  {l}")));
    }
    if v.violations.len() > 3 {
        problems.push(format!("... and {} more", v.violations.len() - 3));
    }
    Verdict {
        ok: v.valid,
        summary: v.summary(),
        problems,
        excerpt: v
            .violations
            .first()
            .map(|x| x.excerpt.iter().map(|id| *id as usize).collect())
            .unwrap_or_default(),
        check_ms: 0.0,
        inconclusive: None,
    }
}

fn seq_of(name: &str) -> Option<i64> {
    name.rsplit('-').next()?.parse().ok()
}

/// Every node, asked alone after a sync: the children of `dir` and their data.
async fn on_every_node(spec: &ClusterSpec, dir: &str) -> Result<Vec<(u32, HashMap<String, String>)>> {
    let mut out = Vec::new();
    for n in &spec.nodes {
        let c = zk::connect(
            &n.client_addr().to_string(),
            Duration::from_secs(10),
            Duration::from_secs(10),
        )
        .await?;
        c.sync(dir)
            .await
            .map_err(|e| Error::failed(format!("node {}: sync {dir}: {e}", n.id)))?;
        let children = c
            .list_children(dir)
            .await
            .map_err(|e| Error::failed(format!("node {}: list {dir}: {e}", n.id)))?;
        let mut data = HashMap::new();
        for name in children {
            if let Ok((d, _)) = c.get_data(&format!("{dir}/{name}")).await {
                data.insert(name, String::from_utf8_lossy(&d).into_owned());
            }
        }
        out.push((n.id, data));
    }
    Ok(out)
}

async fn check_sequential(spec: &ClusterSpec, h: &History) -> Result<Verdict> {
    let acked: Vec<&Record> = h.records.iter().filter(|r| r.outcome == Outcome::Ok).collect();
    let mut problems = Vec::new();
    let mut excerpt = Vec::new();
    // Every node, as verify checks its writes: each acknowledged create present once, with its data.
    let reach = super::writer::Reach::plain();
    let as_verify: Vec<(u64, String, String)> = acked
        .iter()
        .map(|r| (r.id as u64, format!("w-{}", r.value), r.key.clone()))
        .collect();
    for n in &spec.nodes {
        let (check, missing) = super::writer::check_node(&reach, n.id, reach.node_addr(n), &h.base, &as_verify).await?;
        if check.missing + check.wrong_data + check.duplicated > 0 {
            problems.push(format!(
                "node {}: {} missing ({}), {} with other data, {} created twice",
                n.id,
                crate::model::words::count(check.missing, "acknowledged create"),
                missing.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                check.wrong_data,
                check.duplicated
            ));
            excerpt.extend(
                as_verify
                    .iter()
                    .filter(|w| missing.contains(&w.1))
                    .map(|w| w.0 as usize),
            );
        }
    }
    let (fifo, ids) = out_of_issue_order(&acked);
    problems.extend(fifo);
    excerpt.extend(ids);
    let summary = format!(
        "{} acknowledged of {} attempted, checked on {} and in each client's order: {}",
        crate::model::words::count(acked.len(), "create"),
        h.records.len(),
        crate::model::words::count(spec.nodes.len(), "node"),
        if problems.is_empty() {
            "all present once, in order"
        } else {
            "VIOLATED"
        }
    );
    excerpt.sort_unstable();
    excerpt.dedup();
    excerpt.truncate(20);
    Ok(Verdict {
        ok: problems.is_empty(),
        summary,
        problems: first_few(problems),
        excerpt,
        check_ms: 0.0,
        inconclusive: None,
    })
}

/// Each client's acknowledged creates, in the order it issued them, must have got increasing sequence
/// numbers: the problems, and the pairs of records that show them.
fn out_of_issue_order(acked: &[&Record]) -> (Vec<String>, Vec<usize>) {
    let (mut problems, mut excerpt) = (Vec::new(), Vec::new());
    let mut last: BTreeMap<u32, (i64, usize)> = BTreeMap::new();
    for r in acked {
        let seq = seq_of(&r.value).unwrap_or(-1);
        if let Some((prev, prev_id)) = last.get(&r.client) {
            if seq <= *prev {
                problems.push(format!(
                    "client {}: create {} got sequence {seq} after its earlier create got {prev}",
                    r.client, r.key
                ));
                excerpt.extend([*prev_id, r.id]);
            }
        }
        last.insert(r.client, (seq, r.id));
    }
    (problems, excerpt)
}

async fn check_queue(spec: &ClusterSpec, h: &History) -> Result<Verdict> {
    let dir = format!("{}/q", h.base);
    // What is left in the queue, as every node sees it; they must agree, and the first stands for all.
    let nodes = on_every_node(spec, &dir).await?;
    let mut problems = Vec::new();
    let left: HashSet<String> = nodes
        .first()
        .map(|(_, d)| d.values().cloned().collect())
        .unwrap_or_default();
    for (id, d) in &nodes[1..] {
        let here: HashSet<String> = d.values().cloned().collect();
        if here != left {
            problems.push(format!("node {id} sees a different queue than node {}", nodes[0].0));
        }
    }
    let (found, mut excerpt, summary) = judge_queue(&h.records, &left);
    problems.extend(found);
    excerpt.sort_unstable();
    excerpt.truncate(20);
    Ok(Verdict {
        ok: problems.is_empty(),
        summary,
        problems: first_few(problems),
        excerpt,
        check_ms: 0.0,
        inconclusive: None,
    })
}

/// The queue's promise over the history and what is left in the queue: no acknowledged item lost (neither
/// delivered, nor left, nor taken by a delete whose outcome is unknown), none delivered twice (two deletes
/// succeeded, or one did and it is still there). The problems, the records that show them, a summary.
fn judge_queue(records: &[Record], left: &HashSet<String>) -> (Vec<String>, Vec<usize>, String) {
    let mut problems = Vec::new();
    let mut delivered: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut maybe: HashSet<&str> = HashSet::new();
    for r in records.iter().filter(|r| r.f == "dequeue") {
        match r.outcome {
            Outcome::Ok => delivered.entry(r.key.as_str()).or_default().push(r.id),
            Outcome::Unknown => {
                maybe.insert(r.key.as_str());
            }
            Outcome::Fail => {}
        }
    }
    let mut excerpt = Vec::new();
    let enqueued: Vec<&Record> = records
        .iter()
        .filter(|r| r.f == "enqueue" && r.outcome == Outcome::Ok)
        .collect();
    let mut lost = 0;
    for r in &enqueued {
        let item = r.key.as_str();
        let got = delivered.get(item).map_or(0, Vec::len);
        if got == 0 && !left.contains(item) && !maybe.contains(item) {
            lost += 1;
            problems.push(format!(
                "item {item} was acknowledged but never delivered and is not in the queue"
            ));
            excerpt.push(r.id);
        }
    }
    let mut twice = 0;
    for (item, ids) in &delivered {
        if ids.len() > 1 || left.contains(*item) {
            twice += 1;
            problems.push(format!(
                "item {item} was delivered {}{}",
                crate::model::words::count(ids.len(), "time"),
                if left.contains(*item) {
                    " and is still in the queue"
                } else {
                    ""
                }
            ));
            excerpt.extend(ids);
        }
    }
    let summary = format!(
        "{} acknowledged, {} delivered, {} left in the queue: {lost} lost, {twice} delivered twice",
        crate::model::words::count(enqueued.len(), "item"),
        delivered.len(),
        left.len()
    );
    (problems, excerpt, summary)
}

fn first_few(mut problems: Vec<String>) -> Vec<String> {
    let n = problems.len();
    if n > 10 {
        problems.truncate(10);
        problems.push(format!("... and {} more", n - 10));
    }
    problems
}

/// Remove the workload's znodes (after a passing check; a failing one keeps them for a look). Each attempt
/// syncs first (the node reached may be one the run had paused, still catching up) and is repeated, on a
/// fresh session, until `base` is gone or 15 s have passed: a session lost halfway (a node the run stopped,
/// a supervisor replaced) must not leave znodes behind. Returns whether they are gone.
pub async fn clean_up(spec: &ClusterSpec, base: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(c) = connect(&spec.connect_string()).await {
            let _ = c.sync(base).await;
            remove_tree(&c, base).await;
            let gone = matches!(c.list_children(base).await, Err(zkc::Error::NoNode));
            if gone {
                let _ = c.delete(ROOT, None).await; // fails while another run's znodes are kept there: fine
                return true;
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn remove_tree(c: &zkc::Client, path: &str) {
    let mut stack = vec![(path.to_string(), false)];
    while let Some((p, expanded)) = stack.pop() {
        if expanded {
            let _ = c.delete(&p, None).await;
            continue;
        }
        stack.push((p.clone(), true));
        if let Ok(children) = c.list_children(&p).await {
            for name in children {
                stack.push((format!("{p}/{name}"), false));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: usize, client: u32, f: &'static str, key: &str, outcome: Outcome, value: &str) -> Record {
        Record {
            id,
            client,
            f,
            key: key.into(),
            call_us: id as u64 * 10,
            ret_us: (outcome != Outcome::Unknown).then_some(id as u64 * 10 + 5),
            gave_up_us: None,
            outcome,
            value: value.into(),
            expect: None,
            error: None,
        }
    }

    #[test]
    fn a_client_whose_later_create_got_a_lower_sequence_is_named() {
        let a = rec(0, 1, "create", "c1-1", Outcome::Ok, "0000000007");
        let b = rec(1, 2, "create", "c2-1", Outcome::Ok, "0000000003");
        let c = rec(2, 1, "create", "c1-2", Outcome::Ok, "0000000009");
        assert!(out_of_issue_order(&[&a, &b, &c]).0.is_empty());
        let late = rec(3, 1, "create", "c1-3", Outcome::Ok, "0000000008");
        let (problems, ids) = out_of_issue_order(&[&a, &b, &c, &late]);
        assert_eq!(ids, vec![2, 3]);
        assert!(problems[0].contains("client 1: create c1-3 got sequence 8 after its earlier create got 9"));
    }

    #[test]
    fn the_queue_check_finds_lost_and_twice_delivered_items_and_allows_unknown_deletes() {
        let ok = |id, f, item: &str| rec(id, 0, f, item, Outcome::Ok, "");
        let mut h = vec![
            ok(0, "enqueue", "c0-1"),
            ok(1, "enqueue", "c0-2"),
            ok(2, "enqueue", "c0-3"),
            ok(3, "dequeue", "c0-1"),
            rec(4, 1, "dequeue", "c0-2", Outcome::Unknown, ""),
        ];
        let left: HashSet<String> = ["c0-3".to_string()].into();
        let (problems, _, summary) = judge_queue(&h, &left);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            summary,
            "3 items acknowledged, 1 delivered, 1 left in the queue: 0 lost, 0 delivered twice"
        );
        // c0-3 gone without a delivery: lost. c0-1 delivered twice.
        h.push(ok(5, "dequeue", "c0-1"));
        let (problems, excerpt, summary) = judge_queue(&h, &HashSet::new());
        assert!(summary.ends_with("1 lost, 1 delivered twice"), "{summary}");
        assert!(problems
            .iter()
            .any(|p| p.contains("item c0-3 was acknowledged but never delivered")));
        assert!(problems.iter().any(|p| p.contains("item c0-1 was delivered 2 times")));
        assert_eq!(excerpt, vec![2, 3, 5]);
    }
}
