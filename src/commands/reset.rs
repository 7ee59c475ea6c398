//! `zkdev reset`: a clean ensemble between tests without restarting a running JVM. In order: every fault
//! healed (link rules, disk faults, paused nodes resumed, stopped or crashed nodes started, then one
//! serving leader awaited), every client session closed (their ephemerals go with them; see
//! `zk::session`), every znode but `/zookeeper` deleted as the cluster's super user (`zk::wipe`), and a
//! `reset` event in the journal.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::Ctx;
use crate::cli::ResetArgs;
use crate::error::{Error, Result};
use crate::model::disk::DiskFault;
use crate::model::spec::ClusterSpec;
use crate::model::words;
use crate::supervisor::control::{Request, Sig};
use crate::zk::observe::{self, ProcessState};
use crate::zk::session;

#[derive(Debug, Serialize)]
pub struct ResetReport {
    pub znodes_deleted: usize,
    pub sessions_closed: usize,
    pub faults_healed: Vec<String>,
    pub nodes_started: Vec<u32>,
    pub nodes_resumed: Vec<u32>,
    /// Nodes whose last power cut (which lost data) `status` and the dashboard showed until now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub power_cuts_forgotten: Vec<u32>,
    pub took_ms: u64,
}

const ASK: Duration = Duration::from_secs(30);

pub async fn run(ctx: &Ctx, args: ResetArgs) -> Result<()> {
    let t0 = Instant::now();
    let (paths, spec) = ctx.existing()?;
    let sup = ctx.supervisor().await?;
    let cause = ctx.cause();

    // Faults first: the ensemble must serve, whole, before its sessions and znodes can go.
    let mut faults_healed = Vec::new();
    if spec.net.is_some() {
        let table = crate::supervisor::links::read(&paths);
        if !table.rules.is_empty() {
            faults_healed.extend((table.rules.iter()).map(|r| format!("link {} {}", r.flow, r.fault.describe())));
            sup.ask_for::<crate::supervisor::replies::SetLinksReply>(
                Request::SetLinks {
                    heal_all: true,
                    heal_pairs: Vec::new(),
                    rules: Vec::new(),
                    reset: Vec::new(),
                    action: "heal".into(),
                    message: "reset: every link healed".into(),
                    cause: cause.clone(),
                },
                ASK,
            )
            .await?;
        }
    }
    if spec.settings.disk_faults {
        for id in spec.ids() {
            let fault = crate::os::faultfs::get(&paths, id);
            if fault == DiskFault::Healthy {
                continue;
            }
            sup.ask_for::<crate::supervisor::replies::DiskReply>(
                Request::Disk {
                    ids: vec![id],
                    fault: DiskFault::Healthy,
                    cause: cause.clone(),
                },
                ASK,
            )
            .await?;
            faults_healed.push(format!("disk of node {id} {}", fault.describe()));
        }
    }
    let status = observe::gather(&spec, &paths, &paths.load_state()?).await;
    let with = |states: &[ProcessState]| -> Vec<u32> {
        (status.nodes.iter())
            .filter(|n| states.contains(&n.process()))
            .map(|n| n.id)
            .collect()
    };
    let nodes_resumed = with(&[ProcessState::Paused]);
    let nodes_started = with(&[ProcessState::Stopped, ProcessState::Crashed]);
    if !nodes_resumed.is_empty() {
        sup.ask_for::<crate::supervisor::replies::SignalReply>(
            Request::Signal {
                ids: nodes_resumed.clone(),
                signal: Sig::Cont,
                cause: cause.clone(),
            },
            ASK,
        )
        .await?;
    }
    if !nodes_started.is_empty() {
        sup.ask_for::<crate::supervisor::replies::StartReply>(
            Request::Start {
                ids: nodes_started.clone(),
                cause: cause.clone(),
            },
            Duration::from_secs(120),
        )
        .await?;
    }
    // Healing a link of a healthy ensemble leaves it healthy: wait only when something was not serving.
    if !status.healthy() || !nodes_resumed.is_empty() || !nodes_started.is_empty() {
        if let Err((_, s)) = super::wait_healthy(ctx, &spec, &paths, args.timeout, t0).await {
            let waiting: Vec<String> = s.not_serving().iter().map(|n| format!("node {}", n.id)).collect();
            return Err(Error::failed(format!(
                "reset healed every fault, but the ensemble did not serve with one leader within {} ({} not \
                 serving); see `zkdev status` and `zkdev logs`",
                crate::model::span::format(args.timeout),
                words::and_list(&waiting)
            )));
        }
    }

    // zkdev's own session is made while the others are closed; the znodes are deleted once every close
    // was committed, while the nodes are asked whether the sessions are gone everywhere.
    let (listed, client) = tokio::join!(crate::engine::sessions::list(&spec), super_client(&paths, &spec));
    let (client, authenticated) = client?;
    let own = client.session_id().0;
    let closed = close_sessions(&spec, listed, own).await?;
    let (gone, deleted) = tokio::join!(
        sessions_gone(&spec, &closed),
        crate::zk::wipe::wipe(&client, authenticated)
    );
    drop(client);
    let (sessions_closed, znodes_deleted) = (gone.map(|_| closed.len())?, deleted?);
    // What a power cut lost went with every znode: `status` and the dashboard stop showing it (the journal
    // keeps it).
    let power_cuts_forgotten = if spec.settings.disk_faults {
        crate::os::power::forget_cuts(&paths, &spec.ids())?
    } else {
        Vec::new()
    };

    let took_ms = t0.elapsed().as_millis() as u64;
    let report = ResetReport {
        znodes_deleted,
        sessions_closed,
        faults_healed,
        nodes_started,
        nodes_resumed,
        power_cuts_forgotten,
        took_ms,
    };
    // zkdev's own session is ended here, not left to time out, so the next test sees no session of zkdev's.
    let record = sup.ask_for::<crate::supervisor::replies::RecordReply>(
        Request::Record {
            message: describe(&report),
            cause,
            action: Some("reset".into()),
        },
        ASK,
    );
    let (recorded, _) = tokio::join!(
        record,
        session::close(spec.nodes[0].client_addr(), own, 10_000, Duration::from_secs(5))
    );
    recorded?;
    if ctx.json {
        crate::output::print_json(&report);
    } else {
        crate::outln!("{}", describe(&report));
    }
    Ok(())
}

fn describe(r: &ResetReport) -> String {
    let mut parts = vec![
        format!("{} deleted", words::count(r.znodes_deleted, "znode")),
        format!("{} closed", words::count(r.sessions_closed, "session")),
    ];
    if !r.faults_healed.is_empty() {
        parts.push(format!("healed: {}", r.faults_healed.join("; ")));
    }
    let ids = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    if !r.nodes_resumed.is_empty() {
        parts.push(format!("resumed node {}", ids(&r.nodes_resumed)));
    }
    if !r.nodes_started.is_empty() {
        parts.push(format!("started node {}", ids(&r.nodes_started)));
    }
    if !r.power_cuts_forgotten.is_empty() {
        parts.push(format!("forgot the power cut of node {}", ids(&r.power_cuts_forgotten)));
    }
    format!("reset in {} ms: {}", r.took_ms, parts.join(", "))
}

/// Close every session `now` lists but zkdev's own (`own`), all at once; the ids of those closed (each
/// committed).
async fn close_sessions(spec: &ClusterSpec, now: crate::engine::sessions::Sessions, own: i64) -> Result<Vec<i64>> {
    if now.asked.is_empty() {
        return Err(Error::failed(format!(
            "no node of cluster `{}` serves, so none can close its sessions; see `zkdev status`",
            spec.name
        )));
    }
    let within = Duration::from_secs(10);
    let closes = now.sessions.iter().filter(|s| s.raw_id != own).map(|s| {
        // Through another node than the client's, so the client cannot take its session back first.
        let via = (now.asked.iter().copied())
            .find(|n| Some(*n) != s.connected_to)
            .unwrap_or(now.asked[0]);
        let addr = spec.node(via).expect("an asked node is in the spec").client_addr();
        let timeout = s.timeout_ms.unwrap_or(30_000).min(i32::MAX as u64) as u32;
        async move { (s, session::close(addr, s.raw_id, timeout, within).await) }
    });
    let mut closed = Vec::new();
    for (s, result) in futures::future::join_all(closes).await {
        match result {
            Ok(_) => closed.push(s.raw_id),
            // Ended meanwhile (its client closed it, or it expired): nothing to do.
            Err(session::CloseError::Unknown) => {}
            Err(e) => return Err(Error::failed(format!("cannot close session {}: {e}", s.id))),
        }
    }
    Ok(closed)
}

/// Wait until no node lists any of the `closed` sessions.
async fn sessions_gone(spec: &ClusterSpec, closed: &[i64]) -> Result<()> {
    let within = Duration::from_secs(10);
    let deadline = Instant::now() + within;
    loop {
        if closed.is_empty() {
            return Ok(());
        }
        let after = crate::engine::sessions::list(spec).await;
        let left: Vec<&str> = (after.sessions.iter())
            .filter(|s| closed.contains(&s.raw_id))
            .map(|s| s.id.as_str())
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::failed(format!(
                "sessions {} were closed, but a node still lists them after {} s; see `zkdev sessions`",
                left.join(", "),
                within.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A session of zkdev's own, authenticated as the cluster's super user when the cluster has one (one made
/// by an older zkdev has not: then it acts as nobody, and an ACL-protected znode is refused with what to
/// do); whether it is the super user.
async fn super_client(
    paths: &crate::os::state::ClusterPaths,
    spec: &ClusterSpec,
) -> Result<(zookeeper_client::Client, bool)> {
    let connect = spec.connect_string();
    let client = crate::zk::client::connect(&connect, Duration::from_secs(10), Duration::from_secs(10)).await?;
    let authenticated = crate::os::super_user::password_file(paths).exists();
    if authenticated {
        let credentials = crate::os::super_user::credentials(paths)?;
        client
            .auth("digest", credentials.as_bytes())
            .await
            .map_err(|e| Error::failed(format!("cannot authenticate as the super user on {connect}: {e}")))?;
    }
    Ok((client, authenticated))
}
