//! Link faults on a `--net` cluster, measured: cut nodes off from others (`partition`, `isolate`) and see
//! which side keeps a quorum and how soon it leads; set a fault on one link (`link`); heal links and see
//! the ensemble serve again (`heal`). Each goes through the supervisor (which owns the proxies and journals
//! the change with the caller's cause) and returns a typed report the caller renders.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::nemesis::Env;
use crate::error::{Error, Result};
use crate::model::fault::{self, Target};
use crate::model::links::{self, Endpoint, Fault, Flow, Port, Rule};
use crate::model::server::Mode;
use crate::model::span::secs;
use crate::model::status::summary_line;
use crate::model::timeline::{Action, Event, Kind, NodeState};
use crate::model::words;
use crate::os::clock::now_ms;
use crate::os::state::ClusterPaths;
use crate::supervisor::control::{Request, Supervisor};
use crate::supervisor::replies::{RecordReply, SetLinksReply};
use crate::zk::observe::{self, ClusterStatus};

/// The cluster must have proxied links (`zkdev up --net`).
pub fn proxied(env: &Env<'_>) -> Result<()> {
    match env.spec.net {
        Some(_) => Ok(()),
        None => Err(crate::supervisor::links::not_proxied(env.spec)),
    }
}

/// The nodes `targets` name now, each once, in order.
pub fn ids_of(targets: &[Target], status: &ClusterStatus) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    for t in targets {
        for id in fault::resolve(*t, status)? {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

/// One end of a link: `client(s)` or a target naming exactly one node now.
pub fn endpoint(text: &str, status: &ClusterStatus) -> Result<Endpoint> {
    if matches!(text, "client" | "clients") {
        return Ok(Endpoint::Clients);
    }
    let target: Target = text.parse().map_err(Error::usage)?;
    match fault::resolve(target, status)?.as_slice() {
        [id] => Ok(Endpoint::Node(*id)),
        more => Err(Error::usage(format!(
            "`{text}` names {}; a link has one node at each end",
            words::count(more.len(), "node")
        ))),
    }
}

fn list(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// The journal position and monotonic time of the change.
async fn set_links(sup: &Supervisor, req: Request) -> Result<(u64, u64)> {
    let r = sup.ask_for::<SetLinksReply>(req, Duration::from_secs(10)).await?;
    Ok((r.seq, r.mono_ms))
}

/// Which cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// `zkdev partition`: the given nodes from the given others (or from every other node).
    Partition,
    /// `zkdev isolate`: one node from every other.
    Isolate,
}

impl Cut {
    fn word(self) -> &'static str {
        match self {
            Cut::Partition => "partition",
            Cut::Isolate => "isolate",
        }
    }

    fn action(self) -> Action {
        match self {
            Cut::Partition => Action::Partition,
            Cut::Isolate => Action::Isolate,
        }
    }
}

/// What to cut.
#[derive(Debug, Clone)]
pub struct SplitOptions {
    /// Partition or isolate (as journalled and reported).
    pub cut: Cut,
    /// The nodes cut off.
    pub side: Vec<Target>,
    /// The nodes they are cut off from; empty: every other node.
    pub from: Vec<Target>,
    /// Only what the cut-off side sends is dropped.
    pub one_way: bool,
    /// Wait (this long) for the sides to settle and measure the new leader; `None` returns at once.
    pub wait: Option<Duration>,
}

/// What a partition did, measured.
#[derive(Debug, Serialize)]
pub struct SplitReport {
    /// `partition` or `isolate`.
    pub action: String,
    /// The nodes cut off.
    pub cut_off: Vec<u32>,
    /// The nodes they were cut off from.
    pub from: Vec<u32>,
    /// Only what the cut-off nodes send is dropped.
    pub one_way: bool,
    /// The leader before the cut.
    pub old_leader: Option<u32>,
    /// Its epoch.
    pub old_epoch: Option<u32>,
    /// The side with a quorum of voters, if one has it.
    pub majority_side: Option<Vec<u32>>,
    /// The leader of the side with a quorum, once seen.
    pub new_leader: Option<u32>,
    /// Its epoch.
    pub new_epoch: Option<u32>,
    /// Cut -> a node of the majority side serving as leader with a higher epoch (journal times).
    pub new_leader_ms: Option<u64>,
    /// Cut -> the old leader no longer serving as leader (it was cut off from its quorum).
    pub old_leader_stopped_ms: Option<u64>,
    /// syncLimit x tickTime: how long ZooKeeper lets a leader that hears no quorum go on.
    pub sync_limit_ms: u64,
    /// Nodes not serving at the end (LOOKING: cut off from a quorum).
    pub not_serving: Vec<u32>,
    /// The ensemble had not settled in time, or no side holds a quorum.
    pub warning: Option<String>,
}

/// Cut nodes off on their quorum and election links; with `wait`, see which side keeps a quorum, its
/// leader and how soon (from the journal), and whether the old leader stopped leading.
pub async fn split(env: &Env<'_>, options: &SplitOptions) -> Result<SplitReport> {
    proxied(env)?;
    let (spec, paths) = (env.spec, env.paths);
    let before = observe::gather(spec, paths, &paths.load_state()?).await;
    let side = ids_of(&options.side, &before)?;
    let others = if options.from.is_empty() {
        spec.ids().into_iter().filter(|id| !side.contains(id)).collect()
    } else {
        ids_of(&options.from, &before)?
    };
    let others: Vec<u32> = others.into_iter().filter(|id| !side.contains(id)).collect();
    if side.is_empty() || others.is_empty() {
        return Err(Error::usage(format!(
            "nothing to cut: the cut-off nodes are {{{}}} and the others {{{}}}",
            list(&side),
            list(&others)
        )));
    }
    let rules = links::partition(&side, &others, options.one_way, env.cause, now_ms());
    let how = if options.one_way {
        "one way: what they send is dropped"
    } else {
        "both ways"
    };
    let message = format!(
        "{}: {} cut off from {} on quorum and election links ({how})",
        options.cut.word(),
        nodes_word(&side),
        nodes_word(&others)
    );
    let old_leader = before.leaders().first().map(|n| n.id);
    let old_epoch = before.leaders().first().and_then(|n| n.zxid()).map(|z| z.epoch());
    let (seq, mono0) = set_links(
        env.sup,
        Request::SetLinks {
            heal_all: false,
            heal_pairs: Vec::new(),
            rules,
            reset: Vec::new(),
            action: options.cut.action(),
            message: message.clone(),
            cause: env.cause.to_string(),
        },
    )
    .await?;

    // Which side keeps a quorum of voters (one that is up)?
    let voters_up = fault::voters_up(&before);
    let needed = before.quorum.needed;
    let rest: Vec<u32> = spec.ids().into_iter().filter(|id| !side.contains(id)).collect();
    let count = |ids: &[u32]| ids.iter().filter(|id| voters_up.contains(id)).count();
    // A one-way cut still lets the others hear the cut-off side; the effect depends on ZooKeeper.
    let majority_side = if count(&rest) >= needed {
        Some(rest.clone())
    } else if count(&side) >= needed {
        Some(side.clone())
    } else {
        None
    };
    let mut report = SplitReport {
        action: options.cut.word().to_string(),
        cut_off: side.clone(),
        from: others.clone(),
        one_way: options.one_way,
        old_leader,
        old_epoch,
        majority_side: majority_side.clone(),
        new_leader: None,
        new_epoch: None,
        new_leader_ms: None,
        old_leader_stopped_ms: None,
        sync_limit_ms: u64::from(spec.settings.sync_limit) * u64::from(spec.settings.tick_time),
        not_serving: Vec::new(),
        warning: None,
    };
    if let Some(timeout) = options.wait {
        let minority: Vec<u32> = spec
            .ids()
            .into_iter()
            .filter(|id| majority_side.as_ref().is_none_or(|m| !m.contains(id)))
            .collect();
        let leader_in_majority = old_leader.is_some_and(|l| majority_side.as_ref().is_some_and(|m| m.contains(&l)));
        let r = observe::wait_until(
            spec,
            paths,
            timeout,
            |s| {
                // The minority side (with a full cut) stops serving; the majority side has a leader.
                let minority_down =
                    options.one_way || minority.iter().all(|id| s.node(*id).is_some_and(|n| !n.serving()));
                let majority_led = match &majority_side {
                    None => true,
                    Some(m) => s.nodes.iter().any(|n| {
                        m.contains(&n.id)
                            && n.is_leader()
                            && (leader_in_majority || n.zxid().map(|z| z.epoch()) > old_epoch)
                            && m.iter()
                                .filter(|id| voters_up.contains(id))
                                .all(|id| s.node(*id).is_some_and(|x| x.serving()))
                    }),
                };
                minority_down && majority_led
            },
            |_| {},
        )
        .await;
        let after = match r {
            Ok(s) => s,
            Err((_, s)) => {
                report.warning = Some(format!(
                    "the ensemble had not settled {} after the cut; {}",
                    secs(timeout),
                    summary_line(&s)
                ));
                s
            }
        };
        if let Some(m) = &majority_side {
            if let Some(l) = after.nodes.iter().find(|n| m.contains(&n.id) && n.is_leader()) {
                report.new_leader = Some(l.id);
                report.new_epoch = l.zxid().map(|z| z.epoch());
            }
        }
        report.not_serving = after.not_serving().iter().map(|n| n.id).collect();
        // Times from the journal: give the supervisor one probe interval to write the last change.
        let events = journal_after(paths, seq, Duration::from_millis(300)).await;
        let since = |e: &Event| e.mono_ms.saturating_sub(mono0);
        if let Some(new) = report.new_leader.filter(|n| Some(*n) != old_leader) {
            report.new_leader_ms = events
                .iter()
                .find(|e| e.kind == Kind::Mode && e.node == Some(new) && e.to == Some(NodeState::Mode(Mode::Leader)))
                .map(since);
        }
        if let Some(old) = old_leader {
            report.old_leader_stopped_ms = events
                .iter()
                .find(|e| e.kind == Kind::Mode && e.node == Some(old) && e.from == Some(NodeState::Mode(Mode::Leader)))
                .map(since);
        }
        if majority_side.is_none() {
            report.warning.get_or_insert_with(|| {
                format!(
                    "no side holds a quorum ({needed} of {}): every voter stays LOOKING until `zkdev heal`",
                    words::count(before.quorum.voters, "voter")
                )
            });
        }
        record(env, &split_note(&report)).await;
    }
    Ok(report)
}

fn nodes_word(ids: &[u32]) -> String {
    if ids.len() == 1 {
        format!("node {}", ids[0])
    } else {
        format!("nodes {}", list(ids))
    }
}

fn split_note(r: &SplitReport) -> String {
    let mut s = format!("{}: {} cut off", r.action, nodes_word(&r.cut_off));
    if let (Some(l), Some(e)) = (r.new_leader, r.new_epoch) {
        s.push_str(&format!("; leader {l} (epoch {e})"));
        if let Some(m) = r.new_leader_ms {
            s.push_str(&format!(" after {m} ms"));
        }
    }
    if let (Some(old), Some(m)) = (r.old_leader, r.old_leader_stopped_ms) {
        s.push_str(&format!("; old leader {old} stopped leading after {m} ms"));
    }
    if !r.not_serving.is_empty() {
        s.push_str(&format!("; not serving: {}", list(&r.not_serving)));
    }
    s
}

/// Journal events after `seq`, waiting `settle` first so the supervisor has written what it saw.
async fn journal_after(paths: &ClusterPaths, seq: u64, settle: Duration) -> Vec<Event> {
    tokio::time::sleep(settle).await;
    crate::supervisor::journal::read_all(paths)
        .into_iter()
        .filter(|e| e.seq > seq)
        .collect()
}

async fn record(env: &Env<'_>, message: &str) {
    let _ = env
        .sup
        .ask_for::<RecordReply>(
            Request::Record {
                message: message.to_string(),
                cause: env.cause.to_string(),
                action: None,
            },
            Duration::from_secs(5),
        )
        .await;
}

/// Which ports of a node-to-node link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPorts {
    /// The quorum (follower-leader) port.
    Quorum,
    /// The election port.
    Election,
    /// Both.
    Both,
}

impl LinkPorts {
    fn ports(self) -> Vec<Port> {
        match self {
            LinkPorts::Quorum => vec![Port::Quorum],
            LinkPorts::Election => vec![Port::Election],
            LinkPorts::Both => vec![Port::Quorum, Port::Election],
        }
    }
}

/// What to do to one link.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// One end: a node (`1`, `leader`) or `client`.
    pub a: String,
    /// The other end.
    pub b: String,
    /// The fault (healthy with `reset` alone).
    pub fault: Fault,
    /// Reset the link's live connections.
    pub reset: bool,
    /// Only what `a` sends to `b`.
    pub one_way: bool,
    /// Which ports between two nodes (a client link is the client port).
    pub ports: LinkPorts,
}

/// The link [`link`] set, in `zkdev link --json`'s shape.
#[derive(Debug, Clone, Serialize)]
pub struct LinkEnds {
    /// One end.
    pub a: Endpoint,
    /// The other end.
    pub b: Endpoint,
    /// Only what `a` sends.
    pub one_way: bool,
    /// The ports it covers.
    pub ports: Vec<Port>,
}

/// What [`link`] did (the fields in the order `zkdev link --json` has always printed them).
#[derive(Debug, Clone, Serialize)]
pub struct LinkReport {
    /// The fault set.
    pub fault: Fault,
    /// The journal position of the change.
    pub journal_seq: u64,
    /// The link.
    pub link: LinkEnds,
    /// Its live connections were reset.
    pub reset: bool,
    /// `link 1<->2 (quorum+election): delay 20 ms`.
    #[serde(skip)]
    pub message: String,
}

/// Set a fault on the link between two ends (both ways unless `one_way`).
pub async fn link(env: &Env<'_>, options: &LinkOptions) -> Result<LinkReport> {
    proxied(env)?;
    let before = observe::gather(env.spec, env.paths, &env.paths.load_state()?).await;
    let a = endpoint(&options.a, &before)?;
    let b = endpoint(&options.b, &before)?;
    if a == b || (a == Endpoint::Clients && b == Endpoint::Clients) {
        return Err(Error::usage("a link needs two different ends"));
    }
    let fault = options.fault;
    if fault.is_ok() && !options.reset {
        return Err(Error::usage(
            "say what to do to the link: --delay, --jitter, --loss, --stall, --cut, --reset or --bandwidth \
             (`zkdev heal A B` makes it healthy again)",
        ));
    }
    let ports: Vec<Port> = if a == Endpoint::Clients || b == Endpoint::Clients {
        vec![Port::Client]
    } else {
        options.ports.ports()
    };
    let rules: Vec<Rule> = if fault.is_ok() {
        Vec::new()
    } else {
        links::link(a, b, &ports, fault, options.one_way, env.cause, now_ms())
    };
    let reset: Vec<Flow> = if options.reset {
        ports
            .iter()
            .flat_map(|p| [Flow::new(a, b, *p), Flow::new(b, a, *p)])
            .collect()
    } else {
        Vec::new()
    };
    let way = if options.one_way {
        format!("{a}->{b}")
    } else {
        format!("{a}<->{b}")
    };
    let port_names = ports.iter().map(|p| p.as_str()).collect::<Vec<_>>().join("+");
    let mut what = fault.describe();
    if options.reset {
        what = if fault.is_ok() {
            "reset".into()
        } else {
            format!("{what}, reset")
        };
    }
    let message = format!("link {way} ({port_names}): {what}");
    let (seq, _) = set_links(
        env.sup,
        Request::SetLinks {
            heal_all: false,
            heal_pairs: Vec::new(),
            rules,
            reset,
            action: Action::Link,
            message: message.clone(),
            cause: env.cause.to_string(),
        },
    )
    .await?;
    Ok(LinkReport {
        fault,
        journal_seq: seq,
        link: LinkEnds {
            a,
            b,
            one_way: options.one_way,
            ports,
        },
        reset: options.reset,
        message,
    })
}

/// What [`heal`] did, measured.
#[derive(Debug, Serialize)]
pub struct HealReport {
    /// What was healed: `every link`, `the links between 1 and 2`.
    pub healed: String,
    /// Heal -> every node serving with one leader (`zkdev wait`'s condition).
    pub all_serving_ms: Option<u64>,
    /// Heal -> every node also on the same zxid (followers keep the last zxid until the next write).
    pub one_zxid_ms: Option<u64>,
    /// The leader at the end.
    pub leader: Option<u32>,
    /// Its epoch.
    pub epoch: Option<u32>,
    /// The one zxid every node showed.
    pub zxid: Option<String>,
    /// Something the user should look at: the ensemble did not serve again, or not on one zxid in time.
    pub warning: Option<String>,
    /// Ordinary facts worth a line: followers still on their last zxid (they catch up at the next write).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What to heal.
#[derive(Debug, Clone, Default)]
pub struct HealOptions {
    /// The two ends of the links to heal; empty: every link.
    pub ends: Vec<String>,
    /// With two ends: heal every link too.
    pub all: bool,
    /// Wait (this long) for every node serving on one zxid; `None` returns at once.
    pub wait: Option<Duration>,
}

/// Heal links and, with `wait`, measure how soon every node serves again and agrees on one zxid.
pub async fn heal(env: &Env<'_>, options: &HealOptions) -> Result<HealReport> {
    proxied(env)?;
    let pair = match options.ends.as_slice() {
        [] => None,
        [a, b] => {
            let before = observe::gather(env.spec, env.paths, &env.paths.load_state()?).await;
            Some((endpoint(a, &before)?, endpoint(b, &before)?))
        }
        _ => {
            return Err(Error::usage(
                "heal takes two link ends (`zkdev heal 1 2`, `zkdev heal client 3`) or none (every link)",
            ))
        }
    };
    let healed = match pair {
        None => "every link".to_string(),
        Some((a, b)) => format!("the links between {a} and {b}"),
    };
    let t0 = Instant::now();
    let (_seq, _) = set_links(
        env.sup,
        Request::SetLinks {
            heal_all: pair.is_none() || options.all,
            heal_pairs: pair.into_iter().collect(),
            rules: Vec::new(),
            reset: Vec::new(),
            action: Action::Heal,
            message: format!("heal {healed}"),
            cause: env.cause.to_string(),
        },
    )
    .await?;
    let mut report = HealReport {
        healed,
        all_serving_ms: None,
        one_zxid_ms: None,
        leader: None,
        epoch: None,
        zxid: None,
        warning: None,
        note: None,
    };
    if let Some(timeout) = options.wait {
        let elapsed = |t: Instant| t.elapsed().as_millis() as u64;
        let mut serving_at: Option<(u64, Instant)> = None;
        // Once every node serves, give the zxids a few seconds to agree: a follower shows its last zxid
        // until the leader's next write, so without writes they may never agree.
        let zxid_grace = Duration::from_secs(3);
        let r = observe::wait_until(
            env.spec,
            env.paths,
            timeout,
            |s| {
                if !s.healthy() {
                    return false;
                }
                let (_, since) = *serving_at.get_or_insert_with(|| (elapsed(t0), Instant::now()));
                let first = s.nodes.first().and_then(|n| n.zxid());
                s.nodes.iter().all(|n| n.zxid() == first) || since.elapsed() >= zxid_grace
            },
            |_| {},
        )
        .await;
        let serving_at = serving_at.map(|(ms, _)| ms);
        report.all_serving_ms = serving_at;
        match r {
            Ok(s) => {
                report.leader = s.leader;
                report.epoch = s.epoch;
                let first = s.nodes.first().and_then(|n| n.zxid());
                if s.nodes.iter().all(|n| n.zxid() == first) {
                    report.one_zxid_ms = Some(elapsed(t0));
                    report.zxid = s.nodes.first().and_then(|n| n.zxid()).map(|z| z.to_string());
                } else {
                    let zxids: Vec<String> = s
                        .nodes
                        .iter()
                        .map(|n| {
                            format!(
                                "node {} {}",
                                n.id,
                                n.zxid().map_or("unknown".to_string(), |z| z.to_string())
                            )
                        })
                        .collect();
                    report.note = Some(format!(
                        "every node serves; zxids {} differ only because a follower shows its last zxid until the \
                         leader's next write (normal)",
                        words::and_list(&zxids)
                    ));
                }
            }
            Err((_, s)) => {
                report.leader = s.leader;
                report.epoch = s.epoch;
                report.warning = Some(if serving_at.is_some() {
                    format!(
                        "every node serves, but not on one zxid within {} (a follower shows its last zxid until the \
                         leader's next write); {}",
                        secs(timeout),
                        summary_line(&s)
                    )
                } else {
                    format!(
                        "the ensemble did not serve again within {}; {}",
                        secs(timeout),
                        summary_line(&s)
                    )
                });
            }
        }
        let mut note = format!("heal: {}", report.healed);
        if let Some(m) = report.all_serving_ms {
            note.push_str(&format!("; every node serving after {m} ms"));
        }
        if let Some(m) = report.one_zxid_ms {
            note.push_str(&format!(
                ", on one zxid {} after {m} ms",
                report.zxid.clone().unwrap_or_default()
            ));
        }
        record(env, &note).await;
    }
    Ok(report)
}
