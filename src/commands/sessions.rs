//! `zkdev sessions`: every client session as the servers report it (`cons` on every node, `dump` for the
//! ephemeral znodes). `zkdev expire-session`: end sessions for real from outside their clients (see
//! `zk::session` for how), then wait until no node has them any more.

use std::time::Duration;

use serde::Serialize;

use super::Ctx;
use crate::cli::ExpireSessionArgs;
pub use crate::engine::sessions::{expire_one, list, Expired, SessionView, Sessions};
use crate::error::{Error, Result};
use crate::model::words;
use crate::output;
use crate::supervisor::control::Request;
use crate::supervisor::replies::RecordReply;
use crate::zk::session::{self, hex};
pub async fn run(ctx: &Ctx) -> Result<()> {
    let (_, spec) = ctx.existing()?;
    let s = list(&spec).await;
    if s.asked.is_empty() {
        return Err(Error::failed(format!(
            "no node of cluster `{}` answered `cons`; see `zkdev status`",
            spec.name
        )));
    }
    if ctx.json {
        output::print_json(&s);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = s
        .sessions
        .iter()
        .map(|v| {
            vec![
                v.id.clone(),
                format!("node {}", v.created_by),
                v.connected_to.map_or("-".into(), |n| format!("node {n}")),
                v.client.clone().unwrap_or_else(|| "-".into()),
                v.timeout_ms.map_or("-".into(), |t| format!("{t} ms")),
                v.last_op.clone().unwrap_or_else(|| "-".into()),
                if v.ephemerals.is_empty() {
                    "-".into()
                } else {
                    v.ephemerals.join(" ")
                },
            ]
        })
        .collect();
    if rows.is_empty() {
        crate::outln!("no client sessions");
    } else {
        crate::out!(
            "{}",
            output::table(
                &[
                    "SESSION",
                    "CREATED BY",
                    "CONNECTED TO",
                    "CLIENT",
                    "TIMEOUT",
                    "LAST OP",
                    "EPHEMERALS"
                ],
                &rows
            )
        );
        crate::outln!("(CREATED BY is the top byte of the session id: the myid of the server that made it)");
    }
    if let Some(why) = &s.ephemerals_unknown {
        crate::outln!("ephemeral znodes unknown: {why}");
    }
    if !s.unreachable.is_empty() {
        crate::outln!(
            "not asked: {} (not serving); their clients are not listed",
            words::nodes(&s.unreachable)
        );
    }
    Ok(())
}

/// Which sessions `expire` ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    Id(i64),
    /// The session of the client connected from this address.
    Client(String),
    /// Every session (connected to this node, if given).
    All {
        node: Option<u32>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpireReport {
    pub expired: Vec<Expired>,
    pub mechanism: &'static str,
}

const MECHANISM: &str = "reattached with the session's derived password and closed it (closeSession)";

/// End the sessions `which` names, for real, and wait until no node has them (`within` per session). The
/// journal records each. The entry point for other commands (a chaos schedule) as well as `expire-session`.
pub async fn expire(ctx: &Ctx, which: &Which, within: Duration) -> Result<ExpireReport> {
    let (_, spec) = ctx.existing()?;
    let now = list(&spec).await;
    if now.asked.is_empty() {
        return Err(Error::failed(format!(
            "no node of cluster `{}` serves, so none can end a session; see `zkdev status`",
            spec.name
        )));
    }
    let targets: Vec<SessionView> = match which {
        Which::Id(id) => vec![now.find(*id).cloned().unwrap_or_else(|| SessionView {
            id: hex(*id),
            raw_id: *id,
            created_by: session::creator(*id),
            connected_to: None,
            client: None,
            timeout_ms: None,
            last_op: None,
            ephemerals: Vec::new(),
        })],
        Which::Client(addr) => {
            let hit: Vec<SessionView> = now
                .sessions
                .iter()
                .filter(|s| s.client.as_deref() == Some(addr.as_str()))
                .cloned()
                .collect();
            if hit.is_empty() {
                let known: Vec<&str> = now.sessions.iter().filter_map(|s| s.client.as_deref()).collect();
                return Err(Error::usage(format!(
                    "no session is connected from {addr}; clients connected now: {} (see `zkdev sessions`)",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            }
            hit
        }
        Which::All { node } => {
            if let Some(n) = node.filter(|n| spec.node(*n).is_none()) {
                return Err(Error::usage(format!("cluster `{}` has no node {n}", spec.name)));
            }
            now.sessions
                .iter()
                .filter(|s| node.is_none() || s.connected_to == *node)
                .cloned()
                .collect()
        }
    };
    let sup = ctx.supervisor().await?;
    let mut expired = Vec::new();
    for s in &targets {
        let e = expire_one(&spec, &now, s, within).await?;
        let message =
            format!(
            "session {} expired (created by node {}, connected to {}): closed through node {}, gone from every node \
             in {} ms; ephemerals deleted: {}",
            e.id,
            e.created_by,
            e.connected_to.map_or("no node".into(), |n| format!("node {n}")),
            e.via,
            e.gone_everywhere_ms,
            if e.ephemerals_deleted.is_empty() { "none".into() } else { e.ephemerals_deleted.join(" ") }
        );
        sup.ask_for::<RecordReply>(
            Request::Record {
                message,
                cause: ctx.cause(),
                action: Some(crate::model::timeline::Action::ExpireSession),
            },
            Duration::from_secs(10),
        )
        .await?;
        expired.push(e);
    }
    Ok(ExpireReport {
        expired,
        mechanism: MECHANISM,
    })
}

/// Where the session's end was seen: "every node" only when every node was asked.
fn confirmed_where(e: &Expired) -> String {
    if e.not_asked.is_empty() {
        "every node".to_string()
    } else {
        format!(
            "{}; {} could not be asked, so there it is not confirmed",
            words::nodes(&e.confirmed_by),
            words::nodes(&e.not_asked)
        )
    }
}

fn expired_line(e: &Expired) -> String {
    format!(
        "session {} expired: created by node {}, connected to {}{}; closed through node {} at zxid {}, gone from {} \
         in {} ms",
        e.id,
        e.created_by,
        e.connected_to.map_or("no node".into(), |n| format!("node {n}")),
        e.client.as_deref().map_or(String::new(), |c| format!(" from {c}")),
        e.via,
        e.zxid,
        confirmed_where(e),
        e.gone_everywhere_ms
    )
}

pub async fn run_expire(ctx: &Ctx, args: ExpireSessionArgs) -> Result<()> {
    let which = match (&args.id, &args.client) {
        (Some(id), _) => Which::Id(session::parse_id(id).ok_or_else(|| {
            Error::usage(format!(
                "`{id}` is not a session id: give it in hex as `zkdev sessions` prints it, e.g. 0x100012f4b6c0000"
            ))
        })?),
        (None, Some(c)) => Which::Client(c.trim_start_matches('/').to_string()),
        (None, None) => Which::All { node: args.node },
    };
    let report = expire(ctx, &which, Duration::from_secs(15)).await?;
    if ctx.json {
        output::print_json(&report);
        return Ok(());
    }
    if report.expired.is_empty() {
        crate::outln!("no client sessions to expire");
    }
    for e in &report.expired {
        crate::outln!("{}", expired_line(e));
        if !e.ephemerals_deleted.is_empty() {
            crate::outln!(
                "  ephemeral znodes deleted: {} (gone on {})",
                e.ephemerals_deleted.join(" "),
                confirmed_where(e)
            );
        }
    }
    if !report.expired.is_empty() {
        crate::outln!("(the clients are told SESSION_EXPIRED when they reconnect; their connections were dropped)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expired(confirmed_by: Vec<u32>, not_asked: Vec<u32>) -> Expired {
        Expired {
            id: "0x100000000000000".into(),
            created_by: 1,
            connected_to: Some(1),
            client: None,
            via: 2,
            zxid: "0x100000005".into(),
            ephemerals_deleted: vec!["/victim".into()],
            gone_everywhere_ms: 40,
            confirmed_by,
            not_asked,
        }
    }

    #[test]
    fn an_unasked_node_is_named_not_counted_as_confirmed() {
        let all = expired(vec![1, 2, 3], vec![]);
        assert!(
            expired_line(&all).contains("gone from every node in 40 ms"),
            "{}",
            expired_line(&all)
        );
        let cut = expired(vec![1, 2], vec![3]);
        let line = expired_line(&cut);
        assert!(!line.contains("every node"), "{line}");
        assert!(
            line.contains("gone from nodes 1 and 2; node 3 could not be asked, so there it is not confirmed"),
            "{line}"
        );
    }
}
