//! `zkdev trace`: read the side tap of a `--net` cluster's proxies (the supervisor's ring of decoded
//! messages, polled with a cursor), and make one write through a follower and tell its whole story from
//! the messages its links carried (`model::trace::story`).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::model::server::Mode;
use crate::model::spec::ClusterSpec;
use crate::model::trace::{name_faults, Roles, Story, TracePage};
use crate::os::state::ClusterPaths;
use crate::supervisor::control::{Request, Supervisor};
use crate::supervisor::replies::{LinksReply, TraceReply};
use crate::supervisor::tap::{traced_write, TracedWrite};
use crate::zk::observe;

/// Events asked for in one poll (one reply line).
pub use crate::supervisor::tap::PAGE;

/// Refuse a cluster whose links do not go through the supervisor: there is nothing to tap.
pub fn tappable(spec: &ClusterSpec) -> Result<()> {
    if spec.net.is_none() {
        return Err(Error::not_proxied(format!(
            "cluster `{}` was made without proxied links: its nodes and clients talk directly, so no proxy sees \
             their messages to trace; {}",
            spec.name,
            spec.remake_advice(&["--net"])
        )));
    }
    Ok(())
}

/// The events from `cursor` on (None: none, only the cursor of what comes next).
pub async fn poll(sup: &Supervisor, cursor: Option<u64>) -> Result<TracePage> {
    let r: TraceReply = sup
        .ask_for(Request::Trace { cursor, max: PAGE }, Duration::from_secs(5))
        .await?;
    Ok(r.page)
}

/// What `trace --write` does.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// The znode written (its parent must exist).
    pub path: String,
    /// The node to send the write to (None: the first follower).
    pub via: Option<u32>,
    /// What the write sets.
    pub data: Vec<u8>,
    /// How long to wait for the messages after the reply (a follower's ACK that never comes).
    pub settle: Duration,
    /// How long the connection and the write itself may take.
    pub timeout: Duration,
}

/// The story, and every event the tap saw in the meantime (for `--json` readers who want the raw trace).
#[derive(Debug, Clone, serde::Serialize)]
pub struct WriteTrace {
    /// The write's messages in order, with its zxid.
    pub story: Story,
    /// The tap lost events meanwhile (the ring overflowed, a connection was given up): the story may miss
    /// messages that did cross their links.
    pub lost: Option<String>,
}

/// Make one write (setData if the znode exists, else create) through `via`'s client proxy and tell its
/// story.
pub async fn write(sup: &Supervisor, spec: &ClusterSpec, paths: &ClusterPaths, o: &WriteOptions) -> Result<WriteTrace> {
    tappable(spec)?;
    if !o.path.starts_with('/') || (o.path.len() > 1 && o.path.ends_with('/')) {
        return Err(Error::usage(format!(
            "--write `{}` is not a znode path: it starts with / and does not end with one (e.g. /app/x)",
            o.path
        )));
    }
    let status = observe::gather(spec, paths, &paths.load_state()?).await;
    let mode_of = |m: Mode| -> Vec<u32> {
        (status.nodes.iter())
            .filter(|n| n.mode() == Some(m))
            .map(|n| n.id)
            .collect()
    };
    let leader = status.leader.ok_or_else(|| {
        Error::failed(format!(
            "no leader serves now ({}): a write has no story to tell; `zkdev wait` for one",
            crate::model::status::summary_line(&status)
        ))
    })?;
    let roles = Roles {
        leader,
        followers: mode_of(Mode::Follower),
        observers: mode_of(Mode::Observer),
    };
    let via = match o.via {
        Some(v) => {
            let serving = status.nodes.iter().any(|n| n.id == v && n.serving());
            if !serving {
                return Err(Error::usage(format!(
                    "--via {v}: node {v} does not serve now ({}); pick one that does",
                    crate::model::status::summary_line(&status)
                )));
            }
            v
        }
        None => *roles.followers.first().unwrap_or(&leader),
    };
    let port = spec
        .client_proxy(via)
        .ok_or_else(|| Error::failed(format!("node {via} has no client proxy")))?;
    let write = TracedWrite {
        connect: format!("127.0.0.1:{port}"),
        path: o.path.clone(),
        data: o.data.clone(),
        via,
        roles,
        settle: o.settle,
        timeout: o.timeout,
    };
    let (story, lost) = traced_write(&write, |cursor| poll(sup, cursor)).await?;
    let mut story = story;
    if !story.missing.is_empty() {
        let links: LinksReply = sup.ask_for(Request::Links, Duration::from_secs(5)).await?;
        name_faults(&mut story.missing, &links.rules);
    }
    Ok(WriteTrace { story, lost })
}
