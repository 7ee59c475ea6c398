//! Checks before nodes start: the installation is still there, and every port is free (or who holds it).
//! Used by `up` (before it makes a cluster) and by the supervisor (before every start).

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::model::dist;
use crate::model::profile::AddressMode;
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
    if spec.settings.disk_faults {
        crate::os::faultfs::library()?;
    }
    if let Some(missing) = spec
        .settings
        .classpath_extra
        .iter()
        .find(|p| !std::path::Path::new(p).exists())
    {
        return Err(Error::env(format!(
            "{missing} (the profile's [jvm] classpath_extra) does not exist; install it or remove it from the profile"
        )));
    }
    Ok(())
}

/// Every proxy port of a new `--net` cluster must be free (the supervisor binds them before any node starts).
pub fn check_proxy_ports_free(spec: &ClusterSpec) -> Result<()> {
    for (port, id, what) in spec.proxy_ports() {
        if !ports::is_free(std::net::Ipv4Addr::LOCALHOST, port) {
            let who = ports::holder(std::net::Ipv4Addr::LOCALHOST, port)
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

/// Every node of `ids` must have its address on this machine, and every port of it must be free there; a
/// taken one is named with its owner.
pub async fn check_ports_free(spec: &ClusterSpec, ids: &[u32]) -> Result<()> {
    let loopback = spec.settings.addresses == AddressMode::Loopback;
    for n in spec.nodes.iter().filter(|n| ids.contains(&n.id)) {
        if !ports::is_local_address(n.address) {
            return Err(Error::env(format!(
                "node {} listens on {} (--addresses loopback), which is not an address of this machine: Linux routes \
                 all of 127.0.0.0/8 to the loopback interface, other systems only 127.0.0.1 unless aliases are \
                 added (macOS: `sudo ifconfig lo0 alias {} up`, once per node address); add them, or make the \
                 cluster without --addresses loopback",
                n.id, n.address, n.address
            )));
        }
    }
    for (port, id, what) in spec.all_ports() {
        if !ids.contains(&id) {
            continue;
        }
        let address = spec.node(id).map_or(Ipv4Addr::LOCALHOST, |n| n.address);
        if ports::is_free(address, port) {
            continue;
        }
        // No listener or live connection but the bind is refused: a connection of a node that just stopped is
        // still closing. That passes within moments; a listener or another program's connection does not.
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        let mut holder = ports::holder(address, port);
        while !holder.as_ref().is_some_and(ports::Holder::settled)
            && std::time::Instant::now() < deadline
            && !ports::is_free(address, port)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
            holder = ports::holder(address, port);
        }
        if ports::is_free(address, port) {
            continue;
        }
        let who = holder
            .unwrap_or(ports::Holder::Closing)
            .describe(port, ports::ephemeral_range());
        if loopback {
            let base = spec.settings.address_base;
            return Err(Error::env(format!(
                "port {port} on {address} (node {id} {what} port) is in use{who}; with --addresses loopback every \
                 node has the standard ports on its own address, so two such clusters need different address \
                 bases: this one uses base {base} ({} to {}); stop that process, or make this cluster with another \
                 base, e.g. --address-base {}",
                spec.nodes.first().map_or(address, |n| n.address),
                spec.nodes.last().map_or(address, |n| n.address),
                next_base(base, spec.nodes.len())
            )));
        }
        return Err(Error::env(format!(
            "port {port} (node {id} {what} port) is in use{who}; stop that process, or pass --port-offset K to move \
             every port of this cluster (a new cluster only), e.g. --port-offset 10000"
        )));
    }
    Ok(())
}

/// A base past this cluster's addresses, rounded up to the next ten: 127.0.0.10 with 4 nodes -> 127.0.0.20.
fn next_base(base: Ipv4Addr, nodes: usize) -> Ipv4Addr {
    let net = u32::from(Ipv4Addr::new(127, 0, 0, 0));
    let offset = u32::from(base).saturating_sub(net) + nodes as u32 + 1;
    Ipv4Addr::from(net + offset.div_ceil(10) * 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_base_clears_this_clusters_addresses() {
        assert_eq!(next_base(Ipv4Addr::new(127, 0, 0, 10), 4), Ipv4Addr::new(127, 0, 0, 20));
        assert_eq!(next_base(Ipv4Addr::new(127, 0, 0, 20), 4), Ipv4Addr::new(127, 0, 0, 30));
        assert_eq!(next_base(Ipv4Addr::new(127, 0, 0, 10), 9), Ipv4Addr::new(127, 0, 0, 20));
        assert_eq!(next_base(Ipv4Addr::new(127, 0, 0, 250), 7), Ipv4Addr::new(127, 0, 1, 4));
    }
}
