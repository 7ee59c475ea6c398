package dev.zkdev.junit;

import dev.zkdev.junit.Results.DiskResult;
import dev.zkdev.junit.Results.ExpireResult;
import dev.zkdev.junit.Results.HealResult;
import dev.zkdev.junit.Results.KillLeaderResult;
import dev.zkdev.junit.Results.LinkResult;
import dev.zkdev.junit.Results.MembershipResult;
import dev.zkdev.junit.Results.NodeActionResult;
import dev.zkdev.junit.Results.PartitionResult;
import dev.zkdev.junit.Results.ResetResult;
import dev.zkdev.junit.Results.Status;
import dev.zkdev.junit.Results.TlsFiles;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * One zkdev cluster, driven through the zkdev binary's {@code --json} output. Every fault method runs the zkdev
 * command of the same name and returns its document as a record; a failing command throws
 * {@link ZkdevException} with zkdev's message. Targets are node ids or {@code "leader"}, {@code "follower"},
 * {@code "observer"}, {@code "all"}.
 */
public final class Ensemble {
  private final String zkdev;
  private final Path home;
  private final String cluster;
  private Map<String, String> env;

  public Ensemble(String zkdev, Path home, String cluster) {
    this.zkdev = zkdev;
    this.home = home;
    this.cluster = cluster;
  }

  /**
   * The zkdev binary: the system property {@code zkdev.bin}, else {@code $ZKDEV_BIN}, else {@code zkdev} on
   * PATH, else {@code target/debug/zkdev} of the checkout around the working directory.
   */
  public static String findZkdev() {
    for (String[] source : new String[][] {
        {"-Dzkdev.bin", System.getProperty("zkdev.bin")}, {"ZKDEV_BIN", System.getenv("ZKDEV_BIN")}}) {
      if (source[1] != null && !source[1].isEmpty()) {
        if (!Files.isExecutable(Paths.get(source[1]))) {
          throw new ZkdevException(source[0] + " names " + source[1] + ", which is not an executable file", 3);
        }
        return source[1];
      }
    }
    String path = System.getenv("PATH");
    if (path != null) {
      for (String dir : path.split(":")) {
        Path candidate = Paths.get(dir.isEmpty() ? "." : dir, "zkdev");
        if (Files.isExecutable(candidate)) {
          return candidate.toString();
        }
      }
    }
    for (Path dir = Paths.get("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      Path candidate = dir.resolve("target/debug/zkdev");
      if (Files.isRegularFile(dir.resolve("Cargo.toml")) && Files.isExecutable(candidate)) {
        return candidate.toString();
      }
    }
    throw new ZkdevException("no zkdev binary: pass -Dzkdev.bin=PATH or set ZKDEV_BIN, put zkdev on PATH, or "
        + "build the checkout (`cargo build --workspace`)", 3);
  }

  public Path home() {
    return home;
  }

  public String cluster() {
    return cluster;
  }

  // -- running zkdev ------------------------------------------------------------------------------------------

  /** Runs {@code zkdev --home H --cluster C ARGS...} and returns its stdout. */
  public String run(String... args) {
    List<String> argv = new ArrayList<>(List.of(zkdev, "--home", home.toString(), "--cluster", cluster));
    argv.addAll(Arrays.asList(args));
    try {
      Process p = new ProcessBuilder(argv).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
          .start();
      CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> read(p.getErrorStream()));
      String out = read(p.getInputStream());
      if (!p.waitFor(300, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new ZkdevException("`" + String.join(" ", argv) + "` gave no answer within 300 s", 1);
      }
      if (p.exitValue() != 0) {
        throw new ZkdevException("`" + String.join(" ", argv) + "` exited " + p.exitValue() + ":\n"
            + err.join().strip(), p.exitValue());
      }
      return out;
    } catch (IOException e) {
      throw new ZkdevException("cannot run " + zkdev + ": " + e.getMessage(), 3);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ZkdevException("interrupted while running zkdev " + String.join(" ", args), 1);
    }
  }

  private static String read(InputStream in) {
    try (in) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "";
    }
  }

  /** Runs a zkdev command with {@code --json} and parses what it prints. */
  public Object runJson(String... args) {
    String[] withJson = Arrays.copyOf(args, args.length + 1);
    withJson[args.length] = "--json";
    return Json.parse(run(withJson));
  }

  // -- lifecycle ----------------------------------------------------------------------------------------------

  /** {@code zkdev up}: the given flags (e.g. {@code --nodes 3 --slot auto --owner PID}); waits for a leader. */
  public Status up(List<String> flags) {
    List<String> args = new ArrayList<>(List.of("up"));
    args.addAll(flags);
    runJson(args.toArray(String[]::new));
    env = null;
    return status();
  }

  public void down(boolean purge) {
    if (purge) {
      run("down", "--purge");
    } else {
      run("down");
    }
    env = null;
  }

  /**
   * A clean ensemble without restarting a running JVM: every znode but /zookeeper deleted, every client session
   * closed, every fault healed, stopped nodes started and paused ones resumed.
   */
  public ResetResult reset() {
    return ResetResult.from(runJson("reset"));
  }

  // -- what the ensemble is -----------------------------------------------------------------------------------

  public Status status() {
    return Status.from(runJson("status"));
  }

  /** The leader's id now (null while there is none). */
  public Integer leader() {
    return status().leader();
  }

  /** {@code zkdev env} as a map: ZK_CONNECT_STRING, ZK_DIRECT_CONNECT_STRING, the TLS files, ZKDEV_SLOT... */
  public synchronized Map<String, String> env() {
    if (env == null) {
      Map<String, String> vars = new LinkedHashMap<>();
      for (String line : run("env").split("\n")) {
        line = line.strip();
        int eq = line.indexOf('=');
        if (line.startsWith("export ") && eq > 0) {
          String value = line.substring(eq + 1);
          if (value.length() >= 2 && value.startsWith("'") && value.endsWith("'")) {
            value = value.substring(1, value.length() - 1).replace("'\\''", "'");
          }
          vars.put(line.substring("export ".length(), eq), value);
        }
      }
      env = vars;
    }
    return env;
  }

  /** Where clients connect (through the client proxies on a {@code net = true} ensemble). */
  public String connectString() {
    return env().get("ZK_CONNECT_STRING");
  }

  /** host:port of one node's client port (its proxy on a {@code net = true} ensemble). */
  public String clientAddress(int nodeId) {
    List<Results.Node> nodes = status().nodes();
    for (int i = 0; i < nodes.size(); i++) {
      if (nodes.get(i).id() == nodeId) {
        return connectString().split(",")[i];
      }
    }
    throw new IllegalArgumentException("no node " + nodeId + " in cluster " + cluster);
  }

  public String secureConnectString() {
    String s = env().get("ZK_SECURE_CONNECT_STRING");
    if (s == null) {
      throw new ZkdevException("cluster " + cluster + " serves no TLS: make it with tls = true", 2);
    }
    return s;
  }

  public TlsFiles tls() {
    Map<String, String> e = env();
    if (!e.containsKey("ZK_TLS_CA")) {
      throw new ZkdevException("cluster " + cluster + " serves no TLS: make it with tls = true", 2);
    }
    return new TlsFiles(e.get("ZK_TLS_CA"), e.get("ZK_TLS_CERT"), e.get("ZK_TLS_KEY"), e.get("ZK_TLS_KEYSTORE"),
        e.get("ZK_TLS_JAVA_OPTS"));
  }

  // -- process faults -----------------------------------------------------------------------------------------

  /** SIGKILL the leader and wait for a new one with a higher epoch. */
  public KillLeaderResult killLeader() {
    return KillLeaderResult.from(runJson("kill-leader"));
  }

  /** kill-leader with its flags, e.g. {@code "--signal", "term", "--restart"}. */
  public KillLeaderResult killLeader(String... flags) {
    return KillLeaderResult.from(runJson(concat(new String[] {"kill-leader"}, flags)));
  }

  public NodeActionResult stop(Object target, String... flags) {
    return NodeActionResult.from(runJson(concat(new String[] {"stop", target.toString()}, flags)));
  }

  public NodeActionResult start(Object target, String... flags) {
    return NodeActionResult.from(runJson(concat(new String[] {"start", target.toString()}, flags)));
  }

  public NodeActionResult restart(Object target, String... flags) {
    return NodeActionResult.from(runJson(concat(new String[] {"restart", target.toString()}, flags)));
  }

  public NodeActionResult kill(Object target, String... flags) {
    return NodeActionResult.from(runJson(concat(new String[] {"kill", target.toString()}, flags)));
  }

  public NodeActionResult pause(Object target, String... flags) {
    return NodeActionResult.from(runJson(concat(new String[] {"pause", target.toString()}, flags)));
  }

  public NodeActionResult resume(Object target, String... flags) {
    return NodeActionResult.from(runJson(concat(new String[] {"resume", target.toString()}, flags)));
  }

  // -- network faults (net = true) ----------------------------------------------------------------------------

  /** Cut the nodes off from the others; flags such as {@code "--from", "1"} or {@code "--one-way"} may follow. */
  public PartitionResult partition(Object... nodesThenFlags) {
    return PartitionResult.from(runJson(concat(new String[] {"partition"}, strings(nodesThenFlags))));
  }

  public PartitionResult isolate(Object node, String... flags) {
    return PartitionResult.from(runJson(concat(new String[] {"isolate", node.toString()}, flags)));
  }

  /** Degrade a link, e.g. {@code link("client", 1, "--delay", "200ms")}. */
  public LinkResult link(Object a, Object b, String... flags) {
    return LinkResult.from(runJson(concat(new String[] {"link", a.toString(), b.toString()}, flags)));
  }

  /** Heal the links between two ends, or every link (no ends). */
  public HealResult heal(Object... ends) {
    return HealResult.from(runJson(concat(new String[] {"heal"}, strings(ends))));
  }

  // -- sessions -----------------------------------------------------------------------------------------------

  /** End a session for real (its ephemerals go; the client sees it expired): ZooKeeper's getSessionId(). */
  public ExpireResult expireSession(long sessionId) {
    return ExpireResult.from(runJson("expire-session", "0x" + Long.toHexString(sessionId)));
  }

  public ExpireResult expireAllSessions() {
    return ExpireResult.from(runJson("expire-session", "--all"));
  }

  // -- disk faults (diskFaults = true) ------------------------------------------------------------------------

  /** A disk fault on one node: {@code disk(1, "--full")}, {@code "--eio"}, {@code "--slow-fsync", "50ms"}, {@code "--heal"}. */
  public DiskResult disk(Object target, String... fault) {
    return DiskResult.from(runJson(concat(concat(new String[] {"disk"}, fault), new String[] {target.toString()})));
  }

  // -- membership (reconfig = true) ---------------------------------------------------------------------------

  public MembershipResult add(int count, String... flags) {
    return MembershipResult.from(runJson(concat(new String[] {"add", "--count", Integer.toString(count)}, flags)));
  }

  public MembershipResult remove(Object node, String... flags) {
    return MembershipResult.from(runJson(concat(new String[] {"remove", node.toString()}, flags)));
  }

  private static String[] strings(Object[] items) {
    return Arrays.stream(items).map(Object::toString).toArray(String[]::new);
  }

  private static String[] concat(String[] a, String[] b) {
    String[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  @Override
  public String toString() {
    return "Ensemble[cluster=" + cluster + ", home=" + home + "]";
  }
}
