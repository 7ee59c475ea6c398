//! `zkdev add | remove | promote | demote`: change the membership of a running ensemble with ZooKeeper's
//! own dynamic reconfiguration (`reconfig` as the cluster's super user), guarded by the quorum of the new
//! configuration, and keep cluster.toml (ids, roles, ports) in step with what the ensemble committed.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::Ctx;
use crate::cli::{AddArgs, MemberArgs};
use crate::error::{Error, Result};
use crate::model::fault::Target;
use crate::model::membership::{self, ChangeQuorum, Membership, Version};
use crate::model::spec::{ClusterSpec, Role};
use crate::model::timeline::Action;
use crate::os::state::ClusterPaths;
use crate::supervisor::control::{Request, Supervisor};
use crate::supervisor::replies::{RecordReply, ReloadReply, StartReply, StopReply};
use crate::zk::observe::{self, ClusterStatus};
use crate::zk::reconfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Remove,
    Promote,
    Demote,
}

impl Change {
    fn verb(self) -> &'static str {
        match self {
            Change::Remove => "remove",
            Change::Promote => "promote",
            Change::Demote => "demote",
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    change: String,
    nodes: Vec<u32>,
    /// The configuration version before and after (ZooKeeper's hex, as in `zoo.cfg.dynamic.<version>`).
    version_before: String,
    version_after: String,
    members_before: String,
    members_after: String,
    leader_before: Option<u32>,
    leader_after: Option<u32>,
    /// The whole command, and the `reconfig` request -> every member reports the new version.
    elapsed_ms: u64,
    commit_ms: u64,
    note: Option<String>,
}

/// `zkdev add [--observer] [--count K]`.
pub async fn add(ctx: &Ctx, args: AddArgs) -> Result<()> {
    let timeout = args.timeout;
    if args.count == 0 || args.count > 16 {
        return Err(Error::usage(format!(
            "--count {}: add 1 to 16 nodes at a time",
            args.count
        )));
    }
    let (paths, spec) = ctx.existing()?;
    if !spec.settings.reconfig && args.observer {
        return add_static(ctx, &args, &paths, &spec).await;
    }
    if !spec.settings.reconfig {
        return Err(Error::usage(format!(
            "cluster `{}` was made without dynamic reconfiguration, so its voters are fixed (`zkdev add --observer` \
             adds an observer the static way, with a rolling restart); to add voters, {}",
            spec.name,
            spec.remake_advice(&["--reconfig"])
        )));
    }
    require_reconfig(&spec)?;
    let sup = ctx.supervisor().await?;
    let _lock = paths.lock(Duration::from_secs(60)).await?;
    let t0 = Instant::now();
    let status = observe::gather(&spec, &paths, &paths.load_state()?).await;
    let before = committed(&spec, &status).await?;
    let spec = in_step(&spec, &before);
    let role = if args.observer {
        Role::Observer
    } else {
        Role::Participant
    };
    let first = spec.next_id();
    let ids: Vec<u32> = (first..first + args.count).collect();
    let mut grown = spec.clone();
    for id in &ids {
        grown = grown.with_node(*id, role)?;
    }
    let what = format!("add {} as {}", nodes_word(&ids), plural(role.as_str(), ids.len()));
    let mut voters = before.voters();
    if role == Role::Participant {
        voters.extend(&ids);
    }
    // The new nodes are synced before ZooKeeper is asked: count them as up.
    let mut up = serving(&status);
    up.extend(&ids);
    let guarded = membership::guard(&ChangeQuorum::new(&voters, &up), &what, args.force);
    journal_refusal(ctx, &sup, guarded).await?;
    crate::os::launch::check_ports_free(&grown, &ids).await?;
    // On a TLS ensemble a new node needs a certificate from the cluster's CA before it can talk to anyone.
    for id in &ids {
        crate::os::tls::ensure_node(&grown, &paths, *id)?;
    }

    // The new nodes start with the current members plus themselves (rendered from the grown spec), and
    // follow the leader without a vote until the reconfig names them.
    save_spec(&paths, &grown)?;
    progress(
        ctx,
        &format!("starting {} with the current members plus themselves", nodes_word(&ids)),
    );
    let started = sup
        .ask_for::<StartReply>(
            Request::Start {
                ids: ids.clone(),
                cause: ctx.cause(),
            },
            Duration::from_secs(120),
        )
        .await;
    let synced = match started {
        Ok(_) => wait_synced(&sup, &grown, &ids, timeout).await,
        Err(e) => Err(e),
    };
    if let Err(e) = synced {
        undo_add(ctx, &sup, &paths, &spec, &ids).await;
        return Err(e);
    }
    progress(
        ctx,
        &format!("{} in sync; asking ZooKeeper to {what}", nodes_word(&ids)),
    );
    let joining = ids
        .iter()
        .map(|id| membership::server_string(&grown, *id, role))
        .collect::<Result<Vec<_>>>()?;
    let t_reconfig = Instant::now();
    let after = match ask(&paths, &spec, &before, &before.ids(), &joining, &[], &what).await {
        Ok(m) => m,
        Err(e) => {
            undo_add(ctx, &sup, &paths, &spec, &ids).await;
            return journal_refusal(ctx, &sup, Err(e)).await;
        }
    };
    let all = after.ids();
    let everywhere = reconfig::wait_committed(&grown, &all, after.version.unwrap_or_default(), timeout).await;
    journal_lagging(ctx, &sup, &grown, everywhere).await?;
    let commit = t_reconfig.elapsed();
    let grown = in_step(&grown, &after);
    save_spec(&paths, &grown)?;
    let leader_after = leader_now(&grown, &paths).await;
    finish(
        ctx,
        &sup,
        &grown,
        Report {
            change: "add".into(),
            nodes: ids,
            version_before: Version(before.version).to_string(),
            version_after: Version(after.version).to_string(),
            members_before: before.describe(),
            members_after: after.describe(),
            leader_before: status.leader,
            leader_after,
            elapsed_ms: t0.elapsed().as_millis() as u64,
            commit_ms: commit.as_millis() as u64,
            note: None,
        },
    )
    .await
}

#[derive(Debug, Serialize)]
struct StaticReport {
    change: &'static str,
    /// `static`: every zoo.cfg rewritten and the ensemble restarted node by node (no reconfig).
    path: &'static str,
    nodes: Vec<u32>,
    leader_before: u32,
    leader_after: Option<u32>,
    restarted: Vec<crate::engine::rolling::Step>,
    /// Every stretch without a serving leader during the restarts.
    leaderless: Vec<crate::engine::rolling::Window>,
    elapsed_ms: u64,
    note: &'static str,
}

const STATIC_NOTE: &str = "this is the static path (the tutorials'); the dynamic one is a cluster made with `zkdev up \
                           --reconfig`, where `zkdev add` asks ZooKeeper to reconfigure without restarting anything";

/// `zkdev add --observer` on a cluster without dynamic reconfiguration: the tutorials' static way. The new
/// observers' files are rendered (their own zoo.cfg with `peerType=observer`) and every node's zoo.cfg gets
/// their `server.N=...:observer` lines; they start and sync with the leader, then the other nodes restart one
/// at a time (the rolling restart's engine: followers first, the leader last, each serving again before the
/// next), so every node's configuration names them and the quorum never breaks.
async fn add_static(ctx: &Ctx, args: &AddArgs, paths: &ClusterPaths, spec: &ClusterSpec) -> Result<()> {
    if spec.net.is_some() {
        return Err(Error::usage(format!(
            "cluster `{}` has proxied links (--net) and no dynamic reconfiguration: zkdev adds an observer to such \
             a cluster only through reconfig; {}",
            spec.name,
            spec.remake_advice(&["--reconfig"])
        )));
    }
    let sup = ctx.supervisor().await?;
    let _lock = paths.lock(Duration::from_secs(60)).await?;
    let t0 = Instant::now();
    let status = observe::gather(spec, paths, &paths.load_state()?).await;
    if !status.healthy() {
        return Err(Error::failed(format!(
            "the static way restarts every node one at a time, which needs every node serving with one leader \
             first: {}; `zkdev up` or `zkdev wait`, then `zkdev add --observer` again",
            crate::output::summary_line(&status)
        )));
    }
    let first = spec.next_id();
    let ids: Vec<u32> = (first..first + args.count).collect();
    let mut grown = spec.clone();
    for id in &ids {
        grown = grown.with_node(*id, Role::Observer)?;
    }
    crate::os::launch::check_ports_free(&grown, &ids).await?;
    for id in &ids {
        crate::os::tls::ensure_node(&grown, paths, *id)?;
    }
    let old_ids = spec.ids();
    progress(
        ctx,
        &format!(
            "cluster `{}` has no dynamic reconfiguration: adding {} the static way (every zoo.cfg names {}, then \
             a rolling restart); `zkdev up --reconfig` makes a cluster where `zkdev add` needs no restart",
            spec.name,
            nodes_word(&ids),
            if ids.len() == 1 { "it" } else { "them" }
        ),
    );
    let record = Request::Record {
        message: format!(
            "static add of {} as {}: zoo.cfg of every node, then a rolling restart of {}",
            nodes_word(&ids),
            plural("observer", ids.len()),
            nodes_word(&old_ids)
        ),
        cause: ctx.cause(),
        action: Some(Action::Reconfig),
    };
    sup.ask_for::<RecordReply>(record, Duration::from_secs(10)).await?;
    // Every node's files from the grown spec: the new ones whole, the others' zoo.cfg with the new lines
    // (what a running node read at its start stays in force until its restart below).
    save_spec(paths, &grown)?;
    let rendered = crate::model::render::render(&grown, paths, &crate::dist::cds::plan(&grown, paths, &ids))?;
    for files in &rendered {
        crate::os::zoo_cfg::write_node(paths, files)?;
    }
    for id in &ids {
        let line = std::fs::read_to_string(paths.zoo_cfg(*id))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(&format!("server.{id}=")))
            .unwrap_or_default()
            .to_string();
        progress(
            ctx,
            &format!("wrote `{line}` into the zoo.cfg of {}", nodes_word(&grown.ids())),
        );
    }
    progress(ctx, &format!("starting {} (peerType=observer)", nodes_word(&ids)));
    let started = sup
        .ask_for::<StartReply>(
            Request::Start {
                ids: ids.clone(),
                cause: ctx.cause(),
            },
            Duration::from_secs(120),
        )
        .await;
    let synced = match started {
        Ok(_) => wait_synced(&sup, &grown, &ids, args.timeout).await,
        Err(e) => Err(e),
    };
    if let Err(e) = synced {
        undo_add(ctx, &sup, paths, spec, &ids).await;
        // The other nodes' zoo.cfg go back to what they run with.
        let rendered = crate::model::render::render(spec, paths, &crate::dist::cds::plan(spec, paths, &[]))?;
        for files in &rendered {
            crate::os::zoo_cfg::write_node(paths, files)?;
        }
        return Err(e);
    }
    let reload = Request::Reload {
        action: Action::Reconfig,
        message: format!(
            "{} observing; restarting {} one at a time so that each names it",
            nodes_word(&ids),
            nodes_word(&old_ids)
        ),
        cause: ctx.cause(),
    };
    sup.ask_for::<ReloadReply>(reload, Duration::from_secs(10)).await?;
    let show = |e: &crate::engine::rolling::RollingEvent| {
        let mode = |m: &Option<crate::model::server::Mode>| m.map_or("not serving".to_string(), |m| m.to_string());
        let line = match e {
            crate::engine::rolling::RollingEvent::Restarting { id, was } => {
                format!("restarting node {id} ({}) with the new zoo.cfg...", mode(was))
            }
            crate::engine::rolling::RollingEvent::Done(s) => format!(
                "node {} ({}): serving again as {} after {} ms",
                s.id,
                mode(&s.was),
                mode(&s.now),
                s.ms
            ),
        };
        progress(ctx, &line);
    };
    let restarted =
        crate::engine::rolling::rolling_restart(&sup, &ctx.cause(), &grown, paths, &old_ids, args.timeout, show).await;
    let restarted = match restarted {
        Ok(r) => r,
        Err(e) => {
            let record = Request::Record {
                message: format!(
                    "static add of {}: the rolling restart stopped ({e}); the nodes not restarted yet run with \
                     their old zoo.cfg: `zkdev rolling-restart` finishes it",
                    nodes_word(&ids)
                ),
                cause: ctx.cause(),
                action: None,
            };
            let _ = sup.ask_for::<RecordReply>(record, Duration::from_secs(5)).await;
            return Err(e);
        }
    };
    let leader_after = leader_now(&grown, paths).await;
    let report = StaticReport {
        change: "add",
        path: "static",
        nodes: ids.clone(),
        leader_before: restarted.leader_before,
        leader_after,
        restarted: restarted.steps,
        leaderless: restarted.leaderless,
        elapsed_ms: t0.elapsed().as_millis() as u64,
        note: STATIC_NOTE,
    };
    let without: u64 = report.leaderless.iter().map(|w| w.ms).sum();
    let message = format!(
        "static add of {} as {}: every node restarted with it in its zoo.cfg (leader {} last), {} ms without a \
         serving leader",
        nodes_word(&ids),
        plural("observer", ids.len()),
        report.leader_before,
        without
    );
    sup.ask_for::<ReloadReply>(
        Request::Reload {
            action: Action::Reconfig,
            message,
            cause: ctx.cause(),
        },
        Duration::from_secs(10),
    )
    .await?;
    if ctx.json {
        crate::output::print_json(&report);
        return Ok(());
    }
    crate::outln!(
        "added {} as {} the static way in {}: every zoo.cfg names {}, every node restarted once (leader {} \
         last), without a serving leader for {without} ms",
        nodes_word(&ids),
        if ids.len() == 1 { "an observer" } else { "observers" },
        crate::output::secs(Duration::from_millis(report.elapsed_ms)),
        if ids.len() == 1 { "it" } else { "them" },
        report.leader_before
    );
    crate::outln!("  {STATIC_NOTE}");
    crate::outln!(
        "cluster {}: leader {}, connect {}",
        grown.name,
        leader_after.map_or("none".to_string(), |l| l.to_string()),
        grown.client_connect_string()
    );
    Ok(())
}

/// `zkdev remove ID`, `zkdev promote ID`, `zkdev demote ID`.
pub async fn change(ctx: &Ctx, change: Change, args: MemberArgs) -> Result<()> {
    let timeout = args.timeout;
    let (paths, spec) = ctx.existing()?;
    require_reconfig(&spec)?;
    let sup = ctx.supervisor().await?;
    let _lock = paths.lock(Duration::from_secs(60)).await?;
    // remove and demote take a voter away: the quorum guard's lock too (see `node::run`), for the whole
    // change, so a concurrent stop or kill counts it.
    let _quorum_lock = match change {
        Change::Promote => None,
        Change::Remove | Change::Demote => Some(paths.quorum_lock(crate::engine::QUORUM_LOCK_WAIT).await?),
    };
    let t0 = Instant::now();
    let status = observe::gather(&spec, &paths, &paths.load_state()?).await;
    let id = match args.target {
        Target::Id(id) => id,
        Target::Leader => status.leader.ok_or_else(|| {
            Error::failed("no node leads right now (an election may be under way; `zkdev wait` waits for one)")
        })?,
        other => {
            return Err(Error::usage(format!(
                "`{other}`: give a node id, or `leader`; {} changes one node at a time",
                change.verb()
            )))
        }
    };
    let before = committed(&spec, &status).await?;
    let spec = in_step(&spec, &before);
    let Some(role) = before.role(id) else {
        if change == Change::Remove && spec.node(id).is_some() {
            // A node of cluster.toml ZooKeeper never took in (an `add` interrupted before its reconfig, or one
            // removed with another client): nothing to ask ZooKeeper, only to stop and drop it.
            return drop_outsider(ctx, &sup, &paths, &spec, id, &before).await;
        }
        return Err(Error::usage(format!(
            "node {id} is not in the configuration ZooKeeper committed ({}, version {})",
            before.describe(),
            Version(before.version)
        )));
    };
    let what = format!("{} node {id}", change.verb());
    let (joining, leaving, voters): (Vec<String>, Vec<u32>, Vec<u32>) = match (change, role) {
        (Change::Remove, _) => (
            vec![],
            vec![id],
            before.voters().into_iter().filter(|v| *v != id).collect(),
        ),
        (Change::Promote, Role::Observer) => {
            let mut v = before.voters();
            v.push(id);
            (
                vec![membership::server_string(&spec, id, Role::Participant)?],
                vec![],
                v,
            )
        }
        (Change::Demote, Role::Participant) => (
            vec![membership::server_string(&spec, id, Role::Observer)?],
            vec![],
            before.voters().into_iter().filter(|v| *v != id).collect(),
        ),
        (Change::Promote, Role::Participant) => {
            return Err(Error::usage(format!("node {id} is a participant already (it votes)")))
        }
        (Change::Demote, Role::Observer) => return Err(Error::usage(format!("node {id} is an observer already"))),
    };
    let guarded = membership::guard(&ChangeQuorum::new(&voters, &serving(&status)), &what, args.force);
    journal_refusal(ctx, &sup, guarded).await?;
    let was_leader = status.leader == Some(id);
    if was_leader {
        progress(
            ctx,
            &format!("node {id} leads: ZooKeeper elects a new leader among the others once it is committed"),
        );
    }
    // Ask through the other members where there are any: a change to the node itself can drop its sessions.
    let via: Vec<u32> = before.ids().into_iter().filter(|m| *m != id).collect();
    let t_reconfig = Instant::now();
    let after = match ask(&paths, &spec, &before, &via, &joining, &leaving, &what).await {
        Ok(m) => m,
        Err(e) if change == Change::Promote && reconfig::is_no_quorum(&e.to_string()) => {
            return journal_refusal(
                ctx,
                &sup,
                Err(Error::failed(format!(
                    "{e}. A promoted observer must be acknowledged as a voter by a quorum of the new configuration; \
                 when it cannot be (ZOOKEEPER-2172 and friends), take the other path: `zkdev remove {id}`, then \
                 `zkdev add` (the node comes back as a new participant, with a new id)"
                ))),
            )
            .await
        }
        Err(e) => return journal_refusal(ctx, &sup, Err(e)).await,
    };
    let members = after.ids();
    let everywhere = reconfig::wait_committed(&spec, &members, after.version.unwrap_or_default(), timeout).await;
    journal_lagging(ctx, &sup, &in_step(&spec, &after), everywhere).await?;
    let commit = t_reconfig.elapsed();
    let mut note = None;
    let mut next = in_step(&spec, &after);
    if change == Change::Remove {
        next = stop_and_drop(ctx, &sup, &paths, &next, id).await?;
    } else {
        save_spec(&paths, &next)?;
    }
    let leader_after = if was_leader {
        wait_new_leader(&next, &paths, id, timeout).await
    } else {
        leader_now(&next, &paths).await
    };
    if was_leader {
        note = Some(match leader_after {
            Some(l) => format!("node {id} led; ZooKeeper elected node {l} in its place"),
            None => format!(
                "node {id} led; no new leader within {} s (see `zkdev status`)",
                timeout.as_secs()
            ),
        });
    }
    finish(
        ctx,
        &sup,
        &next,
        Report {
            change: change.verb().into(),
            nodes: vec![id],
            version_before: Version(before.version).to_string(),
            version_after: Version(after.version).to_string(),
            members_before: before.describe(),
            members_after: after.describe(),
            leader_before: status.leader,
            leader_after,
            elapsed_ms: t0.elapsed().as_millis() as u64,
            commit_ms: commit.as_millis() as u64,
            note,
        },
    )
    .await
}

/// ZooKeeper committed the change but a member did not report it in time: keep cluster.toml as committed
/// (roles; nodes come and go only once every member has the change), journal it, and fail.
async fn journal_lagging<T>(ctx: &Ctx, sup: &Supervisor, spec: &ClusterSpec, result: Result<T>) -> Result<T> {
    if let Err(e) = &result {
        let paths = ctx.paths();
        if let Err(e2) = save_spec(&paths, spec) {
            eprintln!("warning: {e2}");
        }
        let reload = Request::Reload {
            action: Action::Reconfig,
            message: e.to_string(),
            cause: ctx.cause(),
        };
        let _ = sup.ask_for::<ReloadReply>(reload, Duration::from_secs(5)).await;
    }
    result
}

/// A change refused (by zkdev's guard or by ZooKeeper) goes in the journal too, as a note; the result as it was.
async fn journal_refusal<T>(ctx: &Ctx, sup: &Supervisor, result: Result<T>) -> Result<T> {
    if let Err(e) = &result {
        let record = Request::Record {
            message: format!("membership unchanged: {e}"),
            cause: ctx.cause(),
            action: None,
        };
        let _ = sup.ask_for::<RecordReply>(record, Duration::from_secs(5)).await;
    }
    result
}

/// Out of the ensemble: stop node `id`, drop it from cluster.toml, and remove its directory (a later `add`
/// with this id starts from nothing, as a new server must). The spec without it.
async fn stop_and_drop(
    ctx: &Ctx,
    sup: &Supervisor,
    paths: &ClusterPaths,
    spec: &ClusterSpec,
    id: u32,
) -> Result<ClusterSpec> {
    let stop = Request::Stop {
        ids: vec![id],
        grace_ms: 5000,
        cause: ctx.cause(),
    };
    sup.ask_for::<StopReply>(stop, Duration::from_secs(30)).await?;
    // Its data goes only once nothing uses it: the supervisor stops only a process it proves is the node.
    if let Some(who) = users_of_node_dir(paths, id) {
        return Err(Error::failed(format!(
            "node {id} is out of the ensemble's configuration, but {who} still uses its directory {}, so zkdev \
             kept it (and node {id} in cluster.toml); stop that process, then `zkdev remove {id}` drops it",
            paths.node_dir(id).display()
        )));
    }
    let mut next = spec.clone();
    next.nodes.retain(|n| n.id != id);
    save_spec(paths, &next)?;
    let dir = paths.node_dir(id);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io("cannot remove", &dir, e))?;
    }
    Ok(next)
}

/// `pid 123 (java), ...` for the processes that still use node `id`'s directory (its JVM, or anything with a
/// file open there); None when nothing does and the directory may go.
fn users_of_node_dir(paths: &ClusterPaths, id: u32) -> Option<String> {
    let dir = paths.node_dir(id);
    if !dir.exists() {
        return None;
    }
    let users = crate::os::process::users_of(&dir, "");
    (!users.is_empty()).then(|| {
        (users.iter())
            .map(|(pid, name)| format!("pid {pid} ({name})"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// `remove ID` for a node cluster.toml has but the committed configuration does not: stop it and drop it.
async fn drop_outsider(
    ctx: &Ctx,
    sup: &Supervisor,
    paths: &ClusterPaths,
    spec: &ClusterSpec,
    id: u32,
    committed: &Membership,
) -> Result<()> {
    let next = stop_and_drop(ctx, sup, paths, spec, id).await?;
    let message = format!(
        "node {id} dropped: it was not in the configuration ZooKeeper committed ({}, version {}), so ZooKeeper \
         was not asked",
        committed.describe(),
        Version(committed.version)
    );
    let reload = Request::Reload {
        action: Action::Reconfig,
        message: message.clone(),
        cause: ctx.cause(),
    };
    sup.ask_for::<ReloadReply>(reload, Duration::from_secs(10)).await?;
    if ctx.json {
        crate::output::print_json(&serde_json::json!({ "change": "drop", "nodes": [id], "message": message }));
    } else {
        crate::outln!("{message}");
        crate::outln!("cluster {}: connect {}", next.name, next.client_connect_string());
    }
    Ok(())
}

fn require_reconfig(spec: &ClusterSpec) -> Result<()> {
    if spec.settings.reconfig && spec.super_digest.is_some() {
        return Ok(());
    }
    Err(Error::usage(format!(
        "cluster `{}` was made without dynamic reconfiguration, so its membership is fixed; {}",
        spec.name,
        spec.remake_advice(&["--reconfig"])
    )))
}

/// The configuration the ensemble committed, as the leader (else any serving node) answers `conf`.
async fn committed(spec: &ClusterSpec, status: &ClusterStatus) -> Result<Membership> {
    let mut ask: Vec<u32> = status.leader.into_iter().collect();
    ask.extend(serving(status).into_iter().filter(|id| Some(*id) != status.leader));
    for id in ask {
        if let Some(m) = reconfig::node_config(spec, id).await {
            return Ok(m);
        }
    }
    Err(Error::failed(
        "no node serves, so nobody can say which configuration is committed; bring the ensemble up first \
         (`zkdev up`, `zkdev status`)",
    ))
}

/// Nodes serving now (in sync with a leader).
fn serving(status: &ClusterStatus) -> Vec<u32> {
    status.nodes.iter().filter(|n| n.serving()).map(|n| n.id).collect()
}

/// The spec with every node's role as `committed` has it (a change made with another client, or a
/// command interrupted after ZooKeeper committed it).
fn in_step(spec: &ClusterSpec, committed: &Membership) -> ClusterSpec {
    let mut spec = spec.clone();
    for n in &mut spec.nodes {
        if let Some(role) = committed.role(n.id) {
            n.role = role;
        }
    }
    spec
}

fn save_spec(paths: &ClusterPaths, spec: &ClusterSpec) -> Result<()> {
    crate::os::state::write_atomic(&paths.spec_file(), spec.to_toml().as_bytes())
}

/// `reconfig` through a super-user session on the members `via`. A lost connection (the change moved the
/// leader) is not the end: the members are asked which configuration they have.
async fn ask(
    paths: &ClusterPaths,
    spec: &ClusterSpec,
    before: &Membership,
    via: &[u32],
    joining: &[String],
    leaving: &[u32],
    what: &str,
) -> Result<Membership> {
    let connect = (via.iter())
        .filter_map(|id| spec.node(*id))
        .map(|n| n.client_addr().to_string())
        .collect::<Vec<_>>()
        .join(",");
    if via.is_empty() {
        return Err(Error::failed(format!(
            "cannot {what}: no other member to ask ZooKeeper through"
        )));
    }
    let client = reconfig::super_client(paths, &connect).await?;
    match reconfig::reconfig(&client, joining, leaving, what).await {
        Ok(m) => Ok(m),
        Err(e) if e.to_string().contains("connection was lost") || e.to_string().contains("did not answer") => {
            // Committed or not: the servers know. Only the change itself counts, not the configuration a
            // member that lags (or never heard of the change) still has: a removed node's data goes next.
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                for id in via {
                    if let Some(m) = reconfig::node_config(spec, *id).await {
                        if m.reflects(before, joining, leaving) {
                            return Ok(m);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// Wait until every node of `ids` serves (a follower or observer in sync with the leader); at once an error
/// when the supervisor died and no new one started (on a `--net` cluster no link works without it).
async fn wait_synced(sup: &Supervisor, spec: &ClusterSpec, ids: &[u32], timeout: Duration) -> Result<()> {
    let t0 = Instant::now();
    loop {
        let mut behind = Vec::new();
        for id in ids {
            let node = spec.node(*id).expect("a node of the spec");
            let p = crate::zk::probe::srvr(node.client_addr(), Duration::from_millis(1000)).await;
            if !matches!(p, crate::zk::probe::Probe::Serving(_)) {
                behind.push(*id);
            }
        }
        if behind.is_empty() {
            return Ok(());
        }
        if let Some(lost) = sup.lost() {
            return Err(Error::failed(format!(
                "{lost}; {} cannot sync with the leader without it, so ZooKeeper was not asked: `zkdev status` \
                 starts a supervisor, then `zkdev add` again",
                nodes_word(&behind)
            )));
        }
        if t0.elapsed() >= timeout {
            return Err(Error::timeout(format!(
                "{} did not sync with the leader within {} s, so ZooKeeper was not asked and the ensemble is as it \
                 was; see `zkdev logs {}`",
                nodes_word(&behind),
                timeout.as_secs(),
                behind[0]
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Take back an `add` ZooKeeper was not asked for (or refused): stop the new nodes, forget them, drop
/// their directories, put the spec back.
async fn undo_add(ctx: &Ctx, sup: &Supervisor, paths: &ClusterPaths, spec: &ClusterSpec, ids: &[u32]) {
    let stop = Request::Stop {
        ids: ids.to_vec(),
        grace_ms: 3000,
        cause: ctx.cause(),
    };
    if let Err(e) = sup.ask_for::<StopReply>(stop, Duration::from_secs(30)).await {
        eprintln!("warning: could not stop {}: {e}", nodes_word(ids));
    }
    // A new node something still uses (its JVM, not proven ours and so not stopped) keeps its directory and
    // its place in cluster.toml, so that nothing is lost and `zkdev remove ID` can drop it later.
    let mut kept = spec.clone();
    let grown = paths.load_spec().ok();
    for id in ids {
        match users_of_node_dir(paths, *id) {
            Some(who) => {
                eprintln!(
                    "warning: node {id} was not stopped ({who} still uses {}); it stays in cluster.toml: stop that \
                     process, then `zkdev remove {id}` drops it",
                    paths.node_dir(*id).display()
                );
                if let Some(n) = grown.as_ref().and_then(|g| g.node(*id)) {
                    kept.nodes.push(n.clone());
                }
            }
            None => {
                let dir = paths.node_dir(*id);
                if dir.exists() {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
    }
    if let Err(e) = save_spec(paths, &kept) {
        eprintln!("warning: {e}");
    }
    let reload = Request::Reload {
        action: Action::Reconfig,
        message: format!("{} taken back: the membership is unchanged", nodes_word(ids)),
        cause: ctx.cause(),
    };
    if let Err(e) = sup.ask_for::<ReloadReply>(reload, Duration::from_secs(10)).await {
        eprintln!("warning: {e}");
    }
}

async fn leader_now(spec: &ClusterSpec, paths: &ClusterPaths) -> Option<u32> {
    let state = paths.load_state().ok()?;
    observe::gather(spec, paths, &state).await.leader
}

async fn wait_new_leader(spec: &ClusterSpec, paths: &ClusterPaths, old: u32, timeout: Duration) -> Option<u32> {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if let Some(l) = leader_now(spec, paths).await.filter(|l| *l != old) {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Journal the change (the supervisor reads cluster.toml again), and report it.
async fn finish(ctx: &Ctx, sup: &Supervisor, spec: &ClusterSpec, r: Report) -> Result<()> {
    let message = format!(
        "{} {}: configuration {} -> {} ({}) in {} ms",
        r.change,
        nodes_word(&r.nodes),
        r.version_before,
        r.version_after,
        r.members_after,
        r.commit_ms
    );
    sup.ask_for::<ReloadReply>(
        Request::Reload {
            action: Action::Reconfig,
            message,
            cause: ctx.cause(),
        },
        Duration::from_secs(10),
    )
    .await?;
    if ctx.json {
        crate::output::print_json(&r);
        return Ok(());
    }
    let done = match r.change.as_str() {
        "add" => "added",
        "remove" => "removed",
        "promote" => "promoted",
        _ => "demoted",
    };
    crate::outln!(
        "{done} {}: configuration {} -> {}, committed on every member {} after the reconfig ({} in all)",
        nodes_word(&r.nodes),
        r.version_before,
        r.version_after,
        crate::output::secs(Duration::from_millis(r.commit_ms)),
        crate::output::secs(Duration::from_millis(r.elapsed_ms))
    );
    crate::outln!("  before: {}", r.members_before);
    crate::outln!("  after:  {}", r.members_after);
    if let Some(n) = &r.note {
        crate::outln!("  {n}");
    }
    crate::outln!(
        "cluster {}: leader {}, connect {}",
        spec.name,
        r.leader_after.map_or("none".to_string(), |l| l.to_string()),
        spec.client_connect_string()
    );
    Ok(())
}

fn progress(ctx: &Ctx, message: &str) {
    if !ctx.quiet && !ctx.json {
        eprintln!("{message}");
    }
}

fn nodes_word(ids: &[u32]) -> String {
    let list = ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    if ids.len() == 1 {
        format!("node {list}")
    } else {
        format!("nodes {list}")
    }
}

fn plural(word: &str, n: usize) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}
