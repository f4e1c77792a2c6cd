package interop;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;
import org.apache.rocketmq.client.AccessChannel;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.LocalTransactionState;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.trace.TraceBean;
import org.apache.rocketmq.client.trace.TraceContext;
import org.apache.rocketmq.client.trace.TraceDataEncoder;
import org.apache.rocketmq.client.trace.TraceTransferBean;
import org.apache.rocketmq.client.trace.TraceType;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageType;

/**
 * The message-trace peer for tests/trace.rs.
 *
 * <pre>
 * Trace encode            prints enc|NAME|RECORD|KEYS for fixed records, as the
 *                         official TraceDataEncoder writes them (char 1 shown as
 *                         "\1", char 2 as "\2"; keys sorted, comma-joined)
 * Trace send TOPIC N      sends N messages with a producer that has message trace
 *                         on (DefaultMQProducer(group, true, null)), prints sent|MSGID,
 *                         and shuts down (which flushes the traces)
 * </pre>
 */
public final class Trace {
    private Trace() {}

    public static void main(String[] args) throws Exception {
        Peer.quietClientLog();
        if (args.length >= 1 && args[0].equals("encode")) {
            encode();
        } else if (args.length == 3 && args[0].equals("send")) {
            send(args[1], Integer.parseInt(args[2]));
        } else {
            System.err.println("usage: Trace encode | Trace send TOPIC N");
            System.exit(64);
        }
        System.exit(0);
    }

    static TraceBean bean(String msgId, String tags, String keys) {
        TraceBean b = new TraceBean();
        b.setTopic("Orders");
        b.setMsgId(msgId);
        b.setTags(tags);
        b.setKeys(keys);
        b.setStoreHost("127.0.0.1:20911");
        return b;
    }

    static TraceContext context(TraceType type, String group, List<TraceBean> beans) {
        TraceContext c = new TraceContext();
        c.setTraceType(type);
        c.setTimeStamp(1700000000123L);
        c.setRegionId("DefaultRegion");
        c.setGroupName(group);
        c.setRequestId("7F00000100002A9F0000000000000001");
        c.setAccessChannel(AccessChannel.LOCAL);
        c.setTraceBeans(beans);
        return c;
    }

    static void print(String name, TraceContext c) {
        TraceTransferBean t = TraceDataEncoder.encoderFromContextBean(c);
        String data = t.getTransData().replace("\u0001", "\\1").replace("\u0002", "\\2");
        Peer.OUT.println("enc|" + name + "|" + data + "|" + String.join(",", new TreeSet<>(t.getTransKey())));
    }

    static void encode() {
        TraceBean a = bean("7F00000100002A9F0000000000000001", "TagA", "k1 k2");
        a.setBodyLength(42);
        a.setOffsetMsgId("7F00000100004F7F0000000000001234");
        a.setMsgType(MessageType.Normal_Msg);
        TraceContext pub = context(TraceType.Pub, "pg", new ArrayList<>(Arrays.asList(a)));
        pub.setCostTime(7);
        print("pub", pub);

        TraceBean half = bean("7F00000100002A9F0000000000000002", null, null);
        half.setBodyLength(0);
        half.setMsgType(MessageType.Trans_Msg_Half);
        TraceContext pubHalf = context(TraceType.Pub, "pg", new ArrayList<>(Arrays.asList(half)));
        pubHalf.setSuccess(false);
        print("pub-half", pubHalf);

        TraceBean b = bean("7F00000100002A9F0000000000000003", "TagB", null);
        b.setRetryTimes(3);
        TraceContext before = context(TraceType.SubBefore, "cg", new ArrayList<>(Arrays.asList(a, b)));
        before.setRegionId("R1");
        print("sub-before", before);

        TraceContext after = context(TraceType.SubAfter, "cg", new ArrayList<>(Arrays.asList(a, b)));
        after.setCostTime(5);
        after.setSuccess(false);
        after.setContextCode(4);
        print("sub-after", after);

        TraceBean e = bean("7F00000100002A9F0000000000000001", "TagA", "k1");
        e.setMsgType(MessageType.Trans_msg_Commit);
        e.setTransactionId("7F00000100002A9F0000000000000001");
        e.setTransactionState(LocalTransactionState.COMMIT_MESSAGE);
        e.setFromTransactionCheck(true);
        print("end-transaction", context(TraceType.EndTransaction, "pg", new ArrayList<>(Arrays.asList(e))));
    }

    static void send(String topic, int n) throws Exception {
        DefaultMQProducer p = new DefaultMQProducer(Peer.unique("java_trace_pg"), true, null);
        p.setNamesrvAddr(Peer.namesrv());
        p.start();
        try {
            for (int i = 0; i < n; i++) {
                Message m = new Message(topic, "TagJ", "jkey-" + i, ("java traced " + i).getBytes(StandardCharsets.UTF_8));
                SendResult r = p.send(m);
                Peer.OUT.println("sent|" + r.getMsgId() + "|" + r.getSendStatus());
            }
        } finally {
            p.shutdown();
        }
    }
}
