//! Disk faults: the preload environment of a node's JVM, switching a node's fault (`Request::Disk`), and power
//! cuts (`Request::PowerCut`).

use super::cluster::Sup;
use super::replies::{DiskReply, PowerCutReply};
use crate::error::{Error, Result};
use crate::model::disk::DiskFault;
use crate::model::power::NodeCut;
use crate::model::timeline::{Action, Event, Kind};
use crate::os::clock::now_ms;
use crate::os::{faultfs, power};

impl Sup {
    /// The environment a node starts with: the disk-fault library preloaded when the cluster has it on.
    pub(super) fn node_env(&self, id: u32) -> Result<Vec<(String, String)>> {
        if self.spec().settings.disk_faults {
            faultfs::env(&self.paths, id)
        } else {
            Ok(Vec::new())
        }
    }

    /// Before a node's JVM starts on a cluster with disk faults: an empty record of unsynced changes.
    pub(super) fn prepare_disk(&self, id: u32) -> Result<()> {
        if self.spec().settings.disk_faults {
            power::prepare(&self.paths, id)
        } else {
            Ok(())
        }
    }

    /// A power cut of `ids`: their JVMs SIGKILLed (as `zkdev kill` does, after the identity check), then every
    /// file of their data directories rolled back to its last sync. A node whose JVM is not running loses
    /// nothing: what it wrote before it stopped is taken to have reached the disk (its records are dropped).
    pub(super) async fn power_cut(
        &self,
        ids: &[u32],
        torn: Option<u64>,
        writeback_ms: Option<u64>,
        cause: &str,
    ) -> Result<PowerCutReply> {
        let spec = self.spec();
        if !spec.settings.disk_faults {
            return Err(Error::usage(format!(
                "cluster `{}` was made without disk faults, so nothing records what its nodes have not synced; \
                 make one with `zkdev up --disk-faults` (or `--profile chaos`, or `[faults] disk = true` in a \
                 profile)",
                spec.name
            )));
        }
        if let Some(id) = ids.iter().find(|id| spec.node(**id).is_none()) {
            return Err(Error::usage(format!("cluster `{}` has no node {id}", spec.name)));
        }
        let _g = self.lock_nodes(ids).await?;
        {
            let state = self.paths.load_state()?;
            for id in ids {
                if let Some((pid, _)) = state.node(*id).process() {
                    if crate::os::process::proc_stat(pid).is_some()
                        && !(faultfs::loaded_in(pid) && faultfs::records_in(pid))
                    {
                        return Err(Error::failed(format!(
                            "node {id}'s JVM (pid {pid}) does not keep the record of unsynced writes a power cut \
                             needs (it started without the disk-fault library or before zkdev kept that record); \
                             `zkdev restart {id}`, then try again"
                        )));
                    }
                }
            }
        }
        let killed = self.signal_locked(ids, super::control::Sig::Kill, cause).await?;
        let at_ms = now_ms();
        let mut cuts = Vec::new();
        let hit = killed.hit.clone();
        for id in ids {
            let was_running = hit.contains(id);
            let files = if was_running {
                power::roll_back(&self.paths, *id, torn, at_ms, writeback_ms)?
            } else {
                power::prepare(&self.paths, *id)?;
                Vec::new()
            };
            let cut = NodeCut {
                node: *id,
                at_ms,
                was_running,
                files,
            };
            power::write_note(&self.paths, &cut)?;
            cuts.push(cut);
        }
        let lost: u64 = cuts.iter().map(NodeCut::bytes_lost).sum();
        let nodes = match ids {
            [one] => format!("node {one}"),
            many => format!(
                "nodes {}",
                many.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ),
        };
        let mut torn_note = if torn.is_some() { " (torn writes)" } else { "" }.to_string();
        if let Some(w) = writeback_ms {
            torn_note.push_str(&format!(" (the kernel had written back changes older than {w} ms)"));
        }
        let mut ev = Event::new(
            Kind::Action,
            format!(
                "power cut of {nodes}{torn_note}: {} lost, asked by `{cause}`",
                crate::model::words::count(lost as usize, "unsynced byte")
            ),
        );
        ev.action = Some(Action::PowerCut);
        ev.nodes = ids.to_vec();
        ev.node = (ids.len() == 1).then(|| ids[0]);
        ev.cause = Some(cause.to_string());
        ev.detail = Some(cuts.iter().map(NodeCut::describe).collect::<Vec<_>>().join("; "));
        let ev = self.record(ev);
        Ok(PowerCutReply {
            seq: ev.seq,
            killed: killed.hit,
            cuts,
            bytes_lost: lost,
        })
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
