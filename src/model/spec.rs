//! The resolved description of one cluster: node ids, roles, ports and settings. Pure: built from a profile
//! and flags, validated, stored as `cluster.toml`, and read back by every later command.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::dist::Dist;
use crate::model::profile::{AddressMode, Settings};

/// Version of the on-disk `cluster.toml` format.
pub const SPEC_FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Participant,
    Observer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Participant => "participant",
            Role::Observer => "observer",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    pub client: u16,
    pub quorum: u16,
    pub election: u16,
    /// None when the AdminServer is off (profile) or cannot run (no servlet API in the installation).
    pub admin: Option<u16>,
    /// Prometheus metrics, when the profile asks for them (3.8+).
    #[serde(default)]
    pub metrics: Option<u16>,
    /// The TLS client port (`secureClientPort`), when the profile turns TLS on.
    #[serde(default)]
    pub secure: Option<u16>,
}

impl Ports {
    /// The ports of every tutorial, image and chart: 2181, 2888, 3888, AdminServer 8080, metrics 7000.
    pub fn standard(admin: bool, metrics: bool) -> Ports {
        Ports {
            client: 2181,
            quorum: 2888,
            election: 3888,
            admin: admin.then_some(8080),
            metrics: metrics.then_some(7000),
            // Certificates are made for this machine: exports carry no TLS.
            secure: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub id: u32,
    pub role: Role,
    /// Where every port of this node listens: 127.0.0.1, or its own loopback address (`--addresses loopback`).
    #[serde(default = "localhost")]
    pub address: Ipv4Addr,
    pub ports: Ports,
}

pub(crate) fn localhost() -> Ipv4Addr {
    Ipv4Addr::LOCALHOST
}

impl NodeSpec {
    /// Where clients (and four-letter words) reach this node.
    pub fn client_addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.address, self.ports.client)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSpec {
    pub format: u32,
    pub name: String,
    /// Random, made when the cluster is: every node's JVM carries `-Dzkdev.node=<uid>/<id>`, which is how
    /// zkdev knows its own processes whatever path they were started with. Empty for clusters made before.
    #[serde(default)]
    pub uid: String,
    /// Where the spec came from (`built-in profile `fast``, a file path).
    pub profile: String,
    pub settings: Settings,
    pub dist: Dist,
    pub nodes: Vec<NodeSpec>,
    /// Proxied links (`up --net`): every peer link and client port goes through the supervisor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<NetSpec>,
    /// Dynamic reconfiguration: the super user's digest (`super:<base64 sha1>`) every node's JVM is given, so
    /// zkdev's own client may `reconfig` without `skipACL`. The password is in the cluster directory (0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub super_digest: Option<String>,
    /// The port slot `up --slot` gave the cluster (its ports are that slot's block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<crate::model::slot::Slot>,
    /// The process the cluster belongs to (`up --owner PID`): when it ends, the supervisor stops the nodes and
    /// removes the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

/// A cluster's owner process, identified by pid and start time (clock ticks after boot), so a reused pid is
/// not taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: i32,
    pub start_ticks: u64,
}

/// Node `id` with `role`, its ports from the profile's scheme (base + id + offset, or the standard ports on
/// its own loopback address): the same for a node made by `up` and one added later (`zkdev add`).
fn node_spec(settings: &Settings, admin_on: bool, id: u32, role: Role) -> Result<NodeSpec> {
    let port = |what: &str, base: u16| -> Result<u16> {
        let p = u32::from(base) + id + u32::from(settings.offset);
        u16::try_from(p).ok().filter(|p| *p >= 1024).ok_or_else(|| {
            Error::usage(format!(
                "node {id}'s {what} port would be {p} ({what} base {base} + id {id} + offset {}): ports must be \
                 1024 to 65535; choose a smaller --port-offset or port base",
                settings.offset
            ))
        })
    };
    if settings.addresses == AddressMode::Loopback {
        let base = settings.address_base;
        let address = Ipv4Addr::from(u32::from(base) + id);
        if base.octets()[0] != 127 || address.octets()[0] != 127 || address.octets()[3] == 255 {
            return Err(Error::usage(format!(
                "--addresses loopback with base {base}: node {id} would be {address}, outside 127.0.0.0/8 \
                 (or a broadcast-like .255); pick a base such as 127.0.0.10 (nodes 127.0.0.11, ...)"
            )));
        }
        return Ok(NodeSpec {
            id,
            role,
            address,
            ports: Ports::standard(admin_on, settings.metrics),
        });
    }
    let ports = Ports {
        client: port("client", settings.client_base)?,
        quorum: port("quorum", settings.quorum_base)?,
        election: port("election", settings.election_base)?,
        admin: if admin_on {
            Some(port("admin", settings.admin_base)?)
        } else {
            None
        },
        metrics: if settings.metrics {
            Some(port("metrics", settings.metrics_base)?)
        } else {
            None
        },
        secure: if settings.tls {
            Some(port("secure client", settings.secure_client_base)?)
        } else {
            None
        },
    };
    settings.extra_ports(id).map_err(Error::usage)?;
    Ok(NodeSpec {
        id,
        role,
        address: Ipv4Addr::LOCALHOST,
        ports,
    })
}

/// Where the proxies of a `--net` cluster listen. Node i's client proxy: `port_base + (i - 1)`, on
/// 127.0.0.1. The peer links have no ports of their own: the server lines name hosts (`zkdev-node-N`, the
/// real ports) that each node's JVM resolves through its own hosts file, to 127.0.0.1 for itself and, for
/// peer b, to the address of the link from it, 127.1.a.b (a = the dialling node), where the proxy of that
/// link listens on b's real port numbers. So every node has the same server lines, as a `reconfig` commits
/// them (ZooKeeper gives every member one address per server, and a node listens where its own line says),
/// and the address a connection arrives at says who dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetSpec {
    pub port_base: u16,
}

/// The host name a `--net` cluster's server lines give node `id`.
pub fn link_host(id: u32) -> String {
    format!("zkdev-node-{id}")
}

/// Where the proxy of the link from `dialler` to `target` listens (on the target's real quorum and election
/// port numbers): 127.1.dialler.target, a loopback address of its own.
pub fn link_address(dialler: u32, target: u32) -> Ipv4Addr {
    Ipv4Addr::new(127, 1, dialler as u8, target as u8)
}

/// Is `addr` a link proxy's address (127.1.x.y)?
pub fn is_link_address(addr: Ipv4Addr) -> bool {
    addr.octets()[..2] == [127, 1]
}

/// Node `id`'s hosts file on a `--net` cluster (its JVM resolves names only from it): itself at
/// 127.0.0.1, every other possible node (1..=255, so a node added later resolves too) at its link address.
pub fn hosts_file(id: u32) -> String {
    let mut out = String::from(
        "# zkdev: how this node reaches its peers (through the link proxies); see `zkdev links`.\n\
         127.0.0.1 localhost\n",
    );
    for peer in 1..=255u32 {
        let addr = if peer == id {
            Ipv4Addr::LOCALHOST
        } else {
            link_address(id, peer)
        };
        out.push_str(&format!("{addr} {}\n", link_host(peer)));
    }
    out
}

/// The default proxy block: 20000 + the cluster's port offset (clear of the default node ports, below
/// the ephemeral range).
pub const DEFAULT_NET_PORT_BASE: u32 = 20000;

/// A cluster name becomes a directory name: keep it to a safe alphabet.
pub fn validate_cluster_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "invalid --cluster `{name}`: a cluster name is 1 to 64 characters of letters, digits, `-`, `_` and `.`, \
             starting with a letter or digit (it becomes a directory name)"
        )))
    }
}

impl ClusterSpec {
    /// Build and validate a spec. `voters` + `observers` nodes, ids 1..=N then N+1..=N+M.
    pub fn build(
        name: &str,
        profile: &str,
        settings: Settings,
        dist: Dist,
        voters: u32,
        observers: u32,
    ) -> Result<ClusterSpec> {
        validate_cluster_name(name)?;
        if voters == 0 {
            return Err(Error::usage(
                "--nodes 0: an ensemble needs at least one voting participant (observers alone cannot elect a leader); \
                 pass --nodes 1 or more",
            ));
        }
        if voters + observers > 255 {
            return Err(Error::usage(format!(
                "--nodes {voters} --observers {observers}: at most 255 nodes in all (myid is 1 to 255)"
            )));
        }
        let admin_on = settings.admin_server && dist.admin_server_available;
        if settings.metrics {
            let v = dist.version_tuple();
            if v < (3, 8, 0) {
                return Err(Error::usage(format!(
                    "the profile asks for metrics, but ZooKeeper {} cannot bind its Prometheus port to 127.0.0.1 \
                     (metricsProvider.httpHost exists from 3.8) and would listen on every interface; use 3.8 or \
                     newer, or set `metrics = false`",
                    dist.version
                )));
            }
        }
        let loopback = settings.addresses == AddressMode::Loopback;
        if loopback && settings.offset != 0 {
            return Err(Error::usage(format!(
                "--port-offset {} with --addresses loopback: every node then has its own address and the standard \
                 ports (2181, 2888, 3888, 8080); a second such cluster takes another address base \
                 (--address-base, or `base` in the profile's [addresses]), not a port offset",
                settings.offset
            )));
        }
        let mut nodes = Vec::new();
        for id in 1..=voters + observers {
            let role = if id <= voters {
                Role::Participant
            } else {
                Role::Observer
            };
            nodes.push(node_spec(&settings, admin_on, id, role)?);
        }
        let net = if settings.proxied {
            let n = voters + observers;
            let base = settings
                .net_port_base
                .map(u32::from)
                .unwrap_or(DEFAULT_NET_PORT_BASE + u32::from(settings.offset));
            let last = base + n - 1;
            if base < 1024 || last > 65535 {
                return Err(Error::usage(format!(
                    "the proxies of {n} nodes would need ports {base} to {last}: ports must be 1024 to 65535; choose \
                     another [network] port_base (--net-port-base) or --port-offset"
                )));
            }
            Some(NetSpec { port_base: base as u16 })
        } else {
            None
        };
        let spec = ClusterSpec {
            format: SPEC_FORMAT,
            name: name.to_string(),
            uid: String::new(),
            profile: profile.to_string(),
            settings,
            dist,
            nodes,
            net,
            super_digest: None,
            slot: None,
            owner: None,
        };
        spec.check_port_clashes()?;
        Ok(spec)
    }

    /// This spec with a new node `id` (ports from the same scheme as every other node's), checked for
    /// clashes: what `zkdev add` persists once ZooKeeper has the node.
    pub fn with_node(&self, id: u32, role: Role) -> Result<ClusterSpec> {
        if self.node(id).is_some() {
            return Err(Error::usage(format!("cluster `{}` already has a node {id}", self.name)));
        }
        if !(1..=255).contains(&id) {
            return Err(Error::usage(format!("node id {id}: ZooKeeper's myid is 1 to 255")));
        }
        if let Some(net) = self.net {
            if u32::from(net.port_base) + id - 1 > 65535 {
                return Err(Error::usage(format!(
                    "node {id}'s client proxy would be port {}: above 65535; this cluster's proxy block starts too \
                     high for such an id",
                    u32::from(net.port_base) + id - 1
                )));
            }
        }
        let admin_on = self.settings.admin_server && self.dist.admin_server_available;
        let mut spec = self.clone();
        spec.nodes.push(node_spec(&self.settings, admin_on, id, role)?);
        spec.nodes.sort_by_key(|n| n.id);
        spec.check_port_clashes()?;
        Ok(spec)
    }

    /// The next free node id (one past the highest).
    pub fn next_id(&self) -> u32 {
        self.nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1
    }

    fn check_port_clashes(&self) -> Result<()> {
        // Keyed by address too: nodes on their own loopback addresses all use the standard ports.
        let mut seen: BTreeMap<(Ipv4Addr, u16), String> = BTreeMap::new();
        // The proxies of a --net cluster listen on 127.0.0.1 too.
        for (p, id, what) in self.proxy_ports() {
            seen.insert((Ipv4Addr::LOCALHOST, p), format!("node {id} {what}"));
        }
        for (p, id, what) in self.all_ports() {
            let label = format!("node {id} {what} port");
            let address = self.node(id).map_or(Ipv4Addr::LOCALHOST, |n| n.address);
            if let Some(other) = seen.insert((address, p), label.clone()) {
                let advice = if what.starts_with('`') || other.contains('`') {
                    "give every node its own value with `{port:BASE}` in [zookeeper.extra] (BASE + id + offset), at \
                     least as many apart from the other bases as there are nodes"
                        .to_string()
                } else {
                    format!(
                        "spread client/quorum/election/admin/secure client bases at least {} apart",
                        self.nodes.len() + 1
                    )
                };
                return Err(Error::usage(format!(
                    "port {p} would be both {other} and {label}: the port bases are too close for {}; {advice}",
                    crate::model::words::count(self.nodes.len(), "node"),
                )));
            }
        }
        Ok(())
    }

    /// A cluster uid from 64 random bits (16 hex digits); the caller draws them (`os::random::u64`).
    pub fn uid_from(random: u64) -> String {
        format!("{random:016x}")
    }

    pub fn ids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    pub fn voters(&self) -> impl Iterator<Item = &NodeSpec> {
        self.nodes.iter().filter(|n| n.role == Role::Participant)
    }

    pub fn voter_count(&self) -> usize {
        self.voters().count()
    }

    pub fn observer_count(&self) -> usize {
        self.nodes.len() - self.voter_count()
    }

    /// The `up` flags that make this cluster again as it is (shape, profile, offset or addresses, the
    /// installation, TLS, proxied links, reconfiguration, disk faults), plus `add` where it lacks them:
    /// `--nodes 3 --observers 1 --profile fast --port-offset 11000 --disk-faults`. Advice built from it keeps
    /// what the user made; flags the cluster already has are not repeated.
    pub fn up_flags(&self, add: &[&str]) -> String {
        self.up_flags_with(self.voter_count(), add)
    }

    /// `up_flags` with another voter count.
    pub fn up_flags_with(&self, voters: usize, add: &[&str]) -> String {
        let s = &self.settings;
        let mut f = vec![format!("--nodes {voters}")];
        if self.observer_count() > 0 {
            f.push(format!("--observers {}", self.observer_count()));
        }
        match self
            .profile
            .strip_prefix("built-in profile `")
            .and_then(|p| p.strip_suffix('`'))
        {
            Some("default") => {}
            Some(name) => f.push(format!("--profile {name}")),
            None if self.profile.is_empty() => {}
            None => f.push(format!("--profile {}", self.profile)),
        }
        if s.addresses == AddressMode::Loopback {
            f.push("--addresses loopback".into());
            if s.address_base != crate::model::profile::DEFAULT_ADDRESS_BASE {
                f.push(format!("--address-base {}", s.address_base));
            }
        } else if s.offset != 0 {
            f.push(format!("--port-offset {}", s.offset));
        }
        if let Some(home) = &s.zk_home {
            f.push(format!("--zk-home {home}"));
        } else if s.version.is_some() {
            f.push(format!("--dist {}", self.dist.version));
        }
        let has = [
            ("--tls", s.tls),
            ("--net", self.net.is_some()),
            ("--reconfig", s.reconfig),
            ("--disk-faults", s.disk_faults),
        ];
        for (flag, on) in has {
            if on || add.contains(&flag) {
                f.push(flag.to_string());
            }
        }
        f.extend(
            add.iter()
                .filter(|a| !has.iter().any(|(flag, _)| flag == *a))
                .map(ToString::to_string),
        );
        f.join(" ")
    }

    /// The command line that replaces this cluster with one made the same way plus `add` (see `up_flags`):
    /// `zkdev down --purge && zkdev up ...`, with `--cluster NAME` unless it is the default cluster.
    pub fn remake_command(&self, add: &[&str]) -> String {
        self.remake_command_with(self.voter_count(), add)
    }

    /// `remake_command` with another voter count.
    pub fn remake_command_with(&self, voters: usize, add: &[&str]) -> String {
        let c = if self.name == "default" {
            String::new()
        } else {
            format!(" --cluster {}", self.name)
        };
        format!(
            "zkdev{c} down --purge && zkdev{c} up {}",
            self.up_flags_with(voters, add)
        )
    }

    /// What to do to get `add` (`--net`, `--disk-faults`, `--tls`, `--reconfig`), which a cluster only gets when
    /// it is made: the command that makes this one again with its shape and settings plus `add`, or, where the
    /// two cannot combine (proxied links with nodes on their own loopback addresses), a second cluster.
    pub fn remake_advice(&self, add: &[&str]) -> String {
        if add.contains(&"--net") && self.settings.addresses == AddressMode::Loopback {
            return format!(
                "proxied links do not combine with --addresses loopback, so make a second cluster on 127.0.0.1: \
                 `zkdev --cluster NAME up --nodes {} {} --port-offset K`",
                self.voter_count(),
                add.join(" ")
            );
        }
        format!(
            "make it again with {} (this removes its data): `{}`",
            add.join(" "),
            self.remake_command(add)
        )
    }

    /// The flags that put a second cluster beside this one without sharing a port: another offset, or,
    /// for nodes on their own loopback addresses (where an offset is refused), another address base.
    pub fn beside_flags(&self) -> &'static str {
        if self.settings.addresses == AddressMode::Loopback {
            "--cluster NAME --addresses loopback --address-base IP (a free base, e.g. 127.0.0.50)"
        } else {
            "--cluster NAME --port-offset K (e.g. 10000)"
        }
    }

    /// Votes needed for a quorum: a strict majority of voters.
    pub fn quorum_needed(&self) -> usize {
        self.voter_count() / 2 + 1
    }

    pub fn node(&self, id: u32) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.id == id)
    }

    pub fn connect_string(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.client_addr().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every port of every node, labelled (`client`, `` `myPlugin.port` `` for one from [zookeeper.extra]), in
    /// node order.
    pub fn all_ports(&self) -> Vec<(u16, u32, String)> {
        let mut v = Vec::new();
        for n in &self.nodes {
            v.push((n.ports.client, n.id, "client".to_string()));
            v.push((n.ports.quorum, n.id, "quorum".to_string()));
            v.push((n.ports.election, n.id, "election".to_string()));
            if let Some(a) = n.ports.admin {
                v.push((a, n.id, "admin".to_string()));
            }
            if let Some(m) = n.ports.metrics {
                v.push((m, n.id, "metrics".to_string()));
            }
            if let Some(s) = n.ports.secure {
                v.push((s, n.id, "secure client".to_string()));
            }
            for (key, port) in self.extra_ports(n.id) {
                v.push((port, n.id, format!("`{key}`")));
            }
        }
        v
    }

    /// The ports node `id` opens because of `[zookeeper.extra]` (checked when the spec was built).
    pub fn extra_ports(&self, id: u32) -> Vec<(String, u16)> {
        self.settings.extra_ports(id).unwrap_or_default()
    }

    /// `127.0.0.1:5181,...`: every node's TLS client port, when TLS is on.
    pub fn secure_connect_string(&self) -> Option<String> {
        let ports: Option<Vec<String>> = self
            .nodes
            .iter()
            .map(|n| n.ports.secure.map(|p| format!("{}:{p}", n.address)))
            .collect();
        ports.filter(|p| !p.is_empty()).map(|p| p.join(","))
    }

    /// The port of node `id`'s client proxy (`--net` clusters).
    pub fn client_proxy(&self, id: u32) -> Option<u16> {
        let net = self.net?;
        Some(net.port_base + (id - 1) as u16)
    }

    /// Every proxy port of the block with the node it leads to and what it is (`(20001, 2, "client proxy")`):
    /// the peer links' proxies listen at addresses of their own (see `NetSpec`).
    pub fn proxy_ports(&self) -> Vec<(u16, u32, String)> {
        let mut v = Vec::new();
        if self.net.is_none() {
            return v;
        }
        for b in self.ids() {
            v.push((self.client_proxy(b).expect("net"), b, "client proxy".to_string()));
        }
        v
    }

    /// Server lines name hosts each node resolves to its link proxies (a `--net` cluster, see `NetSpec`).
    pub fn link_addresses(&self) -> bool {
        self.net.is_some()
    }

    /// The connect string applications should use: through the client proxies on a `--net` cluster.
    pub fn client_connect_string(&self) -> String {
        if self.net.is_none() {
            return self.connect_string();
        }
        self.ids()
            .into_iter()
            .filter_map(|id| self.client_proxy(id))
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// How zkdev's own clients (the workloads of chaos, verify and scenarios) reach the ensemble: as an
    /// application does, through the client proxies on a `--net` cluster, so a `link client` fault reaches
    /// them too; `direct`: the nodes' own client ports, around the proxies.
    pub fn workload_connect_string(&self, direct: bool) -> String {
        if direct {
            self.connect_string()
        } else {
            self.client_connect_string()
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a spec always serialises")
    }

    pub fn from_toml(source: &str, origin: &str) -> Result<ClusterSpec> {
        let spec: ClusterSpec = toml::from_str(source).map_err(|e| {
            Error::failed(format!(
                "{origin} is not a cluster description this zkdev understands ({}); if the cluster is not needed, \
                 remove it with `zkdev down --purge`",
                e.message().trim()
            ))
        })?;
        if spec.format != SPEC_FORMAT {
            return Err(Error::failed(format!(
                "{origin} has format {} but this zkdev reads format {SPEC_FORMAT}",
                spec.format
            )));
        }
        Ok(spec)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::profile;

    pub fn settings(name: &str) -> Settings {
        let (o, p) = profile::resolve(name, &|p| std::fs::read_to_string(p)).unwrap();
        p.settings(&o).unwrap()
    }

    #[test]
    fn remake_advice_keeps_the_clusters_shape_offset_and_flags() {
        let mut st = settings("fast");
        st.offset = 11_000;
        st.tls = true;
        let spec = ClusterSpec::build("ci", "built-in profile `fast`", st, Dist::fixture(), 3, 1).unwrap();
        assert_eq!(
            spec.remake_command(&["--disk-faults"]),
            "zkdev --cluster ci down --purge && zkdev --cluster ci up --nodes 3 --observers 1 --profile fast \
             --port-offset 11000 --tls --disk-faults"
        );
        assert_eq!(
            spec.remake_command_with(5, &["--tls"]),
            "zkdev --cluster ci down --purge && zkdev --cluster ci up --nodes 5 --observers 1 --profile fast \
             --port-offset 11000 --tls"
        );
        // Nodes on their own loopback addresses: no --port-offset (refused there), and --net cannot be added.
        let mut st = settings("default");
        st.addresses = AddressMode::Loopback;
        let lo = ClusterSpec::build("default", "built-in profile `default`", st, Dist::fixture(), 3, 0).unwrap();
        assert_eq!(
            lo.remake_command(&["--reconfig"]),
            "zkdev down --purge && zkdev up --nodes 3 --addresses loopback --reconfig"
        );
        let net = lo.remake_advice(&["--net"]);
        assert!(!net.contains("--addresses loopback --net"), "{net}");
        assert!(
            net.contains("`zkdev --cluster NAME up --nodes 3 --net --port-offset K`"),
            "{net}"
        );
        assert!(lo.beside_flags().contains("--address-base"));
        assert!(!lo.beside_flags().contains("--port-offset"));
    }

    #[test]
    fn ports_follow_the_design_card() {
        let spec = ClusterSpec::build("default", "p", settings("default"), Dist::fixture(), 3, 1).unwrap();
        let n3 = spec.node(3).unwrap();
        assert_eq!(n3.ports.client, 2183);
        assert_eq!(n3.ports.quorum, 2883);
        assert_eq!(n3.ports.election, 3883);
        assert_eq!(n3.ports.admin, Some(8083));
        assert_eq!(spec.node(4).unwrap().role, Role::Observer);
        assert_eq!(spec.quorum_needed(), 2);
        assert_eq!(
            spec.connect_string(),
            "127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183,127.0.0.1:2184"
        );
    }

    #[test]
    fn loopback_addresses_give_every_node_the_standard_ports() {
        let mut s = settings("default");
        s.addresses = AddressMode::Loopback;
        let spec = ClusterSpec::build("x", "p", s.clone(), Dist::fixture(), 3, 1).unwrap();
        for n in &spec.nodes {
            assert_eq!(n.address, Ipv4Addr::new(127, 0, 0, 10 + n.id as u8));
            assert_eq!(n.ports, Ports::standard(true, false));
        }
        assert_eq!(
            spec.connect_string(),
            "127.0.0.11:2181,127.0.0.12:2181,127.0.0.13:2181,127.0.0.14:2181"
        );
        let back = ClusterSpec::from_toml(&spec.to_toml(), "cluster.toml").unwrap();
        assert_eq!(spec, back);

        s.address_base = Ipv4Addr::new(127, 0, 0, 20);
        let spec = ClusterSpec::build("x", "p", s.clone(), Dist::fixture(), 1, 0).unwrap();
        assert_eq!(spec.node(1).unwrap().client_addr().to_string(), "127.0.0.21:2181");

        s.address_base = Ipv4Addr::new(127, 255, 255, 250);
        let err = ClusterSpec::build("x", "p", s.clone(), Dist::fixture(), 5, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("node 5 would be 127.255.255.255"), "{err}");
        s.address_base = Ipv4Addr::new(10, 0, 0, 10);
        assert!(ClusterSpec::build("x", "p", s.clone(), Dist::fixture(), 1, 0).is_err());

        s.address_base = Ipv4Addr::new(127, 0, 0, 10);
        s.offset = 10000;
        let err = ClusterSpec::build("x", "p", s, Dist::fixture(), 1, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("another address base"), "{err}");
    }

    #[test]
    fn a_spec_without_addresses_is_on_localhost() {
        let spec = ClusterSpec::build("x", "p", settings("default"), Dist::fixture(), 1, 0).unwrap();
        let old = spec.to_toml().replace("address = \"127.0.0.1\"\n", "");
        assert!(!old.contains("address ="), "{old}");
        assert_eq!(ClusterSpec::from_toml(&old, "cluster.toml").unwrap(), spec);
    }

    #[test]
    fn offset_moves_every_port() {
        let mut s = settings("default");
        s.offset = 10000;
        let spec = ClusterSpec::build("x", "p", s, Dist::fixture(), 1, 0).unwrap();
        assert_eq!(spec.node(1).unwrap().ports.client, 12181);
        assert_eq!(spec.node(1).unwrap().ports.admin, Some(18081));
    }

    #[test]
    fn offset_past_65535_names_node_and_port() {
        let mut s = settings("default");
        s.offset = 60000;
        let err = ClusterSpec::build("x", "p", s, Dist::fixture(), 3, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("node 1's admin port would be 68081"), "{err}");
    }

    #[test]
    fn clashing_bases_are_refused() {
        let mut s = settings("default");
        s.quorum_base = 2181;
        let err = ClusterSpec::build("x", "p", s, Dist::fixture(), 3, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("port 2182 would be both node 1 quorum port and node 2 client port"),
            "{err}"
        );
    }

    #[test]
    fn zero_voters_is_refused() {
        let err = ClusterSpec::build("x", "p", settings("default"), Dist::fixture(), 0, 2).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--nodes 0"));
    }

    #[test]
    fn unsafe_cluster_names_are_refused() {
        for bad in ["", "..", "a/b", "../x", ".hidden", "a b", "é"] {
            assert!(validate_cluster_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["default", "ci-1", "a.b_c"] {
            validate_cluster_name(good).unwrap();
        }
    }

    #[test]
    fn the_block_holds_the_client_proxies_and_each_link_has_an_address() {
        let mut s = settings("fast");
        s.proxied = true;
        s.net_port_base = Some(20000);
        let spec = ClusterSpec::build("x", "p", s, Dist::fixture(), 3, 0).unwrap();
        assert_eq!(spec.client_proxy(1), Some(20000));
        assert_eq!(spec.client_proxy(3), Some(20002));
        let ports: Vec<u16> = spec.proxy_ports().iter().map(|p| p.0).collect();
        assert_eq!(ports, [20000, 20001, 20002]);
        assert_eq!(link_address(1, 2), Ipv4Addr::new(127, 1, 1, 2));
        assert!(is_link_address(link_address(255, 3)) && !is_link_address(Ipv4Addr::LOCALHOST));
        // A node added later resolves from the file written before it came: every id is in it.
        let hosts = hosts_file(3);
        assert!(hosts.contains("\n127.0.0.1 zkdev-node-3\n"), "{hosts}");
        assert!(hosts.contains("\n127.1.3.1 zkdev-node-1\n"), "{hosts}");
        assert_eq!(hosts.lines().filter(|l| l.contains("zkdev-node-")).count(), 255);
        // The block is one port per node, and a node id beyond the top of the port range is refused.
        let mut s = settings("fast");
        s.proxied = true;
        s.net_port_base = Some(65534);
        let high = ClusterSpec::build("x", "p", s, Dist::fixture(), 2, 0).unwrap();
        assert!(high
            .with_node(3, Role::Participant)
            .unwrap_err()
            .to_string()
            .contains("above 65535"));
        assert_eq!(
            spec.client_connect_string(),
            "127.0.0.1:20000,127.0.0.1:20001,127.0.0.1:20002"
        );
        let back = ClusterSpec::from_toml(&spec.to_toml(), "cluster.toml").unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn spec_round_trips_through_toml() {
        let spec = ClusterSpec::build("default", "p", settings("fast"), Dist::fixture(), 3, 1).unwrap();
        let back = ClusterSpec::from_toml(&spec.to_toml(), "cluster.toml").unwrap();
        assert_eq!(spec, back);
    }
}
