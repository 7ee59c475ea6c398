//! A new cluster's spec: a profile and the flags over it (flags win), with java and ZooKeeper located and
//! every combination that cannot work refused before anything is written.

use crate::error::{Error, Result};
use crate::model::spec::ClusterSpec;

/// What the flags say about a cluster that does not exist yet; `None` and `false` leave it to the profile.
#[derive(Debug, Default, Clone)]
pub struct NewCluster<'a> {
    /// A built-in profile's name or a profile file (default: `default`).
    pub profile: Option<&'a str>,
    /// Added to every port.
    pub port_offset: Option<u16>,
    /// Every node on 127.0.0.1, or each on an address of its own.
    pub addresses: Option<crate::model::profile::AddressMode>,
    /// The first of the nodes' own addresses.
    pub address_base: Option<std::net::Ipv4Addr>,
    /// A ZooKeeper installation to use.
    pub zk_home: Option<&'a str>,
    /// A ZooKeeper version zkdev installed (`zkdev dist`).
    pub dist: Option<&'a str>,
    /// Voting participants.
    pub voters: u32,
    /// Observers.
    pub observers: u32,
    /// `--tls`: TLS on whatever the profile says.
    pub tls: bool,
    /// `--net`: proxied links (the profile may ask for them too).
    pub net: bool,
    /// The first port of the proxied links.
    pub net_port_base: Option<u16>,
    /// `--reconfig`: dynamic reconfiguration (the profile may ask for it too).
    pub reconfig: bool,
}

/// A new cluster's spec from a profile and flags (flags win), with java and ZooKeeper located.
pub fn new_spec(zkdev_home: &std::path::Path, cluster: &str, flags: NewCluster) -> Result<ClusterSpec> {
    let NewCluster {
        profile,
        port_offset,
        addresses,
        address_base,
        zk_home,
        dist: dist_version,
        voters,
        observers,
        tls,
        net,
        net_port_base,
        reconfig,
    } = flags;
    let (origin, profile) = crate::os::profile::load(profile.unwrap_or("default"))?;
    let mut settings = profile.settings(&origin)?;
    if let Some(k) = port_offset {
        settings.offset = k;
    }
    if let Some(mode) = addresses {
        settings.addresses = mode;
    }
    if let Some(base) = address_base {
        if settings.addresses != crate::model::profile::AddressMode::Loopback {
            return Err(Error::usage(format!(
                "--address-base {base} without --addresses loopback: only nodes on their own addresses have a base"
            )));
        }
        settings.address_base = base;
    }
    if tls {
        settings.tls = true;
    }
    if net {
        settings.proxied = true;
    }
    if let Some(b) = net_port_base {
        settings.net_port_base = Some(b);
    }
    if reconfig {
        settings.reconfig = true;
    }
    if settings.proxied && settings.addresses == crate::model::profile::AddressMode::Loopback {
        return Err(Error::usage(
            "--net with --addresses loopback: proxied links run on loopback addresses of their own (127.1.x.y) for \
             nodes on 127.0.0.1, so they do not combine with one address per node yet; choose one of the two",
        ));
    }
    let all_ips = (settings.extra.iter())
        .any(|(k, v)| k.eq_ignore_ascii_case("quorumListenOnAllIPs") && v.trim().eq_ignore_ascii_case("true"));
    if settings.proxied && all_ips {
        return Err(Error::usage(
            "--net with quorumListenOnAllIPs = true: the link proxies listen on the nodes' own quorum and election \
             port numbers at loopback addresses of their own (127.1.x.y), which a node listening on every address \
             would take from them; remove quorumListenOnAllIPs from the profile, or leave out --net",
        ));
    }
    // Check the shape before looking for java, so bad flags are reported as such on any machine.
    ClusterSpec::build(
        cluster,
        &origin,
        settings.clone(),
        crate::dist::Dist::placeholder(),
        voters,
        observers,
    )?;
    let dist = crate::dist::detect(
        zk_home.or(settings.zk_home.as_deref()),
        settings.java.as_deref(),
        dist_version.or(settings.version.as_deref()),
        zkdev_home,
    )?;
    if settings.metrics
        && !dist
            .classpath
            .iter()
            .any(|j| j.to_string_lossy().contains("prometheus"))
    {
        return Err(Error::env(format!(
            "the profile asks for metrics, but ZooKeeper {} at {} has no Prometheus metrics provider jar \
             (zookeeper-prometheus-metrics-*.jar in lib/); use an upstream -bin release (`zkdev dist install`)",
            dist.version,
            dist.zk_home.display()
        )));
    }
    if settings.tls && !crate::dist::has_netty(&dist) {
        return Err(Error::env(format!(
            "TLS needs ZooKeeper's Netty connection factory, and the Netty jars it needs are not installed next to \
             {}: {}",
            dist.zk_home.display(),
            crate::dist::INSTALL_NETTY
        )));
    }
    if settings.tls && dist.version_tuple() < (3, 6, 0) {
        return Err(Error::usage(format!(
            "TLS needs ZooKeeper 3.6 or newer (zkdev gives the nodes PEM key stores, which ZooKeeper reads from 3.6), \
             and this cluster would run {}; pick a newer one with --dist",
            dist.version
        )));
    }
    if settings.proxied {
        if let Some(major) = crate::dist::java_major(&dist.java).filter(|m| *m < 9) {
            return Err(Error::env(format!(
                "--net needs Java 9 or newer: each node resolves its peers' names from a hosts file of its own \
                 (-Djdk.net.hosts.file, from Java 9), and {} is Java {major}, which would ask the system's resolver \
                 instead; point the profile's `java` at a newer one, or leave out --net",
                dist.java.display()
            )));
        }
    }
    let mut spec = ClusterSpec::build(cluster, &origin, settings, dist, voters, observers)?;
    spec.uid = ClusterSpec::uid_from(crate::os::random::u64());
    Ok(spec)
}
