//! What every fault needs, shared by the nemesis and the faults it calls (sessions, nodes, links, disks).

use crate::model::spec::ClusterSpec;
use crate::os::state::ClusterPaths;
use crate::supervisor::control::Supervisor;

/// Everything a fault needs: the supervisor that injects it, the cause it is journalled with, the cluster.
pub struct Env<'a> {
    /// The supervisor that injects and journals the fault.
    pub sup: &'a Supervisor,
    /// The cause journalled with it (the command line that asked).
    pub cause: &'a str,
    /// The cluster's spec.
    pub spec: &'a ClusterSpec,
    /// The cluster's files.
    pub paths: &'a ClusterPaths,
    /// Kill a leader even when the others would not keep a quorum (`chaos --force`).
    pub force: bool,
}
