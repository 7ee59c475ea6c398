//! Dynamic reconfiguration through the real client: each server's committed configuration (`conf`), and
//! `reconfig` as zkdev's super user.

use std::time::{Duration, Instant};

use zookeeper_client as zk;

use crate::error::{Error, Result};
use crate::model::membership::{self, Membership};
use crate::model::spec::ClusterSpec;
use crate::os::state::ClusterPaths;
use crate::zk::probe;

/// The configuration node `id` has committed, as it answers `conf`; None when it does not answer.
pub async fn node_config(spec: &ClusterSpec, id: u32) -> Option<Membership> {
    node_config_within(spec, id, Duration::from_millis(1500)).await
}

async fn node_config_within(spec: &ClusterSpec, id: u32, timeout: Duration) -> Option<Membership> {
    let node = spec.node(id)?;
    let text = probe::four_letter(node.client_addr(), "conf", timeout).await.ok()?;
    Membership::parse(&text)
}

/// The committed configuration of every node of `ids`, asked at once (None for a node that does not
/// answer within half a second).
pub async fn configs(spec: &ClusterSpec, ids: &[u32]) -> Vec<(u32, Option<Membership>)> {
    let asks = (ids.iter()).map(|id| async move {
        let m = node_config_within(spec, *id, Duration::from_millis(500)).await;
        (*id, m)
    });
    futures::future::join_all(asks).await
}

/// A session on `connect` authenticated as the cluster's super user.
pub async fn super_client(paths: &ClusterPaths, connect: &str) -> Result<zk::Client> {
    let credentials = crate::os::super_user::credentials(paths)?;
    let client = crate::zk::client::connect(connect, Duration::from_secs(10), Duration::from_secs(10)).await?;
    client
        .auth("digest", credentials.as_bytes())
        .await
        .map_err(|e| Error::failed(format!("cannot authenticate as the super user on {connect}: {e}")))?;
    Ok(client)
}

/// One incremental `reconfig`: `joining` server strings, `leaving` ids. The committed configuration on
/// success; ZooKeeper's refusal explained otherwise. `what` names the change (`add node 4`).
pub async fn reconfig(client: &zk::Client, joining: &[String], leaving: &[u32], what: &str) -> Result<Membership> {
    let leaving: Vec<String> = leaving.iter().map(u32::to_string).collect();
    let update = zk::EnsembleUpdate::Incremental {
        joinings: joining.iter().map(String::as_str),
        leavings: leaving.iter().map(String::as_str),
    };
    match tokio::time::timeout(Duration::from_secs(30), client.update_ensemble(update, None)).await {
        Err(_) => Err(Error::timeout(format!(
            "ZooKeeper did not answer the request to {what} within 30 s; `zkdev status` shows whether it was \
             committed"
        ))),
        Ok(Ok((data, _))) => Membership::parse(&String::from_utf8_lossy(&data)).ok_or_else(|| {
            Error::failed(format!(
                "ZooKeeper answered the request to {what} with no configuration"
            ))
        }),
        Ok(Err(e)) => Err(Error::zookeeper_refused(refusal(&e, what))),
    }
}

/// ZooKeeper's answer to a `reconfig`, in words with the fix.
pub fn refusal(e: &zk::Error, what: &str) -> String {
    match e {
        zk::Error::UnexpectedErrorCode(code) => membership::explain(*code, what),
        zk::Error::ReconfigDisabled => membership::explain(-123, what),
        zk::Error::NoAuth => membership::explain(-102, what),
        zk::Error::BadArguments(_) => membership::explain(-8, what),
        zk::Error::ConnectionLoss => format!(
            "the connection was lost while ZooKeeper handled the request to {what} (a change that moves the leader \
             can do that); `zkdev status` shows whether it was committed"
        ),
        other => format!("ZooKeeper refused to {what}: {other}"),
    }
}

/// Is `e` (a refusal from `reconfig`) NewConfigNoQuorum?
pub fn is_no_quorum(message: &str) -> bool {
    message.contains("NewConfigNoQuorum")
}

/// Wait until every node of `ids` answers `conf` with configuration `version`; the ones that do not, at the
/// deadline, in the error.
pub async fn wait_committed(spec: &ClusterSpec, ids: &[u32], version: u64, timeout: Duration) -> Result<Duration> {
    let t0 = Instant::now();
    loop {
        let mut behind = Vec::new();
        for id in ids {
            let seen = node_config(spec, *id).await.and_then(|m| m.version);
            if seen != Some(version) {
                behind.push((*id, seen));
            }
        }
        if behind.is_empty() {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() >= timeout {
            let list: Vec<String> = behind
                .iter()
                .map(|(id, v)| format!("node {id} has {}", membership::Version(*v)))
                .collect();
            return Err(Error::failed(format!(
                "configuration {} was committed, but not every node has it after {} s: {}",
                membership::Version(Some(version)),
                timeout.as_secs(),
                list.join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
