package dev.zkdev.junit;

import java.util.List;
import java.util.Map;

/** Typed results: records parsed from the documents {@code zkdev ... --json} prints. */
public final class Results {
  private Results() {}

  public record Quorum(int voters, int votersUp, int needed) {
    static Quorum from(Fields f) {
      return new Quorum((int) f.num("voters"), (int) f.num("voters_up"), (int) f.num("needed"));
    }
  }

  public record Node(int id, String role, String process, String mode, Long pid, int clientPort,
      Integer secureClientPort, String address) {
    static Node from(Object o) {
      Fields f = new Fields(o, "nodes[]");
      return new Node((int) f.num("id"), f.str("role"), f.str("process"), f.strOrNull("mode"), f.numOrNull("pid"),
          (int) f.num("client_port"), f.intOrNull("secure_client_port"),
          f.raw().containsKey("address") ? f.str("address") : "127.0.0.1");
    }

    public boolean serving() {
      return mode != null && List.of("leader", "follower", "observer", "standalone").contains(mode);
    }
  }

  public record Status(String cluster, String connectString, Integer leader, Quorum quorum, List<Node> nodes,
      String secureConnectString, Long owner, Map<String, Object> raw) {
    static Status from(Object doc) {
      Fields f = new Fields(doc, "status");
      return new Status(f.str("cluster"), f.str("connect_string"), f.intOrNull("leader"),
          Quorum.from(f.obj("quorum")), f.list("nodes", Node::from), f.strOrNull("secure_connect_string"),
          f.numOrNull("owner"), f.raw());
    }

    public Node node(int id) {
      return nodes.stream().filter(n -> n.id() == id).findFirst()
          .orElseThrow(() -> new IllegalArgumentException("no node " + id + " in cluster " + cluster));
    }
  }

  public record KillLeaderResult(int oldLeader, Long oldEpoch, String signal, Integer newLeader, Long newEpoch,
      Long newLeaderMs, Map<String, Object> raw) {
    static KillLeaderResult from(Object doc) {
      Fields f = new Fields(doc, "kill-leader");
      return new KillLeaderResult((int) f.num("old_leader"), f.numOrNull("old_epoch"), f.str("signal"),
          f.intOrNull("new_leader"), f.numOrNull("new_epoch"), f.numOrNull("new_leader_ms"), f.raw());
    }
  }

  public record NodeOutcome(int id, String was, String outcome, String now) {
    static NodeOutcome from(Object o) {
      Fields f = new Fields(o, "nodes[]");
      return new NodeOutcome((int) f.num("id"), f.strOrNull("was"), f.str("outcome"), f.strOrNull("now"));
    }
  }

  /** What stop, start, restart, kill, pause and resume did. */
  public record NodeActionResult(String action, String target, List<NodeOutcome> nodes, Integer leader,
      String warning, Map<String, Object> raw) {
    static NodeActionResult from(Object doc) {
      Fields f = new Fields(doc, "node action");
      return new NodeActionResult(f.str("action"), f.str("target"), f.list("nodes", NodeOutcome::from),
          f.intOrNull("leader"), f.strOrNull("warning"), f.raw());
    }
  }

  /** What partition and isolate did. */
  public record PartitionResult(String action, List<Integer> cutOff, List<Integer> from, Integer oldLeader,
      Integer newLeader, String warning, Map<String, Object> raw) {
    static PartitionResult from(Object doc) {
      Fields f = new Fields(doc, "partition");
      return new PartitionResult(f.str("action"), f.ints("cut_off"), f.ints("from"), f.intOrNull("old_leader"),
          f.intOrNull("new_leader"), f.strOrNull("warning"), f.raw());
    }
  }

  public record LinkResult(Map<String, Object> link, Map<String, Object> fault, Map<String, Object> raw) {
    static LinkResult from(Object doc) {
      Fields f = new Fields(doc, "link");
      return new LinkResult(f.obj("link").raw(), f.obj("fault").raw(), f.raw());
    }
  }

  public record HealResult(String healed, Integer leader, Long allServingMs, String warning,
      Map<String, Object> raw) {
    static HealResult from(Object doc) {
      Fields f = new Fields(doc, "heal");
      return new HealResult(f.str("healed"), f.intOrNull("leader"), f.numOrNull("all_serving_ms"),
          f.strOrNull("warning"), f.raw());
    }
  }

  public record ExpiredSession(String id, List<String> ephemeralsDeleted) {
    static ExpiredSession from(Object o) {
      Fields f = new Fields(o, "expired[]");
      return new ExpiredSession(f.str("id"), f.strings("ephemerals_deleted"));
    }
  }

  public record ExpireResult(List<ExpiredSession> expired, Map<String, Object> raw) {
    static ExpireResult from(Object doc) {
      Fields f = new Fields(doc, "expire-session");
      return new ExpireResult(f.list("expired", ExpiredSession::from), f.raw());
    }
  }

  public record DiskResult(List<Integer> nodes, Map<String, Object> fault, String hint, Map<String, Object> raw) {
    static DiskResult from(Object doc) {
      Fields f = new Fields(doc, "disk");
      return new DiskResult(f.ints("nodes"), f.obj("fault").raw(), f.strOrNull("hint"), f.raw());
    }
  }

  /** What add and remove did: a reconfiguration ZooKeeper committed. */
  public record MembershipResult(String change, List<Integer> nodes, String membersBefore, String membersAfter,
      Map<String, Object> raw) {
    static MembershipResult from(Object doc) {
      Fields f = new Fields(doc, "membership");
      return new MembershipResult(f.str("change"), f.ints("nodes"), f.str("members_before"),
          f.str("members_after"), f.raw());
    }
  }

  public record ResetResult(long znodesDeleted, long sessionsClosed, List<String> faultsHealed,
      List<Integer> nodesStarted, List<Integer> nodesResumed, long tookMs) {
    static ResetResult from(Object doc) {
      Fields f = new Fields(doc, "reset");
      return new ResetResult(f.num("znodes_deleted"), f.num("sessions_closed"), f.strings("faults_healed"),
          f.ints("nodes_started"), f.ints("nodes_resumed"), f.num("took_ms"));
    }
  }

  /** The cluster's CA, the client certificate and key (PEM), and the JVM options a Java client needs. */
  public record TlsFiles(String ca, String cert, String key, String keystore, String javaOpts) {}
}
