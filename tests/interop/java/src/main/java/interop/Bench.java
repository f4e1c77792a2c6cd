package interop;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.rocketmq.client.consumer.DefaultMQPullConsumer;
import org.apache.rocketmq.client.consumer.PullResult;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageQueue;

/**
 * The Java side of tests/interop/bench.sh; the same measures as
 * examples/bench.rs, with the official client and its defaults.
 *
 * <ul>
 * <li>send: BENCH_N messages of BENCH_SIZE bytes, sync DefaultMQProducer.send (its own queue
 * selection, default retries) from BENCH_THREADS threads sharing one producer;
 * <li>pull: all of them read back with DefaultMQPullConsumer.pull (32 per pull) from
 * BENCH_THREADS threads, each taking whole queues.
 * </ul>
 *
 * BENCH_WARMUP messages are sent (and pulled) first, untimed, to the same
 * topic. The topic, BENCH_TOPIC, must exist (bench.sh creates it with
 * examples/bench.rs). Output:
 * <pre>
 * java send msgs=N size=S threads=T msgs_per_s=X p50_us=X p99_us=X errors=E
 * java pull msgs=N size=S threads=T msgs_per_s=X
 * </pre>
 */
public final class Bench {
    private Bench() {}

    /** [first, last] queue offsets written per queue. */
    static final class Sent {
        final Map<MessageQueue, long[]> ranges = new ConcurrentHashMap<>();
        long[] latenciesNs;
        long elapsedNs;
        final AtomicLong errors = new AtomicLong();
    }

    public static void main(String[] args) throws Exception {
        Peer.quietClientLog();
        String topic = System.getenv("BENCH_TOPIC");
        if (topic == null || topic.isEmpty()) {
            System.err.println("BENCH_TOPIC is not set (the topic must exist on both brokers)");
            System.exit(64);
        }
        int n = Peer.intEnv("BENCH_N", 20000);
        int size = Peer.intEnv("BENCH_SIZE", 128);
        int threads = Peer.intEnv("BENCH_THREADS", 4);
        int warmup = Peer.intEnv("BENCH_WARMUP", 2000);
        byte[] body = new byte[size];
        for (int i = 0; i < size; i++) {
            body[i] = (byte) ('a' + i % 26);
        }

        DefaultMQProducer producer = new DefaultMQProducer(Peer.unique("bench_java_pg"));
        producer.setNamesrvAddr(Peer.namesrv());
        producer.setInstanceName(Peer.unique("bench-java-producer"));
        producer.start();
        Sent warm = send(producer, topic, body, warmup, threads);
        Sent sent = send(producer, topic, body, n, threads);
        producer.shutdown();
        long[] lat = sent.latenciesNs;
        Arrays.sort(lat);
        Peer.OUT.printf("java send msgs=%d size=%d threads=%d msgs_per_s=%d p50_us=%d p99_us=%d errors=%d%n", n, size,
            threads, Math.round(lat.length / (sent.elapsedNs / 1e9)), Peer.percentile(lat, 0.50) / 1000,
            Peer.percentile(lat, 0.99) / 1000, sent.errors.get());

        DefaultMQPullConsumer consumer = new DefaultMQPullConsumer(Peer.unique("bench_java_cg"));
        consumer.setNamesrvAddr(Peer.namesrv());
        consumer.setInstanceName(Peer.unique("bench-java-consumer"));
        consumer.start();
        // The consume queues are built from the commit log asynchronously.
        long deadline = System.nanoTime() + 60_000_000_000L;
        for (Map.Entry<MessageQueue, long[]> e : sent.ranges.entrySet()) {
            while (consumer.maxOffset(e.getKey()) <= e.getValue()[1]) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("consume queue of " + e.getKey() + " not built within 60 s");
                }
                Thread.sleep(10);
            }
        }
        pull(consumer, warm.ranges, threads);
        long t0 = System.nanoTime();
        long pulled = pull(consumer, sent.ranges, threads);
        long dt = System.nanoTime() - t0;
        consumer.shutdown();
        Peer.OUT.printf("java pull msgs=%d size=%d threads=%d msgs_per_s=%d%n", pulled, size, threads,
            Math.round(pulled / (dt / 1e9)));
        System.exit(pulled == lat.length && sent.errors.get() == 0 ? 0 : 1);
    }

    static Sent send(DefaultMQProducer producer, String topic, byte[] body, int n, int threads) throws Exception {
        Sent out = new Sent();
        long[][] lats = new long[threads][];
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            final int id = t;
            final int count = n / threads + (t < n % threads ? 1 : 0);
            lats[t] = new long[count];
            workers.add(new Thread(() -> {
                int done = 0;
                for (int i = 0; i < count; i++) {
                    long s = System.nanoTime();
                    try {
                        SendResult r = producer.send(new Message(topic, body));
                        long d = System.nanoTime() - s;
                        if (r.getSendStatus() != SendStatus.SEND_OK) {
                            out.errors.incrementAndGet();
                            continue;
                        }
                        lats[id][done++] = d;
                        long off = r.getQueueOffset();
                        out.ranges.compute(r.getMessageQueue(), (k, v) -> v == null
                            ? new long[] {off, off} : new long[] {Math.min(v[0], off), Math.max(v[1], off)});
                    } catch (Exception e) {
                        if (out.errors.incrementAndGet() <= 5) {
                            System.err.println("send: " + e);
                        }
                    }
                }
                lats[id] = Arrays.copyOf(lats[id], done);
            }, "bench-send-" + t));
        }
        long t0 = System.nanoTime();
        for (Thread w : workers) {
            w.start();
        }
        for (Thread w : workers) {
            w.join();
        }
        out.elapsedNs = System.nanoTime() - t0;
        out.latenciesNs = Arrays.stream(lats).flatMapToLong(Arrays::stream).toArray();
        return out;
    }

    /** Pulls [first, last] of every queue; threads take whole queues. Returns the messages read. */
    static long pull(DefaultMQPullConsumer consumer, Map<MessageQueue, long[]> ranges, int threads) throws Exception {
        ConcurrentLinkedQueue<Map.Entry<MessageQueue, long[]>> jobs = new ConcurrentLinkedQueue<>(ranges.entrySet());
        AtomicLong count = new AtomicLong();
        List<Thread> workers = new ArrayList<>();
        List<Throwable> failures = new ArrayList<>();
        long deadline = System.nanoTime() + 120_000_000_000L;
        for (int t = 0; t < threads; t++) {
            workers.add(new Thread(() -> {
                try {
                    Map.Entry<MessageQueue, long[]> job;
                    while ((job = jobs.poll()) != null) {
                        long offset = job.getValue()[0];
                        long end = job.getValue()[1] + 1;
                        while (offset < end) {
                            if (System.nanoTime() > deadline) {
                                throw new IllegalStateException("pull of " + job.getKey() + " took over 120 s");
                            }
                            PullResult r = consumer.pull(job.getKey(), "*", offset, 32);
                            switch (r.getPullStatus()) {
                                case FOUND:
                                    count.addAndGet(r.getMsgFoundList().stream()
                                        .filter(m -> m.getQueueOffset() < end).count());
                                    offset = r.getNextBeginOffset();
                                    break;
                                case NO_NEW_MSG:
                                case NO_MATCHED_MSG:
                                    Thread.sleep(1);
                                    break;
                                default:
                                    throw new IllegalStateException("pull " + job.getKey() + " at " + offset + ": " + r);
                            }
                        }
                    }
                } catch (Throwable e) {
                    synchronized (failures) {
                        failures.add(e);
                    }
                }
            }, "bench-pull-" + t));
        }
        for (Thread w : workers) {
            w.start();
        }
        for (Thread w : workers) {
            w.join();
        }
        if (!failures.isEmpty()) {
            throw new IllegalStateException("pull failed", failures.get(0));
        }
        return count.get();
    }
}
