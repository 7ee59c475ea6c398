//! `zkdev down [--purge]`: stop every node zkdev started (and can still identify); remove the cluster's own
//! directory with --purge. Safe to run again.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::Ctx;
use crate::cli::DownArgs;
use crate::error::{Error, Result};
use crate::os::process::{self, Ident, Liveness};
use crate::os::state::{ClusterPaths, NodeState, StopReason, MARKER_FILE};
use crate::supervisor::control::{Request, Supervisor};
use crate::supervisor::replies::ShutdownReply;

#[derive(Serialize)]
struct DownReport {
    cluster: String,
    stopped: Vec<u32>,
    needed_sigkill: Vec<u32>,
    purged: bool,
    /// Nodes whose disk fault `down` cleared (faults last while the cluster runs).
    disk_faults_cleared: Vec<u32>,
    elapsed_ms: u64,
}

pub async fn run(ctx: &Ctx, args: DownArgs) -> Result<()> {
    let grace = args.grace;
    let paths = ctx.paths();
    let t0 = Instant::now();
    if args.purge {
        check_purge_home(ctx)?;
    }
    if !paths.root.exists() {
        if !ctx.json {
            crate::outln!(
                "cluster `{}` does not exist in {}: nothing to do",
                ctx.cluster,
                ctx.home.root.display()
            );
        }
        return Ok(());
    }
    if args.purge {
        check_purge_target(ctx)?;
    }

    // The supervisor stops the nodes and then itself. Without one (it died, or never ran), the nodes are
    // stopped from here: what /proc proves is ours, found by token even when state.json is damaged.
    let mut stopped = Vec::new();
    let mut needed_sigkill = Vec::new();
    if let Some(sup) = Supervisor::find(&paths).await {
        // Its record goes before the process does: keep it to wait for the process itself.
        let record = crate::supervisor::Record::read(&paths);
        let r = sup
            .ask_for::<ShutdownReply>(
                Request::Shutdown {
                    grace_ms: grace.as_millis() as u64,
                    cause: ctx.cause(),
                },
                grace + Duration::from_secs(30),
            )
            .await?;
        stopped = r.stopped;
        needed_sigkill = r.needed_sigkill;
        wait_supervisor_gone(&paths, record, Duration::from_secs(5)).await;
    } else {
        stop_hung_supervisor(&paths);
    }
    let (more, more_killed) = stop_directly(&paths, grace).await?;
    stopped.extend(more);
    needed_sigkill.extend(more_killed);
    stopped.sort_unstable();
    stopped.dedup();
    // A disk fault is part of the session it was set in: the next `up` starts on healthy disks.
    let cleared = if args.purge {
        Vec::new()
    } else {
        clear_disk_faults(&paths)
    };

    if args.purge {
        let _lock = paths.lock(Duration::from_secs(60)).await?;
        let uid = cluster_uid(&paths);
        // A process on its way out (a supervisor that has answered its shutdown, a zkdev command ending) may
        // still hold a file here for a moment: give what is leaving 2 s before naming what stays.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut users = process::users_of(&paths.root, &uid);
        while !users.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            users = process::users_of(&paths.root, &uid);
        }
        if !users.is_empty() {
            let who: Vec<String> = users.iter().map(|(p, n)| format!("pid {p} ({n})")).collect();
            return Err(Error::failed(format!(
                "refusing to purge {}: {} still {} files in it; stop them (they are not provably zkdev's \
                 nodes, so zkdev does not signal them), then run `zkdev down --purge` again",
                paths.root.display(),
                crate::model::words::and_list(&who),
                if who.len() == 1 { "uses" } else { "use" }
            )));
        }
        // Links inside are removed as links (remove_dir_all does not follow them); nothing outside is touched.
        // The lock file stays: removing it while held would let two later commands both hold "the lock".
        std::fs::remove_dir_all(&paths.root).map_err(|e| Error::io("cannot remove", &paths.root, e))?;
    }

    if ctx.json {
        crate::output::print_json(&DownReport {
            cluster: ctx.cluster.clone(),
            stopped,
            needed_sigkill,
            purged: args.purge,
            disk_faults_cleared: cleared,
            elapsed_ms: t0.elapsed().as_millis() as u64,
        });
        return Ok(());
    }
    if stopped.is_empty() {
        crate::outln!("cluster `{}`: no node was running", ctx.cluster);
    } else {
        crate::outln!(
            "cluster `{}`: stopped {} in {}",
            ctx.cluster,
            crate::model::words::nodes(&stopped),
            crate::output::secs(t0.elapsed())
        );
    }
    if !needed_sigkill.is_empty() {
        crate::outln!(
            "  {} ignored SIGTERM for {} and {} killed",
            crate::model::words::nodes(&needed_sigkill),
            crate::output::secs(grace),
            if needed_sigkill.len() == 1 { "was" } else { "were" }
        );
    }
    if !cleared.is_empty() {
        crate::outln!(
            "  the disk {} of {} cleared",
            crate::model::words::noun_for(cleared.len(), "fault"),
            crate::model::words::nodes(&cleared)
        );
    }
    if args.purge {
        crate::outln!("removed {}", paths.root.display());
    } else {
        crate::outln!(
            "data kept in {} (`zkdev up` starts it again, `zkdev down --purge` removes it)",
            paths.root.display()
        );
    }
    Ok(())
}

/// Heal every node's disk once the nodes are stopped; the ids that had a fault.
fn clear_disk_faults(paths: &ClusterPaths) -> Vec<u32> {
    use crate::model::disk::DiskFault;
    let Ok(spec) = paths.load_spec() else {
        return Vec::new();
    };
    if !spec.settings.disk_faults {
        return Vec::new();
    }
    spec.ids()
        .into_iter()
        .filter(|id| crate::os::faultfs::get(paths, *id) != DiskFault::Healthy)
        .filter(|id| crate::os::faultfs::set(paths, *id, DiskFault::Healthy).is_ok())
        .collect()
}

/// The cluster's uid: from cluster.toml, else from the marker file (a damaged cluster.toml must not stop
/// `down` from finding the nodes).
fn cluster_uid(paths: &ClusterPaths) -> String {
    if let Ok(spec) = paths.load_spec() {
        return spec.uid;
    }
    std::fs::read_to_string(paths.marker())
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("uid=").map(|u| u.trim().to_string()))
        .unwrap_or_default()
}

/// Stop, without a supervisor, every JVM provably of this cluster: recorded ones and unrecorded ones found
/// by token. The intent is recorded before the signal; a read-only home only costs the record.
async fn stop_directly(paths: &ClusterPaths, grace: Duration) -> Result<(Vec<u32>, Vec<u32>)> {
    let spec = paths.load_spec().ok();
    let uid = cluster_uid(paths);
    let mut state = paths.load_state()?;
    let mut ids: Vec<u32> = state.nodes.keys().copied().collect();
    for n in spec.iter().flat_map(|s| s.nodes.iter()) {
        if !ids.contains(&n.id) {
            ids.push(n.id);
        }
    }
    let idents: Vec<(u32, Ident)> = ids
        .iter()
        .map(|id| {
            (
                *id,
                Ident::new(
                    &uid,
                    *id,
                    paths.zoo_cfg(*id),
                    spec.as_ref().map(|s| s.dist.java.as_path()),
                ),
            )
        })
        .collect();
    state.adopt_orphans(&idents);
    let targets: Vec<(u32, NodeState, Ident)> = idents
        .into_iter()
        .filter(|(id, ident)| process::identify(&state.node(*id), ident) != Liveness::Gone)
        .map(|(id, ident)| (id, state.node(id), ident))
        .collect();
    if targets.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    for (id, s, _) in &targets {
        state.set(*id, s.stopping(StopReason::Stopped));
    }
    let save = |state: &crate::os::state::State| {
        if let Err(e) = paths.save_state(state) {
            eprintln!("warning: cannot record the nodes' state ({e}); stopping them anyway");
        }
    };
    save(&state);
    let killed = process::stop_all(&targets, grace).await?;
    if let Some(spec) = &spec {
        let clean: Vec<u32> = targets.iter().map(|t| t.0).filter(|id| !killed.contains(id)).collect();
        crate::dist::cds::adopt(spec, paths, &clean, &killed);
    }
    for (id, _, _) in &targets {
        state.set(
            *id,
            NodeState::Stopped {
                reason: StopReason::Stopped,
            },
        );
    }
    save(&state);
    Ok((targets.iter().map(|t| t.0).collect(), killed))
}

/// Wait until the supervisor `record` names (read before it was asked to stop) has exited; kill it if it
/// hangs on its way out.
pub async fn wait_supervisor_gone(paths: &ClusterPaths, record: Option<crate::supervisor::Record>, timeout: Duration) {
    let Some(rec) = record else {
        return;
    };
    let deadline = Instant::now() + timeout;
    while rec.alive(paths) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if rec.alive(paths) {
        eprintln!(
            "warning: the supervisor (pid {}) did not exit after stopping; killing it",
            rec.pid
        );
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(rec.pid), nix::sys::signal::Signal::SIGKILL);
    }
}

/// A supervisor that does not answer but still runs (hung, or stopped with SIGSTOP) is killed: it is
/// provably ours (its record, start time and command line agree).
fn stop_hung_supervisor(paths: &ClusterPaths) {
    if let Some(rec) = crate::supervisor::Record::read(paths).filter(|r| r.alive(paths)) {
        eprintln!("warning: the supervisor (pid {}) does not answer; killing it", rec.pid);
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(rec.pid), nix::sys::signal::Signal::SIGKILL);
    }
}

/// Never purge under the file system's root as home, whatever is there.
fn check_purge_home(ctx: &Ctx) -> Result<()> {
    let home = &ctx.home.root;
    let canon_home = home.canonicalize().unwrap_or_else(|_| home.clone());
    if canon_home.parent().is_none() {
        return Err(Error::usage(format!(
            "refusing to purge with --home {}: zkdev never removes anything at the root of the file system",
            home.display()
        )));
    }
    Ok(())
}

/// Purge removes only a directory zkdev made for this cluster.
fn check_purge_target(ctx: &Ctx) -> Result<()> {
    let paths = ctx.paths();
    let meta = std::fs::symlink_metadata(&paths.root).map_err(|e| Error::io("cannot inspect", &paths.root, e))?;
    if meta.file_type().is_symlink() || !paths.marker().is_file() {
        return Err(Error::usage(format!(
            "refusing to purge {}: it is not a directory zkdev created (no {MARKER_FILE} file in it{}); remove it \
             yourself if it should go",
            paths.root.display(),
            if meta.file_type().is_symlink() {
                ", and it is a symbolic link"
            } else {
                ""
            }
        )));
    }
    Ok(())
}
