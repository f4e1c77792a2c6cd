package interop;

import java.nio.charset.StandardCharsets;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * Namespace peer driven by tests/namespace.rs: the official client with
 * ClientConfig.setNamespace(NS); the name server comes from
 * ROCKETMQ_NAMESRV_ADDR.
 *
 * <pre>
 * produce NS TOPIC GROUP N   sends bodies "java-ns-0" .. "java-ns-(N-1)" with producer group GROUP;
 *                            prints SENT|body|topic of the send result's queue
 * consume NS TOPIC GROUP N   a DefaultMQPushConsumer of GROUP from the first offset until
 *                            N distinct bodies arrived (60 s at most);
 *                            prints MSG|body|topic as the listener saw it|reconsumeTimes
 * </pre>
 *
 * Exit status 0 only when all N messages were handled.
 */
public final class NamespacePeer {
    private NamespacePeer() {}

    public static void main(String[] args) throws Exception {
        Peer.quietClientLog();
        if (args.length != 5) {
            System.err.println("usage: NamespacePeer produce|consume NS TOPIC GROUP N");
            System.exit(64);
        }
        String ns = args[1];
        String topic = args[2];
        String group = args[3];
        int n = Integer.parseInt(args[4]);
        int code = "produce".equals(args[0]) ? produce(ns, topic, group, n) : consume(ns, topic, group, n);
        System.exit(code);
    }

    static int produce(String ns, String topic, String group, int n) throws Exception {
        DefaultMQProducer p = new DefaultMQProducer(group);
        p.setNamespace(ns);
        p.setNamesrvAddr(Peer.namesrv());
        p.setInstanceName(Peer.unique("namespace-java-producer"));
        p.setSendMsgTimeout(10000);
        p.start();
        int ok = 0;
        try {
            for (int i = 0; i < n; i++) {
                String body = "java-ns-" + i;
                SendResult r = p.send(new Message(topic, body.getBytes(StandardCharsets.UTF_8)));
                if (r.getSendStatus() == SendStatus.SEND_OK) {
                    ok++;
                    Peer.OUT.println(String.join("|", "SENT", body, r.getMessageQueue().getTopic()));
                }
            }
        } finally {
            p.shutdown();
        }
        return ok == n ? 0 : 1;
    }

    static int consume(String ns, String topic, String group, int n) throws Exception {
        Set<String> seen = ConcurrentHashMap.newKeySet();
        DefaultMQPushConsumer c = new DefaultMQPushConsumer(group);
        c.setNamespace(ns);
        c.setNamesrvAddr(Peer.namesrv());
        c.setInstanceName(Peer.unique("namespace-java-consumer"));
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                String body = new String(m.getBody(), StandardCharsets.UTF_8);
                if (seen.add(body)) {
                    Peer.OUT.println(String.join("|", "MSG", body, m.getTopic(), String.valueOf(m.getReconsumeTimes())));
                }
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (seen.size() < n && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        // Let the consumer persist its offsets (every 5 s by default; shutdown persists too).
        c.shutdown();
        return seen.size() >= n ? 0 : 1;
    }
}
