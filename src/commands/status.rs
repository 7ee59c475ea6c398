//! `zkdev status`: every node's process and what its server answers: the supervisor's latest view when it
//! is fresh and /proc agrees with it, else asked right now.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::Ctx;
use crate::cli::StatusArgs;
use crate::error::Result;
use crate::model::disk::DiskFault;
use crate::model::membership::{Membership, Version};
use crate::model::power::NodeCut;
use crate::model::spec::ClusterSpec;
use crate::model::status::{NodeStatus, Quorum};
use crate::os::process::{identify, Liveness};
use crate::os::state::{ClusterPaths, State};
use crate::os::zoo_cfg;
use crate::output;
use crate::supervisor::control::{call_for, Request};
use crate::supervisor::dashboard::DashboardRecord;
use crate::supervisor::replies::StatusReply;
use crate::zk::observe::{self, ClusterStatus, ProcessState, SupervisorView};

pub async fn run(ctx: &Ctx, _args: StatusArgs) -> Result<()> {
    let (paths, spec) = ctx.existing()?;
    // On a --net cluster the links live in the supervisor: if it died, start a new one now (it restores
    // the proxies and their faults), so looking at the cluster also mends it. Failing that, status still
    // reports what the servers say.
    if spec.net.is_some() && crate::supervisor::control::Supervisor::find(&paths).await.is_none() {
        if let Err(e) = ctx.supervisor().await {
            eprintln!("warning: the links are down with the supervisor, and a new one did not start: {e}");
        }
    }
    if !ctx.json {
        crate::out!("{}", text(&paths, &spec).await?);
        return Ok(());
    }
    let (status, _, versions) = look(&paths, &spec).await?;
    // Through a JSON value, as it has always been printed: every object's keys in alphabetical order.
    let json = StatusJson::of(&status, &paths, &spec, &versions);
    output::print_json(&serde_json::to_value(&json).expect("status serialises"));
    Ok(())
}

type Look = (
    ClusterStatus,
    Option<super::net::LinksView>,
    Vec<(u32, Option<Membership>)>,
);

/// The cluster now, with its links section and every node's configuration version.
async fn look(paths: &ClusterPaths, spec: &ClusterSpec) -> Result<Look> {
    let mut status = current(paths, spec).await?;
    let links = super::net::links_view(paths, spec).await;
    status.links = links
        .as_ref()
        .map(|l| serde_json::to_value(l).expect("the links view serialises"));
    let versions = config_versions(spec, &status).await;
    Ok((status, links, versions))
}

/// `zkdev status` as a person reads it: the table, ports, files, versions, links, disk faults, power cuts.
pub(super) async fn text(paths: &ClusterPaths, spec: &ClusterSpec) -> Result<String> {
    use std::fmt::Write as _;
    let (status, links, versions) = look(paths, spec).await?;
    let mut out = String::new();
    out.push_str(&output::status_table(&status));
    out.push_str(&more_ports(spec));
    out.push_str(&said_once(paths, config_files(paths, spec)));
    out.push_str(&describe_versions(&versions));
    if let Some(l) = &links {
        let rules = l.rules.len();
        let up = if l.proxies_up {
            String::new()
        } else {
            "; the proxies are down with the supervisor (the next zkdev command restores them)".into()
        };
        let _ = writeln!(
            out,
            "links: proxied, {}{up} (`zkdev links` shows them)",
            crate::model::words::count(rules, "fault rule")
        );
        for why in &l.unbound {
            let _ = writeln!(out, "links: proxy {why}");
        }
    }
    for (id, fault) in disk_faults(paths, spec) {
        let _ = writeln!(
            out,
            "disk: node {id} {} (`zkdev disk {id} --heal` ends it)",
            fault.describe()
        );
    }
    for cut in power_cuts(paths, spec).iter().filter(|c| c.bytes_lost() > 0) {
        let _ = writeln!(
            out,
            "power cut at {}: {}",
            crate::model::timeline::clock(cut.at_ms),
            cut.describe()
        );
    }
    out.push_str(&dashboard_hint(paths));
    Ok(out)
}

/// The last power cut of each node that had one (`zkdev disk --power-cut`).
fn power_cuts(paths: &ClusterPaths, spec: &ClusterSpec) -> Vec<crate::model::power::NodeCut> {
    if !spec.settings.disk_faults {
        return Vec::new();
    }
    crate::os::power::last_cuts(paths, &spec.ids())
}

/// `dashboard: http://127.0.0.1:8900/ ...` when the supervisor serves one; empty otherwise.
pub fn dashboard_hint(paths: &ClusterPaths) -> String {
    match DashboardRecord::read(paths) {
        Some(d) => format!(
            "dashboard: {} (live); `zkdev explain election` tells how the last leader won\n",
            d.url
        ),
        None => String::new(),
    }
}

/// Ports beyond the table's columns: the TLS client port, and ports the profile's [zookeeper.extra] opens.
fn port_list(spec: &ClusterSpec, id: u32) -> Vec<(String, u16)> {
    let node = spec.node(id).expect("a node of the spec");
    let mut v: Vec<(String, u16)> = node
        .ports
        .secure
        .map(|p| ("TLS client".to_string(), p))
        .into_iter()
        .collect();
    v.extend(spec.extra_ports(id));
    v
}

fn more_ports(spec: &ClusterSpec) -> String {
    let mut out = String::new();
    for id in spec.ids() {
        let list = port_list(spec, id);
        if !list.is_empty() {
            let shown: Vec<String> = list.iter().map(|(k, p)| format!("{k} {p}")).collect();
            out.push_str(&format!("  node {id} also listens on: {}\n", shown.join(", ")));
        }
    }
    if let Some(secure) = spec.secure_connect_string() {
        out.push_str(&format!(
            "TLS connect {secure} (`zkdev env` names the client's files)\n"
        ));
    }
    out
}

/// `notice` the first time it is this text: the last one shown is kept in the cluster directory, so the
/// same lines do not come back on every `status` (`status --json` always carries them).
fn said_once(paths: &ClusterPaths, notice: String) -> String {
    let file = paths.root.join("status-notice.txt");
    if std::fs::read_to_string(&file).ok().as_deref() == Some(notice.as_str()) {
        return String::new();
    }
    // Not remembered (read-only home): it is shown again next time, which is harmless.
    let _ = crate::os::state::write_atomic(&file, notice.as_bytes());
    notice
}

/// Nodes whose zoo.cfg ZooKeeper rewrote (reconfigEnabled), or whose membership is in ZooKeeper's dynamic
/// file since: one line each.
fn config_files(paths: &ClusterPaths, spec: &ClusterSpec) -> String {
    let mut out = String::new();
    for id in spec.ids() {
        let on_disk = zoo_cfg::inspect(paths, id);
        let Some(dynamic) = on_disk.dynamic() else { continue };
        let name = dynamic
            .file_name()
            .map_or(dynamic.display().to_string(), |n| n.to_string_lossy().into_owned());
        let removed = if zoo_cfg::in_membership(dynamic, id) == Some(false) {
            format!("; node {id} is not in it (removed by a reconfig): it follows without a vote")
        } else {
            String::new()
        };
        if on_disk.rewritten_by_zookeeper() {
            out.push_str(&format!(
                "  node {id}: zoo.cfg was rewritten by ZooKeeper (reconfigEnabled); its servers are in {name}, \
                 which zkdev keeps when it starts the node{removed}\n"
            ));
        } else {
            out.push_str(&format!(
                "  node {id}: servers from ZooKeeper's {name} (reconfigEnabled), kept by zkdev at the last start{removed}\n"
            ));
        }
    }
    out
}

/// Dynamic reconfiguration on: the configuration every running node has committed (`conf`), by id. Empty
/// otherwise (the membership is the spec's).
async fn config_versions(spec: &ClusterSpec, status: &ClusterStatus) -> Vec<(u32, Option<Membership>)> {
    let reconfig = spec.settings.reconfig
        || (spec.settings.extra.get("reconfigEnabled")).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !reconfig {
        return Vec::new();
    }
    // Only nodes that can answer: a stopped or paused one would only make status wait.
    let running: Vec<u32> = (status.nodes.iter())
        .filter(|n| matches!(n.process(), ProcessState::Running))
        .map(|n| n.id)
        .collect();
    crate::zk::reconfig::configs(spec, &running).await
}

/// The committed configuration in one line, and a line for every node whose view differs from most.
fn describe_versions(versions: &[(u32, Option<Membership>)]) -> String {
    let seen: Vec<(u32, &Membership)> = versions
        .iter()
        .filter_map(|(id, m)| m.as_ref().map(|m| (*id, m)))
        .collect();
    let Some(common) = most_common(&seen) else {
        return String::new();
    };
    let agree: Vec<u32> = seen
        .iter()
        .filter(|(_, m)| m.version == common.version)
        .map(|(id, _)| *id)
        .collect();
    let mut out = format!(
        "configuration {} ({}) on {}\n",
        Version(common.version),
        common.describe(),
        crate::model::words::nodes(&agree)
    );
    for (id, m) in seen.iter().filter(|(_, m)| m.version != common.version) {
        out.push_str(&format!(
            "  DIFFERS: node {id} has configuration {} ({}); it catches up once it syncs with the leader\n",
            Version(m.version),
            m.describe()
        ));
    }
    out
}

/// The configuration most nodes report (the highest version among equals).
fn most_common<'a>(seen: &[(u32, &'a Membership)]) -> Option<&'a Membership> {
    let count = |v: Option<u64>| seen.iter().filter(|(_, m)| m.version == v).count();
    seen.iter()
        .map(|(_, m)| *m)
        .max_by_key(|m| (count(m.version), m.version))
}

/// The cluster as it is now, from the supervisor or from the servers themselves.
pub async fn current(paths: &ClusterPaths, spec: &ClusterSpec) -> Result<ClusterStatus> {
    let mut state = paths.load_state()?;
    // A node zkdev started but could not record (zkdev killed mid-start, a damaged state file) is shown
    // as what it is; status writes nothing.
    state.adopt_orphans(&paths.idents(spec));
    let answer = call_for::<StatusReply>(&paths.socket(), &Request::Status, Duration::from_millis(250))
        .await
        .and_then(|r| r.ok());
    let pid = answer.as_ref().map(|r| r.pid as i32);
    if let Some(s) = answer.and_then(|r| from_supervisor(r, paths, spec, &state)) {
        return Ok(s);
    }
    let mut status = observe::gather_with(spec, paths, &state, observe::Probing::FULL).await;
    status.source = Some("probe".into());
    status.supervisor = Some(SupervisorView {
        running: pid.is_some(),
        pid,
    });
    Ok(status)
}

/// The supervisor's view, if it answers at once, is fresh (see below), shows a healthy
/// ensemble, and every node's process is still what the view says. Anything in transition (an election,
/// a node starting, a node killed since the last look) is asked of the servers now instead: that is when
/// a view up to one interval old would mislead.
fn from_supervisor(
    reply: StatusReply,
    paths: &ClusterPaths,
    spec: &ClusterSpec,
    state: &State,
) -> Option<ClusterStatus> {
    let StatusReply {
        mut status,
        age_ms: age,
        interval_ms: interval,
        idle_interval_ms: idle,
        pid,
    } = reply;
    // Quiet ensembles are asked less often (idle_interval_ms): a view is fresh within one idle interval
    // and two probe intervals of slack.
    if age > (3 * interval).max(idle + 2 * interval) {
        return None;
    }
    if !status.healthy() {
        return None;
    }
    for n in &status.nodes {
        // A view taken with other ports than cluster.toml now names is not about this cluster's files.
        if spec.node(n.id).is_none_or(|s| s.ports.client != n.client_port) || status.nodes.len() != spec.nodes.len() {
            return None;
        }
        let now = identify(&state.node(n.id), &paths.ident(spec, n.id));
        let agrees = match (now, n.process()) {
            (Liveness::Ours { paused: true, .. }, p) => p == ProcessState::Paused,
            (Liveness::Ours { paused: false, .. }, p) => {
                matches!(p, ProcessState::Running | ProcessState::Unresponsive)
            }
            (Liveness::Gone, p) => matches!(p, ProcessState::Stopped | ProcessState::Crashed),
        };
        if !agrees {
            return None;
        }
    }
    status.source = Some("supervisor".into());
    status.age_ms = Some(age);
    status.supervisor = Some(SupervisorView {
        running: true,
        pid: Some(pid as i32),
    });
    Some(status)
}

/// The nodes whose disk has a fault on now (`zkdev disk`), from their control files.
fn disk_faults(paths: &ClusterPaths, spec: &ClusterSpec) -> Vec<(u32, crate::model::disk::DiskFault)> {
    if !spec.settings.disk_faults {
        return Vec::new();
    }
    spec.ids()
        .into_iter()
        .map(|id| (id, crate::os::faultfs::get(paths, id)))
        .filter(|(_, f)| *f != crate::model::disk::DiskFault::Healthy)
        .collect()
}

/// `status --json` (its contract: the book's JSON reference): the status the table is drawn from, with
/// each node's ports and configuration files, the cluster's secure connect string, dashboard, disk faults
/// and power cuts (on a cluster with disk faults), configuration versions (with reconfig), slot and owner.
#[derive(Debug, Serialize)]
struct StatusJson<'a> {
    cluster: &'a str,
    connect_string: &'a str,
    leader: Option<u32>,
    epoch: Option<u32>,
    quorum: &'a Quorum,
    nodes: Vec<NodeJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    age_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    supervisor: Option<&'a SupervisorView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    links: Option<&'a serde_json::Value>,
    /// Null without TLS.
    secure_connect_string: Option<String>,
    /// The live dashboard's address, null when none serves.
    dashboard: Option<String>,
    /// Node id -> its disk fault, for every node with one on; absent for a cluster made without disk faults.
    #[serde(skip_serializing_if = "Option::is_none")]
    disk_faults: Option<BTreeMap<String, DiskFault>>,
    /// Node id -> its last power cut; absent for a cluster made without disk faults.
    #[serde(skip_serializing_if = "Option::is_none")]
    power_cuts: Option<BTreeMap<String, NodeCut>>,
    /// The configuration most nodes have (null when none answers); absent without reconfig.
    #[serde(skip_serializing_if = "Option::is_none")]
    config_version: Option<Option<String>>,
    slot: Option<crate::model::slot::Slot>,
    /// The pid of the process that owns the cluster (`zkdev up --owner`), if any.
    owner: Option<i32>,
}

/// One node of `status --json`: its status and what status adds.
#[derive(Debug, Serialize)]
struct NodeJson<'a> {
    #[serde(flatten)]
    node: &'a NodeStatus,
    /// Null without TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    secure_client_port: Option<Option<u16>>,
    /// Ports the profile's [zookeeper.extra] opens, by key.
    #[serde(skip_serializing_if = "Option::is_none")]
    other_ports: Option<BTreeMap<String, u16>>,
    /// zoo.cfg differs from what zkdev wrote and names a dynamic file.
    config_rewritten_by_zookeeper: bool,
    /// The file with the node's servers when ZooKeeper keeps them.
    dynamic_config_file: Option<String>,
    /// Whether that file lists the node; null without one.
    in_zookeeper_membership: Option<bool>,
    /// Hex, as ZooKeeper writes it; null when the node does not answer; absent without reconfig.
    #[serde(skip_serializing_if = "Option::is_none")]
    config_version: Option<Option<String>>,
    /// Its view is not the one most nodes have; absent without reconfig.
    #[serde(skip_serializing_if = "Option::is_none")]
    config_differs: Option<bool>,
}

impl<'a> StatusJson<'a> {
    fn of(
        status: &'a ClusterStatus,
        paths: &ClusterPaths,
        spec: &ClusterSpec,
        versions: &[(u32, Option<Membership>)],
    ) -> StatusJson<'a> {
        let seen: Vec<(u32, &Membership)> = versions
            .iter()
            .filter_map(|(id, m)| m.as_ref().map(|m| (*id, m)))
            .collect();
        let common = most_common(&seen).and_then(|m| m.version);
        let reconfig = !versions.is_empty();
        let nodes = (status.nodes.iter())
            .map(|n| {
                let node = spec.node(n.id);
                let on_disk = zoo_cfg::inspect(paths, n.id);
                let mine = (versions.iter())
                    .find(|(i, _)| *i == n.id)
                    .and_then(|(_, m)| m.as_ref());
                NodeJson {
                    node: n,
                    secure_client_port: node.map(|s| s.ports.secure),
                    other_ports: node.map(|s| spec.extra_ports(s.id).into_iter().collect()),
                    config_rewritten_by_zookeeper: on_disk.rewritten_by_zookeeper(),
                    dynamic_config_file: on_disk.dynamic().map(|p| p.display().to_string()),
                    in_zookeeper_membership: on_disk.dynamic().and_then(|d| zoo_cfg::in_membership(d, n.id)),
                    config_version: reconfig.then(|| mine.map(|m| Version(m.version).to_string())),
                    config_differs: reconfig.then(|| mine.is_some_and(|m| m.version != common)),
                }
            })
            .collect();
        let disk = spec.settings.disk_faults;
        StatusJson {
            cluster: &status.cluster,
            connect_string: &status.connect_string,
            leader: status.leader,
            epoch: status.epoch,
            quorum: &status.quorum,
            nodes,
            source: status.source.as_deref(),
            age_ms: status.age_ms,
            supervisor: status.supervisor.as_ref(),
            links: status.links.as_ref(),
            secure_connect_string: spec.secure_connect_string(),
            dashboard: DashboardRecord::read(paths).map(|d| d.url),
            disk_faults: disk.then(|| {
                (disk_faults(paths, spec).into_iter())
                    .map(|(id, f)| (id.to_string(), f))
                    .collect()
            }),
            power_cuts: disk.then(|| {
                (power_cuts(paths, spec).into_iter())
                    .map(|c| (c.node.to_string(), c))
                    .collect()
            }),
            config_version: reconfig.then(|| common.map(|c| Version(Some(c)).to_string())),
            slot: spec.slot,
            owner: spec.owner.map(|o| o.pid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_with_another_configuration_is_flagged() {
        let m = |text: &str| Membership::parse(text);
        let new = "server.1=a:1:2:participant\nserver.2=a:3:4:participant\nserver.3=a:5:6:observer\nversion=100000005";
        let old = "server.1=a:1:2:participant\nserver.2=a:3:4:participant\nversion=100000002";
        let versions = vec![(1, m(new)), (2, m(new)), (3, m(old)), (4, None)];
        let text = describe_versions(&versions);
        assert!(
            text.starts_with("configuration 100000005 (voters 1,2, observers 3) on nodes 1 and 2\n"),
            "{text}"
        );
        assert!(
            text.contains("DIFFERS: node 3 has configuration 100000002 (voters 1,2)"),
            "{text}"
        );
        let seen: Vec<(u32, &Membership)> = (versions.iter())
            .filter_map(|(id, m)| m.as_ref().map(|m| (*id, m)))
            .collect();
        assert_eq!(most_common(&seen).and_then(|m| m.version), Some(0x100000005));
        assert_eq!(describe_versions(&[]), "");
    }
}
