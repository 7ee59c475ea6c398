//! `zkdev sessions`: every client session as the servers report it (`cons` on every node, `dump` for the
//! ephemeral znodes). `zkdev expire-session`: end sessions for real from outside their clients (see
//! `zk::session` for how), then wait until no node has them any more.

use std::time::Duration;

use super::Ctx;
use crate::cli::ExpireSessionArgs;
use crate::engine::nemesis::Env;
use crate::engine::sessions::{expire, list, ExpireReport, Expired, Which};
use crate::error::{Error, Result};
use crate::model::words;
use crate::output;
use crate::zk::session;
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

/// The sessions `expire-session`'s arguments name.
pub(super) fn which(args: &ExpireSessionArgs) -> Result<Which> {
    Ok(match (&args.id, &args.client) {
        (Some(id), _) => Which::Id(session::parse_id(id).ok_or_else(|| {
            Error::usage(format!(
                "`{id}` is not a session id: give it in hex as `zkdev sessions` prints it, e.g. 0x100012f4b6c0000"
            ))
        })?),
        (None, Some(c)) => Which::Client(c.trim_start_matches('/').to_string()),
        (None, None) => Which::All { node: args.node },
    })
}

pub async fn run_expire(ctx: &Ctx, args: ExpireSessionArgs) -> Result<()> {
    let which = which(&args)?;
    let (paths, spec) = ctx.existing()?;
    let sup = ctx.supervisor().await?;
    let cause = ctx.cause();
    let env = Env {
        sup: &sup,
        cause: &cause,
        spec: &spec,
        paths: &paths,
        force: false,
    };
    let report = expire(&env, &which, Duration::from_secs(15)).await?;
    if ctx.json {
        output::print_json(&report);
    } else {
        crate::out!("{}", expire_text(&report));
    }
    Ok(())
}

/// An expiry report as `zkdev expire-session` prints it.
pub(super) fn expire_text(report: &ExpireReport) -> String {
    let mut out = String::new();
    if report.expired.is_empty() {
        out.push_str("no client sessions to expire\n");
    }
    for e in &report.expired {
        out.push_str(&format!("{}\n", expired_line(e)));
        if !e.ephemerals_deleted.is_empty() {
            out.push_str(&format!(
                "  ephemeral znodes deleted: {} (gone on {})\n",
                e.ephemerals_deleted.join(" "),
                confirmed_where(e)
            ));
        }
    }
    if !report.expired.is_empty() {
        out.push_str("(the clients are told SESSION_EXPIRED when they reconnect; their connections were dropped)\n");
    }
    out
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
