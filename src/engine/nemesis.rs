//! The faults of `verify --nemesis`, injected one at a time: resolve the planned target against the servers,
//! break it through the supervisor (which journals every signal and link change with verify's command line
//! as the cause), hold, heal, and wait until every node serves again. A fault is always healed, also when
//! the run is interrupted while it is held.

pub use super::env::Env;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::kill_leader::{self, KillLeader, KillReport};
use crate::engine::sessions;
use crate::error::{Error, Result};
use crate::model::disk::DiskFault;
use crate::model::links::{self, Endpoint, Fault, Port};
use crate::model::nemesis::{Kind, Planned, Who};
use crate::model::spec::ClusterSpec;
use crate::model::words;
use crate::os::clock::now_ms;
use crate::os::interrupt;
use crate::supervisor::control::{Request, Sig};
use crate::zk::observe::{self, ClusterStatus, ProcessState};

/// One fault as it was injected.
#[derive(Debug, Serialize)]
pub struct Injected {
    /// The fault as planned.
    #[serde(flatten)]
    pub planned: Planned,
    /// The nodes it hit, resolved when it was injected (a partition: the cut-off node; a link: both ends).
    pub nodes: Vec<u32>,
    /// What was done, e.g. `isolate node 3 (leader) from nodes 1,2`.
    pub what: String,
    /// Start of the writes -> the fault injected.
    pub injected_at_ms: u64,
    /// Injected -> healed (kill: killed -> restarted node serving again).
    pub held_ms: u64,
    /// Healed -> every node serving with one leader again.
    pub recovered_ms: Option<u64>,
    /// A `kill` fault's leader kill, timed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill: Option<KillReport>,
}

/// Can `cmd` (verify, chaos) inject `kinds` into this cluster? Refuses disk faults on a cluster without the
/// disk-fault library, network faults on a cluster without proxied links, and (unless `force`) voter faults where one voter out loses the quorum.
pub fn check_kinds(kinds: &[Kind], spec: &ClusterSpec, cmd: &str, force: bool) -> Result<()> {
    if let Some(k) = kinds.iter().find(|k| k.needs_disk_faults()) {
        if !spec.settings.disk_faults {
            return Err(Error::usage(format!(
                "--nemesis {k} needs the disk-fault library in the nodes, but cluster `{}` was made without it; \
                 make it again with --disk-faults (this removes its data): `{}`, or leave {k} out of --nemesis",
                spec.name,
                spec.remake_command(&["--disk-faults"])
            )));
        }
    }
    let net: Vec<&str> = kinds.iter().filter(|k| k.needs_net()).map(|k| k.as_str()).collect();
    if !net.is_empty() && spec.net.is_none() {
        return Err(Error::usage(format!(
            "--nemesis {} needs proxied links, but cluster `{}` was made without them (its nodes dial each other \
             directly); {}, or leave {} out of --nemesis (kill and pause work on any cluster)",
            net.join(","),
            spec.name,
            if spec.settings.addresses == crate::model::profile::AddressMode::Loopback {
                "proxied links do not combine with --addresses loopback, so that needs a cluster on 127.0.0.1: \
                 `zkdev --cluster NAME up --net --port-offset K`"
                    .to_string()
            } else {
                format!(
                    "make it again with --net (this removes its data): `{}`",
                    spec.remake_command(&["--net"])
                )
            },
            words::and_list(&net)
        )));
    }
    if !force && kinds.iter().any(|k| k.takes_a_voter()) {
        let (voters, needed) = (spec.voter_count(), spec.quorum_needed());
        if voters <= needed {
            return Err(Error::failed(format!(
                "--nemesis takes one voter out at a time and needs the others to keep a quorum, but cluster `{}` \
                 has {} and a quorum needs {needed}; {cmd} needs at least 3 voters (`{}`, which removes its data), \
                 or give --nemesis delay alone",
                spec.name,
                crate::model::words::count(voters, "voter"),
                spec.remake_command_with(3, &[])
            )));
        }
    }
    Ok(())
}

fn list(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn nodes_word(ids: &[u32]) -> String {
    match ids {
        [one] => format!("node {one}"),
        many => format!("nodes {}", list(many)),
    }
}

/// The node `who` names now, with its role for the report (`node 3 (leader)`).
fn resolve(who: Who, status: &ClusterStatus) -> Result<(u32, String)> {
    let leader = status.leaders().first().map(|n| n.id);
    let id = match who {
        Who::Leader => leader.ok_or_else(|| Error::failed("no node leads right now, so there is no leader to hit"))?,
        Who::Node(id) => id,
    };
    let role = status
        .node(id)
        .and_then(|n| n.mode())
        .map_or("not serving".to_string(), |m| m.to_string());
    Ok((id, format!("node {id} ({role})")))
}

/// Sleep until `at`, or until interrupted.
async fn sleep_until(at: Instant) {
    while Instant::now() < at && !interrupt::interrupted() {
        tokio::time::sleep(Duration::from_millis(20).min(at.saturating_duration_since(Instant::now()))).await;
    }
}

/// Wait until every node serves, starting node `id` again if its JVM exits meanwhile; true if it was started.
async fn restart_if_exited(env: &Env<'_>, id: u32) -> Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut restarted = false;
    while Instant::now() < deadline && !interrupt::interrupted() {
        let status = observe::gather(env.spec, env.paths, &env.paths.load_state()?).await;
        if status.healthy() {
            break;
        }
        let exited =
            (status.node(id)).is_some_and(|n| matches!(n.process(), ProcessState::Crashed | ProcessState::Stopped));
        if exited && !restarted {
            let req = Request::Start {
                ids: vec![id],
                cause: env.cause.to_string(),
            };
            env.sup
                .ask_for::<crate::supervisor::replies::StartReply>(req, Duration::from_secs(60))
                .await?;
            restarted = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(restarted)
}

/// A nemesis power cut keeps what the kernel would have written back by itself before it (older than this):
/// the run looks at what fsync protects, not at the snapshot ZooKeeper writes unsynced when it starts.
const POWER_CUT_WRITEBACK_MS: u64 = 5_000;

/// Put `fault` on node `id`'s disk through the supervisor (journalled).
async fn set_disk(env: &Env<'_>, id: u32, fault: DiskFault) -> Result<()> {
    let req = Request::Disk {
        ids: vec![id],
        fault,
        cause: env.cause.to_string(),
    };
    env.sup
        .ask_for::<crate::supervisor::replies::DiskReply>(req, Duration::from_secs(10))
        .await
        .map(|_| ())
}

async fn set_links(env: &Env<'_>, req: Request) -> Result<()> {
    env.sup
        .ask_for::<crate::supervisor::replies::SetLinksReply>(req, Duration::from_secs(10))
        .await
        .map(|_| ())
}

/// Put `rules` in force for one nemesis fault, journalled as `action` with `verify` as the cause.
fn fault_request(env: &Env<'_>, rules: Vec<links::Rule>, action: &str, message: String) -> Request {
    Request::SetLinks {
        heal_all: false,
        heal_pairs: Vec::new(),
        rules,
        reset: Vec::new(),
        action: action.into(),
        message,
        cause: env.cause.to_string(),
    }
}

fn heal_request(env: &Env<'_>, pairs: Vec<(Endpoint, Endpoint)>, message: String) -> Request {
    Request::SetLinks {
        heal_all: false,
        heal_pairs: pairs,
        rules: Vec::new(),
        reset: Vec::new(),
        action: "heal".into(),
        message,
        cause: env.cause.to_string(),
    }
}

/// A heal that did not happen: the error, the fault still in force and the command that ends it.
fn left_in_force(e: Error, what: &str, undo: &str) -> Error {
    e.reword(|m| format!("{m}; the fault is still in force ({what}): `{undo}` ends it"))
}

/// The command that heals node `id`'s links to each of `others`: `zkdev heal 3 1` for one, `zkdev heal`
/// (every link) for more.
fn heal_command(id: u32, others: &[u32]) -> String {
    match others {
        [one] => format!("zkdev heal {id} {one}"),
        _ => "zkdev heal".to_string(),
    }
}

/// Every node serving with one leader, within `timeout`; at once an error when the supervisor died and no
/// new one could be started (on a `--net` cluster no link works without one).
pub async fn wait_healthy(env: &Env<'_>, timeout: Duration, after: &str) -> Result<()> {
    let lost = || env.sup.lost();
    match observe::wait_until(
        env.spec,
        env.paths,
        timeout,
        |s| s.healthy() || lost().is_some(),
        |_| {},
    )
    .await
    {
        Ok(_) if lost().is_some() => Err(Error::failed(format!(
            "{}; the ensemble cannot serve {after} without it: `zkdev status` starts one",
            lost().unwrap_or_default()
        ))),
        Ok(_) => Ok(()),
        Err((_, s)) => Err(Error::failed(format!(
            "the ensemble did not serve again within {} {after}: {}",
            crate::model::span::secs(timeout),
            crate::model::status::summary_line(&s)
        ))),
    }
}

/// Inject `f` (waiting first until its planned time after `t0`), hold it, heal it, wait for every node to
/// serve again.
pub async fn inject(env: &Env<'_>, f: &Planned, t0: Instant) -> Result<Injected> {
    sleep_until(t0 + Duration::from_millis(f.at_ms)).await;
    if interrupt::interrupted() {
        return Err(Error::failed("interrupted"));
    }
    // The previous fault was healed and waited for; an election it caused may still be settling.
    wait_healthy(env, Duration::from_secs(60), &format!("before fault {}", f.n)).await?;
    let status = observe::gather(env.spec, env.paths, &env.paths.load_state()?).await;
    let injected_at_ms = t0.elapsed().as_millis() as u64;
    let mut kill = None;
    let hold = Duration::from_millis(f.hold_ms);
    let (nodes, what, held) = match f.kind {
        Kind::Disk => {
            let (id, name) = resolve(f.target, &status)?;
            let fault = match f.delay_ms {
                Some(ms) => DiskFault::SlowFsync { ms },
                None => DiskFault::Full,
            };
            let what = format!("{} on {name}", fault.describe());
            let start = Instant::now();
            set_disk(env, id, fault).await?;
            sleep_until(start + hold).await;
            // Healed whatever happens, also when interrupted.
            set_disk(env, id, DiskFault::Healthy).await.map_err(|e| {
                left_in_force(
                    e,
                    &format!("{} on node {id}", fault.describe()),
                    &format!("zkdev disk {id} --heal"),
                )
            })?;
            // A leader whose disk filled may exit, also a moment after the heal (it cannot write the snapshot
            // it takes when it starts to lead again: exit code 10). Start it, as a person would after freeing the
            // disk, until the ensemble serves again.
            let restarted = restart_if_exited(env, id).await?;
            let what = if restarted {
                format!("{what}; healed; its JVM had exited, started it again")
            } else {
                format!("{what}; healed")
            };
            (vec![id], what, start.elapsed())
        }
        Kind::PowerCut => {
            let (id, name) = resolve(f.target, &status)?;
            let start = Instant::now();
            let cut = env
                .sup
                .ask_for::<crate::supervisor::replies::PowerCutReply>(
                    Request::PowerCut {
                        ids: vec![id],
                        torn: None,
                        writeback_ms: Some(POWER_CUT_WRITEBACK_MS),
                        cause: env.cause.to_string(),
                    },
                    Duration::from_secs(60),
                )
                .await?;
            sleep_until(start + hold).await;
            let start_req = Request::Start {
                ids: vec![id],
                cause: env.cause.to_string(),
            };
            env.sup
                .ask_for::<crate::supervisor::replies::StartReply>(start_req, Duration::from_secs(60))
                .await?;
            // ZooKeeper may refuse what the cut left (a snapshot it never fsynced): say so, with its words.
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                let now = observe::gather(env.spec, env.paths, &env.paths.load_state()?).await;
                let Some(n) = now.node(id) else { break };
                if n.serving() {
                    break;
                }
                if n.process() == observe::ProcessState::Crashed {
                    return Err(Error::failed(format!(
                        "after the power cut of {name} ({} lost) node {id} did not start again: {}",
                        crate::model::words::count(cut.bytes_lost as usize, "unsynced byte"),
                        n.detail().unwrap_or("see `zkdev logs`")
                    )));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let what = format!(
                "power cut of {name} ({} lost); started again",
                crate::model::words::count(cut.bytes_lost as usize, "unsynced byte")
            );
            (vec![id], what, start.elapsed())
        }
        Kind::Expire => {
            let start = Instant::now();
            let now = sessions::list(env.spec).await;
            let mut ended = Vec::new();
            for s in &now.sessions {
                // A session that ended on its own meanwhile (its client moved on) is no failure of the fault.
                if let Ok(e) = sessions::expire_one(env.spec, &now, s, Duration::from_secs(10)).await {
                    ended.push(e.id);
                }
            }
            let what = format!(
                "expired {} of {}: {}",
                ended.len(),
                crate::model::words::count(now.sessions.len(), "client session"),
                if ended.is_empty() {
                    "none".to_string()
                } else {
                    ended.join(" ")
                }
            );
            let record = Request::Record {
                message: format!("verify nemesis fault {}: {what}", f.n),
                cause: env.cause.to_string(),
                action: Some("expire".into()),
            };
            env.sup
                .ask_for::<crate::supervisor::replies::RecordReply>(record, Duration::from_secs(10))
                .await?;
            (Vec::new(), what, start.elapsed())
        }
        Kind::Kill => {
            let start = Instant::now();
            let options = KillLeader {
                force: env.force,
                restart: true,
                timeout: Duration::from_secs(60),
                ..KillLeader::default()
            };
            let (r, _) = kill_leader::kill_leader(env.sup, env.cause, env.spec, env.paths, &options).await?;
            let what = format!(
                "killed leader {} (epoch {}); {}; restarted, {}",
                r.old_leader,
                r.old_epoch,
                kill_leader::new_leader_phrase(r.new_leader, r.new_epoch, r.new_leader_ms),
                r.rejoined_as
                    .map_or("not seen rejoining".to_string(), |m| format!("rejoined as {m}"))
            );
            let nodes = vec![r.old_leader];
            kill = Some(r);
            (nodes, what, start.elapsed())
        }
        Kind::Pause => {
            let (id, name) = resolve(f.target, &status)?;
            let signal = |signal| Request::Signal {
                ids: vec![id],
                signal,
                cause: env.cause.to_string(),
            };
            let start = Instant::now();
            // A supervisor that dies before it answers may have stopped the node already: say how to undo it.
            (env.sup
                .ask_for::<crate::supervisor::replies::SignalReply>(signal(Sig::Stop), Duration::from_secs(30))
                .await)
                .map_err(|e| left_in_force(e, &format!("node {id} paused (SIGSTOP)"), &format!("zkdev resume {id}")))?;
            sleep_until(start + hold).await;
            // Resumed whatever happens, also when interrupted.
            (env.sup
                .ask_for::<crate::supervisor::replies::SignalReply>(signal(Sig::Cont), Duration::from_secs(30))
                .await)
                .map_err(|e| left_in_force(e, &format!("node {id} paused (SIGSTOP)"), &format!("zkdev resume {id}")))?;
            (vec![id], format!("paused {name}, resumed"), start.elapsed())
        }
        Kind::Partition => {
            let (id, name) = resolve(f.target, &status)?;
            let others: Vec<u32> = env.spec.ids().into_iter().filter(|o| *o != id).collect();
            let what = format!("isolated {name} from {}", nodes_word(&others));
            let start = Instant::now();
            set_links(
                env,
                fault_request(
                    env,
                    links::partition(&[id], &others, false, env.cause, now_ms()),
                    "isolate",
                    format!("verify nemesis fault {}: {what}", f.n),
                ),
            )
            .await?;
            sleep_until(start + hold).await;
            let pairs = others
                .iter()
                .map(|o| (Endpoint::Node(id), Endpoint::Node(*o)))
                .collect();
            set_links(
                env,
                heal_request(env, pairs, format!("verify nemesis fault {}: heal node {id}", f.n)),
            )
            .await
            .map_err(|e| left_in_force(e, &what, &heal_command(id, &others)))?;
            (vec![id], what, start.elapsed())
        }
        Kind::Stall | Kind::Delay => {
            let (a, name) = resolve(f.target, &status)?;
            let leader = status.leaders().first().map(|n| n.id);
            // The other end: the leader for a stall (a quorum link joins a learner and its leader), the
            // planned peer for a delay; when that is `a` itself, the next node id after it.
            let wanted = if f.kind == Kind::Stall { leader } else { f.peer };
            let ids = env.spec.ids();
            let b = wanted
                .filter(|b| *b != a)
                .or_else(|| {
                    ids.iter()
                        .copied()
                        .find(|i| *i > a)
                        .or_else(|| ids.iter().copied().find(|i| *i != a))
                })
                .ok_or_else(|| Error::failed("a link needs two nodes"))?;
            let (fault, ports, port_names) = if f.kind == Kind::Stall {
                let fault = Fault {
                    stall: true,
                    ..Fault::default()
                };
                (fault, vec![Port::Quorum], "quorum")
            } else {
                let fault = Fault {
                    delay_ms: f.delay_ms.unwrap_or(100),
                    ..Fault::default()
                };
                (fault, vec![Port::Quorum, Port::Election], "quorum+election")
            };
            let role_b = status
                .node(b)
                .and_then(|n| n.mode())
                .map_or("not serving".to_string(), |m| m.to_string());
            let what = format!(
                "{} the {port_names} link {name} <-> node {b} ({role_b})",
                if f.kind == Kind::Stall {
                    "stalled".to_string()
                } else {
                    format!("delayed by {} ms", fault.delay_ms)
                }
            );
            let (ea, eb) = (Endpoint::Node(a), Endpoint::Node(b));
            let start = Instant::now();
            set_links(
                env,
                fault_request(
                    env,
                    links::link(ea, eb, &ports, fault, false, env.cause, now_ms()),
                    "link",
                    format!("verify nemesis fault {}: {what}", f.n),
                ),
            )
            .await?;
            sleep_until(start + hold).await;
            set_links(
                env,
                heal_request(
                    env,
                    vec![(ea, eb)],
                    format!("verify nemesis fault {}: heal link {a}<->{b}", f.n),
                ),
            )
            .await
            .map_err(|e| left_in_force(e, &what, &format!("zkdev heal {a} {b}")))?;
            (vec![a, b], what, start.elapsed())
        }
    };
    let healed = Instant::now();
    wait_healthy(env, Duration::from_secs(60), &format!("after fault {} was healed", f.n)).await?;
    Ok(Injected {
        planned: f.clone(),
        nodes,
        what,
        injected_at_ms,
        held_ms: held.as_millis() as u64,
        recovered_ms: Some(healed.elapsed().as_millis() as u64),
        kill,
    })
}
