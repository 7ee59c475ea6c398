//! `zkdev up`: render, check ports, start the nodes that are not running, wait for one serving leader.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{new_spec, Ctx, NewCluster};
use crate::cli::UpArgs;
use crate::engine::boot::{BootEvent, Waited};
use crate::error::{Error, Result};
use crate::model::spec::ClusterSpec;
use crate::os::interrupt;
use crate::os::launch;
use crate::os::state::ClusterPaths;
use crate::output;
use crate::supervisor::control::{Request, Supervisor};
use crate::supervisor::replies::{ShutdownReply, StartReply, StopReply};
use crate::zk::observe::{self, ClusterStatus, ProcessState, WaitFailure};

#[derive(Serialize)]
struct UpReport<'a> {
    cluster: &'a str,
    started: Vec<u32>,
    elapsed_ms: u64,
    status: &'a ClusterStatus,
}

pub async fn run(ctx: &Ctx, args: UpArgs) -> Result<()> {
    let timeout = args.timeout;
    let paths = ctx.paths();
    if args.one_by_one && paths.exists() {
        return Err(Error::usage(format!(
            "--one-by-one starts a new cluster for its first election, but cluster `{}` exists already (its nodes \
             have voted before: a restart is not a first start); `zkdev down --purge` removes it, or pass \
             --cluster NAME for a second one",
            ctx.cluster
        )));
    }
    // A new cluster's flags and profile are checked before anything is written, even the lock file.
    let candidate = if paths.exists() {
        None
    } else {
        Some(new_spec(
            ctx,
            NewCluster {
                profile: args.profile.as_deref(),
                port_offset: args.port_offset,
                addresses: args.addresses,
                address_base: args.address_base,
                zk_home: args.zk_home.as_deref(),
                dist: args.dist.as_deref(),
                voters: args.nodes.unwrap_or(3),
                observers: args.observers.unwrap_or(0),
                tls: args.tls,
                net: args.net,
                net_port_base: args.net_port_base,
                reconfig: args.reconfig,
            },
        )?)
    };
    // `--disk-faults` is a setting of its own, like the profile's `[faults] disk`.
    let candidate = candidate.map(|mut spec| {
        spec.settings.disk_faults |= args.disk_faults;
        spec
    });
    let home = &ctx.home.root;
    std::fs::create_dir_all(home).map_err(|e| {
        Error::env(format!(
            "cannot create zkdev's home {}: {e}; pass a writable --home DIR (or set ZKDEV_HOME)",
            home.display()
        ))
    })?;
    // The lock guards creating the cluster only: two `up`s at once make one cluster; starting its nodes
    // is the supervisor's business, serialised per node there.
    let spec = {
        let _lock = paths.lock(Duration::from_secs(180)).await?;
        match candidate {
            Some(spec) if !paths.exists() => {
                super::warn_about(ctx, &spec, true);
                if spec.voter_count() % 2 == 0 && !ctx.quiet {
                    let n = spec.voter_count();
                    eprintln!(
                        "warning: {n} voters survive {}, as {} would: an even count makes every \
                         quorum one vote larger without surviving more failures (use {} or {})",
                        crate::model::words::count((n - 1) / 2, "failed voter"),
                        n - 1,
                        n - 1,
                        n + 1
                    );
                }
                launch::check_dist_present(&spec)?;
                let mut spec = spec;
                if let Some(choice) = args.slot {
                    spec = super::slot::place(&paths, spec, choice).await?;
                }
                if let Some(pid) = args.owner {
                    spec.owner = Some(super::slot::owner(pid)?);
                }
                launch::check_ports_free(&spec, &spec.ids()).await?;
                launch::check_proxy_ports_free(&spec)?;
                // Every cluster has a super user: `reconfig` needs it, and `reset` deletes znodes whatever
                // their ACLs.
                std::fs::create_dir_all(&paths.root).map_err(|e| Error::io("cannot create", &paths.root, e))?;
                spec.super_digest = Some(crate::os::super_user::create(&paths)?);
                create_cluster_dir(&paths, &spec)?;
                crate::os::tls::ensure(&spec, &paths)?;
                spec
            }
            _ => {
                let spec = paths.load_spec()?;
                check_same_shape(ctx, &spec, &args)?;
                super::slot::check_same(&spec, args.slot, args.owner)?;
                super::warn_about(ctx, &spec, false);
                launch::check_dist_present(&spec)?;
                crate::os::tls::ensure(&spec, &paths)?;
                spec
            }
        }
    };

    // A disk fault set on a stopped node (`zkdev disk`, after `down`, which clears them) waits for it: say so.
    if !ctx.quiet {
        for (id, fault) in disk_faults_on(&spec, &paths, &spec.ids()) {
            eprintln!(
                "warning: node {id}'s disk is set to {} (`zkdev disk`); it starts with that fault. `zkdev disk {id} \
                 --heal` removes it",
                fault.describe()
            );
        }
    }
    // Ctrl-C while starting: stop what this run started instead of leaving half an ensemble.
    interrupt::install();
    let sup = ctx.supervisor().await?;
    let t0 = Instant::now();
    let log_lengths = crate::zk::startup::log_lengths(&spec, &paths);
    let answer = if args.one_by_one {
        let how = crate::engine::boot::OneByOne { gap: args.gap, timeout };
        let progress = |e: &BootEvent| {
            if !ctx.quiet && !ctx.json {
                eprintln!("{}", describe_boot(&spec, e, args.gap));
            }
        };
        crate::engine::boot::start_one_by_one(&sup, &ctx.cause(), &spec, &paths, how, progress)
            .await
            .map(|r| r.started)
    } else {
        sup.ask_for::<StartReply>(
            Request::Start {
                ids: spec.ids(),
                cause: ctx.cause(),
            },
            Duration::from_secs(120),
        )
        .await
        .map(|r| r.started)
    };
    let started: Vec<u32> = match answer {
        Ok(started) => started,
        Err(e) => {
            // Nothing of this run is left: the supervisor stops what it had started itself.
            if sup.started_here {
                shutdown(ctx, &sup, Duration::from_secs(5)).await;
            }
            return Err(e);
        }
    };

    if args.no_wait {
        let status = observe::gather(&spec, &paths, &paths.load_state()?).await;
        report(ctx, &spec, &started, t0.elapsed(), &status, false);
        return Ok(());
    }

    // Fail at once when a node shows it will never serve (a fatal line in its log, a port that closes every
    // connection) rather than at the end of --timeout.
    let (result, doomed) = tokio::select! {
        r = super::wait_healthy(ctx, &spec, &paths, timeout, t0) => (r, None),
        d = crate::zk::startup::first_doomed(&spec, &paths, &started, &log_lengths) => {
            // A node about to exit (ZooKeeper gives up after such a line) is reported as the crash it is, with
            // the supervisor's diagnosis; one that keeps running is reported by what was seen.
            let deadline = Instant::now() + Duration::from_millis(1500);
            loop {
                let status = observe::gather(&spec, &paths, &paths.load_state().unwrap_or_default()).await;
                let exited = status.node(d.id).is_some_and(|n| n.process() == ProcessState::Crashed);
                if exited || Instant::now() >= deadline {
                    break (Err((WaitFailure::Crashed(d.id), status)), (!exited).then_some(d));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    match result {
        Ok(status) => {
            report(ctx, &spec, &started, t0.elapsed(), &status, true);
            // A missing class did not keep a node from serving: an optional part of ZooKeeper is off. Say so.
            if !ctx.quiet {
                for (id, line) in crate::zk::startup::missing_classes(&paths, &started, &log_lengths) {
                    eprintln!(
                        "warning: node {id} serves, but its log says `{line}`: {}",
                        crate::model::diagnose::optional_part_missing(&line)
                    );
                }
            }
            if args.foreground {
                return foreground(ctx, &spec, &paths).await;
            }
            Ok(())
        }
        Err((failure, status)) => {
            let mut detail = String::new();
            if failure == WaitFailure::Interrupted {
                stop_started(ctx, &sup, &started, &status).await;
                return Err(Error::failed(format!(
                    "interrupted: stopped the {} this run had started; data kept",
                    crate::model::words::count(started.len(), "node")
                )));
            }
            let bad: Vec<u32> = match failure {
                WaitFailure::Crashed(id) => vec![id],
                _ => status.not_serving().iter().map(|n| n.id).collect(),
            };
            for id in &bad {
                detail.push_str(&log_excerpt(&paths, *id, 12));
            }
            let what = match failure {
                WaitFailure::Crashed(id) if doomed.is_some() => {
                    let d = doomed.expect("checked");
                    format!(
                        "node {id} cannot serve: {} (after {})",
                        d.why,
                        output::secs(t0.elapsed())
                    )
                }
                WaitFailure::Crashed(id) => {
                    // The supervisor reaped it and works out why (exit status, the log's telling line).
                    let cause = recorded_crash(&paths, id)
                        .await
                        .or_else(|| status.node(id).and_then(|n| n.detail().map(String::from)));
                    format!(
                        "node {id} exited while starting{}",
                        cause.map(|c| format!(": {c}")).unwrap_or_default()
                    )
                }
                _ => format!(
                    "the ensemble did not serve with one leader within {}; not serving: {}{}",
                    output::secs(timeout),
                    describe_nodes(&status, &bad),
                    likely_causes(&spec, &paths, &bad, &log_lengths)
                ),
            };
            let aftermath = if args.keep_on_failure {
                "the nodes are left running (--keep-on-failure); inspect with `zkdev status`, stop with `zkdev down`"
                    .to_string()
            } else {
                stop_started(ctx, &sup, &started, &status).await;
                format!(
                    "stopped the {} this run started (pass --keep-on-failure to inspect {} running)",
                    crate::model::words::count(started.len(), "node"),
                    if started.len() == 1 { "it" } else { "them" }
                )
            };
            let kind = match failure {
                WaitFailure::Timeout => crate::error::ErrorKind::Timeout,
                _ => crate::error::ErrorKind::Failed,
            };
            Err(Error::from_parts(kind, format!("{what}; {aftermath}"), detail))
        }
    }
}

/// What zkdev knows that keeps the nodes `bad` from serving, as `; ...` clauses: a disk fault left on them
/// (`zkdev disk`), a missing class in their logs.
fn likely_causes(
    spec: &ClusterSpec,
    paths: &ClusterPaths,
    bad: &[u32],
    since: &std::collections::BTreeMap<u32, u64>,
) -> String {
    let mut out = String::new();
    for (id, fault) in disk_faults_on(spec, paths, bad) {
        out.push_str(&format!(
            "; node {id}'s disk is set to {} (`zkdev disk`): `zkdev disk {id} --heal` removes it",
            fault.describe()
        ));
    }
    for (id, line) in crate::zk::startup::missing_classes(paths, bad, since) {
        out.push_str(&format!("; node {id}'s log says `{line}`"));
    }
    out
}

/// The disk faults on the nodes `ids` (none when the cluster has no disk faults).
fn disk_faults_on(spec: &ClusterSpec, paths: &ClusterPaths, ids: &[u32]) -> Vec<(u32, crate::model::disk::DiskFault)> {
    if !spec.settings.disk_faults {
        return Vec::new();
    }
    ids.iter()
        .map(|id| (*id, crate::os::faultfs::get(paths, *id)))
        .filter(|(_, f)| *f != crate::model::disk::DiskFault::Healthy)
        .collect()
}

/// How the supervisor recorded node `id`'s crash, once it has (it reaps the JVM a moment after this
/// command's probe may have seen it gone).
async fn recorded_crash(paths: &ClusterPaths, id: u32) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if let Ok(state) = paths.read_state() {
            if let crate::os::state::NodeState::Crashed { how, .. } = state.node(id) {
                return Some(how.trim_start_matches("crashed: ").to_string());
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The lines of node `id`'s log an error shows: its first exception (with the line before and two frames),
/// then the last `n` lines.
fn log_excerpt(paths: &ClusterPaths, id: u32, n: usize) -> String {
    let path = paths.log_file(id);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut out = format!("  from {}:\n", path.display());
    let lines = crate::model::diagnose::excerpt(&text, n);
    if lines.is_empty() {
        out.push_str("    (empty)\n");
    }
    for l in lines {
        out.push_str("    ");
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Stop the nodes this run started (failure or Ctrl-C). When no other node runs, the supervisor goes too:
/// a failed `up` leaves nothing behind.
async fn stop_started(ctx: &Ctx, sup: &Supervisor, started: &[u32], status: &ClusterStatus) {
    let others_running = status
        .nodes
        .iter()
        .any(|n| !started.contains(&n.id) && !matches!(n.process(), ProcessState::Stopped | ProcessState::Crashed));
    if others_running {
        let req = Request::Stop {
            ids: started.to_vec(),
            grace_ms: 5000,
            cause: ctx.cause(),
        };
        if let Err(e) = sup.ask_for::<StopReply>(req, Duration::from_secs(30)).await {
            eprintln!("warning: {e}");
        }
    } else {
        shutdown(ctx, sup, Duration::from_secs(5)).await;
    }
}

/// Stop every node and the supervisor, and wait until the supervisor has exited.
pub async fn shutdown(ctx: &Ctx, sup: &Supervisor, grace: Duration) {
    let record = crate::supervisor::Record::read(&ctx.paths());
    let req = Request::Shutdown {
        grace_ms: grace.as_millis() as u64,
        cause: ctx.cause(),
    };
    if let Err(e) = sup.ask_for::<ShutdownReply>(req, grace + Duration::from_secs(30)).await {
        eprintln!("warning: {e}");
    }
    super::down::wait_supervisor_gone(&ctx.paths(), record, Duration::from_secs(5)).await;
}

fn describe_nodes(status: &ClusterStatus, ids: &[u32]) -> String {
    ids.iter()
        .filter_map(|id| status.node(*id))
        .map(|n| {
            let mode = n.mode().map_or_else(|| "no answer".to_string(), |m| m.to_string());
            format!("node {} ({}, {mode})", n.id, n.process().as_str())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `up --foreground`: watch until Ctrl-C, then stop every node and the supervisor (data kept) so nothing
/// outlives the session. The supervisor serves other commands meanwhile: `kill-leader` from another shell
/// does not wait for this one.
async fn foreground(ctx: &Ctx, spec: &ClusterSpec, paths: &ClusterPaths) -> Result<()> {
    if !ctx.quiet && !ctx.json {
        eprintln!("watching; Ctrl-C stops every node (data kept)");
    }
    let watched = super::watch::follow(ctx, spec, paths, Duration::from_millis(100), None).await;
    let t = Instant::now();
    let sup = ctx.supervisor().await?;
    shutdown(ctx, &sup, Duration::from_secs(10)).await;
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
    if args.reconfig && !spec.settings.reconfig {
        diffs.push("--reconfig (it was made without dynamic reconfiguration)".to_string());
    }
    if args.net && spec.net.is_none() {
        diffs.push("--net (it was made without proxied links)".to_string());
    }
    if args.disk_faults && !spec.settings.disk_faults {
        diffs.push("--disk-faults (it was made without the disk-fault library)".to_string());
    }
    if let Some(k) = args.port_offset.filter(|k| *k != spec.settings.offset) {
        diffs.push(format!("--port-offset {k} (it has {})", spec.settings.offset));
    }
    if let Some(a) = args.addresses.filter(|a| *a != spec.settings.addresses) {
        let word = |m: crate::model::profile::AddressMode| match m {
            crate::model::profile::AddressMode::Shared => "shared",
            crate::model::profile::AddressMode::Loopback => "loopback",
        };
        diffs.push(format!(
            "--addresses {} (it has {})",
            word(a),
            word(spec.settings.addresses)
        ));
    }
    if let Some(b) = args.address_base.filter(|b| *b != spec.settings.address_base) {
        diffs.push(format!("--address-base {b} (it has {})", spec.settings.address_base));
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
    if args.tls && !spec.settings.tls {
        diffs.push("--tls (it was made without TLS)".into());
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
         `{}`",
        ctx.cluster,
        diffs.join(", "),
        if args.addresses.unwrap_or(spec.settings.addresses) == crate::model::profile::AddressMode::Loopback {
            "--cluster NAME --address-base IP` (a free loopback base, e.g. 127.0.0.50; an offset is refused with \
             --addresses loopback"
        } else {
            "--cluster NAME --port-offset K"
        }
    )))
}

fn create_cluster_dir(paths: &ClusterPaths, spec: &ClusterSpec) -> Result<()> {
    std::fs::create_dir_all(&paths.root).map_err(|e| {
        Error::env(format!(
            "cannot create {}: {e}; pass a writable --home DIR (or set ZKDEV_HOME)",
            paths.root.display()
        ))
    })?;
    crate::os::state::write_atomic(
        &paths.marker(),
        format!(
            "This directory was created by zkdev; `zkdev down --purge` removes it.\nuid={}\n",
            spec.uid
        )
        .as_bytes(),
    )?;
    crate::os::state::write_atomic(&paths.spec_file(), spec.to_toml().as_bytes())
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
            "cluster `{}` ({shape}) is serving: started {} in {}",
            spec.name,
            crate::model::words::nodes(started),
            output::secs(elapsed)
        );
    } else {
        crate::outln!(
            "cluster `{}` ({shape}): started, not waiting for a leader (--no-wait)",
            spec.name
        );
    }
    crate::outln!("{}", output::summary_line(status));
    if let Some(secure) = spec.secure_connect_string() {
        let tls = crate::os::tls::TlsFiles::of(&ctx.paths());
        crate::outln!("TLS: {secure}");
        crate::outln!(
            "  trust store {} (the cluster's CA), client key store {} (certificate + key), both PEM, no password",
            tls.ca().display(),
            tls.client().display()
        );
        crate::outln!(
            "  the same client certificate and key apart: {} {}; `zkdev env` prints the Java client's settings",
            tls.client_cert().display(),
            tls.client_key().display()
        );
    }
}

/// One step of `up --one-by-one`, as a progress line.
fn describe_boot(spec: &ClusterSpec, e: &BootEvent, gap: Duration) -> String {
    let gap = if gap.is_zero() {
        String::new()
    } else {
        format!(", then {}", crate::model::span::format(gap))
    };
    match e {
        BootEvent::Waiting { next, waiting } => {
            match waiting {
                Waited::Nothing => format!("node {next}: starting"),
                Waited::ElectionPort { node, port } => {
                    format!("node {next}: waiting for node {node} to look for a leader (its election port {port} open){gap}")
                }
                Waited::Serving { node, .. } => format!(
                "node {next}: waiting for node {node} to serve (a quorum of {} of {} voters runs: the first election \
                 is theirs){gap}",
                spec.quorum_needed(),
                spec.voter_count()
            ),
            }
        }
        BootEvent::Starting {
            id,
            voter,
            voters,
            quorum,
            waited,
            at_ms,
            ..
        } => {
            let what = match voter {
                Some(k) if *k == *quorum => {
                    format!("voter {k} of {voters}: with it a quorum ({quorum}) runs, the election can end")
                }
                Some(k) if *k < *quorum => format!("voter {k} of {voters}, no quorum yet: {quorum} needed"),
                Some(k) => format!("voter {k} of {voters}: it finds a leader serving"),
                None => "observer: it finds a leader serving".to_string(),
            };
            let after = match waited {
                Waited::Nothing => String::new(),
                Waited::ElectionPort { node, .. } => format!(", node {node} looking"),
                Waited::Serving { node, mode } => format!(
                    ", node {node} serving{}",
                    mode.map(|m| format!(" as {m}")).unwrap_or_default()
                ),
            };
            format!(
                "node {id}: starting at +{}{after} ({what})",
                crate::output::secs(Duration::from_millis(*at_ms))
            )
        }
    }
}
