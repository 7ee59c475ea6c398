"""On one node (no quorum needed): sessions, reset, the typed status, disk faults."""

import os
import threading

import pytest
from kazoo.client import KazooClient, KazooState

from conftest import wait_until

pytestmark = pytest.mark.zkdev(voters=1, disk_faults=True)


@pytest.fixture
def kazoo(zk_ensemble):
    clients = []

    def connect(hosts=None):
        client = KazooClient(hosts=hosts or zk_ensemble.connect_string, timeout=10)
        client.start(timeout=20)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.stop()
        client.close()


def test_an_expired_session_is_lost_for_the_client_and_its_ephemerals_go(zk_ensemble, kazoo):
    zk = kazoo()
    seen = []
    lost = threading.Event()

    def listener(state):
        seen.append(state)
        if state == KazooState.LOST:
            lost.set()

    zk.add_listener(listener)
    zk.create("/worker", b"me", ephemeral=True)
    session_id = zk.client_id[0]

    result = zk_ensemble.expire_session(session_id)

    assert [s.id for s in result.expired] == [hex(session_id)]
    assert result.expired[0].ephemerals_deleted == ["/worker"]
    assert lost.wait(20), f"kazoo saw {seen}, never LOST"
    other = kazoo()
    assert other.exists("/worker") is None


def test_reset_deletes_znodes_and_closes_sessions_without_restarting(zk_ensemble, kazoo):
    zk = kazoo()
    zk.create("/app/config", b"x", makepath=True)
    zk.create("/app/member", b"x", ephemeral=True)
    before = zk_ensemble.status()

    result = zk_ensemble.reset()

    assert result.znodes_deleted >= 2
    assert result.sessions_closed >= 1
    after = zk_ensemble.status()
    assert [n.pid for n in after.nodes] == [n.pid for n in before.nodes], "reset restarted a JVM"
    assert kazoo().get_children("/") == ["zookeeper"]


def test_each_test_gets_a_clean_ensemble_part_1(zk_ensemble, kazoo):
    kazoo().create("/left-behind", b"x")


def test_each_test_gets_a_clean_ensemble_part_2(zk_ensemble, kazoo):
    assert kazoo().exists("/left-behind") is None


def test_status_is_typed_and_the_ensemble_has_its_slot_and_owner(zk_ensemble, request):
    status = zk_ensemble.status()
    assert len(status.nodes) == 1
    node = status.node(1)
    assert node.mode in ("standalone", "leader") and node.serving and isinstance(node.pid, int)
    assert status.slot is not None and status.slot.port_offset >= 0
    assert zk_ensemble.env()["ZKDEV_SLOT"] == str(status.slot.index)
    workerinput = getattr(request.config, "workerinput", None)
    pytest_pid = workerinput["zkdev_owner"] if workerinput else os.getpid()
    assert status.owner == pytest_pid
    assert status.connect_string == zk_ensemble.connect_string


def test_a_slow_disk_is_measured_and_healed(zk_ensemble):
    slow = zk_ensemble.disk_slow_fsync(1, "100ms")
    assert slow.nodes == [1] and slow.fault["fault"] == "slow-fsync"
    assert slow.outcome[0].serving
    assert slow.raw["writes_after"]["median_ms"] >= 100
    healed = zk_ensemble.disk_heal(1)
    assert healed.fault["fault"] == "healthy"
    assert healed.raw["writes_after"]["median_ms"] < 100


@pytest.mark.zkdev(voters=1, reconfig=True)
def test_an_observer_added_and_removed_by_reconfig(zk_ensemble, kazoo):
    added = zk_ensemble.add(1, observer=True)
    assert added.change == "add" and added.nodes == [2]
    assert added.members_before == "voters 1" and added.members_after == "voters 1, observers 2"
    wait_until(lambda: zk_ensemble.status().node(2).mode == "observer", timeout=10, what="node 2 observing")
    kazoo().create("/seen-by-all", b"x")
    kazoo(zk_ensemble.client_address(2)).sync("/seen-by-all")
    assert kazoo(zk_ensemble.client_address(2)).exists("/seen-by-all") is not None

    removed = zk_ensemble.remove(2)
    assert removed.change == "remove" and removed.nodes == [2]
    assert removed.members_after == "voters 1"
    assert [n.id for n in zk_ensemble.status().nodes] == [1]
