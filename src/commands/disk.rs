//! `zkdev disk TARGET --slow-fsync D | --full | --eio | --heal`: a disk fault on nodes, through the disk-fault
//! library preloaded into their JVMs, then what ZooKeeper did about it, measured: write latency through the
//! ensemble, the server's own fsync time and warnings, whether the node stopped serving or exited and why.
//! `--power-cut [--torn]`: the JVMs SIGKILLed and their unsynced writes lost. `--corrupt log|snapshot`,
//! `--truncate`: a stopped node's newest file damaged, and where.

use std::time::{Duration, Instant};

use serde::Serialize;
use zookeeper_client as zk;

use super::Ctx;
use crate::cli::{CorruptFile, DiskArgs};
use crate::error::{Error, Result};
use crate::model::disk::DiskFault;
use crate::model::fault::{self, Target};
use crate::model::power::NodeCut;
use crate::model::spec::ClusterSpec;
use crate::model::zkfile::{Damage, FileKind};
use crate::os::state::ClusterPaths;
use crate::output;
use crate::supervisor::control::Request;
use crate::zk::observe::{self, ProcessState};

/// Where the probe writes go.
const PROBE_PATH: &str = "/zkdev-disk-probe";
/// Writes timed before and after a fault.
const PROBE_WRITES: usize = 5;
/// How long to watch a node that stopped serving for its process to exit.
const EXIT_WATCH: Duration = Duration::from_secs(3);

/// Write latencies through the ensemble, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Acknowledged writes of those tried.
    pub acknowledged: usize,
    pub tried: usize,
    pub min_ms: Option<u64>,
    pub median_ms: Option<u64>,
    pub max_ms: Option<u64>,
    /// The first failure, if any write failed.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeOutcome {
    pub id: u32,
    /// `serving`, `not serving`, `exited`...: the node's process and server when the watch ended.
    pub process: String,
    pub serving: bool,
    /// Its JVM was running when the fault was set: what happened next was the fault's doing. A node not running
    /// then meets the fault when it starts; nothing is measured for it.
    pub was_running: bool,
    /// Its JVM runs when the watch ended (serving or not, paused or unresponsive): it needs no `start`.
    pub jvm_up: bool,
    /// Fault applied -> the node stopped serving (or its process ended), if it did.
    pub stopped_serving_ms: Option<u64>,
    /// Fault applied -> its process had exited, if it did while zkdev watched.
    pub exited_ms: Option<u64>,
    /// `zk_max_fsynctime` / `zk_avg_fsynctime` from its `mntr` (since it started), when it answers.
    pub max_fsync_ms: Option<f64>,
    pub avg_fsync_ms: Option<f64>,
    /// Lines of its log since the fault: fsync warnings, the error it stopped on.
    pub log: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub nodes: Vec<u32>,
    pub fault: DiskFault,
    /// Writes through the nodes not hit (all of them when every node is), before and after.
    pub writes_before: Latency,
    pub writes_after: Latency,
    pub outcome: Vec<NodeOutcome>,
    pub hint: Option<String>,
}

pub async fn run(ctx: &Ctx, args: DiskArgs) -> Result<()> {
    if args.power_cut {
        return power_cut(ctx, &args).await;
    }
    if let Some(what) = args.corrupt {
        let kind = match what {
            CorruptFile::Log => FileKind::Log,
            CorruptFile::Snapshot => FileKind::Snapshot,
        };
        return damage(ctx, &args, Some(kind)).await;
    }
    if args.truncate {
        return damage(ctx, &args, None).await;
    }
    let timeout = args.timeout;
    let fault = match (&args.slow_fsync, args.full, args.eio) {
        (Some(d), _, _) => DiskFault::SlowFsync {
            ms: super::net::fault_ms(*d, "--slow-fsync")?,
        },
        (None, true, _) => DiskFault::Full,
        (None, false, true) => DiskFault::Eio,
        _ => DiskFault::Healthy,
    };
    let (paths, spec) = ctx.existing()?;
    if !spec.settings.disk_faults {
        return Err(Error::usage(format!(
            "cluster `{}` was made without disk faults, so its JVMs do not load the disk-fault library; {}",
            spec.name,
            spec.remake_advice(&["--disk-faults"])
        )));
    }
    let progress = output::Progress::new(ctx.quiet || ctx.json);
    progress.message("timing writes before the fault".into());
    let status = observe::gather(&spec, &paths, &paths.load_state()?).await;
    let planned = match args.target {
        Target::All => spec.ids(),
        t => fault::resolve(t, &status)?,
    };
    let others = connect_string(&spec, &planned);
    let writes_before = time_writes(&others, PROBE_WRITES, timeout).await;
    let not_running: Vec<u32> = planned
        .iter()
        .copied()
        .filter(|id| status.node(*id).is_none_or(|n| !jvm_up(n.process())))
        .collect();
    let log_marks: Vec<(u32, u64)> = planned.iter().map(|id| (*id, log_len(&paths, *id))).collect();

    let t0 = Instant::now();
    let ids = {
        let sup = ctx.supervisor().await?;
        let cause = ctx.cause();
        let env = crate::engine::nemesis::Env {
            sup: &sup,
            cause: &cause,
            spec: &spec,
            paths: &paths,
            force: false,
        };
        crate::engine::faults::disk(&env, args.target, fault).await?
    };
    progress.message(format!(
        "{} on {}: watching what ZooKeeper does",
        fault.describe(),
        crate::model::words::nodes(&ids)
    ));
    // Give the library its 25 ms to notice, then drive writes through the ensemble.
    tokio::time::sleep(Duration::from_millis(60)).await;
    let writes_after = time_writes(&others, PROBE_WRITES, timeout).await;
    // Only nodes that were running when the fault came can stop serving or exit because of it.
    let watched: Vec<u32> = ids.iter().copied().filter(|id| !not_running.contains(id)).collect();
    let mut stopped: Vec<(u32, Option<u64>)> = watched.iter().map(|id| (*id, None)).collect();
    let mut exited: Vec<(u32, Option<u64>)> = watched.iter().map(|id| (*id, None)).collect();
    if matches!(fault, DiskFault::Full | DiskFault::Eio) {
        // ZooKeeper stops a server whose transaction log cannot be written: wait (within the timeout) for it.
        let deadline = t0 + timeout;
        while Instant::now() < deadline && stopped.iter().any(|(_, s)| s.is_none()) {
            let now = observe::gather(&spec, &paths, &paths.load_state()?).await;
            for (id, s) in stopped.iter_mut().filter(|(_, s)| s.is_none()) {
                if now.node(*id).is_none_or(|n| !n.serving()) {
                    *s = Some(t0.elapsed().as_millis() as u64);
                }
            }
            if stopped.iter().any(|(_, s)| s.is_none()) {
                // One more write keeps the pipeline busy, so a node that did not try to write yet does.
                let _ = time_writes(&others, 1, Duration::from_secs(2)).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        // What it does next takes a moment: a follower keeps its JVM and retries joining the leader, a leader
        // that cannot write its snapshot when it tries to lead again exits (code 10). Watch for an exit.
        let settle = (Instant::now() + EXIT_WATCH).min(deadline.max(Instant::now()));
        while Instant::now() < settle && exited.iter().any(|(_, e)| e.is_none()) {
            let state = paths.load_state()?;
            for (id, e) in exited.iter_mut().filter(|(_, e)| e.is_none()) {
                let ident = paths.ident(&spec, *id);
                if matches!(
                    crate::os::process::identify(&state.node(*id), &ident),
                    crate::os::process::Liveness::Gone
                ) {
                    *e = Some(t0.elapsed().as_millis() as u64);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    if let DiskFault::SlowFsync { ms } = fault {
        // The server records an fsync's time when it ends: let the slow one under way finish before `mntr`.
        tokio::time::sleep(Duration::from_millis(u64::from(ms).min(5_000) + 200)).await;
    }
    progress.finish();
    let after = observe::gather(&spec, &paths, &paths.load_state()?).await;
    let mut outcome = Vec::new();
    for id in &ids {
        let id = *id;
        let stopped_ms = stopped.iter().find(|(i, _)| *i == id).and_then(|(_, s)| *s);
        let n = after.node(id);
        let mntr = crate::zk::probe::mntr(
            spec.node(id).expect("resolved ids exist").client_addr(),
            Duration::from_secs(2),
        )
        .await;
        let since = log_marks.iter().find(|(i, _)| *i == id).map_or(0, |(_, m)| *m);
        outcome.push(NodeOutcome {
            id,
            process: n.map_or("unknown".into(), |n| describe_process(n.process(), n.serving())),
            serving: n.is_some_and(|n| n.serving()),
            was_running: !not_running.contains(&id),
            jvm_up: n.is_some_and(|n| jvm_up(n.process())),
            stopped_serving_ms: stopped_ms,
            exited_ms: exited.iter().find(|(i, _)| *i == id).and_then(|(_, e)| *e),
            max_fsync_ms: mntr.get("zk_max_fsynctime").and_then(|v| v.parse().ok()),
            avg_fsync_ms: mntr.get("zk_avg_fsynctime").and_then(|v| v.parse().ok()),
            log: log_lines_since(&paths, id, since),
        });
    }
    let hint = outcome
        .iter()
        .filter(|o| !o.serving)
        .map(|o| advice(o, fault))
        .collect::<Vec<_>>();
    let report = Report {
        nodes: ids,
        fault,
        writes_before,
        writes_after,
        outcome,
        hint: (!hint.is_empty()).then(|| hint.join("; ")),
    };
    if ctx.json {
        output::print_json(&report);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// A JVM that is there (serving or not): `start` is not what it needs.
fn jvm_up(p: ProcessState) -> bool {
    matches!(
        p,
        ProcessState::Running | ProcessState::Paused | ProcessState::Unresponsive
    )
}

/// What to do next about node `o`, which is not serving, after `fault` was set (or healed).
fn advice(o: &NodeOutcome, fault: DiskFault) -> String {
    let id = o.id;
    match (fault, o.jvm_up) {
        (DiskFault::Healthy, true) => {
            format!("node {id}: its JVM is up and rejoins the leader by itself (`zkdev wait` waits for it)")
        }
        (DiskFault::Healthy, false) => format!("node {id} is not running: `zkdev start {id}` brings it back"),
        (_, true) => format!(
            "node {id}: its JVM is still up and keeps trying to rejoin the leader; `zkdev disk {id} --heal` lets it \
             catch up"
        ),
        (_, false) => format!("node {id}: `zkdev disk {id} --heal`, then `zkdev start {id}`"),
    }
}

fn describe_process(p: ProcessState, serving: bool) -> String {
    match p {
        ProcessState::Running if serving => "running, serving".into(),
        ProcessState::Running => "running, not serving".into(),
        other => other.as_str().to_string(),
    }
}

fn print_report(r: &Report) {
    let nodes = crate::model::words::nodes(&r.nodes);
    match r.fault {
        DiskFault::Healthy => crate::outln!("disk of {nodes} healed"),
        f => crate::outln!("disk of {nodes}: {}", f.describe()),
    }
    crate::outln!(
        "writes through the ensemble before: {}",
        describe_latency(&r.writes_before)
    );
    crate::outln!(
        "writes through the ensemble after:  {}",
        describe_latency(&r.writes_after)
    );
    for o in &r.outcome {
        let mut line = format!("node {}: {}", o.id, o.process);
        if !o.was_running {
            line.push_str(" (it was not running when the fault was set; it meets the fault when it starts)");
        }
        if let Some(ms) = o.stopped_serving_ms {
            line.push_str(&format!(", stopped serving {ms} ms after the fault"));
        }
        if let Some(ms) = o.exited_ms {
            line.push_str(&format!(", its JVM exited {ms} ms after the fault"));
        }
        if let (Some(max), Some(avg)) = (o.max_fsync_ms, o.avg_fsync_ms) {
            line.push_str(&format!(
                "; its fsync time (mntr, since start): max {max} ms, avg {avg} ms"
            ));
        }
        crate::outln!("{line}");
        let warnings = o
            .log
            .iter()
            .filter(|l| l.contains("fsync-ing the write ahead log"))
            .count();
        if warnings > 0 {
            crate::outln!(
                "  its log: {} (ZooKeeper warns past fsync.warningthresholdms, 1000 ms by default)",
                crate::model::words::count(warnings, "fsync warning")
            );
        }
        for l in o.log.iter().take(3) {
            crate::outln!("  log: {l}");
        }
        if o.log.len() > 3 {
            crate::outln!(
                "  log: ... {} more such {} (`zkdev logs {}`)",
                o.log.len() - 3,
                crate::model::words::noun_for(o.log.len() - 3, "line"),
                o.id
            );
        }
    }
    if let Some(h) = &r.hint {
        crate::outln!("next: {h}");
    }
}

fn describe_latency(l: &Latency) -> String {
    let mut s = format!("{}/{} acknowledged", l.acknowledged, l.tried);
    if let (Some(min), Some(med), Some(max)) = (l.min_ms, l.median_ms, l.max_ms) {
        s.push_str(&format!(", {min}/{med}/{max} ms (min/median/max)"));
    }
    if let Some(e) = &l.error {
        s.push_str(&format!("; {e}"));
    }
    s
}

/// The client addresses of every node not in `hit` (every node when all are hit).
fn connect_string(spec: &ClusterSpec, hit: &[u32]) -> String {
    let others: Vec<String> = spec
        .nodes
        .iter()
        .filter(|n| !hit.contains(&n.id))
        .map(|n| n.client_addr().to_string())
        .collect();
    if others.is_empty() {
        spec.connect_string()
    } else {
        others.join(",")
    }
}

/// Time `n` sequential writes (setData on the probe znode) through `connect`, within `within` in all.
pub async fn time_writes(connect: &str, n: usize, within: Duration) -> Latency {
    let mut times = Vec::new();
    let mut error = None;
    let work = async {
        let client = crate::zk::client::connect(connect, Duration::from_secs(10), Duration::from_secs(5)).await?;
        crate::zk::client::ensure(&client, PROBE_PATH).await?;
        for _ in 0..n {
            let t = Instant::now();
            client
                .set_data(PROBE_PATH, b"zkdev disk probe", None)
                .await
                .map_err(|e: zk::Error| Error::failed(format!("a write failed: {e}")))?;
            times.push(t.elapsed().as_millis() as u64);
        }
        Ok::<(), Error>(())
    };
    match tokio::time::timeout(within, work).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => error = Some(e.to_string()),
        Err(_) => error = Some(format!("no answer within {} ms", within.as_millis())),
    }
    let mut sorted = times.clone();
    sorted.sort_unstable();
    Latency {
        acknowledged: times.len(),
        tried: n,
        min_ms: sorted.first().copied(),
        median_ms: sorted.get(sorted.len() / 2).copied(),
        max_ms: sorted.last().copied(),
        error,
    }
}

fn log_len(paths: &ClusterPaths, id: u32) -> u64 {
    std::fs::metadata(paths.log_file(id)).map_or(0, |m| m.len())
}

/// The log lines since byte `since` that say what the server did about its disk: fsync warnings, errors.
fn log_lines_since(paths: &ClusterPaths, id: u32, since: u64) -> Vec<String> {
    let text = std::fs::read(paths.log_file(id)).unwrap_or_default();
    let tail = String::from_utf8_lossy(text.get(since as usize..).unwrap_or_default()).into_owned();
    tail.lines()
        .filter(|l| {
            l.contains("fsync-ing the write ahead log")
                || l.contains(" ERROR ")
                || l.contains("No space left")
                || l.contains("Input/output error")
                || l.contains("Severe unrecoverable error")
                || l.contains("exiting")
        })
        .map(|l| l.trim().to_string())
        .collect()
}

/// The nodes `target` names now (every node for `all`).
async fn targets(ctx: &Ctx, target: Target) -> Result<(ClusterPaths, ClusterSpec, Vec<u32>)> {
    let (paths, spec) = ctx.existing()?;
    let status = observe::gather(&spec, &paths, &paths.load_state()?).await;
    let ids = match target {
        Target::All => spec.ids(),
        t => fault::resolve(t, &status)?,
    };
    Ok((paths, spec, ids))
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct PowerCutReport {
    nodes: Vec<u32>,
    /// With --torn: the seed that chose the prefixes kept.
    seed: Option<u64>,
    bytes_lost: u64,
    cuts: Vec<NodeCut>,
}

/// `--power-cut [--torn]`: through the supervisor (SIGKILL after the identity check, then the rollback).
async fn power_cut(ctx: &Ctx, args: &DiskArgs) -> Result<()> {
    let (_, spec, ids) = targets(ctx, args.target).await?;
    if !spec.settings.disk_faults {
        return Err(Error::usage(format!(
            "cluster `{}` was made without disk faults, so nothing records what its nodes have not synced; make \
             one with `zkdev up --disk-faults` (or `--profile chaos`, or `[faults] disk = true` in a profile)",
            spec.name
        )));
    }
    let seed = args.torn.then(|| args.seed.unwrap_or_else(crate::os::random::u64));
    let reply: crate::supervisor::replies::PowerCutReply = ctx
        .supervisor()
        .await?
        .ask_for(
            Request::PowerCut {
                ids: ids.clone(),
                torn: seed,
                writeback_ms: args.writeback.map(|d| d.as_millis() as u64),
                cause: ctx.cause(),
            },
            Duration::from_secs(60),
        )
        .await?;
    let cuts = reply.cuts;
    let report = PowerCutReport {
        bytes_lost: cuts.iter().map(NodeCut::bytes_lost).sum(),
        nodes: ids,
        seed,
        cuts,
    };
    if ctx.json {
        output::print_json(&report);
        return Ok(());
    }
    crate::outln!(
        "power cut of {}: {} lost{}",
        crate::model::words::nodes(&report.nodes),
        crate::model::words::count(report.bytes_lost as usize, "unsynced byte"),
        seed.map(|s| format!(" (torn writes, seed {s})")).unwrap_or_default()
    );
    for c in &report.cuts {
        crate::outln!("  {}", c.describe());
    }
    let start = if report.nodes.len() == spec.ids().len() {
        "zkdev up".to_string()
    } else {
        format!(
            "zkdev start {}",
            report.nodes.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
        )
    };
    crate::outln!("next: `{start}` brings them back with what reached the disk");
    Ok(())
}

/// `--corrupt log|snapshot` (kind given) or `--truncate` (none): on stopped nodes only.
async fn damage(ctx: &Ctx, args: &DiskArgs, kind: Option<FileKind>) -> Result<()> {
    let (paths, spec, ids) = targets(ctx, args.target).await?;
    let state = paths.load_state()?;
    for id in &ids {
        let ident = paths.ident(&spec, *id);
        if let crate::os::process::Liveness::Ours { pid, .. } = crate::os::process::identify(&state.node(*id), &ident) {
            return Err(Error::usage(format!(
                "node {id} is running (pid {pid}): ZooKeeper holds its files open and would write over the damage; \
                 `zkdev stop {id}` (or `zkdev disk {id} --power-cut`) first"
            )));
        }
    }
    let seed = args.seed.unwrap_or_else(crate::os::random::u64);
    let mut done: Vec<Damage> = Vec::new();
    for id in &ids {
        done.push(match kind {
            Some(k) => crate::os::power::corrupt(&paths, *id, k, args.bytes, seed)?,
            None => crate::os::power::truncate_log(&paths, *id, seed)?,
        });
    }
    let lines: Vec<String> = done.iter().map(describe_damage).collect();
    let action = if kind.is_some() {
        crate::model::timeline::Action::Corrupt
    } else {
        crate::model::timeline::Action::Truncate
    };
    // Journalled when a supervisor answers (a stopped cluster may have none: the damage stands anyway).
    if let Ok(sup) = ctx.supervisor().await {
        let _ = sup
            .ask_for::<crate::supervisor::replies::RecordReply>(
                Request::Record {
                    message: lines.join("; "),
                    cause: ctx.cause(),
                    action: Some(action),
                },
                Duration::from_secs(5),
            )
            .await;
    }
    if ctx.json {
        output::print_json(&done);
    } else {
        for l in &lines {
            crate::outln!("{l}");
        }
        crate::outln!(
            "next: `zkdev start {}` shows what ZooKeeper does with it (`zkdev logs ID` for its words)",
            ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
        );
    }
    Ok(())
}

fn describe_damage(d: &Damage) -> String {
    let records = d
        .records
        .iter()
        .map(|r| format!("#{} (zxid {})", r.index, r.zxid))
        .collect::<Vec<_>>()
        .join(", ");
    let offsets = d.offsets.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    match d.how.as_str() {
        "truncate" => format!(
            "node {}: {} cut at byte {offsets} (was {} bytes; {} of {} record(s) left whole{}), seed {}",
            d.node,
            d.file,
            d.size_before,
            d.records_after.unwrap_or(0),
            d.records_before.unwrap_or(0),
            if records.is_empty() {
                String::new()
            } else {
                format!("; record {records} torn")
            },
            d.seed
        ),
        _ => format!(
            "node {}: {} flipped in {} at {} {offsets}{}, seed {}",
            d.node,
            crate::model::words::count(d.offsets.len(), "byte"),
            d.file,
            crate::model::words::noun_for(d.offsets.len(), "offset"),
            if records.is_empty() {
                String::new()
            } else {
                format!(" (record(s) {records} of {})", d.records_before.unwrap_or(0))
            },
            d.seed
        ),
    }
}
