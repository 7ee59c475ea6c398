//! Wait until the ensemble serves: every node with one leader, or every node but those stopped on purpose
//! (the leader's quorum serves). `zkdev wait` and a scenario's `wait` step call it.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::model::span::secs;
use crate::model::spec::ClusterSpec;
use crate::model::words;
use crate::os::state::ClusterPaths;
use crate::zk::observe::{self, ClusterStatus, ProcessState, WaitFailure};

/// The status once it serves (`on_tick` sees every look on the way), or an error saying why not: a node
/// that crashed, those not serving, paused nodes and the command that brings them back, a lost quorum.
pub async fn serving(
    spec: &ClusterSpec,
    paths: &ClusterPaths,
    timeout: Duration,
    on_tick: impl FnMut(&ClusterStatus),
) -> Result<ClusterStatus> {
    let r = observe::wait_until(spec, paths, timeout, |s| s.serving_except_stopped().is_some(), on_tick).await;
    let (failure, s) = match r {
        Ok(s) => return Ok(s),
        Err(e) => e,
    };
    let q = &s.quorum;
    let mut why = match failure {
        WaitFailure::Crashed(id) => format!("node {id} crashed"),
        _ => format!("not serving with one leader after {}", secs(timeout)),
    };
    let stuck: Vec<String> = s
        .not_serving()
        .iter()
        .map(|n| {
            format!(
                "node {} ({})",
                n.id,
                n.mode()
                    .map_or_else(|| n.process().as_str().to_string(), |m| m.to_string())
            )
        })
        .collect();
    if !stuck.is_empty() {
        why.push_str(&format!("; not serving: {}", words::and_list(&stuck)));
    }
    // A paused node never comes back by waiting: name the command that brings it back.
    let paused: Vec<u32> = s
        .nodes
        .iter()
        .filter(|n| n.process() == ProcessState::Paused)
        .map(|n| n.id)
        .collect();
    if !paused.is_empty() {
        let target = if paused.len() == 1 {
            paused[0].to_string()
        } else {
            "all".to_string()
        };
        why.push_str(&format!(
            "; {} paused (SIGSTOP) and will not serve until resumed: `zkdev resume {target}`",
            words::nodes(&paused)
        ));
    }
    if q.voters_up < q.needed {
        let fix = if paused.is_empty() {
            "start voters with `zkdev up` or `zkdev start ID`"
        } else {
            "resume or start voters"
        };
        why.push_str(&format!(
            "; only {} of {} {} up and a quorum needs {}: {fix}",
            q.voters_up,
            words::count(q.voters, "voter"),
            if q.voters_up == 1 { "is" } else { "are" },
            q.needed
        ));
    } else if matches!(failure, WaitFailure::Crashed(_)) {
        why.push_str("; `zkdev up` starts it again");
    }
    Err(match failure {
        WaitFailure::Crashed(_) => Error::failed(why),
        _ => Error::timeout(why),
    })
}

/// `serving after 1.2 s: ...` with the nodes stopped on purpose named, as `zkdev wait` says it.
pub fn serving_line(s: &ClusterStatus, took: Duration) -> String {
    let stopped = s.serving_except_stopped().unwrap_or_default();
    let note = if stopped.is_empty() {
        String::new()
    } else {
        format!(
            " ({} stopped on purpose; `zkdev start {}` brings {} back)",
            words::nodes(&stopped),
            if stopped.len() == 1 {
                stopped[0].to_string()
            } else {
                "all".into()
            },
            if stopped.len() == 1 { "it" } else { "them" }
        )
    };
    format!(
        "serving after {}: {}{note}",
        secs(took),
        crate::model::status::summary_line(s)
    )
}
