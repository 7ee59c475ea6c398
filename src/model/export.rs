//! The same ensemble for more than one machine: Kubernetes manifests, a Compose file, per-host bundles.
//! Pure: a spec in, (relative path, contents) out. zoo.cfg comes from the same template `up` uses; only the
//! place differs: host names instead of 127.0.0.1, the standard ports on every node (2181, 2888, 3888, 8080,
//! 7000 for metrics: each node has its own address there, as in every tutorial, image and chart), whatever
//! the local layout was, and no loopback binding.

use minijinja::{context, Environment};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::render::{self, Place, Server};
use crate::model::spec::{ClusterSpec, Ports, Role};

const K8S: &str = include_str!("../../templates/k8s.yaml.j2");
const COMPOSE: &str = include_str!("../../templates/compose.yaml.j2");
const HOSTS_START: &str = include_str!("../../templates/hosts-start.sh.j2");
const HOSTS_README: &str = include_str!("../../templates/hosts-README.md.j2");

pub type Files = Vec<(String, String)>;

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    for (name, src) in [
        ("k8s", K8S),
        ("compose", COMPOSE),
        ("start", HOSTS_START),
        ("readme", HOSTS_README),
    ] {
        env.add_template(name, src).expect("template parses");
    }
    env
}

fn render_err(e: minijinja::Error) -> Error {
    Error::failed(format!("internal template error: {e:#}"))
}

/// The ports every node uses on its own host: the standard ones, whatever the local layout was.
pub fn host_ports(spec: &ClusterSpec) -> Ports {
    let s = &spec.settings;
    Ports::standard(s.admin_server, s.metrics)
}

/// JVM settings as one SERVER_JVMFLAGS string (nothing machine-local like the CDS archive).
pub fn jvm_flags(spec: &ClusterSpec) -> String {
    render::jvm_settings(&spec.settings).join(" ")
}

fn place(spec: &ClusterSpec, data_dir: &str, host_of: impl Fn(u32, Role) -> String) -> Place {
    let ports = host_ports(spec);
    Place {
        bind: None,
        managed: false,
        data_dir: data_dir.to_string(),
        ports,
        servers: Server::list(spec, |n| (host_of(n.id, n.role), ports)),
        tls: None,
    }
}

#[derive(Serialize)]
struct Set {
    name: String,
    role: &'static str,
    replicas: usize,
    first_id: usize,
    cfg_key: &'static str,
}

/// A Kubernetes name from the cluster name: lowercase, `-` for anything else.
fn k8s_name(cluster: &str) -> String {
    let n: String = cluster
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("zk-{}", n.trim_matches('-'))
}

pub fn k8s(spec: &ClusterSpec, namespace: &str) -> Result<Files> {
    let name = k8s_name(&spec.name);
    let voters = spec.voter_count();
    let observers = spec.observer_count();
    let host = |id: u32, role: Role| match role {
        Role::Participant => format!("{name}-{}.{name}-hs.{namespace}.svc.cluster.local", id - 1),
        Role::Observer => format!(
            "{name}-obs-{}.{name}-hs.{namespace}.svc.cluster.local",
            id as usize - 1 - voters
        ),
    };
    let pl = place(spec, "/data", host);
    let participant_cfg = render::zoo_cfg(spec, &pl, None, Role::Participant)?;
    let observer_cfg = render::zoo_cfg(spec, &pl, None, Role::Observer)?;
    let mut sets = vec![Set {
        name: name.clone(),
        role: "participant",
        replicas: voters,
        first_id: 1,
        cfg_key: "zoo.cfg",
    }];
    if observers > 0 {
        sets.push(Set {
            name: format!("{name}-obs"),
            role: "observer",
            replicas: observers,
            first_id: voters + 1,
            cfg_key: "zoo-observer.cfg",
        });
    }
    // The heap plus room for metaspace, code cache, threads and buffers.
    let memory = match spec.settings.heap_max_mb {
        Some(mb) => format!("{}Mi", mb + 96),
        None => "1Gi".to_string(),
    };
    let text = env()
        .get_template("k8s")
        .and_then(|t| {
            t.render(context! {
                cluster => spec.name, profile => spec.profile, version => spec.dist.version, name => name,
                namespace => namespace, voters => voters, observers => observers, quorum => spec.quorum_needed(),
                ports => pl.ports, participant_cfg => participant_cfg.trim_end(), observer_cfg => observer_cfg.trim_end(),
                sets => sets, jvmflags => jvm_flags(spec), memory => memory,
            })
        })
        .map_err(render_err)?;
    Ok(vec![("k8s.yaml".into(), text)])
}

/// zoo.cfg keys the official image's variables do not cover, as `key=value` for ZOO_CFG_EXTRA.
fn cfg_extra(spec: &ClusterSpec, ports: &Ports) -> Vec<String> {
    let s = &spec.settings;
    let mut v = Vec::new();
    let mut push = |k: &str, val: Option<String>| {
        if let Some(val) = val {
            v.push(format!("{k}={val}"));
        }
    };
    push("minSessionTimeout", s.min_session_timeout.map(|x| x.to_string()));
    push("maxSessionTimeout", s.max_session_timeout.map(|x| x.to_string()));
    push("preAllocSize", s.pre_alloc_size.map(|x| x.to_string()));
    push("snapCount", s.snap_count.map(|x| x.to_string()));
    push(
        "forceSync",
        s.force_sync.map(|f| if f { "yes".into() } else { "no".into() }),
    );
    if let Some(m) = ports.metrics {
        push(
            "metricsProvider.className",
            Some("org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider".into()),
        );
        push("metricsProvider.httpPort", Some(m.to_string()));
    }
    if let Some(a) = ports.admin {
        push("admin.serverPort", Some(a.to_string()));
    }
    for (k, val) in &s.extra {
        v.push(format!("{k}={val}"));
    }
    v
}

#[derive(Serialize)]
struct ComposeNode {
    id: u32,
    role: &'static str,
    host_port: u16,
}

pub fn compose(spec: &ClusterSpec) -> Result<Files> {
    let ports = host_ports(spec);
    let v35 = spec.dist.version_tuple() >= (3, 5, 0);
    let zoo_servers = spec
        .nodes
        .iter()
        .map(|n| {
            let obs = if n.role == Role::Observer { ":observer" } else { "" };
            let client = if v35 {
                format!(";{}", ports.client)
            } else {
                String::new()
            };
            format!(
                "server.{}=zk{}:{}:{}{obs}{client}",
                n.id, n.id, ports.quorum, ports.election
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    // Published on this machine as the official image's Compose example does (2181, 2182, ... for zk1,
    // zk2, ...), on 127.0.0.1 only.
    let nodes: Vec<ComposeNode> = spec
        .nodes
        .iter()
        .map(|n| ComposeNode {
            id: n.id,
            role: n.role.as_str(),
            host_port: u16::try_from(2180 + n.id).unwrap_or(u16::MAX),
        })
        .collect();
    let connect = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.host_port))
        .collect::<Vec<_>>()
        .join(",");
    let text = env()
        .get_template("compose")
        .and_then(|t| {
            t.render(context! {
                cluster => spec.name, profile => spec.profile, version => spec.dist.version,
                name => k8s_name(&spec.name), voters => spec.voter_count(), observers => spec.observer_count(),
                connect => connect, nodes => nodes, zoo_servers => zoo_servers, ports => ports,
                s => spec.settings, v35 => v35, cfg_extra => cfg_extra(spec, &ports), jvmflags => jvm_flags(spec),
            })
        })
        .map_err(render_err)?;
    Ok(vec![("compose.yaml".into(), text)])
}

#[derive(Serialize)]
struct HostNode {
    id: u32,
    role: &'static str,
    host: String,
}

/// A host name, as it will stand in zoo.cfg and as a directory name.
fn validate_host(h: &str) -> Result<()> {
    let ok = !h.is_empty()
        && h.len() <= 253
        && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !h.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "`{h}` is not a host name (letters, digits, `-` and `.`)"
        )))
    }
}

pub fn hosts(spec: &ClusterSpec, hosts: &[String]) -> Result<Files> {
    if hosts.len() != spec.nodes.len() {
        return Err(Error::usage(format!(
            "{} given for {} ({} + {}): name one host per node, voters first",
            crate::model::words::count(hosts.len(), "host"),
            crate::model::words::count(spec.nodes.len(), "node"),
            crate::model::words::count(spec.voter_count(), "voter"),
            crate::model::words::count(spec.observer_count(), "observer")
        )));
    }
    for h in hosts {
        validate_host(h)?;
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = hosts.iter().find(|h| !seen.insert(h.as_str())) {
        return Err(Error::usage(format!("host `{dup}` is named twice: one node per host")));
    }
    let data_dir = format!("/var/lib/zookeeper/{}", spec.name);
    let pl = place(spec, &data_dir, |id, _| hosts[id as usize - 1].clone());
    let env = env();
    let mut files = Vec::new();
    let nodes: Vec<HostNode> = spec
        .nodes
        .iter()
        .map(|n| HostNode {
            id: n.id,
            role: n.role.as_str(),
            host: hosts[n.id as usize - 1].clone(),
        })
        .collect();
    for n in &spec.nodes {
        let host = &hosts[n.id as usize - 1];
        // A host given as an IP address is that machine's own address: every port of the node binds to it (as
        // the server line's address does for the peer ports anyway), so that several nodes can even share one
        // machine on its loopback addresses. A host name may resolve elsewhere (NAT): listen everywhere.
        let own = Place {
            bind: host.parse::<std::net::IpAddr>().is_ok().then(|| host.clone()),
            ..pl.clone()
        };
        files.push((
            format!("{host}/conf/zoo.cfg"),
            render::zoo_cfg(spec, &own, Some(n.id), n.role)?,
        ));
        files.push((format!("{host}/data/myid"), format!("{}\n", n.id)));
        let start = env
            .get_template("start")
            .and_then(|t| {
                t.render(
                    context! { id => n.id, cluster => spec.name, host => host, version => spec.dist.version,
                    data_dir => data_dir, jvmflags => jvm_flags(spec) },
                )
            })
            .map_err(render_err)?;
        files.push((format!("{host}/start.sh"), start));
    }
    let connect = hosts
        .iter()
        .map(|h| format!("{h}:{}", pl.ports.client))
        .collect::<Vec<_>>()
        .join(",");
    let readme = env
        .get_template("readme")
        .and_then(|t| {
            t.render(context! { cluster => spec.name, profile => spec.profile, hosts => hosts, nodes => nodes,
            voters => spec.voter_count(), observers => spec.observer_count(), version => spec.dist.version,
            s => spec.settings, ports => pl.ports, connect => connect, data_dir => data_dir, quorum => spec.quorum_needed(),
            bound => hosts.iter().all(|h| h.parse::<std::net::IpAddr>().is_ok()) })
        })
        .map_err(render_err)?;
    files.push(("README.md".into(), readme));
    Ok(files)
}
