"""The pytest plugin: options, the `zkdev` mark and the ensemble fixtures.

Fixtures:
  zk_session_ensemble  one ensemble for the whole session (per xdist worker), shaped by the --zkdev-* options;
                       never reset by the plugin
  zk_ensemble          a clean ensemble for one test: shaped by the test's `@pytest.mark.zkdev(...)` (else the
                       options), shared by every test of that shape in the session and reset (`zkdev reset`:
                       no JVM restarted) before each of them

Every ensemble is made with `--slot auto` (its own free ports: xdist workers never clash) and
`--owner <pid of the pytest process>` (when pytest dies, even by SIGKILL, zkdev stops and purges it), unless
--zkdev-reuse keeps it across runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import OrderedDict
from typing import Optional

import pytest

from .ensemble import Ensemble, Shape, ZkdevError, find_zkdev

_SHAPE_KEYS = ("voters", "observers", "profile", "tls", "net", "disk_faults", "reconfig")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("zkdev", "real ZooKeeper ensembles run by zkdev")
    group.addoption("--zkdev", metavar="PATH", default=None,
                    help="the zkdev binary [default: $ZKDEV_BIN, then PATH, then the checkout's target/debug]")
    group.addoption("--zkdev-voters", type=int, default=None, metavar="N",
                    help="voting participants of an ensemble no mark shapes [default: 1]")
    group.addoption("--zkdev-observers", type=int, default=None, metavar="M", help="observers [default: 0]")
    group.addoption("--zkdev-profile", default=None, metavar="NAME|FILE",
                    help="zkdev profile [default: fast]")
    group.addoption("--zkdev-tls", action="store_true", default=None, help="every node also serves TLS")
    group.addoption("--zkdev-net", action="store_true", default=None,
                    help="link proxies: partition, isolate, link and heal work")
    group.addoption("--zkdev-reuse", action="store_true", default=False,
                    help="keep ensembles across runs (no owner, not purged) and adopt them when the shape matches, "
                         "reset at adoption")
    group.addoption("--zkdev-home", default=None, metavar="DIR",
                    help="with --zkdev-reuse: where the kept ensembles live [default: zkdev's own home]")
    group.addoption("--zkdev-max-ensembles", type=int, default=2, metavar="K",
                    help="ensembles one pytest process keeps running at once; asking for another shape stops "
                         "the least recently used one [default: 2]")
    parser.addini("zkdev_voters", "default voters", default="1")
    parser.addini("zkdev_observers", "default observers", default="0")
    parser.addini("zkdev_profile", "default profile", default="fast")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "zkdev(voters=1, observers=0, profile='fast', tls=False, net=False, disk_faults=False, reconfig=False): "
        "the shape of the zk_ensemble this test gets",
    )
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistOwner(), "zkdev-xdist-owner")


class _XdistOwner:
    """Under pytest-xdist, the ensembles of every worker belong to the controlling pytest process: killing it
    (the process a person or CI kills) takes them all down."""

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:  # noqa: ANN001 (xdist's WorkerController)
        node.workerinput["zkdev_owner"] = os.getpid()


def _owner_pid(config: pytest.Config) -> int:
    workerinput = getattr(config, "workerinput", None)
    if workerinput and "zkdev_owner" in workerinput:
        return int(workerinput["zkdev_owner"])
    return os.getpid()


def _worker_id(config: pytest.Config) -> str:
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput.get("workerid", "main")) if workerinput else "main"


def default_shape(config: pytest.Config) -> Shape:
    opt = config.getoption
    return Shape(
        voters=opt("--zkdev-voters") or int(config.getini("zkdev_voters")),
        observers=opt("--zkdev-observers") if opt("--zkdev-observers") is not None
        else int(config.getini("zkdev_observers")),
        profile=opt("--zkdev-profile") or config.getini("zkdev_profile"),
        tls=bool(opt("--zkdev-tls")),
        net=bool(opt("--zkdev-net")),
    )


def shape_of(node: pytest.Item, base: Shape) -> Shape:
    """The test's `zkdev` mark (closest first: function, class, module) laid over `base`."""
    fields = {k: getattr(base, k) for k in _SHAPE_KEYS}
    for mark in reversed(list(node.iter_markers("zkdev"))):
        if mark.args:
            raise pytest.UsageError(f"{node.nodeid}: @pytest.mark.zkdev takes keywords only ({', '.join(_SHAPE_KEYS)})")
        unknown = set(mark.kwargs) - set(_SHAPE_KEYS)
        if unknown:
            raise pytest.UsageError(
                f"{node.nodeid}: @pytest.mark.zkdev does not know {sorted(unknown)}; it takes {', '.join(_SHAPE_KEYS)}"
            )
        fields.update(mark.kwargs)
    return Shape(**fields)


class EnsemblePool:
    """The ensembles of one pytest process, by shape."""

    def __init__(self, config: pytest.Config):
        self.zkdev = find_zkdev(config.getoption("--zkdev"))
        self.reuse = bool(config.getoption("--zkdev-reuse"))
        self.max_alive = max(1, config.getoption("--zkdev-max-ensembles"))
        self.worker = _worker_id(config)
        self.owner = _owner_pid(config)
        if self.reuse:
            self.home: Optional[str] = config.getoption("--zkdev-home")
            self._tmp_home: Optional[str] = None
        else:
            # Short: the control socket lives in the cluster directory and a socket path has ~100 bytes.
            self._tmp_home = tempfile.mkdtemp(prefix="pytest-zkdev-")
            self.home = self._tmp_home
        self.alive: "OrderedDict[Shape, Ensemble]" = OrderedDict()
        self.pinned: set = set()

    def cluster_name(self, shape: Shape) -> str:
        prefix = "pytest-" if self.reuse else ""
        return f"{prefix}{self.worker}-{shape.name()}"

    def get(self, shape: Shape, *, reset: bool, pin: bool = False) -> Ensemble:
        ens = self.alive.get(shape)
        if ens is None:
            self._make_room()
            ens = Ensemble(self.zkdev, self.home, self.cluster_name(shape), shape)
            if self.reuse:
                self._adopt(ens)
                reset = True
            else:
                ens.up(slot="auto", owner=self.owner)
                reset = False  # brand new: nothing to clean
            self.alive[shape] = ens
        self.alive.move_to_end(shape)
        if pin:
            self.pinned.add(shape)
        if reset:
            ens.reset()
        return ens

    def _make_room(self) -> None:
        while len(self.alive) >= self.max_alive:
            victim = next((s for s in self.alive if s not in self.pinned), None)
            if victim is None:
                return
            ens = self.alive.pop(victim)
            ens.down(purge=not self.reuse)

    def _adopt(self, ens: Ensemble) -> None:
        """--zkdev-reuse: take the kept ensemble of this shape if there is one (starting it again if it is
        stopped), make a new one otherwise."""
        try:
            status = ens.status()
        except ZkdevError:
            ens.up(slot="auto")
            return
        shape = ens.shape
        assert shape is not None
        matches = (
            len(status.voters) == shape.voters
            and len(status.observers) == shape.observers
            and (status.secure_connect_string is not None) == shape.tls
            and bool((status.raw.get("links") or {}).get("proxied")) == shape.net
        )
        if not matches:
            ens.down(purge=True)
            ens.up(slot="auto")
        elif any(n.process != "running" for n in status.nodes):
            ens.up(create=False)

    def close(self) -> None:
        if self.reuse:
            return  # kept running for the next run to adopt
        errors = []
        for ens in list(self.alive.values()):
            try:
                ens.down(purge=not self.reuse)
            except ZkdevError as e:  # keep going: every other ensemble still has to go
                errors.append(str(e))
        self.alive.clear()
        if self._tmp_home:
            shutil.rmtree(self._tmp_home, ignore_errors=True)
        if errors:
            raise ZkdevError(["zkdev", "down"], 1, "\n".join(errors))


@pytest.fixture(scope="session")
def zkdev_pool(request: pytest.FixtureRequest):
    """The ensembles of this pytest process (one per shape asked for); stopped and purged at the end."""
    pool = EnsemblePool(request.config)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def zk_session_ensemble(zkdev_pool: EnsemblePool, request: pytest.FixtureRequest) -> Ensemble:
    """One ensemble for the whole session, shaped by the --zkdev-* options; the plugin never resets it."""
    return zkdev_pool.get(default_shape(request.config), reset=False, pin=True)


@pytest.fixture
def zk_ensemble(zkdev_pool: EnsemblePool, request: pytest.FixtureRequest) -> Ensemble:
    """A clean ensemble for this test, shaped by its `@pytest.mark.zkdev(...)`: no znode but /zookeeper, no
    client session, no fault (`zkdev reset`, no JVM restarted)."""
    shape = shape_of(request.node, default_shape(request.config))
    return zkdev_pool.get(shape, reset=True)
