package interop;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.apache.rocketmq.client.consumer.AllocateMessageQueueStrategy;
import org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueAveragely;
import org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueAveragelyByCircle;
import org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueConsistentHash;
import org.apache.rocketmq.common.message.MessageQueue;

/**
 * Prints the Java client's queue allocation for a table of cases, one JSON
 * object per line: the data of src/consumer/allocate.rs's Java table
 * (tests/data/java_allocation.jsonl). Each case gives the consumer ids and
 * queues in the order a broker or name server might hand them over, the
 * order Java sorts them into (String.compareTo, MessageQueue.compareTo), and
 * per sorted id (then a stranger) the queues that strategy gives it (null
 * when Java throws). "queues" gives the queue counts of broker-a and
 * broker-b of topic TopicTest, received broker-b first, highest id first;
 * "sorted_queues" gives positions in the received list, "owned" positions
 * in the sorted list.
 * Default strategy settings (consistent hash: 10 virtual nodes, MD5).
 *
 *   mvn -q -B -f tests/interop/java/pom.xml -Drocketmq.version=5.5.0 compile
 *   java -cp "tests/interop/java/target/classes:$(cat tests/interop/java/target/dependencies.txt)" \
 *       interop.AllocTable > tests/data/java_allocation.jsonl
 */
public final class AllocTable {
    private AllocTable() {}

    /** Java-style (ip@pid#nanotime), ours, ids whose order trips a naive sort, duplicates. */
    static final String[][] ID_SETS = {
        {"192.168.1.10@18263#2819183726615", "192.168.1.9@18263#2819183726615", "10.0.0.2@901#77125512881",
            "192.168.1.10@1826#99283746112", "172.17.0.3@7#5513200981287", "10.0.0.10@901#77125512882",
            "192.168.1.10@18263#281918372661"},
        {"127.0.0.1@4121#1764820000123456789", "127.0.0.1@4121#1764820000123456790", "127.0.0.1@412#1764820000999999999",
            "127.0.0.1@java-1", "127.0.0.1@rust-1", "127.0.0.1@Rust-2", "127.0.0.1@rust-10"},
        {"127.0.0.1@\uFB01", "127.0.0.1@\uD83D\uDE00", "127.0.0.1@a", "127.0.0.1@\u00e9", "127.0.0.1@\uFFFD",
            "127.0.0.1@ab", "127.0.0.1@A"},
        // A broker lists a client once per connection: a reconnected client
        // shows up twice until its old connection expires.
        {"127.0.0.1@b", "127.0.0.1@a", "127.0.0.1@b", "127.0.0.1@c", "127.0.0.1@a", "127.0.0.1@d", "127.0.0.1@b"},
    };

    /** Queues per broker (broker-a, broker-b). */
    static final int[][] QUEUES = {{0, 0}, {1, 0}, {0, 1}, {1, 1}, {3, 0}, {2, 1}, {3, 3}, {4, 4}, {4, 0},
        {8, 8}, {16, 16}, {16, 0}, {3, 16}};

    public static void main(String[] args) {
        Object[][] strategies = {
            {"AVG", new AllocateMessageQueueAveragely()},
            {"AVG_BY_CIRCLE", new AllocateMessageQueueAveragelyByCircle()},
            {"CONSISTENT_HASH", new AllocateMessageQueueConsistentHash()},
        };
        for (Object[] s : strategies) {
            String name = (String) s[0];
            AllocateMessageQueueStrategy strategy = (AllocateMessageQueueStrategy) s[1];
            for (String[] idSet : ID_SETS) {
                for (int members = 1; members <= 7; members++) {
                    for (int[] q : QUEUES) {
                        List<String> ids = new ArrayList<>();
                        for (int i = 0; i < members; i++) {
                            ids.add(idSet[i]);
                        }
                        // As received: broker-b first, highest queue id first.
                        List<MessageQueue> queues = new ArrayList<>();
                        for (int i = q[1] - 1; i >= 0; i--) {
                            queues.add(new MessageQueue("TopicTest", "broker-b", i));
                        }
                        for (int i = q[0] - 1; i >= 0; i--) {
                            queues.add(new MessageQueue("TopicTest", "broker-a", i));
                        }
                        Peer.OUT.println(line(name, strategy, ids, queues));
                    }
                }
            }
        }
    }

    static String line(String name, AllocateMessageQueueStrategy strategy, List<String> ids, List<MessageQueue> queues) {
        List<String> sortedIds = new ArrayList<>(ids);
        Collections.sort(sortedIds);
        List<MessageQueue> sortedQueues = new ArrayList<>(queues);
        Collections.sort(sortedQueues);
        StringBuilder sb = new StringBuilder();
        sb.append("{\"strategy\":\"").append(name).append("\",\"ids\":").append(strings(ids));
        sb.append(",\"queues\":[").append(count(queues, "broker-a")).append(',').append(count(queues, "broker-b")).append(']');
        sb.append(",\"sorted_ids\":").append(strings(sortedIds));
        sb.append(",\"sorted_queues\":").append(mqs(sortedQueues, queues));
        sb.append(",\"owned\":[");
        List<String> candidates = new ArrayList<>(sortedIds);
        candidates.add("127.0.0.1@stranger");
        for (int i = 0; i < candidates.size(); i++) {
            if (i > 0) {
                sb.append(',');
            }
            try {
                sb.append(mqs(strategy.allocate("group", candidates.get(i), sortedQueues, sortedIds), sortedQueues));
            } catch (IllegalArgumentException e) {
                sb.append("null");
            }
        }
        return sb.append("]}").toString();
    }

    static long count(List<MessageQueue> queues, String broker) {
        return queues.stream().filter(q -> q.getBrokerName().equals(broker)).count();
    }

    static String strings(List<String> v) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < v.size(); i++) {
            sb.append(i > 0 ? "," : "").append('"');
            for (char c : v.get(i).toCharArray()) {
                if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
                    sb.append(String.format("\\u%04x", (int) c));
                } else {
                    sb.append(c);
                }
            }
            sb.append('"');
        }
        return sb.append(']').toString();
    }

    /** Queues as positions in `in` (the queues as received, or sorted). */
    static String mqs(List<MessageQueue> v, List<MessageQueue> in) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < v.size(); i++) {
            sb.append(i > 0 ? "," : "").append(in.indexOf(v.get(i)));
        }
        return sb.append(']').toString();
    }
}
