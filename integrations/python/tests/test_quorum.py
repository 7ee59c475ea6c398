"""Three voters behind link proxies: leader failover under a lock, partitions, node faults."""

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import LockTimeout

from conftest import wait_until

pytestmark = pytest.mark.zkdev(voters=3, net=True)


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


def test_a_lock_outlives_the_leader(zk_ensemble, kazoo):
    status = zk_ensemble.status()
    follower = next(n.id for n in status.nodes if n.mode == "follower")
    holder = kazoo(zk_ensemble.client_address(follower))
    lock = holder.Lock("/locks/job", identifier="worker-a")
    assert lock.acquire(timeout=10)

    killed = zk_ensemble.kill_leader()

    assert killed.old_leader == status.leader
    assert killed.new_leader is not None and killed.new_leader != killed.old_leader
    assert killed.new_epoch > killed.old_epoch
    # The holder's session survived the election: the lock is still its own, and nobody else gets it.
    rival = kazoo(zk_ensemble.client_address(killed.new_leader))
    assert rival.Lock("/locks/job").contenders() == ["worker-a"]
    with pytest.raises(LockTimeout):
        rival.Lock("/locks/job", identifier="worker-b").acquire(timeout=1)
    assert lock.is_acquired
    lock.release()
    assert rival.Lock("/locks/job", identifier="worker-b").acquire(timeout=10)


def test_reset_starts_a_killed_node_and_leaves_the_others_running(zk_ensemble):
    before = zk_ensemble.status()
    killed = zk_ensemble.kill("follower")
    node = killed.nodes[0].id
    assert killed.action == "kill" and zk_ensemble.status().node(node).process != "running"

    result = zk_ensemble.reset()

    assert result.nodes_started == [node]
    after = zk_ensemble.status()
    assert all(n.process == "running" and n.serving for n in after.nodes), after
    others = [n.id for n in before.nodes if n.id != node]
    assert [after.node(i).pid for i in others] == [before.node(i).pid for i in others]


def test_an_isolated_leader_is_replaced_and_heal_brings_it_back(zk_ensemble, kazoo):
    old = zk_ensemble.leader
    cut = zk_ensemble.isolate("leader")
    assert cut.action == "isolate" and cut.cut_off == [old]
    assert sorted(cut.from_) == sorted({1, 2, 3} - {old})
    assert cut.new_leader is not None and cut.new_leader != old

    healed = zk_ensemble.heal()
    assert healed.healed == "every link" and healed.warning is None
    assert healed.all_serving_ms is not None
    kazoo().create("/after-heal", b"ok")


def test_pause_and_resume_a_follower(zk_ensemble, kazoo):
    paused = zk_ensemble.pause("follower")
    assert paused.action == "pause" and len(paused.nodes) == 1
    node = paused.nodes[0].id
    assert wait_until(lambda: zk_ensemble.status().node(node).process == "paused", what=f"node {node} paused")
    resumed = zk_ensemble.resume(node)
    assert resumed.nodes[0].id == node and resumed.nodes[0].now in ("follower", "leader")


def test_a_client_link_fault_is_healed_by_reset(zk_ensemble):
    linked = zk_ensemble.link("client", 1, delay="200ms")
    assert linked.fault == {"delay_ms": 200}
    assert linked.link["a"] == "client" and linked.link["b"] == "1"
    result = zk_ensemble.reset()
    assert result.faults_healed, result
