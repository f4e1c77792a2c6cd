package interop;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.TreeMap;
import org.apache.rocketmq.remoting.RPCHook;

/** Helpers shared by {@link Bench} and {@link Interop}. */
final class Peer {
    private Peer() {}

    /** stdout as UTF-8 whatever the locale (Java 17 would print '?' for non-ASCII under LANG=C). */
    static final PrintStream OUT = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);

    /**
     * Sends the client's own log to a temporary directory at WARN, unless the
     * caller chose otherwise; call before any RocketMQ class is used.
     */
    static void quietClientLog() {
        if (System.getProperty("rocketmq.log.root") == null) {
            System.setProperty("rocketmq.log.root", System.getProperty("java.io.tmpdir") + "/rocketmq-blocking-interop-logs");
        }
        if (System.getProperty("rocketmq.log.level") == null) {
            System.setProperty("rocketmq.log.level", "warn");
        }
    }

    static String namesrv() {
        String ns = System.getenv("ROCKETMQ_NAMESRV_ADDR");
        return ns == null || ns.isEmpty() ? "127.0.0.1:19876" : ns;
    }

    /**
     * The official ACL signer (AclClientRPCHook) for ROCKETMQ_ACCESS_KEY and
     * ROCKETMQ_SECRET_KEY, or null when they are not set. Loaded by name: it
     * lives in rocketmq-client on 5.x and in rocketmq-acl on 4.x (added by the
     * pom's acl-1 profile), so the peer compiles against either without it.
     */
    static RPCHook aclHook() throws ReflectiveOperationException {
        String ak = System.getenv("ROCKETMQ_ACCESS_KEY");
        String sk = System.getenv("ROCKETMQ_SECRET_KEY");
        if (ak == null || ak.isEmpty() || sk == null || sk.isEmpty()) {
            return null;
        }
        Class<?> credentials = Class.forName("org.apache.rocketmq.acl.common.SessionCredentials");
        Object c = credentials.getConstructor(String.class, String.class).newInstance(ak, sk);
        Class<?> hook = Class.forName("org.apache.rocketmq.acl.common.AclClientRPCHook");
        return (RPCHook) hook.getConstructor(credentials).newInstance(c);
    }

    /** The group from the environment variable `name`, else a unique one. */
    static String group(String name, String prefix) {
        String g = System.getenv(name);
        return g == null || g.isEmpty() ? unique(prefix) : g;
    }

    static int intEnv(String name, int dflt) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? dflt : Integer.parseInt(v.trim());
    }

    /** A name unique to this process: prefix_pid_nanos. */
    static String unique(String prefix) {
        return prefix + "_" + ProcessHandle.current().pid() + "_" + (System.nanoTime() % 1_000_000_000L);
    }

    static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder(b.length * 2);
        for (byte x : b) {
            sb.append(Character.forDigit((x >> 4) & 0xF, 16)).append(Character.forDigit(x & 0xF, 16));
        }
        return sb.toString();
    }

    /** Properties as sorted `name=value` lines, UTF-8, hex (so any byte survives the line format). */
    static String propsHex(Map<String, String> props) {
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, String> e : new TreeMap<>(props).entrySet()) {
            if (sb.length() > 0) {
                sb.append('\n');
            }
            sb.append(e.getKey()).append('=').append(e.getValue());
        }
        return hex(sb.toString().getBytes(StandardCharsets.UTF_8));
    }

    static String host(SocketAddress a) {
        if (a instanceof InetSocketAddress) {
            InetSocketAddress i = (InetSocketAddress) a;
            return i.getAddress().getHostAddress() + ":" + i.getPort();
        }
        return String.valueOf(a);
    }

    static String orEmpty(String s) {
        return s == null ? "" : s;
    }

    /** p in (0, 1]: nearest-rank percentile of sorted values. */
    static long percentile(long[] sorted, double p) {
        if (sorted.length == 0) {
            return 0;
        }
        int idx = (int) Math.ceil(p * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, idx))];
    }
}
