//! `zkdev partition|isolate|link|heal|links`: network faults on a `--net` cluster. Targets are resolved by
//! asking the servers at that moment; the supervisor changes its proxies and journals the change; the
//! report (who elected whom, when the cut-off leader stopped, when every node served again on one zxid)
//! is measured from the journal, whose times are the supervisor's probes (every 100 ms).

use std::time::{Duration, Instant};

use serde::Serialize;

use super::Ctx;
use crate::cli::{HealArgs, IsolateArgs, LinkArgs, LinkPort, PartitionArgs};
use crate::error::{Error, Result};
use crate::model::fault::{self, Target};
use crate::model::links::{self, Endpoint, Fault, Flow, Port, Rule};
use crate::model::server::Mode;
use crate::model::spec::{ClusterSpec, Role};
use crate::model::timeline::{Action, Event, Kind, NodeState};
use crate::model::words;
use crate::os::clock::now_ms;
use crate::os::state::ClusterPaths;
use crate::output;
use crate::supervisor::control::{call_for, Request, Supervisor};
use crate::supervisor::proxy::LiveLink;
use crate::supervisor::replies::{LinksReply, RecordReply, SetLinksReply};
use crate::zk::observe::{self, ClusterStatus};

/// The cluster, refusing one made without proxied links.
fn proxied(ctx: &Ctx) -> Result<(ClusterPaths, ClusterSpec)> {
    let (paths, spec) = ctx.existing()?;
    if spec.net.is_none() {
        return Err(crate::supervisor::links::not_proxied(&spec));
    }
    Ok((paths, spec))
}

fn ids_of(targets: &[Target], status: &ClusterStatus) -> Result<Vec<u32>> {
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

fn endpoint(text: &str, status: &ClusterStatus) -> Result<Endpoint> {
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

/// What a partition did, measured.
#[derive(Debug, Serialize)]
pub struct SplitReport {
    pub action: String,
    pub cut_off: Vec<u32>,
    pub from: Vec<u32>,
    pub one_way: bool,
    pub old_leader: Option<u32>,
    pub old_epoch: Option<u32>,
    /// The side with a quorum of voters, if one has it.
    pub majority_side: Option<Vec<u32>>,
    pub new_leader: Option<u32>,
    pub new_epoch: Option<u32>,
    /// Cut -> a node of the majority side serving as leader with a higher epoch (journal times).
    pub new_leader_ms: Option<u64>,
    /// Cut -> the old leader no longer serving as leader (it was cut off from its quorum).
    pub old_leader_stopped_ms: Option<u64>,
    /// syncLimit x tickTime: how long ZooKeeper lets a leader that hears no quorum go on.
    pub sync_limit_ms: u64,
    /// Nodes not serving at the end (LOOKING: cut off from a quorum).
    pub not_serving: Vec<u32>,
    pub warning: Option<String>,
}

pub async fn partition(ctx: &Ctx, args: PartitionArgs) -> Result<()> {
    let timeout = args.timeout;
    let (paths, spec) = proxied(ctx)?;
    let before = observe::gather(&spec, &paths, &paths.load_state()?).await;
    let side = ids_of(&args.nodes, &before)?;
    let others = if args.from.is_empty() {
        spec.ids().into_iter().filter(|id| !side.contains(id)).collect()
    } else {
        ids_of(&args.from, &before)?
    };
    split(
        ctx,
        &spec,
        &paths,
        before,
        "partition",
        side,
        others,
        args.one_way,
        args.no_wait,
        timeout,
    )
    .await
}

pub async fn isolate(ctx: &Ctx, args: IsolateArgs) -> Result<()> {
    let timeout = args.timeout;
    let (paths, spec) = proxied(ctx)?;
    let before = observe::gather(&spec, &paths, &paths.load_state()?).await;
    let side = ids_of(&[args.node], &before)?;
    let others = spec.ids().into_iter().filter(|id| !side.contains(id)).collect();
    split(
        ctx,
        &spec,
        &paths,
        before,
        "isolate",
        side,
        others,
        args.one_way,
        args.no_wait,
        timeout,
    )
    .await
}

#[expect(clippy::too_many_arguments, reason = "partition and isolate share it")]
async fn split(
    ctx: &Ctx,
    spec: &ClusterSpec,
    paths: &ClusterPaths,
    before: ClusterStatus,
    action: &str,
    side: Vec<u32>,
    others: Vec<u32>,
    one_way: bool,
    no_wait: bool,
    timeout: Duration,
) -> Result<()> {
    let others: Vec<u32> = others.into_iter().filter(|id| !side.contains(id)).collect();
    if side.is_empty() || others.is_empty() {
        return Err(Error::usage(format!(
            "nothing to cut: the cut-off nodes are {{{}}} and the others {{{}}}",
            list(&side),
            list(&others)
        )));
    }
    let sup = crate::supervisor::control::Supervisor::ensure(&ctx.home, &ctx.cluster).await?;
    let cause = ctx.cause();
    let rules = links::partition(&side, &others, one_way, &cause, now_ms());
    let how = if one_way {
        "one way: what they send is dropped"
    } else {
        "both ways"
    };
    let message = format!(
        "{action}: {} cut off from {} on quorum and election links ({how})",
        nodes_word(&side),
        nodes_word(&others)
    );
    let old_leader = before.leaders().first().map(|n| n.id);
    let old_epoch = before.leaders().first().and_then(|n| n.zxid()).map(|z| z.epoch());
    let t0 = Instant::now();
    let (seq, mono0) = set_links(
        &sup,
        Request::SetLinks {
            heal_all: false,
            heal_pairs: Vec::new(),
            rules,
            reset: Vec::new(),
            action: action.into(),
            message: message.clone(),
            cause: cause.clone(),
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
        action: action.to_string(),
        cut_off: side.clone(),
        from: others.clone(),
        one_way,
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
    if !no_wait {
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
                let minority_down = one_way || minority.iter().all(|id| s.node(*id).is_some_and(|n| !n.serving()));
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
                    output::secs(timeout),
                    output::summary_line(&s)
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
        record(&sup, &cause, &split_note(&report)).await;
        let _ = t0;
    }
    print_split(ctx, &report);
    Ok(())
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

fn print_split(ctx: &Ctx, r: &SplitReport) {
    if ctx.json {
        output::print_json(r);
        return;
    }
    let way = if r.one_way { " (one way)" } else { "" };
    crate::outln!(
        "{}: {} cut off from {}{way}",
        r.action,
        nodes_word(&r.cut_off),
        nodes_word(&r.from)
    );
    if let Some(old) = r.old_leader {
        crate::outln!(
            "  old leader: {old}{}",
            r.old_epoch.map_or(String::new(), |e| format!(" (epoch {e})"))
        );
    }
    match (&r.majority_side, r.new_leader) {
        (Some(side), Some(l)) => {
            crate::outln!(
                "  side {{{}}} holds a quorum: leader {l}{} serving{}",
                list(side),
                r.new_epoch.map_or(String::new(), |e| format!(" (epoch {e})")),
                r.new_leader_ms.map_or(String::new(), |m| format!(" after {m} ms"))
            );
        }
        (Some(side), None) => crate::outln!("  side {{{}}} holds a quorum but no leader was seen", list(side)),
        (None, _) => crate::outln!("  no side holds a quorum"),
    }
    if let Some(old) = r.old_leader {
        if let Some(stopped) = r.old_leader_stopped_ms {
            crate::outln!(
                "  old leader {old} stopped leading after {stopped} ms (ZooKeeper lets it go on for up to syncLimit x tickTime = {} ms)",
                r.sync_limit_ms
            );
        }
    }
    if !r.not_serving.is_empty() {
        crate::outln!("  not serving (LOOKING): {}", list(&r.not_serving));
    }
    if let Some(w) = &r.warning {
        crate::outln!("warning: {w}");
    }
}

/// Journal events after `seq`, waiting `settle` first so the supervisor has written what it saw.
async fn journal_after(paths: &ClusterPaths, seq: u64, settle: Duration) -> Vec<Event> {
    tokio::time::sleep(settle).await;
    crate::supervisor::journal::read_all(paths)
        .into_iter()
        .filter(|e| e.seq > seq)
        .collect()
}

async fn record(sup: &Supervisor, cause: &str, message: &str) {
    let _ = sup
        .ask_for::<RecordReply>(
            Request::Record {
                message: message.to_string(),
                cause: cause.to_string(),
                action: None,
            },
            Duration::from_secs(5),
        )
        .await;
}

/// A fault's length (a link delay, a slow fsync) in whole milliseconds, at most an hour.
pub fn fault_ms(d: Duration, flag: &str) -> Result<u32> {
    if d <= Duration::from_secs(3600) {
        Ok(d.as_millis() as u32)
    } else {
        Err(Error::usage(format!(
            "{flag} {}: give at most an hour (1h)",
            crate::model::span::format(d)
        )))
    }
}

/// "10%", "10", "0.5%" -> whole per cent (rounded), 0..=100.
pub fn parse_percent(text: &str) -> Result<u32> {
    match text.trim().trim_end_matches('%').trim().parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v.round() as u32),
        _ => Err(Error::usage(format!(
            "--loss `{text}`: give a percentage from 0 to 100, e.g. 10%"
        ))),
    }
}

/// "64KiB/s", "1MB/s", "5000" (bytes per second).
pub fn parse_rate(text: &str) -> Result<u64> {
    let t = text.trim().trim_end_matches("/s").trim();
    let units: [(&str, f64); 7] = [
        ("KiB", 1024.0),
        ("MiB", 1024.0 * 1024.0),
        ("KB", 1000.0),
        ("MB", 1_000_000.0),
        ("kB", 1000.0),
        ("B", 1.0),
        ("", 1.0),
    ];
    for (u, mult) in units {
        if let Some(n) = t.strip_suffix(u) {
            if let Ok(v) = n.trim().parse::<f64>() {
                if v >= 1.0 {
                    return Ok((v * mult) as u64);
                }
            }
        }
    }
    Err(Error::usage(format!(
        "--bandwidth `{text}`: give bytes per second such as 64KiB/s, 1MB/s or 5000"
    )))
}

pub async fn link(ctx: &Ctx, args: LinkArgs) -> Result<()> {
    let (paths, spec) = proxied(ctx)?;
    let before = observe::gather(&spec, &paths, &paths.load_state()?).await;
    let a = endpoint(&args.a, &before)?;
    let b = endpoint(&args.b, &before)?;
    if a == b || (a == Endpoint::Clients && b == Endpoint::Clients) {
        return Err(Error::usage("a link needs two different ends"));
    }
    let fault = Fault {
        cut: args.cut,
        stall: args.stall,
        delay_ms: args.delay.map(|d| fault_ms(d, "--delay")).transpose()?.unwrap_or(0),
        jitter_ms: args.jitter.map(|d| fault_ms(d, "--jitter")).transpose()?.unwrap_or(0),
        loss_pct: args.loss.as_deref().map(parse_percent).transpose()?.unwrap_or(0),
        bandwidth: args.bandwidth.as_deref().map(parse_rate).transpose()?,
    };
    if fault.is_ok() && !args.reset {
        return Err(Error::usage(
            "say what to do to the link: --delay, --jitter, --loss, --stall, --cut, --reset or --bandwidth \
             (`zkdev heal A B` makes it healthy again)",
        ));
    }
    let ports: Vec<Port> = if a == Endpoint::Clients || b == Endpoint::Clients {
        vec![Port::Client]
    } else {
        match args.port {
            LinkPort::Quorum => vec![Port::Quorum],
            LinkPort::Election => vec![Port::Election],
            LinkPort::Both => vec![Port::Quorum, Port::Election],
        }
    };
    let cause = ctx.cause();
    let rules: Vec<Rule> = if fault.is_ok() {
        Vec::new()
    } else {
        links::link(a, b, &ports, fault, args.one_way, &cause, now_ms())
    };
    let reset: Vec<Flow> = if args.reset {
        ports
            .iter()
            .flat_map(|p| [Flow::new(a, b, *p), Flow::new(b, a, *p)])
            .collect()
    } else {
        Vec::new()
    };
    let way = if args.one_way {
        format!("{a}->{b}")
    } else {
        format!("{a}<->{b}")
    };
    let port_names = ports.iter().map(|p| p.as_str()).collect::<Vec<_>>().join("+");
    let mut what = fault.describe();
    if args.reset {
        what = if fault.is_ok() {
            "reset".into()
        } else {
            format!("{what}, reset")
        };
    }
    let message = format!("link {way} ({port_names}): {what}");
    let sup = crate::supervisor::control::Supervisor::ensure(&ctx.home, &ctx.cluster).await?;
    let (seq, _) = set_links(
        &sup,
        Request::SetLinks {
            heal_all: false,
            heal_pairs: Vec::new(),
            rules,
            reset,
            action: Action::Link,
            message: message.clone(),
            cause,
        },
    )
    .await?;
    if ctx.json {
        output::print_json(&serde_json::json!({
            "link": { "a": a, "b": b, "ports": ports, "one_way": args.one_way },
            "fault": fault,
            "reset": args.reset,
            "journal_seq": seq,
        }));
    } else {
        crate::outln!("{message}");
        let _ = spec;
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct HealReport {
    healed: String,
    /// Heal -> every node serving with one leader (`zkdev wait`'s condition).
    all_serving_ms: Option<u64>,
    /// Heal -> every node also on the same zxid (followers keep the last zxid until the next write).
    one_zxid_ms: Option<u64>,
    leader: Option<u32>,
    epoch: Option<u32>,
    zxid: Option<String>,
    /// Something the user should look at: the ensemble did not serve again, or not on one zxid in time.
    warning: Option<String>,
    /// Ordinary facts worth a line: followers still on their last zxid (they catch up at the next write).
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

pub async fn heal(ctx: &Ctx, args: HealArgs) -> Result<()> {
    let timeout = args.timeout;
    let (paths, spec) = proxied(ctx)?;
    let pair = match args.ends.as_slice() {
        [] => None,
        [a, b] => {
            let before = observe::gather(&spec, &paths, &paths.load_state()?).await;
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
    let sup = crate::supervisor::control::Supervisor::ensure(&ctx.home, &ctx.cluster).await?;
    let cause = ctx.cause();
    let t0 = Instant::now();
    let (_seq, _) = set_links(
        &sup,
        Request::SetLinks {
            heal_all: pair.is_none() || args.all,
            heal_pairs: pair.into_iter().collect(),
            rules: Vec::new(),
            reset: Vec::new(),
            action: Action::Heal,
            message: format!("heal {healed}"),
            cause: cause.clone(),
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
    if !args.no_wait {
        let elapsed = |t: Instant| t.elapsed().as_millis() as u64;
        let mut serving_at: Option<(u64, Instant)> = None;
        // Once every node serves, give the zxids a few seconds to agree: a follower shows its last zxid
        // until the leader's next write, so without writes they may never agree.
        let zxid_grace = Duration::from_secs(3);
        let r = observe::wait_until(
            &spec,
            &paths,
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
                        output::secs(timeout),
                        output::summary_line(&s)
                    )
                } else {
                    format!(
                        "the ensemble did not serve again within {}; {}",
                        output::secs(timeout),
                        output::summary_line(&s)
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
        record(&sup, &cause, &note).await;
    }
    if ctx.json {
        output::print_json(&report);
    } else {
        crate::outln!("healed {}", report.healed);
        if let Some(m) = report.all_serving_ms {
            let leader = match (report.leader, report.epoch) {
                (Some(l), Some(e)) => format!(" (leader {l}, epoch {e})"),
                (Some(l), None) => format!(" (leader {l})"),
                _ => String::new(),
            };
            crate::outln!("  every node serving after {m} ms{leader}");
        }
        if let Some(m) = report.one_zxid_ms {
            crate::outln!(
                "  every node on zxid {} after {m} ms",
                report.zxid.clone().unwrap_or_default()
            );
        }
        if let Some(n) = &report.note {
            crate::outln!("  {n}");
        }
        if let Some(w) = &report.warning {
            crate::outln!("warning: {w}");
        }
    }
    Ok(())
}

/// The links section of `status --json` and `zkdev links --json`. The fields are in the order the JSON
/// has always printed them (alphabetical).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct LinksView {
    /// Live proxied connections per link; null when no supervisor answers (its proxies are down with it).
    pub links: Option<Vec<LiveLink>>,
    pub port_base: Option<u16>,
    pub proxied: bool,
    /// The proxies live in the supervisor: without one every link is down until a command starts one.
    pub proxies_up: bool,
    pub rules: Vec<Rule>,
    /// Proxies whose port another program holds: each down (and retried), the others up.
    pub unbound: Vec<String>,
}

/// The links section: rules and live connections from the supervisor, or the saved rules when none runs.
pub async fn links_view(paths: &ClusterPaths, spec: &ClusterSpec) -> Option<LinksView> {
    let net = spec.net?;
    let answer = call_for::<LinksReply>(&paths.socket(), &Request::Links, Duration::from_millis(500))
        .await
        .and_then(|r| r.ok());
    Some(match answer {
        Some(r) => LinksView {
            links: Some(r.links),
            port_base: Some(net.port_base),
            proxied: true,
            proxies_up: true,
            rules: r.rules,
            unbound: r.unbound,
        },
        None => LinksView {
            links: None,
            port_base: Some(net.port_base),
            proxied: true,
            proxies_up: false,
            rules: crate::supervisor::links::read(paths).rules,
            unbound: Vec::new(),
        },
    })
}

pub async fn show(ctx: &Ctx) -> Result<()> {
    let (paths, spec) = proxied(ctx)?;
    // Showing the links needs the proxies: start a supervisor (it restores them) if none runs.
    let _ = ctx.supervisor().await?;
    let view = links_view(&paths, &spec).await.expect("a --net cluster");
    if ctx.json {
        // As a JSON value: every object's keys in order, nested ones too, as this output has always had them.
        output::print_json(&serde_json::to_value(&view).expect("the links view serialises"));
        return Ok(());
    }
    let table = links::LinkTable {
        rules: view.rules.clone(),
        ..Default::default()
    };
    let mut rows = Vec::new();
    for l in view.links.iter().flatten() {
        let (d, t, port) = (l.dialler, l.target, l.port);
        let out = table.fault(Flow::new(d, t, port));
        let back = table.fault(Flow::new(t, d, port));
        rows.push(vec![
            format!("{d} -> {t}"),
            port.as_str().to_string(),
            // The port, on 127.0.0.1; a peer link of a cluster with reconfig has an address of its own.
            if l.proxy.starts_with("127.0.0.1:") {
                l.listen.to_string()
            } else {
                l.proxy.clone()
            },
            l.connections.to_string(),
            out.describe(),
            back.describe(),
        ]);
    }
    crate::out!(
        "{}",
        output::table(&["link", "port", "proxy", "conns", "sent by dialler", "answers"], &rows)
    );
    let faults = table.rules.len();
    crate::outln!(
        "{}; {}",
        words::count(faults, "fault rule"),
        if faults == 0 {
            "every link healthy"
        } else {
            "`zkdev heal` heals every link"
        }
    );
    let _ = Role::Participant;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_rates_and_percentages() {
        assert_eq!(fault_ms(Duration::from_millis(200), "--delay").unwrap(), 200);
        assert_eq!(fault_ms(Duration::from_secs(3600), "--delay").unwrap(), 3_600_000);
        let e = fault_ms(Duration::from_secs(3601), "--delay").unwrap_err();
        assert!(e.to_string().contains("--delay 1h1s"), "{e}");
        assert_eq!(parse_rate("64KiB/s").unwrap(), 65536);
        assert_eq!(parse_rate("1MB/s").unwrap(), 1_000_000);
        assert_eq!(parse_rate("5000").unwrap(), 5000);
        assert!(parse_rate("lots").is_err());
        assert_eq!(parse_percent("10%").unwrap(), 10);
        assert!(parse_percent("120%").is_err());
    }

    #[test]
    fn the_links_view_prints_as_it_always_has() {
        let rules = links::partition(&[1], &[2], false, "zkdev isolate", 5);
        let live = LiveLink {
            dialler: Endpoint::Node(1),
            target: Endpoint::Node(2),
            port: Port::Quorum,
            listen: 12882,
            proxy: "127.0.0.1:12882".into(),
            connections: 2,
        };
        let view = LinksView {
            links: Some(vec![live.clone()]),
            port_base: Some(12881),
            proxied: true,
            proxies_up: true,
            rules: rules.clone(),
            unbound: vec!["port 12181 is held".into()],
        };
        // What the untyped code printed: a JSON value made of the supervisor's answer.
        let before = serde_json::json!({
            "proxied": true,
            "proxies_up": true,
            "port_base": Some(12881),
            "rules": serde_json::to_value(&rules).unwrap(),
            "links": serde_json::to_value(vec![live]).unwrap(),
            "unbound": ["port 12181 is held"],
        });
        let now = serde_json::to_value(&view).unwrap();
        assert_eq!(
            serde_json::to_string_pretty(&now).unwrap(),
            serde_json::to_string_pretty(&before).unwrap()
        );
    }
}
