"""pytest-zkdev: real Apache ZooKeeper ensembles for tests, run by the zkdev binary."""

from .ensemble import Ensemble, Shape, ZkdevError, find_zkdev
from .results import (
    DiskResult,
    ExpiredSession,
    ExpireResult,
    HealResult,
    KillLeaderResult,
    LinkResult,
    MembershipResult,
    Node,
    NodeActionResult,
    NodeOutcome,
    PartitionResult,
    Quorum,
    ResetResult,
    Session,
    Status,
    TlsFiles,
    ZkdevOutputError,
)

__all__ = [
    "DiskResult", "Ensemble", "ExpiredSession", "ExpireResult", "HealResult", "KillLeaderResult", "LinkResult",
    "MembershipResult", "Node", "NodeActionResult", "NodeOutcome", "PartitionResult", "Quorum", "ResetResult",
    "Session", "Shape", "Status", "TlsFiles", "ZkdevError", "ZkdevOutputError", "find_zkdev",
]
