//! `zkdev chaos`: C real clients run a workload (register, sequential, queue) through the ensemble while
//! verify's seeded nemesis injects faults one at a time and heals them; every operation is recorded with
//! its invocation and completion time and outcome, and the history is checked as the workload promises
//! (`engine::workload`). The history, the faults, the journal, the verdict and an SVG timeline are
//! written to a run directory. A violation exits 1 with the smallest excerpt of the history that shows it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Ctx;
use crate::cli::ChaosArgs;
use crate::engine::nemesis::{self as faults, Injected};
use crate::engine::run;
use crate::engine::workload::{self, History, Kind as Workload, Outcome, Record, Verdict};
use crate::engine::writer::Latency;
use crate::error::{Error, Result};
use crate::model::nemesis::{self, Kind, Planned};
use crate::model::spec::ClusterSpec;
use crate::model::svg;
use crate::os::interrupt;
use crate::os::state::ClusterPaths;
use crate::output;
use crate::supervisor::control::Restart;

/// A stretch of the run in which no operation completed successfully (longer than `GAP_MS`).
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub from_ms: u64,
    pub to_ms: u64,
}

const GAP_MS: u64 = 250;

#[derive(Debug, Serialize)]
pub struct Counts {
    pub total: usize,
    pub ok: usize,
    pub failed: usize,
    pub unknown: usize,
    /// Per operation (read, cas, create, ...): ok/failed/unknown.
    pub by_kind: BTreeMap<String, [usize; 3]>,
    /// Successful operations per second over the run.
    pub ok_per_sec: f64,
}

#[derive(Debug, Serialize)]
struct ChaosReport {
    seed: u64,
    /// The command that replays this run's fault schedule.
    replay: String,
    workload: Workload,
    clients: u32,
    duration_ms: u64,
    nemesis: Vec<Kind>,
    planned: Vec<Planned>,
    faults: Vec<Injected>,
    ops: Counts,
    latency_ms: Option<Latency>,
    unavailable: Vec<Window>,
    /// Supervisors that died during the run and were replaced (the faults they held were healed through
    /// the new one).
    supervisor_restarts: Vec<Restart>,
    verdict: Verdict,
    /// The records the verdict's excerpt names.
    excerpt: Vec<Record>,
    out: PathBuf,
    ok: bool,
}

/// The fault kinds to use: those given, or every kind this cluster can take.
fn kinds_for(args: &ChaosArgs, spec: &ClusterSpec) -> Result<Vec<Kind>> {
    let kinds = match &args.nemesis {
        // The workload alone: a healthy ensemble's throughput, or a check without faults.
        Some(text) if text.trim() == "none" => return Ok(Vec::new()),
        Some(text) => nemesis::parse_kinds(text).map_err(Error::usage)?,
        None => Kind::ALL
            .into_iter()
            .filter(|k| !k.needs_net() || spec.net.is_some())
            .filter(|k| *k != Kind::Disk || spec.settings.disk_faults)
            .collect(),
    };
    faults::check_kinds(&kinds, spec, "chaos", args.force)?;
    Ok(kinds)
}

/// The command line that replays the run: the same cluster, workload, seed and schedule.
fn replay_command(ctx: &Ctx, args: &ChaosArgs, seed: u64, kinds: &[Kind], duration_ms: u64, count: usize) -> String {
    let mut words = vec!["zkdev".to_string()];
    if ctx.cluster != "default" {
        words.push(format!("--cluster {}", ctx.cluster));
    }
    let nemesis = if kinds.is_empty() {
        "--nemesis none".to_string()
    } else {
        format!(
            "--nemesis {} --faults {count}",
            kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",")
        )
    };
    words.push(format!(
        "chaos --duration {}s --seed {seed} {nemesis} --workload {} --clients {} --rate {}",
        duration_ms as f64 / 1000.0,
        args.workload.as_str(),
        args.clients,
        args.rate
    ));
    if args.force {
        words.push("--force".into());
    }
    if args.direct {
        words.push("--direct".into());
    }
    words.join(" ")
}

pub async fn run(ctx: &Ctx, args: ChaosArgs) -> Result<()> {
    let kind = args.workload;
    let duration_ms = args.duration.as_millis() as u64;
    if duration_ms < 1000 {
        return Err(Error::usage(format!(
            "--duration {}: give at least 1s",
            crate::model::span::format(args.duration)
        )));
    }
    if args.clients == 0 || args.clients > 64 {
        return Err(Error::usage(format!("--clients {}: give 1 to 64", args.clients)));
    }
    let (paths, spec) = ctx.existing()?;
    let kinds = kinds_for(&args, &spec)?;
    let count = match args.faults {
        _ if kinds.is_empty() => 0,
        Some(0) => {
            return Err(Error::usage(
                "--faults 0: give at least 1 (or --nemesis none for no faults)",
            ))
        }
        Some(n) => n,
        None => nemesis::default_count(duration_ms),
    };
    let seed = args.seed.unwrap_or_else(crate::os::random::u64);
    let plan = if kinds.is_empty() {
        Vec::new()
    } else {
        nemesis::plan(seed, &kinds, count, duration_ms, &spec.ids())
    };
    let replay = replay_command(ctx, &args, seed, &kinds, duration_ms, count);
    let out_dir = match &args.out_dir {
        Some(d) => d.clone(),
        None => paths
            .root
            .join("chaos")
            .join(format!("run-{}", crate::os::clock::now_ms())),
    };
    std::fs::create_dir_all(&out_dir).map_err(|e| Error::io("cannot create the run directory", &out_dir, e))?;

    let sup = ctx.supervisor().await?;
    run::ready(&spec, &paths, "chaos").await?;
    interrupt::install();
    let talk = !ctx.quiet && !ctx.json;
    if talk {
        let faults = if kinds.is_empty() {
            "no faults (--nemesis none)".to_string()
        } else {
            format!(
                "{} from {}",
                crate::model::words::count(plan.len(), "fault"),
                kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",")
            )
        };
        eprintln!(
            "chaos: seed {seed}, {faults} over {} s; replay with: {replay}",
            duration_ms as f64 / 1000.0
        );
        for f in &plan {
            eprintln!("  {}. at {:.1} s: {}", f.n, f.at_ms as f64 / 1000.0, f.describe());
        }
    }
    let history_file = out_dir.join("history.ndjson");
    let load = workload::Load {
        kind,
        clients: args.clients,
        rate: args.rate,
        direct: args.direct,
        history: Some(&history_file),
    };
    let running = workload::start(&spec, &load)
        .await
        .map_err(|e| unreachable_through_proxies(e, &spec, args.direct))?;
    if talk {
        eprintln!(
            "{} {} the {} workload under {}...",
            crate::model::words::count(args.clients as usize, "client"),
            if args.clients == 1 { "runs" } else { "run" },
            kind.as_str(),
            running.base
        );
    }
    let t0 = Instant::now();
    let offset_ms = running.elapsed().as_millis() as u64;
    let cause = ctx.cause();
    let env = faults::Env {
        sup: &sup,
        cause: &cause,
        spec: &spec,
        paths: &paths,
        force: args.force,
    };
    let schedule = run::Schedule {
        faults: plan.clone(),
        leader_kills: 0,
    };
    let outcome = run::run(&env, &schedule, Duration::from_millis(duration_ms), t0, |event| {
        if talk {
            super::verify::render(&event);
        }
    })
    .await?;
    // The faults' times from the start of the workload, as the history's.
    let mut injected = outcome.injected;
    for i in &mut injected {
        i.injected_at_ms += offset_ms;
    }
    let fault_error = outcome.failure.map(|f| match f {
        run::Failure::Fault { fault, error } => {
            error.reword(|m| format!("fault {} ({}): {m}", fault.n, fault.describe()))
        }
        run::Failure::LeaderKill { error, .. } => error,
    });
    let history = running.stop().await;
    // On disk before the check, which may take long or be killed: history.ndjson grew as the run went,
    // history.json is the same, whole.
    if let Some(e) = &history.journal_error {
        return Err(Error::failed(format!(
            "{e}; the workload's znodes are left under {}",
            history.base
        )));
    }
    write_json(&out_dir.join("history.json"), &history)?;
    if interrupt::interrupted() {
        let restored = run::restore(&cause, &sup, &spec, &paths).await;
        if let Some(w) = &restored.warning {
            eprintln!("warning: {w}");
        }
        let restarted = restored.started;
        return Err(Error::failed(format!(
            "interrupted after {}{}; the check was not run; the history is in {}, the workload's znodes are left under {}",
            crate::model::words::count(injected.len(), "fault"),
            if restarted.is_empty() {
                String::new()
            } else {
                format!(
                    "; restarted {} that this run had killed",
                    crate::model::words::nodes(&restarted)
                )
            },
            out_dir.display(),
            history.base
        )));
    }
    if let Some(e) = fault_error {
        // The run ends at the fault that failed; the history so far is still checked if the ensemble serves.
        let checked = match faults::wait_healthy(&env, Duration::from_secs(30), "after the run").await {
            Err(w) => format!(
                "the history was not checked ({w}); the workload's znodes are left under {}",
                history.base
            ),
            Ok(()) => match workload::check(&spec, &history).await {
                Err(c) => format!(
                    "the history could not be checked ({c}); the workload's znodes are left under {}",
                    history.base
                ),
                Ok(verdict) => {
                    let mut r = report(&args, seed, replay, &kinds, plan, injected, &history, verdict, &out_dir);
                    r.supervisor_restarts = sup.restarts();
                    write_run(&paths, &out_dir, &r, &history)?;
                    if r.ok && !workload::clean_up(&spec, &history.base).await {
                        eprintln!(
                            "warning: could not remove the workload's znodes under {} within 15 s; remove them with `zkdev cli 1 -- deleteall {}`",
                            history.base, history.base
                        );
                    }
                    if r.ok {
                        format!(
                            "the history up to it was checked ({}) and the workload's znodes removed; the run is in {}",
                            r.verdict.summary,
                            out_dir.display()
                        )
                    } else {
                        format!(
                            "the history up to it shows a violation: {}; the run is in {}, the workload's znodes \
                             kept under {}",
                            r.verdict.problems.first().cloned().unwrap_or_default(),
                            out_dir.display(),
                            history.base
                        )
                    }
                }
            },
        };
        return Err(e.reword(|m| format!("{m}; {checked}")));
    }
    if talk {
        eprintln!("checking {} operations...", history.records.len());
    }
    // The check asks every node; an election a late fault caused may still be settling.
    faults::wait_healthy(&env, Duration::from_secs(60), "after the run").await?;
    let verdict = workload::check(&spec, &history).await?;
    let mut report = report(&args, seed, replay, &kinds, plan, injected, &history, verdict, &out_dir);
    report.supervisor_restarts = sup.restarts();
    write_run(&paths, &out_dir, &report, &history)?;
    if report.ok && !workload::clean_up(&spec, &history.base).await {
        eprintln!(
            "warning: could not remove the workload's znodes under {} within 15 s; remove them with `zkdev cli 1 -- deleteall {}`",
            history.base, history.base
        );
    }
    print_report(ctx, &report);
    if report.ok {
        Ok(())
    } else if let Some(why) = &report.verdict.inconclusive {
        Err(Error::Inconclusive(format!(
            "chaos could not decide: {why}; the history is in {}, the workload's znodes kept under {}",
            out_dir.display(),
            history.base
        )))
    } else {
        Err(Error::failed(format!(
            "chaos FAILED: {}; the history and the timeline are in {}, the workload's znodes kept under {}; \
             replay the faults with: {}",
            report.verdict.problems.first().cloned().unwrap_or_default(),
            out_dir.display(),
            history.base,
            report.replay
        )))
    }
}

/// The workload could not start: through a `--net` cluster's client proxies, a `link client` fault may be
/// what keeps it out, and `--direct` goes around them.
pub fn unreachable_through_proxies(e: Error, spec: &ClusterSpec, direct: bool) -> Error {
    if direct || spec.net.is_none() {
        return e;
    }
    Error::failed(format!(
        "{e}; the workload's clients connect through the client proxies ({}) as an application does, so a \
         `link client` fault keeps them out (`zkdev links` shows the rules, `zkdev heal` ends them); --direct \
         connects to the nodes' own client ports instead",
        spec.workload_connect_string(false)
    ))
}

/// Operation counts, throughput, latency of successful operations.
pub fn counts(h: &History) -> (Counts, Option<Latency>) {
    let mut by_kind: BTreeMap<String, [usize; 3]> = BTreeMap::new();
    let mut latencies = Vec::new();
    for r in &h.records {
        let slot = match r.outcome {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            Outcome::Unknown => 2,
        };
        by_kind.entry(r.f.to_string()).or_default()[slot] += 1;
        if let (Outcome::Ok, Some(ret)) = (r.outcome, r.ret_us) {
            latencies.push(ret - r.call_us);
        }
    }
    let sum = |i: usize| by_kind.values().map(|v| v[i]).sum::<usize>();
    let (ok, failed, unknown) = (sum(0), sum(1), sum(2));
    let counts = Counts {
        total: h.records.len(),
        ok,
        failed,
        unknown,
        by_kind,
        ok_per_sec: (ok as f64 / (h.duration_ms.max(1) as f64 / 1000.0) * 10.0).round() / 10.0,
    };
    (counts, Latency::of(&latencies))
}

/// Stretches longer than `GAP_MS` in which no operation completed successfully.
pub fn unavailable(h: &History) -> Vec<Window> {
    let mut done: Vec<u64> = h
        .records
        .iter()
        .filter(|r| r.outcome == Outcome::Ok)
        .filter_map(|r| r.ret_us.map(|t| t / 1000))
        .collect();
    done.sort_unstable();
    let mut points = vec![0];
    points.extend(done);
    points.push(h.duration_ms);
    points
        .windows(2)
        .filter(|w| w[1].saturating_sub(w[0]) > GAP_MS)
        .map(|w| Window {
            from_ms: w[0],
            to_ms: w[1],
        })
        .collect()
}

#[expect(clippy::too_many_arguments, reason = "the report gathers every part of the run")]
fn report(
    args: &ChaosArgs,
    seed: u64,
    replay: String,
    kinds: &[Kind],
    planned: Vec<Planned>,
    faults: Vec<Injected>,
    h: &History,
    verdict: Verdict,
    out: &Path,
) -> ChaosReport {
    let (ops, latency_ms) = counts(h);
    let excerpt = verdict.excerpt.iter().filter_map(|id| h.record(*id).cloned()).collect();
    ChaosReport {
        seed,
        replay,
        workload: args.workload,
        clients: args.clients,
        duration_ms: h.duration_ms,
        nemesis: kinds.to_vec(),
        planned,
        faults,
        ops,
        latency_ms,
        unavailable: unavailable(h),
        supervisor_restarts: Vec::new(),
        ok: verdict.ok,
        verdict,
        excerpt,
        out: out.to_path_buf(),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::failed(format!("cannot encode JSON: {e}")))?;
    std::fs::write(path, text + "\n").map_err(|e| Error::io("cannot write", path, e))
}

/// faults.json, verdict.json (the whole report), events.ndjson (the journal), timeline.svg. (history.json
/// and history.ndjson are written before the check.)
fn write_run(paths: &ClusterPaths, dir: &Path, r: &ChaosReport, h: &History) -> Result<()> {
    write_json(&dir.join("faults.json"), &r.faults)?;
    write_json(&dir.join("verdict.json"), r)?;
    let journal = paths.journal();
    if journal.exists() {
        std::fs::copy(&journal, dir.join("events.ndjson")).map_err(|e| Error::io("cannot copy", &journal, e))?;
    }
    let spans: Vec<svg::Span> = h
        .records
        .iter()
        .map(|o| svg::Span {
            row: o.client,
            start_us: o.call_us,
            outcome: match o.outcome {
                Outcome::Ok => 'o',
                Outcome::Fail if o.error.is_none() || refused(o) => 'r',
                Outcome::Fail => 'f',
                Outcome::Unknown => 'u',
            },
            end_us: o.ret_us.or(o.gave_up_us),
            title: describe(o),
        })
        .collect();
    let bars: Vec<svg::Bar> = r
        .faults
        .iter()
        .map(|f| svg::Bar {
            label: format!("{}. {}", f.planned.n, f.what),
            start_ms: f.injected_at_ms,
            end_ms: f.injected_at_ms + f.held_ms.max(100),
        })
        .collect();
    let gaps: Vec<(u64, u64)> = r.unavailable.iter().map(|w| (w.from_ms, w.to_ms)).collect();
    let title = format!(
        "zkdev chaos: {} workload, {}, seed {}: {}",
        r.workload.as_str(),
        crate::model::words::count(r.clients as usize, "client"),
        r.seed,
        if r.ok { "OK" } else { "VIOLATION" }
    );
    let text = svg::timeline(&title, h.duration_ms, h.clients, &spans, &bars, &gaps);
    let file = dir.join("timeline.svg");
    std::fs::write(&file, text).map_err(|e| Error::io("cannot write", &file, e))
}

/// A CAS the server refused because the version had moved on: an answer, not an error. (A dequeue whose
/// item another consumer took first fails without an error: also an answer.)
fn refused(o: &Record) -> bool {
    o.error.as_deref().is_some_and(|e| e.to_lowercase().contains("version"))
}

/// `#12 client 3 cas r1 expect v4 := 42 -> ok [1.234 s .. 1.240 s]`
pub fn describe(o: &Record) -> String {
    let what = match (o.f, o.expect) {
        ("cas", Some(v)) => format!("cas {} if version {v} := {}", o.key, o.value),
        ("read", _) => format!("read {} -> {}", o.key, if o.value.is_empty() { "-" } else { &o.value }),
        (f, _) => format!("{f} {} {}", o.key, o.value),
    };
    let outcome = match o.outcome {
        Outcome::Ok => "ok".to_string(),
        Outcome::Fail => format!("failed ({})", o.error.as_deref().unwrap_or("refused")),
        Outcome::Unknown => format!("unknown ({})", o.error.as_deref().unwrap_or("no answer")),
    };
    let end = o
        .ret_us
        .map_or("...".to_string(), |r| format!("{:.3} s", r as f64 / 1e6));
    format!(
        "#{} client {} {what} -> {outcome} [{:.3} s .. {end}]",
        o.id,
        o.client,
        o.call_us as f64 / 1e6
    )
}

fn print_report(ctx: &Ctx, r: &ChaosReport) {
    if ctx.json {
        output::print_json(r);
        return;
    }
    crate::outln!(
        "operations: {} ({} ok, {} failed, {} unknown) by {} in {:.1} s: {} ok/s",
        r.ops.total,
        r.ops.ok,
        r.ops.failed,
        r.ops.unknown,
        crate::model::words::count(r.clients as usize, "client"),
        r.duration_ms as f64 / 1000.0,
        r.ops.ok_per_sec
    );
    for (f, [ok, failed, unknown]) in &r.ops.by_kind {
        crate::outln!("  {f}: {ok} ok, {failed} failed, {unknown} unknown");
    }
    if let Some(l) = &r.latency_ms {
        crate::outln!(
            "latency of ok operations: median {} ms, p90 {} ms, p99 {} ms, max {} ms",
            l.p50,
            l.p90,
            l.p99,
            l.max
        );
    }
    crate::outln!(
        "faults: {} of {} planned (seed {})",
        r.faults.len(),
        r.planned.len(),
        r.seed
    );
    if !r.faults.is_empty() {
        crate::out!("{}", super::fault_table(&r.faults, false));
    }
    if r.unavailable.is_empty() {
        crate::outln!("unavailable: never more than {GAP_MS} ms without a successful operation");
    } else {
        let w: Vec<String> = r
            .unavailable
            .iter()
            .map(|w| format!("{:.2}-{:.2} s", w.from_ms as f64 / 1000.0, w.to_ms as f64 / 1000.0))
            .collect();
        crate::outln!("unavailable (no operation succeeded): {}", w.join(", "));
    }
    crate::outln!("check ({:.1} ms): {}", r.verdict.check_ms, r.verdict.summary);
    for p in &r.verdict.problems {
        crate::outln!("  {p}");
    }
    if !r.excerpt.is_empty() {
        crate::outln!("the smallest excerpt of the history that shows it:");
        for o in &r.excerpt {
            crate::outln!("  {}", describe(o));
        }
    }
    crate::outln!(
        "run directory: {} (timeline.svg, history.ndjson, history.json, verdict.json)",
        r.out.display()
    );
    crate::outln!("replay: {}", r.replay);
    if r.ok {
        crate::outln!("OK: no violation");
    }
}
