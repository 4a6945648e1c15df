// The Apache ZooKeeper 3.8 Java client against a secured server, for
// .ci/security.sh. TLS and SASL come from system properties, as users set
// them (zookeeper.client.secure, zookeeper.clientCnxnSocket, the ssl stores,
// java.security.auth.login.config with a Client section).
//
// Usage: java SecureClient CONNECT MODE
//   tls         connect, create and read a node, print the x509 identity if any
//   sasl        wait for SaslAuthenticated, print the sasl identity, create a node
//               with ACL sasl:bob and show that a session without SASL cannot read it
//   sasl-wrong  expect AuthFailed
// Prints one line per outcome; exits 1 on anything unexpected.
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher.Event.KeeperState;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.client.ZKClientConfig;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.ClientInfo;
import org.apache.zookeeper.data.Id;

public class SecureClient {
    static ZooKeeper open(String connect, ZKClientConfig config, BlockingQueue<KeeperState> states)
            throws Exception {
        return new ZooKeeper(connect, 10000, e -> {
            if (e.getType() == org.apache.zookeeper.Watcher.Event.EventType.None) {
                states.add(e.getState());
            }
        }, config);
    }

    static KeeperState await(BlockingQueue<KeeperState> states, KeeperState... wanted) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (System.nanoTime() < deadline) {
            KeeperState s = states.poll(100, TimeUnit.MILLISECONDS);
            if (s == null) {
                continue;
            }
            for (KeeperState w : wanted) {
                if (s == w) {
                    return s;
                }
            }
        }
        return null;
    }

    static List<String> identities(ZooKeeper zk) throws Exception {
        List<String> out = new ArrayList<>();
        for (ClientInfo info : zk.whoAmI()) {
            if (!info.getAuthScheme().equals("ip")) {
                out.add(info.getAuthScheme() + ":" + info.getUser());
            }
        }
        Collections.sort(out);
        return out;
    }

    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String mode = args[1];
        String path = "/security-java-" + mode + "-" + System.nanoTime();
        BlockingQueue<KeeperState> states = new LinkedBlockingQueue<>();
        ZooKeeper zk = open(connect, new ZKClientConfig(), states);
        switch (mode) {
            case "tls": {
                if (await(states, KeeperState.SyncConnected) == null) {
                    System.out.println("not connected");
                    System.exit(1);
                }
                zk.create(path, "over tls".getBytes(), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                System.out.println("read " + new String(zk.getData(path, false, null)));
                System.out.println("identities " + identities(zk));
                zk.delete(path, -1);
                break;
            }
            case "sasl": {
                if (await(states, KeeperState.SaslAuthenticated, KeeperState.AuthFailed)
                        != KeeperState.SaslAuthenticated) {
                    System.out.println("not authenticated");
                    System.exit(1);
                }
                System.out.println("identities " + identities(zk));
                List<ACL> acl = Collections.singletonList(new ACL(ZooDefs.Perms.ALL, new Id("sasl", "bob")));
                zk.create(path, "for bob".getBytes(), acl, CreateMode.PERSISTENT);
                System.out.println("owner reads " + new String(zk.getData(path, false, null)));
                ZKClientConfig plain = new ZKClientConfig();
                plain.setProperty(ZKClientConfig.ENABLE_CLIENT_SASL_KEY, "false");
                BlockingQueue<KeeperState> otherStates = new LinkedBlockingQueue<>();
                ZooKeeper other = open(connect, plain, otherStates);
                await(otherStates, KeeperState.SyncConnected);
                try {
                    other.getData(path, false, null);
                    System.out.println("anonymous reads it");
                } catch (KeeperException.NoAuthException e) {
                    System.out.println("anonymous NoAuth");
                }
                other.close();
                zk.delete(path, -1);
                break;
            }
            case "sasl-wrong": {
                KeeperState s = await(states, KeeperState.SaslAuthenticated, KeeperState.AuthFailed);
                System.out.println("state " + s);
                break;
            }
            default:
                System.out.println("unknown mode " + mode);
                System.exit(2);
        }
        zk.close();
    }
}
