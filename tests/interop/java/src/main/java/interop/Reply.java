package interop;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueAveragely;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.utils.MessageUtil;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageConst;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * Request-reply peer driven by tests/request_reply.rs, with the official
 * client's own request-reply API; the name server comes from
 * ROCKETMQ_NAMESRV_ADDR.
 *
 * <pre>
 * respond TOPIC N   a DefaultMQPushConsumer (new group, from the first offset)
 *                   answers each request with MessageUtil.createReplyMessage,
 *                   body "java:" + request body, sent by a DefaultMQProducer;
 *                   prints READY| once started and
 *                   REPLIED|correlationId|requestBodyHex|requestPropsHex per reply;
 *                   exits 0 after N replies (1 if not within 90 s)
 * request TOPIC N   DefaultMQProducer.request(msg, INTEROP_TIMEOUT_MS) N times,
 *                   bodies "java-request-" + i; prints
 *                   REPLY|i|replyTopic|replyBodyHex|replyPropsHex per reply;
 *                   exits 0 when all N were answered
 * </pre>
 */
public final class Reply {
    private Reply() {}

    public static void main(String[] args) throws Exception {
        Peer.quietClientLog();
        if (args.length != 3) {
            System.err.println("usage: Reply respond|request TOPIC N");
            System.exit(64);
        }
        int n = Integer.parseInt(args[2]);
        int code;
        switch (args[0]) {
            case "respond":
                code = respond(args[1], n);
                break;
            case "request":
                code = request(args[1], n);
                break;
            default:
                System.err.println("unknown mode " + args[0]);
                code = 64;
        }
        System.exit(code);
    }

    static DefaultMQProducer producer(String prefix) throws Exception {
        DefaultMQProducer p = new DefaultMQProducer(Peer.unique(prefix), Peer.aclHook());
        p.setNamesrvAddr(Peer.namesrv());
        p.setInstanceName(Peer.unique(prefix + "-instance"));
        p.setSendMsgTimeout(Peer.intEnv("INTEROP_TIMEOUT_MS", 3000));
        p.start();
        return p;
    }

    static int respond(String topic, int n) throws Exception {
        DefaultMQProducer p = producer("reply_java_responder_pg");
        DefaultMQPushConsumer c = new DefaultMQPushConsumer(Peer.unique("reply_java_responder_cg"), Peer.aclHook(),
            new AllocateMessageQueueAveragely());
        c.setNamesrvAddr(Peer.namesrv());
        c.setInstanceName(Peer.unique("reply-java-responder"));
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.subscribe(topic, "*");
        CountDownLatch left = new CountDownLatch(n);
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                try {
                    byte[] body = ("java:" + new String(m.getBody(), StandardCharsets.UTF_8)).getBytes(StandardCharsets.UTF_8);
                    Message reply = MessageUtil.createReplyMessage(m, body);
                    p.send(reply);
                    Peer.OUT.println(String.join("|", "REPLIED", Peer.orEmpty(m.getProperty(MessageConst.PROPERTY_CORRELATION_ID)),
                        Peer.hex(m.getBody()), Peer.propsHex(m.getProperties())));
                    left.countDown();
                } catch (Exception e) {
                    System.err.println("reply to " + m.getMsgId() + " failed: " + e);
                    return ConsumeConcurrentlyStatus.RECONSUME_LATER;
                }
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.start();
        Peer.OUT.println("READY|");
        boolean all = left.await(90, TimeUnit.SECONDS);
        c.shutdown();
        p.shutdown();
        if (!all) {
            System.err.println("replied to " + (n - left.getCount()) + " of " + n + " requests within 90 s");
            return 1;
        }
        return 0;
    }

    static int request(String topic, int n) throws Exception {
        DefaultMQProducer p = producer("reply_java_requester_pg");
        long timeout = Peer.intEnv("INTEROP_TIMEOUT_MS", 3000);
        int ok = 0;
        try {
            for (int i = 0; i < n; i++) {
                Message req = new Message(topic, ("java-request-" + i).getBytes(StandardCharsets.UTF_8));
                try {
                    Message reply = p.request(req, timeout);
                    Peer.OUT.println(String.join("|", "REPLY", String.valueOf(i), reply.getTopic(),
                        Peer.hex(reply.getBody()), Peer.propsHex(reply.getProperties())));
                    ok++;
                } catch (Exception e) {
                    System.err.println("request " + i + " failed: " + e);
                }
            }
        } finally {
            p.shutdown();
        }
        return ok == n ? 0 : 1;
    }
}
