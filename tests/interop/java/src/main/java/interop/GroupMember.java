package interop;

import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.rocketmq.client.consumer.AllocateMessageQueueStrategy;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.ConsumeOrderlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.consumer.listener.MessageListenerOrderly;
import org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueAveragely;
import org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueAveragelyByCircle;
import org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueConsistentHash;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * The Java twin of examples/group_member.rs (same arguments, same delivery
 * file; the contract is in that file's header), with the official
 * DefaultMQPushConsumer, concurrently (push) or orderly:
 *
 *   java -cp CP interop.GroupMember --namesrv ADDR --group G --topic T --mode push|orderly
 *       --member ID --out FILE [--allocate averagely|circle|hash] [--persist-ms N]
 *
 * A member id IP@NAME becomes the client id (client IP and instance name);
 * any other id becomes the instance name. SIGTERM: a shutdown hook writes
 * "stopping", shuts the consumer down (offsets persisted, group left),
 * writes "stopped" and exits 0.
 */
public final class GroupMember {
    private GroupMember() {}

    private static FileOutputStream out;
    private static String member;

    static synchronized void line(String json) {
        try {
            out.write((json + "\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
        } catch (IOException e) {
            // A lost line would read as a lost message: die loudly.
            e.printStackTrace();
            Runtime.getRuntime().halt(3);
        }
    }

    static String quote(String s) {
        if (s == null) {
            return "null";
        }
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c < 0x20 || c == '"' || c == '\\') {
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        return sb.append('"').toString();
    }

    static void event(String event) {
        line("{\"member\":" + quote(member) + ",\"event\":" + quote(event) + ",\"t_ms\":" + System.currentTimeMillis() + "}");
    }

    static void delivery(String broker, MessageExt m) {
        String seq = m.getUserProperty("seq");
        String keys = m.getKeys() == null ? "" : m.getKeys().split(" ")[0];
        line("{\"member\":" + quote(member) + ",\"topic\":" + quote(m.getTopic()) + ",\"broker\":" + quote(broker)
            + ",\"queue\":" + m.getQueueId() + ",\"offset\":" + m.getQueueOffset() + ",\"msg_id\":" + quote(m.getMsgId())
            + ",\"key\":" + quote(keys) + ",\"seq\":" + (seq == null ? "null" : Long.parseLong(seq))
            + ",\"reconsume\":" + m.getReconsumeTimes() + ",\"t_ms\":" + System.currentTimeMillis() + "}");
    }

    static void usage(String why) {
        System.err.println("GroupMember: " + why + "\nusage: GroupMember --namesrv ADDR --group G --topic T"
            + " --mode push|orderly --member ID --out FILE [--allocate averagely|circle|hash] [--persist-ms N]");
        System.exit(2);
    }

    public static void main(String[] args) throws Exception {
        Peer.quietClientLog();
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i < args.length; i += 2) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                usage("bad argument " + args[i]);
            }
            a.put(args[i].substring(2), args[i + 1]);
        }
        for (String required : new String[] {"namesrv", "group", "topic", "mode", "member", "out"}) {
            if (!a.containsKey(required)) {
                usage("--" + required + " is required");
            }
        }
        String mode = a.get("mode");
        if (!mode.equals("push") && !mode.equals("orderly")) {
            usage("--mode " + mode + ": the Java member runs push or orderly");
        }
        AllocateMessageQueueStrategy strategy;
        switch (a.getOrDefault("allocate", "averagely")) {
            case "averagely": strategy = new AllocateMessageQueueAveragely(); break;
            case "circle": strategy = new AllocateMessageQueueAveragelyByCircle(); break;
            case "hash": strategy = new AllocateMessageQueueConsistentHash(); break;
            default: usage("unknown --allocate " + a.get("allocate")); return;
        }
        member = a.get("member");
        out = new FileOutputStream(a.get("out"), true);

        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(a.get("group"));
        consumer.setNamesrvAddr(a.get("namesrv"));
        int at = member.indexOf('@');
        if (at > 0) {
            consumer.setClientIP(member.substring(0, at));
            consumer.setInstanceName(member.substring(at + 1));
        } else {
            consumer.setInstanceName(member);
        }
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.setAllocateMessageQueueStrategy(strategy);
        if (a.containsKey("persist-ms")) {
            consumer.setPersistConsumerOffsetInterval(Integer.parseInt(a.get("persist-ms")));
        }
        consumer.subscribe(a.get("topic"), "*");
        if (mode.equals("orderly")) {
            consumer.registerMessageListener((MessageListenerOrderly) (List<MessageExt> msgs, org.apache.rocketmq.client.consumer.listener.ConsumeOrderlyContext ctx) -> {
                msgs.forEach(m -> delivery(ctx.getMessageQueue().getBrokerName(), m));
                return ConsumeOrderlyStatus.SUCCESS;
            });
        } else {
            consumer.registerMessageListener((MessageListenerConcurrently) (List<MessageExt> msgs, org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyContext ctx) -> {
                msgs.forEach(m -> delivery(ctx.getMessageQueue().getBrokerName(), m));
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            });
        }
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            event("stopping");
            consumer.shutdown();
            event("stopped");
            Runtime.getRuntime().halt(0);
        }, "group-member-shutdown"));
        consumer.start();
        event("started");
        Thread.currentThread().join();
    }
}
