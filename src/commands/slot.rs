//! `up --slot` and `up --owner`: the port slot a new cluster is placed in, and the process it belongs to.

use crate::error::{Error, Result};
use crate::model::slot::{Slot, SlotChoice, MAX_NODES};
use crate::model::spec::{ClusterSpec, Owner};
use crate::os::state::ClusterPaths;

/// `spec` moved into a free port slot (claimed for `paths`' cluster until its spec no longer records it).
pub async fn place(paths: &ClusterPaths, spec: ClusterSpec, choice: SlotChoice) -> Result<ClusterSpec> {
    let n = spec.nodes.len() as u32;
    if n > MAX_NODES {
        return Err(Error::usage(format!(
            "--slot with {n} nodes: a port slot holds at most {MAX_NODES} nodes; use --port-offset instead"
        )));
    }
    let in_slot = |slot: Slot| -> Result<ClusterSpec> {
        let mut settings = spec.settings.clone();
        settings.offset = slot.port_offset;
        if settings.proxied {
            settings.net_port_base = Some(slot.proxy_base());
        }
        let mut s = ClusterSpec::build(
            &spec.name,
            &spec.profile,
            settings,
            spec.dist.clone(),
            spec.voter_count() as u32,
            spec.observer_count() as u32,
        )?;
        s.uid = spec.uid.clone();
        s.slot = Some(slot);
        Ok(s)
    };
    let ports_of = |slot: Slot| -> Result<Vec<(u16, String)>> {
        let s = in_slot(slot)?;
        let mut ports: Vec<(u16, String)> = (s.all_ports().into_iter())
            .map(|(p, id, what)| (p, format!("node {id} {what} port")))
            .collect();
        for id in s.ids() {
            if let Some(p) = s.client_proxy(id) {
                ports.push((p, format!("node {id} client proxy")));
            }
        }
        Ok(ports)
    };
    let slot = crate::os::slots::claim(choice, &paths.root, ports_of).await?;
    in_slot(slot)
}

/// The owner `--owner PID` names, identified by its start time; a pid that is not running is refused.
pub fn owner(pid: i32) -> Result<Owner> {
    let stat = (pid > 0)
        .then(|| crate::os::process::proc_stat(pid))
        .flatten()
        .filter(|s| s.state != 'Z')
        .ok_or_else(|| {
            Error::usage(format!(
                "--owner {pid}: no such process is running; pass the pid of the process the cluster belongs to \
                 (a test runner's own pid)"
            ))
        })?;
    Ok(Owner {
        pid,
        start_ticks: stat.start_ticks,
    })
}

/// `up --slot`/`--owner` on a cluster that exists: they are set when a cluster is made; the same ones are
/// accepted again.
pub fn check_same(spec: &ClusterSpec, slot: Option<SlotChoice>, owner: Option<i32>) -> Result<()> {
    let slot_ok = match (slot, spec.slot) {
        (None, _) | (Some(SlotChoice::Auto), Some(_)) => true,
        (Some(SlotChoice::Index(n)), Some(s)) => s.index == n,
        (Some(_), None) => false,
    };
    if !slot_ok {
        return Err(Error::usage(format!(
            "cluster `{}` exists {}; --slot applies to a new cluster only (`zkdev down --purge` first, or leave \
             out --slot)",
            spec.name,
            spec.slot.map_or("without a port slot".to_string(), |s| format!(
                "in port slot {}",
                s.index
            ))
        )));
    }
    if let Some(pid) = owner.filter(|p| spec.owner.map(|o| o.pid) != Some(*p)) {
        return Err(Error::usage(format!(
            "--owner {pid}: cluster `{}` exists {}; the owner is set when a cluster is made (`zkdev down --purge` \
             first, or leave out --owner)",
            spec.name,
            spec.owner
                .map_or("without an owner".to_string(), |o| format!("with owner {}", o.pid))
        )));
    }
    Ok(())
}
