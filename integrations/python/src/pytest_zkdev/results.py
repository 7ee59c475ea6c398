"""Typed results: dataclasses parsed from the documents `zkdev ... --json` prints.

zkdev may add fields to a document (the contract is additive), so a field this module does not know is kept
in `raw` and otherwise ignored; a field it needs that is missing is an error that names it.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


class ZkdevOutputError(Exception):
    """zkdev printed a document this plugin cannot read (a field missing or of the wrong kind)."""


_MISSING = object()


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where)
    if value is None:
        if tp is Any:
            return None
        raise ZkdevOutputError(f"`{where}` is null where a value was expected")
    if origin in (list, List):
        if not isinstance(value, list):
            raise ZkdevOutputError(f"`{where}` should be a list, is {type(value).__name__}")
        return [_convert(args[0] if args else Any, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            raise ZkdevOutputError(f"`{where}` should be an object, is {type(value).__name__}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return parse(tp, value, where)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ZkdevOutputError(f"`{where}` should be {tp.__name__}, is {value!r}")
    return value


def parse(cls: Any, doc: Any, where: str = "") -> Any:
    """Build dataclass `cls` from the JSON object `doc` (fields named as in the JSON; `from_` reads `from`)."""
    if not isinstance(doc, dict):
        raise ZkdevOutputError(f"`{where or cls.__name__}` should be an object, is {doc!r}")
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name == "raw":
            kwargs["raw"] = doc
            continue
        key = f.name[:-1] if f.name.endswith("_") else f.name
        path = f"{where}.{key}" if where else key
        value = doc.get(key, _MISSING)
        if value is _MISSING:
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                continue
            raise ZkdevOutputError(f"zkdev's output has no field `{path}` (this plugin needs it)")
        kwargs[f.name] = _convert(hints[f.name], value, path)
    return cls(**kwargs)


@dataclass
class Quorum:
    voters: int
    voters_up: int
    needed: int


@dataclass
class Node:
    id: int
    role: str
    process: str
    mode: Optional[str]
    pid: Optional[int]
    client_port: int
    zxid: Optional[str] = None
    epoch: Optional[int] = None
    address: str = "127.0.0.1"
    secure_client_port: Optional[int] = None
    data_dir: Optional[str] = None
    log_file: Optional[str] = None

    @property
    def serving(self) -> bool:
        return self.mode in ("leader", "follower", "observer", "standalone")


@dataclass
class Slot:
    index: int
    port_offset: int


@dataclass
class Status:
    cluster: str
    connect_string: str
    leader: Optional[int]
    quorum: Quorum
    nodes: List[Node]
    epoch: Optional[int] = None
    secure_connect_string: Optional[str] = None
    slot: Optional[Slot] = None
    owner: Optional[int] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    def node(self, node_id: int) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(f"no node {node_id} in cluster {self.cluster} (nodes: {[n.id for n in self.nodes]})")

    @property
    def voters(self) -> List[Node]:
        return [n for n in self.nodes if n.role == "participant"]

    @property
    def observers(self) -> List[Node]:
        return [n for n in self.nodes if n.role == "observer"]


@dataclass
class KillLeaderResult:
    old_leader: int
    old_epoch: Optional[int]
    signal: str
    new_leader: Optional[int]
    new_epoch: Optional[int]
    new_leader_ms: Optional[int]
    noticed_ms: Optional[int] = None
    all_serving_ms: Optional[int] = None
    rejoined_as: Optional[str] = None
    quorum_left: Optional[bool] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class NodeOutcome:
    id: int
    was: Optional[str]
    outcome: str
    now: Optional[str]
    ms: Optional[int] = None


@dataclass
class NodeActionResult:
    """What stop, start, restart, kill, pause and resume did."""

    action: str
    target: str
    nodes: List[NodeOutcome]
    leader: Optional[int]
    epoch: Optional[int] = None
    new_leader: Optional[int] = None
    new_leader_ms: Optional[int] = None
    quorum_after: Optional[Quorum] = None
    warning: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class PartitionResult:
    """What partition and isolate did."""

    action: str
    cut_off: List[int]
    from_: List[int]
    one_way: bool
    old_leader: Optional[int]
    new_leader: Optional[int]
    new_epoch: Optional[int] = None
    new_leader_ms: Optional[int] = None
    majority_side: Optional[List[int]] = None
    not_serving: List[int] = field(default_factory=list)
    warning: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class LinkResult:
    link: Dict[str, Any]
    fault: Dict[str, Any]
    reset: bool = False
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class HealResult:
    healed: str
    leader: Optional[int]
    epoch: Optional[int] = None
    all_serving_ms: Optional[int] = None
    one_zxid_ms: Optional[int] = None
    zxid: Optional[str] = None
    warning: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Session:
    id: str
    connected_to: Optional[int] = None
    created_by: Optional[int] = None
    client: Optional[str] = None
    timeout_ms: Optional[int] = None
    ephemerals: List[str] = field(default_factory=list)


@dataclass
class ExpiredSession:
    id: str
    ephemerals_deleted: List[str] = field(default_factory=list)
    connected_to: Optional[int] = None
    client: Optional[str] = None
    gone_everywhere_ms: Optional[int] = None


@dataclass
class ExpireResult:
    expired: List[ExpiredSession]
    mechanism: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class DiskOutcome:
    id: int
    process: str
    serving: bool
    jvm_up: Optional[bool] = None


@dataclass
class DiskResult:
    nodes: List[int]
    fault: Dict[str, Any]
    outcome: List[DiskOutcome]
    hint: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class MembershipResult:
    """What add and remove did (a `reconfig` ZooKeeper committed)."""

    change: str
    nodes: List[int]
    members_before: str
    members_after: str
    leader_after: Optional[int] = None
    elapsed_ms: Optional[int] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class ResetResult:
    znodes_deleted: int
    sessions_closed: int
    faults_healed: List[str]
    nodes_started: List[int]
    nodes_resumed: List[int]
    took_ms: int
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class TlsFiles:
    """The cluster's CA, the client certificate and key (PEM, no password), as `zkdev env` names them."""

    ca: str
    cert: str
    key: str
    keystore: Optional[str] = None
    java_opts: Optional[str] = None
