//! Disk faults: the preload environment of a node's JVM, and switching a node's fault (`Request::Disk`).

use super::cluster::Sup;
use super::replies::DiskReply;
use crate::error::{Error, Result};
use crate::model::disk::DiskFault;
use crate::model::timeline::{Action, Event, Kind};
use crate::os::faultfs;

impl Sup {
    /// The environment a node starts with: the disk-fault library preloaded when the cluster has it on.
    pub(super) fn node_env(&self, id: u32) -> Result<Vec<(String, String)>> {
        if self.spec().settings.disk_faults {
            faultfs::env(&self.paths, id)
        } else {
            Ok(Vec::new())
        }
    }

    /// Set `fault` on the disks of `ids` and journal it. The library in each JVM sees it within 25 ms; a node
    /// that is not running finds it when it starts.
    pub(super) fn set_disk(&self, ids: &[u32], fault: DiskFault, cause: &str) -> Result<DiskReply> {
        let spec = self.spec();
        if !spec.settings.disk_faults {
            return Err(Error::usage(format!(
                "cluster `{}` was made without disk faults, so its JVMs do not load the disk-fault library; {}",
                spec.name,
                spec.remake_advice(&["--disk-faults"])
            )));
        }
        if let Some(id) = ids.iter().find(|id| spec.node(**id).is_none()) {
            return Err(Error::usage(format!("cluster `{}` has no node {id}", spec.name)));
        }
        // A fault must bite: every running JVM it is set for must have the library loaded.
        if fault != DiskFault::Healthy {
            let state = self.paths.load_state()?;
            for id in ids {
                if let Some((pid, _)) = state.node(*id).process() {
                    if crate::os::process::proc_stat(pid).is_some() && !faultfs::loaded_in(pid) {
                        return Err(Error::failed(format!(
                            "node {id}'s JVM (pid {pid}) has not loaded the disk-fault library ({}), so a fault \
                             would do nothing; its log says why the loader refused it. Restart it with \
                             `zkdev restart {id}` (which preloads the library), then try again",
                            faultfs::LIBRARY
                        )));
                    }
                }
            }
        }
        let before: Vec<(u32, DiskFault)> = ids.iter().map(|id| (*id, faultfs::get(&self.paths, *id))).collect();
        for id in ids {
            faultfs::set(&self.paths, *id, fault)?;
        }
        let nodes = match ids {
            [one] => format!("node {one}"),
            many => format!(
                "nodes {}",
                many.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ),
        };
        let message = match fault {
            DiskFault::Healthy => format!("disk of {nodes} healed, asked by `{cause}`"),
            f => format!("disk of {nodes} now {}, asked by `{cause}`", f.describe()),
        };
        let mut ev = Event::new(Kind::Action, message);
        ev.action = Some(Action::Disk);
        ev.nodes = ids.to_vec();
        ev.node = (ids.len() == 1).then(|| ids[0]);
        ev.cause = Some(cause.to_string());
        ev.detail = Some(
            before
                .iter()
                .map(|(id, f)| format!("node {id} was {}", f.describe()))
                .collect::<Vec<_>>()
                .join("; "),
        );
        let ev = self.record(ev);
        Ok(DiskReply {
            seq: ev.seq,
            mono_ms: ev.mono_ms,
            nodes: ids.to_vec(),
            fault,
        })
    }
}
