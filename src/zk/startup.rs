//! Signs that a starting node will never serve, so that `up` can fail at once instead of waiting out its
//! timeout: a fatal line in its log (a port it could not bind, ZooKeeper giving up), or a client port that
//! accepts every connection and closes it without a word (what NettyServerCnxnFactory does when its classes
//! are incomplete). A missing class alone is no such sign: ZooKeeper serves without its optional parts (the
//! AdminServer without the servlet API); `missing_classes` finds them for a warning.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::model::diagnose;
use crate::model::spec::ClusterSpec;
use crate::os::state::ClusterPaths;

/// How many probes in a row must be closed unanswered, over at least how long, before a node counts as
/// closing every connection (an empty reply can happen once during a state change).
const CLOSED_IN_A_ROW: u32 = 6;
const CLOSED_FOR: Duration = Duration::from_millis(1500);

/// A node that will not serve, and why (quoting its log or saying what its port does).
#[derive(Debug, Clone, PartialEq)]
pub struct Doomed {
    pub id: u32,
    pub why: String,
}

/// The length of every node's log now: what `first_doomed` skips (earlier runs' lines).
pub fn log_lengths(spec: &ClusterSpec, paths: &ClusterPaths) -> BTreeMap<u32, u64> {
    spec.ids()
        .into_iter()
        .map(|id| (id, std::fs::metadata(paths.log_file(id)).map(|m| m.len()).unwrap_or(0)))
        .collect()
}

/// The text node `id`'s log got after `since` (see `log_lengths`).
fn log_since(paths: &ClusterPaths, id: u32, since: &BTreeMap<u32, u64>) -> String {
    let text = std::fs::read(paths.log_file(id)).unwrap_or_default();
    let from = since.get(&id).map_or(0, |n| (*n as usize).min(text.len()));
    String::from_utf8_lossy(&text[from..]).into_owned()
}

/// The nodes among `ids` whose logs (after `since`) name a missing class, with the line.
pub fn missing_classes(paths: &ClusterPaths, ids: &[u32], since: &BTreeMap<u32, u64>) -> Vec<(u32, String)> {
    ids.iter()
        .filter_map(|id| diagnose::missing_class(&log_since(paths, *id, since)).map(|l| (*id, l)))
        .collect()
}

/// Watch the nodes `ids` until one shows a sign that it will never serve; never returns otherwise. Only what
/// their logs got after `since` (see `log_lengths`) counts.
pub async fn first_doomed(spec: &ClusterSpec, paths: &ClusterPaths, ids: &[u32], since: &BTreeMap<u32, u64>) -> Doomed {
    let mut closed: BTreeMap<u32, (u32, Instant)> = BTreeMap::new();
    loop {
        for id in ids {
            let text = log_since(paths, *id, since);
            if let Some(line) = diagnose::fatal_at_start(&text) {
                return Doomed {
                    id: *id,
                    why: format!("its log says `{line}`"),
                };
            }
            let Some(node) = spec.node(*id) else { continue };
            if closes_unanswered(node.ports.client).await {
                let (n, since) = closed.entry(*id).or_insert((0, Instant::now()));
                *n += 1;
                if *n >= CLOSED_IN_A_ROW && since.elapsed() >= CLOSED_FOR {
                    // A missing class is the likely reason; quoted only now that the node cannot serve.
                    let class = diagnose::missing_class(&text)
                        .map(|l| format!("; its log says `{l}`"))
                        .unwrap_or_default();
                    return Doomed {
                        id: *id,
                        why: format!(
                            "it accepts connections on its client port {} but closes every one without answering \
                             ({} in a row over {:.1} s){class}",
                            node.ports.client,
                            n,
                            since.elapsed().as_secs_f64()
                        ),
                    };
                }
            } else {
                closed.remove(id);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Connected, sent `ruok`, and the server closed (or reset) the connection without a byte. A refused
/// connection (not bound yet) or any answer is not that.
async fn closes_unanswered(port: u16) -> bool {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(b"ruok").await.ok()?;
        let mut buf = [0u8; 16];
        Some(matches!(s.read(&mut buf).await, Ok(0) | Err(_)))
    };
    tokio::time::timeout(Duration::from_millis(500), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
