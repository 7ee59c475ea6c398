//! `zkdev up`: render, check ports, start the nodes that are not running, wait for one serving leader.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{new_spec, seconds, Ctx, NewCluster};
use crate::cli::UpArgs;
use crate::error::{Error, Result};
use crate::observe::{self, ClusterStatus, ProcessState, WaitFailure};
use crate::output;
use crate::spec::ClusterSpec;
use crate::state::{ClusterPaths, StopReason};
use crate::{interrupt, launch, process};

#[derive(Serialize)]
struct UpReport<'a> {
    cluster: &'a str,
    started: Vec<u32>,
    elapsed_ms: u64,
    status: &'a ClusterStatus,
}

pub async fn run(ctx: &Ctx, args: UpArgs) -> Result<()> {
    let timeout = seconds(args.timeout, "--timeout")?;
    let paths = ctx.paths();
    // A new cluster's flags and profile are checked before anything is written, even the lock file.
    let candidate = if paths.exists() {
        None
    } else {
        Some(new_spec(
            ctx,
            NewCluster {
                profile: args.profile.as_deref(),
                port_offset: args.port_offset,
                zk_home: args.zk_home.as_deref(),
                dist: args.dist.as_deref(),
                voters: args.nodes.unwrap_or(3),
                observers: args.observers.unwrap_or(0),
            },
        )?)
    };
    let home = &ctx.home.root;
    std::fs::create_dir_all(home).map_err(|e| {
        Error::env(format!(
            "cannot create zkdev's home {}: {e}; pass a writable --home DIR (or set ZKDEV_HOME)",
            home.display()
        ))
    })?;
    let _lock = paths.lock(Duration::from_secs(180))?;
    // Under the lock: another `up` may have made the cluster meanwhile.
    let spec = match candidate {
        Some(spec) if !paths.exists() => {
            super::warn_about(ctx, &spec, true);
            if spec.voter_count() % 2 == 0 && !ctx.quiet {
                let n = spec.voter_count();
                eprintln!(
                    "warning: {n} voters survive {} failed voter(s), as {} would: an even count makes every quorum \
                     one vote larger without surviving more failures (use {} or {})",
                    (n - 1) / 2,
                    n - 1,
                    n - 1,
                    n + 1
                );
            }
            spec
        }
        _ => {
            let spec = paths.load_spec()?;
            check_same_shape(ctx, &spec, &args)?;
            super::warn_about(ctx, &spec, false);
            spec
        }
    };
    launch::check_dist_present(&spec)?;

    let mut state = paths.load_state_adopting(&spec.ids())?;
    let before = observe::gather(&spec, &paths, &state).await;
    let to_start: Vec<u32> = before
        .nodes
        .iter()
        .filter(|n| matches!(n.process, ProcessState::Stopped | ProcessState::Crashed))
        .map(|n| n.id)
        .collect();
    launch::check_ports_free(&spec, &to_start)?;
    if !paths.exists() {
        create_cluster_dir(&paths, &spec)?;
    }
    // Ctrl-C while starting: stop what this run started instead of leaving half an ensemble.
    interrupt::install();
    let t0 = Instant::now();
    let started = launch::start_nodes(&spec, &paths, &mut state, &to_start)?;

    if args.no_wait {
        let status = observe::gather(&spec, &paths, &state).await;
        report(ctx, &spec, &started, t0.elapsed(), &status, false);
        return Ok(());
    }

    let result = super::wait_healthy(ctx, &spec, &paths, timeout, t0).await;

    match result {
        Ok(status) => {
            report(ctx, &spec, &started, t0.elapsed(), &status, true);
            if args.foreground {
                return foreground(ctx, &spec, &paths).await;
            }
            Ok(())
        }
        Err((failure, status)) => {
            let mut detail = String::new();
            if failure == WaitFailure::Interrupted {
                stop_started(&spec, &paths, &started, &mut state);
                return Err(Error::failed(format!(
                    "interrupted: stopped the {} node(s) this run had started; data kept",
                    started.len()
                )));
            }
            let bad: Vec<u32> = match failure {
                WaitFailure::Crashed(id) => vec![id],
                _ => status.not_serving().iter().map(|n| n.id).collect(),
            };
            for id in &bad {
                detail.push_str(&observe::log_tail(&paths, *id, 12));
            }
            let what = match failure {
                WaitFailure::Crashed(id) => {
                    let java = spec.dist.java.display().to_string();
                    let cause = crate::diagnose::node_died(&paths.log_file(id), &java, process::reap(&state.node(id)));
                    format!(
                        "node {id} exited while starting{}",
                        cause.map(|c| format!(": {c}")).unwrap_or_default()
                    )
                }
                _ => format!(
                    "the ensemble did not serve with one leader within {}; not serving: {}",
                    output::secs(timeout),
                    describe_nodes(&status, &bad)
                ),
            };
            let aftermath = if args.keep_on_failure {
                "the nodes are left running (--keep-on-failure); inspect with `zkdev status`, stop with `zkdev down`"
                    .to_string()
            } else {
                stop_started(&spec, &paths, &started, &mut state);
                format!(
                    "stopped the {} node(s) this run started (pass --keep-on-failure to inspect them running)",
                    started.len()
                )
            };
            Err(Error::failed_with(format!("{what}; {aftermath}"), detail))
        }
    }
}

fn describe_nodes(status: &ClusterStatus, ids: &[u32]) -> String {
    ids.iter()
        .filter_map(|id| status.node(*id))
        .map(|n| {
            let mode = n.mode.clone().unwrap_or_else(|| "no answer".into());
            format!("node {} ({}, {mode})", n.id, n.process.as_str())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `up --foreground`: watch until Ctrl-C, then stop every node (data kept) so no JVM outlives the session.
async fn foreground(ctx: &Ctx, spec: &ClusterSpec, paths: &ClusterPaths) -> Result<()> {
    if !ctx.quiet && !ctx.json {
        eprintln!("watching; Ctrl-C stops every node (data kept)");
    }
    let watched = super::watch::follow(ctx, spec, paths, Duration::from_millis(100), None).await;
    let mut state = paths.load_state_adopting(&spec.ids())?;
    let ids = spec.ids();
    let t = Instant::now();
    launch::stop_nodes(
        Some(spec),
        paths,
        &mut state,
        &ids,
        Duration::from_secs(10),
        StopReason::Stopped,
    )?;
    if !ctx.json {
        crate::outln!(
            "stopped cluster `{}` in {}; data kept (`zkdev up` starts it again)",
            spec.name,
            output::secs(t.elapsed())
        );
    }
    watched
}

/// Asked for another shape than the cluster has: refuse, and say how to get what was asked.
fn check_same_shape(ctx: &Ctx, spec: &ClusterSpec, args: &UpArgs) -> Result<()> {
    let mut diffs = Vec::new();
    if let Some(n) = args.nodes.filter(|n| *n as usize != spec.voter_count()) {
        diffs.push(format!("--nodes {n} (it has {})", spec.voter_count()));
    }
    if let Some(m) = args.observers.filter(|m| *m as usize != spec.observer_count()) {
        diffs.push(format!("--observers {m} (it has {})", spec.observer_count()));
    }
    if let Some(k) = args.port_offset.filter(|k| *k != spec.settings.offset) {
        diffs.push(format!("--port-offset {k} (it has {})", spec.settings.offset));
    }
    if let Some(p) = &args.profile {
        let same = spec.profile == *p || spec.profile == format!("built-in profile `{p}`");
        if !same {
            diffs.push(format!("--profile {p} (it was made from {})", spec.profile));
        }
    }
    if let Some(v) = args.dist.as_ref().filter(|v| **v != spec.dist.version) {
        diffs.push(format!(
            "--dist {v} (it runs {}; `zkdev rolling-restart --dist {v}` moves it without downtime)",
            spec.dist.version
        ));
    }
    if args.zk_home.is_some() {
        diffs.push("--zk-home (the installation is fixed when a cluster is made)".into());
    }
    if diffs.is_empty() {
        return Ok(());
    }
    Err(Error::usage(format!(
        "cluster `{}` already exists with another shape: {}. A cluster keeps the shape and settings its data was made with: run `zkdev up` without \
         those flags to start it as it is, remove it first with `zkdev down --purge`, or make a second one with \
         `--cluster NAME --port-offset K`",
        ctx.cluster,
        diffs.join(", ")
    )))
}

fn create_cluster_dir(paths: &ClusterPaths, spec: &ClusterSpec) -> Result<()> {
    std::fs::create_dir_all(&paths.root).map_err(|e| {
        Error::env(format!(
            "cannot create {}: {e}; pass a writable --home DIR (or set ZKDEV_HOME)",
            paths.root.display()
        ))
    })?;
    crate::state::write_atomic(
        &paths.marker(),
        b"This directory was created by zkdev; `zkdev down --purge` removes it.\n",
    )?;
    crate::state::write_atomic(&paths.spec_file(), spec.to_toml().as_bytes())
}

/// Stop the nodes this run started (failure or Ctrl-C), leaving the state file consistent.
fn stop_started(spec: &ClusterSpec, paths: &ClusterPaths, started: &[u32], state: &mut crate::state::State) {
    if let Err(e) = launch::stop_nodes(
        Some(spec),
        paths,
        state,
        started,
        Duration::from_secs(5),
        StopReason::Stopped,
    ) {
        eprintln!("warning: {e}");
    }
}

fn report(ctx: &Ctx, spec: &ClusterSpec, started: &[u32], elapsed: Duration, status: &ClusterStatus, waited: bool) {
    if ctx.json {
        output::print_json(&UpReport {
            cluster: &spec.name,
            started: started.to_vec(),
            elapsed_ms: elapsed.as_millis() as u64,
            status,
        });
        return;
    }
    let shape = format!(
        "{} voter{} + {} observer{}",
        spec.voter_count(),
        if spec.voter_count() == 1 { "" } else { "s" },
        spec.observer_count(),
        if spec.observer_count() == 1 { "" } else { "s" }
    );
    if started.is_empty() {
        crate::outln!("cluster `{}` ({shape}) was already running", spec.name);
    } else if waited {
        crate::outln!(
            "cluster `{}` ({shape}) is serving: started node(s) {} in {}",
            spec.name,
            started.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
            output::secs(elapsed)
        );
    } else {
        crate::outln!(
            "cluster `{}` ({shape}): started, not waiting for a leader (--no-wait)",
            spec.name
        );
    }
    crate::outln!("{}", output::summary_line(status));
}
