//! Starting and stopping a set of nodes, with the state file kept in step. Used by `up`, `start`, `restart`,
//! `stop`, `down` and the fault commands, so all of them write files, check ports and record pids alike.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::process;
use crate::render;
use crate::spec::ClusterSpec;
use crate::state::{ClusterPaths, NodeState, State, StopReason};
use crate::{cds, dist, ports};

/// The installation recorded in the spec must still be there.
pub fn check_dist_present(spec: &ClusterSpec) -> Result<()> {
    if !spec.dist.java.is_file() {
        return Err(Error::env(format!(
            "java {} (recorded when the cluster was made) is gone; install it ({}) or remove the cluster with \
             `zkdev down --purge`",
            spec.dist.java.display(),
            dist::INSTALL_JAVA
        )));
    }
    if let Some(missing) = spec.dist.classpath.iter().find(|p| !p.exists()) {
        return Err(Error::env(format!(
            "ZooKeeper {} is no longer installed ({} is missing); install it again ({}) or remove the cluster with \
             `zkdev down --purge`",
            spec.dist.version,
            missing.display(),
            dist::INSTALL_ZOOKEEPER
        )));
    }
    Ok(())
}

/// Every port of the nodes `ids` must be free on 127.0.0.1; a taken one is named with its owner.
pub fn check_ports_free(spec: &ClusterSpec, ids: &[u32]) -> Result<()> {
    for (port, id, what) in spec.all_ports() {
        if !ids.contains(&id) || ports::is_free(port) {
            continue;
        }
        // No listener or live connection but the bind is refused: a connection of a node that just stopped is
        // still closing. That passes within moments; a listener or another program's connection does not.
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        let mut holder = ports::holder(port);
        while !holder.as_ref().is_some_and(ports::Holder::settled)
            && std::time::Instant::now() < deadline
            && !ports::is_free(port)
        {
            std::thread::sleep(Duration::from_millis(50));
            holder = ports::holder(port);
        }
        if ports::is_free(port) {
            continue;
        }
        let who = holder
            .unwrap_or(ports::Holder::Closing)
            .describe(port, ports::ephemeral_range());
        return Err(Error::env(format!(
            "port {port} (node {id} {what} port) is in use{who}; stop that process, or pass --port-offset K to move \
             every port of this cluster (a new cluster only), e.g. --port-offset 10000"
        )));
    }
    Ok(())
}

/// Render, write and spawn the nodes `ids`, recording each pid as soon as it exists (a zkdev killed between
/// spawn and record leaves a JVM that `ClusterPaths::load_state_adopting` finds again). On a spawn error
/// the nodes started here are stopped again.
pub fn start_nodes(spec: &ClusterSpec, paths: &ClusterPaths, state: &mut State, ids: &[u32]) -> Result<Vec<u32>> {
    check_dist_present(spec)?;
    check_ports_free(spec, ids)?;
    let rendered = render::render(spec, paths, &cds::plan(spec, paths, ids))?;
    let mut started = Vec::new();
    for id in ids {
        let files = rendered.iter().find(|f| f.id == *id).expect("rendered every node");
        let spawned = render::write(files).and_then(|_| {
            let logs = paths.logs_dir(*id);
            std::fs::create_dir_all(&logs).map_err(|e| Error::io("cannot create", &logs, e))?;
            process::spawn(&files.argv, &paths.node_dir(*id), &paths.log_file(*id))
        });
        match spawned {
            Ok(s) => {
                state.set(*id, s);
                paths.save_state(state)?;
                started.push(*id);
            }
            Err(e) => {
                if let Err(e2) = stop_nodes(
                    Some(spec),
                    paths,
                    state,
                    &started,
                    Duration::from_secs(5),
                    StopReason::Stopped,
                ) {
                    eprintln!("warning: {e2}");
                }
                return Err(e);
            }
        }
    }
    Ok(started)
}

/// Stop the nodes `ids` (SIGTERM, `grace`, SIGKILL; only processes still identified as ours) and record
/// them as stopped. Returns the ids that needed SIGKILL. With the spec known, a class-data-sharing archive
/// recorded by a node that exited cleanly is moved into the cache.
pub fn stop_nodes(
    spec: Option<&ClusterSpec>,
    paths: &ClusterPaths,
    state: &mut State,
    ids: &[u32],
    grace: Duration,
    reason: StopReason,
) -> Result<Vec<u32>> {
    let markers: Vec<_> = ids
        .iter()
        .map(|id| (*id, state.node(*id), paths.zoo_cfg(*id)))
        .collect();
    let nodes: Vec<_> = markers.iter().map(|(id, s, m)| (*id, s.clone(), m.as_path())).collect();
    let result = process::stop_all(&nodes, grace);
    if let (Some(spec), Ok(killed)) = (spec, &result) {
        let clean: Vec<u32> = ids.iter().copied().filter(|id| !killed.contains(id)).collect();
        cds::adopt(spec, paths, &clean, killed);
    }
    for (id, s, marker) in &markers {
        // A process that somehow survived stays recorded, so a later command can still find it.
        if matches!(s, NodeState::Started { .. })
            && process::identify(s, marker) == process::Liveness::Gone
            && process::exited(s)
        {
            state.set(*id, NodeState::Stopped { reason });
        }
    }
    paths.save_state(state)?;
    result
}
