//! The write-and-check run behind `zkdev verify` (and a scenario's `verify` step): a writer creates
//! sequential znodes through the connect string with a real client while the leader is killed K times
//! (each restarted), or while a seeded nemesis plan is injected; afterwards every node is asked for every
//! write. An acknowledged write must be on every node, once, in order, with its data. Unacknowledged writes
//! (the client saw an error) may or may not have landed: that is allowed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::kill_leader::KillReport;
use super::nemesis::{self as faults, Env, Injected};
use super::run::{self, not_coming_back};
use super::writer::{check_every_node, write_loop, Checked, Latency, Log, NodeCheck, Reach, ROOT};
use crate::error::{Error, Result};
use crate::model::nemesis::{self, Kind, Planned};
use crate::model::spec::ClusterSpec;
use crate::model::status::summary_line;
use crate::os::interrupt;
use crate::os::tls::TlsFiles;
use crate::zk::client as zk;
use crate::zk::observe;

/// The nemesis part of a [`VerifyReport`].
#[derive(Debug, Serialize)]
pub struct NemesisReport {
    /// The seed (the same seed replays the plan).
    pub seed: u64,
    /// The fault kinds drawn from.
    pub kinds: Vec<Kind>,
    /// How many faults were planned.
    pub planned: usize,
    /// Every fault as injected.
    pub faults: Vec<Injected>,
}

/// A nemesis plan checked against the cluster (`--nemesis KINDS [--seed N] [--faults N]`).
#[derive(Debug, Clone)]
pub struct Nemesis {
    /// The seed.
    pub seed: u64,
    /// The kinds.
    pub kinds: Vec<Kind>,
    /// The faults, in order.
    pub plan: Vec<Planned>,
}

/// The fault kinds `text` names (`kill,pause`), checked against the cluster, and their plan: `faults`
/// faults (default: one per few seconds of `duration`) from `seed` (default: a new one).
pub fn plan_nemesis(
    text: &str,
    faults: Option<usize>,
    seed: Option<u64>,
    spec: &ClusterSpec,
    duration: Duration,
) -> Result<Nemesis> {
    let kinds = nemesis::parse_kinds(text).map_err(Error::usage)?;
    faults::check_kinds(&kinds, spec, "verify", false)?;
    let count = match faults {
        Some(0) => {
            return Err(Error::usage(
                "--faults 0: give at least 1 (or leave --nemesis out to only write and check)",
            ))
        }
        Some(n) => n,
        None => nemesis::default_count(duration.as_millis() as u64),
    };
    // A new seed each run unless given: the clock, mixed with the pid.
    let seed = seed.unwrap_or_else(crate::os::random::u64);
    let plan = nemesis::plan(seed, &kinds, count, duration.as_millis() as u64, &spec.ids());
    Ok(Nemesis { seed, kinds, plan })
}

/// What [`verify`] wrote, injected and found.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// The parent znode of the writes.
    pub path: String,
    /// Written and checked over TLS, on every node's secure client port.
    pub tls: bool,
    /// Writes attempted.
    pub attempted: u64,
    /// Writes acknowledged.
    pub acknowledged: usize,
    /// Writes not acknowledged (allowed).
    pub failed: u64,
    /// Acknowledged writes missing on a node (must be 0).
    pub lost: usize,
    /// Acknowledged writes found twice.
    pub duplicated: usize,
    /// Writes found out of order.
    pub out_of_order: usize,
    /// First failed write -> next acknowledged, per window.
    pub unavailability_ms: Vec<u64>,
    /// Attempt -> acknowledgement of the acknowledged writes.
    pub latency_ms: Option<Latency>,
    /// Every leader kill.
    pub kills: Vec<KillReport>,
    /// With --nemesis: the seed, the plan's kinds, and every fault as injected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nemesis: Option<NemesisReport>,
    /// What each node returned.
    pub nodes: Vec<NodeCheck>,
    /// Write errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Every acknowledged write is on every node, once, in order.
    pub ok: bool,
}

impl VerifyReport {
    /// `Ok` when the check passed, else an error with the counts and where the writes are kept.
    pub fn verdict(&self) -> Result<()> {
        if self.ok {
            return Ok(());
        }
        Err(Error::failed(format!(
            "verify FAILED: {} lost, {} duplicated, {} out of order; the writes are kept under {}",
            crate::model::words::count(self.lost, "acknowledged write"),
            self.duplicated,
            self.out_of_order,
            self.path
        )))
    }
}

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// How long to write (at least; a kill in progress finishes).
    pub duration: Duration,
    /// Writes per second, 1 to 5000.
    pub writes_per_sec: u32,
    /// Leader kills spread over the run (without a nemesis).
    pub kills: u32,
    /// Write and read over TLS.
    pub tls: bool,
    /// To the nodes' own client ports, around a `--net` cluster's client proxies.
    pub direct: bool,
    /// Inject this plan instead of leader kills.
    pub nemesis: Option<Nemesis>,
}

impl Default for VerifyOptions {
    /// 10 s, 50 writes/s, 3 leader kills.
    fn default() -> Self {
        VerifyOptions {
            duration: Duration::from_secs(10),
            writes_per_sec: 50,
            kills: 3,
            tls: false,
            direct: false,
            nemesis: None,
        }
    }
}

/// What [`verify`] tells its caller as it goes.
#[derive(Debug)]
pub enum VerifyEvent<'a> {
    /// The writes start, under this znode.
    Started {
        /// The parent znode of the writes.
        base: &'a str,
    },
    /// The run loop's own events (a fault healed, a leader killed).
    Run(run::Event<'a>),
}

/// Write while killing leaders (or injecting the nemesis plan), then check every node. The report says
/// whether the check passed ([`VerifyReport::verdict`]); an error means the run could not be checked.
pub async fn verify(
    env: &Env<'_>,
    options: &VerifyOptions,
    mut on_event: impl FnMut(VerifyEvent<'_>),
) -> Result<VerifyReport> {
    let duration = options.duration;
    let (spec, paths) = (env.spec, env.paths);
    if options.writes_per_sec == 0 || options.writes_per_sec > 5000 {
        return Err(Error::usage(format!(
            "--writes-per-sec {}: give 1 to 5000",
            options.writes_per_sec
        )));
    }
    if options.tls && !spec.settings.tls {
        return Err(Error::usage(format!(
            "--tls: cluster `{}` was made without TLS, so no node has a secure client port; {}, or run verify \
             without --tls",
            spec.name,
            spec.remake_advice(&["--tls"])
        )));
    }
    let reach = Reach {
        tls: options.tls.then(|| TlsFiles::of(paths)),
        direct: options.direct,
    };
    let nemesis = options.nemesis.clone();
    if options.kills > 0 && nemesis.is_none() {
        survives_leader_kills(spec)?;
    }
    // A paused or stopped node never serves again by waiting: say so now rather than after the wait below.
    let now = observe::gather(spec, paths, &paths.load_state()?).await;
    if let Some(why) = not_coming_back(&now) {
        return Err(Error::failed(format!("verify needs every node serving, but {why}")));
    }
    let healthy = observe::wait_until(spec, paths, Duration::from_secs(30), |s| s.healthy(), |_| {}).await;
    if let Err((_, s)) = healthy {
        let remedy = not_coming_back(&s)
            .unwrap_or_else(|| "an election may still be under way: `zkdev wait` waits for one".to_string());
        return Err(Error::failed(format!(
            "verify needs a healthy ensemble to start: {}; {remedy}",
            summary_line(&s)
        )));
    }
    interrupt::install();

    let connect = reach.connect_string(spec);
    let session = Duration::from_secs(30);
    let setup = reach.connect(&connect, session, Duration::from_secs(10)).await?;
    zk::ensure(&setup, ROOT).await?;
    let base = format!("{ROOT}/{}", crate::os::clock::now_ms());
    zk::ensure(&setup, &base).await?;
    drop(setup);
    on_event(VerifyEvent::Started { base: &base });

    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attempts = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = tokio::spawn(write_loop(
        reach.clone(),
        connect.clone(),
        base.clone(),
        Duration::from_secs_f64(1.0 / f64::from(options.writes_per_sec)),
        log.clone(),
        stop.clone(),
        attempts.clone(),
    ));

    let t0 = Instant::now();
    let schedule = run::Schedule {
        faults: nemesis.as_ref().map(|n| n.plan.clone()).unwrap_or_default(),
        leader_kills: if nemesis.is_some() { 0 } else { options.kills },
    };
    let outcome = run::run(env, &schedule, duration, t0, |event| on_event(VerifyEvent::Run(event))).await?;
    let run::Outcome {
        injected,
        mut kills,
        failure,
        ..
    } = outcome;
    let mut injected = injected;
    // A nemesis kill's report is listed with the kills.
    for i in &mut injected {
        if let Some(k) = i.kill.take() {
            kills.push(k);
        }
    }
    let kill_error = failure.map(|f| match f {
        run::Failure::Fault { fault, error } => {
            Error::failed(format!("fault {} ({}): {error}", fault.n, fault.describe()))
        }
        run::Failure::LeaderKill { error, .. } => error,
    });
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = writer.await;
    if interrupt::interrupted() {
        // A kill may have been cut short before its restart: bring back every node verify stopped.
        let restored = run::restore(env.cause, env.sup, spec, paths).await;
        let warning = restored.warning.map_or(String::new(), |w| format!(" (warning: {w})"));
        let restarted = restored.started;
        let what = if restarted.is_empty() {
            "every node is running as before".to_string()
        } else {
            format!(
                "restarted {} that this run had killed",
                crate::model::words::nodes(&restarted)
            )
        };
        let done = if nemesis.is_some() {
            crate::model::words::count(injected.len(), "fault")
        } else {
            crate::model::words::count(kills.len(), "leader kill")
        };
        return Err(Error::failed(format!(
            "interrupted after {done}; {what}{warning}; the check was not run and the writes are left under {base}"
        )));
    }
    if let Some(e) = kill_error {
        let what = if nemesis.is_some() { "a fault" } else { "a leader kill" };
        return Err(Error::failed(format!("{what} failed, so the check was not run: {e}")));
    }

    // The membership may have changed while it wrote (`zkdev add`, `remove`, ...): every node the cluster
    // has now is checked, a node added since included.
    let spec = &paths.load_spec().unwrap_or_else(|_| spec.clone());
    // Everything back and serving before the check.
    if let Err((_, s)) = observe::wait_until(spec, paths, Duration::from_secs(60), |s| s.healthy(), |_| {}).await {
        return Err(Error::failed(format!(
            "the ensemble did not come back to all serving after the kills: {}",
            summary_line(&s)
        )));
    }

    let log = std::mem::take(&mut *log.lock().expect("writer finished"));
    let Checked {
        nodes,
        lost,
        duplicated,
        out_of_order,
        ok,
    } = check_every_node(&reach, spec, &base, &log.acked).await;

    let report = VerifyReport {
        path: base.clone(),
        tls: options.tls,
        attempted: attempts.load(std::sync::atomic::Ordering::SeqCst),
        acknowledged: log.acked.len(),
        failed: log.failed,
        lost,
        duplicated,
        out_of_order,
        unavailability_ms: log.windows.clone(),
        latency_ms: Latency::of(&log.latencies_us),
        kills,
        nemesis: nemesis.map(|n| NemesisReport {
            seed: n.seed,
            kinds: n.kinds,
            planned: n.plan.len(),
            faults: injected,
        }),
        nodes,
        errors: log.errors.clone(),
        ok,
    };
    if ok {
        // Leave nothing behind on success; on failure the writes stay for a look.
        if let Ok(c) = reach.connect(&connect, session, Duration::from_secs(10)).await {
            for (_, name, _) in &log.acked {
                let _ = c.delete(&format!("{base}/{name}"), None).await;
            }
            if let Ok(children) = c.list_children(&base).await {
                for name in children {
                    let _ = c.delete(&format!("{base}/{name}"), None).await;
                }
            }
            let _ = c.delete(&base, None).await;
            let _ = c.delete(ROOT, None).await; // fails while another run's writes are kept there: fine
        }
    }
    Ok(report)
}

/// Verify kills the leader and needs the other voters to elect a new one: at least 3 voters.
pub fn survives_leader_kills(spec: &ClusterSpec) -> Result<()> {
    let (voters, needed) = (spec.voter_count(), spec.quorum_needed());
    if voters > needed {
        return Ok(());
    }
    Err(Error::failed(format!(
        "verify kills the leader and needs the other voters to elect a new one, but cluster `{}` has {}: after \
         a kill {} would remain where a quorum needs {needed}. Verify needs at least 3 voters: `{}` (this removes \
         its data; to keep it, make a second cluster with `zkdev up --nodes 3 {}`), or pass --kills 0 to only \
         write and check",
        spec.name,
        crate::model::words::count(voters, "voter"),
        voters - 1,
        spec.remake_command_with(3, &[]),
        spec.beside_flags()
    )))
}
