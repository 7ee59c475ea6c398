//! Checks before nodes start: the installation is still there, and every port is free (or who holds it).
//! Used by `up` (before it makes a cluster) and by the supervisor (before every start).

use std::time::Duration;

use crate::dist;
use crate::error::{Error, Result};
use crate::model::spec::ClusterSpec;
use crate::os::ports;

/// The installation recorded in the spec must still be there.
pub fn check_dist_present(spec: &ClusterSpec) -> Result<()> {
    if !spec.dist.java.is_file() {
        return Err(Error::env(format!(
            "java {} (recorded when the cluster was made) is gone; install it ({}) or remove the cluster with \
             `zkdev down --purge`",
            spec.dist.java.display(),
            dist::INSTALL_JAVA
        )));
    }
    if let Some(missing) = spec.dist.classpath.iter().find(|p| !p.exists()) {
        return Err(Error::env(format!(
            "ZooKeeper {} is no longer installed ({} is missing); install it again ({}) or remove the cluster with \
             `zkdev down --purge`",
            spec.dist.version,
            missing.display(),
            dist::INSTALL_ZOOKEEPER
        )));
    }
    Ok(())
}

/// Every proxy port of a new `--net` cluster must be free (the supervisor binds them before any node starts).
pub fn check_proxy_ports_free(spec: &ClusterSpec) -> Result<()> {
    for (port, id, what) in spec.proxy_ports() {
        if !ports::is_free(port) {
            let who = ports::holder(port)
                .unwrap_or(ports::Holder::Closing)
                .describe(port, ports::ephemeral_range());
            return Err(Error::env(format!(
                "port {port} (node {id} {what}) is in use{who}; pass --net-port-base P (or [network] port_base) to \
                 move this cluster's proxies"
            )));
        }
    }
    Ok(())
}

/// Every port of the nodes `ids` must be free on 127.0.0.1; a taken one is named with its owner.
pub async fn check_ports_free(spec: &ClusterSpec, ids: &[u32]) -> Result<()> {
    for (port, id, what) in spec.all_ports() {
        if !ids.contains(&id) || ports::is_free(port) {
            continue;
        }
        // No listener or live connection but the bind is refused: a connection of a node that just stopped is
        // still closing. That passes within moments; a listener or another program's connection does not.
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        let mut holder = ports::holder(port);
        while !holder.as_ref().is_some_and(ports::Holder::settled)
            && std::time::Instant::now() < deadline
            && !ports::is_free(port)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
            holder = ports::holder(port);
        }
        if ports::is_free(port) {
            continue;
        }
        let who = holder
            .unwrap_or(ports::Holder::Closing)
            .describe(port, ports::ephemeral_range());
        return Err(Error::env(format!(
            "port {port} (node {id} {what} port) is in use{who}; stop that process, or pass --port-offset K to move \
             every port of this cluster (a new cluster only), e.g. --port-offset 10000"
        )));
    }
    Ok(())
}
