//! The client sessions an ensemble holds, read from every node (`cons`, `dump`), and ending one for real:
//! reattach through another node with the password ZooKeeper derives from the id, then `closeSession`, and
//! wait until no node lists it. `zkdev sessions`, `zkdev expire-session`, the nemesis and `reset` use it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::env::Env;
use crate::error::{Error, Result};
use crate::model::spec::ClusterSpec;
use crate::supervisor::control::Request;
use crate::supervisor::replies::RecordReply;
use crate::zk::probe::four_letter;
use crate::zk::session::{self, hex, CloseError};

const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// One session, put together from every node's answer.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    /// `0x100012f4b6c0000`.
    pub id: String,
    /// The id as a number.
    #[serde(skip)]
    pub raw_id: i64,
    /// The myid of the server that created it: the top byte of the id.
    pub created_by: u32,
    /// The node it is connected to now; none while its client is between servers.
    pub connected_to: Option<u32>,
    /// The client's address as that server sees it.
    pub client: Option<String>,
    /// The negotiated session timeout, milliseconds.
    pub timeout_ms: Option<u64>,
    /// The last operation that server saw (`PING`, `CREA`, `GETD`...).
    pub last_op: Option<String>,
    /// The ephemeral znodes it owns.
    pub ephemerals: Vec<String>,
}

/// What the nodes answered: sessions, and which nodes could be asked.
#[derive(Debug, Clone, Serialize)]
pub struct Sessions {
    /// Every session, by id.
    pub sessions: Vec<SessionView>,
    /// Nodes that answered `cons`.
    pub asked: Vec<u32>,
    /// Nodes that did not (not running, not serving): their connections are unknown.
    pub unreachable: Vec<u32>,
    /// Why the ephemeral znodes are unknown, when they are (no node allows `dump`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemerals_unknown: Option<String>,
}

impl Sessions {
    /// The session with this id, if a node lists it.
    pub fn find(&self, id: i64) -> Option<&SessionView> {
        self.sessions.iter().find(|s| s.raw_id == id)
    }
}

/// Every session the servers know: each node's connections (`cons`), with the ephemeral znodes of each
/// session from `dump` (the data tree is the same on every node; the first that answers is used).
pub async fn list(spec: &ClusterSpec) -> Sessions {
    let mut by_id: BTreeMap<i64, SessionView> = BTreeMap::new();
    let (mut asked, mut unreachable) = (Vec::new(), Vec::new());
    let mut ephemerals: Option<BTreeMap<i64, Vec<String>>> = None;
    let mut dump_refused = false;
    for node in &spec.nodes {
        let Ok(cons) = four_letter(node.client_addr(), "cons", ASK_TIMEOUT).await else {
            unreachable.push(node.id);
            continue;
        };
        if cons.contains(crate::zk::probe::NOT_SERVING) {
            unreachable.push(node.id);
            continue;
        }
        asked.push(node.id);
        for c in session::parse_cons(&cons) {
            by_id.insert(
                c.session,
                SessionView {
                    id: hex(c.session),
                    raw_id: c.session,
                    created_by: session::creator(c.session),
                    connected_to: Some(node.id),
                    client: Some(c.client),
                    timeout_ms: c.timeout_ms,
                    last_op: c.last_op,
                    ephemerals: Vec::new(),
                },
            );
        }
        if ephemerals.is_none() {
            match four_letter(node.client_addr(), "dump", ASK_TIMEOUT).await {
                Ok(dump) if dump.contains("not in the whitelist") => dump_refused = true,
                Ok(dump) => ephemerals = Some(session::parse_dump_ephemerals(&dump)),
                Err(_) => {}
            }
        }
    }
    let ephemerals_unknown = (ephemerals.is_none() && dump_refused).then(|| {
        "the nodes do not allow the `dump` four-letter word (a cluster made by an older zkdev): `zkdev \
         rolling-restart` writes zkdev's current whitelist"
            .to_string()
    });
    for (id, paths) in ephemerals.unwrap_or_default() {
        let s = by_id.entry(id).or_insert_with(|| SessionView {
            id: hex(id),
            raw_id: id,
            created_by: session::creator(id),
            connected_to: None,
            client: None,
            timeout_ms: None,
            last_op: None,
            ephemerals: Vec::new(),
        });
        s.ephemerals = paths;
    }
    Sessions {
        sessions: by_id.into_values().collect(),
        asked,
        unreachable,
        ephemerals_unknown,
    }
}

/// A session ended for real: where it was, how it was closed, and where its end was seen.
#[derive(Debug, Clone, Serialize)]
pub struct Expired {
    /// `0x100012f4b6c0000`.
    pub id: String,
    /// The myid of the server that created it.
    pub created_by: u32,
    /// The node its client was connected to.
    pub connected_to: Option<u32>,
    /// The client's address.
    pub client: Option<String>,
    /// The node the closeSession went through (another than the client's, so the client cannot win it back).
    pub via: u32,
    /// The zxid of the committed closeSession, hex.
    pub zxid: String,
    /// Ephemeral znodes the session owned, deleted by the ensemble.
    pub ephemerals_deleted: Vec<String>,
    /// closeSession sent -> no node that answered lists the session or its ephemerals.
    pub gone_everywhere_ms: u64,
    /// The nodes that answered and no longer list the session.
    pub confirmed_by: Vec<u32>,
    /// The nodes that could not be asked (not running, not serving, cut off): unconfirmed there.
    pub not_asked: Vec<u32>,
}

/// End one session `now` lists and wait until no node has it; not journalled (the caller does that).
pub async fn expire_one(spec: &ClusterSpec, now: &Sessions, s: &SessionView, within: Duration) -> Result<Expired> {
    // Through another node than the client's: the client's own server would drop the client's connection
    // at once on the takeover, and the client could reconnect and take its session back before the close.
    let via = now
        .asked
        .iter()
        .copied()
        .find(|n| Some(*n) != s.connected_to)
        .or(s.connected_to)
        .unwrap_or(now.asked[0]);
    let addr = spec.node(via).expect("an asked node is in the spec").client_addr();
    let timeout = s.timeout_ms.unwrap_or(30_000).min(i32::MAX as u64) as u32;
    let t0 = Instant::now();
    let closed = session::close(addr, s.raw_id, timeout, within).await.map_err(|e| match e {
        CloseError::Unknown => Error::zookeeper_refused(format!(
            "session {} is not one the ensemble knows (expired or closed already?); `zkdev sessions` lists the live ones",
            s.id
        )),
        other => Error::failed(format!("cannot end session {} through node {via}: {other}", s.id)),
    })?;
    // Gone everywhere: no node has the connection, and no node's data tree has its ephemerals.
    let deadline = t0 + within;
    let after = loop {
        let after = list(spec).await;
        if after.find(s.raw_id).is_none() {
            break after;
        }
        if Instant::now() >= deadline {
            return Err(Error::timeout(format!(
                "session {} was closed (zxid {}), but a node still lists it after {} ms; see `zkdev sessions`",
                s.id,
                hex(closed.zxid),
                within.as_millis()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Ok(Expired {
        id: s.id.clone(),
        created_by: s.created_by,
        connected_to: s.connected_to,
        client: s.client.clone(),
        via,
        zxid: hex(closed.zxid),
        ephemerals_deleted: s.ephemerals.clone(),
        gone_everywhere_ms: t0.elapsed().as_millis() as u64,
        confirmed_by: after.asked,
        not_asked: after.unreachable,
    })
}
/// Which sessions `expire` ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// The session with this id.
    Id(i64),
    /// The session of the client connected from this address.
    Client(String),
    /// Every session (connected to this node, if given).
    All {
        /// Only those connected to this node.
        node: Option<u32>,
    },
}

/// What [`expire`] ended.
#[derive(Debug, Clone, Serialize)]
pub struct ExpireReport {
    /// Each session ended, as seen.
    pub expired: Vec<Expired>,
    /// How a session is ended from outside its client.
    pub mechanism: &'static str,
}

const MECHANISM: &str = "reattached with the session's derived password and closed it (closeSession)";

/// End the sessions `which` names, for real, and wait until no node has them (`within` per session). The
/// journal records each. The entry point for other commands (a chaos schedule) as well as `expire-session`.
pub async fn expire(env: &Env<'_>, which: &Which, within: Duration) -> Result<ExpireReport> {
    let spec = env.spec;
    let now = list(spec).await;
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
    let mut expired = Vec::new();
    for s in &targets {
        let e = match expire_one(spec, &now, s, within).await {
            Ok(e) => e,
            Err(err) => {
                // Every session: one that ended on its own since the listing (a client closing as this ran)
                // is not an error; any other session named is.
                let gone = matches!(which, Which::All { .. }) && list(spec).await.find(s.raw_id).is_none();
                if gone {
                    continue;
                }
                return Err(err);
            }
        };
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
        env.sup
            .ask_for::<RecordReply>(
                Request::Record {
                    message,
                    cause: env.cause.to_string(),
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
