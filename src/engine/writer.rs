//! verify's writer and its check: sequential creates through the connect string, each acknowledged one
//! recorded with its latency and every unavailability window; afterwards every node is asked alone for
//! every acknowledged write.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use zookeeper_client as zkc;

use crate::error::{Error, Result};
use crate::os::tls::TlsFiles;
use crate::zk::client as zk;

/// Where verify's writes go.
pub const ROOT: &str = "/zkdev-verify";

/// How verify's clients reach the servers: the plain client ports, or (`--tls`) every node's secure client
/// port with the cluster's CA and client certificate.
#[derive(Debug, Clone)]
pub struct Reach {
    /// Over TLS, with these files (`verify --tls`).
    pub tls: Option<TlsFiles>,
    /// Plain connections go to the nodes' own client ports rather than through a `--net` cluster's client
    /// proxies (`--direct`).
    pub direct: bool,
}

impl Reach {
    /// The nodes' own plain client ports (the checks ask each node there).
    pub fn plain() -> Reach {
        Reach {
            tls: None,
            direct: true,
        }
    }

    /// A session with `to`, over TLS when asked.
    pub async fn connect(&self, to: &str, session: Duration, timeout: Duration) -> Result<zkc::Client> {
        match &self.tls {
            Some(files) => zk::connect_tls(to, session, timeout, files).await,
            None => zk::connect(to, session, timeout).await,
        }
    }

    /// The connect string: every node's secure client port (TLS is not proxied), or the workloads' connect
    /// string (through the client proxies of a `--net` cluster unless `--direct`).
    pub fn connect_string(&self, spec: &crate::model::spec::ClusterSpec) -> String {
        match &self.tls {
            Some(_) => spec.secure_connect_string().unwrap_or_else(|| spec.connect_string()),
            None => spec.workload_connect_string(self.direct),
        }
    }

    /// Where one node is asked alone.
    pub fn node_addr(&self, n: &crate::model::spec::NodeSpec) -> std::net::SocketAddrV4 {
        match (&self.tls, n.ports.secure) {
            (Some(_), Some(port)) => std::net::SocketAddrV4::new(n.address, port),
            _ => n.client_addr(),
        }
    }
}

/// What the writer saw.
#[derive(Debug, Default)]
pub struct Log {
    /// (attempt number, znode name, data) of every acknowledged create, in acknowledgement order.
    pub acked: Vec<(u64, String, String)>,
    /// Attempts that were not acknowledged.
    pub failed: u64,
    /// Unavailability windows: first failed attempt -> next success, in ms.
    pub windows: Vec<u64>,
    /// Attempt -> acknowledgement of every acknowledged write, in microseconds.
    pub latencies_us: Vec<u64>,
    /// Each error the client saw, with how often.
    pub errors: BTreeMap<String, u64>,
}

/// What one node has of the acknowledged writes.
#[derive(Debug, Serialize)]
pub struct NodeCheck {
    /// The node.
    pub id: u32,
    /// Acknowledged writes it has.
    pub present: usize,
    /// Acknowledged writes it lacks.
    pub missing: usize,
    /// Writes it has with other data.
    pub wrong_data: usize,
    /// Writes it has more than once.
    pub duplicated: usize,
    /// Why it could not be asked.
    pub error: Option<String>,
}

/// Percentiles of a latency sample, in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    /// The percentiles of `us` (microseconds), or none of an empty sample.
    pub fn of(us: &[u64]) -> Option<Latency> {
        let mut v = us.to_vec();
        v.sort_unstable();
        let at = |q: f64| {
            let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
            (v[i] as f64 / 1000.0 * 100.0).round() / 100.0
        };
        (!v.is_empty()).then(|| Latency {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: at(1.0),
        })
    }
}

/// The sequence number ZooKeeper appended to a sequential znode's name.
pub fn seq_of(name: &str) -> u64 {
    name.rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Create a sequential znode every `every` until `stop`, recording each outcome in `log`.
pub async fn write_loop(
    reach: Reach,
    connect: String,
    base: String,
    every: Duration,
    log: Arc<Mutex<Log>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    attempts: Arc<std::sync::atomic::AtomicU64>,
) {
    use std::sync::atomic::Ordering;
    let mut client: Option<zkc::Client> = None;
    let mut failing_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let prefix = format!("{base}/w-");
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        let attempt = attempts.fetch_add(1, Ordering::SeqCst);
        let data = format!("write {attempt}");
        let started = Instant::now();
        if client.is_none() {
            client = reach
                .connect(&connect, Duration::from_secs(30), Duration::from_secs(2))
                .await
                .ok();
        }
        let outcome = match &client {
            None => Err("no session".to_string()),
            Some(c) => {
                let create = c.create(
                    &prefix,
                    data.as_bytes(),
                    &zkc::CreateMode::PersistentSequential.with_acls(zkc::Acls::anyone_all()),
                );
                match tokio::time::timeout(Duration::from_secs(2), create).await {
                    Ok(Ok((_, seq))) => Ok(format!("w-{seq}")),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("no answer within 2 s".to_string()),
                }
            }
        };
        let mut l = log.lock().expect("log lock");
        match outcome {
            Ok(name) => {
                if let Some(since) = failing_since.take() {
                    l.windows.push(since.elapsed().as_millis() as u64);
                }
                l.latencies_us.push(started.elapsed().as_micros() as u64);
                l.acked.push((attempt, name, data));
            }
            Err(e) => {
                l.failed += 1;
                *l.errors.entry(e.clone()).or_default() += 1;
                failing_since.get_or_insert(started);
                if e.contains("expired") || e.contains("closed") || e == "no session" {
                    client = None;
                }
            }
        }
    }
}

/// Ask one node alone for every znode under `base`: which acknowledged writes it has, with which data.
pub async fn check_node(
    reach: &Reach,
    id: u32,
    addr: std::net::SocketAddrV4,
    base: &str,
    acked: &[(u64, String, String)],
) -> Result<(NodeCheck, Vec<String>)> {
    let c = reach
        .connect(&addr.to_string(), Duration::from_secs(30), Duration::from_secs(10))
        .await?;
    c.sync(base)
        .await
        .map_err(|e| Error::failed(format!("node {id}: sync: {e}")))?;
    let children = c
        .list_children(base)
        .await
        .map_err(|e| Error::failed(format!("node {id}: list: {e}")))?;
    let mut data_of: HashMap<String, String> = HashMap::new();
    let mut names_by_data: HashMap<String, usize> = HashMap::new();
    for name in &children {
        if let Ok((d, _)) = c.get_data(&format!("{base}/{name}")).await {
            let d = String::from_utf8_lossy(&d).into_owned();
            *names_by_data.entry(d.clone()).or_default() += 1;
            data_of.insert(name.clone(), d);
        }
    }
    let mut missing = Vec::new();
    let mut wrong = 0;
    let mut dup = 0;
    for (_, name, data) in acked {
        match data_of.get(name) {
            None => missing.push(name.clone()),
            Some(d) if d != data => wrong += 1,
            Some(_) => {}
        }
        if names_by_data.get(data).copied().unwrap_or(0) > 1 {
            dup += 1;
        }
    }
    Ok((
        NodeCheck {
            id,
            present: acked.len() - missing.len(),
            missing: missing.len(),
            wrong_data: wrong,
            duplicated: dup,
            error: None,
        },
        missing,
    ))
}

/// What every node has of the acknowledged writes.
#[derive(Debug)]
pub struct Checked {
    /// Each node's count.
    pub nodes: Vec<NodeCheck>,
    /// Acknowledged writes missing on at least one node.
    pub lost: usize,
    /// Writes found more than once, summed over the nodes.
    pub duplicated: usize,
    /// Acknowledged writes whose sequence number is not above the one acknowledged before.
    pub out_of_order: usize,
    /// Nothing lost, duplicated, out of order or with other data, and every node answered.
    pub ok: bool,
}

/// Ask every node of `spec` alone for every acknowledged write under `base`, and put the answers together.
pub async fn check_every_node(
    reach: &Reach,
    spec: &crate::model::spec::ClusterSpec,
    base: &str,
    acked: &[(u64, String, String)],
) -> Checked {
    let mut nodes = Vec::new();
    let mut lost: std::collections::BTreeSet<String> = Default::default();
    let mut duplicated = 0;
    for n in &spec.nodes {
        match check_node(reach, n.id, reach.node_addr(n), base, acked).await {
            Ok((c, missing)) => {
                duplicated += c.duplicated;
                lost.extend(missing);
                nodes.push(c);
            }
            Err(e) => nodes.push(NodeCheck {
                id: n.id,
                present: 0,
                missing: acked.len(),
                wrong_data: 0,
                duplicated: 0,
                error: Some(e.to_string()),
            }),
        }
    }
    // In order: acknowledged later means a higher sequence number.
    let seqs: Vec<u64> = acked.iter().map(|(_, name, _)| seq_of(name)).collect();
    let out_of_order = seqs.windows(2).filter(|w| w[1] <= w[0]).count();
    let ok = lost.is_empty()
        && duplicated == 0
        && out_of_order == 0
        && nodes.iter().all(|n| n.error.is_none() && n.wrong_data == 0);
    Checked {
        nodes,
        lost: lost.len(),
        duplicated,
        out_of_order,
        ok,
    }
}
