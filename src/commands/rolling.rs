//! `zkdev rolling-restart [--dist VERSION]`: restart the nodes one at a time, followers and observers first
//! and the leader last, each waited for until it serves again, so the quorum never breaks. With --dist the
//! cluster moves to another installed version on the way (a rolling upgrade). A sampler watches the whole
//! time and reports every moment without a serving leader.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Ctx;
use crate::cli::RollingArgs;
use crate::dist;
use crate::error::{Error, Result};
use crate::model::server::Mode;
use crate::model::spec::ClusterSpec;
use crate::os::state::ClusterPaths;
use crate::output;
use crate::supervisor::control::Request;
use crate::supervisor::replies::{StartReply, StopReply};
use crate::zk::observe::{self, Probing};

#[derive(Debug, Serialize)]
struct Step {
    id: u32,
    was: Option<Mode>,
    now: Option<Mode>,
    /// Stop began -> serving again.
    ms: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    from_version: String,
    to_version: String,
    steps: Vec<Step>,
    total_ms: u64,
    /// Every stretch without a serving leader, as sampled every 20 ms.
    leaderless: Vec<Window>,
}

#[derive(Debug, Clone, Serialize)]
struct Window {
    /// The node being restarted when the stretch began.
    during_node: u32,
    ms: u64,
}

pub async fn run(ctx: &Ctx, args: RollingArgs) -> Result<()> {
    let timeout = args.timeout;
    let (paths, mut spec) = ctx.existing()?;
    let sup = ctx.supervisor().await?;
    let before = observe::gather(&spec, &paths, &paths.load_state()?).await;
    if !before.healthy() {
        return Err(Error::failed(format!(
            "a rolling restart needs a healthy ensemble to start from: {}; `zkdev up` or `zkdev wait` first",
            output::summary_line(&before)
        )));
    }
    let from_version = spec.dist.version.clone();
    if let Some(v) = &args.dist {
        let new = dist::detect(None, Some(&spec.dist.java.to_string_lossy()), Some(v), &ctx.home.root)?;
        // The new installation must run with the same files: render once to catch a version it cannot take.
        let mut next = spec.clone();
        next.dist = new;
        ClusterSpec::build(
            &next.name,
            &next.profile,
            next.settings.clone(),
            next.dist.clone(),
            next.voter_count() as u32,
            next.observer_count() as u32,
        )?;
        spec = next;
        crate::os::state::write_atomic(&paths.spec_file(), spec.to_toml().as_bytes())?;
    }
    let leader = before.leader.expect("healthy means one leader");
    let mut order: Vec<u32> = spec.nodes.iter().map(|n| n.id).filter(|id| *id != leader).collect();
    order.push(leader);

    let current = Arc::new(AtomicU32::new(order[0]));
    let (sampler, stop_sampling, windows) = spawn_sampler(spec.clone(), paths.clone(), current.clone());
    let t0 = Instant::now();
    let mut steps = Vec::new();
    let mut failure = None;
    for id in &order {
        current.store(*id, Ordering::SeqCst);
        let t = Instant::now();
        let was = observe::gather(&spec, &paths, &paths.load_state()?)
            .await
            .node(*id)
            .and_then(|n| n.mode());
        if !ctx.quiet && !ctx.json {
            eprintln!(
                "restarting node {id} ({})...",
                was.map_or("not serving".to_string(), |m| m.to_string())
            );
        }
        let within = Duration::from_secs(90);
        let stop = Request::Stop {
            ids: vec![*id],
            grace_ms: 10_000,
            cause: ctx.cause(),
        };
        sup.ask_for::<StopReply>(stop, within).await?;
        let start = Request::Start {
            ids: vec![*id],
            cause: ctx.cause(),
        };
        sup.ask_for::<StartReply>(start, within).await?;
        let r = observe::wait_until(&spec, &paths, timeout, |s| s.healthy(), |_| {}).await;
        match r {
            Ok(s) => steps.push(Step {
                id: *id,
                was,
                now: s.node(*id).and_then(|n| n.mode()),
                ms: t.elapsed().as_millis() as u64,
            }),
            Err((_, s)) => {
                failure = Some(Error::timeout_with(
                    format!(
                        "node {id} did not serve again within {}; stopped the rolling restart there: {}",
                        output::secs(timeout),
                        output::summary_line(&s)
                    ),
                    observe::log_tail(&paths, *id, 10),
                ));
                break;
            }
        }
    }
    stop_sampling.store(true, Ordering::SeqCst);
    let _ = sampler.await;
    if let Some(e) = failure {
        return Err(e);
    }
    let report = Report {
        from_version,
        to_version: spec.dist.version.clone(),
        steps,
        total_ms: t0.elapsed().as_millis() as u64,
        leaderless: windows.lock().expect("sampler done").clone(),
    };
    print_report(ctx, &report);
    Ok(())
}

type Windows = Arc<Mutex<Vec<Window>>>;

/// Sample every 20 ms; record each stretch during which no node served as the single leader.
fn spawn_sampler(
    spec: ClusterSpec,
    paths: ClusterPaths,
    current: Arc<AtomicU32>,
) -> (tokio::task::JoinHandle<()>, Arc<AtomicBool>, Windows) {
    let stop = Arc::new(AtomicBool::new(false));
    let windows: Windows = Arc::default();
    let (s2, w2) = (stop.clone(), windows.clone());
    let handle = tokio::spawn(async move {
        let mut since: Option<(Instant, u32)> = None;
        let close = |since: (Instant, u32)| Window {
            during_node: since.1,
            ms: since.0.elapsed().as_millis() as u64,
        };
        while !s2.load(Ordering::SeqCst) {
            let state = paths.load_state().unwrap_or_default();
            // A generous deadline: a leader slow to answer on a loaded machine still leads.
            let how = Probing {
                timeout: Duration::from_secs(1),
                mntr: false,
            };
            let status = observe::gather_with(&spec, &paths, &state, how).await;
            match (status.leader.is_some(), since) {
                (false, None) => since = Some((Instant::now(), current.load(Ordering::SeqCst))),
                (true, Some(s)) => {
                    w2.lock().expect("windows").push(close(s));
                    since = None;
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(s) = since {
            w2.lock().expect("windows").push(close(s));
        }
    });
    (handle, stop, windows)
}

fn print_report(ctx: &Ctx, r: &Report) {
    if ctx.json {
        output::print_json(r);
        return;
    }
    if r.from_version != r.to_version {
        crate::outln!("rolling upgrade ZooKeeper {} -> {}", r.from_version, r.to_version);
    }
    for s in &r.steps {
        crate::outln!(
            "node {} ({}): serving again as {} after {} ms",
            s.id,
            s.was.map_or("-".to_string(), |m| m.to_string()),
            s.now.map_or("-".to_string(), |m| m.to_string()),
            s.ms
        );
    }
    let without: u64 = r.leaderless.iter().map(|w| w.ms).sum();
    crate::outln!(
        "done in {}; without a serving leader: {} ms in all ({})",
        output::secs(Duration::from_millis(r.total_ms)),
        without,
        if r.leaderless.is_empty() {
            "never".to_string()
        } else {
            r.leaderless
                .iter()
                .map(|w| format!("{} ms while node {} restarted", w.ms, w.during_node))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
}
