"""An `Ensemble`: one zkdev cluster, driven through the zkdev binary's `--json` output."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from .results import (
    DiskResult,
    ExpireResult,
    HealResult,
    KillLeaderResult,
    LinkResult,
    MembershipResult,
    NodeActionResult,
    PartitionResult,
    ResetResult,
    Session,
    Status,
    TlsFiles,
    ZkdevOutputError,
    parse,
)

Target = Union[int, str]
Duration = Union[int, float, str]


class ZkdevError(Exception):
    """A zkdev command failed: its arguments, exit code and what it said on stderr."""

    def __init__(self, argv: Sequence[str], code: int, stderr: str):
        self.argv = list(argv)
        self.code = code
        self.stderr = stderr
        tail = stderr.strip().splitlines()[-8:]
        super().__init__(f"`{shlex.join(argv)}` exited {code}:\n" + "\n".join(tail))


def find_zkdev(explicit: Optional[str] = None) -> str:
    """The zkdev binary: `explicit` (the --zkdev option), else $ZKDEV_BIN, else PATH, else the checkout's
    target/debug/zkdev (this package sits in integrations/python of the zkdev repository)."""
    for source, candidate in (("--zkdev", explicit), ("ZKDEV_BIN", os.environ.get("ZKDEV_BIN"))):
        if candidate:
            path = Path(candidate).expanduser()
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise FileNotFoundError(f"{source} names {candidate}, which is not an executable file")
            return str(path.resolve())
    on_path = shutil.which("zkdev")
    if on_path:
        return on_path
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "target" / "debug" / "zkdev"
        if (parent / "Cargo.toml").is_file() and candidate.is_file():
            return str(candidate)
    raise FileNotFoundError(
        "no zkdev binary: pass --zkdev PATH or set ZKDEV_BIN, put zkdev on PATH, "
        "or build the checkout this plugin came from (`cargo build --workspace`)"
    )


def _duration(value: Duration) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{int(value * 1000)}ms"
    return str(value)


@dataclass(frozen=True)
class Shape:
    """What an ensemble is made of; two requests with the same shape share one ensemble."""

    voters: int = 1
    observers: int = 0
    profile: str = "fast"
    tls: bool = False
    net: bool = False
    disk_faults: bool = False
    reconfig: bool = False

    def up_args(self) -> List[str]:
        args = ["--nodes", str(self.voters), "--observers", str(self.observers), "--profile", self.profile]
        for flag, on in (("--tls", self.tls), ("--net", self.net), ("--disk-faults", self.disk_faults),
                         ("--reconfig", self.reconfig)):
            if on:
                args.append(flag)
        return args

    def name(self) -> str:
        """A cluster-name fragment that spells the shape: 3v1o-fast-tls-net."""
        parts = [f"{self.voters}v{self.observers}o", "".join(c if c.isalnum() else "_" for c in self.profile)]
        parts += [n for n, on in (("tls", self.tls), ("net", self.net), ("disk", self.disk_faults),
                                  ("reconfig", self.reconfig)) if on]
        return "-".join(parts)


class Ensemble:
    """One zkdev cluster (`home` + `cluster`). Every fault method runs the zkdev command of the same name with
    `--json` and returns its document as a dataclass; a failing command raises `ZkdevError`."""

    def __init__(self, zkdev: str, home: Union[str, Path, None], cluster: str = "default", shape: Optional[Shape] = None,
                 timeout: float = 120.0):
        self.zkdev = zkdev
        self.home = str(home) if home is not None else None
        self.cluster = cluster
        self.shape = shape
        self.timeout = timeout
        self._env: Optional[Dict[str, str]] = None

    def __repr__(self) -> str:
        return f"Ensemble(cluster={self.cluster!r}, home={self.home!r}, shape={self.shape})"

    # -- running zkdev -------------------------------------------------------------------------------------

    def run(self, *args: str, timeout: Optional[float] = None) -> str:
        """Run `zkdev --home H --cluster C ARGS...`; its stdout, or ZkdevError."""
        home = ["--home", self.home] if self.home is not None else []
        argv = [self.zkdev, *home, "--cluster", self.cluster, *args]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout or self.timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise ZkdevError(argv, -1, f"no answer within {e.timeout} s") from None
        if done.returncode != 0:
            raise ZkdevError(argv, done.returncode, done.stderr)
        return done.stdout

    def run_json(self, *args: str, timeout: Optional[float] = None) -> Any:
        out = self.run(*args, "--json", timeout=timeout)
        try:
            return json.loads(out)
        except json.JSONDecodeError as e:
            raise ZkdevOutputError(f"`zkdev {' '.join(args)} --json` printed no JSON document ({e}): {out[:200]!r}")

    # -- lifecycle ------------------------------------------------------------------------------------------

    def up(self, *, slot: Optional[str] = "auto", owner: Optional[int] = None, timeout: Duration = "90s",
           create: bool = True) -> Status:
        """Make the ensemble with `shape` on a free block of ports (`slot="auto"`), owned by process `owner`
        (when it dies, even by SIGKILL, the ensemble is stopped and purged), and wait for one leader.
        `create=False` starts an existing, stopped ensemble again with its data and its ports."""
        args = ["up", *((self.shape or Shape()).up_args() if create else []), "--timeout", _duration(timeout)]
        if slot is not None and create:
            args += ["--slot", str(slot)]
        if owner is not None:
            args += ["--owner", str(owner)]
        self._env = None
        self.run_json(*args, timeout=_seconds(timeout) + 30)
        return self.status()

    def down(self, purge: bool = True) -> None:
        self.run("down", *(["--purge"] if purge else []))
        self._env = None

    def reset(self) -> ResetResult:
        """A clean ensemble without restarting a running JVM: every znode but /zookeeper deleted, every client
        session closed, every fault healed, stopped nodes started, paused ones resumed."""
        return parse(ResetResult, self.run_json("reset"))

    def wait(self, timeout: Duration = "60s") -> None:
        self.run("wait", "--timeout", _duration(timeout), timeout=_seconds(timeout) + 30)

    # -- what the ensemble is -------------------------------------------------------------------------------

    def status(self) -> Status:
        return parse(Status, self.run_json("status"))

    @property
    def leader(self) -> Optional[int]:
        return self.status().leader

    def env(self) -> Dict[str, str]:
        """`zkdev env` as a dict: ZK_CONNECT_STRING, ZK_DIRECT_CONNECT_STRING, the TLS files, ZKDEV_SLOT..."""
        if self._env is None:
            env: Dict[str, str] = {}
            for line in self.run("env").splitlines():
                line = line.strip()
                if line.startswith("export ") and "=" in line:
                    key, _, value = line[len("export "):].partition("=")
                    parts = shlex.split(value)
                    env[key] = parts[0] if parts else ""
            self._env = env
        return self._env

    @property
    def connect_string(self) -> str:
        """Where clients connect (on a `--net` cluster: through the client proxies, so `link client ID` and
        `partition` reach them)."""
        return self.env()["ZK_CONNECT_STRING"]

    @property
    def direct_connect_string(self) -> str:
        """The nodes' own client ports (around the proxies of a `--net` cluster)."""
        env = self.env()
        return env.get("ZK_DIRECT_CONNECT_STRING", env["ZK_CONNECT_STRING"])

    @property
    def secure_connect_string(self) -> str:
        env = self.env()
        if "ZK_SECURE_CONNECT_STRING" not in env:
            raise ZkdevError(["zkdev", "env"], 0, f"cluster {self.cluster} serves no TLS: make it with tls=True")
        return env["ZK_SECURE_CONNECT_STRING"]

    @property
    def tls(self) -> TlsFiles:
        env = self.env()
        if "ZK_TLS_CA" not in env:
            raise ZkdevError(["zkdev", "env"], 0, f"cluster {self.cluster} serves no TLS: make it with tls=True")
        return TlsFiles(ca=env["ZK_TLS_CA"], cert=env["ZK_TLS_CERT"], key=env["ZK_TLS_KEY"],
                        keystore=env.get("ZK_TLS_KEYSTORE"), java_opts=env.get("ZK_TLS_JAVA_OPTS"))

    def client_address(self, node_id: int) -> str:
        """host:port of one node's client port (through its proxy on a `--net` cluster)."""
        ids = [n.id for n in self.status().nodes]
        return self.connect_string.split(",")[ids.index(node_id)]

    # -- process faults -------------------------------------------------------------------------------------

    def kill_leader(self, *, signal: str = "kill", restart: bool = False, force: bool = False,
                    timeout: Optional[Duration] = None) -> KillLeaderResult:
        args = ["kill-leader", "--signal", signal]
        args += ["--restart"] if restart else []
        args += ["--force"] if force else []
        args += ["--timeout", _duration(timeout)] if timeout is not None else []
        return parse(KillLeaderResult, self.run_json(*args))

    def _node_action(self, action: str, target: Target, force: bool, wait: bool,
                     timeout: Optional[Duration]) -> NodeActionResult:
        args = [action, str(target)]
        args += ["--force"] if force else []
        args += [] if wait else ["--no-wait"]
        args += ["--timeout", _duration(timeout)] if timeout is not None else []
        return parse(NodeActionResult, self.run_json(*args))

    def stop(self, target: Target, *, force: bool = False, wait: bool = True,
             timeout: Optional[Duration] = None) -> NodeActionResult:
        """SIGTERM a node: an id, "leader", "follower", "observer" or "all"."""
        return self._node_action("stop", target, force, wait, timeout)

    def start(self, target: Target, *, wait: bool = True, timeout: Optional[Duration] = None) -> NodeActionResult:
        return self._node_action("start", target, False, wait, timeout)

    def restart(self, target: Target, *, force: bool = False, wait: bool = True,
                timeout: Optional[Duration] = None) -> NodeActionResult:
        return self._node_action("restart", target, force, wait, timeout)

    def kill(self, target: Target, *, force: bool = False, wait: bool = True,
             timeout: Optional[Duration] = None) -> NodeActionResult:
        """SIGKILL a node (a crash)."""
        return self._node_action("kill", target, force, wait, timeout)

    def pause(self, target: Target, *, force: bool = False, wait: bool = True,
              timeout: Optional[Duration] = None) -> NodeActionResult:
        """SIGSTOP a node: it holds its sockets open and answers nothing."""
        return self._node_action("pause", target, force, wait, timeout)

    def resume(self, target: Target, *, wait: bool = True, timeout: Optional[Duration] = None) -> NodeActionResult:
        return self._node_action("resume", target, False, wait, timeout)

    # -- network faults (clusters made with net=True) ------------------------------------------------------

    def partition(self, *nodes: Target, from_: Sequence[Target] = (), one_way: bool = False, wait: bool = True,
                  timeout: Optional[Duration] = None) -> PartitionResult:
        args = ["partition", *map(str, nodes)]
        args += ["--from", *map(str, from_)] if from_ else []
        args += ["--one-way"] if one_way else []
        args += [] if wait else ["--no-wait"]
        args += ["--timeout", _duration(timeout)] if timeout is not None else []
        return parse(PartitionResult, self.run_json(*args))

    def isolate(self, node: Target, *, one_way: bool = False, wait: bool = True,
                timeout: Optional[Duration] = None) -> PartitionResult:
        args = ["isolate", str(node)]
        args += ["--one-way"] if one_way else []
        args += [] if wait else ["--no-wait"]
        args += ["--timeout", _duration(timeout)] if timeout is not None else []
        return parse(PartitionResult, self.run_json(*args))

    def link(self, a: Target, b: Target, *, delay: Optional[str] = None, jitter: Optional[str] = None,
             loss: Optional[str] = None, bandwidth: Optional[str] = None, stall: bool = False, cut: bool = False,
             reset: bool = False, port: Optional[str] = None, one_way: bool = False) -> LinkResult:
        """Degrade the link between two nodes, or between the clients and a node (`a="client"`)."""
        args = ["link", str(a), str(b)]
        for flag, value in (("--delay", delay), ("--jitter", jitter), ("--loss", loss),
                            ("--bandwidth", bandwidth), ("--port", port)):
            args += [flag, str(value)] if value is not None else []
        for flag, on in (("--stall", stall), ("--cut", cut), ("--reset", reset), ("--one-way", one_way)):
            args += [flag] if on else []
        return parse(LinkResult, self.run_json(*args))

    def heal(self, *ends: Target, wait: bool = True, timeout: Optional[Duration] = None) -> HealResult:
        """Heal the links between two ends, or every link (no ends)."""
        args = ["heal", *map(str, ends)]
        args += [] if wait else ["--no-wait"]
        args += ["--timeout", _duration(timeout)] if timeout is not None else []
        return parse(HealResult, self.run_json(*args))

    # -- sessions -------------------------------------------------------------------------------------------

    def sessions(self) -> List[Session]:
        return [parse(Session, s, f"sessions[{i}]") for i, s in enumerate(self.run_json("sessions")["sessions"])]

    def expire_session(self, session_id: Union[int, str, None] = None, *, client: Optional[str] = None,
                       all: bool = False, node: Optional[int] = None) -> ExpireResult:
        """End a session for real (its ephemerals go, the client sees it expired). `session_id` as an int
        (kazoo's `client_id[0]`, Java's `getSessionId()`) or "0x..."; or `client="host:port"`; or `all=True`."""
        if session_id is not None:
            args = [hex(session_id) if isinstance(session_id, int) else session_id]
        elif client is not None:
            args = ["--client", client]
        elif all:
            args = ["--all"] + (["--node", str(node)] if node is not None else [])
        else:
            raise ValueError("expire_session needs a session id, client= or all=True")
        return parse(ExpireResult, self.run_json("expire-session", *args))

    # -- disk faults (clusters made with disk_faults=True) ----------------------------------------------------

    def disk(self, target: Target, *, full: bool = False, eio: bool = False, slow_fsync: Optional[str] = None,
             heal: bool = False, timeout: Optional[Duration] = None) -> DiskResult:
        chosen = [f for f, on in (("--full", full), ("--eio", eio), ("--heal", heal)) if on]
        chosen += ["--slow-fsync", str(slow_fsync)] if slow_fsync is not None else []
        if len([c for c in chosen if c.startswith("--")]) != 1:
            raise ValueError("disk needs exactly one of full=True, eio=True, slow_fsync='50ms', heal=True")
        args = ["disk", *chosen, str(target)]
        args += ["--timeout", _duration(timeout)] if timeout is not None else []
        return parse(DiskResult, self.run_json(*args))

    def disk_full(self, target: Target) -> DiskResult:
        return self.disk(target, full=True)

    def disk_eio(self, target: Target) -> DiskResult:
        return self.disk(target, eio=True)

    def disk_slow_fsync(self, target: Target, delay: str) -> DiskResult:
        return self.disk(target, slow_fsync=delay)

    def disk_heal(self, target: Target) -> DiskResult:
        return self.disk(target, heal=True)

    # -- membership (clusters made with reconfig=True) --------------------------------------------------------

    def add(self, count: int = 1, *, observer: bool = False, force: bool = False) -> MembershipResult:
        args = ["add", "--count", str(count)]
        args += ["--observer"] if observer else []
        args += ["--force"] if force else []
        return parse(MembershipResult, self.run_json(*args))

    def remove(self, node: Target, *, force: bool = False) -> MembershipResult:
        return parse(MembershipResult, self.run_json("remove", str(node), *(["--force"] if force else [])))


def _seconds(value: Duration) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    for unit, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(unit):
            try:
                return float(text[: -len(unit)]) * factor
            except ValueError:
                break
    return 120.0
