package interop;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
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
 * The Java side of tests/interop/bench.sh: the same jobs as examples/bench.rs, with the
 * official client's public API and its defaults.
 *
 * <ul>
 * <li>{@code send}: a DefaultMQProducer; the first message is sent at once (its
 * acknowledgement time since BENCH_T0_US, the script's clock when it launched the JVM, is the
 * start-up figure), BENCH_WARMUP untimed sends, then for every size of BENCH_SIZES:
 * BENCH_SEND_N sync sends from 1 thread and BENCH_SEND8_N from BENCH_THREADS threads sharing
 * the producer;
 * <li>{@code push} / {@code lite}: a DefaultMQPushConsumer (concurrent listener) / a
 * DefaultLitePullConsumer (poll loop) of a new group, from the first offset, drains the
 * BENCH_DRAIN_N messages stored in BENCH_TOPIC: time from start() until the last distinct one is
 * handed to the listener (returned by poll).
 * </ul>
 *
 * Output lines as examples/bench.rs prints them, with "java" first. CPU seconds are those of the
 * whole JVM during the measured part (/proc/self/stat), peak RSS is VmHWM (/proc/self/status).
 */
public final class Bench {
    private Bench() {}

    public static void main(String[] args) throws Exception {
        Peer.quietClientLog();
        String topic = System.getenv("BENCH_TOPIC");
        if (topic == null || topic.isEmpty()) {
            System.err.println("BENCH_TOPIC is not set (the topic must exist on both brokers)");
            System.exit(64);
        }
        String mode = args.length > 0 ? args[0] : "send";
        boolean ok = false;
        try {
            switch (mode) {
                case "send":
                    ok = send(topic);
                    break;
                case "push":
                    ok = push(topic);
                    break;
                case "lite":
                    ok = lite(topic);
                    break;
                default:
                    System.err.println("unknown mode " + mode + " (send, push, lite)");
            }
        } catch (Throwable e) {
            // The client's threads are not daemons: exit, or the JVM stays.
            e.printStackTrace();
        }
        System.exit(ok ? 0 : 1);
    }

    static int[] sizes() {
        String v = System.getenv("BENCH_SIZES");
        return Arrays.stream((v == null || v.isEmpty() ? "128,4096" : v).split(","))
            .mapToInt(s -> Integer.parseInt(s.trim())).toArray();
    }

    static byte[] body(int size) {
        byte[] b = new byte[size];
        for (int i = 0; i < size; i++) {
            b[i] = (byte) ('a' + i % 26);
        }
        return b;
    }

    static long epochMicros() {
        java.time.Instant now = java.time.Instant.now();
        return now.getEpochSecond() * 1_000_000L + now.getNano() / 1000;
    }

    /** User + system CPU seconds of the whole process so far. */
    static double cpuSeconds() {
        try {
            String stat = new String(Files.readAllBytes(Paths.get("/proc/self/stat")), StandardCharsets.US_ASCII);
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).trim().split("\\s+");
            return (Long.parseLong(f[11]) + Long.parseLong(f[12])) / 100.0;
        } catch (Exception e) {
            return 0;
        }
    }

    /** Peak resident set size (VmHWM) in KiB. */
    static long peakRssKb() {
        try {
            for (String l : Files.readAllLines(Paths.get("/proc/self/status"))) {
                if (l.startsWith("VmHWM:")) {
                    return Long.parseLong(l.substring(6).trim().split("\\s+")[0]);
                }
            }
        } catch (Exception e) {
            // fall through
        }
        return 0;
    }

    static double percentileUs(long[] sorted, double p) {
        return sorted.length == 0 ? 0 : Peer.percentile(sorted, p) / 1000.0;
    }

    static final class Phase {
        long[] latenciesNs;
        long elapsedNs;
        final AtomicLong errors = new AtomicLong();

        void print(int threads, int size) {
            long[] lat = latenciesNs;
            Arrays.sort(lat);
            Peer.OUT.printf(java.util.Locale.ROOT,
                "java send threads=%d size=%d msgs=%d msgs_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f errors=%d%n",
                threads, size, lat.length, lat.length / (elapsedNs / 1e9), percentileUs(lat, 0.50),
                percentileUs(lat, 0.99), percentileUs(lat, 0.999), errors.get());
        }
    }

    static boolean send(String topic) throws Exception {
        int[] sizes = sizes();
        int sendN = Peer.intEnv("BENCH_SEND_N", 20000);
        int send8N = Peer.intEnv("BENCH_SEND8_N", 40000);
        int threads = Peer.intEnv("BENCH_THREADS", 8);
        int warmup = Peer.intEnv("BENCH_WARMUP", 5000);
        String t0 = System.getenv("BENCH_T0_US");

        DefaultMQProducer producer = new DefaultMQProducer(Peer.unique("bench_java_pg"));
        producer.setNamesrvAddr(Peer.namesrv());
        producer.setInstanceName(Peer.unique("bench-java-producer"));
        producer.start();
        SendResult first = producer.send(new Message(topic, body(sizes[0])));
        double firstAckMs = t0 == null || t0.isEmpty() ? -1 : (epochMicros() - Long.parseLong(t0.trim())) / 1000.0;
        if (first.getSendStatus() != SendStatus.SEND_OK) {
            throw new IllegalStateException("first send: " + first);
        }
        for (int size : sizes) {
            phase(producer, topic, body(size), warmup / sizes.length, threads);
        }
        double cpu0 = cpuSeconds();
        long errors = 0;
        long msgs = 0;
        for (int size : sizes) {
            byte[] body = body(size);
            for (int[] nt : new int[][] {{sendN, 1}, {send8N, threads}}) {
                Phase p = phase(producer, topic, body, nt[0], nt[1]);
                errors += p.errors.get();
                msgs += p.latenciesNs.length;
                p.print(nt[1], size);
            }
        }
        double cpu = cpuSeconds() - cpu0;
        producer.shutdown();
        Peer.OUT.printf(java.util.Locale.ROOT, "java proc first_ack_ms=%.1f cpu_s=%.2f msgs=%d rss_kb=%d%n", firstAckMs,
            cpu, msgs, peakRssKb());
        return errors == 0;
    }

    static Phase phase(DefaultMQProducer producer, String topic, byte[] body, int n, int threads) throws Exception {
        Phase out = new Phase();
        long[][] lats = new long[threads][];
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            final int id = t;
            final int count = n / threads + (t < n % threads ? 1 : 0);
            lats[t] = new long[count];
            workers.add(new Thread(() -> {
                int done = 0;
                for (int i = 0; i < count; i++) {
                    Message msg = new Message(topic, body);
                    long s = System.nanoTime();
                    try {
                        SendResult r = producer.send(msg);
                        long d = System.nanoTime() - s;
                        if (r.getSendStatus() != SendStatus.SEND_OK) {
                            out.errors.incrementAndGet();
                            continue;
                        }
                        lats[id][done++] = d;
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

    /** Distinct (store host, queue id, offset) triples seen by a drain. */
    static final class Drain {
        final long want;
        final Map<String, BitSet> seen = new HashMap<>();
        long distinct;
        long dups;
        long doneAtNs;
        final CountDownLatch done = new CountDownLatch(1);

        Drain(long want) {
            this.want = want;
        }

        synchronized void record(List<MessageExt> msgs) {
            for (MessageExt m : msgs) {
                BitSet bits = seen.computeIfAbsent(m.getStoreHost() + "/" + m.getQueueId(), k -> new BitSet());
                int offset = (int) m.getQueueOffset();
                if (bits.get(offset)) {
                    dups++;
                } else {
                    bits.set(offset);
                    if (++distinct == want) {
                        doneAtNs = System.nanoTime();
                        done.countDown();
                    }
                }
            }
        }

        synchronized boolean finished() {
            return doneAtNs != 0;
        }

        synchronized boolean report(String kind, long startNs, double cpu) {
            double secs = doneAtNs == 0 ? Double.NaN : (doneAtNs - startNs) / 1e9;
            Peer.OUT.printf(java.util.Locale.ROOT,
                "java drain kind=%s msgs=%d distinct=%d dups=%d secs=%.3f msgs_per_s=%.0f cpu_s=%.2f rss_kb=%d%n", kind,
                want, distinct, dups, secs, want / secs, cpu, peakRssKb());
            return doneAtNs != 0 && distinct == want;
        }
    }

    static boolean push(String topic) throws Exception {
        Drain drain = new Drain(Peer.intEnv("BENCH_DRAIN_N", 1_000_000));
        long limitS = Peer.intEnv("BENCH_DRAIN_TIMEOUT", 600);
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(Peer.unique("bench_java_push_cg"));
        consumer.setNamesrvAddr(Peer.namesrv());
        consumer.setInstanceName(Peer.unique("bench-java-push"));
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(topic, "*");
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            drain.record(msgs);
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        System.err.printf("java push: consumeThreadMin=%d consumeThreadMax=%d pullBatchSize=%d "
            + "consumeMessageBatchMaxSize=%d pullThresholdForQueue=%d%n", consumer.getConsumeThreadMin(),
            consumer.getConsumeThreadMax(), consumer.getPullBatchSize(), consumer.getConsumeMessageBatchMaxSize(),
            consumer.getPullThresholdForQueue());
        double cpu0 = cpuSeconds();
        long start = System.nanoTime();
        consumer.start();
        drain.done.await(limitS, TimeUnit.SECONDS);
        consumer.shutdown();
        return drain.report("push", start, cpuSeconds() - cpu0);
    }

    static boolean lite(String topic) throws Exception {
        Drain drain = new Drain(Peer.intEnv("BENCH_DRAIN_N", 1_000_000));
        long limitNs = Peer.intEnv("BENCH_DRAIN_TIMEOUT", 600) * 1_000_000_000L;
        DefaultLitePullConsumer consumer = new DefaultLitePullConsumer(Peer.unique("bench_java_lite_cg"));
        consumer.setNamesrvAddr(Peer.namesrv());
        consumer.setInstanceName(Peer.unique("bench-java-lite"));
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(topic, "*");
        System.err.printf("java lite: pullThreadNums=%d pullBatchSize=%d pullThresholdForQueue=%d%n",
            consumer.getPullThreadNums(), consumer.getPullBatchSize(), consumer.getPullThresholdForQueue());
        double cpu0 = cpuSeconds();
        long start = System.nanoTime();
        consumer.start();
        while (!drain.finished() && System.nanoTime() - start < limitNs) {
            drain.record(consumer.poll(1000));
        }
        consumer.shutdown();
        return drain.report("lite", start, cpuSeconds() - cpu0);
    }
}
