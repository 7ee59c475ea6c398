//! `zkdev explain election|zxid|session`: what a tutorial says in prose, shown on this ensemble. Elections
//! come from the nodes' logs (FastLeaderElection's votes) and the journal; zxids from the journal's
//! leaders and the servers' answers; sessions as `zkdev sessions` finds them (`cons` on every node, `dump`).

use serde::Serialize;
use serde_json::json;

use super::Ctx;
use crate::cli::ExplainCmd;
use crate::error::{Error, Result};
use crate::model::election::{self, Explanation};
use crate::model::server::Zxid;
use crate::model::spec::{ClusterSpec, Role};
use crate::model::timeline::Kind;
use crate::os::state::ClusterPaths;
use crate::output;
use crate::supervisor::journal;
use crate::zk::session;

pub async fn run(ctx: &Ctx, cmd: ExplainCmd) -> Result<()> {
    let (paths, spec) = ctx.existing()?;
    match cmd {
        ExplainCmd::Election { node, epoch, .. } => election(ctx, &paths, &spec, node, epoch),
        ExplainCmd::Zxid { zxid, .. } => zxid_cmd(ctx, &paths, &spec, &zxid).await,
        ExplainCmd::Session { id, .. } => session(ctx, &spec, &id).await,
    }
}

fn election(ctx: &Ctx, paths: &ClusterPaths, spec: &ClusterSpec, node: Option<u32>, epoch: Option<u32>) -> Result<()> {
    if let Some(id) = node {
        if spec.node(id).is_none() {
            return Err(Error::usage(format!(
                "--node {id}: the cluster has nodes {}",
                spec.ids().iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let mut e = election::explain(spec, &paths.log_texts(spec), &journal::read_all(paths), epoch)?;
    if let Some(id) = node {
        e.nodes.retain(|n| n.node == id);
    }
    if ctx.json {
        output::print_json(&e);
        return Ok(());
    }
    for line in &e.story {
        crate::outln!("{line}");
    }
    crate::outln!();
    print_nodes(&e);
    Ok(())
}

/// Each node's round: what it proposed, the votes it heard, what it became.
fn print_nodes(e: &Explanation) {
    for n in &e.nodes {
        let role = if n.role == Role::Observer { "observer" } else { "voter" };
        if let Some(j) = &n.joined {
            crate::outln!(
                "node {} ({role}): looked from {}, after the quorum had formed; {} node {}{}",
                n.node,
                clock(Some(&j.looked_at)),
                j.as_,
                j.leader,
                n.took_ms.map(|ms| format!(" after {ms} ms")).unwrap_or_default()
            );
            print_heard(n);
            continue;
        }
        if !n.took_part {
            crate::outln!(
                "node {} ({role}): no election in its log for this epoch (not running, or cut off)",
                n.node
            );
            continue;
        }
        let votes: Vec<String> = n.votes.iter().map(|c| format!("node {} {c}", c.id)).collect();
        crate::outln!(
            "node {} ({role}): looked from {}{}; {}",
            n.node,
            clock(n.started_at.as_deref()),
            match (&n.decided, n.took_ms) {
                (Some(d), Some(ms)) => format!(", {d} after {ms} ms"),
                (Some(d), None) => format!(", {d}"),
                _ => String::new(),
            },
            if votes.is_empty() {
                "sent no vote of its own (an observer asks who leads)".to_string()
            } else {
                format!("its votes: {}", votes.join(" -> "))
            }
        );
        print_heard(n);
    }
}

/// The notifications a node received, each distinct one once with its count (`×12`).
fn print_heard(n: &election::NodePart) {
    for h in &n.heard_repeated {
        let when = if h.count > 1 {
            format!("{}-{}", clock(Some(&h.first_at)), clock(Some(&h.last_at)))
        } else {
            clock(Some(&h.first_at)).to_string()
        };
        crate::outln!(
            "    {when:<25}  node {} → node {}: vote for {} (epoch {:#x}, zxid {}, round {:#x}, {}){}",
            h.sender,
            h.receiver,
            h.vote.id,
            h.vote.epoch,
            h.vote.zxid,
            h.round,
            h.sender_state.to_ascii_lowercase(),
            if h.count > 1 {
                format!(" ×{}", h.count)
            } else {
                String::new()
            }
        );
    }
}

fn clock(at: Option<&str>) -> &str {
    at.and_then(|a| a.get(11..23)).unwrap_or("?")
}

/// One leader's term, from the journal.
#[derive(Debug, Serialize)]
struct Term {
    leader: Option<u32>,
    /// When zkdev first saw it lead (journal time, UTC).
    since: Option<String>,
    /// When a later epoch's leader took over, if one did.
    until: Option<String>,
}

#[derive(Debug, Serialize)]
struct ZxidExplained {
    zxid: Zxid,
    epoch: u32,
    counter: u32,
    term: Option<Term>,
    current_epoch: Option<u32>,
    nodes: Vec<serde_json::Value>,
    story: Vec<String>,
}

async fn zxid_cmd(ctx: &Ctx, paths: &ClusterPaths, spec: &ClusterSpec, text: &str) -> Result<()> {
    let zxid = Zxid::from_typed(text).map_err(|e| {
        Error::usage(format!(
            "{e}, e.g. `zkdev explain zxid 0x500000204` or `... 21474836996`"
        ))
    })?;
    let (epoch, counter) = (zxid.epoch(), zxid.counter());
    let events = journal::read_all(paths);
    let led = |e: &&crate::model::timeline::Event| matches!(e.kind, Kind::LeaderElected | Kind::Initial);
    let first = events
        .iter()
        .filter(led)
        .find(|e| e.epoch == Some(epoch) && e.leader.is_some());
    let term = first.map(|f| Term {
        leader: f.leader,
        since: Some(f.time.clone()),
        until: events
            .iter()
            .filter(led)
            .find(|e| e.seq > f.seq && e.epoch.is_some_and(|x| x > epoch))
            .map(|e| e.time.clone()),
    });
    let status = super::status::current(paths, spec).await?;
    let mut story = vec![format!(
        "{zxid} = epoch {epoch} (the high 32 bits, {epoch:#x}) and counter {counter} (the low 32 bits, {counter:#x})."
    )];
    story.push(match counter {
        0 => format!(
            "Counter 0 is no transaction: it is where the leader of epoch {epoch} starts (its NEWLEADER marker); a \
             follower shows it until the first write of that epoch."
        ),
        n => format!(
            "It is the {n}{} transaction the leader of epoch {epoch} proposed (creates, sets, deletes, session opens \
             and closes all count).",
            ordinal(n)
        ),
    });
    story.push(match &term {
        Some(Term {
            leader: Some(l),
            since,
            until,
        }) => format!(
            "Epoch {epoch} was node {l}'s: it led from {}{} (the journal, UTC).",
            since.as_deref().unwrap_or("?"),
            match until {
                Some(u) => format!(" until a new leader took over at {u}"),
                None => " and still does if nothing was elected since".into(),
            }
        ),
        _ => format!(
            "The journal of cluster `{}` has no leader of epoch {epoch}: from before the journal, or from another \
             ensemble.",
            spec.name
        ),
    });
    if let Some(cur) = status.epoch {
        story.push(if cur == epoch {
            "That is the current epoch.".into()
        } else if cur > epoch {
            format!(
                "The ensemble is at epoch {cur} now: every leader change since bumped the epoch; a new leader \
                 keeps every committed transaction of older epochs."
            )
        } else {
            format!("The ensemble is only at epoch {cur}: this zxid is not from this ensemble's history.")
        });
    }
    let mut nodes = Vec::new();
    for n in &status.nodes {
        let Some(z) = n.zxid() else { continue };
        let rel = if z == zxid {
            "exactly there".to_string()
        } else if z > zxid && z.epoch() == epoch {
            format!("{} transactions later", z.counter() - counter)
        } else if z > zxid {
            format!("later (epoch {})", z.epoch())
        } else if z.epoch() < epoch {
            "behind: an older epoch (a follower shows its last zxid until the leader's first write of a new epoch)"
                .into()
        } else {
            format!("{} transactions behind", counter - z.counter())
        };
        nodes.push(json!({ "id": n.id, "zxid": z, "relation": rel }));
        story.push(format!(
            "Node {} is at {z} (epoch {}, counter {}): {rel}.",
            n.id,
            z.epoch(),
            z.counter()
        ));
    }
    let out = ZxidExplained {
        zxid,
        epoch,
        counter,
        term,
        current_epoch: status.epoch,
        nodes,
        story,
    };
    if ctx.json {
        output::print_json(&out);
    } else {
        for l in &out.story {
            crate::outln!("{l}");
        }
    }
    Ok(())
}

fn ordinal(n: u32) -> &'static str {
    match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

#[derive(Debug, Serialize)]
struct SessionExplained {
    session: String,
    /// The id's top byte: the server that created it.
    creator: u32,
    creator_in_cluster: bool,
    live: bool,
    /// The node the client is connected to now, and from where.
    connected_to: Option<u32>,
    client: Option<String>,
    timeout_ms: Option<u64>,
    ephemerals: Option<Vec<String>>,
    story: Vec<String>,
}

async fn session(ctx: &Ctx, spec: &ClusterSpec, text: &str) -> Result<()> {
    let id = session::parse_id(text).ok_or_else(|| {
        Error::usage(format!(
            "`{text}` is not a session id (0x and hex digits, e.g. 0x100012a4b5c0000)"
        ))
    })?;
    let canonical = session::hex(id);
    let creator = session::creator(id);
    // What `zkdev sessions` shows: every node's connections (`cons`) and the ephemerals (`dump`).
    let now = crate::engine::sessions::list(spec).await;
    let view = now.sessions.iter().find(|s| s.raw_id == id);
    let found = view.and_then(|v| Some((v.connected_to?, v.client.clone()?, v.timeout_ms)));
    let ephemerals = match &now.ephemerals_unknown {
        Some(_) => None,
        None => Some(view.map(|v| v.ephemerals.clone()).unwrap_or_default()),
    };
    let in_cluster = spec.node(creator).is_some();
    let mut story = vec![format!(
        "Session {canonical} was created by node {creator}: a server puts its own id in the top byte of every \
         session id it makes ({:#04x}), so ids made by different servers never collide.{}",
        creator,
        if in_cluster {
            ""
        } else {
            " (No node of this cluster has that id.)"
        }
    )];
    let (mut connected_to, mut client, mut timeout_ms) = (None, None, None);
    match &found {
        Some((node, addr, timeout)) => {
            connected_to = Some(*node);
            client = Some(addr.clone());
            timeout_ms = *timeout;
            story.push(format!(
                "It is live: its client {addr} is connected to node {node}{}, with a negotiated timeout of {} ms (the \
                 session expires when the ensemble hears nothing from the client for that long).",
                if *node == creator {
                    ""
                } else {
                    " (it moved since it was created)"
                },
                timeout.map_or("?".into(), |t| t.to_string())
            ));
        }
        None => story.push(
            "No node lists it among its connections (`cons`): it was closed or expired, or its client is between \
             two connections right now. Its ephemeral znodes went with it."
                .into(),
        ),
    }
    match &ephemerals {
        Some(e) if e.is_empty() => story.push("It owns no ephemeral znodes (`dump`).".into()),
        Some(e) => story.push(format!(
            "It owns {}, deleted when it ends: {} (`dump`).",
            crate::model::words::count(e.len(), "ephemeral znode"),
            e.join(", ")
        )),
        None => story.push(format!(
            "Its ephemerals are unknown: {}.",
            now.ephemerals_unknown.as_deref().unwrap_or("no node answered `dump`")
        )),
    }
    let out = SessionExplained {
        session: canonical,
        creator,
        creator_in_cluster: in_cluster,
        live: found.is_some(),
        connected_to,
        client,
        timeout_ms,
        ephemerals,
        story,
    };
    if ctx.json {
        output::print_json(&out);
    } else {
        for l in &out.story {
            crate::outln!("{l}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_are_english() {
        assert_eq!(ordinal(516), "th");
        assert_eq!(ordinal(2), "nd");
        assert_eq!(ordinal(12), "th");
    }
}
