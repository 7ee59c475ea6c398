//! Deleting every znode but ZooKeeper's own (`/zookeeper`), fast: the tree is listed one level at a time,
//! a level's `getChildren` in one `multi` read (ZooKeeper 3.6+; else all in flight at once on one
//! session), then deleted deepest first in
//! `multi` transactions of up to `CHUNK` deletes (one commit each). A `multi` that fails (a znode went or
//! came meanwhile) is redone as single deletes, all in flight at once and in order (one session's requests
//! are applied in the order sent), and the tree is listed again, until only `/zookeeper` is left.

use zookeeper_client as zk;

use crate::error::{Error, Result};

/// Deletes per `multi`: well under jute.maxbuffer (1 MB) for any path ZooKeeper allows in practice.
const CHUNK: usize = 1000;
/// Rounds of list-then-delete before giving up (another client keeps creating znodes).
const ROUNDS: usize = 5;

/// Why a znode could not be listed or deleted, in words.
fn refused(path: &str, e: &zk::Error, authenticated: bool) -> Error {
    match e {
        zk::Error::NoAuth if !authenticated => Error::failed(format!(
            "znode {path} is protected by an ACL, and this cluster has no super user zkdev can act as (it was made \
             by an older zkdev, before every cluster got one); remove the znode with its owner's credentials, or \
             make the cluster again (`zkdev down --purge`, then `zkdev up`)"
        )),
        other => Error::failed(format!("cannot delete {path}: ZooKeeper answered `{other}`")),
    }
}

fn child(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// The children of every path of `parents`, in order: one `multi` read per `CHUNK` paths (ZooKeeper 3.6 and
/// newer), else every `getChildren` in flight at once. `None` for a path gone meanwhile.
async fn children_of(client: &zk::Client, parents: &[String], authenticated: bool) -> Result<Vec<Option<Vec<String>>>> {
    let mut out = Vec::with_capacity(parents.len());
    for chunk in parents.chunks(CHUNK) {
        let mut reader = client.new_multi_reader();
        for p in chunk {
            reader
                .add_get_children(p)
                .map_err(|e| Error::failed(format!("cannot list {p}: {e}")))?;
        }
        match reader.commit().await {
            Ok(results) if results.len() == chunk.len() => {
                for (parent, r) in chunk.iter().zip(results) {
                    out.push(match r {
                        zk::MultiReadResult::Children { children } => Some(children),
                        zk::MultiReadResult::Error { err: zk::Error::NoNode } => None,
                        zk::MultiReadResult::Error { err } => return Err(refused(parent, &err, authenticated)),
                        _ => {
                            return Err(Error::failed(format!(
                                "ZooKeeper answered something else than children when asked those of {parent}"
                            )))
                        }
                    });
                }
            }
            // An older ZooKeeper (no multi read): one request per path, all in flight.
            _ => {
                let answers = futures::future::join_all(chunk.iter().map(|p| client.list_children(p))).await;
                for (parent, answer) in chunk.iter().zip(answers) {
                    out.push(match answer {
                        Ok(children) => Some(children),
                        Err(zk::Error::NoNode) => None,
                        Err(e) => return Err(refused(parent, &e, authenticated)),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Every znode under `/` but `/zookeeper` and its subtree, grouped by depth (index 0: depth 1).
async fn list_tree(client: &zk::Client, authenticated: bool) -> Result<Vec<Vec<String>>> {
    let mut levels: Vec<Vec<String>> = Vec::new();
    let mut current = vec!["/".to_string()];
    while !current.is_empty() {
        let answers = children_of(client, &current, authenticated).await?;
        let mut next = Vec::new();
        for (parent, children) in current.iter().zip(answers) {
            // None: gone since its parent was listed (an ephemeral of a session that just ended).
            for c in children.unwrap_or_default() {
                let path = child(parent, &c);
                if path != "/zookeeper" {
                    next.push(path);
                }
            }
        }
        if !next.is_empty() {
            levels.push(next.clone());
        }
        current = next;
    }
    Ok(levels)
}

/// Delete `paths` (deepest first) as single requests, all in flight at once. Returns how many were deleted.
async fn delete_singly(client: &zk::Client, paths: &[String], authenticated: bool) -> Result<usize> {
    let answers = futures::future::join_all(paths.iter().map(|p| client.delete(p, None))).await;
    let mut deleted = 0;
    for (path, answer) in paths.iter().zip(answers) {
        match answer {
            Ok(()) => deleted += 1,
            // Gone already, or a child appeared meanwhile: the next round lists again.
            Err(zk::Error::NoNode) | Err(zk::Error::NotEmpty) => {}
            Err(e) => return Err(refused(path, &e, authenticated)),
        }
    }
    Ok(deleted)
}

/// Delete every znode but `/zookeeper`'s; the number deleted.
pub async fn wipe(client: &zk::Client, authenticated: bool) -> Result<usize> {
    let mut deleted = 0;
    for _ in 0..ROUNDS {
        let levels = list_tree(client, authenticated).await?;
        if levels.is_empty() {
            return Ok(deleted);
        }
        let deepest_first: Vec<String> = levels.into_iter().rev().flatten().collect();
        let mut clean = true;
        for chunk in deepest_first.chunks(CHUNK) {
            let mut multi = client.new_multi_writer();
            for p in chunk {
                multi
                    .add_delete(p, None)
                    .map_err(|e| Error::failed(format!("cannot delete {p}: {e}")))?;
            }
            match multi.commit().await {
                Ok(_) => deleted += chunk.len(),
                Err(_) => {
                    deleted += delete_singly(client, chunk, authenticated).await?;
                    clean = false;
                }
            }
        }
        // Every multi went through: what was listed is gone, and nothing was left behind by a fallback.
        if clean {
            return Ok(deleted);
        }
    }
    let left = list_tree(client, authenticated).await?;
    Err(Error::failed(format!(
        "znodes keep appearing while zkdev deletes them ({} left after {ROUNDS} rounds, e.g. {}): a client is \
         still writing; stop it and run `zkdev reset` again",
        left.iter().map(Vec::len).sum::<usize>(),
        left.first().and_then(|l| l.first()).map_or("", String::as_str)
    )))
}
