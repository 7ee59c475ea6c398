//! `zkdev status`: every node's process and what its server answers: the supervisor's latest view when it
//! is fresh and /proc agrees with it, else asked right now.

use std::time::Duration;

use super::Ctx;
use crate::cli::StatusArgs;
use crate::error::Result;
use crate::model::spec::ClusterSpec;
use crate::os::process::{identify, Liveness};
use crate::os::state::{ClusterPaths, State};
use crate::output;
use crate::supervisor::control::{call, Request};
use crate::zk::observe::{self, ClusterStatus, ProcessState, SupervisorView};

pub async fn run(ctx: &Ctx, _args: StatusArgs) -> Result<()> {
    let (paths, spec) = ctx.existing()?;
    // On a --net cluster the links live in the supervisor: if it died, start a new one now (it restores
    // the proxies and their faults), so looking at the cluster also mends it. Failing that, status still
    // reports what the servers say.
    if spec.net.is_some() && crate::supervisor::control::Supervisor::find(&paths).await.is_none() {
        if let Err(e) = ctx.supervisor().await {
            eprintln!("warning: the links are down with the supervisor, and a new one did not start: {e}");
        }
    }
    let mut status = current(&paths, &spec).await?;
    status.links = super::net::links_view(&paths, &spec).await;
    if ctx.json {
        output::print_json(&status);
    } else {
        crate::out!("{}", output::status_table(&status));
        if let Some(l) = &status.links {
            let rules = l["rules"].as_array().map_or(0, Vec::len);
            let up = if l["proxies_up"] == true {
                String::new()
            } else {
                "; the proxies are down with the supervisor (the next zkdev command restores them)".into()
            };
            crate::outln!("links: proxied, {} fault rule(s){up} (`zkdev links` shows them)", rules);
        }
    }
    Ok(())
}

/// The cluster as it is now, from the supervisor or from the servers themselves.
pub async fn current(paths: &ClusterPaths, spec: &ClusterSpec) -> Result<ClusterStatus> {
    let mut state = paths.load_state()?;
    // A node zkdev started but could not record (zkdev killed mid-start, a damaged state file) is shown
    // as what it is; status writes nothing.
    state.adopt_orphans(&paths.idents(spec));
    let answer = call(&paths.socket(), &Request::Status, Duration::from_millis(250))
        .await
        .and_then(|r| r.ok());
    let pid = answer.as_ref().and_then(|v| v["pid"].as_i64()).map(|p| p as i32);
    if let Some(s) = answer.and_then(|v| from_supervisor(v, paths, spec, &state)) {
        return Ok(s);
    }
    let mut status = observe::gather_with(spec, paths, &state, observe::Probing::FULL).await;
    status.source = Some("probe".into());
    status.supervisor = Some(SupervisorView {
        running: pid.is_some(),
        pid,
    });
    Ok(status)
}

/// The supervisor's view, if it answers at once, is at most three probe intervals old, shows a healthy
/// ensemble, and every node's process is still what the view says. Anything in transition (an election,
/// a node starting, a node killed since the last look) is asked of the servers now instead: that is when
/// a view up to one interval old would mislead.
fn from_supervisor(
    v: serde_json::Value,
    paths: &ClusterPaths,
    spec: &ClusterSpec,
    state: &State,
) -> Option<ClusterStatus> {
    let age = v["age_ms"].as_u64()?;
    let interval = v["interval_ms"].as_u64().unwrap_or(100);
    if age > (3 * interval).max(300) {
        return None;
    }
    let mut status: ClusterStatus = serde_json::from_value(v["status"].clone()).ok()?;
    status.restore_raw();
    if !status.healthy() {
        return None;
    }
    for n in &status.nodes {
        // A view taken with other ports than cluster.toml now names is not about this cluster's files.
        if spec.node(n.id).is_none_or(|s| s.ports.client != n.client_port) || status.nodes.len() != spec.nodes.len() {
            return None;
        }
        let now = identify(&state.node(n.id), &paths.ident(spec, n.id));
        let agrees = match (now, n.process) {
            (Liveness::Ours { paused: true, .. }, p) => p == ProcessState::Paused,
            (Liveness::Ours { paused: false, .. }, p) => {
                matches!(p, ProcessState::Running | ProcessState::Unresponsive)
            }
            (Liveness::Gone, p) => matches!(p, ProcessState::Stopped | ProcessState::Crashed),
        };
        if !agrees {
            return None;
        }
    }
    status.source = Some("supervisor".into());
    status.age_ms = Some(age);
    status.supervisor = Some(SupervisorView {
        running: true,
        pid: v["pid"].as_i64().map(|p| p as i32),
    });
    Some(status)
}
