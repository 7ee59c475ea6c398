//! `zkdev verify`: a writer creates sequential znodes through the connect string with a real client while
//! the leader is killed K times (each restarted), or, with `--nemesis`, while seeded random faults (kill,
//! pause, partition, stall, delay) are injected one at a time; afterwards every node is asked for every
//! write. An acknowledged write must be on every node, once, in order, with its data. Unacknowledged writes
//! (the client saw an error) may or may not have landed: that is allowed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Ctx;
use crate::cli::VerifyArgs;
use crate::engine::kill_leader::{self, KillReport};
use crate::engine::nemesis::{self as faults, Injected};
use crate::engine::run::{self, not_coming_back};
use crate::engine::writer::{check_every_node, write_loop, Checked, Latency, Log, NodeCheck, Reach, ROOT};
use crate::error::{Error, Result};
use crate::model::nemesis::{self, Kind, Planned};
use crate::os::interrupt;
use crate::os::tls::TlsFiles;
use crate::output;
use crate::zk::client as zk;
use crate::zk::observe;

/// One event of the run loop, on stderr as it happens (chaos's too: the same loop, the same lines).
pub(super) fn render(event: &run::Event<'_>) {
    match event {
        run::Event::FaultHealed { fault, injected: i } => eprintln!(
            "  fault {} at {:.2} s: {}; held {} ms, every node serving {} ms after the heal",
            fault.n,
            i.injected_at_ms as f64 / 1000.0,
            i.what,
            i.held_ms,
            i.recovered_ms.unwrap_or(0)
        ),
        run::Event::LeaderKilled { n, report: r } => eprintln!(
            "  kill {n}: leader {} (epoch {}) killed; {}; {}",
            r.old_leader,
            r.old_epoch,
            kill_leader::new_leader_phrase(r.new_leader, r.new_epoch, r.new_leader_ms),
            r.rejoined_as
                .map_or("not seen rejoining".to_string(), |m| format!("rejoined as {m}"))
        ),
    }
}

#[derive(Debug, Serialize)]
struct NemesisReport {
    seed: u64,
    kinds: Vec<Kind>,
    planned: usize,
    faults: Vec<Injected>,
}

/// `--nemesis KINDS [--seed N] [--faults N]`, checked against the cluster, with its plan.
struct Nemesis {
    seed: u64,
    kinds: Vec<Kind>,
    plan: Vec<Planned>,
}

fn nemesis_plan(
    args: &VerifyArgs,
    spec: &crate::model::spec::ClusterSpec,
    duration: Duration,
) -> Result<Option<Nemesis>> {
    let Some(text) = &args.nemesis else {
        return Ok(None);
    };
    let kinds = nemesis::parse_kinds(text).map_err(Error::usage)?;
    faults::check_kinds(&kinds, spec, "verify", false)?;
    let count = match args.faults {
        Some(0) => {
            return Err(Error::usage(
                "--faults 0: give at least 1 (or leave --nemesis out to only write and check)",
            ))
        }
        Some(n) => n,
        None => nemesis::default_count(duration.as_millis() as u64),
    };
    // A new seed each run unless given: the clock, mixed with the pid.
    let seed = args.seed.unwrap_or_else(crate::os::random::u64);
    let plan = nemesis::plan(seed, &kinds, count, duration.as_millis() as u64, &spec.ids());
    Ok(Some(Nemesis { seed, kinds, plan }))
}

#[derive(Debug, Serialize)]
struct VerifyReport {
    path: String,
    /// Written and checked over TLS, on every node's secure client port.
    tls: bool,
    attempted: u64,
    acknowledged: usize,
    failed: u64,
    lost: usize,
    duplicated: usize,
    out_of_order: usize,
    unavailability_ms: Vec<u64>,
    /// Attempt -> acknowledgement of the acknowledged writes.
    latency_ms: Option<Latency>,
    kills: Vec<KillReport>,
    /// With --nemesis: the seed, the plan's kinds, and every fault as injected.
    #[serde(skip_serializing_if = "Option::is_none")]
    nemesis: Option<NemesisReport>,
    nodes: Vec<NodeCheck>,
    errors: BTreeMap<String, u64>,
    ok: bool,
}

pub async fn run(ctx: &Ctx, args: VerifyArgs) -> Result<()> {
    let duration = args.duration;
    if args.writes_per_sec == 0 || args.writes_per_sec > 5000 {
        return Err(Error::usage(format!(
            "--writes-per-sec {}: give 1 to 5000",
            args.writes_per_sec
        )));
    }
    let (paths, spec) = ctx.existing()?;
    if args.tls && !spec.settings.tls {
        return Err(Error::usage(format!(
            "--tls: cluster `{}` was made without TLS, so no node has a secure client port; {}, or run verify \
             without --tls",
            spec.name,
            spec.remake_advice(&["--tls"])
        )));
    }
    let reach = Reach {
        tls: args.tls.then(|| TlsFiles::of(&paths)),
        direct: args.direct,
    };
    let nemesis = nemesis_plan(&args, &spec, duration)?;
    if args.kills > 0 && nemesis.is_none() {
        survives_leader_kills(&spec)?;
    }
    let sup = ctx.supervisor().await?;
    // A paused or stopped node never serves again by waiting: say so now rather than after the wait below.
    let now = observe::gather(&spec, &paths, &paths.load_state()?).await;
    if let Some(why) = not_coming_back(&now) {
        return Err(Error::failed(format!("verify needs every node serving, but {why}")));
    }
    let healthy = observe::wait_until(&spec, &paths, Duration::from_secs(30), |s| s.healthy(), |_| {}).await;
    if let Err((_, s)) = healthy {
        let remedy = not_coming_back(&s)
            .unwrap_or_else(|| "an election may still be under way: `zkdev wait` waits for one".to_string());
        return Err(Error::failed(format!(
            "verify needs a healthy ensemble to start: {}; {remedy}",
            output::summary_line(&s)
        )));
    }
    interrupt::install();

    let connect = reach.connect_string(&spec);
    let session = Duration::from_secs(30);
    let setup = reach.connect(&connect, session, Duration::from_secs(10)).await?;
    zk::ensure(&setup, ROOT).await?;
    let base = format!("{ROOT}/{}", crate::os::clock::now_ms());
    zk::ensure(&setup, &base).await?;
    drop(setup);
    if !ctx.quiet && !ctx.json {
        match &nemesis {
            None => eprintln!(
                "writing {} znodes/s{} under {base} for at least {} while killing the leader {}...",
                args.writes_per_sec,
                if args.tls { " over TLS" } else { "" },
                output::secs(duration),
                crate::model::words::count(args.kills as usize, "time")
            ),
            Some(n) => {
                eprintln!(
                    "nemesis: seed {}, {} from {} over {} (the same seed replays them: --seed {})",
                    n.seed,
                    crate::model::words::count(n.plan.len(), "fault"),
                    n.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(","),
                    output::secs(duration),
                    n.seed
                );
                for f in &n.plan {
                    eprintln!("  {}. at {:.1} s: {}", f.n, f.at_ms as f64 / 1000.0, f.describe());
                }
                eprintln!(
                    "writing {} znodes/s{} under {base} for at least {}...",
                    args.writes_per_sec,
                    if args.tls { " over TLS" } else { "" },
                    output::secs(duration)
                );
            }
        }
    }

    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attempts = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = tokio::spawn(write_loop(
        reach.clone(),
        connect.clone(),
        base.clone(),
        Duration::from_secs_f64(1.0 / f64::from(args.writes_per_sec)),
        log.clone(),
        stop.clone(),
        attempts.clone(),
    ));

    let t0 = Instant::now();
    let cause = ctx.cause();
    let env = faults::Env {
        sup: &sup,
        cause: &cause,
        spec: &spec,
        paths: &paths,
        force: false,
    };
    let schedule = run::Schedule {
        faults: nemesis.as_ref().map(|n| n.plan.clone()).unwrap_or_default(),
        leader_kills: if nemesis.is_some() { 0 } else { args.kills },
    };
    let talk = !ctx.quiet && !ctx.json;
    let outcome = run::run(&env, &schedule, duration, t0, |event| {
        if talk {
            render(&event);
        }
    })
    .await?;
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
        let restored = run::restore(&cause, &sup, &spec, &paths).await;
        if let Some(w) = &restored.warning {
            eprintln!("warning: {w}");
        }
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
            "interrupted after {done}; {what}; the check was not run and the writes are left under {base}"
        )));
    }
    if let Some(e) = kill_error {
        let what = if nemesis.is_some() { "a fault" } else { "a leader kill" };
        return Err(Error::failed(format!("{what} failed, so the check was not run: {e}")));
    }

    // The membership may have changed while it wrote (`zkdev add`, `remove`, ...): every node the cluster
    // has now is checked, a node added since included.
    let spec = paths.load_spec().unwrap_or(spec);
    // Everything back and serving before the check.
    if let Err((_, s)) = observe::wait_until(&spec, &paths, Duration::from_secs(60), |s| s.healthy(), |_| {}).await {
        return Err(Error::failed(format!(
            "the ensemble did not come back to all serving after the kills: {}",
            output::summary_line(&s)
        )));
    }

    let log = std::mem::take(&mut *log.lock().expect("writer finished"));
    let Checked {
        nodes,
        lost,
        duplicated,
        out_of_order,
        ok,
    } = check_every_node(&reach, &spec, &base, &log.acked).await;

    let report = VerifyReport {
        path: base.clone(),
        tls: args.tls,
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
    print_report(ctx, &report);
    if ok {
        Ok(())
    } else {
        Err(Error::failed(format!(
            "verify FAILED: {} lost, {} duplicated, {} out of order; the writes are kept under {base}",
            crate::model::words::count(report.lost as usize, "acknowledged write"),
            report.duplicated,
            report.out_of_order
        )))
    }
}

/// Verify kills the leader and needs the other voters to elect a new one: at least 3 voters.
fn survives_leader_kills(spec: &crate::model::spec::ClusterSpec) -> Result<()> {
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

fn print_report(ctx: &Ctx, r: &VerifyReport) {
    if ctx.json {
        output::print_json(r);
        return;
    }
    crate::outln!(
        "writes: {} attempted, {} acknowledged, {} failed (not acknowledged: allowed)",
        r.attempted,
        r.acknowledged,
        r.failed
    );
    crate::outln!(
        "lost: {} (must be 0), duplicated: {}, out of order: {}",
        r.lost,
        r.duplicated,
        r.out_of_order
    );
    if let Some(l) = &r.latency_ms {
        crate::outln!(
            "acknowledged write latency: median {} ms, p90 {} ms, p99 {} ms, max {} ms",
            l.p50,
            l.p90,
            l.p99,
            l.max
        );
    }
    if let Some(n) = &r.nemesis {
        crate::outln!(
            "faults injected: {} of {} planned (seed {}; `--seed {}` replays them)",
            n.faults.len(),
            n.planned,
            n.seed,
            n.seed
        );
        crate::out!("{}", super::fault_table(&n.faults, true));
    }
    if !r.unavailability_ms.is_empty() {
        let w: Vec<String> = r.unavailability_ms.iter().map(|ms| format!("{ms} ms")).collect();
        crate::outln!(
            "unavailability windows (first failed write -> next acknowledged): {}",
            w.join(", ")
        );
    }
    let rows: Vec<Vec<String>> = r
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.id.to_string(),
                n.present.to_string(),
                n.missing.to_string(),
                n.wrong_data.to_string(),
                n.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    crate::out!(
        "{}",
        output::table(&["NODE", "PRESENT", "MISSING", "WRONG DATA", "ERROR"], &rows)
    );
    if r.ok {
        crate::outln!(
            "OK: every acknowledged write is on every node, once, in order{}",
            if r.tls { " (written and read over TLS)" } else { "" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::Dist;
    use crate::model::spec::{tests::settings, ClusterSpec};

    #[test]
    fn verify_refuses_clusters_a_leader_kill_would_leave_without_quorum() {
        for voters in [1, 2] {
            let spec = ClusterSpec::build("one", "p", settings("fast"), Dist::fixture(), voters, 1).unwrap();
            let err = survives_leader_kills(&spec).unwrap_err().to_string();
            let has = crate::model::words::count(voters as usize, "voter");
            assert!(err.contains(&format!("has {has}:")), "{err}");
            assert!(err.contains("at least 3 voters"), "{err}");
            assert!(
                err.contains("`zkdev --cluster one down --purge && zkdev --cluster one up --nodes 3 --observers 1"),
                "{err}"
            );
            assert!(!err.contains("(s)"), "{err}");
            assert!(!err.contains("--force"), "{err}");
        }
        let spec = ClusterSpec::build("three", "p", settings("fast"), Dist::fixture(), 3, 0).unwrap();
        survives_leader_kills(&spec).unwrap();
    }

    #[test]
    fn nemesis_network_faults_need_proxied_links_and_a_seed_fixes_the_plan() {
        let args = |kinds: &str| VerifyArgs {
            out: crate::cli::JsonArg { json: false },
            kills: 3,
            writes_per_sec: 50,
            duration: Duration::from_secs(10),
            nemesis: Some(kinds.into()),
            seed: Some(7),
            faults: None,
            tls: false,
            direct: false,
        };
        let plain = ClusterSpec::build("plain", "p", settings("fast"), Dist::fixture(), 3, 0).unwrap();
        let ten = Duration::from_secs(10);
        let err = nemesis_plan(&args("kill,stall,delay"), &plain, ten)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--nemesis stall,delay needs proxied links"), "{err}");
        assert!(
            err.contains("`zkdev --cluster plain down --purge && zkdev --cluster plain up --nodes 3 ")
                && err.contains(" --net`"),
            "{err}"
        );
        let n = nemesis_plan(&args("kill,pause"), &plain, ten).unwrap().unwrap();
        assert_eq!((n.seed, n.plan.len()), (7, 2));
        assert_eq!(
            n.plan,
            nemesis_plan(&args("kill,pause"), &plain, ten).unwrap().unwrap().plan
        );
        let one = ClusterSpec::build("one", "p", settings("fast"), Dist::fixture(), 1, 0).unwrap();
        let err = nemesis_plan(&args("pause"), &one, ten).err().unwrap().to_string();
        assert!(err.contains("at least 3 voters"), "{err}");
        // Disk faults need the library in the nodes: a cluster made without it is told how to get one.
        let err = nemesis_plan(&args("kill,disk"), &plain, ten).err().unwrap().to_string();
        assert!(err.contains("--nemesis disk needs the disk-fault library"), "{err}");
        assert!(
            err.contains("`zkdev --cluster plain down --purge && zkdev --cluster plain up --nodes 3 ")
                && err.contains(" --disk-faults`"),
            "{err}"
        );
        let n = nemesis_plan(&args("expire"), &plain, ten).unwrap().unwrap();
        assert_eq!(n.plan.len(), 2);
    }
}
