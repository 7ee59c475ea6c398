//! `zkdev trace`: read the side tap of a `--net` cluster's proxies (the supervisor's ring of decoded
//! messages, polled with a cursor), and make one write through a follower and tell its whole story from
//! the messages its links carried (`model::trace::story`).

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::model::links::Rule;
use crate::model::server::Mode;
use crate::model::spec::ClusterSpec;
use crate::model::trace::{story, Roles, Story, TraceEvent, TracePage};
use crate::os::state::ClusterPaths;
use crate::supervisor::control::{Request, Supervisor};
use crate::supervisor::replies::{LinksReply, TraceReply};
use crate::zk::observe;

/// Events asked for in one poll (one reply line).
pub const PAGE: usize = 2000;

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
    let cursor = poll(sup, None).await?.next;
    let connect = format!("127.0.0.1:{port}");
    let client = crate::zk::client::connect(&connect, Duration::from_secs(10), o.timeout).await?;
    let written = async {
        match client.check_stat(&o.path).await {
            Ok(Some(_)) => client.set_data(&o.path, &o.data, None).await.map(|_| ()),
            Ok(None) => (client.create(&o.path, &o.data, &crate::zk::client::open_acl()).await).map(|_| ()),
            Err(e) => Err(e),
        }
    };
    match tokio::time::timeout(o.timeout, written).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(Error::failed(format!(
                "the write of {} through node {via} failed: {e}{}",
                o.path,
                if o.path.matches('/').count() > 1 {
                    " (its parent must exist)"
                } else {
                    ""
                }
            )))
        }
        Err(_) => {
            return Err(Error::timeout(format!(
                "the write of {} through node {via} was not answered within {}",
                o.path,
                crate::model::span::secs(o.timeout)
            )))
        }
    }
    // Collect until every message of a healthy write has crossed its link, or `settle` after the reply.
    let mut events: Vec<TraceEvent> = Vec::new();
    let mut next = cursor;
    let mut lost = None;
    let until = Instant::now() + o.settle;
    let told = loop {
        let page = poll(sup, Some(next)).await?;
        next = page.next;
        if page.missed > 0 {
            lost = Some(format!(
                "{} trace events left the supervisor's ring before they were read",
                page.missed
            ));
        }
        let full = page.events.len() >= PAGE;
        events.extend(page.events);
        let s = story(&events, via, &o.path, &roles);
        if full {
            continue;
        }
        if s.as_ref().is_some_and(Story::complete) || Instant::now() >= until {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(client);
    let gave_up: Vec<String> = (events.iter())
        .filter(|e| e.msg == crate::model::trace::GAVE_UP)
        .map(|e| format!("{}: {}", e.link_name(), e.note.clone().unwrap_or_default()))
        .collect();
    if !gave_up.is_empty() {
        lost = Some(format!("the tap gave up meanwhile on {}", gave_up.join("; ")));
    }
    let story = told.ok_or_else(|| {
        Error::failed(format!(
            "the proxies did not see the client request of the write to {} at node {via}: {}",
            o.path,
            lost.clone().unwrap_or_else(|| {
                "the supervisor may be of another zkdev version (`zkdev down` and `zkdev up`)".into()
            })
        ))
    })?;
    let mut story = story;
    if !story.missing.is_empty() {
        let links: LinksReply = sup.ask_for(Request::Links, Duration::from_secs(5)).await?;
        name_faults(&mut story.missing, &links.rules);
    }
    Ok(WriteTrace { story, lost })
}

/// After each missing message, the fault of the flow it would have crossed, if any (`; that flow is
/// stalled by a link rule (stall)`).
fn name_faults(missing: &mut [String], rules: &[Rule]) {
    for m in missing.iter_mut() {
        let fault = rules.iter().find(|r| {
            let flow = format!("{} -> {} ({})", r.flow.from, r.flow.to, r.flow.port.as_str());
            m.split_once(' ').is_some_and(|(_, rest)| rest.starts_with(&flow))
        });
        if let Some(r) = fault {
            m.push_str(&format!("; that flow has a link fault: {}", r.fault.describe()));
        }
    }
}
