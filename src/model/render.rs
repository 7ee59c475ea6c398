//! Spec -> the files and the command line of every node. Pure: no file is written here (see
//! `os::zoo_cfg::write_files`), so `zkdev render` and the snapshot tests see exactly what `up` uses.

use std::path::{Path, PathBuf};

use minijinja::{context, Environment};

use crate::error::{Error, Result};
use crate::model::dist::{LogConfig, Plan};
use crate::model::layout::{ClusterPaths, TlsFiles};
use crate::model::spec::{ClusterSpec, NodeSpec, Role};

const ZOO_CFG: &str = include_str!("../../templates/zoo.cfg.j2");
const LOG4J: &str = include_str!("../../templates/log4j.properties.j2");
const LOGBACK: &str = include_str!("../../templates/logback.xml.j2");

/// Everything one node needs on disk, and how to launch it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFiles {
    pub id: u32,
    /// (absolute path, contents)
    pub files: Vec<(PathBuf, String)>,
    /// java and its arguments; the zoo.cfg path at the end doubles as the identity marker.
    pub argv: Vec<String>,
}

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("zoo.cfg", ZOO_CFG).expect("template parses");
    env.add_template("log4j", LOG4J).expect("template parses");
    env.add_template("logback", LOGBACK).expect("template parses");
    env
}

pub fn render(spec: &ClusterSpec, paths: &ClusterPaths, cds: &Plan) -> Result<Vec<NodeFiles>> {
    let env = env();
    spec.nodes
        .iter()
        .map(|n| render_node(&env, spec, paths, n, cds))
        .collect()
}

fn render_node(
    env: &Environment,
    spec: &ClusterSpec,
    paths: &ClusterPaths,
    node: &NodeSpec,
    cds: &Plan,
) -> Result<NodeFiles> {
    let data_dir = paths.data_dir(node.id);
    let log_file = paths.log_file(node.id);
    let zoo_cfg_path = paths.zoo_cfg(node.id);
    let render_err = |e: minijinja::Error| Error::failed(format!("internal template error: {e:#}"));

    let tls = TlsFiles::of(paths);
    let place = Place {
        bind: Some(node.address.to_string()),
        managed: true,
        data_dir: data_dir.display().to_string(),
        ports: node.ports,
        servers: Server::list(spec, |n| {
            // On a --net cluster the same line on every node (as a reconfig commits it), naming a host each
            // node resolves its own way: to the proxy of its link to that peer (see `NetSpec`).
            if spec.net.is_some() {
                return (crate::model::spec::link_host(n.id), n.ports);
            }
            (n.address.to_string(), n.ports)
        }),
        tls: spec.settings.tls.then(|| TlsPlace {
            key_store: tls.node(node.id).display().to_string(),
            trust_store: tls.ca().display().to_string(),
        }),
    };
    let zoo_cfg = zoo_cfg_with(env, spec, &place, Some(node.id), node.role)?;

    let (log_name, log_template) = match spec.dist.log_config {
        LogConfig::Log4j => ("log4j.properties", "log4j"),
        LogConfig::Logback => ("logback.xml", "logback"),
    };
    let log_path = paths.conf_dir(node.id).join(log_name);
    let log_cfg = env
        .get_template(log_template)
        .and_then(|t| t.render(context! { id => node.id, log_file => log_file.display().to_string() }))
        .map_err(render_err)?;

    let argv = command(spec, node, paths, &log_path, cds);
    let mut files = vec![
        (zoo_cfg_path, zoo_cfg),
        (log_path, log_cfg),
        (data_dir.join("myid"), format!("{}\n", node.id)),
    ];
    if spec.link_addresses() {
        files.push((hosts_path(paths, node.id), crate::model::spec::hosts_file(node.id)));
    }
    Ok(NodeFiles {
        id: node.id,
        files,
        argv,
    })
}

/// Where a zoo.cfg is for: this machine (`bind` 127.0.0.1, per-node ports) or other hosts (`export`).
#[derive(Debug, Clone)]
pub struct Place {
    /// Address for clientPortAddress / admin.serverAddress / metricsProvider.httpHost; None: all interfaces.
    pub bind: Option<String>,
    /// Written by `zkdev up` (and rewritten at every `up`), as opposed to an export.
    pub managed: bool,
    pub data_dir: String,
    /// This node's ports.
    pub ports: crate::model::spec::Ports,
    pub servers: Vec<Server>,
    /// This node's TLS stores, when the cluster has TLS (exports carry none).
    pub tls: Option<TlsPlace>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TlsPlace {
    pub key_store: String,
    pub trust_store: String,
}

/// The four-letter words zkdev asks itself (srvr is always allowed).
pub const ZKDEV_WORDS: &[&str] = &["srvr", "mntr", "ruok", "conf", "isro", "stat", "cons", "envi", "dump"];

/// `4lw.commands.whitelist`: zkdev's words, then the profile's (`*` alone when it asks for every word).
pub fn whitelist(s: &crate::model::profile::Settings) -> String {
    if s.four_letter_words.iter().any(|w| w == "*") {
        return "*".into();
    }
    let mut words: Vec<&str> = ZKDEV_WORDS.to_vec();
    for w in &s.four_letter_words {
        if !words.contains(&w.as_str()) {
            words.push(w);
        }
    }
    words.join(",")
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Server {
    pub id: u32,
    pub role: Role,
    pub host: String,
    pub quorum: u16,
    pub election: u16,
}

impl Server {
    /// Every node's server line: `place` gives a node's host and the ports it listens on there.
    pub fn list(spec: &ClusterSpec, place: impl Fn(&NodeSpec) -> (String, crate::model::spec::Ports)) -> Vec<Server> {
        spec.nodes
            .iter()
            .map(|n| {
                let (host, ports) = place(n);
                Server {
                    id: n.id,
                    role: n.role,
                    host,
                    quorum: ports.quorum,
                    election: ports.election,
                }
            })
            .collect()
    }
}

/// One zoo.cfg from the one template, for a node (`id`) or for every node of a role (`None`).
pub fn zoo_cfg(spec: &ClusterSpec, place: &Place, id: Option<u32>, role: Role) -> Result<String> {
    zoo_cfg_with(&env(), spec, place, id, role)
}

fn zoo_cfg_with(env: &Environment, spec: &ClusterSpec, place: &Place, id: Option<u32>, role: Role) -> Result<String> {
    let (major, minor, _) = spec.dist.version_tuple();
    env.get_template("zoo.cfg")
        .and_then(|t| {
            t.render(context! {
                cluster => spec.name,
                id => id,
                role => role.as_str(),
                observer => role == Role::Observer,
                version => spec.dist.version,
                s => spec.settings,
                ports => place.ports,
                bind => place.bind,
                managed => place.managed,
                data_dir => place.data_dir,
                servers => place.servers,
                tls => place.tls,
                words => whitelist(&spec.settings),
                extra => {
                    let mut extra = match id {
                        Some(id) => spec.settings.extra_for(id),
                        None => spec.settings.extra.clone(),
                    };
                    if spec.settings.reconfig {
                        extra.entry("reconfigEnabled".into()).or_insert_with(|| "true".into());
                    }
                    extra
                },
                v35 => (major, minor) >= (3, 5),
            })
        })
        .map_err(|e| Error::failed(format!("internal template error: {e:#}")))
}

/// The profile's JVM settings: heap, flags, system properties. The same list goes to every export.
pub fn jvm_settings(s: &crate::model::profile::Settings) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(mb) = s.heap_max_mb {
        v.push(format!("-Xmx{mb}m"));
    }
    if let Some(mb) = s.heap_min_mb {
        v.push(format!("-Xms{mb}m"));
    }
    v.extend(s.jvm_flags.iter().cloned());
    v.extend(s.jvm_properties.iter().map(|(k, val)| format!("-D{k}={val}")));
    v
}

/// `java <props> <jvm flags> -cp <jars> QuorumPeerMain <zoo.cfg>`. The conf directory stays off the classpath
/// (a class-data-sharing archive refuses non-empty directories on it); the log configuration is named by a
/// system property instead.
fn command(spec: &ClusterSpec, node: &NodeSpec, paths: &ClusterPaths, log_cfg: &Path, cds: &Plan) -> Vec<String> {
    let s = &spec.settings;
    let mut argv = vec![spec.dist.java.display().to_string()];
    if !spec.uid.is_empty() {
        argv.push(token_arg(&spec.uid, node.id));
    }
    argv.push(format!("-Dzookeeper.log.dir={}", paths.logs_dir(node.id).display()));
    argv.push("-Dzookeeper.log.file=zookeeper.log".into());
    argv.push(match spec.dist.log_config {
        LogConfig::Log4j => format!("-Dlog4j.configuration=file:{}", log_cfg.display()),
        LogConfig::Logback => format!("-Dlogback.configurationFile={}", log_cfg.display()),
    });
    // A JVM that runs out of heap should die, not limp: zkdev then reports it crashed.
    argv.push("-XX:+ExitOnOutOfMemoryError".into());
    if node.ports.admin.is_none() {
        // Belt and braces: a server newer than its zoo.cfg says (or a 3.4 config) must not start an
        // AdminServer on 0.0.0.0:8080. zoo.cfg's own admin.enableServer, where written, wins anyway.
        argv.push("-Dzookeeper.admin.enableServer=false".into());
    }
    argv.extend(jvm_settings(s));
    if spec.link_addresses() {
        // Names resolve from this node's own file only: its peers' names lead to the link proxies.
        argv.push(format!("-Djdk.net.hosts.file={}", hosts_path(paths, node.id).display()));
    }
    if let Some(digest) = &spec.super_digest {
        // The super user may `reconfig` (zkdev add/remove/promote/demote) without skipACL.
        argv.push(format!("-Dzookeeper.DigestAuthenticationProvider.superDigest={digest}"));
    }
    if let Some(archive) = &cds.use_archive {
        argv.push(format!("-XX:SharedArchiveFile={}", archive.display()));
    }
    if let Some((_, partial)) = cds.record.as_ref().filter(|(id, _)| *id == node.id) {
        argv.push(format!("-XX:ArchiveClassesAtExit={}", partial.display()));
        // Recording lists every class it skips as a warning: noise in the node's log.
        argv.push("-Xlog:cds*=off".into());
    }
    argv.push("-cp".into());
    argv.push(classpath(spec));
    argv.push("org.apache.zookeeper.server.quorum.QuorumPeerMain".into());
    argv.push(paths.zoo_cfg(node.id).display().to_string());
    argv
}

/// Node `id`'s hosts file (a `--net` cluster, see `NetSpec`).
fn hosts_path(paths: &ClusterPaths, id: u32) -> std::path::PathBuf {
    paths.conf_dir(id).join("hosts")
}

/// The installation's classpath, then the profile's `classpath_extra`.
pub fn classpath(spec: &ClusterSpec) -> String {
    let mut cp = spec.dist.classpath_string();
    for extra in &spec.settings.classpath_extra {
        cp.push(':');
        cp.push_str(extra);
    }
    cp
}

/// The dynamic configuration file a zoo.cfg names (`dynamicConfigFile=`), as ZooKeeper writes it when
/// `reconfigEnabled=true` takes the server lines out of zoo.cfg.
pub fn dynamic_config_file(zoo_cfg: &str) -> Option<&str> {
    zoo_cfg.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "dynamicConfigFile")
            .then(|| v.trim())
            .filter(|v| !v.is_empty())
    })
}

const DYNAMIC_NOTE: &str =
    "# The servers are ZooKeeper's (reconfigEnabled): it keeps the membership it committed in this file.";

/// zkdev's zoo.cfg for a node whose membership ZooKeeper keeps (reconfigEnabled): the rendered settings
/// without the server lines, pointing at ZooKeeper's dynamic file, so a restart keeps the membership
/// ZooKeeper committed instead of going back to the profile's.
pub fn with_dynamic_file(rendered: &str, dynamic: &str) -> String {
    let mut out: String = rendered
        .lines()
        .filter(|l| !l.trim_start().starts_with("server.") && dynamic_config_file(l).is_none() && *l != DYNAMIC_NOTE)
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(DYNAMIC_NOTE);
    out.push('\n');
    out.push_str(&format!("dynamicConfigFile={dynamic}\n"));
    out
}

/// Does a membership (a dynamic file's text, or a zoo.cfg) list server `id`?
pub fn lists_server(membership: &str, id: u32) -> bool {
    let prefix = format!("server.{id}=");
    membership.lines().any(|l| l.trim_start().starts_with(&prefix))
}

const JOINER_NOTE: &str =
    "# Not in ZooKeeper's membership (removed by a reconfig): the members it committed, plus this node \
     as a joiner (a non-voting follower until a reconfig adds it).";

/// zkdev's zoo.cfg for node `id` that a reconfig removed from `members` (a dynamic file's text): started
/// with ZooKeeper's own dynamic file it would exit ("My id N not in the peer list"), so it starts as
/// ZooKeeper's joiners do, with the current members plus itself, and follows without a vote.
pub fn as_joiner(rendered: &str, members: &str, id: u32) -> String {
    let own = format!("server.{id}=");
    let mut out: String = rendered
        .lines()
        .filter(|l| {
            !l.trim_start().starts_with("server.")
                && dynamic_config_file(l).is_none()
                && *l != DYNAMIC_NOTE
                && *l != JOINER_NOTE
        })
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(JOINER_NOTE);
    out.push('\n');
    for l in members.lines().map(str::trim).filter(|l| l.starts_with("server.")) {
        out.push_str(l);
        out.push('\n');
    }
    for l in rendered.lines().filter(|l| l.starts_with(&own)) {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// The JVM system property that marks a node's command line.
pub fn token_arg(uid: &str, id: u32) -> String {
    format!("-Dzkdev.node={uid}/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::dist::Dist;
    use crate::model::layout::Home;
    use crate::model::spec::tests::settings;

    fn fixture(profile: &str, voters: u32, observers: u32) -> (ClusterSpec, ClusterPaths) {
        let mut spec =
            ClusterSpec::build("demo", profile, settings(profile), Dist::fixture(), voters, observers).unwrap();
        spec.uid = "0123456789abcdef".into();
        let paths = Home {
            root: "/home/dev/.local/share/zkdev".into(),
        }
        .cluster("demo");
        (spec, paths)
    }

    fn file<'a>(n: &'a NodeFiles, name: &str) -> &'a str {
        &n.files.iter().find(|(p, _)| p.ends_with(name)).unwrap().1
    }

    #[test]
    fn default_3_plus_1_zoo_cfg() {
        let (spec, paths) = fixture("default", 3, 1);
        let nodes = render(&spec, &paths, &Plan::default()).unwrap();
        insta::assert_snapshot!("default_node1_zoo_cfg", file(&nodes[0], "zoo.cfg"));
        insta::assert_snapshot!("default_node4_observer_zoo_cfg", file(&nodes[3], "zoo.cfg"));
        insta::assert_snapshot!("default_node1_log4j", file(&nodes[0], "log4j.properties"));
        assert_eq!(file(&nodes[3], "myid"), "4\n");
    }

    #[test]
    fn fast_zoo_cfg_and_command() {
        let (spec, paths) = fixture("fast", 3, 1);
        let nodes = render(&spec, &paths, &Plan::default()).unwrap();
        insta::assert_snapshot!("fast_node2_zoo_cfg", file(&nodes[1], "zoo.cfg"));
        insta::assert_snapshot!("fast_node2_argv", nodes[1].argv.join("\n"));
    }

    #[test]
    fn every_node_lists_the_same_servers() {
        let (spec, paths) = fixture("default", 5, 2);
        let nodes = render(&spec, &paths, &Plan::default()).unwrap();
        let servers = |n: &NodeFiles| -> Vec<String> {
            file(n, "zoo.cfg")
                .lines()
                .filter(|l| l.starts_with("server."))
                .map(String::from)
                .collect()
        };
        let first = servers(&nodes[0]);
        assert_eq!(first.len(), 7);
        assert_eq!(first.iter().filter(|l| l.ends_with(":observer")).count(), 2);
        for n in &nodes {
            assert_eq!(servers(n), first);
            let cfg = file(n, "zoo.cfg");
            assert!(cfg.contains("clientPortAddress=127.0.0.1"));
            assert_eq!(cfg.contains("peerType=observer"), n.id > 5);
        }
    }

    #[test]
    fn loopback_addresses_read_like_the_tutorials() {
        let mut s = settings("default");
        s.addresses = crate::model::profile::AddressMode::Loopback;
        let spec = ClusterSpec::build("demo", "p", s, Dist::fixture(), 3, 1).unwrap();
        let paths = Home { root: "/h".into() }.cluster("demo");
        let nodes = render(&spec, &paths, &Plan::default()).unwrap();
        let cfg = file(&nodes[1], "zoo.cfg");
        for line in [
            "clientPort=2181\nclientPortAddress=127.0.0.12\n",
            "admin.serverAddress=127.0.0.12\nadmin.serverPort=8080\n",
            "server.1=127.0.0.11:2888:3888\n",
            "server.4=127.0.0.14:2888:3888:observer",
        ] {
            assert!(cfg.contains(line), "{line:?} not in\n{cfg}");
        }
        assert!(!cfg.contains("quorumListenOnAllIPs"));
    }

    #[test]
    fn net_cluster_names_hosts_each_node_resolves_to_its_links() {
        let mut s = settings("chaos");
        s.net_port_base = Some(20000);
        assert!(s.reconfig && s.proxied);
        // (Without reconfig the same: one mechanism for every --net cluster.)
        let spec = ClusterSpec::build("demo", "p", s, Dist::fixture(), 3, 0).unwrap();
        let paths = Home { root: "/h".into() }.cluster("demo");
        let nodes = render(&spec, &paths, &Plan::default()).unwrap();
        // One line per server, the same on every node (as a reconfig commits it), with the real ports.
        for n in &nodes {
            let cfg = file(n, "zoo.cfg");
            assert!(cfg.contains("\nserver.1=zkdev-node-1:2881:3881\n"), "{cfg}");
            assert!(cfg.contains("\nserver.3=zkdev-node-3:2883:3883"), "{cfg}");
        }
        // Node 2 finds itself at 127.0.0.1 and peer 3 at the link 2 -> 3 (and any later node too).
        let hosts = file(&nodes[1], "hosts");
        assert!(hosts.contains("\n127.0.0.1 zkdev-node-2\n"), "{hosts}");
        assert!(hosts.contains("\n127.1.2.3 zkdev-node-3\n"), "{hosts}");
        assert!(hosts.contains("\n127.1.2.255 zkdev-node-255\n"), "{hosts}");
        let hosts_flag = format!("-Djdk.net.hosts.file={}", paths.conf_dir(2).join("hosts").display());
        assert!(nodes[1].argv.contains(&hosts_flag), "{:?}", nodes[1].argv);
        // Only the client proxies take ports of the block.
        assert_eq!(spec.proxy_ports().len(), 3);
        let add = crate::model::membership::server_string(&spec, 3, crate::model::spec::Role::Observer).unwrap();
        assert_eq!(add, "server.3=zkdev-node-3:2883:3883:observer;127.0.0.1:2183");
    }

    #[test]
    fn extra_keys_are_written_verbatim() {
        let mut s = settings("default");
        s.extra.insert("reconfigEnabled".into(), "true".into());
        let spec = ClusterSpec::build("demo", "p", s, Dist::fixture(), 1, 0).unwrap();
        let paths = Home { root: "/h".into() }.cluster("demo");
        let nodes = render(&spec, &paths, &Plan::default()).unwrap();
        assert!(file(&nodes[0], "zoo.cfg").contains("\nreconfigEnabled=true\n"));
    }

    /// One zoo.cfg per ZooKeeper line people run, as the installation of that version would get it.
    #[test]
    fn zoo_cfg_per_version() {
        for version in ["3.4.14", "3.5.10", "3.6.4", "3.7.2", "3.8.6", "3.9.5"] {
            let mut dist = Dist::fixture();
            dist.version = version.into();
            dist.layout = if version == "3.4.14" {
                crate::model::dist::Layout::LegacyTarball
            } else {
                crate::model::dist::Layout::Tarball
            };
            dist.log_config = if version >= "3.8" {
                LogConfig::Logback
            } else {
                LogConfig::Log4j
            };
            dist.admin_server_available = version != "3.4.14";
            let spec = ClusterSpec::build("demo", "p", settings("default"), dist, 3, 1).unwrap();
            let paths = Home {
                root: "/home/dev/.local/share/zkdev".into(),
            }
            .cluster("demo");
            let nodes = render(&spec, &paths, &Plan::default()).unwrap();
            insta::assert_snapshot!(format!("zoo_cfg_{version}_node4"), file(&nodes[3], "zoo.cfg"));
            let log = if version >= "3.8" {
                "logback.xml"
            } else {
                "log4j.properties"
            };
            assert!(
                nodes[3].files.iter().any(|(p, _)| p.ends_with(log)),
                "{version}: no {log}"
            );
        }
    }

    #[test]
    fn a_membership_zookeeper_keeps_replaces_the_server_lines() {
        let mut s = settings("fast");
        s.extra.insert("reconfigEnabled".into(), "true".into());
        let spec = ClusterSpec::build("demo", "p", s, Dist::fixture(), 3, 0).unwrap();
        let paths = Home { root: "/h".into() }.cluster("demo");
        let rendered = file(&render(&spec, &paths, &Plan::default()).unwrap()[0], "zoo.cfg").to_string();
        assert_eq!(dynamic_config_file(&rendered), None);
        let dynamic = "/h/clusters/demo/node1/conf/zoo.cfg.dynamic.100000000";
        let kept = with_dynamic_file(&rendered, dynamic);
        assert!(!kept.contains("\nserver."), "{kept}");
        assert!(kept.starts_with("# Written by zkdev"), "{kept}");
        assert!(kept.contains("\ntickTime=200\n"), "{kept}");
        assert!(kept.contains("\nreconfigEnabled=true\n"), "{kept}");
        assert!(kept.ends_with(&format!("\ndynamicConfigFile={dynamic}\n")), "{kept}");
        assert_eq!(dynamic_config_file(&kept), Some(dynamic));
        // Keeping it again changes nothing: one pointer, never two.
        assert_eq!(with_dynamic_file(&kept, dynamic), kept);
        // A node a reconfig removed starts with the members plus itself, as a joiner.
        let members = "server.1=127.0.0.1:2881:3881:participant\nserver.2=127.0.0.1:2882:3882:participant";
        assert!(!lists_server(members, 3) && lists_server(members, 2));
        let rendered3 = file(&render(&spec, &paths, &Plan::default()).unwrap()[2], "zoo.cfg").to_string();
        let joiner = as_joiner(&rendered3, members, 3);
        assert!(
            joiner.contains(
                "\nserver.1=127.0.0.1:2881:3881:participant\nserver.2=127.0.0.1:2882:3882:participant\nserver.3="
            ),
            "{joiner}"
        );
        assert_eq!(joiner.matches("\nserver.").count(), 3, "{joiner}");
        assert_eq!(dynamic_config_file(&joiner), None);
        assert_eq!(as_joiner(&joiner, members, 3), joiner);
        // ZooKeeper's own spelling of a rewritten file.
        let zk = "reconfigEnabled=true\ndynamicConfigFile=/x/zoo.cfg.dynamic.100000000\ntickTime=200\n";
        assert_eq!(dynamic_config_file(zk), Some("/x/zoo.cfg.dynamic.100000000"));
    }

    #[test]
    fn metrics_on_39_bind_loopback_and_36_is_refused() {
        let mut s = settings("default");
        s.metrics = true;
        let mut dist = Dist::fixture();
        dist.version = "3.9.5".into();
        let spec = ClusterSpec::build("demo", "p", s.clone(), dist.clone(), 3, 0).unwrap();
        let paths = Home { root: "/h".into() }.cluster("demo");
        let cfg = file(&render(&spec, &paths, &Plan::default()).unwrap()[1], "zoo.cfg").to_string();
        assert!(
            cfg.contains("metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort=7002\n"),
            "{cfg}"
        );
        dist.version = "3.6.4".into();
        let err = ClusterSpec::build("demo", "p", s, dist, 3, 0).unwrap_err().to_string();
        assert!(err.contains("metricsProvider.httpHost exists from 3.8"), "{err}");
    }

    #[test]
    fn zookeeper_34_gets_no_35_keys() {
        let mut dist = Dist::fixture();
        dist.version = "3.4.14".into();
        dist.admin_server_available = false;
        let spec = ClusterSpec::build("demo", "p", settings("default"), dist, 3, 0).unwrap();
        let paths = Home { root: "/h".into() }.cluster("demo");
        let cfg = file(&render(&spec, &paths, &Plan::default()).unwrap()[0], "zoo.cfg").to_string();
        assert!(!cfg.contains("4lw."));
        assert!(!cfg.contains("admin."));
        assert!(cfg.contains("clientPort=2181"));
    }
}
