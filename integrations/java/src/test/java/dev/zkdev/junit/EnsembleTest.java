package dev.zkdev.junit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.zkdev.junit.Results.ExpireResult;
import dev.zkdev.junit.Results.KillLeaderResult;
import dev.zkdev.junit.Results.Status;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.Watcher.Event.KeeperState;
import org.apache.zookeeper.ZooDefs.Ids;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Three voters, ZooKeeper's own Java client. */
@ZkdevEnsemble(voters = 3)
class EnsembleTest {
  private final List<ZooKeeper> clients = new java.util.ArrayList<>();

  private ZooKeeper connect(String hosts, CountDownLatch expired) throws Exception {
    CountDownLatch connected = new CountDownLatch(1);
    ZooKeeper zk = new ZooKeeper(hosts, 10_000, event -> {
      if (event.getState() == KeeperState.SyncConnected) {
        connected.countDown();
      }
      if (event.getState() == KeeperState.Expired && expired != null) {
        expired.countDown();
      }
    });
    clients.add(zk);
    assertTrue(connected.await(20, TimeUnit.SECONDS), "no connection to " + hosts);
    return zk;
  }

  @AfterEach
  void closeClients() throws InterruptedException {
    for (ZooKeeper zk : clients) {
      zk.close();
    }
  }

  @Test
  void anEphemeralOutlivesTheLeaderAndIsReadThroughAnotherNode(Ensemble ensemble) throws Exception {
    Status before = ensemble.status();
    int follower = before.nodes().stream().filter(n -> "follower".equals(n.mode())).findFirst().orElseThrow().id();
    ZooKeeper owner = connect(ensemble.clientAddress(follower), null);
    owner.create("/member", "a".getBytes(), Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);

    KillLeaderResult killed = ensemble.killLeader();

    assertEquals(before.leader().intValue(), killed.oldLeader());
    assertNotNull(killed.newLeader());
    assertNotEquals(killed.oldLeader(), killed.newLeader().intValue());
    assertTrue(killed.newEpoch() > killed.oldEpoch(), "the new epoch is not higher: " + killed);
    int reader = before.nodes().stream().map(Results.Node::id)
        .filter(id -> id != follower && id != killed.oldLeader()).findFirst().orElseThrow();
    ZooKeeper other = connect(ensemble.clientAddress(reader), null);
    other.sync("/member", (rc, path, ctx) -> { }, null);
    Stat stat = new Stat();
    assertArrayEquals("a".getBytes(), other.getData("/member", false, stat));
    assertEquals(owner.getSessionId(), stat.getEphemeralOwner(), "the ephemeral changed owner");
  }

  @Test
  void eachTestStartsCleanWithEveryNodeRunning(Ensemble ensemble) throws Exception {
    // Whichever test ran before (one killed a leader), reset started every node and deleted every znode.
    Status status = ensemble.status();
    assertTrue(status.nodes().stream().allMatch(Results.Node::serving), status.toString());
    assertEquals(3, status.quorum().votersUp());
    assertNull(connect(ensemble.connectString(), null).exists("/member", false));
    assertEquals(ProcessHandle.current().pid(), status.owner().longValue());
  }

  @Test
  void anExpiredSessionLosesItsEphemeral(Ensemble ensemble) throws Exception {
    CountDownLatch expired = new CountDownLatch(1);
    ZooKeeper zk = connect(ensemble.connectString(), expired);
    zk.create("/worker", new byte[0], Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);

    ExpireResult result = ensemble.expireSession(zk.getSessionId());

    assertEquals(List.of("/worker"), result.expired().get(0).ephemeralsDeleted());
    assertTrue(expired.await(20, TimeUnit.SECONDS), "the client never saw Expired");
    assertNull(connect(ensemble.connectString(), null).exists("/worker", false));
  }
}
