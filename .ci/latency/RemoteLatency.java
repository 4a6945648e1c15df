// Per-operation latency of the Java ZooKeeper client, the reference for
// innkeeper's remote client (benches/remote_latency.rs runs the same loop).
// Usage: java RemoteLatency CONNECT_STRING ITERATIONS
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class RemoteLatency {
    interface Op { void run(int i) throws Exception; }

    static String root;

    public static void main(String[] args) throws Exception {
        String connect = args[0];
        int n = Integer.parseInt(args[1]);
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(connect, 10000, event -> {
            if (event.getState() == Watcher.Event.KeeperState.SyncConnected) connected.countDown();
        });
        if (!connected.await(15, TimeUnit.SECONDS)) throw new RuntimeException("no session");
        root = "/latency-java-" + System.nanoTime();
        zk.create(root, new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        byte[] data = new byte[100];
        String[] names = {"create", "exists", "get_data", "set_data", "get_children", "delete"};
        Op[] ops = {
            i -> zk.create(root + "/n" + i, data, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT, new Stat()),
            i -> zk.exists(root + "/n" + i, false),
            i -> zk.getData(root + "/n" + i, false, new Stat()),
            i -> zk.setData(root + "/n" + i, data, -1),
            i -> zk.getChildren(root, false, new Stat()),
            i -> zk.delete(root + "/n" + i, -1),
        };
        // Warm-up: the JIT and the server's caches, then the measured rounds.
        for (int round = 0; round < 2; round++) {
            boolean measure = round == 1;
            long[][] nanos = new long[ops.length][n];
            for (int k = 0; k < ops.length; k++) {
                for (int i = 0; i < n; i++) {
                    long t0 = System.nanoTime();
                    ops[k].run(i);
                    nanos[k][i] = System.nanoTime() - t0;
                }
            }
            if (measure) {
                for (int k = 0; k < ops.length; k++) {
                    long[] d = nanos[k];
                    Arrays.sort(d);
                    long sum = 0;
                    for (long x : d) sum += x;
                    System.out.printf("java %-13s mean %7.1f us  p50 %7.1f us  p99 %7.1f us%n",
                        names[k], sum / 1e3 / n, d[n / 2] / 1e3, d[(int) (n * 0.99)] / 1e3);
                }
            }
        }
        zk.delete(root, -1);
        zk.close();
    }
}
