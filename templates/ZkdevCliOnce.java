// zkdev's one-shot zkCli. ZooKeeper's own ZooKeeperMain parses the arguments, connects and runs the one
// command given on the command line (zkdev uses this class only when there is one), exactly as
// `zkCli.sh -server H:P CMD...` does; then, unlike ZooKeeperMain (whose run() exits the JVM without closing
// the session), it closes the session, so an ephemeral znode the command created goes away when the command
// returns instead of when the session times out.
public class ZkdevCliOnce extends org.apache.zookeeper.ZooKeeperMain {
    private ZkdevCliOnce(String[] args) throws java.io.IOException, InterruptedException {
        super(args);
    }

    public static void main(String[] args) throws java.io.IOException, InterruptedException {
        ZkdevCliOnce main = new ZkdevCliOnce(args);
        try {
            main.processCmd(main.cl);
        } finally {
            // Sends closeSession and waits for its answer; gives up at once when the connection is gone. Also
            // when the command threw (the exception then ends the JVM as it would end ZooKeeperMain).
            main.zk.close();
        }
        System.exit(main.exitCode);
    }
}
