package interop;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * A Java pop consumer for tests/consumer_pop.rs: the official
 * DefaultMQPushConsumer with client rebalance off, so it asks the broker for
 * its assignment (QUERY_ASSIGNMENT) and pops when the group is in pop mode.
 *
 * <pre>
 * PopPeer TOPIC GROUP IDLE_MS
 * </pre>
 *
 * Prints "POP|ready" once started, "POP|body|reconsumeTimes" for each message
 * it consumed (before returning CONSUME_SUCCESS, which acks it), and exits
 * after IDLE_MS without a message once it had one, or after 90 s.
 */
public final class PopPeer {
    private PopPeer() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: PopPeer TOPIC GROUP IDLE_MS");
            System.exit(2);
        }
        Peer.quietClientLog();
        long idleMs = Long.parseLong(args[2]);
        DefaultMQPushConsumer c = new DefaultMQPushConsumer(args[1]);
        c.setNamesrvAddr(Peer.namesrv());
        c.setInstanceName(Peer.unique("interop-java-pop"));
        // 5.x setters, called by name so that the peer also compiles against
        // the 4.x client (tests/interop_java.rs builds it for the brokers' version).
        c.getClass().getMethod("setClientRebalance", boolean.class).invoke(c, false);
        c.getClass().getMethod("setPopBatchNums", int.class).invoke(c, 4);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.subscribe(args[0], "*");
        AtomicLong last = new AtomicLong(0);
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                synchronized (Peer.OUT) {
                    Peer.OUT.println("POP|" + new String(m.getBody(), StandardCharsets.UTF_8) + "|" + m.getReconsumeTimes());
                }
            }
            try {
                Thread.sleep(20); // as slow as the Rust consumer, so both get work
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            last.set(System.nanoTime());
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.start();
        Peer.OUT.println("POP|ready");
        long end = System.nanoTime() + 90_000_000_000L;
        while (System.nanoTime() < end) {
            long l = last.get();
            if (l != 0 && System.nanoTime() - l > idleMs * 1_000_000L) {
                break;
            }
            Thread.sleep(100);
        }
        c.shutdown();
        System.exit(0);
    }
}
