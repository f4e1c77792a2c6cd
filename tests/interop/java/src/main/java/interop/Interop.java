package interop;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageClientExt;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;

/**
 * Interop peer driven by tests/interop_java.rs; the name server comes from
 * ROCKETMQ_NAMESRV_ADDR.
 *
 * <pre>
 * produce TOPIC N   sends N messages (tags, keys, user properties with non-ASCII
 *                   text, binary bodies, one 10 KiB body that the client compresses)
 *                   and prints one line per message:
 *                   SENT|msgId|offsetMsgId|broker|queueId|queueOffset|flag|tags|keys|bodyHex|propsHex
 * consume TOPIC N   reads N messages from the first offset of every queue with a
 *                   DefaultLitePullConsumer (assign + seek) and prints one line each:
 *                   MSG|msgId|offsetMsgId|broker|queueId|queueOffset|commitLogOffset|storeSize|bodyCrc|
 *                       flag|sysFlag|bornTimestamp|bornHost|storeTimestamp|storeHost|reconsumeTimes|
 *                       tags|keys|bodyHex|propsHex
 * </pre>
 *
 * propsHex is the hex of the UTF-8 of the sorted "name=value" lines of all
 * properties. Exit status 0 only when all N messages were handled.
 *
 * With ROCKETMQ_ACCESS_KEY and ROCKETMQ_SECRET_KEY set, both sign their
 * requests with the official AclClientRPCHook; INTEROP_CONSUMER_GROUP picks
 * the consumer group (default: a unique one), INTEROP_TIMEOUT_MS the send
 * and client API (name server, broker) timeouts (default Java's 3000).
 */
public final class Interop {
    private Interop() {}

    public static void main(String[] args) throws Exception {
        Peer.quietClientLog();
        if (args.length != 3) {
            System.err.println("usage: Interop produce|consume TOPIC N");
            System.exit(64);
        }
        int n = Integer.parseInt(args[2]);
        int code;
        switch (args[0]) {
            case "produce":
                code = produce(args[1], n);
                break;
            case "consume":
                code = consume(args[1], n);
                break;
            default:
                System.err.println("unknown mode " + args[0]);
                code = 64;
        }
        System.exit(code);
    }

    /** The i-th test message: every fourth has no tags, keys or user properties; message 1 has a 10 KiB body. */
    static Message message(String topic, int i) {
        byte[] body;
        if (i == 1) {
            StringBuilder sb = new StringBuilder();
            while (sb.length() < 10 * 1024) {
                sb.append("java compressed body line ").append(sb.length()).append(" ünïcödé\n");
            }
            body = Arrays.copyOf(sb.toString().getBytes(StandardCharsets.UTF_8), 10 * 1024);
        } else {
            byte[] head = ("java-body-" + i + "-").getBytes(StandardCharsets.UTF_8);
            body = new byte[head.length + 256];
            System.arraycopy(head, 0, body, 0, head.length);
            for (int b = 0; b < 256; b++) {
                body[head.length + b] = (byte) b;
            }
        }
        Message m = new Message(topic, body);
        m.setFlag(i);
        if (i % 4 != 3) {
            m.setTags(i % 2 == 0 ? "TagA" : "标签B");
            m.setKeys("jkey-" + i + " ключ-" + i);
            m.putUserProperty("user_ascii", "v" + i);
            m.putUserProperty("user_utf8", "值-ü-é-🚀-" + i);
        }
        return m;
    }

    static int produce(String topic, int n) throws Exception {
        DefaultMQProducer p = new DefaultMQProducer(Peer.unique("interop_java_pg"), Peer.aclHook());
        p.setNamesrvAddr(Peer.namesrv());
        p.setInstanceName(Peer.unique("interop-java-producer"));
        p.setSendMsgTimeout(Peer.intEnv("INTEROP_TIMEOUT_MS", 3000));
        p.setMqClientApiTimeout(Peer.intEnv("INTEROP_TIMEOUT_MS", 3000));
        p.start();
        int ok = 0;
        try {
            for (int i = 0; i < n; i++) {
                Message m = message(topic, i);
                SendResult r = p.send(m);
                if (r.getSendStatus() != SendStatus.SEND_OK) {
                    System.err.println("send " + i + ": " + r);
                    continue;
                }
                ok++;
                Peer.OUT.println(String.join("|", "SENT", r.getMsgId(), r.getOffsetMsgId(),
                    r.getMessageQueue().getBrokerName(), String.valueOf(r.getMessageQueue().getQueueId()),
                    String.valueOf(r.getQueueOffset()), String.valueOf(m.getFlag()), Peer.orEmpty(m.getTags()),
                    Peer.orEmpty(m.getKeys()), Peer.hex(m.getBody()), Peer.propsHex(m.getProperties())));
            }
        } finally {
            p.shutdown();
        }
        return ok == n ? 0 : 1;
    }

    static int consume(String topic, int n) throws Exception {
        DefaultLitePullConsumer c =
            new DefaultLitePullConsumer(Peer.group("INTEROP_CONSUMER_GROUP", "interop_java_cg"), Peer.aclHook());
        c.setNamesrvAddr(Peer.namesrv());
        c.setInstanceName(Peer.unique("interop-java-consumer"));
        c.setMqClientApiTimeout(Peer.intEnv("INTEROP_TIMEOUT_MS", 3000));
        c.setAutoCommit(false);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.start();
        int got = 0;
        try {
            Collection<MessageQueue> queues = c.fetchMessageQueues(topic);
            c.assign(queues);
            for (MessageQueue q : queues) {
                c.seekToBegin(q);
            }
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (got < n && System.nanoTime() < deadline) {
                List<MessageExt> msgs = c.poll(1000);
                for (MessageExt m : msgs) {
                    String offsetMsgId = m instanceof MessageClientExt ? ((MessageClientExt) m).getOffsetMsgId() : m.getMsgId();
                    Peer.OUT.println(String.join("|", "MSG", m.getMsgId(), offsetMsgId, m.getBrokerName(),
                        String.valueOf(m.getQueueId()), String.valueOf(m.getQueueOffset()),
                        String.valueOf(m.getCommitLogOffset()), String.valueOf(m.getStoreSize()),
                        String.valueOf(m.getBodyCRC()), String.valueOf(m.getFlag()), String.valueOf(m.getSysFlag()),
                        String.valueOf(m.getBornTimestamp()), Peer.host(m.getBornHost()),
                        String.valueOf(m.getStoreTimestamp()), Peer.host(m.getStoreHost()),
                        String.valueOf(m.getReconsumeTimes()), Peer.orEmpty(m.getTags()), Peer.orEmpty(m.getKeys()),
                        Peer.hex(m.getBody()), Peer.propsHex(m.getProperties())));
                    got++;
                }
            }
        } finally {
            c.shutdown();
        }
        if (got < n) {
            System.err.println("consumed " + got + " of " + n + " messages of " + topic + " within 60 s");
            return 1;
        }
        return 0;
    }
}
