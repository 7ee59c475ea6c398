//! `zkdev down [--purge]`: stop every node zkdev started (and can still identify); remove the cluster's own
//! directory with --purge. Safe to run again.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{seconds, Ctx};
use crate::cli::DownArgs;
use crate::error::{Error, Result};
use crate::launch;
use crate::process::{self, Liveness};
use crate::state::{StopReason, MARKER_FILE};

#[derive(Serialize)]
struct DownReport {
    cluster: String,
    stopped: Vec<u32>,
    needed_sigkill: Vec<u32>,
    purged: bool,
    elapsed_ms: u64,
}

pub fn run(ctx: &Ctx, args: DownArgs) -> Result<()> {
    let grace = seconds(args.grace, "--grace")?;
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
    let _lock = paths.lock(Duration::from_secs(60))?;
    let mut state = paths.load_state()?;

    // Only what zkdev recorded and can still identify is signalled; the marker is the node's zoo.cfg path,
    // known from the directory layout alone, so a damaged cluster.toml does not stop `down`. JVMs of the
    // cluster's nodes that run unrecorded (zkdev killed mid-start) are taken in first.
    let spec = paths.load_spec().ok();
    let mut ids: Vec<u32> = state.nodes.keys().copied().collect();
    for n in spec.iter().flat_map(|s| s.nodes.iter()) {
        if !ids.contains(&n.id) {
            ids.push(n.id);
        }
    }
    state.adopt_orphans(&paths, &ids);
    let stopped: Vec<u32> = ids
        .iter()
        .copied()
        .filter(|id| process::identify(&state.node(*id), &paths.zoo_cfg(*id)) != Liveness::Gone)
        .collect();
    let recorded = ids;
    let needed_sigkill = launch::stop_nodes(spec.as_ref(), &paths, &mut state, &recorded, grace, StopReason::Stopped)?;

    if args.purge {
        // Links inside are removed as links (remove_dir_all does not follow them); nothing outside is touched.
        std::fs::remove_dir_all(&paths.root).map_err(|e| Error::io("cannot remove", &paths.root, e))?;
        let _ = std::fs::remove_file(&paths.lock);
    }

    if ctx.json {
        crate::output::print_json(&DownReport {
            cluster: ctx.cluster.clone(),
            stopped,
            needed_sigkill,
            purged: args.purge,
            elapsed_ms: t0.elapsed().as_millis() as u64,
        });
        return Ok(());
    }
    let list = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    if stopped.is_empty() {
        crate::outln!("cluster `{}`: no node was running", ctx.cluster);
    } else {
        crate::outln!(
            "cluster `{}`: stopped node(s) {} in {}",
            ctx.cluster,
            list(&stopped),
            crate::output::secs(t0.elapsed())
        );
    }
    if !needed_sigkill.is_empty() {
        crate::outln!(
            "  node(s) {} ignored SIGTERM for {} and were killed",
            list(&needed_sigkill),
            crate::output::secs(grace)
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
